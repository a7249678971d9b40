"""`aishell volumes [list|prune [NAME...]] [--yes] [--json]`: the harness volumes.

A harness volume (label `aishell.kind=harness`) holds the agent CLIs of one
selection. The one this home's saved setup uses is `active`; every other one is
`orphaned` from this home's point of view. Volumes are shared between aishell homes
(and users) on one engine, so prune removes an orphaned volume only when nobody may
use it: never one a container (running or stopped) uses, one another home holds
(`engine.volumes`: holds), one a running aishell of this home is filling, or one an
older aishell made whose users cannot be known (those only when named). A volume
named like a harness volume but without labels was made empty by the engine itself
(a container mounted it while it was missing): it is listed as `unlabelled` and
pruned.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aishell import journal, output, paths, report_json, state
from aishell.commands._args import Parser, parser
from aishell.constants import HARNESS_VOLUME_PATTERN, HARNESS_VOLUME_PREFIX, LABEL_KIND
from aishell.engine import choice
from aishell.engine import volumes as volumes_mod
from aishell.engine.client import first_line
from aishell.engine.containers import (
    containers_using_volumes,
    parse_json_lines,
    parse_label_string,
)
from aishell.errors import Aborted, AishellError, UsageError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from aishell.engine.client import Engine

LABEL_HARNESSES = "aishell.harnesses"
LABEL_PINS = "aishell.harness.pins"
SUBCOMMANDS = ("list", "prune")

_UNITS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "pb": 1000**5,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
    "pib": 1024**5,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")


@dataclass(frozen=True)
class Holder:
    """An aishell home that holds a volume (`engine.volumes` holds)."""

    user: str
    uid: int | None
    home: str  # the real path of that aishell home ("" when unknown)
    this_home: bool

    def to_json(self) -> dict[str, Any]:
        return {"user": self.user, "uid": self.uid, "home": self.home, "this_home": self.this_home}

    def describe(self) -> str:
        if self.this_home:
            return "this home"
        who = f"{self.user or '?'} (uid {self.uid})" if self.uid is not None else "?"
        return f"{who}, home {self.home}" if self.home else who


def holder_of(owner: volumes_mod.Owner | None, home_id: str) -> Holder:
    if owner is None:
        return Holder(user="", uid=None, home="", this_home=False)
    return Holder(
        user=owner.user,
        uid=owner.uid if owner.uid >= 0 else None,
        home=owner.home_path,
        this_home=owner.home_id == home_id,
    )


@dataclass(frozen=True)
class VolumeRow:
    name: str
    status: str  # "active" | "orphaned"
    size: str | None  # as the engine shows it ("370.7MB"); None when unknown
    size_bytes: int | None
    harnesses: list[str] | None  # from the volume's label; None when it has none
    pins: dict[str, str] = field(default_factory=dict)  # from the label: tool -> pin
    versions: dict[str, str] = field(default_factory=dict)  # installed, from state
    in_use_by: list[str] = field(default_factory=list)  # container names
    labelled: bool = True  # False: made by the engine itself (empty), not by aishell
    made_by: Holder | None = None  # the home that made it; None: an older aishell (or unknown)
    held_by: list[Holder] = field(default_factory=list)  # the homes that use it
    recorded: bool = False  # this home's state records it
    filling: bool = False  # a running aishell of this home is filling it now

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "size": self.size,
            "size_bytes": self.size_bytes,
            "harnesses": self.harnesses,
            "versions": dict(self.versions),
            "in_use_by": list(self.in_use_by),
            "labelled": self.labelled,
            "made_by": self.made_by.to_json() if self.made_by else None,
            "held_by": [h.to_json() for h in self.held_by],
        }

    @property
    def held_elsewhere(self) -> list[Holder]:
        return [h for h in self.held_by if not h.this_home]


# --------------------------------------------------------------------------- pure


def parse_size(text: object) -> int | None:
    """Bytes in an engine size such as "370.7MB", "8.985kB", "0B" or "1.5GiB"; None if unknown."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        return int(text) if text >= 0 else None
    if not isinstance(text, str):
        return None
    match = _SIZE.match(text)
    if not match:
        return None
    unit = (match.group(2) or "b").lower()
    factor = _UNITS.get(unit)
    if factor is None:
        return None
    return round(float(match.group(1)) * factor)


