"""The engine's listings: label strings and JSON lines (`aishell.engine.containers`)."""

from __future__ import annotations

import pytest

from aishell.engine.containers import parse_json_lines, parse_label_string

pytestmark = pytest.mark.usefixtures("no_color")


def test_parse_label_string() -> None:
    assert parse_label_string("a=b,c,d.e=1,f=") == {"a": "b,c", "d.e": "1", "f": ""}
    assert parse_label_string({"a": "b", "n": None}) == {"a": "b", "n": ""}  # podman
    assert parse_label_string("") == {}
    assert parse_label_string(None) == {}


def test_parse_json_lines() -> None:
    assert parse_json_lines('{"a": 1}\n\nnot json\n{"b": 2}\n') == [{"a": 1}, {"b": 2}]
    assert parse_json_lines('[{"a": 1}, 3]') == [{"a": 1}]
    assert parse_json_lines("  ") == []
