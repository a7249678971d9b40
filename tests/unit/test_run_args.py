"""`build_run_args`: the pure function that turns a launch into `docker run` argv."""

from __future__ import annotations

import csv
from typing import Any

import pytest

from aishell.constants import LABEL_MANAGED
from aishell.engine.run_args import (
    ENGINE_CLI_VARIABLES,
    Bind,
    HostFacts,
    RunArgs,
    RunSpec,
    build_run_args,
    mount_arg,
)

HOME = "/home/alice"
PROJECT = "/home/alice/proj"
SUB = "/home/alice/proj/src/pkg"
IMAGE = "aishell:base"

ALICE_FACTS: dict[str, Any] = {
    "uid": 1000,
    "gid": 1000,
    "user": "alice",
    "home": HOME,
    "cwd": SUB,
    "stdin_tty": False,
    "stdout_tty": False,
}
ROOT_FACTS: dict[str, Any] = {
    "uid": 0,
    "gid": 0,
    "user": "root",
    "home": "/root",
    "cwd": "/root/work",
    "stdin_tty": True,
    "stdout_tty": True,
    "term": "screen-256color",
    "colorterm": "24bit",
}
ALICE = HostFacts(**ALICE_FACTS)
ROOT = HostFacts(**ROOT_FACTS)


def spec(**overrides: Any) -> RunSpec:
    base: dict[str, Any] = {
        "image": IMAGE,
        "command": ("ls", "-la"),
        "project_dir": PROJECT,
        "workdir": SUB,
    }
    base.update(overrides)
    return RunSpec(**base)


def host(**overrides: Any) -> HostFacts:
    return HostFacts(**{**ALICE_FACTS, **overrides})


def pairs(argv: tuple[str, ...], flag: str) -> list[str]:
    """Every value that follows `flag` in argv."""
    return [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == flag]


def env_args(argv: tuple[str, ...]) -> list[str]:
    return pairs(argv, "-e")


def env_map(argv: tuple[str, ...]) -> dict[str, str]:
    return dict(e.split("=", 1) for e in env_args(argv) if "=" in e)


def options(argv: tuple[str, ...], image: str = IMAGE) -> tuple[str, ...]:
    """argv up to (not including) the image."""
    return argv[: argv.index(image)]


def parse_mount(text: str) -> dict[str, str | bool]:
    """Parse a --mount value the way the engine does (CSV, then key=value)."""
    (fields,) = list(csv.reader([text]))
    parsed: dict[str, str | bool] = {}
    for f in fields:
        key, sep, value = f.partition("=")
        parsed[key] = value if sep else True
    return parsed


# ------------------------------------------------------------ full argv equality

BASE_ENV_ALICE = (
    "-e", "LOCAL_UID=1000",
    "-e", "LOCAL_GID=1000",
    "-e", f"LOCAL_HOME={HOME}",
    "-e", "LOCAL_USER=alice",
    "-e", f"AISHELL_PROJECT={PROJECT}",
    "-e", "TERM=xterm-256color",
    "-e", "COLORTERM=truecolor",
)  # fmt: skip


def test_full_argv_minimal_exec_without_tty() -> None:
    result = build_run_args(spec(), ALICE)
    assert result == RunArgs(
        argv=(
            "run", "--rm", "--init", "-i",
            "--label", "aishell.managed=1",
            "--mount", f"type=bind,source={PROJECT},target={PROJECT}",
            "-w", SUB,
            *BASE_ENV_ALICE,
            IMAGE, "ls", "-la",
        ),
        env={},
    )  # fmt: skip


