"""Step 4 of a launch: run. Hand the assembled spec over to the engine.

Under an allowlist policy the session is registered with this home's egress proxy
around the run (`proxy.egress`); the session ends with its sandbox (the sandbox holds a
keep-alive connection to the proxy), so a foreground run still replaces this process
with the engine CLI, and a detached one needs nothing more from aishell.
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
        project=r.project.root,
        container=r.container or "exec",
    ) as egress:
        outcome = hand_over(r, m, spec, args, child=False)
        if egress is not None and outcome.detached:
            egress.keep = True  # the agent still runs; its end closes the session
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
        output.info(f"  Stop:   {engine.name} stop {r.container}")
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
        engine_says = result.stderr.strip()
        raise AishellError(
            f"starting {container} failed: "
            f"{engine_says.splitlines()[-1] if engine_says else result.returncode}",
            hint="see the engine's message above",
            details=result.stderr.strip() or None,
        )
