"""`aishell volumes [list|prune [NAME...]] [--yes] [--json]`: the harness volumes.

A harness volume (label `aishell.kind=harness`) holds the agent CLIs of one
selection. The one the saved setup uses is `active`; every other one is
`orphaned` (left over from an earlier selection, or from another user's setup on
the same engine) and can be pruned. Prune never removes a volume that a
container (running or stopped) uses.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aishell import output, paths, report_json, state
from aishell.commands._args import Parser, parser
from aishell.constants import LABEL_KIND
from aishell.engine import choice
from aishell.engine.client import first_line
from aishell.engine.containers import containers_using_volumes, parse_json_lines
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
class VolumeRow:
    name: str
    status: str  # "active" | "orphaned"
    size: str | None  # as the engine shows it ("370.7MB"); None when unknown
    size_bytes: int | None
    harnesses: list[str] | None  # from the volume's label; None when it has none
    pins: dict[str, str] = field(default_factory=dict)  # from the label: tool -> pin
    versions: dict[str, str] = field(default_factory=dict)  # installed, from state
    in_use_by: list[str] = field(default_factory=list)  # container names

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "size": self.size,
            "size_bytes": self.size_bytes,
            "harnesses": self.harnesses,
            "versions": dict(self.versions),
            "in_use_by": list(self.in_use_by),
        }


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
) -> list[VolumeRow]:
    """Rows for `names`, active first, then by name."""
    rows = []
    for name in dict.fromkeys(names):
        vol_labels = labels.get(name, {})
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


def render_list(rows: Sequence[VolumeRow]) -> list[str]:
    body = [
        [
            row.name,
            row.status,
            row.size or "N/A",
            harness_text(row),
            _in_use_text(row.in_use_by),
        ]
        for row in rows
    ]
    return report_json.table(["NAME", "STATUS", "SIZE", "HARNESSES", "IN USE BY"], body)


@dataclass(frozen=True)
class PrunePlan:
    remove: list[str]
    skipped: list[dict[str, str]]  # {name, reason}


def in_use_reason(containers: Sequence[str]) -> str:
    return "in use by container" + ("s " if len(containers) > 1 else " ") + ", ".join(containers)


def plan_prune(rows: Sequence[VolumeRow], only: Sequence[str] = ()) -> PrunePlan:
    """Orphaned volumes to remove, and those skipped (in use; or named but active).

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
        if row.status == "active":
            if only:
                skipped.append({"name": row.name, "reason": "active (the current setup uses it)"})
            continue
        if row.in_use_by:
            skipped.append({"name": row.name, "reason": in_use_reason(row.in_use_by)})
            continue
        remove.append(row.name)
    return PrunePlan(remove=remove, skipped=skipped)


def prune_json(removed: Sequence[str], skipped: Sequence[Mapping[str, str]]) -> dict[str, Any]:
    return {"removed": list(removed), "skipped": [dict(s) for s in skipped]}


# ------------------------------------------------------------------------- engine


def list_names(engine: Engine) -> list[str]:
    result = engine.checked(
        "volume",
        "ls",
        "--filter",
        f"label={LABEL_KIND}=harness",
        "--format",
        "{{json .}}",
        what="listing volumes",
    )
    return [str(item["Name"]) for item in parse_json_lines(result.stdout) if item.get("Name")]


def collect(engine: Engine, st: state.State | None) -> list[VolumeRow]:
    """Everything about the harness volumes, with as few engine calls as possible."""
    names = list_names(engine)
    if not names:
        return []
    inspect_result, df_result = engine.capture_many(
        ["volume", "inspect", *names], ["system", "df", "-v", "--format", "{{json .}}"]
    )
    labels: dict[str, dict[str, str]] = {}
    try:
        items = json.loads(inspect_result.stdout) if inspect_result.stdout.strip() else []
    except json.JSONDecodeError:
        items = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and item.get("Name"):
            labels[str(item["Name"])] = dict(item.get("Labels") or {})
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
    )


def remove_volumes(engine: Engine, names: Sequence[str]) -> tuple[list[str], list[dict[str, str]]]:
    if not names:
        return [], []
    results = engine.capture_many(*[["volume", "rm", name] for name in names])
    removed: list[str] = []
    failed: list[dict[str, str]] = []
    for name, result in zip(names, results, strict=True):
        if result.ok:
            removed.append(name)
        else:
            reason = first_line(result.stderr) or f"exit {result.returncode}"
            failed.append({"name": name, "reason": reason})
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
    if any(row.status == "orphaned" for row in rows):
        output.info("Remove orphaned volumes with: aishell volumes prune")
    return 0


def _prune(
    engine: Engine, rows: Sequence[VolumeRow], *, only: Sequence[str], yes: bool, as_json: bool
) -> int:
    plan = plan_prune(rows, only)
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
    removed, failed = remove_volumes(engine, plan.remove)
    forget(removed)
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
