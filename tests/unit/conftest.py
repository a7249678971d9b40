from __future__ import annotations

from pathlib import Path

import pytest

from aishell.errors import EngineError


@pytest.fixture(autouse=True)
def _no_engine_in_unit_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests must not start the engine CLI: make every engine spawn fail loudly."""
    from aishell.engine import client

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("unit tests must not run the container engine")

    for verb in ("capture", "capture_many", "stream", "call", "exec_"):
        monkeypatch.setattr(client.Engine, verb, refuse)


@pytest.fixture
def no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    """Plain text output (NO_COLOR, no FORCE_COLOR)."""
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("FORCE_COLOR", raising=False)


@pytest.fixture
def no_engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No engine CLI on this machine, and the current directory a fresh git project
    (returned). test_cli.py has its own `no_engine`, which records engine look-ups."""
    from aishell.engine import choice, client

    def missing(requested: str | None = None) -> client.Engine:
        raise EngineError("'docker' was not found on PATH", hint="install Docker")

    monkeypatch.setattr(choice, "get_engine", missing)
    proj = tmp_path / "proj"
    (proj / ".git").mkdir(parents=True)
    monkeypatch.chdir(proj)
    monkeypatch.setenv("PWD", str(proj))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return proj
