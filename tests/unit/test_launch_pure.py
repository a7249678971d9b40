"""Pure helpers of the launch pipeline (`aishell.launch.*`)."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from aishell.config import Config, EnvEntry
from aishell.errors import ConfigError, UsageError
from aishell.harnesses import BY_NAME, HARNESS_NAMES, TOOL_NAMES
from aishell.launch import request
from aishell.launch.assemble import command_for
from aishell.launch.request import LaunchRequest, default_name, setup_hint, validate_name
from aishell.launch.resolve import config_env


@pytest.fixture(autouse=True)
def _plain_output(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("FORCE_COLOR", raising=False)


def config(**kwargs: object) -> Config:
    if "harness_args" in kwargs:
        kwargs["harness_args"] = MappingProxyType(dict(kwargs["harness_args"]))  # type: ignore[call-overload]
    return Config(**kwargs)  # type: ignore[arg-type]


# ---------------------------------------------------------------- validate_name


@pytest.mark.parametrize(
    "name",
    [
        "a",
        "Z",
        "0",
        "claude",
        "review-2",
        "my_agent",
        "v1.2.3",
        "a-",
        "a.",
        "a_",
        "A" * 46,
        "9" + "-" * 45,
        "x.y_z-W",
    ],
)
def test_valid_names(name: str) -> None:
    validate_name(name)


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "empty"),
        ("a" * 47, "47 characters"),
        ("a" * 100, "100 characters"),
        ("-a", "invalid"),
        ("-", "invalid"),
        (".hidden", "invalid"),
        ("_x", "invalid"),
        ("a/b", "invalid"),
        ("../x", "invalid"),
        ("a b", "invalid"),
        (" a", "invalid"),
        ("a:b", "invalid"),
        ("a@b", "invalid"),
        ("a;rm", "invalid"),
        ("$(id)", "invalid"),
        ("a\tb", "invalid"),
        ("\na", "invalid"),
        ("ä", "invalid"),
        ("a\u00e4", "invalid"),
        ("a*", "invalid"),
        ("a=b", "invalid"),
        ("a,b", "invalid"),
    ],
)
def test_invalid_names(name: str, fragment: str) -> None:
    with pytest.raises(UsageError) as info:
        validate_name(name)
    assert fragment in info.value.message
    assert info.value.hint
    assert info.value.exit_code == 2


@pytest.mark.parametrize("name", ["abc\n", "a\n"])
def test_trailing_newline_name_rejected(name: str) -> None:
    with pytest.raises(UsageError):
        validate_name(name)


def test_max_name_is_46() -> None:
    assert request.MAX_NAME == 46


# ----------------------------------------------------------------- default_name


@pytest.mark.parametrize(
    ("req", "expected"),
    [
        *[(LaunchRequest(kind="harness", harness=h), h) for h in HARNESS_NAMES],
        (LaunchRequest(kind="shell"), "shell"),
        (LaunchRequest(kind="exec", args=("ls",)), "exec"),
        (LaunchRequest(kind="gitleaks"), "gitleaks"),
        (LaunchRequest(kind="shell", name="custom"), "shell"),  # --name is applied elsewhere
    ],
)
def test_default_name(req: LaunchRequest, expected: str) -> None:
    assert default_name(req) == expected
    validate_name(default_name(req))


# ------------------------------------------------------------------ command_for

SKIP = "--dangerously-skip-permissions"
CODEX_FIXED = ("-c", "check_for_update_on_startup=false")


@pytest.mark.parametrize(
    ("env_value", "skip"),
    [
        (None, True),
        ("", True),
        ("true", True),
        ("1", True),
        ("0", True),
        ("no", True),
        ("false", False),
        ("False", False),
        ("FALSE", False),
    ],
)
def test_claude_skip_permissions(env_value: str | None, skip: bool) -> None:
    environ = {} if env_value is None else {"AISHELL_SKIP_PERMISSIONS": env_value}
    cmd = command_for(LaunchRequest(kind="harness", harness="claude"), config(), environ)
    assert cmd == (("claude", SKIP) if skip else ("claude",))


AUTONOMY = {
    "claude": ("--dangerously-skip-permissions",),
    "opencode": ("--auto",),
    "codex": ("--dangerously-bypass-approvals-and-sandbox",),
    "gemini": ("--yolo", "--skip-trust"),
    "pi": ("--approve",),
}


@pytest.mark.parametrize("harness", HARNESS_NAMES)
def test_every_agent_gets_its_autonomy_flags_unless_opted_out(harness: str) -> None:
    tool = BY_NAME[harness]
    req = LaunchRequest(kind="harness", harness=harness, args=("x",))
    on = command_for(req, config(), {})
    assert on == (tool.command, *tool.fixed_args, *AUTONOMY[harness], "x")
    off = command_for(req, config(), {"AISHELL_SKIP_PERMISSIONS": "false"})
    # (Codex's own sandbox cannot work in a container: it stays off, approvals come back)
    kept = ("--sandbox", "danger-full-access") if harness == "codex" else ()
    assert off == (tool.command, *tool.fixed_args, *kept, "x")


@pytest.mark.parametrize("sub", ["auth", "install", "update", "mcp", "config"])
def test_pi_subcommands_get_no_autonomy_flag(sub: str) -> None:
    req = LaunchRequest(kind="harness", harness="pi", args=(sub, "login"))
    assert command_for(req, config(), {}) == ("pi", sub, "login")


@pytest.mark.parametrize(
    ("harness", "harness_args", "cli_args", "environ", "expected"),
    [
        ("claude", {}, (), {}, ("claude", SKIP)),
        ("claude", {}, ("--help",), {}, ("claude", SKIP, "--help")),
        (
            "claude",
            {"claude": ("--model", "opus")},
            ("-p", "hi"),
            {},
            ("claude", SKIP, "--model", "opus", "-p", "hi"),
        ),
        (
            "claude",
            {"claude": ("--model", "opus")},
            ("-p", "hi"),
            {"AISHELL_SKIP_PERMISSIONS": "false"},
            ("claude", "--model", "opus", "-p", "hi"),
        ),
        (
            "claude",
            {"codex": ("--other",)},
            ("x",),
            {},
            ("claude", SKIP, "x"),
        ),
        ("codex", {}, (), {}, ("codex", *CODEX_FIXED, *AUTONOMY["codex"])),
        (
            "codex",
            {"codex": ("--full-auto",)},
            ("exec", "do it"),
            {},
            ("codex", *CODEX_FIXED, *AUTONOMY["codex"], "--full-auto", "exec", "do it"),
        ),
        ("opencode", {"opencode": ("run",)}, (), {}, ("opencode", "--auto", "run")),
        ("gemini", {}, ("-p", "x"), {}, ("gemini", "--yolo", "--skip-trust", "-p", "x")),
        (
            "pi",
            {"pi": ()},
            ("a b", "$HOME", ";"),
            {},
            ("pi", "--approve", "a b", "$HOME", ";"),
        ),
    ],
)
def test_harness_command(
    harness: str,
    harness_args: dict[str, tuple[str, ...]],
    cli_args: tuple[str, ...],
    environ: dict[str, str],
    expected: tuple[str, ...],
) -> None:
    req = LaunchRequest(kind="harness", harness=harness, args=cli_args)
    assert command_for(req, config(harness_args=harness_args), environ) == expected


def test_harness_args_accept_lists() -> None:
    req = LaunchRequest(kind="harness", harness="gemini", args=("x",))
    cfg = config(harness_args={"gemini": ["--a", "--b"]})
    assert command_for(req, cfg, {}) == ("gemini", "--yolo", "--skip-trust", "--a", "--b", "x")


@pytest.mark.parametrize(
    "args",
    [
        ("ls",),
        ("ls", "-la"),
        ("sh", "-c", "echo $HOME; exit 3"),
        ("--help",),
        ("claude", "--help"),
        ("env", "AISHELL_SKIP_PERMISSIONS=false"),
    ],
)
@pytest.mark.parametrize("environ", [{}, {"AISHELL_SKIP_PERMISSIONS": "false"}])
def test_exec_passes_args_verbatim(args: tuple[str, ...], environ: dict[str, str]) -> None:
    cfg = config(harness_args={"claude": ("--model", "x")})
    assert command_for(LaunchRequest(kind="exec", args=args), cfg, environ) == args


def test_shell_is_bash() -> None:
    assert command_for(LaunchRequest(kind="shell"), config(), {}) == ("bash",)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), ("gitleaks", "detect", "--no-git", "--verbose", "--source", ".")),
        (("git", "-v"), ("gitleaks", "git", "-v")),
        (("dir", "src"), ("gitleaks", "dir", "src")),
        (("version",), ("gitleaks", "version")),
    ],
)
def test_gitleaks_command(args: tuple[str, ...], expected: tuple[str, ...]) -> None:
    assert command_for(LaunchRequest(kind="gitleaks", args=args), config(), {}) == expected


# ------------------------------------------------------------------- setup_hint


@pytest.mark.parametrize(
    ("tools", "add", "expected"),
    [
        ({}, "claude", "run 'aishell setup --with-claude'"),
        ({"claude": "latest"}, "codex", "run 'aishell setup --with-claude --with-codex'"),
        (
            {"codex": "1.2.3"},
            "claude",
            "run 'aishell setup --with-claude --with-codex=1.2.3'",
        ),
        (
            {"pi": "latest", "gemini": "2.0.0-rc.1"},
            "opencode",
            "run 'aishell setup --with-gemini=2.0.0-rc.1 --with-opencode --with-pi'",
        ),
        # already selected: the existing pin is kept, not reset to latest
        ({"claude": "1.0.0"}, "claude", "run 'aishell setup --with-claude=1.0.0'"),
        (
            {"claude": "latest", "openspec": "0.1.0"},
            None,
            "run 'aishell setup --with-claude --with-openspec=0.1.0'",
        ),
    ],
)
def test_setup_hint_keeps_existing_selection(
    tools: dict[str, str], add: str | None, expected: str
) -> None:
    assert setup_hint(tools, add) == expected


def test_setup_hint_does_not_mutate_tools() -> None:
    tools = {"codex": "latest"}
    setup_hint(tools, "claude")
    assert tools == {"codex": "latest"}


@pytest.mark.parametrize(
    "tools",
    [{"claude": "latest"}, {"codex": "1.2.3", "pi": "latest"}, dict.fromkeys(TOOL_NAMES, "latest")],
)
def test_setup_hint_flags_are_accepted_by_setup(tools: dict[str, str]) -> None:
    """Every flag in the hint is one `aishell setup` accepts, with a valid pin."""
    from aishell.commands.setup import build_parser, selection_from

    hint = setup_hint(tools)
    flags = hint.removeprefix("run 'aishell setup ").removesuffix("'").split()
    ns = build_parser().parse_args(flags)
    assert selection_from(ns) == tools


# ------------------------------------------------------------------- config_env

SOURCES = ("/home/alice/.aishell/config.yaml", "/p/.aishell/config.yaml")


@pytest.mark.parametrize(
    "name",
    [
        "LOCAL_UID",
        "LOCAL_GID",
        "LOCAL_HOME",
        "LOCAL_USER",
        "AISHELL_PRE_START",
        "AISHELL_TMUX",
        "AISHELL_PROJECT",
        "AISHELL_ANYTHING",
        "AISHELL_",
    ],
)
@pytest.mark.parametrize("value", [None, "x"])
def test_config_env_rejects_reserved(name: str, value: str | None) -> None:
    cfg = config(env=(EnvEntry(name, value),), sources=SOURCES)
    with pytest.raises(ConfigError) as info:
        config_env(cfg, {name: "host"})
    assert name in info.value.message
    assert "set by aishell" in info.value.message
    assert info.value.hint and SOURCES[1] in info.value.hint


@pytest.mark.parametrize(
    ("entries", "host_env", "expected", "warned"),
    [
        ([], {}, [], []),
        ([EnvEntry("FOO", "bar")], {}, [("FOO", "bar")], []),
        ([EnvEntry("FOO", "")], {}, [("FOO", "")], []),
        ([EnvEntry("FOO", None)], {"FOO": "x"}, [("FOO", None)], []),
        ([EnvEntry("FOO", None)], {"FOO": ""}, [("FOO", None)], []),
        ([EnvEntry("FOO", None)], {}, [], ["FOO"]),
        ([EnvEntry("FOO", None)], {"foo": "x"}, [], ["FOO"]),
        (
            [EnvEntry("A", None), EnvEntry("B", "b"), EnvEntry("C", None), EnvEntry("D", None)],
            {"A": "1", "D": "4"},
            [("A", None), ("B", "b"), ("D", None)],
            ["C"],
        ),
        ([EnvEntry("LOCAL_NAME", "x")], {}, [("LOCAL_NAME", "x")], []),
        ([EnvEntry("MY_AISHELL_X", "x")], {}, [("MY_AISHELL_X", "x")], []),
        ([EnvEntry("aishell_lower", "x")], {}, [("aishell_lower", "x")], []),
    ],
)
def test_config_env(
    capsys: pytest.CaptureFixture[str],
    entries: list[EnvEntry],
    host_env: dict[str, str],
    expected: list[tuple[str, str | None]],
    warned: list[str],
) -> None:
    cfg = config(env=tuple(entries), sources=SOURCES)
    assert config_env(cfg, host_env) == expected
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if line.startswith("Warning:")]
    assert len(warnings) == len(warned)
    for name, line in zip(warned, warnings, strict=True):
        assert name in line
        assert "not set" in line
