"""Shared output helpers of the inspection commands (`aishell.report_json`)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.usefixtures("no_color")


def test_stdout_is_utf8(monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import sys

    from aishell import report_json

    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(io.BytesIO(), encoding="ascii"))
    assert not report_json.stdout_is_utf8()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(io.BytesIO(), encoding="UTF-8"))
    assert report_json.stdout_is_utf8()


def test_table() -> None:
    from aishell import report_json

    assert report_json.table(["A", "BB"], [["xxx", "y"], ["z", ""]]) == [
        "A    BB",
        "xxx  y",
        "z",
    ]
