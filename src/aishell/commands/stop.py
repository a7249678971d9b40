"""`aishell stop NAME... | --all [--everywhere]`: stop running agents and shells.

A NAME is what `aishell ps` shows for this project (or the engine's full container
name `aishell-<hash>-<name>`, for one of another project's, as `ps --all` shows it).
`--all` stops this project's running containers; `--all --everywhere` those of
every project started from this aishell home (label `aishell.home`; never another
user's on a shared engine). Containers are started with `--rm`, so a stopped one is
gone; an allowlist session's registration with the egress proxy ends with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aishell import output, paths, report_json
from aishell.commands._args import parser
from aishell.constants import LABEL_HOME, LABEL_NAME, LABEL_PROJECT_HASH
from aishell.engine import choice
from aishell.engine.containers import container_names, list_containers, parse_label_string
from aishell.errors import AishellError, UsageError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

STOP_TIMEOUT = "10"  # seconds the agent gets to exit before it is killed


def running(items: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Engine container name -> aishell name, of the running containers listed."""
    found: dict[str, str] = {}
    for item in items:
        if str(item.get("State") or "").lower() != "running":
            continue
        names = container_names(item)
        if names:
            labels = parse_label_string(item.get("Labels"))
            found[names[0]] = labels.get(LABEL_NAME) or names[0]
    return found


def pick(
    wanted: Sequence[str], here: Mapping[str, str], everywhere: Mapping[str, str]
) -> tuple[list[str], list[str]]:
    """(containers to stop, names not found running). A name is this project's aishell
    name, or any project's full container name."""
    by_short = {short: full for full, short in here.items()}
    chosen: list[str] = []
    missing: list[str] = []
    for name in wanted:
        full = by_short.get(name) or (name if name in everywhere else None)
        if full is None:
            missing.append(name)
        elif full not in chosen:
            chosen.append(full)
    return chosen, missing


def main(argv: Sequence[str]) -> int:
    p = parser(
        "aishell stop",
        "Stop running agents or shells of this project (the container is removed). "
        "NAME is what 'aishell ps' shows, or a full container name from 'aishell ps --all'.",
    )
    p.add_argument("names", nargs="*", metavar="NAME", help="the container(s) to stop")
    p.add_argument("--all", action="store_true", help="stop all of this project's containers")
    p.add_argument(
        "--everywhere", action="store_true", help="with --all: every project's, not only this one"
    )
    ns = p.parse_args(list(argv))
    if ns.all == bool(ns.names):
        raise UsageError(
            "name the containers to stop, or give --all",
            hint="see them with 'aishell ps' (e.g. 'aishell stop claude')",
        )
    if ns.everywhere and not ns.all:
        raise UsageError("--everywhere goes with --all", hint="'aishell stop --all --everywhere'")

    engine = choice.get_engine()
    project = report_json.current_project()
    # "Every project" is this home's (a shared engine runs other users' sessions too).
    everywhere = running(list_containers(engine, f"label={LABEL_HOME}={paths.home_id()}"))
    here = running(list_containers(engine, f"label={LABEL_PROJECT_HASH}={project.hash}"))
    if ns.all:
        targets = list(everywhere if ns.everywhere else here)
        if not targets:
            output.info("Nothing is running" + ("." if ns.everywhere else " in this project."))
            return 0
    else:
        targets, missing = pick(ns.names, here, everywhere)
        if missing:
            raise AishellError(
                f"nothing named {', '.join(repr(n) for n in missing)} runs in this project",
                hint="see what runs with 'aishell ps' (other projects: 'aishell ps --all')",
            )
    with output.Progress(f"Stopping {', '.join(everywhere.get(t, t) for t in targets)}"):
        result = engine.capture("stop", "-t", STOP_TIMEOUT, *targets)
    if not result.ok:
        from aishell.engine.client import engine_cause

        raise AishellError(
            f"stopping failed: {engine_cause(result.stderr) or f'exit {result.returncode}'}",
            details=result.stderr.strip() or None,
        )
    for target in targets:
        output.info(f"Stopped {everywhere.get(target, target)} ({target})")
    return 0
