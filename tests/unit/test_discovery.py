"""`aishell.discovery`: the image stack, volume readiness and the server version."""

from __future__ import annotations

from typing import Any

import pytest

from aishell import discovery
from testing.gathered import FOUNDATION, GOOD_STATE, HOLDS, VOLUME

pytestmark = pytest.mark.usefixtures("no_color")


def test_image_stack_unknown_without_engine() -> None:
    stack = discovery.image_stack(
        None,
        foundation_hash="fh",
        base_hash=None,
        holds=HOLDS,
        extension_role="ext-x",
        extension_hash=None,
        extension_configured=False,
    )
    assert stack["known"] is False
    assert stack["foundation"]["exists"] is None and stack["foundation"]["current"] is None
    assert stack["base"]["current"] is None
    assert stack["run_image"] == HOLDS.base


def test_image_stack_alias_base_and_extension() -> None:
    base_alias = {"Id": "sha256:f", "Config": {"Labels": {}}}
    ext = {
        "Id": "sha256:e",
        "Config": {"Labels": {"aishell.tier.hash": "eh", "aishell.tier.parent": "sha256:f"}},
    }
    items = {HOLDS.foundation: FOUNDATION, HOLDS.base: base_alias, HOLDS.tag("ext-x"): ext}
    stack = discovery.image_stack(
        items,
        foundation_hash="fh",
        base_hash=None,
        holds=HOLDS,
        extension_role="ext-x",
        extension_hash="eh",
        extension_configured=True,
    )
    assert stack["foundation"] == {
        "tag": HOLDS.foundation,
        "held": True,
        "exists": True,
        "id": "sha256:f",
        "current": True,
    }
    assert stack["base"]["current"] is True and stack["base"]["custom"] is False
    assert stack["extension"]["current"] is True
    assert stack["run_image"] == HOLDS.tag("ext-x")

    # The extension's Dockerfile changed; the foundation's inputs changed.
    stale = discovery.image_stack(
        items,
        foundation_hash="other",
        base_hash=None,
        holds=HOLDS,
        extension_role="ext-x",
        extension_hash="changed",
        extension_configured=True,
    )
    assert stale["foundation"]["current"] is False
    assert stale["extension"]["current"] is False

    # Base drifted from the foundation: base and extension will be redone.
    drift = dict(items, **{HOLDS.base: {"Id": "sha256:old", "Config": {}}})
    stack = discovery.image_stack(
        drift,
        foundation_hash="fh",
        base_hash=None,
        holds=HOLDS,
        extension_role="ext-x",
        extension_hash="eh",
        extension_configured=True,
    )
    assert stack["base"]["current"] is False
    assert stack["extension"]["current"] is False


def test_image_stack_custom_base_and_missing_images() -> None:
    custom = {
        "Id": "sha256:b",
        "Config": {
            "Labels": {
                "aishell.kind": "base",
                "aishell.tier.hash": "bh",
                "aishell.tier.parent": "sha256:f",
            }
        },
    }
    items = {HOLDS.foundation: FOUNDATION, HOLDS.base: custom}
    kwargs: dict[str, Any] = {
        "foundation_hash": "fh",
        "holds": HOLDS,
        "extension_role": "ext-x",
        "extension_hash": "eh",
        "extension_configured": True,
    }
    stack = discovery.image_stack(items, base_hash="bh", **kwargs)
    assert stack["base"]["custom"] is True and stack["base"]["current"] is True
    assert stack["extension"]["exists"] is False and stack["extension"]["current"] is False
    assert discovery.image_stack(items, base_hash="changed", **kwargs)["base"]["current"] is False
    # A custom-labelled base without a global Dockerfile is re-tagged.
    assert discovery.image_stack(items, base_hash=None, **kwargs)["base"]["current"] is False
    nothing = discovery.image_stack({}, base_hash=None, **kwargs)
    assert nothing["foundation"]["exists"] is False and nothing["foundation"]["current"] is False


def test_volume_ready() -> None:
    harness = {"aishell.kind": "harness"}
    item = {"CreatedAt": "t1", "Labels": harness}  # made by an older aishell: no instance id
    assert discovery.volume_ready(GOOD_STATE, VOLUME, item)
    recreated = {"CreatedAt": "t2", "Labels": harness}
    assert not discovery.volume_ready(GOOD_STATE, VOLUME, recreated)
    # made again by the engine itself (no labels), even within the same second
    assert not discovery.volume_ready(GOOD_STATE, VOLUME, {"CreatedAt": "t1"})
    assert not discovery.volume_ready(GOOD_STATE, VOLUME, None)
    assert not discovery.volume_ready(None, VOLUME, item)
    assert not discovery.volume_ready(GOOD_STATE, "other", item)


def test_server_version() -> None:
    docker = '{"Client": {"Version": "28.2.2"}, "Server": {"Version": "20.10.24"}}'
    assert discovery.server_version(docker) == "20.10.24"
    podman_local = '{"Client": {"Version": "5.0.1"}, "Server": null}'
    assert discovery.server_version(podman_local) == "5.0.1"
    assert discovery.server_version("[]") is None
    assert discovery.server_version("not json\n") == "not json"