def test_full_argv_interactive_harness_with_everything() -> None:
    h = host(
        stdin_tty=True,
        stdout_tty=True,
        term="xterm-kitty",
        colorterm="truecolor",
        git_name="Alice Liddell",
        git_email="alice@example.org",
        env={"ANTHROPIC_API_KEY": "sk-host-secret", "HOME": HOME},
    )
    s = spec(
        image="aishell:ext-0123456789ab",
        command=("claude", "--dangerously-skip-permissions", "--model", "opus"),
        mode="interactive",
        name="aishell-deadbeef-claude",
        labels=(("aishell.project", PROJECT), ("aishell.name", "claude")),
        harness_volume="aishell-harness-abcdef012345",
        binds=(
            Bind(f"{HOME}/.claude", f"{HOME}/.claude"),
            Bind("/data/ref", "/ref", readonly=True),
        ),
        fixed_env=(("DISABLE_AUTOUPDATER", "1"),),
        env=(
            ("ANTHROPIC_API_KEY", None),
            ("OPENAI_API_KEY", None),  # not set on the host: dropped
            ("DB_PASSWORD", "hunter2"),
            ("PATH", "/opt/bin:/usr/bin"),
        ),
        ports=("127.0.0.1:8080:80", "3000:3000/udp"),
        docker_args=("--cpus", "2", "--memory=4g"),
        pre_start="npm run dev",
        tmux=True,
    )
    result = build_run_args(s, h)
    assert result.argv == (
        "run", "--rm", "--init", "-it",
        "--name", "aishell-deadbeef-claude",
        "--label", "aishell.managed=1",
        "--label", f"aishell.project={PROJECT}",
        "--label", "aishell.name=claude",
        "--mount", f"type=bind,source={PROJECT},target={PROJECT}",
        "-w", SUB,
        "-e", "LOCAL_UID=1000",
        "-e", "LOCAL_GID=1000",
        "-e", f"LOCAL_HOME={HOME}",
        "-e", "LOCAL_USER=alice",
        "-e", f"AISHELL_PROJECT={PROJECT}",
        "-e", "TERM=xterm-kitty",
        "-e", "COLORTERM=truecolor",
        "-e", "GIT_AUTHOR_NAME=Alice Liddell",
        "-e", "GIT_COMMITTER_NAME=Alice Liddell",
        "-e", "GIT_AUTHOR_EMAIL=alice@example.org",
        "-e", "GIT_COMMITTER_EMAIL=alice@example.org",
        "-e", "AISHELL_TMUX=1",
        "-e", "DISABLE_AUTOUPDATER=1",
        "--mount", "type=volume,source=aishell-harness-abcdef012345,target=/tools,readonly",
        "--mount", f"type=bind,source={HOME}/.claude,target={HOME}/.claude",
        "--mount", "type=bind,source=/data/ref,target=/ref,readonly",
        "-e", "ANTHROPIC_API_KEY",
        "-e", "DB_PASSWORD",
        "-e", "PATH=/opt/bin:/usr/bin",
        "-p", "127.0.0.1:8080:80",
        "-p", "3000:3000/udp",
        "-e", "AISHELL_PRE_START",
        "--cpus", "2", "--memory=4g",
        "aishell:ext-0123456789ab",
        "claude", "--dangerously-skip-permissions", "--model", "opus",
    )  # fmt: skip
    assert result.env == {"DB_PASSWORD": "hunter2", "AISHELL_PRE_START": "npm run dev"}


def test_full_argv_detached_root() -> None:
    s = spec(
        command=("bash",),
        project_dir="/root/work",
        workdir="/root/work",
        mode="detach",
        name="aishell-00000000-shell",
    )
    result = build_run_args(s, HostFacts(**{**ROOT_FACTS, "stdin_tty": False, "stdout_tty": False}))
    assert result == RunArgs(
        argv=(
            "run", "--rm", "--init", "--detach", "-it",
            "--name", "aishell-00000000-shell",
            "--label", "aishell.managed=1",
            "--mount", "type=bind,source=/root/work,target=/root/work",
            "-w", "/root/work",
            "-e", "LOCAL_UID=0",
            "-e", "LOCAL_GID=0",
            "-e", "LOCAL_HOME=/root",
            "-e", "LOCAL_USER=root",
            "-e", "AISHELL_PROJECT=/root/work",
            "-e", "TERM=screen-256color",
            "-e", "COLORTERM=24bit",
            IMAGE, "bash",
        ),
        env={},
    )  # fmt: skip


# ------------------------------------------------------------------- TTY / detach


