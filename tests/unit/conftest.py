from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_engine_in_unit_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests must not start the engine CLI: make every engine spawn fail loudly."""
    from aishell.engine import client

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("unit tests must not run the container engine")

    for verb in ("capture", "capture_many", "stream", "call", "exec_"):
        monkeypatch.setattr(client.Engine, verb, refuse)
