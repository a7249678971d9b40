"""Step 4 of a launch: run. Hand the assembled spec over to the engine.

Under an allowlist policy the session's egress proxy exists around the run
(`proxy.egress`); the agent then runs as a child so the proxy can be removed when it
ends (a detached agent keeps its proxy until `collect_orphans` finds it ended).
Otherwise a foreground run replaces this process with the engine CLI.
"""

from __future__ import annotations

import os
import shlex
from typing import TYPE_CHECKING, Any

from aishell import output, session
from aishell.engine.containers import parse_inspect
from aishell.engine.run_args import build_run_args
from aishell.errors import AishellError

if TYPE_CHECKING:
    from aishell.engine.run_args import RunArgs, RunSpec
    from aishell.launch.materialise import Materials
    from aishell.launch.resolve import Resolved


def run(r: Resolved, m: Materials, spec: RunSpec) -> int:
    args = build_run_args(spec, r.host)
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
        start_detached(m, r.container, r.short, args, env)
        container = r.container or ""
        item = confirm_started(m, container)
        return session.attach(engine, container, r.short, r.host, item)
    if req.detach:
        start_detached(m, r.container, r.short, args, env)
        confirm_started(m, r.container or "")  # never "Started" for what did not start
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


def start_detached(
    m: Materials, container: str | None, short: str, args: RunArgs, env: dict[str, str]
) -> None:
    result = m.engine.capture(*args.argv, env=env)
    if result.ok:
        return
    engine_says = result.stderr.strip()
    if name_taken(engine_says):
        # Another aishell started the same --name a moment ago: that one won.
        raise AishellError(
            f"the container {container} is already running or being started",
            hint=f"attach with 'aishell attach {short}', or pick another --name",
        )
    raise AishellError(
        f"starting {container} failed: {engine_reason(engine_says) or result.returncode}",
        hint="see the engine's message above",
        details=engine_says or None,
    )


def name_taken(stderr: str) -> bool:
    """The engine refused the container name: one of that name exists (Docker:
    'Conflict. The container name "/x" is already in use'; Podman: 'the container
    name "x" is already in use by ...')."""
    low = stderr.lower()
    return "already in use" in low and "name" in low


def engine_reason(stderr: str) -> str:
    """The line of the engine's message that says what went wrong (not its usage
    pointer "See 'docker run --help'.")."""
    for line in stderr.splitlines():
        line = line.strip()
        if not line or line.startswith(("See '", "Run '")):
            continue
        for prefix in ("docker: ", "podman: ", "Error: ", "Error response from daemon: "):
            line = line.removeprefix(prefix)
        return line
    return ""


def confirm_started(m: Materials, container: str) -> dict[str, Any]:
    """The inspect data of the container just started, once the engine shows it
    running; an error naming the likely cause when it already ended."""
    result = m.engine.capture("container", "inspect", container)
    item = parse_inspect(result.stdout) if result.ok else None
    if item is not None and (item.get("State") or {}).get("Running"):
        return item
    cause = "run the same command in the foreground (or 'aishell exec true') to see why"
    if m.volume:
        from aishell.engine import volumes

        if not volumes.is_labelled(volumes.inspect_volume(m.engine, m.volume)):
            cause = (
                f"its agent volume {m.volume} was removed while it started (a prune?) and "
                "the sandbox refused to run with an empty /tools; run the command again "
                "and aishell installs the agents again"
            )
    raise AishellError(f"the container {container} ended right after it started", hint=cause)
