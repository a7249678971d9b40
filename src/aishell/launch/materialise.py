"""Step 2 of a launch: materialise. The only step with side effects.

It makes what the run needs exist: the image tiers (built when their inputs changed),
the harness volume (filled when it is not recorded as filled), the agents' per-project
config and shared logins (`agenthome.prepare`); and it removes a stopped container
left under the same name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aishell import agenthome, output, paths, state
from aishell.constants import DOCKERFILE
from aishell.engine import choice, containers, images, volumes
from aishell.errors import AishellError
from aishell.tuples import NamedTuple

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from aishell.config import Config
    from aishell.engine.client import Engine
    from aishell.engine.run_args import Bind, Flavour
    from aishell.launch.resolve import Resolved
    from aishell.project import Project


class Materials(NamedTuple):
    engine: Engine
    image: str  # the image ID to run (never a tag another home could move)
    volume: str | None  # the harness volume, filled; None without tools
    agent_binds: tuple[Bind, ...]  # the agents' per-project config and shared logins
    flavour: Flavour  # how the engine speaks (Docker/Podman, rootless, SELinux)
    owner: volumes.Owner | None = None  # this aishell home, for the container's labels


def materialise(r: Resolved) -> Materials:
    engine = choice.get_engine(r.config.engine)
    holds = images.Holds(paths.home_id())
    wanted_images = [holds.foundation, holds.base, holds.tag(r.project.extension_role)]
    queries: list[tuple[str, list[str]]] = [("image", asked_images(holds, r))]
    owner = volumes.Owner.current()
    hold = volumes.hold_name(owner.home_id, r.volume) if r.volume else ""
    if r.volume:
        queries.append(("volume", [r.volume, hold]))
    if r.container:
        queries.append(("container", [r.container]))
    results = engine.inspect_many(*queries)
    image_items = images.parse_image_inspect(results[0].stdout, wanted_images)
    found_volumes = volumes.parse_volumes_inspect(results[1].stdout) if r.volume else {}
    container_item = None
    if r.container and results[-1].ok:
        container_item = containers.parse_inspect(results[-1].stdout)

    foundation_id, image = resolve_image(
        engine,
        holds=holds,
        project=r.project,
        config=r.config,
        st=r.state,
        image_items=image_items,
        dockerfile=r.project_dockerfile,
        verbose=r.req.verbose,
        shown=r.config_dir / DOCKERFILE if r.config_dir is not None else None,
    )
    volume = ensure_volume(
        engine,
        st=r.state,
        volume_item=found_volumes.get(r.volume or ""),
        held=hold in found_volumes,
        owner=owner,
        image=foundation_id,
        verbose=r.req.verbose,
    )
    if r.container:
        handle_existing_container(engine, r.container, container_item, r.short)
    binds = agenthome.prepare(r.agents) if r.agents is not None else []
    return Materials(
        engine=engine,
        image=image,
        volume=volume,
        agent_binds=tuple(binds),
        flavour=engine.flavour,
        owner=owner,
    )


def asked_images(holds: images.Holds, r: Resolved) -> list[str]:
    """The images the launch must inspect: the foundation; the base only when a global
    Dockerfile builds one (else the base hold is another tag of the foundation, which
    its inspection lists); the project's extension only when it has a Dockerfile. (An
    image inspection costs the engine milliseconds on every launch.)"""
    asked = [holds.foundation]
    if paths.global_dockerfile().is_file():
        asked.append(holds.base)
    if r.project_dockerfile is not None:
        asked.append(holds.tag(r.project.extension_role))
    return asked


def resolve_image(
    engine: Engine,
    *,
    holds: images.Holds,
    project: Project,
    config: Config,
    st: state.State,
    image_items: Mapping[str, Mapping[str, Any]],
    dockerfile: Path | None,
    verbose: bool,
    shown: Path | None = None,
) -> tuple[str, str]:
    """(foundation ID, the image ID to run), building the base/extension tiers when
    their inputs changed. Only this home's holds are read and moved."""
    context = images.foundation_context(
        base_image=config.base_image,
        with_gitleaks=st.gitleaks,
        ca_certificates=config.ca_certificates,
    )
    foundation = image_items.get(holds.foundation)
    if foundation is None:
        foundation = adopt_foundation(engine, holds, context.hash, st)
    foundation_id = images.image_id(foundation)
    network = images.build_network(config.network.mode)
    if not images.foundation_is_current(foundation, context):
        output.warn(
            "this home's foundation image is out of date (aishell, base_image, "
            "ca_certificates or the gitleaks choice changed since setup); "
            "run 'aishell update' to rebuild it"
        )

    base_item = images.ensure_base(
        engine,
        holds=holds,
        dockerfile=paths.global_dockerfile(),
        foundation=foundation,
        base_item=image_items.get(holds.base),
        verbose=verbose,
        network=network,
    )
    base_id = images.image_id(base_item)
    if dockerfile is None:
        return foundation_id, base_id
    tier = images.extension_tier(project.extension_role, project.canonical, dockerfile, shown=shown)
    ext_item = tier.ensure(
        engine,
        holds=holds,
        item=image_items.get(holds.tag(project.extension_role)),
        parent_id=base_id,
        parents=images.parent_names(foundation_id, base_id),
        verbose=verbose,
        network=network,
    )
    return foundation_id, images.image_id(
        images.require(ext_item, holds.tag(project.extension_role))
    )


