"""Step 4 of a launch: run. Hand the assembled spec over to the engine.

Around every run the post-session check (`security/guard.py`) records the state of
the files that run on the host before the container starts and compares it after
the session (for a detached one, a later aishell command does). Under an allowlist
policy the session is registered with this home's egress proxy around the run
(`proxy.egress`); the session ends with its sandbox (the sandbox holds a keep-alive
connection to the proxy), so a detached one needs nothing more from aishell for its
egress. The engine CLI runs as a child, so aishell can do the guard's work when it
ends; only when the guard could not record anything does a foreground run replace
this process with the engine CLI.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from typing import TYPE_CHECKING, Any, NoReturn

from aishell import output, records, session
from aishell.constants import LABEL_GUARD_SESSION, LABEL_RECORD
from aishell.engine.containers import parse_inspect
from aishell.engine.run_args import build_run_args
from aishell.errors import AishellError
from aishell.launch import recording
from aishell.launch.resolve import host_facts
from aishell.security import guard, redirects

if TYPE_CHECKING:
    from collections.abc import Sequence

    from aishell.engine.client import Engine
    from aishell.engine.run_args import Bind, RunArgs, RunSpec
    from aishell.launch.materialise import Materials
    from aishell.launch.resolve import Resolved
    from aishell.records import Record


def run(r: Resolved, m: Materials, spec: RunSpec) -> int:
    # The post-session check (security/guard.py): sessions of this project that ended
    # in the background are concluded now; this one's state is recorded before it
    # starts and compared when it ends (a detached one: by a later command).
    guard.settle(r.project, m.engine)
    walled = r.config.git_internals != "writable"
    session = guard.begin(
        r.project,
        host_uid=r.host.uid,
        sweep_roots=writable_mounts(r.config_binds, r.project.canonical),
        detached=r.req.detach,
        walled=walled,
    )
    if session is not None:
        spec = spec._replace(labels=(*spec.labels, session.label))
    # The session record (records.py): what starts now, and how it ended.
    recording.settle(r, m.engine)
    record = recording.begin(r, m, spec)
    if record is not None:
        spec = spec._replace(labels=(*spec.labels, (LABEL_RECORD, record.id)))
    pruner = recording.prune_meanwhile(r)
    child = session is not None or record is not None
    # A `commondir` redirect or a link in a git directory written while the session runs
    # stops it (security/redirects.py).
    started = time.time()
    since = started - redirects.CLOCK_SLACK
    check = redirects.watcher(r.project.root, since) if walled and child else None
    wire = redirects.Tripwire(
        None if r.req.detach else check, lambda: stop_session(m.engine, spec.labels)
    )
    try:
        with wire:
            outcome = start(r, m, spec, child=child, record=record)
    except BaseException:
        if session is not None:  # its container may still run: a later command checks
            guard.mark_detached(session)
        if record is not None:
            recording.interrupted(record)
        raise
    finally:
        pruner.join(timeout=30)
    if wire.tripped:
        outcome = outcome._replace(status=outcome.status or 1, ended_by="guard")
        tripped_notice(wire.moved)
    findings: list[guard.Finding] = []
    if session is not None:
        if outcome.detached:
            guard.mark_detached(session)
        else:
            findings = guard.finish(session, wire.moved)
    elif walled and not outcome.detached:  # no guard state: the redirects still go
        for item in redirects.session_end(r.project.root, started):
            output.warn(f"{item.path}: {item.why} ({redirects.describe(item)})")
    if record is not None:
        if outcome.detached:
            records.mark(record, "detached")
        else:
            data = recording.conclude(
                record, status=outcome.status, ended_by=outcome.ended_by, findings=findings
            )
            if r.req.kind == "run" and r.req.json:
                recording.print_envelope(data, new_line=record.open_line)
    elif r.req.kind == "run" and r.req.json:
        output.warn("no session record could be written: no result envelope")
    if plain_foreground(r, spec):
        leave(outcome.status)
    return outcome.status


def stop_session(engine: Engine, labels: Sequence[tuple[str, str]]) -> None:
    """Kill the session's container (the tripwire: the agent redirected git)."""
    mine = [(k, v) for k, v in labels if k in (LABEL_GUARD_SESSION, LABEL_RECORD)]
    if not mine:
        return
    key, value = mine[0]
    found = engine.capture("ps", "-q", "--filter", f"label={key}={value}")
    ids = found.stdout.split() if found.ok else []
    if ids:
        engine.capture("kill", *ids)