def sizes_from_system_df(data: Mapping[str, Any] | None) -> dict[str, tuple[str, int | None]]:
    """Volume name -> (size as shown, bytes) from `system df -v --format '{{json .}}'`."""
    if not isinstance(data, dict):
        return {}
    sizes: dict[str, tuple[str, int | None]] = {}
    for item in data.get("Volumes") or []:
        if not isinstance(item, dict) or not item.get("Name"):
            continue
        raw = item.get("Size")
        size_bytes = parse_size(raw)
        if size_bytes is None:
            continue  # "N/A" and the like: unknown
        shown = raw if isinstance(raw, str) else f"{size_bytes}B"
        sizes[str(item["Name"])] = (shown, size_bytes)
    return sizes


def parse_pins(text: str | None) -> dict[str, str]:
    """ "claude=latest,opencode=1.2.3" -> {"claude": "latest", "opencode": "1.2.3"}."""
    pins: dict[str, str] = {}
    for part in (text or "").split(","):
        tool, eq, pin = part.partition("=")
        if eq and tool.strip():
            pins[tool.strip()] = pin.strip()
    return pins


def build_rows(
    names: Sequence[str],
    *,
    labels: Mapping[str, Mapping[str, str]],
    sizes: Mapping[str, tuple[str, int | None]],
    active: str | None,
    versions: Mapping[str, Mapping[str, str]],
    in_use: Mapping[str, Sequence[str]],
    holds: Mapping[str, Sequence[Holder]] | None = None,
    home_id: str = "",
    filling: frozenset[str] = frozenset(),
    unlabelled: frozenset[str] = frozenset(),
) -> list[VolumeRow]:
    """Rows for `names`, active first, then by name. `holds`: volume -> the homes
    holding it; `filling`: volumes a live aishell of this home is filling;
    `unlabelled`: harness-named volumes without aishell's labels."""
    rows = []
    holds = holds or {}
    for name in dict.fromkeys(names):
        vol_labels = labels.get(name, {})
        maker = volumes_mod.owner_of(vol_labels)
        harness_label = vol_labels.get(LABEL_HARNESSES)
        harnesses = (
            [h for h in harness_label.split(",") if h] if harness_label is not None else None
        )
        size = sizes.get(name)
        rows.append(
            VolumeRow(
                name=name,
                status="active" if active and name == active else "orphaned",
                size=size[0] if size else None,
                size_bytes=size[1] if size else None,
                harnesses=harnesses,
                pins=parse_pins(vol_labels.get(LABEL_PINS)),
                versions=dict(versions.get(name, {})),
                in_use_by=sorted(in_use.get(name, ())),
                labelled=name not in unlabelled,
                made_by=holder_of(maker, home_id) if maker else None,
                held_by=list(holds.get(name, ())),
                recorded=name in versions,
                filling=name in filling,
            )
        )
    rows.sort(key=lambda r: (r.status != "active", r.name))
    return rows


def harness_text(row: VolumeRow) -> str:
    """ "opencode 1.2.3, claude (latest)": installed version when known, else the pin."""
    tools = row.harnesses if row.harnesses is not None else sorted(row.versions)
    if not tools:
        return "unknown" if row.harnesses is None else "(none)"
    parts = []
    for tool in tools:
        if tool in row.versions:
            parts.append(f"{tool} {row.versions[tool]}")
        elif tool in row.pins:
            parts.append(f"{tool} ({row.pins[tool]})")
        else:
            parts.append(tool)
    return ", ".join(parts)


def _in_use_text(containers: Sequence[str], shown: int = 2) -> str:
    if not containers:
        return "-"
    text = ", ".join(containers[:shown])
    if len(containers) > shown:
        text += f" (+{len(containers) - shown} more)"
    return text


def held_text(row: VolumeRow) -> str:
    """ "this home", "this home + 2 other homes", "1 other home", "-" (none)"""
    mine = any(h.this_home for h in row.held_by)
    others = len(row.held_elsewhere)
    parts = (["this home"] if mine else []) + (
        [f"{others} other home{'s' if others != 1 else ''}"] if others else []
    )
    return " + ".join(parts) or "-"


