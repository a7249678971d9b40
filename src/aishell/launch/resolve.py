"""Step 1 of a launch: resolve. Everything a launch needs to know, without the engine.

Host facts, the project, its configuration and the saved setup are read; what the
request needs installed is checked; the security checks run and the user decides
(the sensitive-file prompt) before anything is built, filled or started.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from aishell import config as config_mod
from aishell import hostfacts, hostgit, netpolicy, output, paths, state
from aishell import project as project_mod
from aishell.constants import DOCKERFILE, RESERVED_ENV
from aishell.engine import volumes
from aishell.engine.run_args import Bind
from aishell.errors import AishellError, ConfigError
from aishell.harnesses import BY_NAME
from aishell.launch.request import default_name, setup_hint, validate_name
from aishell.security import validate
from aishell.worktrees import git_dir_binds

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from aishell.config import Config
    from aishell.engine.run_args import HostFacts
    from aishell.launch.request import LaunchRequest
    from aishell.project import Project


class Resolved(NamedTuple):
    """What a launch knows before the engine is asked anything."""

    req: LaunchRequest
    host: HostFacts  # without the git identity, which `identity` delivers
    identity: hostgit.PendingIdentity  # (user.name, user.email), asked in the background
    project: Project
    config: Config
    state: state.State
    short: str  # aishell's name for the container ("exec" for exec runs)
    container: str | None  # the engine's name; None for exec runs (unnamed)
    volume: str | None  # the harness volume the setup selects; None without tools
    env: tuple[tuple[str, str | None], ...]  # configured env (None: the host's value)
    config_binds: tuple[Bind, ...]  # configured mounts whose source exists
    git_binds: tuple[Bind, ...]  # a linked worktree's git directories
    project_dockerfile: Path | None  # <project>/.aishell/Dockerfile when it exists
    egress: netpolicy.Plan | None  # None: open network
    terminal: tuple[int, int] | None  # (columns, lines) for a tmux session
    home_id: str = ""  # this aishell home (label aishell.home: `ps --all`, `stop --all`)


def resolve(req: LaunchRequest) -> Resolved:
    if req.name is not None:
        validate_name(req.name)
    host = hostfacts.gather(cwd=req.cwd, want_git=False)
    identity = hostgit.PendingIdentity(host.cwd)
    home = paths.aishell_home()
    project = project_mod.resolve(host.cwd, aishell_home=str(home))
    config = config_mod.load_config(
        aishell_home=home,
        project_root=Path(project.root),
        expansion=config_mod.Expansion(home=host.home, uid=host.uid, gid=host.gid, user=host.user),
    )
    st = require_setup(req, state.load())
    env = config_env(config, host.env)

    # Cheap checks (and the user's decision) before any engine work.
    security_checks(req, project, config, host, st)

    short = req.name or default_name(req)
    container = project.container_name(short) if req.kind != "exec" else None
    config_binds = existing_mounts(config)
    taken = [b.target for b in (*agent_binds(sorted(st.tools), host.home), *config_binds)]
    git_binds: list[Bind] = []
    if os.path.isfile(os.path.join(project.root, ".git")):  # maybe a linked worktree:
        git_binds = git_dir_binds(project.root, taken=taken)
    config_dir = config_mod.find_project_config_dir(Path(project.root), aishell_home=home)
    dockerfile = config_dir / DOCKERFILE if config_dir is not None else None
    egress = None
    if config.network.mode != "open":
        egress = netpolicy.plan(config.network, st.tools, config.docker_args)
    return Resolved(
        req=req,
        host=host,
        identity=identity,
        project=project,
        config=config,
        state=st,
        short=short,
        container=container,
        volume=(st.harness_volume or volumes.volume_name(st.tools)) if st.tools else None,
        env=tuple(env),
        config_binds=tuple(config_binds),
        git_binds=tuple(git_binds),
        project_dockerfile=dockerfile if dockerfile is not None and dockerfile.is_file() else None,
        egress=egress,
        terminal=terminal_size() if req.interactive else None,
        home_id=paths.home_id(),
    )


def host_facts(r: Resolved) -> HostFacts:
    """The host facts with the git identity (waits for git if it is still answering)."""
    name, email = r.identity.result()
    return r.host._replace(git_name=name, git_email=email)


class NotInstalled(AishellError):
    """What the request runs is not installed. `selection`/`gitleaks`: the setup that
    would provide it and keep everything installed now; `what`: for the message."""

    def __init__(
        self, message: str, *, hint: str, selection: dict[str, str], gitleaks: bool, what: str
    ) -> None:
        super().__init__(message, hint=hint)
        self.selection = selection
        self.gitleaks = gitleaks
        self.what = what


def require_setup(req: LaunchRequest, st: state.State | None) -> state.State:
    """The saved setup, checked to hold what `req` runs (NotInstalled when it does not)."""
    tools = dict(st.tools) if st is not None else {}
    gitleaks = st.gitleaks if st is not None else False
    if req.kind == "harness" and req.harness not in tools:
        label = BY_NAME[req.harness or ""].label
        wanted = {**tools, req.harness or "": "latest"}
        raise NotInstalled(
            f"{label} is not installed" if st is not None else "no setup found",
            hint=setup_hint(tools, req.harness, gitleaks=gitleaks)
            + f", or 'aishell --install {req.harness}' to install it and start",
            selection=wanted,
            gitleaks=gitleaks,
            what=label,
        )
    if req.kind == "gitleaks" and not gitleaks:
        raise NotInstalled(
            "gitleaks is not installed",
            hint=setup_hint(tools, gitleaks=True) + ", or 'aishell --install gitleaks'",
            selection=tools,
            gitleaks=True,
            what="gitleaks",
        )
    if st is None:
        raise NotInstalled(
            "no setup found",
            hint="run 'aishell setup --with-claude' (or another agent) first, or "
            f"'aishell --install {'shell' if req.kind == 'shell' else req.kind}' to build "
            "the sandbox image and start",
            selection={},
            gitleaks=False,
            what="the sandbox image",
        )
    return st


def agent_binds(tools: Sequence[str], home: str) -> list[Bind]:
    """The enabled agents' config paths, mounted at the same path (not created here)."""
    binds: list[Bind] = []
    for name in tools:
        tool = BY_NAME[name]
        for rel in (*tool.config_dirs, *tool.config_files):
            path = os.path.join(home, rel)
            binds.append(Bind(path, path))
    return binds


