"""The shared harness volume: agent CLIs installed once, used by every project.

A volume is ready only when the marker `/tools/.aishell-ready.json`, written
last by the filling container, exists. The filling container has a fixed
name per volume, so the engine itself guarantees that only one fill runs at a
time, whichever user or process asks; a second launcher waits for it and then
finds the marker. The sandbox's entrypoint refuses to start when the volume
mounted at /tools holds no marker (an engine creates a missing volume, empty,
when a container mounts it), so no launch ever runs with an empty /tools.

Who uses a volume is written on the engine, in labels:
- a harness volume carries its maker (`aishell.home`, `aishell.uid`,
  `aishell.user`, ...) and an instance id (`aishell.volume.id`, new for every
  volume made), so "the volume we saw filled" is exact, never a timestamp match;
- every aishell home that uses a volume *holds* it with a small labelled volume of
  its own, `aishell-hold-<homeid>-<suffix>` (`aishell.kind=hold`,
  `aishell.hold.volume=<volume>`), made before the volume is filled and removed
  when the home stops using it. `aishell volumes prune` never removes a volume
  another home holds. (Volume labels cannot be changed once made, hence a hold
  object per home rather than a label on the shared volume.)

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
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from aishell import journal, output, paths
from aishell.constants import HARNESS_VOLUME_PREFIX, LABEL_KIND, LABEL_MANAGED
from aishell.engine.client import Engine, long_timeout
from aishell.errors import EngineError
from aishell.harnesses import BY_NAME
from aishell.hashing import selection_hash
from aishell.tuples import NamedTuple

if TYPE_CHECKING:
    from aishell.state import State

LABEL_HARNESS_HASH = "aishell.harness.hash"
LABEL_HARNESSES = "aishell.harnesses"
LABEL_PINS = "aishell.harness.pins"
MARKER = "/tools/.aishell-ready.json"

# Who: on harness volumes (their maker), holds (their holder) and fill containers.
LABEL_HOME = "aishell.home"  # the home id (paths.home_id: a hash of the UID and the home's path)
LABEL_UID = "aishell.uid"
LABEL_USER = "aishell.user"
LABEL_HOME_PATH = "aishell.home.path"  # the real path of the aishell home
LABEL_HOST = "aishell.host"  # the machine the home is on (the engine may serve several)
LABEL_INSTANCE = "aishell.volume.id"  # random, new for every harness volume made
LABEL_HOLDS = "aishell.hold.volume"  # on a hold: the harness volume it holds
LABEL_FILLS = "aishell.fill.volume"  # on a fill container: the volume it fills
LABEL_OWNER = "aishell.owner"  # on a fill container: the journal token of its process
KIND_HARNESS = "harness"
KIND_HOLD = "hold"
KIND_FILL = "fill"
HOLD_PREFIX = "aishell-hold-"

# The fill container's own exit statuses that are not the installer's.
_KILLED = {137: "SIGKILL", 143: "SIGTERM", 130: "SIGINT", 129: "SIGHUP"}

# Runs as root in a helper container with the entrypoint bypassed. The package
# specs arrive as positional arguments, never interpolated into the script.
# Its stdin is a pipe the aishell that started it holds open: when that aishell is
# gone, however it ended, the watchdog sees end-of-file and ends the container (PID 1
# exits, and with it every process in the container), so no fill outlives it.
FILL_SCRIPT = r"""
set -eu
trap 'exit 143' TERM INT HUP
marker=/tools/.aishell-ready.json
if [ -f "$marker" ] && [ "${AISHELL_REFILL:-0}" != 1 ]; then
    echo "AISHELL-STATUS already"
    echo "AISHELL-MARKER $(tr -d '\n' < "$marker")"
    exit 0
