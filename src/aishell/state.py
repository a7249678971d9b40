"""`~/.aishell/state.json`: the saved setup and what aishell knows of its volumes.

The file is the only persistent record aishell keeps. It is written
atomically (temporary file + rename) so a crash never leaves half a file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from typing import TYPE_CHECKING, Any

from aishell import paths
from aishell.errors import AishellError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

SCHEMA = 1


class VolumeRecord:
    """What aishell saw of a filled harness volume."""

    __slots__ = ("created_at", "filled_at", "versions")

    def __init__(
        self, created_at: str, versions: dict[str, str] | None = None, filled_at: str = ""
    ) -> None:
        self.created_at = created_at  # the engine's CreatedAt of the volume we saw filled
        self.versions = dict(versions or {})  # tool -> installed version
        self.filled_at = filled_at

    def to_json(self) -> dict[str, Any]:
        return {
            "created_at": self.created_at,
            "versions": self.versions,
            "filled_at": self.filled_at,
        }

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
        try:
            volumes = {
                name: VolumeRecord(**rec) for name, rec in dict(data.get("volumes", {})).items()
            }
            return cls(
                tools={str(k): str(v) for k, v in dict(data.get("tools", {})).items()},
                gitleaks=bool(data.get("gitleaks", False)),
                foundation_hash=str(data.get("foundation_hash", "")),
                foundation_id=str(data.get("foundation_id", "")),
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
    import tempfile

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
def locked(environ: dict[str, str] | None = None) -> Iterator[None]:
    """Serialise read-modify-write of the state file between aishell processes."""
    lock_path = paths.aishell_home(environ) / ".state.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def update(mutate: Callable[[State], None], environ: dict[str, str] | None = None) -> State:
    """Load, apply `mutate(state)` and save, under the state lock."""
    with locked(environ):
        current = load(environ) or State()
        mutate(current)
        save(current, environ)
        return current
