"""One launch pipeline for every way of starting a sandbox.

host facts -> config -> state -> image tier and harness volume -> security
checks -> `build_run_args` (pure) -> hand over to the engine.
"""

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, NamedTuple

from aishell import output, paths, state
from aishell.config import Config
from aishell.constants import (
    BASE_IMAGE,
    DOCKERFILE,
    FOUNDATION_IMAGE,
    LABEL_HARNESS,
    LABEL_KIND,
    LABEL_NAME,
    LABEL_PROJECT,
    LABEL_PROJECT_HASH,
    LABEL_TMUX,
)
from aishell.engine import images, volumes
from aishell.engine import choice
from aishell.engine.client import Engine
from aishell.engine.run_args import Bind, HostFacts, RunArgs, RunSpec, build_run_args
from aishell.errors import AishellError, ConfigError, UsageError
from aishell.harnesses import BY_NAME
from aishell.project import Project

Kind = Literal["harness", "shell", "exec", "gitleaks"]

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
MAX_NAME = 46
RESERVED_ENV = ("LOCAL_UID", "LOCAL_GID", "LOCAL_HOME", "LOCAL_USER")


class LaunchRequest(NamedTuple):
    kind: Kind
    harness: str | None = None
    args: tuple[str, ...] = ()
    name: str | None = None
    detach: bool = False
    unsafe: bool = False
    verbose: bool = False
    cwd: str | None = None  # where to run (a --worktree checkout); None: the current dir


class Prepared(NamedTuple):
    engine: Engine
    project: Project
    config: Config
    host: HostFacts
    spec: RunSpec
    run_args: RunArgs
    container: str | None
    egress: object = None  # network.Plan when the policy is not `open`


def validate_name(name: str) -> None:
    if not name:
        raise UsageError("the container name is empty", hint="give --name a value")
    if len(name) > MAX_NAME:
        raise UsageError(
            f"the container name {name!r} is {len(name)} characters long",
            hint=f"use at most {MAX_NAME} characters",
        )
    if not NAME_RE.fullmatch(name):
        raise UsageError(
            f"invalid container name {name!r}",
            hint="use letters, digits, '_', '.' and '-', starting with a letter or digit",
        )


def default_name(req: LaunchRequest) -> str:
    if req.kind == "harness" and req.harness:
        return req.harness
    return "shell" if req.kind == "shell" else req.kind


def setup_hint(tools: dict[str, str], add: str | None = None, *, gitleaks: bool = False) -> str:
    """The setup command that keeps the current selection and adds `add` (setup is
    declarative: whatever it does not name is disabled)."""
    wanted = dict(tools)
    if add:
        wanted.setdefault(add, "latest")
    flags = [
        f"--with-{t}" if pin == "latest" else f"--with-{t}={pin}"
        for t, pin in sorted(wanted.items())
    ]
    if gitleaks:
        flags.append("--with-gitleaks")
    return "run 'aishell setup " + " ".join(flags) + "'"


def command_for(req: LaunchRequest, config: Config, environ: dict[str, str]) -> tuple[str, ...]:
    if req.kind == "exec":
        return req.args
    if req.kind == "shell":
        return ("bash",)
    if req.kind == "gitleaks":
        from aishell.security.freshness import DEFAULT_ARGS

        return ("gitleaks", *(req.args or DEFAULT_ARGS))
    assert req.harness is not None
    tool = BY_NAME[req.harness]
    extra: tuple[str, ...] = ()
    if tool.name == "claude" and environ.get("AISHELL_SKIP_PERMISSIONS", "").lower() != "false":
        extra = ("--dangerously-skip-permissions",)
    defaults = tuple(config.harness_args.get(tool.name, ()))
    return (tool.command, *tool.fixed_args, *extra, *defaults, *req.args)