fi
install() {
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
    # the readiness marker lists every package of the selection, not only those installed
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
}
echo "AISHELL-STATUS installing"
exec 3<&0
( cat <&3 >/dev/null 2>&1; kill -TERM 1 2>/dev/null ) &
exec 3<&-
install "$@" </dev/null &
wait "$!"
echo "AISHELL-STATUS installed"
echo "AISHELL-MARKER $(tr -d '\n' < "$marker")"
"""


def volume_name(selection: Mapping[str, str]) -> str:
    """The volume `setup` fills for a selection: `aishell-harness-<hash12>`."""
    return HARNESS_VOLUME_PREFIX + selection_hash(selection)


# (Patterns as text: `re` compiles and caches them on first use, off the launch path.)
_STAMP = r"[0-9]{8}t[0-9]{6}"
_TOKEN = r"[0-9a-f]{4}"
_FRESH_SUFFIX = r"-[0-9]{8}t[0-9]{6}-[0-9a-f]{4}"


def fresh_volume_name(selection: Mapping[str, str], *, stamp: str, token: str) -> str:
    """A new volume for the same selection (`aishell update`):
    `aishell-harness-<hash12>-<YYYYmmddtHHMMSS>-<token>`.

    `stamp` is a UTC time `YYYYmmddtHHMMSS` (one selection's volumes sort by
    age), `token` four hex digits (two updates in the same second differ).
    """
    if not re.fullmatch(_STAMP, stamp) or not re.fullmatch(_TOKEN, token):
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
    if suffix and not re.fullmatch(_FRESH_SUFFIX, suffix):
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
        LABEL_KIND: KIND_HARNESS,
        LABEL_HARNESS_HASH: selection_hash(selection),
        LABEL_HARNESSES: ",".join(sorted(selection)),
        LABEL_PINS: ",".join(f"{t}={p}" for t, p in sorted(selection.items())),
    }


# -- who: owners and holds ----------------------------------------------------------


class Owner(NamedTuple):
    """An aishell home, as the engine's labels name it."""

    home_id: str  # paths.home_id(): a hash of the UID and the real path of the home
    uid: int
    user: str
    home_path: str  # the real path of the aishell home
    host: str  # the machine it is on

    @classmethod
    def current(cls) -> Owner:
        uid = os.getuid()
        try:
            import pwd

            user = pwd.getpwuid(uid).pw_name
        except (KeyError, ImportError):
            user = os.environ.get("USER", "") or str(uid)
        return cls(
            home_id=paths.home_id(),
            uid=uid,
            user=user,
            home_path=os.path.realpath(paths.aishell_home()),
            host=os.uname().nodename,
        )

    def labels(self) -> dict[str, str]:
        return {
            LABEL_HOME: self.home_id,
            LABEL_UID: str(self.uid),
            LABEL_USER: self.user,
            LABEL_HOME_PATH: self.home_path,
            LABEL_HOST: self.host,
        }

    def describe(self) -> str:
        """ "alice (uid 1000), home /home/alice/.aishell" """
        where = f", home {self.home_path}" if self.home_path else ""
        return f"{self.user or '?'} (uid {self.uid}){where}"


def owner_of(labels: Mapping[str, str] | None) -> Owner | None:
    """The home named by an object's labels; None when it names none (made by an older
    aishell, or by the engine itself)."""
    labels = labels or {}
    home_id = labels.get(LABEL_HOME, "")
    if not re.fullmatch(r"[0-9a-f]{12}", home_id):
        return None
    try:
        uid = int(labels.get(LABEL_UID, "-1"))
    except ValueError:
        uid = -1
    return Owner(
        home_id=home_id,
        uid=uid,
        user=labels.get(LABEL_USER, ""),
        home_path=labels.get(LABEL_HOME_PATH, ""),
        host=labels.get(LABEL_HOST, ""),
    )


def hold_name(home_id: str, volume: str) -> str:
    """The hold of home `home_id` on harness volume `volume`."""
    return f"{HOLD_PREFIX}{home_id}-{volume.removeprefix(HARNESS_VOLUME_PREFIX)}"


def hold_labels(owner: Owner, volume: str) -> dict[str, str]:
    return {LABEL_MANAGED: "1", LABEL_KIND: KIND_HOLD, LABEL_HOLDS: volume, **owner.labels()}


def labels_of(item: Mapping[str, Any] | None) -> dict[str, str]:
    raw = (item or {}).get("Labels") or {}
    return (
        {str(k): "" if v is None else str(v) for k, v in raw.items()}
        if isinstance(raw, dict)
        else {}
    )


