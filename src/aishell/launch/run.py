"""Step 4 of a launch: run. Hand the assembled spec over to the engine.

Under an allowlist policy the session's egress proxy exists around the run
(`proxy.egress`); the agent then runs as a child so the proxy can be removed when it
ends (a detached agent keeps its proxy until `collect_orphans` finds it ended).
Otherwise a foreground run replaces this process with the engine CLI.
"""

from __future__ import annotations

import os
import shlex
from typing import TYPE_CHECKING

from aishell import output, session
from aishell.engine.run_args import build_run_args
from aishell.errors import AishellError
from aishell.launch.resolve import host_facts

if TYPE_CHECKING:
    from aishell.engine.run_args import RunArgs, RunSpec
    from aishell.launch.materialise import Materials
    from aishell.launch.resolve import Resolved


def run(r: Resolved, m: Materials, spec: RunSpec) -> int:
    args = build_run_args(spec, host_facts(r))
    if r.egress is None or not r.egress.session:
        return hand_over(r, m, spec, args, child=False).status
    from aishell.engine import proxy  # the proxy code loads only for allowlist sessions

    with proxy.egress(
        m.engine,
        r.egress,
        base_image=r.config.base_image,
        uid=r.host.uid,
        gid=r.host.gid,
        verbose=r.req.verbose,
    ) as egress:
        outcome = hand_over(r, m, spec, args, child=True)
        if egress is not None and outcome.detached:
            egress.keep = True  # the agent still runs and needs its proxy
        return outcome.status


def hand_over(
    r: Resolved, m: Materials, spec: RunSpec, args: RunArgs, *, child: bool
) -> session.Outcome:
    """Start the container the way the request wants; what happened."""
    engine, req = m.engine, r.req
    env = {**os.environ, **args.env}
    if spec.tmux and not req.detach:
        start_detached(m, r.container, args, env)
        container = r.container or ""
        item = session.just_started(engine, container)
        return session.attach(engine, container, r.short, r.host, item)
    if req.detach:
        start_detached(m, r.container, args, env)
        output.info(f"Started {r.container} in the background.")
        where = f"cd {shlex.quote(req.cwd)} && " if req.cwd else ""  # --worktree
        output.info(f"  Attach: {where}aishell attach {r.short}")
        output.info(f"  List:   {where}aishell ps")
        output.info(f"  Stop:   {where}aishell stop {r.short}")
        return session.Outcome(0, detached=True)
    if req.kind == "gitleaks":
        status = engine.call(args.argv, env=env)
        from aishell.security import freshness  # (datetime: only gitleaks pays for it)

        freshness.record_scan(r.project.canonical, req.args, status)
        return session.Outcome(status, detached=False)
    if child:
        return session.Outcome(engine.call(args.argv, env=env), detached=False)
    engine.exec_(args.argv, env=env)


def start_detached(m: Materials, container: str | None, args: RunArgs, env: dict[str, str]) -> None:
    result = m.engine.capture(*args.argv, env=env)
    if not result.ok:
        raise start_failure(container, result.stderr, result.returncode)


def start_failure(container: str | None, stderr: str, returncode: int) -> AishellError:
    """The engine refused to start the container: its real cause, not its usage tip."""
    from aishell.engine.client import engine_cause

    cause = engine_cause(stderr) or f"exit {returncode}"
    hint = "see the engine's message above"
    if "port is already allocated" in cause or "address already in use" in cause:
        hint = "free that port, or change 'ports:' in your aishell config"
    return AishellError(
        f"starting {container} failed: {cause}", hint=hint, details=stderr.strip() or None
    )
