"""`aishell ps`: pre_start states, rows from the engine's listing, the table and JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aishell import cli
from aishell.commands import ps
from aishell.engine.containers import parse_json_lines
from testing.json_shapes import PS_SHAPE, assert_shape

pytestmark = pytest.mark.usefixtures("no_color")


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


def test_ps_and_volumes_report_a_missing_engine(
    no_engine: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["ps"]) == 1
    assert cli.main(["volumes"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("Error: 'docker' was not found on PATH") == 2