def is_labelled(item: Mapping[str, Any] | None) -> bool:
    """A harness volume aishell made (labelled), not one the engine made by itself
    for a container that mounted a missing volume (no labels at all)."""
    return labels_of(item).get(LABEL_KIND) == KIND_HARNESS


def instance_of(item: Mapping[str, Any] | None) -> str:
    return labels_of(item).get(LABEL_INSTANCE, "")


class Hold(NamedTuple):
    name: str  # the hold volume
    volume: str  # the harness volume it holds
    owner: Owner | None


def list_holds(engine: Engine) -> list[Hold]:
    """Every aishell home's holds on this engine (their labels read exactly, by
    inspecting them: a listing joins labels with commas)."""
    result = engine.checked(
        "volume",
        "ls",
        "-q",
        "--filter",
        f"label={LABEL_KIND}={KIND_HOLD}",
        what="listing the volume holds",
    )
    return holds_of(inspect_volumes(engine, result.stdout.split()).values())


def holds_of(items: Iterable[Mapping[str, Any]]) -> list[Hold]:
    """The holds among inspected volumes."""
    holds = []
    for item in items:
        labels = labels_of(item)
        volume = labels.get(LABEL_HOLDS, "")
        if labels.get(LABEL_KIND) == KIND_HOLD and item.get("Name") and volume:
            holds.append(Hold(str(item["Name"]), volume, owner_of(labels)))
    return holds


def holders(holds: Iterable[Hold]) -> dict[str, list[Owner | None]]:
    """Harness volume -> the homes holding it."""
    found: dict[str, list[Owner | None]] = {}
    for hold in holds:
        found.setdefault(hold.volume, []).append(hold.owner)
    return found


def ensure_hold(engine: Engine, owner: Owner, volume: str) -> None:
    """This home holds `volume` (idempotent)."""
    create_volume(engine, hold_name(owner.home_id, volume), hold_labels(owner, volume))


def release_hold(engine: Engine, home_id: str, volume: str) -> None:
    """This home no longer uses `volume` (quietly: a hold already gone is fine)."""
    engine.capture("volume", "rm", hold_name(home_id, volume))


# -- inspecting ---------------------------------------------------------------------


def inspect_volume(engine: Engine, name: str) -> dict[str, Any] | None:
    return inspect_volumes(engine, [name]).get(name)


