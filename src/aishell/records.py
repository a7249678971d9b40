"""Session records: what every sandbox session was and did, kept on the host.

Each launch (agent, shell, detached, `aishell run`; `exec` and `gitleaks` lighter,
without the git summary) gets a directory
`~/.aishell/sessions/<project-hash>/<session-id>/` (0700), holding

- `record.json`: what was started (agent and version, command line with the values of
  secrets never in it, image, harness volume, mounts, network policy), when it started
  and ended, how it ended and with which status, the git summary (`changes.py`), the
  number of denied requests and the post-session security notices;
- `output.log`: for `aishell run`, the agent's whole output (stdout and stderr, as
  they arrived);
- `network.log`: for an allowlist session, a copy of the proxy's decision log.

The sessions directory is never mounted into a sandbox (a sandbox sees the project,
the agents' per-project config and the mounts the user configured; a mount of the
aishell home is refused, and when the home sits inside the project it is hidden behind
an empty directory), and everything in a record is written by aishell on the host:
the agent's output comes from the engine CLI's pipes, the decision log from the proxy.
A finished record's files are made read-only (0400) as a mark; the wall is that no
sandbox can reach them.

Old records are pruned at the start of each launch: records of finished sessions older
than `sessions_keep_days` days, and beyond the newest `sessions_keep` of a project.
A record whose session still runs is never pruned.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from aishell import fileio, output, paths
from aishell.tuples import NamedTuple

VERSION: Final = 1
RECORD: Final = "record.json"
OUTPUT: Final = "output.log"
NETWORK: Final = "network.log"
MAX_NETWORK_LOG: Final = 64 * 1024 * 1024  # the most of a decision log a record copies
DEFAULT_KEEP_DAYS: Final = 30
DEFAULT_KEEP: Final = 100
# States: running (aishell waits for it), detached (it runs in the background), ended.
LIVE_STATES: Final = frozenset({"running", "detached"})
DETACHED: Final = ".detached"  # markers of a project's sessions running in the background
_ID = re.compile(r"(\d{8}T\d{6})Z-[0-9a-f]{6}")


# What a recorded command line never shows: the values of options and assignments
# whose names say they are secrets, and strings in well-known secret formats.
_SECRET_NAME = re.compile(
    r"(?i)(token|secret|passw(or)?d|passwd|api[_-]?key|access[_-]?key|private[_-]?key|"
    r"credential|auth|cookie|session[_-]?key)"
)
_SECRET_VALUE = re.compile(
    r"(sk-[A-Za-z0-9_-]{16,}|sk-ant-[A-Za-z0-9_-]{8,}|gh[pousr]_[A-Za-z0-9]{20,}|"
    r"github_pat_[A-Za-z0-9_]{20,}|xox[abprs]-[A-Za-z0-9-]{10,}|AKIA[0-9A-Z]{16}|"
    r"AIza[0-9A-Za-z_-]{30,}|glpat-[A-Za-z0-9_-]{20,}|eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]+)"
)
REDACTED: Final = "<redacted>"


def redact_args(args: Sequence[str]) -> list[str]:
    """A command line as a record keeps it: `NAME=value` and `--name value` /
    `--name=value` with a secret-looking name get their value replaced, and strings in
    a known secret format (API keys, tokens) are replaced wherever they appear."""
    out: list[str] = []
    hide_next = False
    for arg in args:
        if hide_next:
            out.append(REDACTED)
            hide_next = False
            continue
        name, eq, _value = arg.partition("=")
        if eq and _SECRET_NAME.search(name) and " " not in name:
            out.append(f"{name}={REDACTED}")
            continue
        if arg.startswith("-") and not eq and _SECRET_NAME.search(arg):
            hide_next = True
        out.append(_SECRET_VALUE.sub(REDACTED, arg))
    return out


def sessions_dir(environ: dict[str, str] | None = None) -> Path:
    return paths.aishell_home(environ) / "sessions"


def new_id() -> str:
    """A session id: UTC time and 6 random hex digits (sorts by start)."""
    return f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{os.urandom(3).hex()}"


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


class Record:
    """A record being written (one session)."""

    def __init__(self, directory: Path, data: dict[str, Any]) -> None:
        self.dir = directory
        self.data = data
        self.open_line = False  # `run`: the agent's stdout did not end with a newline

    @property
    def id(self) -> str:
        return str(self.data["id"])

    @property
    def output_path(self) -> Path:
        return self.dir / OUTPUT

    def save(self) -> None:
        _write_atomic(self.dir / RECORD, json.dumps(self.data, indent=1).encode())


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def begin(key: str, fields: Mapping[str, Any], *, session_id: str | None = None) -> Record | None:
    """Create the record of a session that starts now, under the project's `key`
    (None, with a warning, when the directory cannot be written: the session goes on
    without one)."""
    sid = session_id or new_id()
    base = sessions_dir() / key
    directory = base / sid
    try:
        base.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(sessions_dir(), 0o700)
        directory.mkdir(mode=0o700)
        data = {
            "version": VERSION,
            "id": sid,
            **fields,
            "state": "running",
            "started": iso(time.time()),
            "started_ts": time.time(),
            "pid": os.getpid(),
            "pid_start": fileio.process_start(os.getpid()),
        }
        record = Record(directory, data)
        record.save()
    except OSError as exc:
        output.warn(
            f"cannot write the session record in {base} ({exc.strerror or exc}); "
            "this session is not recorded"
        )
        return None
    return record


def end(
    record: Record,
    *,
    status: int | None,
    ended_by: str,
    changes: Mapping[str, Any] | None = None,
    notices: Sequence[Mapping[str, Any]] = (),
    network_log: Path | None = None,
) -> dict[str, Any]:
    """Conclude the record: how the session ended, what it changed; then the files
    are made read-only."""
    now = time.time()
    data = record.data
    data.pop("before", None)  # the comparison state is not part of the record
    data.update(
        state="ended",
        ended=iso(now),
        ended_ts=now,
        duration_seconds=round(now - float(data.get("started_ts") or now), 3),
        exit_status=status,
        ended_by=ended_by,
        notices=list(notices),
        record=str(record.dir),
    )
    if changes is not None:
        data["changes"] = dict(changes)
    denied = None
    if network_log is not None:
        with contextlib.suppress(OSError), open(network_log, "rb") as fh:
            text = fh.read(MAX_NETWORK_LOG)
            _write_atomic(record.dir / NETWORK, text)
            denied = count_denied(text.decode("utf-8", "replace"))
    network = dict(data.get("network") or {})
    network["denied_requests"] = denied if network.get("policy") == "allowlist" else 0
    data["network"] = network
    try:
        record.save()
        for name in (RECORD, OUTPUT, NETWORK):
            with contextlib.suppress(FileNotFoundError):
                os.chmod(record.dir / name, 0o400)
    except OSError as exc:
        output.warn(f"cannot finish the session record {record.dir} ({exc.strerror or exc})")
    return data


def mark(record: Record, state: str) -> None:
    """The session goes on in the background (`detached`): a marker in the project's
    `.detached/` says a later launch has to conclude it (`detached_records`)."""
    record.data["state"] = state
    with contextlib.suppress(OSError):
        record.save()
        if state == "detached":
            marks = record.dir.parent / DETACHED
            marks.mkdir(mode=0o700, exist_ok=True)
            (marks / record.id).touch(mode=0o600)


def detached_records(key: str) -> list[Record]:
    """The project's records of sessions left running in the background."""
    marks = sessions_dir() / key / DETACHED
    try:
        names = os.listdir(marks)
    except OSError:
        return []
    found = []
    for name in sorted(names):
        data = load(marks.parent / name)
        if data is None or data.get("state") != "detached":
            with contextlib.suppress(OSError):
                (marks / name).unlink()
            continue
        found.append(Record(marks.parent / name, data))
    return found