def ensure_host_config_paths(tools: list[str], home: str) -> list[Bind]:
    """Create the agents' config paths on the host (right kind) and bind them."""
    binds: list[Bind] = []
    for name in tools:
        tool = BY_NAME[name]
        for rel in tool.config_dirs:
            path = os.path.join(home, rel)
            try:
                os.makedirs(path, exist_ok=True)
            except OSError as exc:
                raise AishellError(
                    f"cannot create {path}: {exc.strerror}",
                    hint="fix the permissions of your home directory",
                ) from exc
            binds.append(Bind(path, path))
        for rel in tool.config_files:
            path = os.path.join(home, rel)
            if not os.path.lexists(path):
                try:
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                    with os.fdopen(fd, "w") as fh:
                        fh.write("{}\n")
                except FileExistsError:
                    pass
                except OSError as exc:
                    raise AishellError(f"cannot create {path}: {exc.strerror}") from exc
            binds.append(Bind(path, path))
    return binds


def config_binds(config: Config) -> list[Bind]:
    binds = []
    for mount in config.mounts:
        if not os.path.exists(mount.source):
            output.warn(
                f"mount source {mount.source} does not exist (from {mount.origin}); skipped"
            )
            continue
        binds.append(Bind(mount.source, mount.target, mount.readonly))
    return binds


def config_env(config: Config, host_env: dict[str, str]) -> list[tuple[str, str | None]]:
    entries: list[tuple[str, str | None]] = []
    for entry in config.env:
        if entry.name in RESERVED_ENV or entry.name.startswith("AISHELL_"):
            raise ConfigError(
                f"env: {entry.name} is set by aishell itself",
                hint=f"remove {entry.name} from env in {', '.join(config.sources)}",
            )
        if entry.value is None and entry.name not in host_env:
            output.warn(f"env: {entry.name} is not set on the host; not passed")
            continue
        entries.append((entry.name, entry.value))
    return entries


def _load_config(project: Project, host: HostFacts) -> Config:
    from aishell import config as config_mod

    return config_mod.load_config(
        aishell_home=paths.aishell_home(),
        project_root=Path(project.root),
        expansion=config_mod.Expansion(home=host.home, uid=host.uid, gid=host.gid, user=host.user),
    )


def resolve_image(
    engine: Engine,
    *,
    project: Project,
    config: Config,
    st: state.State,
    image_items: dict[str, dict],  # type: ignore[type-arg]
    verbose: bool,
) -> str:
    """The image to run, building the base/extension tiers when their inputs changed."""
    from aishell.config import find_project_config_dir

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
    base_id = images.image_id(base_item)

    config_dir = find_project_config_dir(Path(project.root), aishell_home=paths.aishell_home())
    if config_dir is not None and (config_dir / DOCKERFILE).is_file():
        tier = images.extension_tier(
            project.extension_tag, project.canonical, config_dir / DOCKERFILE
        )
        tier.ensure(
            engine,
            item=image_items.get(project.extension_tag),
            parent_id=base_id,
            verbose=verbose,
        )
        return project.extension_tag
    return BASE_IMAGE


