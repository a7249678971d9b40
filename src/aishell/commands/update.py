"""`aishell update [--force] [--verbose]`: refresh the agents of the saved setup.

The saved selection is installed again (`latest` re-resolved) into a *fresh*
harness volume; the saved state switches to it only once the fill completed.
Running containers keep the volume they mounted and are never touched; new
launches use the fresh one. The previous volume stays until `aishell volumes
prune`. A failed update removes the fresh volume and changes nothing.
The foundation image is rebuilt when its inputs changed, or always with --force.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from aishell import journal, output, paths, state
from aishell.commands import setup
from aishell.commands._args import parser
from aishell.engine import choice, volumes
from aishell.errors import AishellError, UsageError
from aishell.harnesses import BY_NAME, TOOLS
from aishell.versions import parse_pin

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from aishell.commands._args import Parser
    from aishell.engine.client import Engine

ARROW = "\u2192"
NO_SETUP_HINT = "run 'aishell setup --with-claude' (or another agent) first"


def build_parser() -> Parser:
    p = parser(
        "aishell update",
        "Install the saved selection of agents again (re-resolving 'latest') into a fresh "
        "harness volume and switch to it once it is complete. Running containers keep the "
        "agents they started with; the previous volume stays until 'aishell volumes prune'. "
        "The sandbox image is rebuilt when aishell's files for it changed. To change which "
        "agents are installed, run 'aishell setup'.",
    )
    p.add_argument(
        "--force", action="store_true", help="also rebuild the sandbox image from scratch"
    )
    p.add_argument("--verbose", "-v", action="store_true", help="show the full build output")
    return p


# --------------------------------------------------------------------------- pure


def saved_selection(tools: Mapping[str, str]) -> dict[str, str]:
    """The saved selection, checked as setup checks its flags (the file may be edited)."""
    selection: dict[str, str] = {}
    for name, pin in tools.items():
        tool = BY_NAME.get(name)
        if tool is None:
            raise AishellError(
                f"the saved setup names an unknown agent {name!r}",
                hint="run 'aishell setup --with-<agent> ...' again to rewrite it",
            )
        try:
            selection[name] = parse_pin(tool.label, pin)
        except UsageError as exc:
            raise AishellError(
                f"the saved setup is invalid: {exc.message}",
                hint="run 'aishell setup --with-<agent> ...' again to rewrite it",
            ) from exc
    return selection


def describe_selection(selection: Mapping[str, str]) -> str:
    """ "OpenCode latest, Codex CLI 1.2.3" in the order of TOOLS."""
    return ", ".join(f"{t.label} {selection[t.name]}" for t in TOOLS if t.name in selection)


def version_change(label: str, old: str | None, new: str | None) -> str:
    """One line of the update summary, e.g. `OpenCode 1.2.3 → 1.2.4`."""
    if new is None:
        return f"{label} {old or '?'} {ARROW} ? (the install did not report a version)"
    if old is None:
        return f"{label} {new} (previous version unknown)"
    if old == new:
        return f"{label} {old} {ARROW} {new} (unchanged)"
    return f"{label} {old} {ARROW} {new}"


def version_changes(
    selection: Mapping[str, str],
    old_versions: Mapping[str, str],
    new_versions: Mapping[str, str],
) -> list[str]:
    """A line per selected tool, in the order of TOOLS."""
    return [
        version_change(t.label, old_versions.get(t.name), new_versions.get(t.name))
        for t in TOOLS
        if t.name in selection
    ]


def old_volume_notice(old: str, new: str, running: Sequence[str]) -> list[str]:
    """What happens to the previous volume (which aishell never removes itself)."""
    lines = [f"New launches use {new}."]
    if running:
        lines.append(
            f"Still running with the previous volume {old}: {', '.join(running)} "
            "(unchanged; they keep working until they exit)."
        )
        lines.append("Once they have exited, remove it with: aishell volumes prune")
    else:
        lines.append(f"The previous volume {old} stays until: aishell volumes prune")
    return lines


# ------------------------------------------------------------------------- engine


def _pick_fresh_volume(engine: Engine, selection: Mapping[str, str]) -> str:
    for _ in range(5):
        stamp, token = volumes.new_stamp_and_token()
        name = volumes.fresh_volume_name(selection, stamp=stamp, token=token)
        if volumes.inspect_volume(engine, name) is None:
            return name
    raise AishellError("could not find an unused name for the new harness volume")


def _running_users(engine: Engine, volume: str) -> list[str]:
    result = engine.capture("ps", "--filter", f"volume={volume}", "--format", "{{.Names}}")
    if not result.ok:
        return []
    return sorted(
        {n.strip() for line in result.stdout.splitlines() for n in line.split(",") if n.strip()}
    )


def _fill_fresh(
    engine: Engine,
    selection: Mapping[str, str],
    *,
    new: str,
    old: str,
    image: str,
    verbose: bool,
    seed: str | None = None,
    only: Mapping[str, str] | None = None,
) -> state.VolumeRecord:
    """Fill `new` (from a copy of `seed`, installing only `only`, when given); on any
    failure it is removed again (`volumes.fill`), and the error says that nothing
    changed."""
    try:
        result = volumes.fill(
            engine,
            volume=new,
            selection=selection,
            image=image,
            verbose=verbose,
            refill=False,
            seed=seed,
            only=only,
        )
    except AishellError as exc:
        gone = volumes.inspect_volume(engine, new) is None
        unchanged = f"nothing changed: {old} stays in use" if old else "nothing changed"
        if not gone:
            unchanged += f"; remove the unfinished volume with '{engine.name} volume rm {new}'"
        raise AishellError(
            f"{exc.message}; {unchanged}", hint=exc.hint, details=exc.details
        ) from exc
    return setup.record_of(result)


def _switch(
    selection: Mapping[str, str],
    *,
    new: str,
    record: state.VolumeRecord,
    foundation: setup.Foundation,
) -> state.State:
    """Point the saved state at `new`, unless the selection changed meanwhile."""

    def mutate(current: state.State) -> None:
        if current.tools != dict(selection):
            raise AishellError(
                "the saved setup changed while updating (another 'aishell setup' ran); "
                "nothing changed",
                hint="run 'aishell update' again",
            )
        current.harness_volume = new
        current.volumes[new] = record
        current.foundation_hash = foundation.hash
        current.foundation_id = foundation.id
        current.build_time = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    return state.update(mutate, repair=True)


def _record_foundation(foundation: setup.Foundation, *, volume: str | None = None) -> None:
    """Save the foundation (and, with `volume`, that launches use it: a repaired state
    that had lost it)."""

    def mutate(current: state.State) -> None:
        current.foundation_hash = foundation.hash
        current.foundation_id = foundation.id
        if volume is not None:
            current.harness_volume = volume

    state.update(mutate, repair=True)


def changed_tools(
    selection: Mapping[str, str],
    installed: Mapping[str, str],
    latest: Mapping[str, str] | None,
) -> list[str]:
    """The tools whose version now differs from the installed one (pure; all of them
    when the latest versions are unknown), in the order of TOOLS."""
    return [
        t.name
        for t in TOOLS
        if t.name in selection and (latest is None or installed.get(t.name) != latest.get(t.name))
    ]


def main(argv: Sequence[str]) -> int:
    ns = build_parser().parse_args(list(argv))
    parsed = state.inspect()
    if parsed is None:
        raise AishellError("no setup found", hint=NO_SETUP_HINT)
    if parsed.dropped and not parsed.tools_readable:
        raise state.StateError(
            f"the state file {paths.state_file()} is damaged and names no agents that "
            f"can be read ({'; '.join(parsed.dropped)}); 'aishell update' cannot repair it",
            hint=state.REPAIR_WITH_SETUP,
        )
    state.check_writable()
    setup.warn_repair(parsed, "aishell update")
    st = parsed.state
    selection = saved_selection(st.tools)

    cfg = setup.global_config()
    engine = choice.get_engine()
    setup.check_engine(engine)
    if selection:
        output.info(f"Updating {describe_selection(selection)}")
    foundation = setup.build_images(
        engine, cfg, gitleaks=st.gitleaks, force=ns.force, verbose=ns.verbose
    )
    if not selection:
        if foundation != (st.foundation_hash, st.foundation_id) or parsed.dropped:
            _record_foundation(foundation)
        output.info("No agents selected; nothing to update.")
        return 0

    old = st.harness_volume or volumes.volume_name(selection)
    old_record = st.volumes.get(old)
    old_versions = old_record.versions if old_record else {}
    old_exists = volumes.inspect_volume(engine, old) is not None
    latest = volumes.latest_versions(engine, foundation.id, selection)
    changed = changed_tools(selection, old_versions, latest)
    if latest is not None and old_exists and not changed:
        if foundation != (st.foundation_hash, st.foundation_id) or parsed.dropped:
            _record_foundation(foundation, volume=old)
        output.info("Already up to date:")
        for line in version_changes(selection, old_versions, latest):
            output.info(f"  {line}")
        output.info(f"Launches keep using {old}.")
        return 0
    seed = old if latest is not None and old_exists and old_versions else None
    if seed is not None:
        output.info(
            "Reinstalling only what changed: "
            + ", ".join(f"{BY_NAME[t].label} {latest[t]}" for t in changed if latest)
        )
    new = _pick_fresh_volume(engine, selection)
    record = _fill_fresh(
        engine,
        selection,
        new=new,
        old=old,
        image=foundation.id,
        verbose=ns.verbose,
        seed=seed,
        only={t: latest[t] for t in changed} if seed is not None and latest else None,
    )
    try:
        _switch(selection, new=new, record=record, foundation=foundation)
    except BaseException:
        volumes.undo(
            engine, journal.current().entries, active=st.harness_volume, recorded=list(st.volumes)
        )
        raise
    setup.switch_holds(engine, new=new, old=old)

    output.info("Updated:")
    for line in version_changes(
        selection, old_record.versions if old_record else {}, record.versions
    ):
        output.info(f"  {line}")
    if volumes.inspect_volume(engine, old) is not None:
        for line in old_volume_notice(old, new, _running_users(engine, old)):
            output.info(line)
    else:
        output.info(f"New launches use {new}.")
    return 0
