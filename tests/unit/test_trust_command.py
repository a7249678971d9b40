"""`aishell trust [--yes]` through the CLI (no engine needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from aishell import cli, trust
from aishell.project import resolve

pytestmark = pytest.mark.usefixtures("no_color")


def run(*args: str) -> int:
    return cli.main(["trust", *args])


def config(project: Path, text: str) -> None:
    (project / ".aishell").mkdir(exist_ok=True)
    (project / ".aishell" / "config.yaml").write_text(text)


def state(project: Path) -> str:
    return trust.status(resolve(str(project)), project / ".aishell").state


def test_nothing_to_approve(no_engine: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run() == 0
    assert "Nothing to approve" in capsys.readouterr().err


def test_yes_approves_and_shows_what(no_engine: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config(no_engine, "tmux: false\n")
    assert run("--yes") == 0
    err = capsys.readouterr().err
    assert "+tmux: false" in err and "Approved" in err
    assert state(no_engine) == "approved"
    assert run() == 0
    assert "nothing changed" in capsys.readouterr().err


def test_without_a_terminal_it_refuses(no_engine: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config(no_engine, "tmux: false\n")
    assert run() == 1
    err = capsys.readouterr().err
    assert "+tmux: false" in err
    assert "Error: no terminal to ask" in err and "aishell trust --yes" in err
    assert state(no_engine) == "new"


@pytest.mark.parametrize("answer", ["y\n", "n\n"])
def test_on_a_terminal_it_asks(
    no_engine: Path, monkeypatch: pytest.MonkeyPatch, answer: str
) -> None:
    import io

    from aishell import output

    config(no_engine, "tmux: false\n")
    monkeypatch.setattr(output, "interactive_terminal", lambda: True)
    monkeypatch.setattr("sys.stdin", io.StringIO(answer))
    assert run() == (0 if answer == "y\n" else 1)
    assert state(no_engine) == ("approved" if answer == "y\n" else "new")


def test_a_config_that_does_not_load_is_not_approved(
    no_engine: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config(no_engine, "mounts: [\n")
    assert run("--yes") == 1
    assert "Invalid YAML" in capsys.readouterr().err
    assert state(no_engine) == "new"


def test_a_change_is_shown_as_a_diff(no_engine: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config(no_engine, "network:\n  mode: none\n")
    assert run("--yes") == 0
    config(no_engine, "network:\n  mode: open\n")
    capsys.readouterr()
    assert run("--yes") == 0
    err = capsys.readouterr().err
    assert "changed since you approved it" in err
    assert "-  mode: none" in err and "+  mode: open" in err


def test_trust_is_in_the_command_table() -> None:
    assert cli.COMMANDS["trust"].target == "trust:main"
    assert "trust" in cli.help_text()