def ensure_volume(
    engine: Engine,
    *,
    st: state.State,
    volume_item: dict | None,  # type: ignore[type-arg]
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


def prepare(req: LaunchRequest) -> Prepared:
    from aishell import hostfacts
    from aishell import project as project_mod

    if req.name is not None:
        validate_name(req.name)
    host = hostfacts.gather(cwd=req.cwd)
    project = project_mod.resolve(host.cwd, aishell_home=str(paths.aishell_home()))
    config = _load_config(project, host)
    st = state.load()
    if st is None:
        raise AishellError(
            "no setup found", hint="run 'aishell setup --with-claude' (or another agent) first"
        )
    if req.kind == "harness" and req.harness not in st.tools:
        label = BY_NAME[req.harness or ""].label
        raise AishellError(
            f"{label} is not installed",
            hint=setup_hint(st.tools, req.harness, gitleaks=st.gitleaks),
        )
    if req.kind == "gitleaks" and not st.gitleaks:
        raise AishellError(
            "gitleaks is not installed",
            hint=setup_hint(st.tools, gitleaks=True),
        )

    # Cheap checks (and the user's decision) before any engine work.
    _security_checks(req, project, config, host, st)

    named = req.kind != "exec"
    short = req.name or default_name(req)
    full_name = project.container_name(short) if named else None

    engine = choice.get_engine(config.engine)
    wanted_images = [FOUNDATION_IMAGE, BASE_IMAGE, project.extension_tag]
    volume_name = (st.harness_volume or volumes.volume_name(st.tools)) if st.tools else None
    queries: list[tuple[str, list[str]]] = [("image", wanted_images)]
    if volume_name:
        queries.append(("volume", [volume_name]))
    if full_name:
        queries.append(("container", [full_name]))
    results = engine.inspect_many(*queries)
    image_items = images.parse_image_inspect(results[0].stdout, wanted_images)
    volume_item = (
        volumes.parse_volume_inspect(results[1].stdout) if volume_name and results[1].ok else None
    )
    container_item = None
    if full_name and results[-1].ok:
        from aishell.engine.containers import parse_inspect

        container_item = parse_inspect(results[-1].stdout)

    image = resolve_image(
        engine, project=project, config=config, st=st, image_items=image_items, verbose=req.verbose
    )
    volume = ensure_volume(engine, st=st, volume_item=volume_item, verbose=req.verbose)
    if full_name:
        handle_existing_container(engine, full_name, container_item, short)

    tools = sorted(st.tools)
    binds = ensure_host_config_paths(tools, host.home) + config_binds(config)
    if os.path.isfile(os.path.join(project.root, ".git")):  # maybe a linked worktree:
        from aishell.worktrees import git_dir_binds  # its objects and refs are outside it

        binds += git_dir_binds(project.root, taken=[b.target for b in binds])
    env: list[tuple[str, str | None]] = []
    seen: set[str] = set()
    for name in tools:
        for key in BY_NAME[name].api_keys:
            if key not in seen:
                seen.add(key)
                env.append((key, None))
    for key, value in config_env(config, dict(host.env)):
        env = [(k, v) for k, v in env if k != key]
        env.append((key, value))
    fixed_env = [pair for name in tools for pair in BY_NAME[name].env]

    labels = [
        (LABEL_PROJECT, project.canonical),
        (LABEL_PROJECT_HASH, project.hash),
        (LABEL_KIND, req.kind),
    ]
    if named:
        labels.append((LABEL_NAME, short))
    if req.harness:
        labels.append((LABEL_HARNESS, req.harness))

    interactive = req.kind in ("harness", "shell")
    tmux = interactive and config.tmux and (host.tty or req.detach)
    if tmux:
        labels.append((LABEL_TMUX, "1"))
    fixed_env += _terminal_size(tmux)
    egress = None
    if config.network.mode != "open":
        from aishell import netpolicy

        egress = netpolicy.plan(config.network, st.tools, config.docker_args)
        labels += egress.labels
        fixed_env += egress.env
    spec = RunSpec(
        image=image,
        command=command_for(req, config, dict(host.env)),
        project_dir=project.root,
        workdir=host.cwd,
        mode="detach" if (req.detach or tmux) else ("interactive" if interactive else "exec"),
        name=full_name,
        labels=tuple(labels),
        harness_volume=volume,
        binds=tuple(binds),
        fixed_env=tuple(fixed_env),
        env=tuple(env),
        ports=tuple(config.ports),
        docker_args=tuple(config.docker_args),
        pre_start=config.pre_start if interactive or req.detach else None,
        tmux=tmux,
        flavour=engine.flavour,
        network=egress.network if egress else None,
        dns=egress.dns if egress else None,
    )
    return Prepared(
        engine=engine,
        project=project,
        config=config,
        host=host,
        spec=spec,
        run_args=build_run_args(spec, host),
        container=full_name,
        egress=egress,
    )


def _security_checks(
    req: LaunchRequest, project: Project, config: Config, host: HostFacts, st: state.State
) -> None:
    from aishell.security import validate

    dangers = validate.check_docker_args(
        config.docker_args, home=host.home
    ) + validate.check_mounts([(m.source, m.target) for m in config.mounts], home=host.home)
    if dangers:
        for line in validate.render(dangers):
            output.info(line)
    if req.kind in ("harness", "shell") and config.detection.enabled:
        from aishell.security import report, scan

        result = scan.scan_project(
            Path(project.root),
            custom_patterns=config.detection.custom_patterns,
            allowlist=config.detection.allowlist,
        )
        report.gate(result, interactive=host.tty, unsafe=req.unsafe)
    if req.kind in ("harness", "shell") and st.gitleaks and config.gitleaks_freshness_check:
        from aishell.security import freshness

        message = freshness.staleness_message(
            st.gitleaks_scans.get(project.canonical), config.gitleaks_freshness_threshold
        )
        if message:
            output.warn(message)


def _terminal_size(tmux: bool) -> list[tuple[str, str]]:
    if not tmux:
        return []
    try:
        size = os.get_terminal_size(1)
    except OSError:
        return []
    return [("AISHELL_COLUMNS", str(size.columns)), ("AISHELL_LINES", str(size.lines))]


def _start_detached(prepared: Prepared, env: dict[str, str]) -> None:
    result = prepared.engine.capture(*prepared.run_args.argv, env=env)
    if not result.ok:
        engine_says = result.stderr.strip()
        raise AishellError(
            f"starting {prepared.container} failed: "
            f"{engine_says.splitlines()[-1] if engine_says else result.returncode}",
            hint="see the engine's message above",
            details=result.stderr.strip() or None,
        )


def launch(req: LaunchRequest) -> int:
    prepared = prepare(req)
    egress = prepared.egress
    if egress is None or not getattr(egress, "session", None):
        return _launch(req, prepared)
    # Allowlist: the proxy and the internal network first; the agent runs as a child
    # so they can be removed when it ends (a detached agent's are collected later).
    from aishell.engine import proxy as network

    network.start(
        prepared.engine,
        egress,  # type: ignore[arg-type]
        base_image=prepared.config.base_image,
        uid=prepared.host.uid,
        gid=prepared.host.gid,
        verbose=req.verbose,
    )
    keep = False
    try:
        status = _launch(req, prepared, child=True)
        keep = req.detach
        if prepared.spec.tmux and not req.detach and prepared.container:
            # Detached from the session: the agent still runs and needs its proxy.
            from aishell.commands.attach import DETACHED_FROM

            keep = prepared.container in DETACHED_FROM
        return status
    finally:
        if not keep:
            network.stop(prepared.engine, egress)  # type: ignore[arg-type]


def _launch(req: LaunchRequest, prepared: Prepared, *, child: bool = False) -> int:
    engine = prepared.engine
    env = {**os.environ, **prepared.run_args.env}
    short = (
        prepared.container.removeprefix(prepared.project.container_prefix)
        if prepared.container
        else ""
    )
    if prepared.spec.tmux and not req.detach:
        from aishell.commands.attach import attach_session

        _start_detached(prepared, env)
        return attach_session(
            engine, prepared.container or "", short, prepared.host, wait_for_start=True
        )
    if req.detach:
        _start_detached(prepared, env)
        output.info(f"Started {prepared.container} in the background.")
        where = ""
        if req.cwd:  # --worktree: the container belongs to the worktree's directory
            import shlex

            where = f"cd {shlex.quote(req.cwd)} && "
        output.info(f"  Attach: {where}aishell attach {short}")
        output.info(f"  List:   {where}aishell ps")
        output.info(f"  Stop:   {engine.name} stop {prepared.container}")
        return 0
    if req.kind == "gitleaks":
        status = engine.call(prepared.run_args.argv, env=env)
        _record_gitleaks_scan(prepared, req, status)
        return status
    if child:
        return engine.call(prepared.run_args.argv, env=env)
    engine.exec_(prepared.run_args.argv, env=env)


def _record_gitleaks_scan(prepared: Prepared, req: LaunchRequest, status: int) -> None:
    from aishell.security import freshness

    freshness.record_scan(prepared.project.canonical, req.args, status)
