"""What `aishell info` and `aishell check` look at, gathered once with the fewest
engine calls: the project, the saved setup, the configuration files, the image tiers'
expected hashes, and (when asked) the engine's view of images and the harness volume.

Works without a container engine: what needs it is then unknown, with the reason.
The functions after `gather` are pure.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aishell import config as config_mod
from aishell import paths, report_json, trust
from aishell import state as state_mod
from aishell.constants import (
    DOCKERFILE,
    LABEL_KIND,
)
from aishell.engine import choice, images
from aishell.engine import volumes as volumes_mod
from aishell.engine.client import first_line
from aishell.engine.images import (
    LABEL_FOUNDATION_HASH,
    LABEL_TIER_HASH,
    LABEL_TIER_PARENT,
    image_id,
    labels_of,
)
from aishell.errors import AishellError, ConfigError, EngineError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from aishell.config import Config
    from aishell.engine.client import Engine
    from aishell.project import Project
    from aishell.state import State


def _error_text(exc: AishellError) -> str:
    return f"{exc.message}; {exc.hint}" if exc.hint else exc.message


@dataclass
class Gathered:
    """Everything `info` and `check` look at, collected with the fewest engine calls."""

    project: Project
    home: str
    aishell_home: str
    state_file: str
    holds: images.Holds = field(default_factory=lambda: images.Holds(paths.home_id()))
    state: State | None = None
    state_error: str | None = None
    config_files: list[config_mod.FileReport] = field(default_factory=list)
    config: Config | None = None
    config_error: str | None = None
    foundation_hash: str | None = None  # what the foundation's label should say
    foundation_hash_error: str | None = None
    base_dockerfile: str | None = None  # ~/.aishell/Dockerfile when it exists
    base_hash: str | None = None
    extension_dockerfile: str | None = None  # <project>/.aishell/Dockerfile when it exists
    extension_hash: str | None = None
    engine: Engine | None = None
    engine_error: str | None = None  # engine CLI missing or not answering
    engine_reason: str | None = None  # why this engine (AISHELL_ENGINE, engine:, detected)
    engine_note: str | None = None  # e.g. the engine: key could not be read
    server_version: str | None = None
    images: dict[str, dict[str, Any]] | None = None  # by hold tag; None: not inspected
    # The foundation the next launch holds when this home holds none yet (older setup)
    adoptable_foundation: dict[str, Any] | None = None
    volume_name: str | None = None
    volume_item: dict[str, Any] | None = None
    volume_known: bool = False  # False: the engine was not asked
    trust: trust.Status | None = None  # the project config's approval (None: unknown)
    trust_error: str | None = None  # why it could not be read
    egress_proxy: str | None = None  # allowlist: this home's proxy container and its state

    @property
    def engine_answers(self) -> bool:
        return self.engine is not None and self.engine_error is None


def _load_config(g: Gathered) -> None:
    home = paths.aishell_home()
    report = config_mod.inspect_config(
        aishell_home=home,
        project_root=Path(g.project.root),
        expansion=config_mod.Expansion.from_host(),
    )
    g.config_files = list(report.files)
    g.config = report.config
    g.config_error = report.error
    try:
        g.trust = trust.status(g.project, report.project_config_dir)
    except AishellError as exc:
        g.trust_error = _error_text(exc)
    if report.project_config_dir is not None:
        dockerfile = report.project_config_dir / DOCKERFILE
        if dockerfile.is_file():
            g.extension_dockerfile = str(dockerfile)


def _tier_hashes(g: Gathered) -> None:
    dockerfile = paths.global_dockerfile()
    if dockerfile.is_file():
        g.base_dockerfile = str(dockerfile)
        g.base_hash = images.base_tier(dockerfile).context().hash
    if g.extension_dockerfile:
        ext = Path(g.extension_dockerfile)
        g.extension_hash = (
            images.extension_tier(g.project.extension_role, g.project.canonical, ext).context().hash
        )
    if g.config is not None and g.state is not None:
        try:
            g.foundation_hash = images.foundation_context(
                base_image=g.config.base_image,
                with_gitleaks=g.state.gitleaks,
                ca_certificates=g.config.ca_certificates,
            ).hash
        except AishellError as exc:
            g.foundation_hash_error = _error_text(exc)


def _ask_engine(g: Gathered) -> None:
    try:
        engine = choice.get_engine()
    except EngineError as exc:
        if not isinstance(exc.__cause__, ConfigError):
            g.engine_error = _error_text(exc)
            return
        # The global config is invalid (Configuration says how): its engine: key cannot
        # be read, but the engine can still be found and asked.
        try:
            engine = choice.get_engine(None)
        except EngineError as inner:
            g.engine_error = _error_text(inner)
            return
        g.engine_note = "the global config is invalid, so its 'engine:' key was not read"
    g.engine = engine
    g.engine_reason = choice.reason()
    wanted = [g.holds.foundation, g.holds.base, g.holds.tag(g.project.extension_role)]
    commands: list[list[str]] = [
        ["version", "--format", "{{json .}}"],
        ["image", "inspect", *wanted],
    ]
    if g.volume_name:
        commands.append(["volume", "inspect", g.volume_name])
    proxy_name = None
    if g.config is not None and g.config.network.mode == "allowlist":
        from aishell.engine.proxy import container_name

        proxy_name = container_name(g.holds.home_id)
        commands.append(["container", "inspect", "--format", "{{.State.Status}}", proxy_name])
    try:
        results = engine.capture_many(*commands)
    except EngineError as exc:
        g.engine_error = _error_text(exc)
        return
    version = results[0]
    if not version.ok:
        g.engine_error = (
            f"the {engine.kind} engine did not answer: "
            f"{first_line(version.stderr) or f'exit {version.returncode}'}"
        )
        return
    g.server_version = server_version(version.stdout)
    g.images = images.parse_image_inspect(results[1].stdout, wanted)
    if g.holds.foundation not in g.images and g.foundation_hash and g.state is not None:
        try:  # read-only: what the next launch would hold (a home set up by older aishell)
            g.adoptable_foundation = images.locate_foundation(
                engine,
                expected_hash=g.foundation_hash,
                saved_hash=g.state.foundation_hash,
                saved_id=g.state.foundation_id,
            )
        except EngineError:
            g.adoptable_foundation = None
    if g.volume_name:
        g.volume_known = True
        g.volume_item = (
            volumes_mod.parse_volume_inspect(results[2].stdout) if results[2].ok else None
        )
    if proxy_name:
        status = results[-1].stdout.strip() if results[-1].ok else "not running"
        g.egress_proxy = f"{proxy_name}: {status or 'unknown'}"


def server_version(stdout: str) -> str | None:
    """The engine's version from `version --format '{{json .}}'` (server, else client:
    podman without a service has no server part)."""
    try:
        data = json.loads(stdout)
    except json.JSONDecodeError:
        return stdout.strip() or None
    if not isinstance(data, dict):
        return None
    for part in ("Server", "Client"):
        section = data.get(part)
        if isinstance(section, dict) and section.get("Version"):
            return str(section["Version"])
    return None


def gather(*, ask_engine: bool = True) -> Gathered:
    project = report_json.current_project()
    g = Gathered(
        project=project,
        home=str(paths.user_home()),
        aishell_home=str(paths.aishell_home()),
        state_file=str(paths.state_file()),
        holds=images.Holds(paths.home_id()),
    )
    try:
        g.state = state_mod.load()
    except AishellError as exc:
        g.state_error = _error_text(exc)
    if g.state is not None and g.state.tools:
        g.volume_name = g.state.harness_volume or volumes_mod.volume_name(g.state.tools)
    _load_config(g)
    _tier_hashes(g)
    if ask_engine:
        _ask_engine(g)
    return g


# --------------------------------------------------------------------------- pure


def image_stack(
    items: Mapping[str, Mapping[str, Any]] | None,
    *,
    holds: images.Holds,
    extension_role: str,
    foundation_hash: str | None,
    base_hash: str | None,
    extension_hash: str | None,
    extension_configured: bool,
    adoptable_foundation: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """This home's image tiers: held / exists / current (None = unknown) per tier, and
    what a launch runs.

    `items`: the engine's inspection by hold tag (None when the engine could not be asked).
    `base_hash`: the content hash of ~/.aishell (None: no global Dockerfile, so the
    base is the foundation itself). `adoptable_foundation`: when this home holds no
    foundation, the image with its inputs that the next launch will hold.
    """
    known = items is not None
    found = items or {}
    ext_tag = holds.tag(extension_role)
    held_foundation = found.get(holds.foundation)
    foundation = held_foundation or (adoptable_foundation if known else None)
    base = found.get(holds.base)
    ext = found.get(ext_tag)
    foundation_id = image_id(foundation)
    base_id = image_id(base)

    def exists(item: Mapping[str, Any] | None) -> bool | None:
        return bool(item) if known else None

    f_current: bool | None = None
    if known:
        if not foundation:
            f_current = False
        elif foundation_hash is not None:
            f_current = labels_of(foundation).get(LABEL_FOUNDATION_HASH) == foundation_hash

    b_current: bool | None = None
    if known:
        if not base or not foundation:
            b_current = False
        elif base_hash is not None:
            labels = labels_of(base)
            b_current = (
                labels.get(LABEL_TIER_HASH) == base_hash
                and labels.get(LABEL_TIER_PARENT) == foundation_id
            )
        else:
            b_current = base_id == foundation_id and labels_of(base).get(LABEL_KIND) != "base"

    e_current: bool | None = None
    if known and extension_configured:
        if not ext:
            e_current = False
        else:
            labels = labels_of(ext)
            e_current = bool(
                b_current
                and labels.get(LABEL_TIER_HASH) == extension_hash
                and labels.get(LABEL_TIER_PARENT) == base_id
            )

    return {
        "known": known,
        "home_id": holds.home_id,
        "foundation": {
            "tag": holds.foundation,
            "held": exists(held_foundation),
            "exists": exists(foundation),
            "id": foundation_id or None,
            "current": f_current,
        },
        "base": {
            "tag": holds.base,
            "held": exists(base),
            "custom": base_hash is not None,
            "exists": exists(base),
            "id": base_id or None,
            "current": b_current,
        },
        "extension": {
            "tag": ext_tag,
            "held": exists(ext) if extension_configured else None,
            "configured": extension_configured,
            "exists": exists(ext) if extension_configured else None,
            "id": (image_id(ext) or None) if extension_configured else None,
            "current": e_current,
        },
        "run_image": ext_tag if extension_configured else holds.base,
    }


def stack_of(g: Gathered) -> dict[str, Any]:
    stack = image_stack(
        g.images,
        holds=g.holds,
        extension_role=g.project.extension_role,
        foundation_hash=g.foundation_hash,
        base_hash=g.base_hash,
        extension_hash=g.extension_hash,
        extension_configured=g.extension_dockerfile is not None,
        adoptable_foundation=g.adoptable_foundation,
    )
    stack["base"]["dockerfile"] = g.base_dockerfile
    stack["extension"]["dockerfile"] = g.extension_dockerfile
    note = None
    if g.images is None:
        note = f"image state unknown: {g.engine_error or 'the engine was not asked'}"
    elif g.foundation_hash is None and stack["foundation"]["exists"]:
        note = "whether the foundation image is current is unknown: " + (
            g.foundation_hash_error or g.config_error or "no setup found"
        )
    elif stack["foundation"]["held"] is False and stack["foundation"]["exists"]:
        note = (
            f"this home does not hold its foundation image yet; the next launch holds "
            f"{images.short_id(stack['foundation']['id'])} as {g.holds.foundation}"
        )
    stack["note"] = note
    return stack


def config_paths(
    tool_name: str,
    home: str,
    *,
    project_key: str = "",
    aishell_home: str = "",
    share: Mapping[str, bool] | None = None,
) -> list[dict[str, Any]]:
    """Where the tool's config lives for this project: each path inside the sandbox
    (`path`, the usual one under the home), what it comes from on the host (`source`:
    the project's copy, or the shared login store) and whether that exists yet."""
    from aishell import agenthome

    plan = agenthome.plan(
        [tool_name],
        project_key=project_key,
        home=home,
        aishell_home=aishell_home or str(paths.aishell_home()),
        share=share,
    )
    agents = str(paths.agents_dir()) if not aishell_home else os.path.join(aishell_home, "agents")
    found = []
    for item in plan.config:
        source = plan.source(item.rel)
        found.append(
            {
                "path": plan.target(item.rel),
                "kind": item.kind,
                "exists": os.path.lexists(source),
                "source": source,
                "shared": False,
            }
        )
    for login in plan.logins:
        source = (
            os.path.join(agenthome.store_dir(agents, tool_name), login.rel)
            if login.shared
            else plan.source(login.rel)
        )
        found.append(
            {
                "path": plan.target(login.rel),
                "kind": "file",
                "exists": os.path.lexists(source),
                "source": source,
                "shared": login.shared,
            }
        )
    return found


def volume_ready(st: State | None, name: str | None, item: Mapping[str, Any] | None) -> bool:
    """The volume was filled and recorded, and is still the same volume (exactly: its
    instance id, `engine.volumes.is_recorded_ready`)."""
    if st is None or not name or item is None:
        return False
    return volumes_mod.is_recorded_ready(st.volumes.get(name), item)
