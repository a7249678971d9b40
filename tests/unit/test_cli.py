"""Command-line parsing and dispatch: `aishell.cli.parse_global` and `aishell.cli.main`."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from aishell import __version__, cli
from aishell.cli import COMMANDS, GlobalOptions, main, parse_global
from aishell.errors import UsageError
from aishell.harnesses import HARNESS_NAMES


@pytest.fixture(autouse=True)
def _plain_output(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("AISHELL_DEBUG", raising=False)


@pytest.fixture
def launches(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Record every LaunchRequest instead of launching anything."""
    import aishell.launch

    seen: list[Any] = []

    def fake_launch(req: Any) -> int:
        seen.append(req)
        return 0

    monkeypatch.setattr(aishell.launch, "launch", fake_launch)
    return seen


@pytest.fixture
def no_engine(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fail (and record) any attempt to find or use the container engine."""
    from aishell.engine import choice

    touched: list[str] = []

    def refuse(*_a: object, **_k: object) -> None:
        touched.append("get_engine")
        raise AssertionError("the engine must not be touched")

    monkeypatch.setattr(choice, "get_engine", refuse)
    return touched


def run(argv: list[str]) -> int:
    """main(), with argparse's SystemExit (for --help) turned into a return code."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("Error:")]


# ------------------------------------------------------------------ parse_global


@pytest.mark.parametrize(
    ("argv", "opts", "command", "rest"),
    [
        ([], GlobalOptions(), None, []),
        (["claude"], GlobalOptions(), "claude", []),
        (["claude", "--name", "x"], GlobalOptions(), "claude", ["--name", "x"]),
        (["claude", "--help"], GlobalOptions(), "claude", ["--help"]),
        (["claude", "--", "-x"], GlobalOptions(), "claude", ["--", "-x"]),
        (["--name", "x", "claude"], GlobalOptions(name="x"), "claude", []),
        (["--name=x", "claude"], GlobalOptions(name="x"), "claude", []),
        (["--name=a=b", "claude"], GlobalOptions(name="a=b"), "claude", []),
        (["--name=", "claude"], GlobalOptions(name=""), "claude", []),
        (["--name", "--detach"], GlobalOptions(name="--detach"), None, []),
        (["--detach", "shell"], GlobalOptions(detach=True), "shell", []),
        (["-d", "shell"], GlobalOptions(detach=True), "shell", []),
        (["--unsafe", "claude"], GlobalOptions(unsafe=True), "claude", []),
        (["--debug", "ps"], GlobalOptions(debug=True), "ps", []),
        (
            ["--name", "n", "-d", "--unsafe", "--debug", "codex", "-m", "x"],
            GlobalOptions(name="n", detach=True, unsafe=True, debug=True),
            "codex",
            ["-m", "x"],
        ),
        (["--name", "a", "--name", "b", "claude"], GlobalOptions(name="b"), "claude", []),
        (["--", "claude", "-d"], GlobalOptions(), "claude", ["-d"]),
        (["--", "--weird"], GlobalOptions(), "--weird", []),
        (["--unsafe", "--"], GlobalOptions(unsafe=True), None, []),
        (["-"], GlobalOptions(), "-", []),
        (["exec", "ls", "-d", "x"], GlobalOptions(), "exec", ["ls", "-d", "x"]),
        (["exec", "--name", "x"], GlobalOptions(), "exec", ["--name", "x"]),
        (["--help"], GlobalOptions(), "help", []),
        (["-h", "claude"], GlobalOptions(), "help", []),
        (["--version"], GlobalOptions(), "version", []),
        (["-V"], GlobalOptions(), "version", []),
        (["--unsafe", "--version", "--bogus"], GlobalOptions(unsafe=True), "version", []),
        (["help", "setup"], GlobalOptions(), "help", ["setup"]),
        (["setup", "--with-claude=1.2.3"], GlobalOptions(), "setup", ["--with-claude=1.2.3"]),
    ],
)
def test_parse_global(
    argv: list[str], opts: GlobalOptions, command: str | None, rest: list[str]
) -> None:
    assert parse_global(argv) == (opts, command, rest)


def test_parse_global_does_not_mutate_argv() -> None:
    argv = ["--name", "x", "claude", "--name", "y"]
    parse_global(argv)
    assert argv == ["--name", "x", "claude", "--name", "y"]


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--name"], "--name needs a value"),
        (["--unsafe", "--name"], "--name needs a value"),
        (["--nmae", "x"], "unknown option '--nmae'"),
        (["--detatch"], "unknown option '--detatch'"),
        (["-x"], "unknown option '-x'"),
        (["--name-x"], "unknown option '--name-x'"),
        (["--force", "setup"], "unknown option '--force'"),
    ],
)
def test_parse_global_errors(argv: list[str], fragment: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_global(argv)
    assert fragment in info.value.message
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    ("option", "suggestion"),
    [
        ("--nmae", "--name"),
        ("--detatch", "--detach"),
        ("--unsafr", "--unsafe"),
        ("--verison", "--version"),
    ],
)
def test_unknown_option_suggests(option: str, suggestion: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_global([option, "claude"])
    assert f"did you mean '{suggestion}'" in (info.value.hint or "")
    assert "before the command" in (info.value.hint or "")


# ------------------------------------------------------------- main: launches


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], {"kind": "shell", "name": None, "detach": False, "unsafe": False}),
        (["shell"], {"kind": "shell"}),
        (["--name", "dev", "shell"], {"kind": "shell", "name": "dev"}),
        (["--detach"], {"kind": "shell", "detach": True}),
        (["-d", "--name", "bg"], {"kind": "shell", "detach": True, "name": "bg"}),
        (["--unsafe"], {"kind": "shell", "unsafe": True}),
        (
            ["claude"],
            {"kind": "harness", "harness": "claude", "args": (), "name": None, "unsafe": False},
        ),
        (
            ["claude", "--name", "x"],
            {"kind": "harness", "harness": "claude", "args": ("--name", "x"), "name": None},
        ),
        (
            ["claude", "--name=x", "-d", "--unsafe"],
            {
                "kind": "harness",
                "args": ("--name=x", "-d", "--unsafe"),
                "name": None,
                "detach": False,
                "unsafe": False,
            },
        ),
        (["claude", "--help"], {"kind": "harness", "harness": "claude", "args": ("--help",)}),
        (["claude", "--version"], {"kind": "harness", "args": ("--version",)}),
        (["--name=x", "claude"], {"kind": "harness", "harness": "claude", "name": "x"}),
        (["--name", "review", "claude", "-p", "hi"], {"name": "review", "args": ("-p", "hi")}),
        (["--unsafe", "claude"], {"kind": "harness", "harness": "claude", "unsafe": True}),
        (["--detach", "codex"], {"kind": "harness", "harness": "codex", "detach": True}),
        (["opencode", "run"], {"harness": "opencode", "args": ("run",)}),
        (["gemini"], {"harness": "gemini"}),
        (["pi"], {"harness": "pi"}),
        (["exec", "ls", "-d", "x"], {"kind": "exec", "args": ("ls", "-d", "x"), "detach": False}),
        (["exec", "--", "ls"], {"kind": "exec", "args": ("--", "ls")}),
        (["exec", "sh", "-c", "a; b | c"], {"kind": "exec", "args": ("sh", "-c", "a; b | c")}),
        (["--unsafe", "exec", "true"], {"kind": "exec", "unsafe": True, "args": ("true",)}),
        (["--name", "n", "gitleaks"], {"kind": "gitleaks", "name": "n"}),
        (["gitleaks"], {"kind": "gitleaks", "args": ()}),
        (["gitleaks", "git", "-v"], {"kind": "gitleaks", "args": ("git", "-v")}),
        (["--", "claude", "--name", "y"], {"harness": "claude", "args": ("--name", "y")}),
    ],
)
def test_main_builds_launch_request(
    launches: list[Any], argv: list[str], expected: dict[str, Any]
) -> None:
    assert main(argv) == 0
    assert len(launches) == 1
    req = launches[0]
    for key, value in expected.items():
        assert getattr(req, key) == value, key


