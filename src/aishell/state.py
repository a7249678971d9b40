"""`~/.aishell/state.json`: the saved setup and what aishell knows of its volumes.

The file is the only persistent record aishell keeps. It is written
atomically (temporary file + rename) so a crash never leaves half a file.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from aishell import paths
from aishell.errors import AishellError

if TYPE_CHECKING:
    from pathlib import Path

SCHEMA = 1


@dataclass
class VolumeRecord:
    created_at: str  # the engine's CreatedAt of the volume we saw filled
    versions: dict[str, str] = field(default_factory=dict)  # tool -> installed version
    filled_at: str = ""


@dataclass
class State:
    tools: dict[str, str] = field(default_factory=dict)  # tool name -> "latest" or X.Y.Z
    gitleaks: bool = False
    foundation_hash: str = ""
    build_time: str = ""
    harness_volume: str = ""
    volumes: dict[str, VolumeRecord] = field(default_factory=dict)
    gitleaks_scans: dict[str, str] = field(default_factory=dict)  # project path -> ISO time

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["schema"] = SCHEMA
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], *, path: Path) -> State:
        try:
            volumes = {
                name: VolumeRecord(**rec) for name, rec in dict(data.get("volumes", {})).items()
            }
            return cls(
                tools={str(k): str(v) for k, v in dict(data.get("tools", {})).items()},
                gitleaks=bool(data.get("gitleaks", False)),
                foundation_hash=str(data.get("foundation_hash", "")),
                build_time=str(data.get("build_time", "")),
                harness_volume=str(data.get("harness_volume", "")),
                volumes=volumes,
                gitleaks_scans={
                    str(k): str(v) for k, v in dict(data.get("gitleaks_scans", {})).items()
                },
            )
        except (TypeError, ValueError) as exc:
            raise AishellError(
                f"the state file {path} is damaged ({exc})",
                hint="run 'aishell setup' again to rewrite it",
            ) from exc


def load(environ: dict[str, str] | None = None) -> State | None:
    """The saved state, or None when setup has never run."""
    path = paths.state_file(environ)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AishellError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AishellError(
            f"the state file {path} is not valid JSON ({exc.msg})",
            hint="run 'aishell setup' again to rewrite it",
        ) from exc
    if not isinstance(data, dict):
        raise AishellError(f"the state file {path} is damaged", hint="run 'aishell setup' again")
    return State.from_json(data, path=path)


def save(state: State, environ: dict[str, str] | None = None) -> None:
    path = paths.state_file(environ)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".state.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(state.to_json(), fh, indent=2, sort_keys=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def locked(environ: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    """Serialise read-modify-write of the state file between aishell processes."""
    import fcntl

    lock_path = paths.aishell_home(environ) / ".state.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def update(mutate, environ: dict[str, str] | None = None) -> State:  # type: ignore[no-untyped-def]
    """Load, apply `mutate(state)` and save, under the state lock."""
    with locked(environ):
        current = load(environ) or State()
        mutate(current)
        save(current, environ)
        return current
