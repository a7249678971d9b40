"""`~/.aishell/state.json`: the saved setup and what aishell knows of its volumes.

The file is the only persistent record aishell keeps. It is written
atomically (temporary file + rename) so a crash never leaves half a file.

It is read by type: every field is checked (a known agent with a valid pin, a
harness volume name of aishell's own form, strings where strings belong), and a
field that fails is *damage*. `load()` refuses a damaged file with one error that
names what is wrong and the command that repairs it; `load(repair=True)` (setup
and update) keeps what can be read and reports what it dropped, so that command
really does repair it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
from typing import TYPE_CHECKING, Any

from aishell import paths
from aishell.constants import HARNESS_VOLUME_PATTERN
from aishell.errors import AishellError, UsageError
from aishell.harnesses import BY_NAME
from aishell.tuples import NamedTuple
from aishell.versions import parse_pin

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

SCHEMA = 1
_VOLUME_NAME = re.compile(HARNESS_VOLUME_PATTERN)

REPAIR_WITH_SETUP = "run 'aishell setup --with-<agent> ...' to rewrite it"


class StateError(AishellError):
    """The state file cannot be read, or is damaged."""


class VolumeRecord:
    """What aishell saw of a filled harness volume."""

    __slots__ = ("created_at", "filled_at", "instance", "versions")

    def __init__(
        self,
        created_at: str,
        versions: dict[str, str] | None = None,
        filled_at: str = "",
        instance: str = "",
    ) -> None:
        self.created_at = created_at  # the engine's CreatedAt of the volume we saw filled
        self.versions = dict(versions or {})  # tool -> installed version
        self.filled_at = filled_at
        # The volume's `aishell.volume.id` label: which volume of that name we saw
        # filled (a volume removed and made again under the same name has another).
        self.instance = instance

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "created_at": self.created_at,
            "versions": self.versions,
            "filled_at": self.filled_at,
        }
        if self.instance:
            data["instance"] = self.instance
        return data

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VolumeRecord) and self.to_json() == other.to_json()

    def __repr__(self) -> str:
        return f"VolumeRecord({self.to_json()!r})"


class State:
    """The saved setup (mutable: commands change it inside `update`)."""

    __slots__ = (
        "build_time",
        "foundation_hash",
        "foundation_id",
        "gitleaks",
        "gitleaks_scans",
        "harness_volume",
        "tools",
        "volumes",
    )

    def __init__(
        self,
        tools: dict[str, str] | None = None,
        gitleaks: bool = False,
        foundation_hash: str = "",
        build_time: str = "",
        harness_volume: str = "",
        volumes: dict[str, VolumeRecord] | None = None,
        gitleaks_scans: dict[str, str] | None = None,
        foundation_id: str = "",
    ) -> None:
        self.tools = dict(tools or {})  # tool name -> "latest" or X.Y.Z
        self.gitleaks = gitleaks
        self.foundation_hash = foundation_hash  # the inputs of the foundation this home holds
        self.foundation_id = foundation_id  # its image ID (what a launch falls back to)
        self.build_time = build_time
        self.harness_volume = harness_volume
        self.volumes = dict(volumes or {})
        self.gitleaks_scans = dict(gitleaks_scans or {})  # project path -> ISO time

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "tools": self.tools,
            "gitleaks": self.gitleaks,
            "foundation_hash": self.foundation_hash,
            "foundation_id": self.foundation_id,
            "build_time": self.build_time,
            "harness_volume": self.harness_volume,
            "volumes": {name: rec.to_json() for name, rec in self.volumes.items()},
            "gitleaks_scans": self.gitleaks_scans,
        }

    def __eq__(self, other: object) -> bool:
        return isinstance(other, State) and self.to_json() == other.to_json()

    def __repr__(self) -> str:
        return f"State({self.to_json()!r})"

    @classmethod
    def from_json(cls, data: dict[str, Any], *, path: Path) -> State:
        """The state in `data`; StateError when any of it is damaged."""
        parsed = parse(data)
        if parsed.dropped:
            raise damaged(path, parsed)
        return parsed.state


# --------------------------------------------------------------------- reading by type


class Parsed(NamedTuple):
    state: State
    dropped: list[str]  # what could not be read, e.g. "harness_volume (123 is not a name)"
    tools_readable: bool  # the selection of agents survived (update can repair)
    unpinned: tuple[str, ...] = ()  # known agents whose saved version could not be read


def _short(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def _string(data: dict[str, Any], key: str, dropped: list[str]) -> str:
    value = data.get(key, "")
    if isinstance(value, str):
        return value
    dropped.append(f"{key} ({_short(value)} is not a string)")
    return ""


def _string_map(value: object, key: str, dropped: list[str]) -> dict[str, str]:
    if not isinstance(value, dict):
        dropped.append(f"{key} ({_short(value)} is not an object)")
        return {}
    good: dict[str, str] = {}
    for name, item in value.items():
        if isinstance(item, str):
            good[name] = item
        else:
            dropped.append(f"{key}.{name} ({_short(item)} is not a string)")
    return good


def _tools(value: object, dropped: list[str], unpinned: list[str]) -> tuple[dict[str, str], bool]:
    if not isinstance(value, dict):
        dropped.append(f"tools ({_short(value)} is not an object of agent: version)")
        return {}, False
    tools: dict[str, str] = {}
    for name, pin in value.items():
        tool = BY_NAME.get(name)
        if tool is None:
            dropped.append(f"tools.{name} (not an agent aishell knows)")
            continue
        try:
            if not isinstance(pin, str):
                raise UsageError("not a string")
            tools[name] = parse_pin(tool.label, pin)
        except UsageError:
            dropped.append(f"tools.{name} ({_short(pin)} is not a version)")
            unpinned.append(name)
    return tools, True


def _record(name: str, value: object, dropped: list[str]) -> VolumeRecord | None:
    if not isinstance(value, dict):
        dropped.append(f"volumes.{name} ({_short(value)} is not an object)")
        return None
    if "created_at" not in value:
        dropped.append(f"volumes.{name} (no created_at)")
        return None
    fields: dict[str, str] = {}
    for key in ("created_at", "filled_at", "instance"):
        item = value.get(key, "")
        if not isinstance(item, str):
            dropped.append(f"volumes.{name} ({key} {_short(item)} is not a string)")
            return None
        fields[key] = item
    versions = value.get("versions", {})
    if not isinstance(versions, dict) or not all(isinstance(v, str) for v in versions.values()):
        dropped.append(f"volumes.{name} (versions {_short(versions)} is not an object of strings)")
        return None
    return VolumeRecord(versions=dict(versions), **fields)


def parse(data: object) -> Parsed:
    """Read decoded JSON by type: what is valid, and what had to be dropped."""
    dropped: list[str] = []
    unpinned: list[str] = []
    if not isinstance(data, dict):
        return Parsed(State(), [f"everything ({_short(data)} is not an object)"], False)
    tools, tools_readable = _tools(data.get("tools", {}), dropped, unpinned)
    gitleaks = data.get("gitleaks", False)
    if not isinstance(gitleaks, bool):
        dropped.append(f"gitleaks ({_short(gitleaks)} is not true or false)")
        gitleaks = False
    volume = data.get("harness_volume", "")
    if not isinstance(volume, str) or (volume and not _VOLUME_NAME.fullmatch(volume)):
        dropped.append(f"harness_volume ({_short(volume)} is not a harness volume name)")
        volume = ""
    records: dict[str, VolumeRecord] = {}
    raw_records = data.get("volumes", {})
    if isinstance(raw_records, dict):
        for name, raw in raw_records.items():
            record = _record(name, raw, dropped)
            if record is not None:
                records[name] = record
    else:
        dropped.append(f"volumes ({_short(raw_records)} is not an object)")
    state = State(
        tools=tools,
        gitleaks=gitleaks,
        foundation_hash=_string(data, "foundation_hash", dropped),
        foundation_id=_string(data, "foundation_id", dropped),
        build_time=_string(data, "build_time", dropped),
        harness_volume=volume,
        volumes=records,
        gitleaks_scans=_string_map(data.get("gitleaks_scans", {}), "gitleaks_scans", dropped),
    )
    return Parsed(state, dropped, tools_readable, tuple(unpinned))


def repair_command(parsed: Parsed) -> str:
    """The command that rewrites a damaged state file keeping what can be read: setup
    with the agents (and pins) it still names; 'aishell update' repairs it as well."""
    if not parsed.tools_readable:
        return "aishell setup --with-<agent> ..."
    words = ["aishell", "setup"]
    pins = {**dict.fromkeys(parsed.unpinned, "latest"), **parsed.state.tools}
    for name, pin in sorted(pins.items()):
        words.append(f"--with-{name}" if pin == "latest" else f"--with-{name}={pin}")
    if parsed.state.gitleaks:
        words.append("--with-gitleaks")
    return " ".join(words)


def damaged(path: Path, parsed: Parsed) -> StateError:
    shown = parsed.dropped[:4] + ([f"{len(parsed.dropped) - 4} more"] if parsed.dropped[4:] else [])
    command = repair_command(parsed)
    keeps = " (it keeps what can be read)" if parsed.tools_readable else ""
    return StateError(
        f"the state file {path} is damaged: {'; '.join(shown)}",
        hint=f"run '{command}' to rewrite it{keeps}",
    )


# ------------------------------------------------------------------------ the file


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError as exc:
        raise StateError(
            f"the state file {path} is damaged (not UTF-8 text)", hint=REPAIR_WITH_SETUP
        ) from exc
    except OSError as exc:
        raise StateError(
            f"cannot read {path}: {exc.strerror}", hint="check the file's permissions"
        ) from exc


def _decode(path: Path, text: str) -> Parsed:
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
        return Parsed(State(), [f"everything (not valid JSON: {reason})"], False)
    return parse(data)


def load(environ: dict[str, str] | None = None, *, repair: bool = False) -> State | None:
    """The saved state, or None when setup has never run. A damaged file raises
    StateError, unless `repair`: then what can be read is returned (see `inspect`)."""
    path = paths.state_file(environ)
    text = _read(path)
    if text is None:
        return None
    parsed = _decode(path, text)
    if parsed.dropped and not repair:
        raise damaged(path, parsed)
    return parsed.state


def inspect(environ: dict[str, str] | None = None) -> Parsed | None:
    """The saved state read by type, with what is damaged in it; None without a file.
    (Unreadable files still raise StateError.)"""
    path = paths.state_file(environ)
    text = _read(path)
    return None if text is None else _decode(path, text)


# ------------------------------------------------------------------------ writing


def home_error(path: Path, exc: OSError, doing: str = "write") -> AishellError:
    """One clear error for a failed write in the aishell home (read-only, full, ...)."""
    home = paths.aishell_home()
    reason = exc.strerror or str(exc)
    if exc.errno == errno.EROFS:
        hint = f"make {home} writable, or set AISHELL_HOME to a writable directory"
    elif exc.errno in (errno.ENOSPC, errno.EDQUOT):
        hint = f"free some space where {home} lives, then run the command again"
    elif exc.errno in (errno.EACCES, errno.EPERM):
        hint = f"check the owner and permissions of {home}"
    else:
        hint = f"check {home}"
    return AishellError(f"cannot {doing} {path}: {reason}", hint=hint)


def save(state: State, environ: dict[str, str] | None = None) -> None:
    path = paths.state_file(environ)
    import tempfile

    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".state.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w") as fh:
            json.dump(state.to_json(), fh, indent=2, sort_keys=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise home_error(path, exc, "save") from exc
    except BaseException:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise


def check_writable(environ: dict[str, str] | None = None) -> None:
    """Fail now, before anything is built or filled, when the aishell home cannot
    take the state file (read-only, full, not ours)."""
    home = paths.aishell_home(environ)
    import tempfile

    probe: str | None = None
    try:
        home.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-check.", dir=home)
        with os.fdopen(fd, "wb") as fh:
            fh.write(b"\0" * 16384)  # a state file and a few records' worth
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        raise home_error(home, exc, "write to") from exc
    finally:
        if probe is not None:
            with contextlib.suppress(OSError):
                os.unlink(probe)


@contextlib.contextmanager
def locked(environ: dict[str, str] | None = None) -> Iterator[None]:
    """Serialise read-modify-write of the state file between aishell processes."""
    lock_path = paths.aishell_home(environ) / ".state.lock"
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(lock_path, "a")  # noqa: SIM115 (closed below, after the unlock)
    except OSError as exc:
        raise home_error(lock_path, exc, "create") from exc
    with fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def update(
    mutate: Callable[[State], None],
    environ: dict[str, str] | None = None,
    *,
    repair: bool = False,
) -> State:
    """Load, apply `mutate(state)` and save, under the state lock (`repair`: a damaged
    file is read for what it holds, as `load(repair=True)`, and rewritten)."""
    with locked(environ):
        current = load(environ, repair=repair) or State()
        mutate(current)
        save(current, environ)
        return current