@pytest.mark.parametrize(
    ("mode", "stdin_tty", "stdout_tty", "expected"),
    [
        ("exec", False, False, ["-i"]),
        ("exec", True, False, ["-i"]),
        ("exec", False, True, ["-i"]),
        ("exec", True, True, ["-it"]),
        ("interactive", False, False, ["-i"]),
        ("interactive", True, False, ["-i"]),
        ("interactive", False, True, ["-i"]),
        ("interactive", True, True, ["-it"]),
        ("detach", False, False, ["--detach", "-it"]),
        ("detach", True, True, ["--detach", "-it"]),
        ("detach", True, False, ["--detach", "-it"]),
    ],
)
def test_tty_flags(mode: str, stdin_tty: bool, stdout_tty: bool, expected: list[str]) -> None:
    argv = build_run_args(spec(mode=mode), host(stdin_tty=stdin_tty, stdout_tty=stdout_tty)).argv
    assert argv[:3] == ("run", "--rm", "--init")
    assert list(argv[3 : 3 + len(expected)]) == expected
    opts = options(argv)
    assert opts.count("-it") == (1 if "-it" in expected else 0)
    assert opts.count("-i") == (1 if "-i" in expected else 0)
    assert ("--detach" in opts) == (mode == "detach")
    assert "-t" not in opts and "--tty" not in opts


@pytest.mark.parametrize(
    ("stdin_tty", "stdout_tty", "tty"),
    [(False, False, False), (True, False, False), (False, True, False), (True, True, True)],
)
def test_hostfacts_tty_needs_both_ends(stdin_tty: bool, stdout_tty: bool, tty: bool) -> None:
    assert host(stdin_tty=stdin_tty, stdout_tty=stdout_tty).tty is tty


# --------------------------------------------------------------------- host facts


def ids(uid: str, gid: str, home: str, user: str) -> dict[str, str]:
    return {"LOCAL_UID": uid, "LOCAL_GID": gid, "LOCAL_HOME": home, "LOCAL_USER": user}


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        (ALICE, ids("1000", "1000", HOME, "alice")),
        (ROOT, ids("0", "0", "/root", "root")),
        (
            host(uid=501, gid=20, user="bob", home="/Users/bob"),
            ids("501", "20", "/Users/bob", "bob"),
        ),
        (
            host(uid=123456, gid=654321, user="svc", home="/var/lib/svc"),
            ids("123456", "654321", "/var/lib/svc", "svc"),
        ),
    ],
    ids=["alice", "root", "mac-staff-gid", "large-ids"],
)
def test_host_identity_env(facts: HostFacts, expected: dict[str, str]) -> None:
    argv = build_run_args(spec(), facts).argv
    env = env_map(argv)
    for key, value in expected.items():
        assert env[key] == value
        assert env_args(argv).count(f"{key}={value}") == 1
    assert env["AISHELL_PROJECT"] == PROJECT


def test_user_and_group_are_not_set_with_engine_user_flag() -> None:
    """The entrypoint drops privileges itself; `--user` would break the gosu step."""
    argv = build_run_args(spec(), ALICE).argv
    assert "--user" not in argv and "-u" not in options(argv)


@pytest.mark.parametrize(
    ("term", "colorterm", "expected_term", "expected_colorterm"),
    [
        (None, None, "xterm-256color", "truecolor"),
        ("", "", "xterm-256color", "truecolor"),
        ("dumb", None, "dumb", "truecolor"),
        (None, "24bit", "xterm-256color", "24bit"),
        ("tmux-256color", "truecolor", "tmux-256color", "truecolor"),
    ],
)
def test_term_defaults(
    term: str | None, colorterm: str | None, expected_term: str, expected_colorterm: str
) -> None:
    env = env_map(build_run_args(spec(), host(term=term, colorterm=colorterm)).argv)
    assert env["TERM"] == expected_term
    assert env["COLORTERM"] == expected_colorterm


GIT_VARS = ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL")


@pytest.mark.parametrize(
    ("name", "email", "expected"),
    [
        (None, None, {}),
        ("", "", {}),
        (
            "Alice",
            None,
            {"GIT_AUTHOR_NAME": "Alice", "GIT_COMMITTER_NAME": "Alice"},
        ),
        (
            None,
            "a@x.org",
            {"GIT_AUTHOR_EMAIL": "a@x.org", "GIT_COMMITTER_EMAIL": "a@x.org"},
        ),
        (
            "Zoë O'Brien, Jr.",
            "zoe@x.org",
            {
                "GIT_AUTHOR_NAME": "Zoë O'Brien, Jr.",
                "GIT_COMMITTER_NAME": "Zoë O'Brien, Jr.",
                "GIT_AUTHOR_EMAIL": "zoe@x.org",
                "GIT_COMMITTER_EMAIL": "zoe@x.org",
            },
        ),
    ],
)
def test_git_identity(name: str | None, email: str | None, expected: dict[str, str]) -> None:
    argv = build_run_args(spec(), host(git_name=name, git_email=email)).argv
    env = env_map(argv)
    for var in GIT_VARS:
        if var in expected:
            assert env[var] == expected[var]
        else:
            assert var not in env
            assert not any(a.startswith(var) for a in argv)


