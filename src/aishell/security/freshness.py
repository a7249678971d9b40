"""When the project was last scanned with gitleaks, and whether that is too long ago.

`aishell gitleaks ARGS` records the time of a completed scan of the project
(gitleaks exits 0: no leaks, 1: leaks found) in the state file, keyed by the
project's canonical path. Agent and shell runs warn when that record is missing
or `gitleaks_freshness_threshold` days old or more.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from aishell import state

# What `aishell gitleaks` runs without arguments. `detect --no-git` scans the
# files of the working tree; it works with Debian's gitleaks 8.16 (no `dir`
# command yet) and with later releases, which keep `detect` as an alias.
DEFAULT_ARGS = ("detect", "--no-git", "--verbose", "--source", ".")

# Subcommands that scan the project (`stdin` scans piped input, not the project).
SCAN_COMMANDS = frozenset({"detect", "protect", "dir", "directory", "file", "git"})
OTHER_COMMANDS = frozenset({"version", "help", "completion", "stdin"})
HELP_FLAGS = frozenset({"-h", "--help"})
# gitleaks options whose value may follow as the next word (`-c FILE`).
VALUE_OPTIONS = frozenset(
    {
        "-b", "--baseline-path", "-c", "--config", "-l", "--log-level", "-f",
        "--report-format", "-r", "--report-path", "-s", "--source", "--exit-code",
        "--max-target-megabytes", "-i", "--gitleaks-ignore-path", "--enable-rule",
        "--max-decode-depth", "--max-archive-depth", "--report-template", "--timeout",
        "--log-opts", "--diagnostics", "--diagnostics-dir", "--platform",
    }
)  # fmt: skip

TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def command_word(args: Sequence[str]) -> str | None:
    """The gitleaks subcommand in ARGS (options and their values skipped), or None."""
    skip_next = False
    for arg in args:
        if skip_next:
            skip_next = False
            continue
        if arg == "--":
            return None
        if arg.startswith("-"):
            skip_next = arg in VALUE_OPTIONS  # `--opt=value` carries its own value
            continue
        return arg
    return None


def is_scan(args: Sequence[str]) -> bool:
    """True when `aishell gitleaks ARGS` scans the project (no args: the default scan)."""
    if not args:
        return True
    if any(arg in HELP_FLAGS for arg in args):
        return False
    return command_word(args) in SCAN_COMMANDS


def record_scan(
    project: str, args: Sequence[str], status: int, *, now: datetime | None = None
) -> bool:
    """Record a completed scan (gitleaks exits 0: clean, 1: leaks found). True if recorded."""
    if status not in (0, 1) or not is_scan(args):
        return False
    stamp = (now or datetime.now(UTC)).strftime(TIME_FORMAT)

    def mutate(current: state.State) -> None:
        current.gitleaks_scans[project] = stamp

    state.update(mutate)
    return True


def age_days(last_scan: str | None, *, now: datetime | None = None) -> int | None:
    """Whole days since `last_scan` (ISO 8601), None when never scanned or unreadable.

    A time in the future (clock skew) counts as 0 days.
    """
    if not last_scan:
        return None
    try:
        then = datetime.strptime(last_scan, TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None
    return max(0, ((now or datetime.now(UTC)) - then).days)


def staleness_message(
    last_scan: str | None, threshold: int, *, now: datetime | None = None
) -> str | None:
    """A warning when the scan is missing or `threshold` days old or more, else None."""
    days = age_days(last_scan, now=now)
    if days is None:
        return "no gitleaks scan of this project on record; run 'aishell gitleaks' to scan it"
    if days >= threshold:
        return (
            f"the last gitleaks scan of this project is {days} day{'' if days == 1 else 's'} "
            f"old (threshold {threshold}); run 'aishell gitleaks' to scan again"
        )
    return None
