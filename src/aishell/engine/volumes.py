"""The shared harness volume: agent CLIs installed once, used by every project.

A volume is ready only when the marker `/tools/.aishell-ready.json`, written
last by the filling container, exists. The filling container has a fixed
name per volume, so the engine itself guarantees that only one fill runs at a
time, whichever user or process asks; a second launcher waits for it and then
finds the marker.

Names: `setup` fills `aishell-harness-<hash12>` (hash of the selection);
`update` fills a fresh `aishell-harness-<hash12>-<stamp>-<token>` for the same
selection, so that containers still running keep their volume untouched. The
saved state names the volume in use; every form carries the selection hash in
its name and in the `aishell.harness.hash` label.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from aishell import diagnose, output
from aishell.constants import HARNESS_VOLUME_PREFIX, LABEL_KIND, LABEL_MANAGED
from aishell.engine.client import Engine
from aishell.errors import EngineError
from aishell.harnesses import BY_NAME
from aishell.hashing import selection_hash

if TYPE_CHECKING:
    from aishell.state import State

LABEL_HARNESS_HASH = "aishell.harness.hash"
LABEL_HARNESSES = "aishell.harnesses"
LABEL_PINS = "aishell.harness.pins"
MARKER = "/tools/.aishell-ready.json"

# Runs as root in a helper container with the entrypoint bypassed. The package
# specs arrive as positional arguments, never interpolated into the script.
FILL_SCRIPT = r"""
set -eu
marker=/tools/.aishell-ready.json
if [ -f "$marker" ] && [ "${AISHELL_REFILL:-0}" != 1 ]; then
    echo "AISHELL-STATUS already"
    echo "AISHELL-MARKER $(tr -d '\n' < "$marker")"
    exit 0
fi
echo "AISHELL-STATUS installing"
rm -rf /tools/npm /tools/bin "$marker" /tools/.aishell-ready.tmp
if [ -d /seed/npm ]; then
    # `aishell update`: start from the previous volume, install only what changed
    cp -a /seed/npm /tools/npm
    mkdir -p /tools/bin
    if [ -d /seed/bin ]; then cp -a /seed/bin/. /tools/bin/; fi
else
    mkdir -p /tools/npm /tools/bin
fi
if [ "$#" -gt 0 ]; then
npm install -g --prefix /tools/npm --no-fund --no-audit --no-update-notifier \
    --loglevel=warn "$@"
