"""`aishell check` and `aishell info` on the project config's approval."""

from __future__ import annotations

from pathlib import Path

import pytest

from aishell import trust
from aishell.commands import check, info
from testing.gathered import good
from testing.json_shapes import CHECK_SHAPE, INFO_SHAPE, assert_shape

pytestmark = pytest.mark.usefixtures("no_color")

RECORD = trust.Record("d" * 64, "2026-12-01T10:45:19Z", ".aishell")
SNAP = trust.Snapshot(".aishell", "", (trust.Entry("config.yaml", "file", 0o644, b"x"),))
DIR = Path("/w/proj/.aishell")


@pytest.mark.parametrize(
    ("st", "status", "fragment"),
    [
        (trust.Status("approved", DIR, SNAP, RECORD), "ok", "is approved"),
        (trust.Status("new", DIR, SNAP, None), "warn", "not approved yet"),
        (trust.Status("changed", DIR, SNAP, RECORD), "warn", "changed since you approved"),
    ],
)
def test_trust_checks(st: trust.Status, status: str, fragment: str) -> None:
    (c,) = check.trust_checks(good(trust=st))
    assert c.section == "Configuration" and c.status == status and fragment in c.label
    if status == "warn":
        assert "aishell trust" in (c.detail or "")


def test_nothing_to_approve_is_no_check() -> None:
    assert check.trust_checks(good(trust=trust.Status("none", None, None, None))) == []


def test_an_unreadable_config_dir_is_a_warning() -> None:
    (c,) = check.trust_checks(good(trust_error="cannot read /w/proj/.aishell: denied"))
    assert c.status == "warn" and "denied" in (c.detail or "")


def test_the_check_never_fails_on_trust() -> None:
    checks, sensitive = check.run_checks(
        good(trust=trust.Status("new", DIR, SNAP, None), config=None, config_files=[]), {}
    )
    assert not [c for c in checks if c.status == "fail" and "approved" in c.label]
    data = check.check_json(
        checks, sensitive, trust_state=trust.status_json(trust.Status("new", DIR, SNAP, None))
    )
    assert_shape(data, CHECK_SHAPE)
    assert data["trust"]["state"] == "new" and data["trust"]["approved_at"] is None


def test_info_shows_the_state() -> None:
    data = info.info_json(good(trust=trust.Status("changed", DIR, SNAP, RECORD)))
    assert_shape(data, INFO_SHAPE)
    assert data["trust"]["state"] == "changed"
    assert data["trust"]["approved_digest"] == "d" * 64
    assert data["trust"]["digest"] == SNAP.digest
    assert any("CHANGED since approved" in line for line in info.render_info(data))
