"""Reading the engine's view of aishell containers."""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING, Any

from aishell.constants import LABEL_MANAGED, LABEL_NAME

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from aishell.engine.client import Engine, Result


def parse_inspect(stdout: str) -> dict[str, Any] | None:
    try:
        items = json.loads(stdout)
    except json.JSONDecodeError:
        return None
    return items[0] if items else None


# A container that exists but has not started yet is being started by someone (an
# aishell racing this one); after this long in that state it is a failed start's
# leftover instead.
STARTING_GRACE_SECONDS = 120


def is_live(item: Mapping[str, Any], *, now: float | None = None) -> bool:
    """The container (inspect data) runs, or is on its way: running, paused,
    restarting, being removed, or made by an aishell `run` less than
    STARTING_GRACE_SECONDS ago and not started yet."""
    state = item.get("State") or {}
    if state.get("Running") or state.get("Paused") or state.get("Restarting"):
        return True
    status = str(state.get("Status", "")).lower()
    if status in ("running", "paused", "restarting", "removing"):
        return True
    if status in ("created", "configured", "initialized"):  # (the last two: podman)
        labels = (item.get("Config") or {}).get("Labels") or {}
        # aishell's own images carry aishell.managed too (containers inherit image
        # labels): only a launch labels the container with its name.
        if labels.get(LABEL_MANAGED) != "1" or not labels.get(LABEL_NAME):
            return False  # not made by an aishell `run`: nobody is starting it
        created = _timestamp(str(item.get("Created", "")))
        current = time.time() if now is None else now
        return created is None or current - created < STARTING_GRACE_SECONDS
    return False


def _timestamp(text: str) -> float | None:
    """Seconds since the epoch of an engine timestamp ("2026-01-02T03:04:05.123456789Z",
    "2026-01-02T03:04:05.1+01:00"); None when unreadable."""
    from datetime import datetime

    match = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:?\d\d)?", text)
    if not match:
        return None
    zone = match.group(2) or "Z"
    text = match.group(1) + ("+00:00" if zone == "Z" else zone)
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


# -- listing (read-only) --------------------------------------------------------

# `docker ps --format '{{json .}}'` gives labels as one "k=v,k2=v2" string. A value
# may itself contain commas ("a=b,c"), so split only before something that looks
# like the next key.
_LABEL_SPLIT = r",(?=[A-Za-z0-9][A-Za-z0-9._/-]*=)"


def parse_label_string(value: object) -> dict[str, str]:
    """Labels from the engine's listing: a mapping (podman) or "k=v,k2=v2" (docker)."""
    if isinstance(value, dict):
        return {str(k): "" if v is None else str(v) for k, v in value.items()}
    if not isinstance(value, str) or not value:
        return {}
    labels: dict[str, str] = {}
    for part in re.split(_LABEL_SPLIT, value):
        key, _, val = part.partition("=")
        if key:
            labels[key] = val
    return labels


def parse_json_lines(stdout: str) -> list[dict[str, Any]]:
    """Objects from `--format '{{json .}}'` output (one per line; a JSON array is accepted)."""
    text = stdout.strip()
    if not text:
        return []
    if text.startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError:
            return []
        return [item for item in items if isinstance(item, dict)]
    found: list[dict[str, Any]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(item, dict):
            found.append(item)
    return found


def list_containers(engine: Engine, *filters: str) -> list[dict[str, Any]]:
    """`ps -a` (stopped ones too) with `--filter` for each of `filters`."""
    args = ["ps", "-a", "--no-trunc"]
    for item in filters:
        args += ["--filter", item]
    result = engine.checked(*args, "--format", "{{json .}}", what="listing containers")
    return parse_json_lines(result.stdout)


def container_names(item: Mapping[str, Any]) -> list[str]:
    """The names of a listed container (`Names` is a string or a list)."""
    names = item.get("Names")
    if isinstance(names, list):
        return [str(n).lstrip("/") for n in names]
    if isinstance(names, str) and names:
        return [n.strip().lstrip("/") for n in names.split(",") if n.strip()]
    return []


def containers_using_volumes(engine: Engine, names: Iterable[str]) -> dict[str, list[str]]:
    """Volume name -> names of the containers (running or not) that mount it."""
    wanted = list(dict.fromkeys(names))
    if not wanted:
        return {}
    commands = [
        ["ps", "-a", "--filter", f"volume={name}", "--format", "{{.Names}}"] for name in wanted
    ]
    results = engine.capture_many(*commands)
    users: dict[str, list[str]] = {}
    for name, result in zip(wanted, results, strict=True):
        users[name] = sorted(
            {n.strip() for line in result.stdout.splitlines() for n in line.split(",") if n.strip()}
        )
    return users


def exec_probes(engine: Engine, containers: Iterable[str], script: str) -> dict[str, Result]:
    """Run `sh -c script` in each running container, all at once (one exec per container)."""
    wanted = list(dict.fromkeys(containers))
    if not wanted:
        return {}
    results = engine.capture_many(*[["exec", name, "sh", "-c", script] for name in wanted])
    return dict(zip(wanted, results, strict=True))
