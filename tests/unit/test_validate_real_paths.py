"""Mount validation on what a path really is, and the options of issue 11
(`aishell.security.validate`, pure: the real paths are given as tables)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from aishell.security import validate
from aishell.security.validate import (
    check_docker_args,
    check_env,
    check_mounts,
    check_project_root,
    host_paths,
    leaves_project,
)

HOME = "/home/u"
PROJECT = "/home/u/src/app"


def flagged(tokens: list[str], **kw: object) -> list[str]:
    kw.setdefault("home", HOME)
    kw.setdefault("project", (PROJECT,))
    return [d.what for d in check_docker_args(tokens, **kw)]  # type: ignore[arg-type]


# ------------------------------------------------------------------ real paths

REAL_CASES = [
    # (source as written, its real path, flagged?)
    ("/home/u/src/app/data", "/home/u/.ssh", True),
    ("/home/u/link", "/home/u/.aws/credentials", True),
    ("/srv/x", "/", True),
    ("/srv/x", "/etc", True),
    ("/srv/x", "/var/run/docker.sock", True),
    ("/srv/x", "/home/u", True),
    ("/home/u/src/app/data", "/home/u/src/app/real-data", False),
    ("/srv/x", "/srv/y", False),
    ("/srv/x", "/srv/x", False),
]


@pytest.mark.parametrize(("source", "real", "bad"), REAL_CASES)
def test_mounts_are_judged_by_their_real_path(source: str, real: str, bad: bool) -> None:
    dangers = check_mounts([(source, "/m")], home=HOME, real={source: real})
    assert bool(dangers) is bad
    if bad and real != source:
        assert real in dangers[0].why and "symlink" in dangers[0].why
    assert bool(flagged(["-v", f"{source}:/m"], real={source: real})) is bad
    assert bool(flagged(["--mount", f"type=bind,src={source},dst=/m"], real={source: real})) is bad


def test_without_real_paths_only_the_spelling_is_judged() -> None:
    assert check_mounts([("/home/u/src/app/data", "/m")], home=HOME) == []


def test_the_home_through_a_symlink() -> None:
    """The home is /home/u, reached through a link to /data/u: its real .ssh is flagged."""
    real = {"/opt/keys": "/data/u/.ssh"}
    assert check_mounts([("/opt/keys", "/k")], home=HOME, real=real) == []
    dangers = check_mounts([("/opt/keys", "/k")], home=HOME, real=real, real_home="/data/u")
    assert dangers and "SSH" in dangers[0].why
    assert check_mounts([("/data/u/.ssh", "/k")], home=HOME, real_home="/data/u")


# ------------------------------------------------------------------ new path rules

NEW_FLAGGED_SOURCES = [
    "/home/u/.aishell",
    "/home/u/.aishell/projects",
    "/home/u/.bashrc",
    "/home/u/.bash_profile",
    "/home/u/.profile",
    "/home/u/.zshrc",
    "/home/u/.zshenv",
    "/home/u/.config/fish",
    "/home/u/.config/fish/config.fish",
    "/home/u/.local/bin",
    "/home/u/.local/bin/git",
    "/home/u/bin",
    "/home/u/.config/autostart",
    "/home/u/.config/systemd/user",
    "/home/u/.gitconfig",
    "/home/u/.Xauthority",
    "/home/u/.claude",
    "/home/u/.claude.json",
    "/home/u/.codex",
    "/home/u/.gemini/settings.json",
    "/home/u/.config/opencode",
    "/home/u/.local/share/opencode",
    "/home/u/.pi",
    "/tmp",
    "/var/tmp",
    "/dev/shm",
    "/var",  # holds /var/tmp
]
NEW_CLEAN_SOURCES = [
    "/tmp/my-build-output",  # a directory of your own in /tmp is not all of /tmp
    "/var/tmp/cache/x",
    "/home/u/.bashrc.d.notes",
    "/home/u/binaries",
    "/home/u/.local/share/fonts",
    "/home/u/.config/opencode-notes",
    "/home/u/.aishellx",
]


@pytest.mark.parametrize("source", NEW_FLAGGED_SOURCES)
def test_new_sensitive_locations(source: str) -> None:
    assert check_mounts([(source, "/m")], home=HOME, aishell_home="/home/u/.aishell"), source


@pytest.mark.parametrize("source", NEW_CLEAN_SOURCES)
def test_new_locations_are_not_overbroad(source: str) -> None:
    assert check_mounts([(source, "/m")], home=HOME, aishell_home="/home/u/.aishell") == []


def test_aishell_home_elsewhere() -> None:
    dangers = check_mounts([("/srv/ai", "/m")], home=HOME, aishell_home="/srv/ai")
    assert dangers and "aishell's own home" in dangers[0].why


# ------------------------------------------------------------------ options

OPTION_CASES: list[tuple[list[str], bool]] = [
    # --volumes-from
    (["--volumes-from", "aishell-1234-claude"], True),
    (["--volumes-from=web"], True),
    (["--volumes-from", "web:ro"], True),
    # --env-file outside the project (inside: the agent sees it anyway)
    (["--env-file", "/home/u/.aws/env"], True),
    (["--env-file=/etc/environment"], True),
    (["--env-file", "~/.env"], True),
    (["--env-file", "/home/u/src/app/.env"], False),
    (["--env-file", "relative.env"], False),
    # joining another container's namespace
    *(([f"--{o}", "container:web"], True) for o in ("network", "net", "pid", "ipc", "uts")),
    *(([f"--{o}=container:web"], True) for o in ("network", "net", "pid", "ipc", "uts")),
    (["--userns", "container:web"], True),
    (["--network", "name=container:web"], True),
    (["--pod", "mypod"], True),
    (["--pod=new:x"], True),
    # custom seccomp and AppArmor profiles
    (["--security-opt", "seccomp=/tmp/allow-all.json"], True),
    (["--security-opt=seccomp:/x.json"], True),
    (["--security-opt", "apparmor=my-profile"], True),
    (["--security-opt", "no-new-privileges"], False),
    # volume options that mount host paths or remote shares
    (["--mount", "type=volume,src=v,dst=/k,volume-opt=o=bind,volume-opt=device=/home/u/.ssh"],
     True),
    (["--mount", "type=volume,dst=/k,volume-opt=type=nfs,volume-opt=device=:/export"], True),
    (["--mount", "type=volume,dst=/k,volume-driver=local,volume-opt=type=none"], True),
    (["--mount", "type=volume,src=data,dst=/data"], False),
    (["--mount", "type=bind,src=/home/u/src/app/x,dst=/x,bind-propagation=rshared"], True),
    (["--mount", "type=bind,src=/home/u/src/app/x,dst=/x,bind-propagation=rprivate"], False),
    (["--volume-driver", "sshfs"], True),
    (["--volume-driver=local"], False),
    # groups
    (["--group-add", "docker"], True),
    (["--group-add=999"], True),
    (["--group-add", "keep-groups"], True),
    (["--annotation", "run.oci.keep_original_groups=1"], True),
    (["--annotation", "run.oci.keep_original_groups=0"], False),
    (["--annotation", "org.example=1"], False),
    # an engine endpoint inside
    (["-e", "DOCKER_HOST=tcp://10.0.0.1:2375"], True),
    (["-e", "DOCKER_HOST"], True),
    (["--env", "DOCKER_HOST=unix:///x"], True),
    (["--env=CONTAINER_HOST=unix:///run/podman.sock"], True),
    (["-eDOCKER_HOST=tcp://x"], True),
    (["-e", "DOCKER_HOSTNAME=x"], False),
    (["-e", "X=DOCKER_HOST"], False),
    # runtimes
    (["--runtime", "nvidia"], True),
    (["--runtime=sysbox-runc"], True),
    (["--runtime", "runc"], False),
    (["--runtime=crun"], False),
    (["--runtime", "runsc"], False),
    # sysctls
    (["--sysctl", "kernel.core_pattern=|/x"], True),
    (["--sysctl=kernel.shm_rmid_forced=1"], True),
    (["--sysctl", "KERNEL.msgmax=1"], True),
    (["--sysctl", "net.ipv4.ip_forward=1"], False),
    # the rest
    (["--cgroup-parent", "/"], True),
    (["--cgroup-parent=system.slice"], True),
    (["--gpus", "all"], True),
    (["--device-cgroup-rule", "a *:* rwm"], True),
]  # fmt: skip


@pytest.mark.parametrize(("tokens", "bad"), OPTION_CASES, ids=repr)
def test_options_of_issue_11(tokens: list[str], bad: bool) -> None:
    assert bool(flagged(tokens)) is bad


ONE_ITEM = [c for c in OPTION_CASES if c[1] and len(c[0]) == 2 and " " not in c[0][1]]


@pytest.mark.parametrize(("tokens", "bad"), ONE_ITEM, ids=repr)
def test_the_same_options_as_one_list_item(tokens: list[str], bad: bool) -> None:
    """`"--group-add docker"` as one list item is the same option."""
    assert set(flagged([" ".join(tokens)])) == {" ".join(tokens)}


def test_values_of_the_new_options_are_not_options() -> None:
    assert flagged(["--volumes-from", "--privileged"]) == ["--volumes-from --privileged"]
    assert flagged(["--label", "x=--volumes-from"]) == []
    assert flagged(["--group-add", "--network=host"]) == ["--group-add --network=host"]


def test_volume_opt_device_is_judged_as_a_path() -> None:
    dangers = check_docker_args(
        ["--mount", "type=volume,dst=/k,volume-opt=o=bind,volume-opt=device=/home/u/data"],
        home=HOME,
        real={"/home/u/data": "/home/u/.ssh"},
    )
    assert any("SSH" in d.why for d in dangers)


# ------------------------------------------------------------------ env, project


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["DOCKER_HOST"], ["DOCKER_HOST"]),
        (["CONTAINER_HOST", "X"], ["CONTAINER_HOST"]),
        (["DOCKER_CONFIG", "HOME"], []),
    ],
)
def test_check_env(names: list[str], expected: list[str]) -> None:
    assert [d.what for d in check_env(names)] == expected


@pytest.mark.parametrize(
    ("root", "real", "bad"),
    [
        ("/home/u", None, True),  # no git repository above $HOME: the whole home
        ("/home", None, True),
        ("/", None, True),
        ("/home/u/.aishell", None, True),
        ("/home/u/.ssh", None, True),
        ("/etc", None, True),
        ("/home/u/src/app", None, False),
        ("/home/u/src/app", "/home/u", True),  # a symlink to the home
        ("/srv/work", None, False),
        ("/tmp/x", None, False),
    ],
)
def test_check_project_root(root: str, real: str | None, bad: bool) -> None:
    dangers = check_project_root(root, real_root=real, home=HOME, aishell_home="/home/u/.aishell")
    assert bool(dangers) is bad
    if bad:
        assert dangers[0].why.startswith("the project directory ")


def test_project_root_holding_aishell_home_elsewhere() -> None:
    (d,) = check_project_root("/srv", home=HOME, aishell_home="/srv/ai-home")
    assert "aishell's own home" in d.why


@pytest.mark.parametrize(
    ("source", "real", "leaves"),
    [
        ("/home/u/src/app/data", "/home/u/.ssh", True),
        ("/home/u/src/app/data", "/home/u/src/app/other", False),
        ("/home/u/src/app/a/../b", "/srv/b", True),
        ("/srv/data", "/home/u/.ssh", False),  # spelled outside: the user wrote it
        ("/home/u/src/app", "/home/u/src/app", False),
    ],
)
def test_leaves_project(source: str, real: str, leaves: bool) -> None:
    assert leaves_project(source, real, root=PROJECT, real_root=PROJECT) is leaves


def test_leaves_project_through_a_symlinked_root() -> None:
    assert leaves_project(
        "/home/u/app/data", "/home/u/.ssh", root="/home/u/app", real_root="/data/app"
    )
    assert not leaves_project(
        "/home/u/app/data", "/data/app/data", root="/home/u/app", real_root="/data/app"
    )


def test_host_paths_lists_what_to_resolve() -> None:
    tokens = [
        "-v", "~/x:/x",
        "--mount", "type=bind,src=/a,dst=/a",
        "--mount", "type=volume,dst=/k,volume-opt=device=/dev/sdb1",
        "--env-file", "/e/env",
        "-v", "named:/n",
        "--env-file", "rel.env",
    ]  # fmt: skip
    assert host_paths(tokens, ["/m1", "/m1"], home=HOME) == [
        "/m1",
        "/home/u/x",
        "/a",
        "/dev/sdb1",
        "/e/env",
    ]


def test_real_paths_from_the_filesystem(tmp_path: Path) -> None:
    """What the caller does: realpath of each listed path (here, a planted link)."""
    ssh = tmp_path / "home" / ".ssh"
    ssh.mkdir(parents=True)
    project = tmp_path / "home" / "app"
    project.mkdir()
    os.symlink(ssh, project / "data")
    source = str(project / "data")
    real = {p: os.path.realpath(p) for p in host_paths([], [source])}
    assert real[source] == str(ssh)
    assert check_mounts([(source, "/d")], home=str(tmp_path / "home"), real=real)
    assert validate.leaves_project(source, real[source], root=str(project), real_root=str(project))