def existing_mounts(config: Config) -> list[Bind]:
    """The configured mounts whose source exists (the others are skipped, with a word)."""
    binds = []
    for mount in config.mounts:
        if not os.path.exists(mount.source):
            output.warn(
                f"mount source {mount.source} does not exist (from {mount.origin}); skipped"
            )
            continue
        binds.append(Bind(mount.source, mount.target, mount.readonly))
    return binds


def config_env(config: Config, host_env: Mapping[str, str]) -> list[tuple[str, str | None]]:
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


def security_checks(
    req: LaunchRequest, project: Project, config: Config, host: HostFacts, st: state.State
) -> None:
    dangers = validate.check_docker_args(
        config.docker_args, home=host.home
    ) + validate.check_mounts([(m.source, m.target) for m in config.mounts], home=host.home)
    if dangers:
        for line in validate.render(dangers):
            output.info(line)
    if req.interactive and config.detection.enabled:
        # The scan and its rules are loaded only for agent and shell runs.
        from aishell.security import report, scan

        result = scan.scan_project(
            Path(project.root),
            custom_patterns=config.detection.custom_patterns,
            allowlist=config.detection.allowlist,
        )
        report.gate(result, interactive=host.tty, unsafe=req.unsafe)
        if host.tty and not req.detach and not req.unsafe:  # the agent's UI would cover them
            report.hold_for_reading(result, seen=paths.findings_seen_file(project.hash))
    if req.interactive and st.gitleaks and config.gitleaks_freshness_check:
        from aishell.security import freshness

        message = freshness.staleness_message(
            st.gitleaks_scans.get(project.canonical), config.gitleaks_freshness_threshold
        )
        if message:
            output.warn(message)


def terminal_size() -> tuple[int, int] | None:
    try:
        size = os.get_terminal_size(1)
    except OSError:
        return None
    return size.columns, size.lines
