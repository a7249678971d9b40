"""Gitleaks scan freshness (`security.freshness`): what counts as a scan, recording, age."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aishell import state
from aishell.security import freshness

NOW = datetime(2026, 7, 16, 12, 0, 0, tzinfo=UTC)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# ------------------------------------------------------------------ is_scan


@pytest.mark.parametrize(
    "args",
    [
        (),  # the default scan
        ("detect",),
        ("detect", "--no-git", "--verbose", "--source", "."),
        ("protect", "--staged"),
        ("dir", "--verbose", "."),
        ("directory", "src"),
        ("git", "-v"),
        ("--verbose", "detect"),
        ("-c", "gitleaks.toml", "detect"),  # an option's value is not the command
        ("--config", "dir", "detect"),
        ("--config=x.toml", "dir", "."),
        ("--no-banner", "git", "."),
        ("dir", "version"),  # scanning a directory that happens to be named "version"
    ],
    ids=repr,
)
def test_is_scan(args: tuple[str, ...]) -> None:
    assert freshness.is_scan(args) is True


@pytest.mark.parametrize(
    "args",
    [
        ("version",),
        ("help",),
        ("help", "detect"),
        ("completion", "bash"),
        ("stdin",),  # scans piped input, not the project
        ("--help",),
        ("detect", "--help"),
        ("dir", "-h"),
        ("--verbose",),  # no command: gitleaks prints its usage
        ("-c", "detect"),  # "detect" is the config file here
        ("--", "detect"),
        ("nonsense",),
    ],
    ids=repr,
)
def test_is_not_scan(args: tuple[str, ...]) -> None:
    assert freshness.is_scan(args) is False


def test_command_word() -> None:
    assert freshness.command_word(["-l", "debug", "--no-banner", "git", "."]) == "git"
    assert freshness.command_word(["--log-level=debug", "dir"]) == "dir"
    assert freshness.command_word([]) is None
    assert freshness.command_word(["-v"]) is None


def test_default_args_are_a_scan() -> None:
    assert freshness.is_scan(freshness.DEFAULT_ARGS)
    # Debian's gitleaks (8.16) has no `dir`; the default must not depend on it.
    assert freshness.DEFAULT_ARGS[0] == "detect"


# -------------------------------------------------------------- record_scan


def test_record_scan_writes_the_state(tmp_path: object) -> None:
    state.save(state.State(tools={"opencode": "latest"}, gitleaks=True))
    assert freshness.record_scan("/work/proj", (), 0, now=NOW) is True
    st = state.load()
    assert st is not None
    assert st.gitleaks_scans == {"/work/proj": "2026-07-16T12:00:00Z"}
    assert st.tools == {"opencode": "latest"}  # the rest of the state is kept


@pytest.mark.parametrize("status", [0, 1])
def test_record_scan_counts_clean_and_leaky_scans(status: int) -> None:
    state.save(state.State(gitleaks=True))
    assert freshness.record_scan("/p", ("detect", "--no-git"), status, now=NOW)
    st = state.load()
    assert st is not None and st.gitleaks_scans["/p"] == stamp(NOW)


@pytest.mark.parametrize(
    ("args", "status"),
    [
        ((), 2),  # gitleaks failed
        ((), 126),  # the engine could not run it
        ((), 130),  # interrupted
        (("version",), 0),
        (("detect", "--help"), 0),
        (("stdin",), 0),
    ],
)
def test_record_scan_ignores_failures_and_non_scans(args: tuple[str, ...], status: int) -> None:
    state.save(state.State(gitleaks=True))
    assert freshness.record_scan("/p", args, status, now=NOW) is False
    st = state.load()
    assert st is not None and st.gitleaks_scans == {}


def test_record_scan_keeps_other_projects_and_replaces_the_old_time() -> None:
    state.save(
        state.State(
            gitleaks=True,
            gitleaks_scans={"/a": "2020-01-01T00:00:00Z", "/b": "2020-01-01T00:00:00Z"},
        )
    )
    freshness.record_scan("/a", (), 1, now=NOW)
    st = state.load()
    assert st is not None
    assert st.gitleaks_scans == {"/a": stamp(NOW), "/b": "2020-01-01T00:00:00Z"}


def test_record_scan_uses_the_current_time() -> None:
    state.save(state.State(gitleaks=True))
    before = datetime.now(UTC).replace(microsecond=0)
    freshness.record_scan("/p", (), 0)
    st = state.load()
    assert st is not None
    recorded = datetime.strptime(st.gitleaks_scans["/p"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert before <= recorded <= datetime.now(UTC)


# ------------------------------------------------------------- age and staleness


@pytest.mark.parametrize(
    ("ago", "days"),
    [
        (timedelta(0), 0),
        (timedelta(hours=23, minutes=59), 0),
        (timedelta(days=1), 1),
        (timedelta(days=6, hours=23), 6),
        (timedelta(days=7), 7),
        (timedelta(days=400), 400),
        (-timedelta(days=3), 0),  # in the future (clock skew)
    ],
)
def test_age_days(ago: timedelta, days: int) -> None:
    assert freshness.age_days(stamp(NOW - ago), now=NOW) == days


@pytest.mark.parametrize("value", [None, "", "yesterday", "2026-07-16", "2026-07-16 12:00:00"])
def test_age_days_unknown(value: str | None) -> None:
    assert freshness.age_days(value, now=NOW) is None


@pytest.mark.parametrize("threshold", [1, 7, 30])
def test_exactly_threshold_days_is_stale(threshold: int) -> None:
    message = freshness.staleness_message(
        stamp(NOW - timedelta(days=threshold)), threshold, now=NOW
    )
    assert message is not None
    assert f"{threshold} day" in message and f"threshold {threshold}" in message
    assert "aishell gitleaks" in message


@pytest.mark.parametrize("threshold", [1, 7, 30])
def test_one_day_below_threshold_is_fresh(threshold: int) -> None:
    last = stamp(NOW - timedelta(days=threshold - 1, hours=23, minutes=59))
    assert freshness.staleness_message(last, threshold, now=NOW) is None


def test_never_scanned_is_missing() -> None:
    message = freshness.staleness_message(None, 7, now=NOW)
    assert message is not None
    assert message.startswith("no gitleaks scan of this project on record")
    assert "aishell gitleaks" in message


def test_unreadable_record_counts_as_missing() -> None:
    message = freshness.staleness_message("garbage", 7, now=NOW)
    assert message is not None and message.startswith("no gitleaks scan")


def test_day_plural() -> None:
    one = freshness.staleness_message(stamp(NOW - timedelta(days=1)), 1, now=NOW)
    many = freshness.staleness_message(stamp(NOW - timedelta(days=9)), 7, now=NOW)
    assert one is not None and "is 1 day old" in one
    assert many is not None and "is 9 days old" in many


def test_scan_recorded_now_is_fresh_for_launch() -> None:
    """The record written by record_scan is what staleness_message reads back."""
    state.save(state.State(gitleaks=True))
    freshness.record_scan("/p", (), 0)
    st = state.load()
    assert st is not None
    assert freshness.staleness_message(st.gitleaks_scans.get("/p"), 7) is None
    assert freshness.staleness_message(st.gitleaks_scans.get("/other"), 7) is not None