# ------------------------------------------------------------------ name, labels


@pytest.mark.parametrize("name", [None, ""])
def test_no_name_flag_without_a_name(name: str | None) -> None:
    assert "--name" not in build_run_args(spec(name=name), ALICE).argv


@pytest.mark.parametrize("name", ["aishell-12345678-claude", "aishell-abcdef01-my.agent_2"])
def test_name_flag(name: str) -> None:
    argv = build_run_args(spec(name=name), ALICE).argv
    assert pairs(argv, "--name") == [name]


@pytest.mark.parametrize(
    "labels",
    [
        (),
        (("aishell.project", PROJECT),),
        (
            ("aishell.project", PROJECT),
            ("aishell.project.hash", "deadbeef"),
            ("aishell.kind", "harness"),
            ("aishell.name", "claude"),
            ("aishell.harness", "claude"),
        ),
        (("aishell.project", "/path with spaces/and,comma"),),
    ],
)
def test_labels_managed_first_then_spec_order(labels: tuple[tuple[str, str], ...]) -> None:
    argv = build_run_args(spec(labels=labels), ALICE).argv
    assert pairs(argv, "--label") == [f"{LABEL_MANAGED}=1", *(f"{k}={v}" for k, v in labels)]


# ------------------------------------------------------------- project and cwd


@pytest.mark.parametrize(
    ("project_dir", "workdir"),
    [
        (PROJECT, PROJECT),
        (PROJECT, SUB),
        ("/srv/repo", "/srv/repo/a/b/c"),
        ("/home/alice/link-to-proj", "/home/alice/link-to-proj/sub"),
        ("/", "/"),
    ],
)
def test_project_mount_at_same_path_and_workdir(project_dir: str, workdir: str) -> None:
    argv = build_run_args(spec(project_dir=project_dir, workdir=workdir), ALICE).argv
    mounts = [parse_mount(m) for m in pairs(argv, "--mount")]
    assert mounts[0] == {"type": "bind", "source": project_dir, "target": project_dir}
    assert "readonly" not in mounts[0]
    assert pairs(argv, "-w") == [workdir]
    assert "-v" not in options(argv) and "--volume" not in options(argv)
    assert env_map(argv)["AISHELL_PROJECT"] == project_dir


@pytest.mark.parametrize(
    "project_dir",
    [
        "/home/alice/a,b",
        '/home/alice/say "hi"',
        "/home/alice/x,readonly",
        "/home/alice/x,target=/etc",
        "/home/alice/new\nline",
        '/home/alice/all ," of=them',
    ],
)
def test_project_mount_survives_csv_special_paths(project_dir: str) -> None:
    argv = build_run_args(spec(project_dir=project_dir, workdir=project_dir), ALICE).argv
    parsed = parse_mount(pairs(argv, "--mount")[0])
    assert parsed == {"type": "bind", "source": project_dir, "target": project_dir}


# ------------------------------------------------------------------ mount_arg


@pytest.mark.parametrize(
    ("bind", "expected"),
    [
        (Bind("/a", "/b"), "type=bind,source=/a,target=/b"),
        (Bind("/a", "/b", readonly=True), "type=bind,source=/a,target=/b,readonly"),
        (Bind("/a b", "/c d"), "type=bind,source=/a b,target=/c d"),
        (Bind("/a,b", "/t"), 'type=bind,"source=/a,b",target=/t'),
        (Bind("/s", "/t,u", readonly=True), 'type=bind,source=/s,"target=/t,u",readonly'),
        (Bind('/q"x', "/t"), 'type=bind,"source=/q""x",target=/t'),
        (Bind('/q",x', '/"'), 'type=bind,"source=/q"",x","target=/"""'),
        (Bind("/n\nl", "/t"), 'type=bind,"source=/n\nl",target=/t'),
        (Bind("/a=b", "/t"), "type=bind,source=/a=b,target=/t"),
        (Bind("/a'b", "/t"), "type=bind,source=/a'b,target=/t"),
    ],
)
def test_mount_arg_exact(bind: Bind, expected: str) -> None:
    assert mount_arg(bind) == expected