def adopt_foundation(
    engine: Engine, holds: images.Holds, expected_hash: str, st: state.State
) -> Mapping[str, Any]:
    """This home holds no foundation (set up by an older aishell, or its tag was removed):
    hold the one with its inputs that exists on the engine, and record it."""
    found = images.require(
        images.locate_foundation(
            engine,
            expected_hash=expected_hash,
            saved_hash=st.foundation_hash,
            saved_id=st.foundation_id,
        ),
        holds.foundation,
    )
    if not images.hold(engine, found, holds.foundation):
        images.require(None, holds.foundation)
    content_hash = images.labels_of(found).get(images.LABEL_FOUNDATION_HASH, "")

    def mutate(current: state.State) -> None:
        current.foundation_id = images.image_id(found)
        current.foundation_hash = content_hash

    state.update(mutate)
    return found


def ensure_volume(
    engine: Engine,
    *,
    st: state.State,
    volume_item: Mapping[str, Any] | None,
    image: str,
    held: bool = True,
    owner: volumes.Owner | None = None,
    verbose: bool = False,
) -> str | None:
    """The harness volume to mount, filled, recorded and held by this home; None when
    no tools are enabled. Trusted without a fill only when it is exactly the volume
    the state saw filled (`volumes.is_recorded_ready`)."""
    if not st.tools:
        return None
    owner = owner or volumes.Owner.current()
    name = st.harness_volume or volumes.volume_name(st.tools)
    if volumes.is_recorded_ready(st.volumes.get(name), volume_item):
        if not held:  # set up by an older aishell, or the hold was removed
            volumes.ensure_hold(engine, owner, name)
        return name
    state.check_writable()  # the fill must be recorded: fail before it, not after
    result = volumes.fill(
        engine, volume=name, selection=st.tools, image=image, verbose=verbose, owner=owner
    )
    record_fill(name, result)
    volumes.settled(name, owner)
    return name


def record_fill(name: str, result: volumes.FillResult) -> None:
    def mutate(current: state.State) -> None:
        current.volumes[name] = state.VolumeRecord(
            created_at=result.created_at,
            versions=result.versions,
            filled_at=result.filled_at,
            instance=result.instance,
        )

    state.update(mutate)


def handle_existing_container(
    engine: Engine, full_name: str, item: Mapping[str, Any] | None, short: str
) -> None:
    """A container of the same name: running (or being started by another aishell
    right now) is an error; one that ended is removed. Only the ended one, by its ID:
    never the container another launch just created under this name."""
    if item is None:
        return
    if containers.is_live(item):
        running = (item.get("State") or {}).get("Running")
        doing = "is already running" if running else "is being started by another aishell"
        raise AishellError(
            f"the container {full_name} {doing}",
            hint=f"attach with 'aishell attach {short}', or pick another --name",
        )
    result = engine.capture("rm", "-f", str(item.get("Id") or full_name))
    if result.ok:
        output.info(f"Removed stopped container {full_name}")
