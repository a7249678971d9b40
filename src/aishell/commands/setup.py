"""`aishell setup` (alias `build`): foundation image, harness volume, saved selection."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from aishell import config as config_mod
from aishell import journal, output, paths, state
from aishell.commands._args import Parser, parser
from aishell.engine import choice, images, volumes
from aishell.harnesses import TOOLS
from aishell.tuples import NamedTuple
from aishell.versions import parse_pin

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from aishell.config import Config
    from aishell.engine.client import Engine


def build_parser() -> Parser:
    p = parser(
        "aishell setup",
        "Build the sandbox image and install the selected agents. Declarative: agents "
        "not named are disabled. VERSION is X.Y.Z (or X.Y.Z-pre); omit it for the latest.",
    )
    for tool in TOOLS:
        p.add_argument(
            f"--with-{tool.name}",
            nargs="?",
            const="latest",
            default=None,
            metavar="VERSION",
            help=f"install {tool.label} ({tool.package})",
        )
    p.add_argument("--with-gitleaks", action="store_true", help="add gitleaks to the image")
    p.add_argument("--force", action="store_true", help="rebuild the image from scratch")
    p.add_argument("--verbose", "-v", action="store_true", help="show the full build output")
    return p


def selection_from(ns: object) -> dict[str, str]:
    selection: dict[str, str] = {}
    for tool in TOOLS:
        value = getattr(ns, f"with_{tool.name}")
        if value is not None:
            selection[tool.name] = parse_pin(tool.label, value)
    return selection


def global_config() -> Config:
    return config_mod.load_config(
        aishell_home=paths.aishell_home(),
        project_root=None,
        expansion=config_mod.Expansion.from_host(),
    )


def check_engine(engine: Engine) -> None:
    engine.checked(
        "version",
        "--format",
        "{{.Server.Version}}",
        what=f"asking the {engine.kind} engine for its version",
        hint=f"start the {engine.kind} engine and check '{engine.name} info'",
    )


class Foundation(NamedTuple):
    """The foundation this home holds after setup/update: its input hash and image ID."""

    hash: str
    id: str


def build_images(
    engine: Engine, cfg: Config, *, gitleaks: bool, force: bool, verbose: bool
) -> Foundation:
    """This home's foundation (reused or built when its inputs changed) and base tier."""
    holds = images.Holds(paths.home_id())
    context = images.foundation_context(
        base_image=cfg.base_image, with_gitleaks=gitleaks, ca_certificates=cfg.ca_certificates
    )
    foundation = images.ensure_foundation(
        engine, context, holds=holds, force=force, verbose=verbose
    )
    base_item = images.inspect_images(engine, [holds.base]).get(holds.base)
    images.ensure_base(
        engine,
        holds=holds,
        dockerfile=paths.global_dockerfile(),
        foundation=foundation,
        base_item=base_item,
        verbose=verbose,
        force=force,
        network=images.build_network(cfg.network.mode),
    )
    return Foundation(context.hash, images.image_id(foundation))


def fill_volume(
    engine: Engine,
    selection: dict[str, str],
    *,
    volume: str,
    image: str,
    verbose: bool,
    refill: bool = False,
) -> state.VolumeRecord:
    """Fill `volume` (what the fill made is removed again if it fails: `volumes.fill`)."""
    result = volumes.fill(
        engine, volume=volume, selection=selection, image=image, verbose=verbose, refill=refill
    )
    return record_of(result)


def record_of(result: volumes.FillResult) -> state.VolumeRecord:
    return state.VolumeRecord(
        created_at=result.created_at,
        versions=result.versions,
        filled_at=result.filled_at,
        instance=result.instance,
    )


def warn_repair(parsed: state.Parsed | None, command: str) -> None:
    """Setup and update repair a damaged state file: what can be read is kept, and
    the user is told what is dropped."""
    if parsed is not None and parsed.dropped:
        output.warn(
            f"the state file {paths.state_file()} is damaged; '{command}' rewrites it "
            f"without: {'; '.join(parsed.dropped)}"
        )