@pytest.mark.parametrize(
    "path",
    [
        "/plain",
        "/with space",
        "/comma,inside",
        "/,leading",
        "/trailing,",
        '/"quoted"',
        '/mix,"of",both',
        "/x,readonly",
        "/x,type=volume",
        "/x,target=/etc",
        "/new\nline",
        "/unicodé/路径",
    ],
)
@pytest.mark.parametrize("readonly", [False, True])
def test_mount_arg_round_trips_through_csv(path: str, readonly: bool) -> None:
    parsed = parse_mount(mount_arg(Bind(path, path + "-t", readonly)))
    expected: dict[str, str | bool] = {"type": "bind", "source": path, "target": path + "-t"}
    if readonly:
        expected["readonly"] = True
    assert parsed == expected


# -------------------------------------------------------------- volume and binds


@pytest.mark.parametrize("volume", [None, ""])
def test_no_tools_mount_without_volume(volume: str | None) -> None:
    argv = build_run_args(spec(harness_volume=volume), ALICE).argv
    assert not any("/tools" in m for m in pairs(argv, "--mount"))


@pytest.mark.parametrize("volume", ["aishell-harness-0123456789ab", "aishell-harness-ffffffffffff"])
def test_harness_volume_readonly_at_tools(volume: str) -> None:
    argv = build_run_args(spec(harness_volume=volume), ALICE).argv
    tools = [parse_mount(m) for m in pairs(argv, "--mount") if "target=/tools" in m]
    assert tools == [{"type": "volume", "source": volume, "target": "/tools", "readonly": True}]


@pytest.mark.parametrize(
    "binds",
    [
        (),
        (Bind(f"{HOME}/.claude", f"{HOME}/.claude"),),
        (
            Bind(f"{HOME}/.claude", f"{HOME}/.claude"),
            Bind(f"{HOME}/.claude.json", f"{HOME}/.claude.json"),
            Bind("/data", "/mnt/data", readonly=True),
            Bind("/x,y", "/x,y", readonly=False),
        ),
    ],
)
def test_binds_follow_project_and_volume_in_order(binds: tuple[Bind, ...]) -> None:
    argv = build_run_args(spec(binds=binds, harness_volume="aishell-harness-x"), ALICE).argv
    mounts = pairs(argv, "--mount")
    assert len(mounts) == 2 + len(binds)
    assert parse_mount(mounts[0])["target"] == PROJECT
    assert parse_mount(mounts[1])["target"] == "/tools"
    for text, bind in zip(mounts[2:], binds, strict=True):
        assert text == mount_arg(bind)
        parsed = parse_mount(text)
        assert parsed["source"] == bind.source
        assert parsed["target"] == bind.target
        assert ("readonly" in parsed) is bind.readonly


# ------------------------------------------------------------------------- env

SECRET = "s3cr3t-VALUE-that-must-not-leak"