def render_list(rows: Sequence[VolumeRow]) -> list[str]:
    body = [
        [
            row.name,
            row.status if row.labelled else "unlabelled",
            row.size or "N/A",
            harness_text(row),
            held_text(row),
            _in_use_text(row.in_use_by),
        ]
        for row in rows
    ]
    return report_json.table(["NAME", "STATUS", "SIZE", "HARNESSES", "HELD BY", "IN USE BY"], body)


@dataclass(frozen=True)
class PrunePlan:
    remove: list[str]
    skipped: list[dict[str, str]]  # {name, reason}


def in_use_reason(containers: Sequence[str]) -> str:
    return "in use by container" + ("s " if len(containers) > 1 else " ") + ", ".join(containers)


_FRESH_NAME = re.compile(HARNESS_VOLUME_PATTERN)


def keep_reason(row: VolumeRow, *, named: bool) -> str | None:
    """Why prune keeps `row` (None: nobody may use it, so it goes). `named`: the user
    named it on the command line."""
    if row.status == "active":
        return "active (the current setup uses it)" if named else ""
    if row.in_use_by:
        return in_use_reason(row.in_use_by)
    if row.filling:
        return "a running aishell of this home is filling it"
    if row.held_elsewhere:
        who = "; ".join(h.describe() for h in row.held_elsewhere[:3])
        more = len(row.held_elsewhere) - 3
        return f"held by another aishell home ({who}{f'; +{more} more' if more > 0 else ''})"
    if not row.labelled:
        return None  # made by the engine itself, empty: nobody's
    if row.made_by is None and not row.held_by and not named:
        fresh = _FRESH_NAME.fullmatch(row.name) and "-" in row.name[len(HARNESS_VOLUME_PREFIX) :]
        if fresh and row.recorded:
            return None  # an `update` volume of this home: only this home knew its name
        return (
            "made by an older aishell, so whether another home still uses it is unknown; "
            f"to remove it anyway: aishell volumes prune {row.name}"
        )
    return None


def plan_prune(rows: Sequence[VolumeRow], only: Sequence[str] = ()) -> PrunePlan:
    """Orphaned volumes nobody may use, to remove, and those skipped with the reason.

    `only`: restrict to these names (all must be listed harness volumes).
    """
    by_name = {row.name: row for row in rows}
    unknown = [name for name in only if name not in by_name]
    if unknown:
        raise AishellError(
            f"no harness volume named {', '.join(unknown)}",
            hint="see 'aishell volumes list'",
        )
    wanted = [by_name[n] for n in dict.fromkeys(only)] if only else list(rows)
    remove: list[str] = []
    skipped: list[dict[str, str]] = []
    for row in wanted:
        reason = keep_reason(row, named=bool(only))
        if reason is None:
            remove.append(row.name)
        elif reason:
            skipped.append({"name": row.name, "reason": reason})
    return PrunePlan(remove=remove, skipped=skipped)


def prune_json(removed: Sequence[str], skipped: Sequence[Mapping[str, str]]) -> dict[str, Any]:
    return {"removed": list(removed), "skipped": [dict(s) for s in skipped]}


# ------------------------------------------------------------------------- engine


def _listing(engine: Engine) -> list[dict[str, Any]]:
    """Every volume on the engine, with its labels (one call)."""
    result = engine.checked("volume", "ls", "--format", "{{json .}}", what="listing volumes")
    return parse_json_lines(result.stdout)


def list_names(engine: Engine) -> list[str]:
    """The harness volumes: labelled `aishell.kind=harness`, or named like one."""
    return [str(item["Name"]) for item in _harness_items(_listing(engine))]


