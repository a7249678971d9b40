"""ps, volumes, info and check: the pure parts (no engine), and the JSON shapes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from aishell import cli, discovery
from aishell.commands import check, info, ps, volumes
from aishell.config import Config, DetectionConfig, Mount
from aishell.engine.containers import parse_json_lines, parse_label_string
from aishell.engine.images import Holds
from aishell.errors import AishellError, EngineError
from aishell.project import Project
from aishell.security.rules import Severity
from aishell.security.scan import Finding, ScanResult
from aishell.security.validate import Danger
from aishell.state import State, VolumeRecord

# ---------------------------------------------------------------- JSON shapes
# The shapes documented in docs/json-output.md. A type, a tuple of types, a nested
# dict (exact keys), or a one-element list (every item has that shape).

NULLABLE_STR = (str, type(None))
NULLABLE_BOOL = (bool, type(None))

PS_SHAPE = [
    {
        "name": NULLABLE_STR,
        "container": str,
        "status": str,
        "state": str,
        "created": str,
        "harness": NULLABLE_STR,
        "pre_start": str,
        "network": str,
    }
]
VOLUMES_SHAPE = [
    {
        "name": str,
        "status": str,
        "size": NULLABLE_STR,
        "size_bytes": (int, type(None)),
        "harnesses": (list, type(None)),
        "versions": dict,
        "in_use_by": [str],
    }
]
PRUNE_SHAPE = {"removed": [str], "skipped": [{"name": str, "reason": str}]}
CHECK_SHAPE = {
    "passed": bool,
    "summary": {"ok": int, "warn": int, "fail": int},
    "checks": [dict],
    "sensitive_files": {
        "enabled": bool,
        "total": int,
        "high": int,
        "medium": int,
        "low": int,
        "findings": [
            {
                "path": NULLABLE_STR,
                "detector": str,
                "severity": str,
                "reason": str,
                "count": int,
                "examples": [str],
                "may_be_committed": bool,
            }
        ],
    },
}
TIER = {
    "tag": str,
    "held": NULLABLE_BOOL,
    "exists": NULLABLE_BOOL,
    "id": NULLABLE_STR,
    "current": NULLABLE_BOOL,
}
HOLDS = Holds("0123456789ab")  # this home's image tags in these tests
INFO_SHAPE = {
    "aishell_version": str,
    "project": {
        "root": str,
        "canonical": str,
        "hash": str,
        "container_prefix": str,
        "extension_tag": str,
    },
    "engine": {
        "cli": NULLABLE_STR,
        "kind": NULLABLE_STR,
        "answering": bool,
        "server_version": NULLABLE_STR,
        "error": NULLABLE_STR,
    },
    "images": {
        "known": bool,
        "home_id": str,
        "foundation": TIER,
        "base": {**TIER, "custom": bool, "dockerfile": NULLABLE_STR},
        "extension": {**TIER, "configured": bool, "dockerfile": NULLABLE_STR},
        "run_image": str,
        "note": NULLABLE_STR,
    },
    "harness_volume": {"name": NULLABLE_STR, "exists": NULLABLE_BOOL, "ready": NULLABLE_BOOL},
    "harnesses": dict,
    "gitleaks": {"installed": bool, "last_scan": NULLABLE_STR},
    "files": {
        "aishell_home": str,
        "state_file": str,
        "state_found": bool,
        "state_error": NULLABLE_STR,
        "build_time": NULLABLE_STR,
        "config": [{"scope": str, "path": str, "exists": bool, "error": NULLABLE_STR}],
        "config_in_effect": [str],
        "config_error": NULLABLE_STR,
    },
    "network": (dict, type(None)),
}
HARNESS_ENTRY = {
    "label": str,
    "harness": bool,
    "enabled": bool,
    "pin": NULLABLE_STR,
    "version": NULLABLE_STR,
    "config_paths": [{"path": str, "kind": str, "exists": bool}],
}


def assert_shape(value: Any, shape: Any, where: str = "$") -> None:
    if isinstance(shape, dict):
        assert isinstance(value, dict), f"{where}: expected an object, got {value!r}"
        assert set(value) == set(shape), f"{where}: keys {sorted(value)} != {sorted(shape)}"
        for key, sub in shape.items():
            assert_shape(value[key], sub, f"{where}.{key}")
    elif isinstance(shape, list):
        assert isinstance(value, list), f"{where}: expected an array, got {value!r}"
        for i, item in enumerate(value):
            assert_shape(item, shape[0], f"{where}[{i}]")
    else:
        assert isinstance(value, shape), f"{where}: {value!r} is not {shape}"
        if shape is int or (isinstance(shape, tuple) and int in shape):
            assert not isinstance(value, bool), f"{where}: bool where int expected"


def check_entry_ok(entry: dict[str, Any]) -> None:
    assert set(entry) <= {"section", "status", "label", "detail"}
    assert {"section", "status", "label"} <= set(entry)
    assert entry["status"] in ("ok", "warn", "fail")


@pytest.fixture(autouse=True)
def _no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("FORCE_COLOR", raising=False)


# ========================================================================= ps

F, D, R, L = ps.FAILED_SENTINEL, ps.DONE_SENTINEL, ps.READY_SENTINEL, ps.PRE_START_LOG


@pytest.mark.parametrize(
    ("probe", "running", "expected"),
    [
        (f"{R}\n", False, "none"),  # not running: always none
        (None, False, "none"),
        (None, True, "pending"),  # the probe failed
        ("", True, "pending"),  # entrypoint not done yet
        (f"{L}\n", True, "pending"),  # entrypoint not done, pre_start configured
        (f"{R}\n", True, "none"),  # no pre_start configured
        (f"{R}\n{L}\n", True, "pending"),  # pre_start still running
        (f"{D}\n{R}\n{L}\n", True, "ready"),
        (f"{F}\n{R}\n{L}\n", True, "failed"),
        (f"{F}\n{D}\n{R}\n{L}\n", True, "failed"),  # failed wins
        (f"  {D}  \n\n{R}\n", True, "ready"),  # whitespace tolerated
    ],
)
def test_pre_start_state(probe: str | None, running: bool, expected: str) -> None:
    assert ps.pre_start_state(probe, running=running) == expected
    assert expected in ps.PRE_START_STATES


def test_probe_script_names_every_sentinel() -> None:
    for path in (F, D, R, L):
        assert path in ps.PROBE_SCRIPT
    assert ps.PROBE_SCRIPT.rstrip().endswith("exit 0")


PS_LINES = "\n".join(
    json.dumps(item)
    for item in [
        {
            "CreatedAt": "2026-11-28 04:13:22 +0000 UTC",
            "ID": "a17bd5a586ad",
            "Labels": "aishell.managed=1,aishell.project=/w/a,b,aishell.project.hash=2e0d7515,"
            "aishell.kind=harness,aishell.name=review,aishell.harness=claude",
            "Names": "aishell-2e0d7515-review",
            "RunningFor": "5 minutes ago",
            "State": "running",
            "Status": "Up 5 minutes",
        },
        {
            "CreatedAt": "2026-11-28 04:10:00 +0000 UTC",
            "ID": "b27bd5a586ad",
            "Labels": "aishell.managed=1,aishell.project.hash=2e0d7515,aishell.kind=exec",
            "Names": "quirky_turing",
            "RunningFor": "8 minutes ago",
            "State": "exited",
            "Status": "Exited (0) 7 minutes ago",
        },
        {
            "CreatedAt": "2026-11-28 04:12:00 +0000 UTC",
            "ID": "c37bd5a586ad",
            "Labels": "aishell.project.hash=2e0d7515,aishell.kind=shell,aishell.name=shell",
            "Names": "aishell-2e0d7515-shell",
            "RunningFor": "6 minutes ago",
            "State": "running",
            "Status": "Up 6 minutes",
        },
    ]
)


def rows() -> list[ps.ContainerRow]:
    return ps.rows_from_ps(parse_json_lines(PS_LINES + "\n"))


def test_rows_from_ps_lines() -> None:
    got = rows()
    assert [r.display_name for r in got] == ["review", "shell", "(exec)"]  # exec last
    review = got[0]
    assert review.container == "aishell-2e0d7515-review"
    assert review.harness == "claude"
    assert review.kind == "harness"
    assert review.running
    assert review.created == "2026-11-28T04:13:22+00:00"
    assert review.created_ago == "5 minutes ago"
    exec_row = got[2]
    assert exec_row.name is None and not exec_row.running
    assert exec_row.status == "Exited (0) 7 minutes ago"


def test_with_probes_and_json_shape() -> None:
    probed = ps.with_probes(
        rows(),
        {
            "aishell-2e0d7515-review": f"{F}\n{R}\n{L}\n",
            "aishell-2e0d7515-shell": None,
            "quirky_turing": f"{D}\n",  # not running: ignored
        },
    )
    data = ps.to_json(probed)
    assert_shape(data, PS_SHAPE)
    assert [d["pre_start"] for d in data] == ["failed", "pending", "none"]
    assert data[2]["name"] is None
    assert json.loads(json.dumps(data)) == data


def test_table_and_failed_banner() -> None:
    probed = ps.with_probes(rows(), {"aishell-2e0d7515-review": f"{F}\n{R}\n"})
    table = ps.render_table(probed)
    assert table[0].split() == ["NAME", "STATUS", "CREATED", "PRE_START", "NETWORK"]
    assert "FAILED" in table[1] and table[1].startswith("review")
    assert table[3].startswith("(exec)")
    banner = ps.failed_banner(probed, "docker")
    assert banner[0] == "pre_start failed in review; see its log:"
    assert banner[1] == "  docker exec aishell-2e0d7515-review cat /tmp/pre-start.log"
    assert ps.failed_banner(ps.with_probes(rows(), {}), "docker") == []


def test_iso_time() -> None:
    assert ps.iso_time("2026-11-28 04:13:22 +0000 UTC") == "2026-11-28T04:13:22+00:00"
    assert ps.iso_time("2026-11-28 04:13:22.123 -0530 X") == "2026-11-28T04:13:22-05:30"
    assert ps.iso_time("2026-11-28T04:13:22Z") == "2026-11-28T04:13:22"
    assert ps.iso_time("yesterday") == "yesterday"


def test_parse_label_string() -> None:
    assert parse_label_string("a=b,c,d.e=1,f=") == {"a": "b,c", "d.e": "1", "f": ""}
    assert parse_label_string({"a": "b", "n": None}) == {"a": "b", "n": ""}  # podman
    assert parse_label_string("") == {}
    assert parse_label_string(None) == {}


def test_parse_json_lines() -> None:
    assert parse_json_lines('{"a": 1}\n\nnot json\n{"b": 2}\n') == [{"a": 1}, {"b": 2}]
    assert parse_json_lines('[{"a": 1}, 3]') == [{"a": 1}]
    assert parse_json_lines("  ") == []


# ==================================================================== volumes


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


def volume_rows() -> list[volumes.VolumeRow]:
    return volumes.build_rows(
        ["aishell-harness-ccc", "aishell-harness-aaa", "aishell-harness-bbb"],
        labels={
            "aishell-harness-aaa": {
                "aishell.harnesses": "claude,opencode",
                "aishell.harness.pins": "claude=latest,opencode=1.2.3",
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
    assert lines[0].split() == ["NAME", "STATUS", "SIZE", "HARNESSES", "IN", "USE", "BY"]
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
        ["volumes", "bogus"],
        ["volumes", "list", "somename"],
        ["volumes", "--bogus"],
        ["ps", "extra"],
        ["ps", "--bogus"],
        ["info", "--nope"],
        ["check", "x"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("Error:")


# ======================================================================= info

FOUNDATION = {"Id": "sha256:f", "Config": {"Labels": {"aishell.foundation.hash": "fh"}}}


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


class FakeEngine:
    binary = "/usr/bin/docker"
    kind = "docker"
    name = "docker"


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
            discovery.ConfigFile("global", "/home/u/.aishell/config.yaml", True),
            discovery.ConfigFile("project", "/w/proj/.aishell/config.yaml", False),
        ],
        "foundation_hash": "fh",
        "engine": FakeEngine(),
        "server_version": "28.0",
        "images": {
            HOLDS.foundation: FOUNDATION,
            HOLDS.base: {"Id": "sha256:f", "Config": {"Labels": {}}},
        },
        "volume_name": VOLUME,
        "volume_item": {"Name": VOLUME, "CreatedAt": "t1"},
        "volume_known": True,
    }
    defaults.update(kw)
    return gathered(**defaults)


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
        config_files=[discovery.ConfigFile("global", "/x/config.yaml", False)],
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


def test_volume_ready() -> None:
    item = {"CreatedAt": "t1"}
    assert discovery.volume_ready(GOOD_STATE, VOLUME, item)
    assert not discovery.volume_ready(GOOD_STATE, VOLUME, {"CreatedAt": "t2"})  # recreated since
    assert not discovery.volume_ready(GOOD_STATE, VOLUME, None)
    assert not discovery.volume_ready(None, VOLUME, item)
    assert not discovery.volume_ready(GOOD_STATE, "other", item)


# ====================================================================== check


def statuses(checks: list[check.Check]) -> list[tuple[str, str]]:
    return [(c.status, c.label) for c in checks]


def test_aggregation_and_exit_code() -> None:
    oks = [check.Check("Engine", "ok", "a"), check.Check("Setup", "warn", "b")]
    assert check.summary(oks) == {"ok": 1, "warn": 1, "fail": 0}
    assert check.passed(oks) and check.exit_code(oks) == 0
    failing = [*oks, check.Check("Setup", "fail", "c")]
    assert not check.passed(failing) and check.exit_code(failing) == 1
    assert check.summary([]) == {"ok": 0, "warn": 0, "fail": 0}


def test_good_setup_has_no_failures() -> None:
    g = good()
    checks = (
        check.engine_checks(g)
        + check.setup_checks(g, discovery.stack_of(g))
        + check.harness_checks(g)
        + check.config_checks(g, {})
        + check.mount_checks(g.config)
    )
    assert all(c.status == "ok" for c in checks), statuses(checks)
    assert ("ok", "OpenCode 1.18.33") in statuses(checks)


def test_engine_missing_or_silent_is_critical() -> None:
    missing = check.engine_checks(gathered(engine_error="'docker' was not found on PATH"))
    assert statuses(missing) == [("fail", "Engine CLI not found")]
    silent = check.engine_checks(gathered(engine=FakeEngine(), engine_error="not answering"))
    assert [c.status for c in silent] == ["ok", "fail"]
    g = gathered(engine_error="x", state=GOOD_STATE, config=Config())
    setup = check.setup_checks(g, discovery.stack_of(g))
    assert statuses(setup)[-1] == ("warn", "Images not checked")


def test_setup_checks() -> None:
    no_setup = good(state=None, foundation_hash=None)
    got = check.setup_checks(no_setup, discovery.stack_of(no_setup))
    assert got[0].status == "fail" and got[0].label == "No setup found"

    damaged = good(state=None, state_error="the state file is damaged")
    assert check.setup_checks(damaged, discovery.stack_of(damaged))[0].status == "fail"

    no_foundation = good(images={})
    got = check.setup_checks(no_foundation, discovery.stack_of(no_foundation))
    assert statuses(got)[-1] == ("fail", "Foundation image is missing")

    stale = good(foundation_hash="changed")
    got = check.setup_checks(stale, discovery.stack_of(stale))
    assert ("warn", "Foundation image is out of date") in statuses(got)
    assert not any(c.status == "fail" for c in got)

    drift = good(
        images={HOLDS.foundation: FOUNDATION, HOLDS.base: {"Id": "x", "Config": {}}},
        extension_dockerfile="/w/proj/.aishell/Dockerfile",
        extension_hash="eh",
    )
    got = statuses(check.setup_checks(drift, discovery.stack_of(drift)))
    assert ("warn", "Base image will be pointed at the foundation on the next launch") in got
    assert ("warn", "Project image will be built on the next launch") in got


def test_harness_checks() -> None:
    missing = good(volume_item=None)
    got = check.harness_checks(missing)
    assert got[0].status == "warn" and got[0].label == "OpenCode: not installed yet"
    assert "installed on the next launch" in (got[0].detail or "")
    recreated = good(volume_item={"CreatedAt": "t2"})
    assert check.harness_checks(recreated)[0].status == "warn"
    none = good(state=State(), volume_name=None)
    assert check.harness_checks(none)[0].label == "No agents selected"
    assert check.harness_checks(good(state=None)) == []
    assert all(c.status != "fail" for c in check.harness_checks(missing))


def test_config_checks() -> None:
    bad = good(
        config=None,
        config_error="Invalid YAML in /w/proj/.aishell/config.yaml line 2: oops",
        config_files=[
            discovery.ConfigFile("global", "/g/config.yaml", False),
            discovery.ConfigFile(
                "project", "/w/proj/.aishell/config.yaml", True, "Invalid YAML ... line 2: oops"
            ),
        ],
    )
    got = check.config_checks(bad, {})
    assert [c.status for c in got] == ["ok", "fail"]
    assert got[1].detail == "Invalid YAML ... line 2: oops"
    assert check.mount_checks(None)[0].status == "warn"

    both = good(config=None, config_error="Found both .aishell/ and .sandbox/", config_files=[])
    assert statuses(check.config_checks(both, {})) == [("fail", "Configuration is invalid")]

    from aishell.config import EnvEntry

    env = good(config=Config(env=(EnvEntry("AISHELL_X", "1"), EnvEntry("TOKEN", None))))
    got = check.config_checks(env, {})
    assert ("fail", "env: AISHELL_X is set by aishell itself") in statuses(got)
    assert ("warn", "env: TOKEN is not set on the host") in statuses(got)
    assert ("warn", "env: TOKEN is not set on the host") not in statuses(
        check.config_checks(env, {"TOKEN": "x"})
    )
    certs = good(foundation_hash_error="ca_certificates: cannot read /x.crt")
    assert statuses(check.config_checks(certs, {}))[-1][0] == "fail"


def test_mount_checks() -> None:
    cfg = Config(
        mounts=(
            Mount("/data", "/data", False, "g.yaml"),
            Mount("/gone", "/x", True, "p.yaml"),
        )
    )
    got = check.mount_checks(cfg, exists=lambda p: p == "/data")
    assert statuses(got) == [("ok", "/data"), ("warn", "/gone does not exist")]
    assert got[1].detail == "skipped at launch (from p.yaml)"
    assert statuses(check.mount_checks(Config())) == [("ok", "No mounts configured")]


HIGH = Finding("ssh-key", Severity.HIGH, "SSH private key file", "id_rsa", may_be_committed=True)
GROUP = Finding(
    "env-file",
    Severity.MEDIUM,
    "Environment configuration file",
    None,
    count=5,
    examples=(".env", ".env.local"),
    label="env files",
)
LOW = Finding("env-template", Severity.LOW, "Environment template file", ".env.example")


def scan(*findings: Finding) -> ScanResult:
    return ScanResult(tuple(findings), (), 10, Path("/w/proj"))


def test_security_checks() -> None:
    danger = Danger("--privileged", "gives the container every capability", "docker_args")
    got = check.security_checks(
        dangers=[danger],
        detection_enabled=True,
        scan=scan(HIGH, GROUP, LOW),
        gitleaks=True,
        freshness_message="no gitleaks scan of this project on record",
    )
    assert statuses(got) == [
        ("warn", "docker_args: --privileged"),
        ("warn", "7 sensitive file(s) detected (1 high, 5 medium, 1 low)"),
        ("warn", "Gitleaks scan is stale"),
    ]
    assert got[1].lines[0] == "HIGH   id_rsa - SSH private key file (may be committed)"
    assert "5 files: env files" in got[1].lines[1]

    medium_only = check.security_checks(dangers=[], detection_enabled=True, scan=scan(GROUP))
    assert [c.status for c in medium_only] == ["ok", "ok"]

    disabled = check.security_checks(dangers=[], detection_enabled=False, scan=None)
    assert statuses(disabled)[1] == ("ok", "Sensitive-file detection is disabled")

    fresh = check.security_checks(
        dangers=[], detection_enabled=True, scan=scan(), gitleaks=True, scan_age_days=1
    )
    assert statuses(fresh)[-1] == ("ok", "Gitleaks scan of this project is 1 day old")
    no_gitleaks = check.security_checks(
        dangers=[], detection_enabled=True, scan=scan(), gitleaks=False, freshness_message="x"
    )
    assert len(no_gitleaks) == 2
    off = check.security_checks(
        dangers=[],
        detection_enabled=True,
        scan=scan(),
        gitleaks=True,
        freshness_check=False,
        freshness_message="x",
    )
    assert len(off) == 2


def test_check_json_shape() -> None:
    checks = [
        check.Check("Engine", "ok", "a"),
        check.Check("Setup", "fail", "b", "do this"),
        check.Check("Security", "warn", "c", lines=("x",)),
    ]
    data = check.check_json(checks, check.sensitive_json(scan(HIGH, GROUP, LOW), enabled=True))
    assert_shape(data, CHECK_SHAPE)
    for entry in data["checks"]:
        check_entry_ok(entry)
    assert data["passed"] is False
    assert data["summary"] == {"ok": 1, "warn": 1, "fail": 1}
    assert data["checks"][0] == {"section": "Engine", "status": "ok", "label": "a"}
    assert data["checks"][1]["detail"] == "do this"
    sf = data["sensitive_files"]
    assert (sf["total"], sf["high"], sf["medium"], sf["low"]) == (7, 1, 5, 1)
    assert sf["findings"][0]["severity"] == "high" and sf["findings"][0]["path"] == "id_rsa"
    assert sf["findings"][1]["path"] is None and sf["findings"][1]["count"] == 5
    empty = check.check_json([], check.sensitive_json(None, enabled=False))
    assert_shape(empty, CHECK_SHAPE)
    assert empty["passed"] is True


def test_render_text_marks() -> None:
    checks = [
        check.Check("Engine", "ok", "found", "docker"),
        check.Check("Setup", "warn", "stale", "run update"),
        check.Check("Setup", "fail", "missing"),
    ]
    utf8 = check.render_text(checks, utf8=True)
    assert utf8[:3] == ["Pre-flight checks", "-" * 40, "Engine"]
    assert "  ✓ found (docker)" in utf8
    assert "  ! stale" in utf8 and "      run update" in utf8
    assert "  ✗ missing" in utf8
    assert utf8[-1] == "✗ Some critical checks failed (1 warning)"
    ascii_lines = check.render_text(checks[:1], utf8=False)
    assert "  + found (docker)" in ascii_lines
    assert ascii_lines[-1] == "+ All critical checks passed"
    assert all(line.isascii() for line in ascii_lines)
    assert "  x missing" in check.render_text(checks, utf8=False)


# ------------------------------------------------- commands without an engine


@pytest.fixture
def no_engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
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


def test_info_works_without_engine(no_engine: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert info.main(["--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert_shape(data, INFO_SHAPE)
    assert data["project"]["root"] == str(no_engine)
    assert data["images"]["known"] is False
    assert "not found" in data["images"]["note"]
    assert info.main([]) == 0
    assert "Project" in capsys.readouterr().out


def test_check_without_engine_or_setup_fails(
    no_engine: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (no_engine / ".env").write_text("X=1\n")
    assert check.main(["--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert_shape(data, CHECK_SHAPE)
    for entry in data["checks"]:
        check_entry_ok(entry)
    assert data["passed"] is False
    failed = {(c["section"], c["label"]) for c in data["checks"] if c["status"] == "fail"}
    assert ("Engine", "Engine CLI not found") in failed
    assert ("Setup", "No setup found") in failed
    assert data["sensitive_files"]["total"] == 1
    assert check.main([]) == 1
    out = capsys.readouterr().out
    assert "Some critical checks failed" in out


def test_check_reports_invalid_project_config(
    no_engine: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (no_engine / ".aishell").mkdir()
    (no_engine / ".aishell" / "config.yaml").write_text("mounts: [\n")
    assert check.main(["--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    bad = [c for c in data["checks"] if c["section"] == "Configuration" and c["status"] == "fail"]
    assert bad and "Invalid YAML" in bad[0]["detail"]


def test_ps_and_volumes_report_a_missing_engine(
    no_engine: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["ps"]) == 1
    assert cli.main(["volumes"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("Error: 'docker' was not found on PATH") == 2


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


def test_run_checks_honours_detection_disabled(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("X=1\n")
    g = good(
        project=Project(root=str(tmp_path), canonical=str(tmp_path), hash="12345678"),
        config=Config(detection=DetectionConfig(enabled=False)),
    )
    checks, sensitive = check.run_checks(g, {})
    assert sensitive == check.sensitive_json(None, enabled=False)
    assert ("ok", "Sensitive-file detection is disabled") in statuses(checks)
    assert check.passed(checks)

    g_on = good(project=g.project, config=Config())
    checks, sensitive = check.run_checks(g_on, {})
    assert sensitive["enabled"] is True and sensitive["total"] == 1
    assert_shape(check.check_json(checks, sensitive), CHECK_SHAPE)


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


def test_server_version() -> None:
    docker = '{"Client": {"Version": "28.2.2"}, "Server": {"Version": "20.10.24"}}'
    assert discovery.server_version(docker) == "20.10.24"
    podman_local = '{"Client": {"Version": "5.0.1"}, "Server": null}'
    assert discovery.server_version(podman_local) == "5.0.1"
    assert discovery.server_version("[]") is None
    assert discovery.server_version("not json\n") == "not json"


class FakeVolumeEngine:
    """Stands in for the engine: records `volume rm` calls, never spawns anything."""

    name = "docker"

    def __init__(self, refuse: frozenset[str] = frozenset()) -> None:
        self.removed: list[str] = []
        self.refuse = refuse

    def capture_many(self, *commands: list[str]) -> list[Any]:
        from aishell.engine.client import Result

        results = []
        for cmd in commands:
            assert cmd[:2] == ["volume", "rm"]
            if cmd[2] in self.refuse:
                results.append(
                    Result(
                        1,
                        "",
                        f"Error response from daemon: remove {cmd[2]}: volume is in use - [abc]\n",
                    )
                )
            else:
                self.removed.append(cmd[2])
                results.append(Result(0, cmd[2] + "\n", ""))
        return results


def test_prune_asks_and_declining_removes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from aishell import output
    from aishell.errors import Aborted

    engine = FakeVolumeEngine()
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    asked: list[str] = []
    monkeypatch.setattr(output, "ask_yes_no", lambda q: asked.append(q) or False)
    with pytest.raises(Aborted):
        volumes._prune(engine, volume_rows(), only=(), yes=False, as_json=False)  # type: ignore[arg-type]
    assert asked == ["Remove 1 volume(s)?"] and engine.removed == []


def test_prune_without_terminal_needs_yes(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setattr(sys.stdin, "isatty", lambda: False, raising=False)
    engine = FakeVolumeEngine()
    with pytest.raises(AishellError, match="without confirmation") as info_:
        volumes._prune(engine, volume_rows(), only=(), yes=False, as_json=True)  # type: ignore[arg-type]
    assert "--yes" in (info_.value.hint or "")
    assert engine.removed == []


def test_prune_yes_json(capsys: pytest.CaptureFixture[str]) -> None:
    engine = FakeVolumeEngine()
    assert volumes._prune(engine, volume_rows(), only=(), yes=True, as_json=True) == 0  # type: ignore[arg-type]
    data = json.loads(capsys.readouterr().out)
    assert_shape(data, PRUNE_SHAPE)
    assert data == {
        "removed": ["aishell-harness-aaa"],
        "skipped": [{"name": "aishell-harness-ccc", "reason": "in use by containers a-box, b-box"}],
    }


def test_prune_engine_refusal_is_reported_as_skipped(capsys: pytest.CaptureFixture[str]) -> None:
    engine = FakeVolumeEngine(refuse={"aishell-harness-aaa"})
    assert volumes._prune(engine, volume_rows(), only=(), yes=True, as_json=False) == 0  # type: ignore[arg-type]
    out = capsys.readouterr().out
    assert (
        "Skipping aishell-harness-aaa (remove aishell-harness-aaa: volume is in use - [abc])" in out
    )
    assert "Removed" not in out and out.rstrip().endswith("Prune complete.")
