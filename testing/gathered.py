"""What `aishell.discovery.gather` finds, built by hand: a good setup (`good()`) and the
pieces to vary it, for the info, check and discovery tests."""

from __future__ import annotations

from typing import Any

from aishell import config, discovery
from aishell.config import Config
from aishell.engine.images import Holds
from aishell.project import Project
from aishell.state import State, VolumeRecord
from testing.fake_engine import FakeEngine

HOLDS = Holds("0123456789ab")  # this home's image tags in these tests
FOUNDATION = {"Id": "sha256:f", "Config": {"Labels": {"aishell.foundation.hash": "fh"}}}


def project() -> Project:
    return Project(root="/w/proj", canonical="/w/proj", hash="2e0d7515")


def gathered(**kw: Any) -> discovery.Gathered:
    base: dict[str, Any] = {
        "project": project(),
        "home": "/home/u",
        "aishell_home": "/home/u/.aishell",
        "state_file": "/home/u/.aishell/state.json",
        "holds": HOLDS,
    }
    base.update(kw)
    return discovery.Gathered(**base)


VOLUME = "aishell-harness-aaa"
GOOD_STATE = State(
    tools={"opencode": "latest"},
    build_time="2026-11-28T00:00:00Z",
    harness_volume=VOLUME,
    volumes={VOLUME: VolumeRecord(created_at="t1", versions={"opencode": "1.18.33"})},
)


def good(**kw: Any) -> discovery.Gathered:
    defaults: dict[str, Any] = {
        "state": GOOD_STATE,
        "config": Config(sources=("/home/u/.aishell/config.yaml",)),
        "config_files": [
            config.FileReport("global", "/home/u/.aishell/config.yaml", True),
            config.FileReport("project", "/w/proj/.aishell/config.yaml", False),
        ],
        "foundation_hash": "fh",
        "engine": FakeEngine(),
        "server_version": "28.0",
        "images": {
            HOLDS.foundation: FOUNDATION,
            HOLDS.base: {"Id": "sha256:f", "Config": {"Labels": {}}},
        },
        "volume_name": VOLUME,
        "volume_item": {"Name": VOLUME, "CreatedAt": "t1", "Labels": {"aishell.kind": "harness"}},
        "volume_known": True,
    }
    defaults.update(kw)
    return gathered(**defaults)