def inspect_volumes(engine: Engine, names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Name -> inspect data of those of `names` that exist (one engine call)."""
    if not names:
        return {}
    result = engine.capture("volume", "inspect", *names)
    return parse_volumes_inspect(result.stdout)


def parse_volumes_inspect(stdout: str) -> dict[str, dict[str, Any]]:
    try:
        items = json.loads(stdout) if stdout.strip() else []
    except json.JSONDecodeError:
        return {}
    if not isinstance(items, list):
        return {}
    return {
        str(item["Name"]): item for item in items if isinstance(item, dict) and item.get("Name")
    }


def parse_volume_inspect(stdout: str) -> dict[str, Any] | None:
    try:
        items = json.loads(stdout)
    except json.JSONDecodeError:
        return None
    return items[0] if isinstance(items, list) and items and isinstance(items[0], dict) else None


def created_at(item: Mapping[str, Any] | None) -> str:
    return str(item.get("CreatedAt", "")) if item else ""


def is_recorded_ready(record: Any, item: Mapping[str, Any] | None) -> bool:
    """The volume `item` (inspect data) is the very volume `record` (the state's
    VolumeRecord) saw filled: aishell's labels, and the same instance id. (A volume
    made by an older aishell has no instance id: its creation time must match; the
    entrypoint's marker check is the last word either way.)"""
    if record is None or item is None or not is_labelled(item):
        return False
    instance = instance_of(item)
    if instance or record.instance:
        return bool(instance == record.instance)
    return bool(record.created_at) and record.created_at == created_at(item)


# -- filling ------------------------------------------------------------------------


class FillResult(NamedTuple):
    installed: bool  # False: a completed fill was already there (or another aishell did it)
    versions: dict[str, str]  # tool name -> version
    filled_at: str
    instance: str = ""  # the volume's aishell.volume.id
    created_at: str = ""  # the volume's CreatedAt
    waited: bool = False  # another aishell was filling it; this one waited


def _versions_by_tool(marker: Mapping[str, Any]) -> dict[str, str]:
    by_package = {t.package: t.name for t in BY_NAME.values()}
    packages = marker.get("packages") or {}
    return {by_package.get(pkg, pkg): str(ver) for pkg, ver in packages.items()}


def fill_args(
    volume: str,
    selection: Mapping[str, str],
    image: str,
    *,
    refill: bool,
    owner: Owner,
    token: str,
    seed: str | None = None,
    only: Mapping[str, str] | None = None,
    podman: bool = False,
) -> list[str]:
    """`run` argv of the helper container that fills `volume` (stdin held open: -i);
    with `seed`, from a read-only copy of that volume, installing only `only`."""
    seeding: list[str] = []
    if seed is not None:
        names = " ".join(BY_NAME[t].package for t in sorted(selection))
        ro = "ro" if podman else "readonly"  # (Podman 4 knows only `ro`)
        seeding = [
            "--mount", f"type=volume,source={seed},target=/seed,{ro}",
            "-e", f"AISHELL_PACKAGES={names}",
        ]  # fmt: skip
    labels = {
        LABEL_MANAGED: "1",
        LABEL_KIND: KIND_FILL,
        LABEL_FILLS: volume,
        LABEL_OWNER: token,
        **owner.labels(),
    }
    args = ["run", "--rm", "-i", "--name", fill_container_name(volume)]
    for key, value in labels.items():
        args += ["--label", f"{key}={value}"]
    return [
        *args,
        "--entrypoint",
        "/bin/sh",
        "--mount",
        f"type=volume,source={volume},target=/tools",
        "-e",
        f"AISHELL_REFILL={1 if refill else 0}",
        *seeding,
        image,
        "-c",
        FILL_SCRIPT,
        "aishell-fill",
        *package_specs(selection if only is None else only),
    ]


def failure_hint(rc: int, *, verbose: bool) -> tuple[str, str]:
    """(what happened, what to do) for a fill container that ended with `rc`."""
    more = "" if verbose else "; run again with --verbose for the full output"
    if rc in _KILLED:
        return (
            f"the install was stopped from outside ({_KILLED[rc]}, exit {rc}): the engine "
            "ran out of memory, or the container was stopped or removed",
            "check the engine's memory and that nobody removes aishell's containers, "
            "then run the command again",
        )
    if rc == 125:
        return (
            "the engine could not start the install container (exit 125)",
            "see the engine's message above" + more,
        )
    return (
        f"the install failed (exit {rc})",
        "check the package versions and your network (npm registry)" + more,
    )


def fill(
    engine: Engine,
    *,
    volume: str,
    selection: Mapping[str, str],
    image: str,
    verbose: bool = False,
    refill: bool = False,
    owner: Owner | None = None,
    seed: str | None = None,
    only: Mapping[str, str] | None = None,
) -> FillResult:
    """Make sure `volume` holds the selection, installing it unless a completed
    fill is already there. Concurrent callers: one installs, the others wait.
    `seed` (with `only`): start from a copy of that volume and install only the tools
    in `only` (tool -> exact version), the others being unchanged there.

    This home holds the volume (a hold made before the volume) and what this call
    makes is written in the process's journal first; the caller marks it done once
    recorded (`settled`). On failure or interruption what this call made is
    removed again (`undo`)."""
    owner = owner or Owner.current()
    book = journal.current()
    mark = len(book.entries)
    try:
        return _fill(
            engine, book, owner, volume=volume, selection=selection, image=image,
            verbose=verbose, refill=refill, seed=seed, only=only,
        )  # fmt: skip
    except BaseException:
        undo(engine, book.entries[mark:], active=None, recorded=())
        raise


def _ensure_labelled_volume(
    engine: Engine, book: journal.Journal, owner: Owner, volume: str, selection: Mapping[str, str]
) -> None:
    """The hold, then the volume with aishell's labels (an unlabelled one the engine
    made by itself is empty: it is replaced)."""
    hold = hold_name(owner.home_id, volume)
    found = inspect_volumes(engine, [hold, volume])
    if hold not in found:
        book.add("hold", hold, engine=engine.binary)
        ensure_hold(engine, owner, volume)
    item = found.get(volume)
    if item is not None and not is_labelled(item):
        repair_unlabelled(engine, volume)
        item = None
    if item is None:
        book.add("volume", volume, engine=engine.binary)
        labels = {**volume_labels(selection), **owner.labels()}
        labels[LABEL_INSTANCE] = os.urandom(8).hex()
        create_volume(engine, volume, labels)


def repair_unlabelled(engine: Engine, volume: str) -> None:
    """Remove `volume`, which the engine made without labels (a container mounted it
    while it did not exist): it holds nothing aishell filled."""
    result = engine.capture("volume", "rm", volume)
    if result.ok or "no such volume" in result.stderr.lower():
        output.info(f"Removed {volume}: the engine had made it again, empty and unlabelled")
        return
    raise EngineError(
        f"the harness volume {volume} was made again by the engine, empty and unlabelled, "
        f"and cannot be replaced: {result.stderr.strip() or f'exit {result.returncode}'}",
        hint=f"stop the containers that use it ('{engine.name} ps -a --filter volume={volume}'), "
        "then run the command again",
    )


def _fill(
    engine: Engine,
    book: journal.Journal,
    owner: Owner,
    *,
    volume: str,
    selection: Mapping[str, str],
    image: str,
    verbose: bool,
    refill: bool,
    seed: str | None = None,
    only: Mapping[str, str] | None = None,
) -> FillResult:
    fill_name = fill_container_name(volume)
    deadline = time.monotonic() + long_timeout()
    refill_now = refill
    waited = False
    labels = ", ".join(BY_NAME[t].label for t in sorted(selection if only is None else only))
    while True:
        _ensure_labelled_volume(engine, book, owner, volume, selection)
        args = fill_args(
            volume, selection, image, refill=refill_now, owner=owner, token=book.token,
            seed=seed, only=only, podman=engine.kind == "podman",
        )  # fmt: skip
        tail: deque[str] = deque(maxlen=80)
        status_seen: list[str] = []
        marker: dict[str, Any] = {}

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

        with output.Progress(f"Installing {labels}", verbose=verbose) as progress:
            progress.update(f"into {volume}")
            book.add("container", fill_name, engine=engine.binary)
            rc = engine.stream(args, on_line, hold_stdin=True)
            book.done("container", fill_name)
            conflict = rc != 0 and _name_conflict("\n".join(tail))
            if conflict:
                progress.update("waiting for another aishell that is installing")
                progress.done_message = f"{labels}: waited for another aishell's install"
                if time.monotonic() > deadline:
                    raise EngineError(
                        f"gave up waiting for {fill_name} to finish",
                        hint=f"check it with '{engine.name} logs {fill_name}'",
                    )
                engine.capture("wait", fill_name, timeout=max(1.0, deadline - time.monotonic()))
            elif rc != 0:
                # Raised inside the progress block, so that it ends as "failed".
                raise install_failure(
                    package_specs(selection if only is None else only),
                    volume, rc, list(tail), verbose,
                )  # fmt: skip
            elif not marker:
                raise EngineError(
                    f"the volume {volume} was filled but holds no readiness marker",
                    details="\n".join(tail),
                )
            elif "installed" not in status_seen:
                progress.done_message = (
                    f"{labels}: installed by another aishell (nothing to do here)"
                    if waited
                    else f"{labels}: already installed in {volume}"
                )
        if conflict:
            waited = True
            time.sleep(0.2)
            refill_now = False  # the other fill just did it
            continue
        item = inspect_volume(engine, volume)
        if not is_labelled(item):
            raise EngineError(
                f"the harness volume {volume} was removed while it was being filled",
                hint="run the command again (and don't prune volumes while aishell installs)",
            )
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
            installed=installed,
            versions=versions,
            filled_at=str(marker.get("filled_at", "")),
            instance=instance_of(item),
            created_at=created_at(item),
            waited=waited,
        )