def _harness_items(listing: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    found = []
    for item in listing:
        name = str(item.get("Name") or "")
        labels = parse_label_string(item.get("Labels"))
        if name and (labels.get(LABEL_KIND) == "harness" or name.startswith(HARNESS_VOLUME_PREFIX)):
            found.append(item)
    return found


def collect(engine: Engine, st: state.State | None) -> list[VolumeRow]:
    """Everything about the harness volumes, with as few engine calls as possible."""
    listing = _listing(engine)
    items = _harness_items(listing)
    if not items:
        return []
    names = [str(item["Name"]) for item in items]
    hold_names = [
        str(item["Name"])
        for item in listing
        if parse_label_string(item.get("Labels")).get(LABEL_KIND) == volumes_mod.KIND_HOLD
    ]
    # Labels exactly (a listing joins them with commas, and pins hold commas).
    inspect_result, df_result = engine.capture_many(
        ["volume", "inspect", *names, *hold_names],
        ["system", "df", "-v", "--format", "{{json .}}"],
    )
    inspected = volumes_mod.parse_volumes_inspect(inspect_result.stdout)
    labels = {name: volumes_mod.labels_of(inspected.get(name)) for name in names}
    unlabelled = frozenset(n for n, lab in labels.items() if lab.get(LABEL_KIND) != "harness")
    home_id = paths.home_id()
    holds: dict[str, list[Holder]] = {}
    for hold in volumes_mod.holds_of(inspected.values()):
        if not (hold.owner and stale_home(hold.owner)):
            holds.setdefault(hold.volume, []).append(holder_of(hold.owner, home_id))
    try:
        df_data = json.loads(df_result.stdout) if df_result.ok else None
    except json.JSONDecodeError:
        df_data = None
    in_use = containers_using_volumes(engine, names)
    versions = {name: rec.versions for name, rec in st.volumes.items()} if st else {}
    return build_rows(
        names,
        labels=labels,
        sizes=sizes_from_system_df(df_data),
        active=st.harness_volume if st else None,
        versions=versions,
        in_use=in_use,
        holds=holds,
        home_id=home_id,
        filling=frozenset(journal.in_progress()),
        unlabelled=unlabelled,
    )


def stale_home(owner: volumes_mod.Owner) -> bool:
    """The aishell home behind a hold is gone from this machine (its directory does not
    exist): the hold no longer means anyone uses the volume. Unsure (another machine,
    a path this user cannot see) counts as not stale."""
    if not owner.home_path or owner.host != os.uname().nodename:
        return False
    try:
        os.lstat(owner.home_path)
    except FileNotFoundError:
        parent = os.path.dirname(owner.home_path)
        return os.access(parent, os.X_OK) or not os.path.lexists(parent)
    except OSError:
        return False
    return False


def tidy_holds(engine: Engine, existing: set[str]) -> list[str]:
    """Remove holds on volumes that no longer exist: this home's (unless a running
    aishell of this home is about to make the volume) and those of homes that no longer
    exist on this machine. Quiet; returns the holds removed."""
    try:
        holds = volumes_mod.list_holds(engine)
    except AishellError:
        return []
    busy = journal.in_progress()
    home_id = paths.home_id()
    stale = [
        h.name
        for h in holds
        if h.volume not in existing
        and h.name not in busy
        and h.owner is not None
        and (h.owner.home_id == home_id or stale_home(h.owner))
    ]
    if stale:
        engine.capture_many(*[["volume", "rm", name] for name in stale])
    return stale


def remove_volumes(engine: Engine, names: Sequence[str]) -> tuple[list[str], list[dict[str, str]]]:
    """Remove `names`, each after checking once more, just before, that no other home
    has taken a hold on it meanwhile; this home's own holds on them go too."""
    if not names:
        return [], []
    home_id = paths.home_id()
    removed: list[str] = []
    failed: list[dict[str, str]] = []
    try:
        holds = volumes_mod.list_holds(engine)
    except AishellError as exc:
        return [], [{"name": n, "reason": f"holds unknown: {exc.message}"} for n in names]
    others = {
        h.volume
        for h in holds
        if h.owner is None or (h.owner.home_id != home_id and not stale_home(h.owner))
    }
    results = engine.capture_many(*[["volume", "rm", name] for name in names if name not in others])
    answers = iter(results)
    for name in names:
        if name in others:
            failed.append({"name": name, "reason": "another aishell home took a hold on it"})
            continue
        result = next(answers)
        if result.ok:
            removed.append(name)
        else:
            reason = first_line(result.stderr) or f"exit {result.returncode}"
            failed.append({"name": name, "reason": reason})
    gone = set(removed)
    stale = [h.name for h in holds if h.volume in gone and h.owner is not None]
    if stale:  # this home's holds (and those of homes that no longer exist) on what went
        engine.capture_many(*[["volume", "rm", hold] for hold in stale])
    return removed, failed


def forget(names: Sequence[str]) -> None:
    """Drop the state records of removed volumes (only when a state file exists)."""
    if not names or not paths.state_file().exists():
        return

    def mutate(current: state.State) -> None:
        for name in names:
            current.volumes.pop(name, None)

    state.update(mutate)


# ------------------------------------------------------------------------ command


def build_parser() -> Parser:
    p = parser(
        "aishell volumes",
        "List the harness volumes (the installed agents), or prune the orphaned ones: "
        "every harness volume but the one the current setup uses. Prune skips volumes "
        "that a container uses.",
    )
    p.add_argument("subcommand", nargs="?", default="list", metavar="list|prune")
    p.add_argument(
        "names", nargs="*", metavar="NAME", help="prune: only these volumes (default: all orphaned)"
    )
    p.add_argument("--yes", "-y", action="store_true", help="prune without asking")
    p.add_argument("--json", action="store_true", help="print JSON (see docs/json-output.md)")
    return p


def main(argv: Sequence[str]) -> int:
    # Intermixed: `prune --yes NAME` and `prune NAME --yes` both work.
    ns = build_parser().parse_intermixed_args(list(argv))
    if ns.subcommand not in SUBCOMMANDS:
        raise UsageError(
            f"unknown volumes subcommand {ns.subcommand!r}",
            hint="use 'aishell volumes list' or 'aishell volumes prune'",
        )
    if ns.subcommand == "list" and ns.names:
        raise UsageError(
            "'volumes list' takes no volume names", hint="see 'aishell volumes --help'"
        )

    engine = choice.get_engine()
    st = state.load()
    rows = collect(engine, st)
    if ns.subcommand == "list":
        return _list(rows, st, as_json=ns.json)
    return _prune(engine, rows, only=ns.names, yes=ns.yes, as_json=ns.json)


def _list(rows: Sequence[VolumeRow], st: state.State | None, *, as_json: bool) -> int:
    if as_json:
        report_json.emit([row.to_json() for row in rows])
        return 0
    if not rows:
        output.out("No harness volumes.")
        output.info("'aishell setup --with-<agent>' creates one.")
        return 0
    for line in render_list(rows):
        output.out(line)
    if st and st.harness_volume and all(row.name != st.harness_volume for row in rows):
        output.info(
            f"The active volume {st.harness_volume} does not exist; "
            "it is filled on the next launch."
        )
    for row in rows:
        if not row.labelled:
            then = (
                "the next launch replaces it and installs the agents again"
                if row.status == "active"
                else "'aishell volumes prune' removes it"
            )
            output.info(
                f"{row.name} has no aishell labels: the engine made it, empty, for a "
                f"container that mounted it while it was missing; {then}."
            )
    if any(row.status == "orphaned" and keep_reason(row, named=False) is None for row in rows):
        output.info("Remove orphaned volumes nobody uses with: aishell volumes prune")
    return 0


def _prune(
    engine: Engine, rows: Sequence[VolumeRow], *, only: Sequence[str], yes: bool, as_json: bool
) -> int:
    plan = plan_prune(rows, only)
    recorded = {row.name for row in rows if row.recorded}
    if not only:
        tidy_holds(engine, {row.name for row in rows})
    if not as_json:
        for item in plan.skipped:
            output.out(f"Skipping {item['name']} ({item['reason']})")
    if not plan.remove:
        if as_json:
            report_json.emit(prune_json([], plan.skipped))
        else:
            output.out("No orphaned volumes to prune.")
        return 0
    if not yes:
        output.info("Orphaned harness volumes to remove:")
        for name in plan.remove:
            output.info(f"  - {name}")
        if not sys.stdin.isatty():
            raise AishellError(
                f"not removing {len(plan.remove)} volume(s) without confirmation "
                "(no terminal to ask)",
                hint="pass --yes to remove them",
            )
        if not output.ask_yes_no(f"Remove {len(plan.remove)} volume(s)?"):
            raise Aborted("Aborted. No volume was removed.")
    if any(name in recorded for name in plan.remove):
        state.check_writable()  # a full or read-only home: say so before removing anything
    removed, failed = remove_volumes(engine, plan.remove)
    try:
        forget(removed)
    except AishellError as exc:
        raise AishellError(
            f"removed {', '.join(removed)}, but could not record that: {exc.message}",
            hint=exc.hint,
        ) from exc
    skipped = [*plan.skipped, *failed]
    if as_json:
        report_json.emit(prune_json(removed, skipped))
        return 0
    for name in removed:
        output.out(f"Removed {name}")
    for item in failed:
        output.out(f"Skipping {item['name']} ({item['reason']})")
    output.out("Prune complete.")
    return 0