def unmark(record: Record) -> None:
    with contextlib.suppress(OSError):
        (record.dir.parent / DETACHED / record.id).unlink()


def count_denied(log: str) -> int:
    """The denied requests in a decision log (docs/network.md: `<time> DENY <session> ...`)."""
    count = 0
    for line in log.splitlines():
        fields = line.split(" ", 3)
        if len(fields) >= 3 and fields[1] == "DENY" and fields[0][:4].isdigit():
            count += 1
    return count


# ------------------------------------------------------------------ reading


def load(directory: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((directory / RECORD).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        return None
    data["record"] = str(directory)
    return data


def alive(data: Mapping[str, Any]) -> bool:
    """The session may still run: its aishell still waits for it, or it was detached."""
    if data.get("state") == "detached":
        return True
    if data.get("state") != "running":
        return False
    pid, started = data.get("pid"), data.get("pid_start")
    return isinstance(pid, int) and started is not None and fileio.process_start(pid) == started


def listing(project_hash: str | None) -> list[dict[str, Any]]:
    """The records of a project (None: of every project), newest first. A record left
    "running" by an aishell that is gone shows as ended by `lost`."""
    root = sessions_dir()
    dirs: list[Path] = []
    bases = [root / project_hash] if project_hash else _subdirs(root)
    for base in bases:
        dirs += _subdirs(base)
    found = []
    for directory in dirs:
        data = load(directory)
        if data is None:
            continue
        if data.get("state") == "running" and not alive(data):
            data["state"] = "ended"
            data["ended_by"] = "lost"
        found.append(data)
    found.sort(key=lambda d: (float(d.get("started_ts") or 0), str(d["id"])), reverse=True)
    return found


def _subdirs(path: Path) -> list[Path]:
    try:
        return [
            p
            for p in path.iterdir()
            if not p.name.startswith(".") and p.is_dir() and not p.is_symlink()
        ]
    except OSError:
        return []


def find(session: str, project_hash: str | None) -> list[Path]:
    """The record directories whose id is `session`, starts with it, or ends with it
    as its random part (this project's first, then every project's)."""
    if not session or "/" in session or session.startswith("."):
        return []
    for scope in ([project_hash] if project_hash else []) + [None]:
        hits = [
            Path(d["record"])
            for d in listing(scope)
            if d["id"] == session
            or d["id"].startswith(session)
            or d["id"].endswith("-" + session)  # its random part
        ]
        exact = [h for h in hits if h.name == session]
        if exact or hits:
            return exact or hits
    return []


# ------------------------------------------------------------------ pruning


class Entry(NamedTuple):
    id: str
    started: float
    live: bool


def to_prune(entries: Iterable[Entry], *, now: float, keep_days: int, keep: int) -> list[str]:
    """The records to remove: finished ones older than `keep_days` days, and the
    finished ones beyond the newest `keep` (a live one counts, but is never removed)."""
    ordered = sorted(entries, key=lambda e: (e.started, e.id), reverse=True)
    limit = now - keep_days * 86400
    doomed = []
    for index, entry in enumerate(ordered):
        if entry.live:
            continue
        if entry.started < limit or index >= keep:
            doomed.append(entry.id)
    return doomed


def started_of(sid: str) -> float | None:
    """When a session started, from its id (`YYYYmmddTHHMMSSZ-xxxxxx`, UTC)."""
    match = _ID.fullmatch(sid)
    if match is None:
        return None
    t = match.group(1)
    year, month, day = int(t[0:4]), int(t[4:6]), int(t[6:8])
    hour, minute, second = int(t[9:11]), int(t[11:13]), int(t[13:15])
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 62):
        return None
    return float(days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second)


def days_from_civil(year: int, month: int, day: int) -> int:
    """Days from 1970-01-01 to a date of the proleptic Gregorian calendar (as
    `calendar.timegm` counts them, a day past the month's end running on into the next;
    the arithmetic of H. Hinnant's `days_from_civil`, without importing `calendar` and
    `datetime` on a launch)."""
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month - 3 if month > 2 else month + 9) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


