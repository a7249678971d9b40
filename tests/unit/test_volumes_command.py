"""`aishell volumes`: sizes, rows, the list, prune plans and prune (on a fake engine)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aishell.commands import volumes
from aishell.engine.client import Result
from aishell.errors import AishellError
from aishell.state import State, VolumeRecord
from testing.fake_engine import Call, FakeEngine
from testing.json_shapes import PRUNE_SHAPE, VOLUMES_SHAPE, assert_shape

pytestmark = pytest.mark.usefixtures("no_color")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("370.7MB", 370_700_000),
        ("8.985kB", 8985),
        ("0B", 0),
        ("12B", 12),
        ("1.5GB", 1_500_000_000),
        ("1.5GiB", 1_610_612_736),
        ("2 MiB", 2_097_152),
        ("N/A", None),
        ("", None),
        ("-1", None),
        ("5XB", None),
        (1234, 1234),
        (None, None),
        (True, None),
    ],
)
def test_parse_size(text: object, expected: int | None) -> None:
    assert volumes.parse_size(text) == expected


SYSTEM_DF = {
    "Images": [],
    "Volumes": [
        {"Name": "aishell-harness-aaa", "Size": "370.7MB", "Links": "1"},
        {"Name": "aishell-harness-bbb", "Size": "N/A"},
        {"Name": "other", "Size": "1kB"},
        {"Size": "1kB"},
    ],
}


def test_sizes_from_system_df() -> None:
    sizes = volumes.sizes_from_system_df(SYSTEM_DF)
    assert sizes == {"aishell-harness-aaa": ("370.7MB", 370_700_000), "other": ("1kB", 1000)}
    assert volumes.sizes_from_system_df(None) == {}
    assert volumes.sizes_from_system_df({"Volumes": None}) == {}


# The maker labels of a volume this test's home made (`engine.volumes.Owner.labels`).
MADE_HERE = {
    "aishell.home": "0123456789ab",
    "aishell.uid": "1000",
    "aishell.user": "alice",
    "aishell.home.path": "/home/alice/.aishell",
    "aishell.host": "box",
}


def volume_rows() -> list[volumes.VolumeRow]:
    return volumes.build_rows(
        ["aishell-harness-ccc", "aishell-harness-aaa", "aishell-harness-bbb"],
        labels={
            "aishell-harness-aaa": {
                "aishell.harnesses": "claude,opencode",
                "aishell.harness.pins": "claude=latest,opencode=1.2.3",
                **MADE_HERE,
            },
            "aishell-harness-ccc": {"aishell.harnesses": "codex"},
        },
        sizes=volumes.sizes_from_system_df(SYSTEM_DF),
        active="aishell-harness-bbb",
        versions={"aishell-harness-aaa": {"opencode": "1.2.3"}},
        in_use={"aishell-harness-ccc": ["b-box", "a-box"]},
    )


def test_build_rows() -> None:
    got = volume_rows()
    assert [(r.name, r.status) for r in got] == [
        ("aishell-harness-bbb", "active"),
        ("aishell-harness-aaa", "orphaned"),
        ("aishell-harness-ccc", "orphaned"),
    ]
    bbb, aaa, ccc = got
    assert bbb.size is None and bbb.size_bytes is None and bbb.harnesses is None
    assert aaa.size == "370.7MB" and aaa.size_bytes == 370_700_000
    assert aaa.harnesses == ["claude", "opencode"]
    assert aaa.pins == {"claude": "latest", "opencode": "1.2.3"}
    assert ccc.in_use_by == ["a-box", "b-box"]
    assert volumes.harness_text(aaa) == "claude (latest), opencode 1.2.3"
    assert volumes.harness_text(bbb) == "unknown"
    data = [r.to_json() for r in got]
    assert_shape(data, VOLUMES_SHAPE)
    assert data[1]["versions"] == {"opencode": "1.2.3"}


def test_build_rows_without_state_marks_everything_orphaned() -> None:
    got = volumes.build_rows(
        ["aishell-harness-aaa"], labels={}, sizes={}, active=None, versions={}, in_use={}
    )
    assert got[0].status == "orphaned"


def test_render_list() -> None:
    lines = volumes.render_list(volume_rows())
    assert lines[0].split() == [
        *("NAME", "STATUS", "SIZE", "HARNESSES", "HELD", "BY", "IN", "USE", "BY")
    ]
    assert "N/A" in lines[1]
    assert lines[3].endswith("a-box, b-box")


def test_plan_prune_skips_active_and_in_use() -> None:
    plan = volumes.plan_prune(volume_rows())
    assert plan.remove == ["aishell-harness-aaa"]
    assert plan.skipped == [
        {"name": "aishell-harness-ccc", "reason": "in use by containers a-box, b-box"}
    ]
    assert_shape(volumes.prune_json(plan.remove, plan.skipped), PRUNE_SHAPE)


def test_plan_prune_named() -> None:
    plan = volumes.plan_prune(volume_rows(), ["aishell-harness-bbb", "aishell-harness-aaa"])
    assert plan.remove == ["aishell-harness-aaa"]
    assert plan.skipped == [
        {"name": "aishell-harness-bbb", "reason": "active (the current setup uses it)"}
    ]
    with pytest.raises(AishellError, match="no harness volume named nope"):
        volumes.plan_prune(volume_rows(), ["nope"])


def test_plan_prune_nothing_orphaned() -> None:
    only_active = [r for r in volume_rows() if r.status == "active"]
    plan = volumes.plan_prune(only_active)
    assert plan.remove == [] and plan.skipped == []


def test_forget_does_not_create_a_state_file(tmp_path: Path) -> None:
    from aishell import paths, state

    volumes.forget(["aishell-harness-aaa"])
    assert not paths.state_file().exists()
    state.save(
        State(
            tools={"opencode": "latest"},
            volumes={
                "aishell-harness-aaa": VolumeRecord(created_at="x"),
                "aishell-harness-bbb": VolumeRecord(created_at="y"),
            },
        )
    )
    volumes.forget(["aishell-harness-aaa"])
    loaded = state.load()
    assert loaded is not None and list(loaded.volumes) == ["aishell-harness-bbb"]


@pytest.mark.parametrize(
    "argv",
    [
        ["prune", "--yes", "--json", "a", "b"],
        ["prune", "a", "--yes", "b", "--json"],
        ["--json", "prune", "-y", "a", "b"],
    ],
)
def test_volumes_options_and_names_intermix(argv: list[str]) -> None:
    ns = volumes.build_parser().parse_intermixed_args(argv)
    assert (ns.subcommand, ns.names, ns.yes, ns.json) == ("prune", ["a", "b"], True, True)


def volume_engine(refuse: frozenset[str] = frozenset()) -> tuple[FakeEngine, list[str]]:
    """An engine that answers `volume rm` (refusing the volumes in `refuse` as in use), and
    the list of volumes it removed."""
    removed: list[str] = []

    def rm(call: Call) -> Result:
        name = call.args[2]
        if name in refuse:
            return Result(
                1, "", f"Error response from daemon: remove {name}: volume is in use - [abc]\n"
            )
        removed.append(name)
        return Result(0, name + "\n", "")

    return FakeEngine([(("volume", "rm"), rm), (("volume", "ls"), Result(0, "", ""))]), removed


def test_prune_asks_and_declining_removes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from aishell import output
    from aishell.errors import Aborted

    engine, removed = volume_engine()
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    asked: list[str] = []
    monkeypatch.setattr(output, "ask_yes_no", lambda q: asked.append(q) or False)
    with pytest.raises(Aborted) as info:
        volumes._prune(engine, volume_rows(), only=(), yes=False, as_json=False)
    assert asked == ["Remove 1 volume(s)?"] and removed == []
    assert info.value.message == "Aborted. No volume was removed."  # as the README says


def test_prune_without_terminal_needs_yes(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setattr(sys.stdin, "isatty", lambda: False, raising=False)
    engine, removed = volume_engine()
    with pytest.raises(AishellError, match="without confirmation") as info_:
        volumes._prune(engine, volume_rows(), only=(), yes=False, as_json=True)
    assert "--yes" in (info_.value.hint or "")
    assert removed == []


def test_prune_yes_json(capsys: pytest.CaptureFixture[str]) -> None:
    engine, _removed = volume_engine()
    assert volumes._prune(engine, volume_rows(), only=(), yes=True, as_json=True) == 0
    data = json.loads(capsys.readouterr().out)
    assert_shape(data, PRUNE_SHAPE)
    assert data == {
        "removed": ["aishell-harness-aaa"],
        "skipped": [{"name": "aishell-harness-ccc", "reason": "in use by containers a-box, b-box"}],
    }


def test_prune_engine_refusal_is_reported_as_skipped(capsys: pytest.CaptureFixture[str]) -> None:
    engine, _removed = volume_engine(refuse=frozenset({"aishell-harness-aaa"}))
    assert volumes._prune(engine, volume_rows(), only=(), yes=True, as_json=False) == 0
    out = capsys.readouterr().out
    assert (
        "Skipping aishell-harness-aaa (remove aishell-harness-aaa: volume is in use - [abc])" in out
    )
    assert "Removed" not in out and out.rstrip().endswith("Prune complete.")
