"""What this aishell process is making on the engine and has not yet recorded.

Before a command creates something that must not outlive it unrecorded (a harness
volume it is about to fill, this home's hold on it, a fill container), it writes a
line to its journal, `<aishell home>/.pending/<token>.jsonl`; once the thing is
recorded in the state file (or removed) it writes a `done` line. The process holds
an exclusive `flock` on its journal for as long as it lives, and removes the file
when it ends with nothing outstanding.

However the process ends (Ctrl-C, SIGTERM, SIGKILL, a crash, a reboot), the kernel
releases the lock. The next aishell command finds a journal it can lock: its owner
is gone, and what it lists and never marked done is collected
(`engine/leftovers.py`). Only this home's own journals are read, and only entries
of the kinds below, so nothing else can be removed through a journal.

The file format is one JSON object per line, appended with a single `write`:
`{"add": KIND, "name": NAME}` or `{"done": KIND, "name": NAME}`. A torn last line
(a crash mid-write) is ignored.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from typing import TYPE_CHECKING

from aishell import paths
from aishell.tuples import NamedTuple

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

PENDING_DIR = ".pending"
# What a journal may list: a fill container, a hold, a harness volume, an image a build
# committed, a build's temporary context directory.
KINDS = ("container", "hold", "volume", "image", "directory")


class Entry(NamedTuple):
    kind: str  # one of KINDS
    name: str
    engine: str = ""  # the engine CLI it was made with (absolute path)


def pending_dir(environ: dict[str, str] | None = None) -> Path:
    return paths.aishell_home(environ) / PENDING_DIR


class Journal:
    """This process's journal. The file is created (and locked) on the first `add`,
    so a command that makes nothing writes nothing."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.token = os.urandom(8).hex()  # also labels the containers this process makes
        self.path = directory / f"{self.token}.jsonl"
        self._fd: int | None = None
        self._open: dict[Entry, None] = {}  # outstanding entries, in order

    @property
    def entries(self) -> list[Entry]:
        return list(self._open)

    def _ensure_file(self) -> int:
        if self._fd is not None:
            return self._fd
        from aishell.state import home_error

        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Locked under a temporary name, then renamed: a collector never sees an
        # unlocked journal of a live process.
        tmp = self.directory / f".{self.token}.new"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.replace(tmp, self.path)
        except OSError as exc:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise home_error(self.path, exc, "write") from exc
        self._fd = fd
        return fd

    def _write(self, record: dict[str, str]) -> None:
        from aishell.state import home_error

        fd = self._ensure_file()
        line = (json.dumps(record, sort_keys=True) + "\n").encode()
        try:
            os.write(fd, line)
            os.fsync(fd)
        except OSError as exc:
            raise home_error(self.path, exc, "write") from exc

    def add(self, kind: str, name: str, *, engine: str) -> None:
        """Write down, *before* making it, that this process makes `name` with the
        engine CLI `engine`."""
        if kind not in KINDS:
            raise ValueError(f"unknown journal kind {kind!r}")
        entry = Entry(kind, name, engine)
        if entry in self._open:
            return
        self._write({"add": kind, "name": name, "engine": engine})
        self._open[entry] = None

    def try_add(self, kind: str, name: str, *, engine: str) -> None:
        """`add`, unless the journal cannot be written (a read-only or full home): for
        what a command can do without the guarantee (a build's intermediate images)."""
        from aishell.errors import AishellError

        with contextlib.suppress(AishellError):
            self.add(kind, name, engine=engine)

    def done(self, kind: str, name: str) -> None:
        """`name` is recorded (or gone): nothing to collect if this process dies now."""
        for entry in [e for e in self._open if e.kind == kind and e.name == name]:
            del self._open[entry]
            try:
                self._write({"done": kind, "name": name})
            except Exception:  # (the next command finds it gone, or removes it)
                if self._open:
                    raise

    def close(self) -> None:
        """End of the process: with nothing outstanding the journal is removed; else it
        stays (unlocked) for the next command to collect."""
        if self._fd is None:
            return
        if not self._open:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
        os.close(self._fd)
        self._fd = None


_current: Journal | None = None


def current() -> Journal:
    """This process's journal (made on first use)."""
    global _current
    if _current is None:
        _current = Journal(pending_dir())
    return _current


def close_current() -> None:
    global _current
    if _current is not None:
        _current.close()
        _current = None


def replay(text: str) -> list[Entry]:
    """The entries a journal's text adds and never marks done, in order."""
    outstanding: dict[Entry, None] = {}
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a torn line
        if not isinstance(record, dict):
            continue
        name = record.get("name")
        engine = record.get("engine", "")
        if not isinstance(name, str) or not isinstance(engine, str):
            continue
        if record.get("add") in KINDS:
            outstanding[Entry(record["add"], name, engine)] = None
        elif record.get("done") in KINDS:
            for entry in [e for e in outstanding if e[:2] == (record["done"], name)]:
                del outstanding[entry]
    return list(outstanding)


def has_pending(environ: dict[str, str] | None = None) -> bool:
    """Any journal at all (cheap: one directory listing, on every command)."""
    try:
        return any(n.endswith(".jsonl") for n in os.listdir(pending_dir(environ)))
    except OSError:
        return False


class Abandoned:
    """A journal whose process is gone, locked by the collector."""

    def __init__(self, path: Path, entries: list[Entry]) -> None:
        self.path = path
        self.entries = entries
        self.keep = False  # set when collecting failed (e.g. the engine did not answer)


@contextlib.contextmanager
def abandoned(environ: dict[str, str] | None = None) -> Iterator[list[Abandoned]]:
    """The journals whose process is gone, locked for the caller while it collects
    them; when the block ends, each is removed unless the caller set `keep`."""
    directory = pending_dir(environ)
    claimed: list[tuple[Abandoned, int]] = []
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        names = []
    mine = _current.path.name if _current is not None else None
    try:
        for name in names:
            if not name.endswith(".jsonl") or name == mine:
                continue
            path = directory / name
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # its process is alive (or another collector has it)
                os.close(fd)
                continue
            with os.fdopen(os.dup(fd), "r", encoding="utf-8", errors="replace") as fh:
                text = fh.read(1 << 20)
            claimed.append((Abandoned(path, replay(text)), fd))
        found = [item for item, _ in claimed]
        yield found
        for item in found:
            if not item.keep:
                with contextlib.suppress(OSError):
                    os.unlink(item.path)
    finally:
        for _, fd in claimed:
            os.close(fd)


def in_progress(environ: dict[str, str] | None = None) -> set[str]:
    """What live aishell processes of this home are making right now (their journals
    are locked); this process's own included."""
    names: set[str] = {e.name for e in _current.entries} if _current is not None else set()
    directory = pending_dir(environ)
    try:
        listing = os.listdir(directory)
    except OSError:
        return names
    for name in listing:
        if not name.endswith(".jsonl"):
            continue
        try:
            fd = os.open(directory / name, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:  # locked by its live process: what it makes is in progress
                with os.fdopen(os.dup(fd), "r", encoding="utf-8", errors="replace") as fh:
                    names.update(e.name for e in replay(fh.read(1 << 20)))
            else:
                fcntl.flock(fd, fcntl.LOCK_UN)  # abandoned: collected, not in progress
        finally:
            os.close(fd)
    return names