@pytest.mark.parametrize("status", [0, 1, 3, 127, 130])
def test_main_returns_the_launch_status(monkeypatch: pytest.MonkeyPatch, status: int) -> None:
    import aishell.launch

    monkeypatch.setattr(aishell.launch, "launch", lambda _req: status)
    assert main(["exec", "false"]) == status


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_shell_help_is_ours_and_does_not_launch(
    launches: list[Any], capsys: pytest.CaptureFixture[str], flag: str
) -> None:
    assert main(["shell", flag]) == 0
    assert launches == []
    assert "usage: aishell" in capsys.readouterr().out


# ------------------------------------------------------------- main: errors


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["--name"], ["--name needs a value"]),
        (["claude", "--name"], None),  # passes through: not an error (see launches test)
        (["--bogus"], ["unknown option '--bogus'"]),
        (["--nmae", "x", "claude"], ["unknown option", "did you mean '--name'"]),
        (["clade"], ["unknown command 'clade'", "did you mean 'claude'"]),
        (["stup"], ["unknown command 'stup'", "did you mean 'setup'"]),
        (["volume"], ["unknown command 'volume'", "did you mean 'volumes'"]),
        (["xyzzy"], ["unknown command 'xyzzy'", "aishell --help"]),
        (["exec"], ["exec needs a command"]),
        (["--detach", "exec", "ls"], ["--detach does not apply"]),
        (["-d", "exec"], ["--detach does not apply"]),
        (["--name", "x", "setup"], ["not 'setup'"]),
        (["--name=x", "build"], ["not 'setup'"]),
        (["--detach", "ps"], ["not 'ps'"]),
        (["--unsafe", "volumes"], ["not 'volumes'"]),
        (["--name", "x", "check"], ["not 'check'"]),
        (["--unsafe", "info"], ["not 'info'"]),
        (["--detach", "update"], ["not 'update'"]),
        (["--name", "x", "attach", "y"], ["not 'attach'"]),
    ],
)
def test_usage_errors_exit_2_with_one_error_line(
    launches: list[Any],
    no_engine: list[str],
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    fragments: list[str] | None,
) -> None:
    if fragments is None:
        assert main(argv) == 0
        assert launches[0].args == ("--name",)
        return
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("Error: ")
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in err
    assert launches == []
    assert no_engine == []


