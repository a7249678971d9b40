"""Step 2 of a launch: materialise. The only step with side effects.

It makes what the run needs exist: the image tiers (built when their inputs changed),
the harness volume (filled when it is not recorded as filled), the agents' config
paths on the host; and it removes a stopped container left under the same name.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, NamedTuple

from aishell import output, paths, state
from aishell.constants import BASE_IMAGE, FOUNDATION_IMAGE
from aishell.engine import choice, containers, images, volumes
from aishell.errors import AishellError
from aishell.harnesses import BY_NAME
from aishell.launch.resolve import agent_binds

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
    image: str  # the tag to run
    volume: str | None  # the harness volume, filled; None without tools
    agent_binds: tuple[Bind, ...]  # the agents' config paths, created on the host
    flavour: Flavour  # how the engine speaks (Docker/Podman, rootless, SELinux)


def materialise(r: Resolved) -> Materials:
    engine = choice.get_engine(r.config.engine)
    wanted_images = [FOUNDATION_IMAGE, BASE_IMAGE, r.project.extension_tag]
    queries: list[tuple[str, list[str]]] = [("image", wanted_images)]
    if r.volume:
        queries.append(("volume", [r.volume]))
    if r.container:
        queries.append(("container", [r.container]))
    results = engine.inspect_many(*queries)
    image_items = images.parse_image_inspect(results[0].stdout, wanted_images)
    volume_item = (
        volumes.parse_volume_inspect(results[1].stdout) if r.volume and results[1].ok else None
    )
    container_item = None
    if r.container and results[-1].ok:
        container_item = containers.parse_inspect(results[-1].stdout)

    image = resolve_image(
        engine,
        project=r.project,
        config=r.config,
        st=r.state,
        image_items=image_items,
        dockerfile=r.project_dockerfile,
        verbose=r.req.verbose,
    )
    volume = ensure_volume(engine, st=r.state, volume_item=volume_item, verbose=r.req.verbose)
    if r.container:
        handle_existing_container(engine, r.container, container_item, r.short)
    binds = ensure_host_config_paths(sorted(r.state.tools), r.host.home)
    return Materials(
        engine=engine,
        image=image,
        volume=volume,
        agent_binds=tuple(binds),
        flavour=engine.flavour,
    )


def resolve_image(
    engine: Engine,
    *,
    project: Project,
    config: Config,
    st: state.State,
    image_items: Mapping[str, Mapping[str, Any]],
    dockerfile: Path | None,
    verbose: bool,
) -> str:
    """The image to run, building the base/extension tiers when their inputs changed."""
    foundation = images.require(image_items.get(FOUNDATION_IMAGE), FOUNDATION_IMAGE)
    foundation_id = images.image_id(foundation)
    context = images.foundation_context(
        base_image=config.base_image,
        with_gitleaks=st.gitleaks,
        ca_certificates=config.ca_certificates,
    )
    if not images.foundation_is_current(foundation, context):
        output.warn(
            f"{FOUNDATION_IMAGE} is out of date (aishell, base_image or ca_certificates "
            "changed); run 'aishell update --force' to rebuild it"
        )

    base_item = images.ensure_base(
        engine,
        dockerfile=paths.global_dockerfile(),
        foundation_id=foundation_id,
        base_item=image_items.get(BASE_IMAGE),
        verbose=verbose,
    )
    if dockerfile is None:
        return BASE_IMAGE
    tier = images.extension_tier(project.extension_tag, project.canonical, dockerfile)
    tier.ensure(
        engine,
        item=image_items.get(project.extension_tag),
        parent_id=images.image_id(base_item),
        verbose=verbose,
    )
    return project.extension_tag


def ensure_volume(
    engine: Engine,
    *,
    st: state.State,
    volume_item: Mapping[str, Any] | None,
    verbose: bool = False,
) -> str | None:
    """The harness volume to mount, filled and recorded; None when no tools are enabled."""
    if not st.tools:
        return None
    name = st.harness_volume or volumes.volume_name(st.tools)
    record = st.volumes.get(name)
    if volume_item is not None and record and record.created_at == volumes.created_at(volume_item):
        return name
    result = volumes.fill(
        engine, volume=name, selection=st.tools, image=FOUNDATION_IMAGE, verbose=verbose
    )
    record_fill(engine, name, result)
    return name


def record_fill(engine: Engine, name: str, result: volumes.FillResult) -> None:
    item = volumes.inspect_volume(engine, name)

    def mutate(current: state.State) -> None:
        current.volumes[name] = state.VolumeRecord(
            created_at=volumes.created_at(item),
            versions=result.versions,
            filled_at=result.filled_at,
        )

    state.update(mutate)


def handle_existing_container(
    engine: Engine, full_name: str, item: Mapping[str, Any] | None, short: str
) -> None:
    if item is None:
        return
    running = bool((item.get("State") or {}).get("Running"))
    if running:
        raise AishellError(
            f"the container {full_name} is already running",
            hint=f"attach with 'aishell attach {short}', or pick another --name",
        )
    engine.capture("rm", "-f", full_name)
    output.info(f"Removed stopped container {full_name}")


def ensure_host_config_paths(tools: list[str], home: str) -> list[Bind]:
    """Create the agents' config paths on the host (right kind) and bind them."""
    binds = agent_binds(tools, home)
    files = {os.path.join(home, rel) for name in tools for rel in BY_NAME[name].config_files}
    for bind in binds:
        path = bind.source
        if path not in files:
            try:
                os.makedirs(path, exist_ok=True)
            except OSError as exc:
                raise AishellError(
                    f"cannot create {path}: {exc.strerror}",
                    hint="fix the permissions of your home directory",
                ) from exc
        elif not os.path.lexists(path):
            try:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as fh:
                    fh.write("{}\n")
            except FileExistsError:
                pass
            except OSError as exc:
                raise AishellError(f"cannot create {path}: {exc.strerror}") from exc
    return binds