def save_or_undo(
    engine: Engine, mutate: Callable[[state.State], None], previous: state.State | None
) -> state.State:
    """Save the new state; if that fails (a read-only or full home), remove what this
    command made and the state does not record, then raise."""
    try:
        return state.update(mutate, repair=True)
    except BaseException:
        volumes.undo(
            engine,
            journal.current().entries,
            active=previous.harness_volume if previous else None,
            recorded=list(previous.volumes) if previous else [],
        )
        raise


def switch_holds(engine: Engine, *, new: str, old: str | None) -> None:
    """The state now names `new`: this home's hold on it stays, the one on `old` goes."""
    owner = volumes.Owner.current()
    if new:
        volumes.settled(new, owner)
    if old and old != new:
        volumes.release_hold(engine, owner.home_id, old)


def changes(previous: Mapping[str, str], selection: Mapping[str, str]) -> list[str]:
    """What a setup changes in the saved selection, as lines (pure): agents it disables
    (setup is declarative: what it does not name is turned off) and pins it changes."""
    lines = []
    dropped = [t for t in TOOLS if t.name in previous and t.name not in selection]
    if dropped:
        lines.append(
            "Disabled (not named in this setup): "
            + ", ".join(t.label for t in dropped)
            + "; to keep "
            + ("it" if len(dropped) == 1 else "them")
            + ", add "
            + " ".join(f"--with-{t.name}" for t in dropped)
        )
    for t in TOOLS:
        old, new = previous.get(t.name), selection.get(t.name)
        if old is not None and new is not None and old != new:
            lines.append(f"{t.label}: {old} {ARROW} {new}")
    return lines


ARROW = "\u2192"


def provision(
    selection: dict[str, str],
    *,
    gitleaks: bool,
    force: bool = False,
    verbose: bool = False,
    first_run: bool = False,
) -> state.State:
    """Build what `selection` needs (foundation, base, harness volume) and save it as the
    setup. Shared by `aishell setup` and a launch that installs what it lacks.
    `first_run`: called by a launch, which says itself how to start (no "Start with")."""
    cfg = global_config()
    engine = choice.get_engine()
    check_engine(engine)
    state.check_writable()  # a read-only or full home fails now, before anything is made
    parsed = state.inspect()
    warn_repair(parsed, "aishell setup")
    previous = parsed.state if parsed is not None else None
    for line in changes(previous.tools if previous else {}, selection):
        output.info(line)
    foundation = build_images(engine, cfg, gitleaks=gitleaks, force=force, verbose=verbose)
    # Keep the newest volume filled for this same selection (`aishell update`'s).
    volume = volumes.volume_for(selection, previous) if selection else ""
    record = (
        fill_volume(engine, selection, volume=volume, image=foundation.id, verbose=verbose)
        if selection
        else None
    )

    def mutate(current: state.State) -> None:
        current.tools = dict(selection)
        current.gitleaks = bool(gitleaks)
        current.foundation_hash = foundation.hash
        current.foundation_id = foundation.id
        current.build_time = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        current.harness_volume = volume
        if record is not None:
            current.volumes[volume] = record

    saved = save_or_undo(engine, mutate, previous)
    switch_holds(engine, new=volume, old=previous.harness_volume if previous else None)
    if selection:
        assert record is not None
        names = ", ".join(
            f"{tool.label} {record.versions.get(tool.name, selection[tool.name])}"
            for tool in TOOLS
            if tool.name in selection
        )
        output.info(f"Ready: {names}" + (" + gitleaks" if gitleaks else ""))
        if not first_run:
            first = next(t.name for t in TOOLS if t.name in selection)
            harness = first if first != "openspec" else "shell"
            output.info(f"Start with: aishell {harness}")
    elif not first_run:
        output.info("Ready: no agents selected; 'aishell' opens a shell in the sandbox")
    return saved


def main(argv: Sequence[str]) -> int:
    ns = build_parser().parse_args(list(argv))
    selection = selection_from(ns)  # versions are validated before any work
    provision(selection, gitleaks=ns.with_gitleaks, force=ns.force, verbose=ns.verbose)
    return 0
