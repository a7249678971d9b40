"""`aishell ps [--json]`: this project's containers and the state of their pre_start.

Containers are found by the label `aishell.project.hash=<project hash>`, stopped
ones too. For each running container one `exec … sh -c` (all of them at once)
looks at the sentinel files the entrypoint writes:

- `/tmp/pre-start.failed`  pre_start exited non-zero (holds its exit status)  -> failed
- `/tmp/pre-start.done`    pre_start exited 0                                 -> ready
- `/tmp/aishell.ready`     missing: the entrypoint has not finished yet       -> pending
- `/tmp/pre-start.log`     present (only created when pre_start is configured)
                           with neither sentinel: still running               -> pending
- otherwise                no pre_start configured                            -> none

A container that is not running is `none`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aishell import output, paths, report_json
from aishell.commands._args import Parser, parser
from aishell.constants import (
    LABEL_HARNESS,
    LABEL_HOME,
    LABEL_KIND,
    LABEL_NAME,
    LABEL_PROJECT,
    LABEL_PROJECT_HASH,
)
from aishell.engine import choice
from aishell.engine.client import first_line
from aishell.engine.containers import (
    container_names,
    exec_probes,
    list_containers,
    parse_label_string,
)
from aishell.security import guard

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

FAILED_SENTINEL = "/tmp/pre-start.failed"
DONE_SENTINEL = "/tmp/pre-start.done"
READY_SENTINEL = "/tmp/aishell.ready"
PRE_START_LOG = "/tmp/pre-start.log"

PRE_START_STATES = ("none", "pending", "ready", "failed")

# Prints the sentinel files that exist, one per line (never fails).
PROBE_SCRIPT = (
    f"for f in {FAILED_SENTINEL} {DONE_SENTINEL} {READY_SENTINEL} {PRE_START_LOG}; "
    'do [ -e "$f" ] && echo "$f"; done; exit 0'
)

EXEC_NAME = "(exec)"


@dataclass(frozen=True)
class ContainerRow:
    name: str | None  # the aishell name (label aishell.name); None for `exec` containers
    container: str  # the engine's container name
    status: str  # e.g. "Up 5 minutes", "Exited (0) 2 seconds ago"
    state: str  # engine state: running, exited, created, paused, ...
    created: str  # ISO 8601 when the engine's timestamp could be read, else as given
    created_ago: str  # e.g. "5 minutes ago" ("" when the engine does not say)
    harness: str | None
    kind: str | None
    pre_start: str = "none"
    network: str = "open"  # the egress policy mode (label aishell.network)
    project: str | None = None  # the project directory (label aishell.project)

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def display_name(self) -> str:
        return self.name if self.name is not None else EXEC_NAME

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "container": self.container,
            "status": self.status,
            "state": self.state,
            "created": self.created,
            "harness": self.harness,
            "pre_start": self.pre_start,
            "network": self.network,
            "project": self.project,
        }


# --------------------------------------------------------------------------- pure


def pre_start_state(probe_stdout: str | None, *, running: bool) -> str:
    """The pre_start state from the probe's output (None: the probe failed)."""
    if not running:
        return "none"
    if probe_stdout is None:
        return "pending"
    present = {line.strip() for line in probe_stdout.splitlines() if line.strip()}
    if FAILED_SENTINEL in present:
        return "failed"
    if DONE_SENTINEL in present:
        return "ready"
    if READY_SENTINEL not in present:
        return "pending"
    if PRE_START_LOG in present:
        return "pending"
    return "none"


_ENGINE_TIME = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})[ T](?P<time>\d{2}:\d{2}:\d{2})(?:\.\d+)?"
    r"(?:\s*(?P<sign>[+-])(?P<hh>\d{2}):?(?P<mm>\d{2}))?"
)


def iso_time(text: str) -> str:
    """ "2026-01-02 03:04:05 +0000 UTC" -> "2026-01-02T03:04:05+00:00" (else unchanged)."""
    match = _ENGINE_TIME.match(text.strip())
    if not match:
        return text
    zone = ""
    if match.group("sign"):
        zone = f"{match.group('sign')}{match.group('hh')}:{match.group('mm')}"
    return f"{match.group('date')}T{match.group('time')}{zone}"


def _state_of(item: Mapping[str, Any]) -> str:
    state = str(item.get("State") or "").lower()
    if state:
        return state
    status = str(item.get("Status") or "")
    return "running" if status.startswith("Up") else "unknown"


def row_from_ps(item: Mapping[str, Any]) -> ContainerRow:
    """One row from a `ps --format '{{json .}}'` object."""
    labels = parse_label_string(item.get("Labels"))
    names = container_names(item)
    container = names[0] if names else str(item.get("ID", ""))[:12]
    created_raw = str(item.get("CreatedAt") or "")
    created, created_ago = iso_time(created_raw), str(item.get("RunningFor") or "")
    stamp = item.get("Created")
    if isinstance(stamp, int) and not _ENGINE_TIME.match(created_raw.strip()):
        # podman: CreatedAt is "5 minutes ago", Created the Unix time
        created = datetime.fromtimestamp(stamp, UTC).isoformat(timespec="seconds")
        created_ago = created_ago or created_raw
    return ContainerRow(
        name=labels.get(LABEL_NAME) or None,
        container=container,
        status=str(item.get("Status") or ""),
        state=_state_of(item),
        created=created,
        created_ago=created_ago,
        harness=labels.get(LABEL_HARNESS) or None,
        kind=labels.get(LABEL_KIND) or None,
        network=labels.get("aishell.network") or "open",
        project=labels.get(LABEL_PROJECT) or None,
    )