def tripped_notice(moved: Sequence[redirects.Moved]) -> None:
    for m in moved:
        output.warn(
            f"aishell stopped the session: the agent wrote {m.path} ({m.why}); "
            f"{redirects.describe(m)}"
        )


def plain_foreground(r: Resolved, spec: RunSpec) -> bool:
    """The run where aishell used to replace itself with the engine CLI."""
    return not (spec.tmux or r.req.detach or r.req.kind in ("gitleaks", "run"))


def leave(status: int) -> NoReturn:
    """End the way the exec'd engine CLI used to: with its status, and without the
    interpreter's teardown (nothing is left to clean up, and it costs the start-up
    budget of every `aishell exec` several milliseconds)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status)


def writable_mounts(binds: Sequence[Bind], project: str) -> list[str]:
    """The configured read-write mounts outside the project: the post-session sweep walks
    them too. (The agents' config directories, which hold whole node_modules trees, are
    left to `aishell check`: walking them after every session would cost more than the
    session start.)"""
    prefix = project.rstrip("/") + "/"
    return [
        b.source
        for b in binds
        if not b.readonly and b.source != project and not b.source.startswith(prefix)
    ]


def start(
    r: Resolved, m: Materials, spec: RunSpec, *, child: bool, record: Record | None = None
) -> session.Outcome:
    """Hand the spec over to the engine: as a child when aishell has work to do after
    it ends (`child`, or an egress proxy to remove), else by exec."""
    args = build_run_args(spec, host_facts(r))
    if r.egress is None or not r.egress.session:
        return hand_over(r, m, spec, args, child=child, record=record)
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
        outcome = hand_over(r, m, spec, args, child=child, record=record)
        if egress is not None and outcome.detached:
            egress.keep = True  # the agent still runs; its end closes the session
        return outcome


def hand_over(
    r: Resolved,
    m: Materials,
    spec: RunSpec,
    args: RunArgs,
    *,
    child: bool,
    record: Record | None = None,
) -> session.Outcome:
    """Start the container the way the request wants; what happened."""
    engine, req = m.engine, r.req
    env = {**os.environ, **args.env}
    if req.kind == "run":  # headless (launch/headless.py): output shown and recorded
        from aishell.launch import headless

        ended = headless.call(
            engine, args.argv, env=env, container=r.container, record=record, timeout=req.timeout
        )
        if record is not None and ended.output_truncated:
            record.data["output_truncated"] = True
        return session.Outcome(
            ended.status, detached=False, ended_by="timeout" if ended.timed_out else "exit"
        )
    if spec.tmux and not req.detach:
        start_detached(m, r.container, r.short, args, env)
        container = r.container or ""
        item = confirm_started(m, container)
        return session.attach(engine, container, r.short, r.host, item)
    if req.detach:
        start_detached(m, r.container, r.short, args, env)
        confirm_started(m, r.container or "")  # never "Started" for what did not start
        output.info(f"Started {r.container} in the background.")
        import shlex  # (lazy: only a detached start says where to go)

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


def start_detached(
    m: Materials, container: str | None, short: str, args: RunArgs, env: dict[str, str]
) -> None:
    result = m.engine.capture(*args.argv, env=env)
    if result.ok:
        return
    if name_taken(result.stderr):
        # Another aishell started the same --name a moment ago: that one won.
        raise AishellError(
            f"the container {container} is already running or being started",
            hint=f"attach with 'aishell attach {short}', or pick another --name",
        )
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


def name_taken(stderr: str) -> bool:
    """The engine refused the container name: one of that name exists (Docker:
    'Conflict. The container name "/x" is already in use'; Podman: 'the container
    name "x" is already in use by ...')."""
    low = stderr.lower()
    return "already in use" in low and "name" in low


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