def settled(volume: str, owner: Owner | None = None) -> None:
    """`volume` (and this home's hold on it) is recorded in the state: nothing to
    collect any more if this process dies now."""
    book = journal.current()
    book.done("volume", volume)
    book.done("hold", hold_name((owner or Owner.current()).home_id, volume))


def install_failure(
    specs: list[str], volume: str, rc: int, tail: list[str], verbose: bool
) -> EngineError:
    """The error for a failed install: npm's real cause when it names one (no such
    version, an untrusted TLS certificate), never a pointer to npm's log inside the
    helper container, which is gone by then."""
    from aishell import diagnose  # (lazy: only on this path)

    lines = diagnose.without_npm_log_lines(tail)
    details = None if verbose else "\n".join(lines)
    if rc in _KILLED or rc == 125:  # not npm's doing: the container was stopped, or never ran
        what, hint = failure_hint(rc, verbose=verbose)
        return EngineError(f"installing {', '.join(specs)} into {volume}: {what}", hint=hint,
                           details=details)  # fmt: skip
    found = diagnose.npm_failure(lines)
    if found is not None:
        return EngineError(
            f"installing {', '.join(specs)} failed: {found.cause}",
            hint=found.hint,
            details=details,
        )
    what, hint = failure_hint(rc, verbose=verbose)
    return EngineError(
        f"installing {', '.join(specs)} into {volume}: {what}", hint=hint, details=details
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


# -- removing what was made and never recorded --------------------------------------


def undo(
    engine: Engine,
    entries: Sequence[journal.Entry],
    *,
    active: str | None,
    recorded: Iterable[str],
    token: str | None = None,
) -> Undone:
    """Remove what `entries` (a journal's, in the order made) list, last first, except
    what the state still needs: the `active` volume and this home's hold on it, any
    `recorded` volume, a volume another home holds or a container uses. `token`: remove only
    fill containers of that journal (default: this process's, whose journal then
    marks done what is gone). Quiet: an error leaves the thing in place (and in the
    journal, for the next command to collect)."""
    book = journal.current() if token is None else None
    token = token or journal.current().token
    keep = {active, *recorded} - {None, ""}
    removed: list[str] = []
    gone: list[journal.Entry] = []
    holds_of_ours = {e.name for e in entries if e.kind == "hold"}
    for entry in reversed(list(entries)):
        if entry.kind == "container":
            if _remove_fill_container(engine, entry.name, token):
                gone.append(entry)
        elif entry.kind == "hold":
            item = inspect_volume(engine, entry.name)
            if item is None or labels_of(item).get(LABEL_HOLDS, "") == active:
                gone.append(entry)  # gone already, or this home's hold on what it uses
            elif engine.capture("volume", "rm", entry.name).ok:
                removed.append(entry.name)
                gone.append(entry)
        elif entry.kind == "volume":
            if entry.name in keep or not _unheld(engine, entry.name, ignoring=holds_of_ours):
                gone.append(entry)  # someone else's now (or recorded): not a leftover
                continue
            result = engine.capture("volume", "rm", entry.name)
            if result.ok:
                removed.append(entry.name)
            if result.ok or "no such volume" in result.stderr.lower():
                gone.append(entry)
    if book is not None:
        for entry in gone:
            book.done(entry.kind, entry.name)
    return Undone(removed, [e for e in entries if e not in gone])


class Undone(NamedTuple):
    removed: list[str]  # the names removed
    remaining: list[journal.Entry]  # what could not be removed (still a leftover)


def _remove_fill_container(engine: Engine, name: str, token: str) -> bool:
    """Remove the fill container `name` if it is the one of journal `token`, and wait
    (briefly) until the engine has let go of it, so its volume can go next. True when
    no such container is left."""
    args = ("ps", "-aq", "--filter", f"name=^/?{re.escape(name)}$")
    deadline = time.monotonic() + 20
    while True:
        listed = engine.capture(*args, "--filter", f"label={LABEL_OWNER}={token}")
        ids = listed.stdout.split() if listed.ok else None
        if ids == []:
            return True
        if ids is None or time.monotonic() > deadline:
            return False
        engine.capture("rm", "-f", *ids)  # (may race the engine's own --rm: checked again)
        time.sleep(0.2)


def _unheld(engine: Engine, volume: str, *, ignoring: set[str]) -> bool:
    """No hold on `volume` but those in `ignoring` (about to go), and it exists."""
    try:
        holds = list_holds(engine)
    except EngineError:
        return False
    return all(h.name in ignoring for h in holds if h.volume == volume)