@pytest.mark.parametrize(
    ("host_env", "entries", "argv_env", "child_env"),
    [
        # passthrough: only when set on the host, by name only
        ({"ANTHROPIC_API_KEY": SECRET}, [("ANTHROPIC_API_KEY", None)], ["ANTHROPIC_API_KEY"], {}),
        ({}, [("ANTHROPIC_API_KEY", None)], [], {}),
        ({"OTHER": "x"}, [("ANTHROPIC_API_KEY", None)], [], {}),
        ({"EMPTY": ""}, [("EMPTY", None)], ["EMPTY"], {}),
        # literal values: name in argv, value in the child environment
        ({}, [("DB_PASSWORD", SECRET)], ["DB_PASSWORD"], {"DB_PASSWORD": SECRET}),
        (
            {"DB_PASSWORD": "host-value"},
            [("DB_PASSWORD", SECRET)],
            ["DB_PASSWORD"],
            {"DB_PASSWORD": SECRET},
        ),
        ({}, [("EMPTY_LITERAL", "")], ["EMPTY_LITERAL"], {"EMPTY_LITERAL": ""}),
        (
            {},
            [("MULTI", "line1\nline2=x; rm -rf /")],
            ["MULTI"],
            {"MULTI": "line1\nline2=x; rm -rf /"},
        ),
        # engine CLI variables: NAME=value in argv, never in the child env
        ({}, [("PATH", "/opt/bin:/usr/bin")], ["PATH=/opt/bin:/usr/bin"], {}),
        ({}, [("DOCKER_HOST", "tcp://x:2375")], ["DOCKER_HOST=tcp://x:2375"], {}),
        ({}, [("HOME", "/home/other")], ["HOME=/home/other"], {}),
        # passthrough of an engine CLI variable stays by name
        ({"PATH": "/usr/bin"}, [("PATH", None)], ["PATH"], {}),
        # mixed, order kept
        (
            {"A": "1", "C": "3"},
            [("A", None), ("B", None), ("C", None), ("D", SECRET), ("TMPDIR", "/t")],
            ["A", "C", "D", "TMPDIR=/t"],
            {"D": SECRET},
        ),
    ],
)
def test_config_env(
    host_env: dict[str, str],
    entries: list[tuple[str, str | None]],
    argv_env: list[str],
    child_env: dict[str, str],
) -> None:
    result = build_run_args(spec(env=tuple(entries)), host(env=host_env))
    fixed = len(env_args(build_run_args(spec(), host(env=host_env)).argv))
    assert env_args(result.argv)[fixed:] == argv_env
    assert result.env == child_env


@pytest.mark.parametrize("name", sorted(ENGINE_CLI_VARIABLES))
def test_every_engine_cli_variable_goes_into_argv_not_child_env(name: str) -> None:
    result = build_run_args(spec(env=((name, "/some/value"),)), ALICE)
    assert f"{name}=/some/value" in env_args(result.argv)
    assert name not in result.env


def test_engine_cli_variables_cover_the_engine_steering_ones() -> None:
    steering = ("PATH", "HOME", "DOCKER_HOST", "DOCKER_CONFIG", "DOCKER_CONTEXT", "CONTAINER_HOST")
    assert set(steering) <= ENGINE_CLI_VARIABLES


@pytest.mark.parametrize(
    "where",
    ["env", "pre_start", "host_env", "all"],
)
def test_secret_values_never_appear_in_argv(where: str) -> None:
    secret_env = (("API_TOKEN", SECRET), ("OTHER_SECRET", SECRET + "-2"))
    host_env = {"ANTHROPIC_API_KEY": SECRET + "-host", "API_TOKEN": SECRET + "-h2"}
    kwargs: dict[str, Any] = {}
    if where in ("env", "all"):
        kwargs["env"] = secret_env
    if where in ("pre_start", "all"):
        kwargs["pre_start"] = f"export T={SECRET}-pre && ./start"
    if where in ("host_env", "all"):
        kwargs.setdefault("env", ())
        kwargs["env"] = (*kwargs["env"], ("ANTHROPIC_API_KEY", None))
    result = build_run_args(spec(**kwargs), host(env=host_env))
    for arg in result.argv:
        assert SECRET not in arg
    if where in ("env", "all"):
        assert result.env["API_TOKEN"] == SECRET
        assert result.env["OTHER_SECRET"] == SECRET + "-2"
    # host values are never copied anywhere: the engine inherits them
    assert SECRET + "-host" not in result.env.values()


@pytest.mark.parametrize(
    ("pre_start", "in_env"),
    [
        (None, False),
        ("", False),
        ("npm run dev", True),
        ("a && b; c | d > /tmp/x 'q' \"dq\" $HOME", True),
    ],
)
def test_pre_start_only_through_child_env(pre_start: str | None, in_env: bool) -> None:
    result = build_run_args(spec(pre_start=pre_start), ALICE)
    assert ("AISHELL_PRE_START" in env_args(result.argv)) is in_env
    assert not any(a.startswith("AISHELL_PRE_START=") for a in result.argv)
    if in_env:
        assert result.env == {"AISHELL_PRE_START": pre_start}
        assert pre_start not in result.argv
    else:
        assert "AISHELL_PRE_START" not in result.env


@pytest.mark.parametrize(("tmux", "expected"), [(False, False), (True, True)])
def test_tmux_flag(tmux: bool, expected: bool) -> None:
    argv = build_run_args(spec(tmux=tmux), ALICE).argv
    assert ("AISHELL_TMUX=1" in env_args(argv)) is expected


