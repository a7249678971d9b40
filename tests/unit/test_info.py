"""`aishell info`: the JSON shape and the text, with and without an engine or a setup."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aishell import config
from aishell.commands import info
from aishell.config import Config
from testing.gathered import HOLDS, VOLUME, gathered, good
from testing.json_shapes import HARNESS_ENTRY, INFO_SHAPE, assert_shape

pytestmark = pytest.mark.usefixtures("no_color")


def test_info_json_shape_good_setup() -> None:
    data = info.info_json(good())
    assert_shape(data, INFO_SHAPE)
    for entry in data["harnesses"].values():
        assert_shape(entry, HARNESS_ENTRY)
    assert set(data["harnesses"]) == {"claude", "opencode", "codex", "gemini", "pi", "openspec"}
    oc = data["harnesses"]["opencode"]
    assert oc["enabled"] and oc["pin"] == "latest" and oc["version"] == "1.18.33"
    assert [p["path"] for p in oc["config_paths"]] == [
        "/home/u/.config/opencode",
        "/home/u/.local/share/opencode",
        "/home/u/.local/state/opencode",
    ]
    assert data["harnesses"]["claude"]["enabled"] is False
    assert data["harness_volume"] == {"name": VOLUME, "exists": True, "ready": True}
    assert data["images"]["foundation"]["current"] is True
    assert data["images"]["note"] is None
    assert data["project"]["container_prefix"] == "aishell-2e0d7515-"
    assert any(f"Launches run:      {HOLDS.base}" in line for line in info.render_info(data))


def test_info_json_without_engine_or_setup() -> None:
    g = gathered(
        engine_error="'docker' was not found on PATH",
        config=Config(),
        config_files=[config.FileReport("global", "/x/config.yaml", False)],
    )
    data = info.info_json(g)
    assert_shape(data, INFO_SHAPE)
    assert data["images"]["known"] is False
    assert "not found" in data["images"]["note"]
    assert data["engine"]["answering"] is False and data["engine"]["cli"] is None
    assert data["harness_volume"] == {"name": None, "exists": None, "ready": None}
    assert data["files"]["state_found"] is False
    lines = info.render_info(data)
    assert any("none installed" in line for line in lines)
    assert any("unknown" in line for line in lines)


def test_info_works_without_engine(no_engine: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert info.main(["--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert_shape(data, INFO_SHAPE)
    assert data["project"]["root"] == str(no_engine)
    assert data["images"]["known"] is False
    assert "not found" in data["images"]["note"]
    assert info.main([]) == 0
    assert "Project" in capsys.readouterr().out