def test_unknown_command_without_close_match_has_no_suggestion(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["qqqqqqqq"]) == 2
    assert "did you mean" not in capsys.readouterr().err


def test_setup_rejects_injection_before_touching_the_engine(
    no_engine: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["setup", "--with-claude=1;rm -rf /"]) == 2
    err = capsys.readouterr().err
    assert len(error_lines(err)) == 1
    assert "metacharacters" in err
    assert no_engine == []
    assert not (Path(os.environ["AISHELL_HOME"]) / "state.json").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["setup", "--with-claude=1;rm -rf /"],
        ["build", "--with-codex=$(id)"],
        ["setup", "--with-claude", "--with-gemini=`reboot`"],
        ["setup", "--with-pi=1.2"],
        ["setup", "--with-opencode=v1.2.3"],
        ["setup", "--with-openspec=latest2"],
        ["setup", "--with-nothing"],
        ["setup", "extra-positional"],
    ],
)
def test_setup_usage_errors_never_touch_the_engine(
    no_engine: list[str], capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert len(error_lines(err)) == 1
    assert err.splitlines()[-1].startswith("Error: ")
    assert no_engine == []


def test_engine_calls_refused_in_unit_tests_would_not_look_like_usage_errors(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Guard for the tests above: reaching the engine gives exit 1, not 2."""
    from aishell.commands import setup

    def boom(_argv: object) -> int:
        raise AssertionError("engine")

    monkeypatch.setattr(setup, "main", boom)
    assert main(["setup", "--with-claude"]) == 1
    assert "unexpected error" in capsys.readouterr().err


def test_aishell_debug_env_shows_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AISHELL_DEBUG", "1")
    assert main(["--bogus"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err
    assert err.splitlines()[-1].startswith("Error: ")


def test_unexpected_exception_is_one_line_without_debug(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import aishell.launch

    def crash(_req: object) -> int:
        raise ValueError("kaboom")

    monkeypatch.setattr(aishell.launch, "launch", crash)
    assert main(["claude"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("Error: unexpected error: ValueError: kaboom")
    assert "--debug" in err


def test_unexpected_exception_raises_with_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    import aishell.launch

    def crash(_req: object) -> int:
        raise ValueError("kaboom")

    monkeypatch.setattr(aishell.launch, "launch", crash)
    with pytest.raises(ValueError, match="kaboom"):
        main(["--debug", "claude"])


def test_keyboard_interrupt_exits_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import aishell.launch

    def interrupted(_req: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(aishell.launch, "launch", interrupted)
    assert main(["claude"]) == 130
    assert "Interrupted" in capsys.readouterr().err


# -------------------------------------------------------- version and help


@pytest.mark.parametrize("argv", [["--version"], ["-V"], ["--unsafe", "--version"]])
def test_version(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert out == f"aishell {__version__}\n"
    assert err == ""


@pytest.mark.parametrize("argv", [["--help"], ["-h"], ["help"], ["help", "no-such-topic"]])
def test_help_lists_commands_and_agents(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.startswith("usage: aishell")
    for command in COMMANDS:
        assert f"  {command} " in out
    for harness in HARNESS_NAMES:
        assert f"  {harness} " in out
    for option in ("--name", "--detach", "--unsafe", "--version", "--help"):
        assert option in out
    assert "aishell setup --with-" in out  # nothing installed yet


def test_help_shows_installed_agents_only(capsys: pytest.CaptureFixture[str]) -> None:
    home = Path(os.environ["AISHELL_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    (home / "state.json").write_text(
        json.dumps({"tools": {"codex": "latest", "openspec": "latest"}})
    )
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "(installed)" in out
    assert "  codex " in out
    for other in ("claude", "gemini", "opencode", "pi"):
        assert f"  {other} " not in out


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[]",
        "",
        '"text"',
        '{"tools": "claude"}',
        '{"tools": 3}',
        '{"tools": null}',
    ],
)
def test_help_survives_a_damaged_state_file(
    capsys: pytest.CaptureFixture[str], content: str
) -> None:
    home = Path(os.environ["AISHELL_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    (home / "state.json").write_text(content)
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for harness in HARNESS_NAMES:
        assert f"  {harness} " in out


@pytest.mark.parametrize(("topic", "command"), [("setup", "setup"), ("build", "setup")])
def test_help_topic_equals_command_help(
    capsys: pytest.CaptureFixture[str], no_engine: list[str], topic: str, command: str
) -> None:
    assert run(["help", topic]) == 0
    via_help = capsys.readouterr()
    assert run([command, "--help"]) == 0
    via_flag = capsys.readouterr()
    assert via_help == via_flag
    assert "--with-claude" in via_help.out
    assert "--with-gitleaks" in via_help.out
    assert no_engine == []


def test_help_shell_equals_shell_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["help", "shell"]) == 0
    via_help = capsys.readouterr()
    assert main(["shell", "--help"]) == 0
    assert capsys.readouterr() == via_help


def test_every_command_has_a_handler_or_launches() -> None:
    launched = {"shell", "exec", "gitleaks", "run"}
    for command, entry in {**COMMANDS, **cli.AGENTS}.items():
        assert callable(cli._target(entry)), command
        assert entry.run_options == (command in launched or command in HARNESS_NAMES), command
    for alias, target in cli.ALIASES.items():
        assert target in COMMANDS, alias


# ------------------------------------------------------- start-up imports

PROBE = """
import sys
from aishell.cli import main
rc = main({argv!r})
sys.stdout.flush()
sys.stderr.write("\\nMODULES=" + repr(sorted(sys.modules)) + "\\n")
raise SystemExit(rc)
"""

FORBIDDEN = ("yaml", "rich", "aishell.config", "aishell.launch", "aishell.engine")


def _clean_env(tmp_path: Path) -> dict[str, str]:
    """A fresh interpreter that imports this checkout's aishell, with no extras."""
    import aishell

    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = str(Path(aishell.__file__).resolve().parent.parent)
    env["AISHELL_HOME"] = str(tmp_path / "aishell-home")
    return env


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["-h"], ["help"]])
def test_fast_paths_import_no_yaml(tmp_path: Path, argv: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(argv=argv)],
        capture_output=True,
        text=True,
        env=_clean_env(tmp_path),
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    marker = proc.stderr.rsplit("MODULES=", 1)[1].strip()
    modules = set(ast.literal_eval(marker))
    for name in FORBIDDEN:
        assert not any(m == name or m.startswith(name + ".") for m in modules), name
    if argv == ["--version"]:
        assert proc.stdout == f"aishell {__version__}\n"