def rows_from_ps(items: Sequence[Mapping[str, Any]]) -> list[ContainerRow]:
    rows = [row_from_ps(item) for item in items]
    rows.sort(key=lambda r: (r.name is None, r.name or "", r.container))
    return rows


def with_probes(
    rows: Sequence[ContainerRow], probes: Mapping[str, str | None]
) -> list[ContainerRow]:
    """Rows with `pre_start` set from probe outputs (container name -> stdout, None = failed)."""
    return [
        replace(row, pre_start=pre_start_state(probes.get(row.container), running=row.running))
        for row in rows
    ]


def to_json(rows: Sequence[ContainerRow]) -> list[dict[str, Any]]:
    return [row.to_json() for row in rows]


def render_table(rows: Sequence[ContainerRow], *, projects: bool = False) -> list[str]:
    """The table; with `projects` (ps --all) each row's project and full container name."""
    body = [
        [
            row.display_name,
            row.status or row.state,
            row.created_ago or row.created,
            "FAILED" if row.pre_start == "failed" else row.pre_start,
            row.network,
            *([row.container, row.project or "?"] if projects else []),
        ]
        for row in rows
    ]
    headers = ["NAME", "STATUS", "CREATED", "PRE_START", "NETWORK"]
    if projects:
        headers += ["CONTAINER", "PROJECT"]
    return report_json.table(headers, body)


def failed_banner(rows: Sequence[ContainerRow], engine_name: str = "docker") -> list[str]:
    failed = [row for row in rows if row.pre_start == "failed"]
    if not failed:
        return []
    names = ", ".join(row.display_name for row in failed)
    lines = [f"pre_start failed in {names}; see {'its log' if len(failed) == 1 else 'the logs'}:"]
    lines += [f"  {engine_name} exec {row.container} cat {PRE_START_LOG}" for row in failed]
    return lines


def empty_hint() -> list[str]:
    return [
        "Start one with:",
        "  aishell                      # a shell",
        "  aishell claude               # an agent (any installed one)",
        "  aishell --detach --name N    # in the background; come back with 'aishell attach N'",
        "Containers belong to the project directory (the nearest .aishell/ or git root).",
    ]


# ------------------------------------------------------------------------ command


def build_parser() -> Parser:
    p = parser(
        "aishell ps",
        "List this project's containers (stopped ones too) with the state of their "
        "pre_start command: none, pending, ready or failed.",
    )
    p.add_argument(
        "--json", action="store_true", help="print a JSON array (see docs/json-output.md)"
    )
    p.add_argument(
        "--all", "-a", action="store_true", help="every project's containers, not only this one's"
    )
    return p


def collect(project_hash: str | None) -> tuple[list[ContainerRow], str, list[str]]:
    """The rows (probed), the engine's CLI name, and warnings about failed probes
    (`project_hash` None: every project's)."""
    engine = choice.get_engine()
    if project_hash is not None:
        scope = f"label={LABEL_PROJECT_HASH}={project_hash}"
    else:  # every project's, but only this home's (not other users' on a shared engine)
        scope = f"label={LABEL_HOME}={paths.home_id()}"
    rows = rows_from_ps(list_containers(engine, scope))
    if project_hash is None:
        rows.sort(key=lambda r: (r.project or "", r.name is None, r.name or "", r.container))
    running = [row.container for row in rows if row.running]
    results = exec_probes(engine, running, PROBE_SCRIPT)
    probes: dict[str, str | None] = {}
    warnings: list[str] = []
    for name, result in results.items():
        if result.ok:
            probes[name] = result.stdout
        else:
            probes[name] = None
            reason = first_line(result.stderr) or f"exit {result.returncode}"
            warnings.append(f"could not look inside {name} ({reason}); pre_start shown as pending")
    return with_probes(rows, probes), engine.name, warnings


def main(argv: Sequence[str]) -> int:
    ns = build_parser().parse_args(list(argv))
    project = report_json.current_project()
    guard.settle_with_any_engine(project)  # detached sessions that ended: their notice
    rows, engine_name, warnings = collect(None if ns.all else project.hash)
    for warning in warnings:
        output.warn(warning)
    if ns.json:
        report_json.emit(to_json(rows))
        return 0
    if not rows:
        output.out("No aishell containers." if ns.all else "No containers for this project.")
        for line in empty_hint():
            output.info(line)
        return 0
    for line in render_table(rows, projects=ns.all):
        output.out(line)
    for line in failed_banner(rows, engine_name):
        output.info(output.style(line, "33") if line.startswith("pre_start") else line)
    named = [
        row
        for row in rows
        if row.name is not None and row.running and row.project in (None, project.canonical)
    ]
    if named:
        output.info(f"Attach: aishell attach {named[0].name}   Stop: aishell stop {named[0].name}")
    return 0
