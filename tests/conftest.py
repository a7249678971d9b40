from __future__ import annotations

import os
from pathlib import Path

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Marked by folder, as pip does: `-m unit` / `-m "not integration"` is the fast run.
    for item in items:
        path = str(item.fspath).replace(os.sep, "/")
        if "tests/integration/" in path:
            item.add_marker(pytest.mark.integration)
        elif "tests/unit/" in path:
            item.add_marker(pytest.mark.unit)


@pytest.fixture(autouse=True)
def _isolated_aishell_home(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unit tests never touch the real ~/.aishell; integration tests set their own."""
    if request.node.get_closest_marker("integration"):
        return
    monkeypatch.setenv("AISHELL_HOME", str(tmp_path / "aishell-home"))


@pytest.fixture(autouse=True)
def _fresh_journal() -> object:
    """Each test starts with no journal of the process (`aishell.journal.current`)."""
    from aishell import journal

    journal._current = None
    yield
    journal.close_current()