@pytest.mark.parametrize("flag", ["--version", "--help"])
def test_python_m_aishell_importtime(tmp_path: Path, flag: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "aishell", flag],
        capture_output=True,
        text=True,
        env=_clean_env(tmp_path),
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    imported = [
        line.rsplit("|", 1)[1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    ]
    assert "aishell.cli" in imported
    for name in ("yaml", "rich", "aishell.config", "aishell.launch"):
        assert not any(m == name or m.startswith(name + ".") for m in imported), name
    if flag == "--version":
        assert proc.stdout == f"aishell {__version__}\n"
    else:
        assert "Commands:" in proc.stdout


# ------------------------------------------------------------ known bugs


def test_help_exec_prints_help_without_launching(
    launches: list[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["help", "exec"]) == 0
    assert launches == []
    assert "exec" in capsys.readouterr().out


def test_detach_gitleaks_is_not_silently_dropped(
    launches: list[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["--detach", "gitleaks"])
    if status == 2:
        assert launches == []
        assert len(error_lines(capsys.readouterr().err)) == 1
    else:
        assert launches and launches[0].detach is True


def test_name_with_exec_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--name", "n", "exec", "true"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: exec containers have no name")


@pytest.mark.parametrize(
    "argv",
    [
        ["volumes", "bogus"],
        ["volumes", "list", "somename"],
        ["volumes", "--bogus"],
        ["ps", "extra"],
        ["ps", "--bogus"],
        ["info", "--nope"],
        ["check", "x"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("Error:")