@pytest.mark.parametrize(
    "fixed_env",
    [
        (),
        (("DISABLE_AUTOUPDATER", "1"),),
        (("DISABLE_AUTOUPDATER", "1"), ("IS_SANDBOX", "1"), ("OPENSPEC_TELEMETRY", "0")),
    ],
)
def test_fixed_env_in_argv_after_identity(fixed_env: tuple[tuple[str, str], ...]) -> None:
    argv = build_run_args(spec(fixed_env=fixed_env), ALICE).argv
    envs = env_args(argv)
    assert envs[: len(BASE_ENV_ALICE) // 2] == list(BASE_ENV_ALICE[1::2])
    assert envs[len(BASE_ENV_ALICE) // 2 :] == [f"{k}={v}" for k, v in fixed_env]


# ------------------------------------------------------------------- ports, args


@pytest.mark.parametrize(
    "ports",
    [(), ("8080:80",), ("127.0.0.1:3000:3000", "[::1]:53:53/udp", "9000-9002:9000-9002")],
)
def test_ports(ports: tuple[str, ...]) -> None:
    argv = build_run_args(spec(ports=ports), ALICE).argv
    assert pairs(argv, "-p") == list(ports)
    assert "--publish" not in argv


@pytest.mark.parametrize(
    "docker_args",
    [
        (),
        ("--cpus=2",),
        ("--memory", "4g", "--network", "none"),
        ("--entrypoint", "/bin/sh"),
    ],
)
def test_docker_args_right_before_image(docker_args: tuple[str, ...]) -> None:
    s = spec(docker_args=docker_args, ports=("1:1",), pre_start="x", command=("echo", "hi"))
    argv = build_run_args(s, ALICE).argv
    image_at = argv.index(IMAGE)
    assert argv[image_at - len(docker_args) : image_at] == docker_args
    assert argv[image_at + 1 :] == ("echo", "hi")


@pytest.mark.parametrize(
    "command",
    [
        (),
        ("bash",),
        ("claude", "--help"),
        ("sh", "-c", "echo $HOME; ls -la | wc -l"),
        ("--rm", "-e", "X=1", "aishell:base"),  # looks like options, is the command
    ],
)
def test_image_then_command_last(command: tuple[str, ...]) -> None:
    argv = build_run_args(spec(command=command), ALICE).argv
    assert argv[-len(command) - 1 :] == (IMAGE, *command)


def test_option_order() -> None:
    s = spec(
        mode="interactive",
        name="n",
        labels=(("k", "v"),),
        harness_volume="vol",
        binds=(Bind("/b", "/b"),),
        fixed_env=(("F", "1"),),
        env=(("S", "secret"),),
        ports=("1:1",),
        pre_start="p",
        docker_args=("--cpus=1",),
        command=("cmd",),
    )
    argv = build_run_args(s, host(stdin_tty=True, stdout_tty=True)).argv
    order = [
        argv.index("-it"),
        argv.index("--name"),
        argv.index("--label"),
        argv.index(f"type=bind,source={PROJECT},target={PROJECT}"),
        argv.index("-w"),
        argv.index("LOCAL_UID=1000"),
        argv.index("F=1"),
        argv.index("type=volume,source=vol,target=/tools,readonly"),
        argv.index("type=bind,source=/b,target=/b"),
        argv.index("S"),
        argv.index("-p"),
        argv.index("AISHELL_PRE_START"),
        argv.index("--cpus=1"),
        argv.index(IMAGE),
        argv.index("cmd"),
    ]
    assert order == sorted(order)
    assert argv[-2:] == (IMAGE, "cmd")


def test_pure_same_input_same_output_and_inputs_untouched() -> None:
    s = spec(env=(("S", "v"),), pre_start="p")
    h = host(env={"A": "1"})
    first = build_run_args(s, h)
    first.env["INJECTED"] = "x"
    second = build_run_args(s, h)
    assert second.argv == first.argv
    assert "INJECTED" not in second.env
    assert dict(h.env) == {"A": "1"}


def test_host_env_is_not_copied_into_child_env() -> None:
    result = build_run_args(spec(), host(env={"ANTHROPIC_API_KEY": SECRET, "PATH": "/bin"}))
    assert result.env == {}
