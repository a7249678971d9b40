"""Unit tests: no container engine. Every engine verb fails loudly here, and a unit test
that asks for one of the integration suite's engine fixtures stops the run at collection
(as pip's conftest refuses its `script` fixture to unit tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from aishell.errors import EngineError

UNIT_DIR = Path(__file__).parent
# The fixtures tests/integration/conftest.py gives engine tests.
ENGINE_FIXTURES = frozenset(
    {
        "engine",
        "podman_engine",
        "shared_root",
        "shared_root_src",
        "root_user",
        "user",
        "podman_root",
        "podman_user",
        "anyone",
    }
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if UNIT_DIR not in item.path.parents:
            continue
        wanted = sorted(ENGINE_FIXTURES.intersection(getattr(item, "fixturenames", ())))
        if wanted:
            raise pytest.UsageError(
                f"{item.nodeid}: a unit test may not use the engine fixtures "
                f"{', '.join(wanted)}; engine tests belong in tests/integration"
            )


@pytest.fixture(autouse=True)
def _no_engine_in_unit_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests must not start the engine CLI: make every engine spawn fail loudly."""
    from aishell.engine import client

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("unit tests must not run the container engine")

    for verb in ("capture", "capture_many", "inspect_many", "stream", "call", "exec_"):
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