PRUNE_EVERY: Final = 3600.0  # seconds: how often the age rule is applied per project
PRUNED_STAMP: Final = ".pruned"


def prune(key: str, *, keep_days: int, keep: int, now: float | None = None) -> list[str]:
    """Remove the project's old records (see `to_prune`); the removed ids. Only the
    directory is listed (an id says when its session started); a record is read only
    when it would go, to tell whether its session still runs."""
    base = sessions_dir() / key
    try:
        names = [n for n in os.listdir(base) if not n.startswith(".")]
    except OSError:
        return []
    moment = time.time() if now is None else now
    stamp = base / PRUNED_STAMP
    if len(names) <= keep:  # the count rule holds: the age rule at most once an hour
        try:
            if moment - stamp.stat().st_mtime < PRUNE_EVERY:
                return []
        except OSError:
            pass
    with contextlib.suppress(OSError):
        stamp.touch()
    timed = [(n, started_of(n)) for n in names]
    entries = [Entry(n, t, False) for n, t in timed if t is not None]
    doomed = to_prune(entries, now=moment, keep_days=keep_days, keep=keep)
    removed = []
    for sid in doomed:
        data = load(base / sid)
        if data is not None and alive(data):
            continue  # never while the session runs
        remove(base / sid)
        removed.append(sid)
    return removed


def remove(directory: Path) -> None:
    with contextlib.suppress(OSError):
        os.chmod(directory, 0o700)
    import shutil  # (lazy: not on every launch)

    shutil.rmtree(directory, ignore_errors=True)