fi
set -f
if [ -n "${AISHELL_PACKAGES:-}" ]; then set -- $AISHELL_PACKAGES; fi
node -e '
const fs = require("fs");
const out = {};
for (const spec of process.argv.slice(1)) {
  const at = spec.lastIndexOf("@");
  const name = at > 0 ? spec.slice(0, at) : spec;
  const pj = "/tools/npm/lib/node_modules/" + name + "/package.json";
  out[name] = JSON.parse(fs.readFileSync(pj, "utf8")).version;
}
process.stdout.write(JSON.stringify({packages: out, filled_at: new Date().toISOString()}));
' "$@" > /tools/.aishell-ready.tmp
date -u +%Y-%m-%dT%H:%M:%SZ >> /tools/.aishell-fill-history
chmod -R a+rX /tools
mv /tools/.aishell-ready.tmp "$marker"
echo "AISHELL-STATUS installed"
echo "AISHELL-MARKER $(tr -d '\n' < "$marker")"
"""


def volume_name(selection: Mapping[str, str]) -> str:
    """The volume `setup` fills for a selection: `aishell-harness-<hash12>`."""
    return HARNESS_VOLUME_PREFIX + selection_hash(selection)


_STAMP = re.compile(r"[0-9]{8}t[0-9]{6}")
_TOKEN = re.compile(r"[0-9a-f]{4}")
_FRESH_SUFFIX = re.compile(r"-[0-9]{8}t[0-9]{6}-[0-9a-f]{4}")


def fresh_volume_name(selection: Mapping[str, str], *, stamp: str, token: str) -> str:
    """A new volume for the same selection (`aishell update`):
    `aishell-harness-<hash12>-<YYYYmmddtHHMMSS>-<token>`.

    `stamp` is a UTC time `YYYYmmddtHHMMSS` (one selection's volumes sort by
    age), `token` four hex digits (two updates in the same second differ).
    """
    if not _STAMP.fullmatch(stamp) or not _TOKEN.fullmatch(token):
        raise ValueError(f"bad stamp or token for a fresh volume name: {stamp!r}, {token!r}")
    return f"{volume_name(selection)}-{stamp}-{token}"


def new_stamp_and_token() -> tuple[str, str]:
    from datetime import UTC, datetime

    return datetime.now(UTC).strftime("%Y%m%dt%H%M%S"), os.urandom(2).hex()


def selection_hash_of(volume: str) -> str | None:
    """The selection hash a harness volume name carries (setup's or update's form)."""
    if not volume.startswith(HARNESS_VOLUME_PREFIX):
        return None
    rest = volume[len(HARNESS_VOLUME_PREFIX) :]
    digest, suffix = rest[:12], rest[12:]
    if not re.fullmatch(r"[0-9a-f]{12}", digest):
        return None
    if suffix and not _FRESH_SUFFIX.fullmatch(suffix):
        return None
    return digest


def volume_for(selection: Mapping[str, str], saved: State | None) -> str:
    """The volume a selection should use: the saved one when it holds this selection
    (e.g. a volume `aishell update` filled), else the newest one recorded as filled for
    it (never an older one: setup after an update keeps the update's agents), else
    setup's name."""
    digest = selection_hash(selection)
    if saved is None:
        return volume_name(selection)
    current = saved.harness_volume
    if current and selection_hash_of(current) == digest:
        return current
    filled = [
        (record.filled_at, name)
        for name, record in saved.volumes.items()
        if selection_hash_of(name) == digest and record.filled_at
    ]
    return max(filled)[1] if filled else volume_name(selection)


def fill_container_name(volume: str) -> str:
    """The helper container that fills `volume`; one per volume, so the engine
    refuses a second concurrent fill of the same volume."""
    return f"aishell-fill-{volume.removeprefix(HARNESS_VOLUME_PREFIX)}"


def package_specs(selection: Mapping[str, str]) -> list[str]:
    return [f"{BY_NAME[tool].package}@{pin}" for tool, pin in sorted(selection.items())]


def volume_labels(selection: Mapping[str, str]) -> dict[str, str]:
    return {
        LABEL_MANAGED: "1",
        LABEL_KIND: "harness",
        LABEL_HARNESS_HASH: selection_hash(selection),
        LABEL_HARNESSES: ",".join(sorted(selection)),
        LABEL_PINS: ",".join(f"{t}={p}" for t, p in sorted(selection.items())),
    }


def inspect_volume(engine: Engine, name: str) -> dict[str, Any] | None:
    result = engine.capture("volume", "inspect", name)
    return parse_volume_inspect(result.stdout) if result.ok else None


def parse_volume_inspect(stdout: str) -> dict[str, Any] | None:
    try:
        items = json.loads(stdout)
    except json.JSONDecodeError:
        return None
    return items[0] if items else None


def created_at(item: Mapping[str, Any] | None) -> str:
    return str(item.get("CreatedAt", "")) if item else ""


class FillResult(NamedTuple):
    installed: bool  # False: another fill had already completed it
    versions: dict[str, str]  # tool name -> version
    filled_at: str


def _versions_by_tool(marker: Mapping[str, Any]) -> dict[str, str]:
    by_package = {t.package: t.name for t in BY_NAME.values()}
    packages = marker.get("packages") or {}
    return {by_package.get(pkg, pkg): str(ver) for pkg, ver in packages.items()}


def fill(
    engine: Engine,
    *,
    volume: str,
    selection: Mapping[str, str],
    image: str,
    verbose: bool = False,
    refill: bool = False,
    wait_seconds: float = 1800,
    seed: str | None = None,
    only: Mapping[str, str] | None = None,
) -> FillResult:
    """Make sure `volume` holds the selection, installing it unless a completed
    fill is already there. Concurrent callers: one installs, the others wait.
    `seed` (with `only`): start from a copy of that volume and install only the tools
    in `only` (tool -> exact version), the others being unchanged there."""
    create_volume(engine, volume, volume_labels(selection))
    fill_name = fill_container_name(volume)
    specs = package_specs(selection if only is None else only)
    seeding: list[str] = []
    if seed is not None:
        names = " ".join(BY_NAME[t].package for t in sorted(selection))
        ro = "ro" if engine.kind == "podman" else "readonly"  # (Podman 4 knows only `ro`)
        seeding = [
            "--mount", f"type=volume,source={seed},target=/seed,{ro}",
            "-e", f"AISHELL_PACKAGES={names}",
        ]  # fmt: skip
    deadline = time.monotonic() + wait_seconds
    refill_now = refill
    while True:
        args = [
            "run",
            "--rm",
            "--name",
            fill_name,
            "--label",
            f"{LABEL_MANAGED}=1",
            "--label",
            f"{LABEL_KIND}=fill",
            "--entrypoint",
            "/bin/sh",
            "--mount",
            f"type=volume,source={volume},target=/tools",
            "-e",
            f"AISHELL_REFILL={1 if refill_now else 0}",
            *seeding,
            image,
            "-c",
            FILL_SCRIPT,
            "aishell-fill",
            *specs,
        ]
        tail: deque[str] = deque(maxlen=80)
        status_seen: list[str] = []
        marker: dict[str, Any] = {}
        title = "Installing " + ", ".join(
            BY_NAME[t].label for t in sorted(selection if only is None else only)
        )

        def on_line(
            line: str,
            tail: deque[str] = tail,
            status_seen: list[str] = status_seen,
            marker: dict[str, Any] = marker,
        ) -> None:
            if line.startswith("AISHELL-STATUS "):
                status_seen.append(line.split(" ", 1)[1])
                return
            if line.startswith("AISHELL-MARKER "):
                with contextlib.suppress(json.JSONDecodeError):
                    marker.update(json.loads(line.split(" ", 1)[1]))
                return
            tail.append(line)
            if verbose:
                output.raw_err(line)

        with output.Progress(title, verbose=verbose) as progress:
            progress.update(f"into {volume}")
            rc = engine.stream(args, on_line)
            conflict = rc != 0 and _name_conflict("\n".join(tail))
            if conflict:
                progress.update("waiting for another aishell that is installing")
                if time.monotonic() > deadline:
                    raise EngineError(
                        f"gave up waiting for {fill_name} to finish",
                        hint=f"check it with '{engine.name} logs {fill_name}'",
                    )
                engine.capture("wait", fill_name)
            elif rc != 0:
                # Raised inside the progress block, so that it ends as "failed".
                raise install_failure(specs, volume, rc, list(tail), verbose)
            elif not marker:
                raise EngineError(
                    f"the volume {volume} was filled but holds no readiness marker",
                    details="\n".join(tail),
                )
        if conflict:
            time.sleep(0.2)
            refill_now = False  # the other fill just did it
            continue
        installed = "installed" in status_seen
        versions = _versions_by_tool(marker)
        if installed:
            output.info(
                "Installed "
                + ", ".join(
                    f"{BY_NAME[t].label} {v}" if t in BY_NAME else f"{t} {v}"
                    for t, v in sorted(versions.items())
                )
            )
        return FillResult(
            installed=installed, versions=versions, filled_at=str(marker.get("filled_at", ""))
        )


def install_failure(
    specs: list[str], volume: str, rc: int, tail: list[str], verbose: bool
) -> EngineError:
    """The error for a failed install: npm's real cause when it names one (no such
    version, an untrusted TLS certificate), never a pointer to npm's log inside the
    helper container, which is gone by then."""
    lines = diagnose.without_npm_log_lines(tail)
    details = None if verbose else "\n".join(lines)
    found = diagnose.npm_failure(lines)
    if found is not None:
        return EngineError(
            f"installing {', '.join(specs)} failed: {found.cause}",
            hint=found.hint,
            details=details,
        )
    return EngineError(
        f"installing {', '.join(specs)} into {volume} failed (exit {rc})",
        hint="check the package versions and your network (npm registry)"
        + ("" if verbose else "; run again with --verbose for the full output"),
        details=details,
    )


# Prints "<package> <version>" for each package named (the registry's latest).
RESOLVE_SCRIPT = r"""
set -eu
for p in "$@"; do
    v=$(npm view --no-update-notifier "$p" version)
    echo "AISHELL-VERSION $p $v"
done
"""


def latest_versions(
    engine: Engine, image: str, selection: Mapping[str, str]
) -> dict[str, str] | None:
    """The version each tool of `selection` would install now: its pin, or for
    `latest` the registry's latest version (asked from a helper container). None when
    the registry could not be asked (then everything is installed again)."""
    versions = {t: pin for t, pin in selection.items() if pin != "latest"}
    wanted = sorted(t for t, pin in selection.items() if pin == "latest")
    if not wanted:
        return versions
    result = engine.capture(
        "run", "--rm", "--label", f"{LABEL_MANAGED}=1", "--label", f"{LABEL_KIND}=fill",
        "--entrypoint", "/bin/sh", image, "-c", RESOLVE_SCRIPT, "aishell-resolve",
        *(BY_NAME[t].package for t in wanted),
    )  # fmt: skip
    if not result.ok:
        return None
    by_package = {BY_NAME[t].package: t for t in wanted}
    for line in result.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "AISHELL-VERSION" and parts[1] in by_package:
            versions[by_package[parts[1]]] = parts[2]
    return versions if all(t in versions for t in selection) else None


def create_volume(engine: Engine, volume: str, labels: Mapping[str, str]) -> None:
    """`volume create`, idempotent on both engines (Docker accepts an existing name;
    Podman answers 'volume already exists')."""
    args = [arg for key, value in labels.items() for arg in ("--label", f"{key}={value}")]
    try:
        engine.checked("volume", "create", *args, volume, what=f"creating volume {volume}")
    except EngineError as exc:
        if "already exists" not in f"{exc.message}\n{exc.details or ''}".lower():
            raise


def _name_conflict(text: str) -> bool:
    """The engine refused the fill container's name: another fill runs. Docker:
    'Conflict. The container name "/x" is already in use'; Podman: 'the container
    name "x" is already in use by ...'."""
    low = text.lower()
    return "already in use" in low and ("conflict" in low or "container name" in low)


def remove(engine: Engine, name: str) -> None:
    engine.capture("volume", "rm", name)


def discard(engine: Engine, volume: str) -> bool:
    """Remove a volume we created and failed to fill, with any fill container an
    interruption left running on it. True when the volume is gone."""
    engine.capture("rm", "-f", fill_container_name(volume))
    result = engine.capture("volume", "rm", volume)
    return result.ok or "no such volume" in result.stderr.lower()
