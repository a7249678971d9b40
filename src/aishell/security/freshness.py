"""When the project was last scanned with gitleaks, and whether that is too long ago."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from aishell import state

SCAN_COMMANDS = frozenset({"dir", "directory", "git", "detect", "protect", "stdin"})


def is_scan(args: Sequence[str]) -> bool:
    """True when `aishell gitleaks ARGS` runs a scan (no args = the default scan)."""
    first = next((a for a in args if not a.startswith("-")), None)
    return not args or first in SCAN_COMMANDS


def record_scan(project: str, args: Sequence[str], status: int, *, now: datetime | None = None) -> bool:
    """Record a completed scan (gitleaks exits 0: clean, 1: leaks found)."""
    if status not in (0, 1) or not is_scan(args):
        return False
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def mutate(current: state.State) -> None:
        current.gitleaks_scans[project] = stamp

    state.update(mutate)
    return True


def age_days(last_scan: str | None, *, now: datetime | None = None) -> int | None:
    """Whole days since `last_scan` (ISO 8601), None when never scanned or unreadable."""
    if not last_scan:
        return None
    try:
        then = datetime.strptime(last_scan, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None
    return max(0, ((now or datetime.now(UTC)) - then).days)


def staleness_message(last_scan: str | None, threshold: int, *, now: datetime | None = None) -> str | None:
    """A warning text when the scan is missing or `threshold` days old or more, else None."""
    days = age_days(last_scan, now=now)
    if days is None:
        return "no gitleaks scan of this project on record; run 'aishell gitleaks' to scan it"
    if days >= threshold:
        return (
            f"the last gitleaks scan of this project is {days} days old "
            f"(threshold {threshold}); run 'aishell gitleaks' to scan again"
        )
    return None
