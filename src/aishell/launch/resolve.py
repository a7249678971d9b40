"""Step 1 of a launch: resolve. Everything a launch needs to know, without the engine.

Host facts, the project, its configuration and the saved setup are read; what the
request needs installed is checked; the security checks run and the user decides
(the sensitive-file prompt) before anything is built, filled or started.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from aishell import agenthome, hostfacts, hostgit, netpolicy, output, paths, state, trust
from aishell import config as config_mod
from aishell import project as project_mod
from aishell.constants import DOCKERFILE, RESERVED_ENV
from aishell.engine import volumes
from aishell.engine.run_args import Bind
from aishell.errors import AishellError, ConfigError
from aishell.harnesses import BY_NAME
from aishell.launch.request import default_name, setup_hint, validate_name
from aishell.security import gitwall, guard, hostpaths, redirects, validate
from aishell.tuples import NamedTuple
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
    project_dockerfile: Path | None  # the approved copy of .aishell/Dockerfile (see trust)
    egress: netpolicy.Plan | None  # None: open network
    terminal: tuple[int, int] | None  # (columns, lines) for a tmux session
    config_dir: Path | None = None  # the project's .aishell/ (or .sandbox/) when it exists
    agents: agenthome.Plan | None = None  # the agents' config mounts (made by materialise)
    guard_binds: tuple[Bind, ...] = ()  # read-only binds that keep aishell's inputs safe
    home_id: str = ""  # this aishell home (label aishell.home: `ps --all`, `stop --all`)


def resolve(req: LaunchRequest) -> Resolved:
    if req.name is not None:
        validate_name(req.name)
    host = hostfacts.gather(cwd=req.cwd, want_git=False)
    if req.kind == "run":  # headless: no question on a terminal, no terminal for the agent
        host = host._replace(stdin_tty=False, stdout_tty=False)
    identity = hostgit.PendingIdentity(host.cwd)
    home = paths.aishell_home()
    project = project_mod.resolve(host.cwd, aishell_home=str(home))
    expansion = config_mod.Expansion(home=host.home, uid=host.uid, gid=host.gid, user=host.user)
    # The project's .aishell/ is read once; the launch uses what it read, and only
    # once the user approved exactly that (trust on change).
    config_dir = config_mod.find_project_config_dir(Path(project.root), aishell_home=home)
    approval = trust.status(project, config_dir)
    config = config_mod.load_config(
        aishell_home=home,
        project_root=Path(project.root),
        expansion=expansion,
        read_project=approval.snapshot.reader(config_dir)
        if approval.snapshot is not None and config_dir is not None
        else None,
    )
    st = require_setup(req, state.load())
    env = config_env(config, host.env)

    # Cheap checks (and the user's decisions) before any engine work.
    approval = trust.gate(
        project, approval, interactive=host.tty, expansion=expansion, aishell_home=home
    )
    facts = security_checks(req, project, config, host, st)

    short = req.name or default_name(req)
    container = project.container_name(short) if req.kind != "exec" else None
    config_binds = existing_mounts(config, facts.real)
    agents = agenthome.plan(
        st.tools,
        project_key=project.store_key,
        home=host.home,
        aishell_home=str(home),
        share=dict(config.share_logins),
        from_host=agenthome.existing_from_host(config.share_from_host),
    )
    guards = guard_binds(project, config_dir, home)
    taken = [*agents.targets, *(b.target for b in (*config_binds, *guards))]
    git_binds = git_internal_binds(project, config, taken, config_binds)
    dockerfile = approved_dockerfile(project, approval)
    egress = None
    if config.network.mode != "open":
        egress = netpolicy.plan(
            config.network,
            st.tools,
            config.docker_args,
            sockets_root=str(paths.egress_dir() / "sockets"),
        )
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
        project_dockerfile=dockerfile,
        egress=egress,
        terminal=terminal_size() if req.interactive else None,
        config_dir=config_dir,
        agents=agents,
        guard_binds=tuple(guards),
        home_id=paths.home_id(),
    )


def host_facts(r: Resolved) -> HostFacts:
    """The host facts with the git identity (waits for git if it is still answering)."""
    name, email = r.identity.result()
    return r.host._replace(git_name=name, git_email=email)


def git_internal_binds(
    project: Project, config: Config, taken: Sequence[str], other_mounts: Sequence[Bind] = ()
) -> list[Bind]:
    """A linked worktree's git directories (read-write), then the binds that keep the
    repository's config, hooks and info read-only inside (unless `git_internals:
    writable`); missing `hooks/` and `info/` are created on the host first."""
    linked: list[Bind] = []
    if os.path.isfile(os.path.join(project.root, ".git")):  # maybe a linked worktree:
        linked = git_dir_binds(project.root, taken=taken)
    if config.git_internals == "writable":
        output.warn(
            "git_internals: writable: the agent can change this repository's .git/config "
            "and hooks, which git on this machine runs; 'aishell guard' shows what changed"
        )
        return linked
    try:
        wall = gitwall.plan(project.root, linked=linked, taken=taken, other_mounts=other_mounts)
    except AishellError:
        if not redirects.present(redirects.watched(project.root)):
            raise
        # A `commondir` redirect: a detached session that ended may have left it, and
        # concluding that session moves it aside. (Else: refused, as it was.)
        guard.settle_with_any_engine(project)
        wall = gitwall.plan(project.root, linked=linked, taken=taken, other_mounts=other_mounts)
    gitwall.prepare(wall)
    return [*linked, *wall.binds]


def approved_dockerfile(project: Project, approval: trust.Status) -> Path | None:
    """The project Dockerfile to build: the one in the copy of the approved content,
    which is what the user saw (never the project's file, which the agent can write)."""
    snap = approval.snapshot
    entry = snap.get(DOCKERFILE) if snap is not None else None
    if snap is None or approval.state != "approved" or entry is None or entry.kind != "file":
        return None
    directory = trust.approved_dir(project)
    if not (directory / DOCKERFILE).is_file():  # the copy was removed by hand: make it again
        trust.approve(project, snap)
    return directory / DOCKERFILE


def guard_binds(project: Project, config_dir: Path | None, aishell_home: Path) -> list[Bind]:
    """Read-only binds over what aishell reads later: the project's config directory
    (bound onto itself, where it is a real directory), and the aishell home when it is
    inside the project (hidden behind an empty directory)."""
    binds = []
    if config_dir is not None and not config_dir.is_symlink():
        binds.append(Bind(str(config_dir), str(config_dir), readonly=True))
    home = os.path.realpath(aishell_home)
    root = project.canonical
    if home == root or home.startswith(root.rstrip("/") + "/"):
        inside = os.path.join(project.root, os.path.relpath(home, root))
        binds.append(Bind(str(hostpaths.empty_dir(aishell_home)), inside, readonly=True))
    return binds


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
    if req.kind in ("harness", "run") and req.harness not in tools:
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


def existing_mounts(config: Config, real: Mapping[str, str] | None = None) -> list[Bind]:
    """The configured mounts whose source exists (the others are skipped, with a word).
    A source is mounted by the real path the security checks judged (`real`), so a
    symlink swapped in afterwards does not change what is mounted."""
    binds = []
    for mount in config.mounts:
        if not os.path.exists(mount.source):
            output.warn(
                f"mount source {mount.source} does not exist (from {mount.origin}); skipped"
            )
            continue
        source = (real or {}).get(mount.source, mount.source)
        binds.append(Bind(source, mount.target, mount.readonly))
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
) -> hostpaths.Facts:
    # Paths are judged by what they really are (symlinks followed), see hostpaths.
    facts = hostpaths.gather(
        config, home=host.home, aishell_home=paths.aishell_home(), project=project
    )
    dangers = hostpaths.dangers(config, facts)
    if dangers:
        for line in validate.render(dangers):
            output.info(line)
    hostpaths.gate(
        hostpaths.decisions(config, facts, dangers), interactive=host.tty, unsafe=req.unsafe
    )
    if (req.interactive or req.kind == "run") and config.detection.enabled:
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
    if (req.interactive or req.kind == "run") and st.gitleaks and config.gitleaks_freshness_check:
        from aishell.security import freshness

        message = freshness.staleness_message(
            st.gitleaks_scans.get(project.canonical), config.gitleaks_freshness_threshold
        )
        if message:
            output.warn(message)
    return facts


def terminal_size() -> tuple[int, int] | None:
    try:
        size = os.get_terminal_size(1)
    except OSError:
        return None
    return size.columns, size.lines
