"""Harness volumes of a test's own, so a test can damage, remove or race one without
touching the volume the session's homes share with every other test on the engine."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from testing.runner import Aishell


def state_of(ai: Aishell) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ai.aishell_home / "state.json").read_text())
    return data


def write_state(ai: Aishell, data: dict[str, Any]) -> None:
    ai.write(ai.aishell_home / "state.json", json.dumps(data, indent=2))


def home_id(ai: Aishell) -> str:
    real = os.path.realpath(ai.aishell_home)
    return hashlib.sha256(f"{ai.uid}:{real}".encode()).hexdigest()[:12]


def hold_of(ai: Aishell, volume: str) -> str:
    """The name of `ai`'s home's hold on `volume` (`engine.volumes.hold_name`)."""
    return f"aishell-hold-{home_id(ai)}-{volume.removeprefix('aishell-harness-')}"


def names(ai: Aishell) -> set[str]:
    """Every volume on `ai`'s engine."""
    return set(ai.engine_cli("volume", "ls", "--format", "{{.Name}}").stdout.split())


def of_home(ai: Aishell, among: set[str]) -> set[str]:
    """Those of `among` that `ai`'s home made or holds with: its holds, and harness
    volumes labelled with its home id. (Other tests on the engine make volumes too.)"""
    home = home_id(ai)
    mine = {v for v in among if v.startswith(f"aishell-hold-{home}-")}
    for volume in among - mine:
        if (
            volume.startswith("aishell-harness-")
            and (labels(ai, volume) or {}).get("aishell.home") == home
        ):
            mine.add(volume)
    return mine


def labels(ai: Aishell, volume: str) -> dict[str, str] | None:
    """The volume's labels; None when it does not exist."""
    result = ai.engine_cli("volume", "inspect", volume)
    if result.returncode != 0:
        return None
    found = json.loads(result.stdout)
    return dict(found[0].get("Labels") or {}) if found else None


def clone_active_volume(ai: Aishell) -> str:
    """Give `ai`'s home a harness volume of its own: a copy of its active volume under
    an `update`-form name for the same selection, made with aishell's labels (as this
    home) and recorded in its state as filled. Returns its name."""
    data = state_of(ai)
    source = data["harness_volume"]
    digest = source.removeprefix("aishell-harness-")[:12]
    name = f"aishell-harness-{digest}-{time.strftime('%Y%m%dt%H%M%S', time.gmtime())}-" + (
        os.urandom(2).hex()
    )
    copied = dict(labels(ai, source) or {})
    copied.update(
        {
            "aishell.managed": "1",
            "aishell.kind": "harness",
            "aishell.home": home_id(ai),
            "aishell.uid": str(ai.uid),
            "aishell.user": ai.user or "root",
            "aishell.home.path": os.path.realpath(ai.aishell_home),
            "aishell.host": os.uname().nodename,
            "aishell.volume.id": os.urandom(8).hex(),
            "aishell.test": "1",
        }
    )
    args = [a for key, value in copied.items() for a in ("--label", f"{key}={value}")]
    made = ai.engine_cli("volume", "create", *args, name)
    assert made.returncode == 0, made.stderr
    # Other test runs on this engine may be refilling the shared volume right now: copy
    # only a complete one (its marker present before and after), else wait and again.
    script = (
        "m=.aishell-ready.json; test -f /from/$m || exit 3; rm -rf /to/* /to/.[!.]*; "
        "cp -a /from/. /to/ && test -f /from/$m && test -f /to/$m"
    )
    deadline = time.monotonic() + 900
    while True:
        copy = ai.engine_cli(
            "run", "--rm", "--label", "aishell.test=1", "--entrypoint", "sh",
            "-v", f"{source}:/from:ro", "-v", f"{name}:/to", ai.hold("foundation"),
            "-c", script, timeout=600,
        )  # fmt: skip
        if copy.returncode == 0:
            break
        assert time.monotonic() < deadline, copy.stderr
        time.sleep(2)
    record = dict(data["volumes"][source])
    inspect = json.loads(ai.engine_cli("volume", "inspect", name).stdout)[0]
    record.update(created_at=inspect["CreatedAt"], instance=copied["aishell.volume.id"])
    data["harness_volume"] = name
    data["volumes"][name] = record
    write_state(ai, data)
    return name


def remove(ai: Aishell, *volumes: str) -> None:
    """Remove these volumes and `ai`'s holds on them (quietly; never `-f`, which on
    Podman also removes the containers using a volume)."""
    for volume in volumes:
        ai.engine_cli("volume", "rm", hold_of(ai, volume))
        ai.engine_cli("volume", "rm", volume)


def pending(ai: Aishell) -> list[Path]:
    """`ai`'s home's journals (`aishell.journal`): what a running, or killed, aishell
    was making."""
    directory = ai.aishell_home / ".pending"
    return sorted(directory.glob("*.jsonl")) if directory.is_dir() else []


def pretend_a_release(ai: Aishell) -> None:
    """Record an older OpenCode than the volume holds, as if a release came out since:
    `aishell update` then fills a fresh volume (it keeps the volume when nothing
    changed)."""
    data = state_of(ai)
    data["volumes"][data["harness_volume"]]["versions"]["opencode"] = "0.0.1"
    write_state(ai, data)
