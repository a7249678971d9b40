"""The session record of a launch (`records.py`) and `aishell run`'s result envelope.

`begin` is called by `launch/run.py` just before the container starts: it prunes the
project's old records, writes what is being started and, for agent and shell runs and
`aishell run`, the git state to compare with (`changes.before`). `conclude` writes how
the session ended, what it changed (`changes.after`), the network decisions and the
post-session security notices. `envelope` is the JSON document `aishell run --json`
prints last (docs/json-output.md); it is built from the finished record alone.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from aishell import output, records
from aishell.constants import LABEL_RECORD
from aishell.engine.containers import parse_json_lines, parse_label_string
from aishell.errors import AishellError
from aishell.hashing import project_hash

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from aishell.engine.client import Engine
    from aishell.engine.run_args import RunSpec
    from aishell.launch.materialise import Materials
    from aishell.launch.resolve import Resolved
    from aishell.project import Project
    from aishell.security.guard import Finding

ENVELOPE_VERSION: Final = 1
# Launch kinds whose record carries the git summary (exec and gitleaks are lighter:
# they are started by scripts many times over, and `aishell exec true` must stay fast).
SUMMARISED: Final = frozenset({"harness", "shell", "run"})


def fields(r: Resolved, m: Materials, spec: RunSpec) -> dict[str, Any]:
    """What was started (secret values never in it: env is listed by name)."""
    req = r.req
    version = None
    if req.harness and m.volume:
        entry = r.state.volumes.get(m.volume)
        version = entry.versions.get(req.harness) if entry is not None else None
    linked = os.path.isfile(os.path.join(r.project.root, ".git"))
    policy = r.egress.policy if r.egress is not None else None
    return {
        "kind": req.kind,
        "agent": req.harness,
        "agent_version": version,
        "project": r.project.root,
        "project_hash": r.project.hash,
        "worktree": r.project.root if linked else None,
        "cwd": r.host.cwd,
        "container": r.container,
        "detached": req.detach,
        "command": records.redact_args(spec.command),
        "image": m.image,
        "harness_volume": m.volume,
        "mounts": [
            {"source": spec.project_dir, "target": spec.project_dir, "readonly": False},
            *({"source": b.source, "target": b.target, "readonly": b.readonly} for b in spec.binds),
        ],
        "env": sorted({name for name, _ in (*spec.fixed_env, *spec.env)}),
        "network": {
            "policy": r.config.network.mode,
            "described": policy.describe() if policy is not None else "open (no restriction)",
            "session": r.egress.session if r.egress is not None else None,
        },
        "timeout_seconds": req.timeout,
    }


def record_key(project: Project) -> str:
    """Where the project's records are kept: a linked worktree's with its repository's
    (`aishell sessions` in the repository lists the runs in its worktrees)."""
    from aishell.worktrees import read_linked_git_dir, verify_linked

    found = read_linked_git_dir(project.root)
    if (
        found is not None
        and verify_linked(project.root, found) is None
        and os.path.basename(found.common_real) == ".git"
    ):
        return project_hash(os.path.dirname(found.common_real))
    return project.hash


def prune_meanwhile(r: Resolved) -> threading.Thread:
    """Prune the project's old records on a thread, while the container starts and runs
    (a project at `sessions_keep` removes one record per launch: a directory tree,
    milliseconds the launch need not wait for). `join` it before aishell ends. The
    record of this session is never removed (it is the newest, and its session runs)."""
    config = r.config
    thread = threading.Thread(
        target=records.prune,
        args=(record_key(r.project),),
        kwargs={"keep_days": config.sessions_keep_days, "keep": config.sessions_keep},
        name="prune-records",
        daemon=True,
    )
    thread.start()
    return thread


def begin(r: Resolved, m: Materials, spec: RunSpec) -> records.Record | None:
    key = record_key(r.project)
    record = records.begin(key, fields(r, m, spec))
    if record is not None and r.req.kind in SUMMARISED:
        from aishell import changes  # (lazy: not for exec)

        record.data["before"] = changes.before(r.project.root)
        try:
            record.save()
        except OSError as exc:
            output.warn(f"cannot write the session record {record.dir} ({exc.strerror or exc})")
    return record


def settle(r: Resolved, engine: Engine) -> None:
    """Conclude the records of this project's sessions that ran in the background and
    are over (their container is gone): how they ended is not known then."""
    pending = records.detached_records(record_key(r.project))
    if not pending:
        return
    try:
        result = engine.capture(
            "ps", "-a", "--filter", f"label={LABEL_RECORD}", "--format", "{{json .}}"
        )
    except AishellError:  # the engine cannot tell now: a later launch concludes them
        return
    if not result.ok:
        return
    running = set()
    for item in parse_json_lines(result.stdout):
        labels = parse_label_string(item.get("Labels"))
        state = str(item.get("State") or "").lower()
        if labels.get(LABEL_RECORD) and state not in ("exited", "dead", "stopped"):
            running.add(labels[LABEL_RECORD])
    for record in pending:
        if record.id in running:
            continue
        conclude(record, status=None, ended_by="background")
        records.unmark(record)


def network_log(data: Mapping[str, Any]) -> Path | None:
    session = (data.get("network") or {}).get("session")
    if not session:
        return None
    from aishell.engine import proxy

    return proxy.log_dir_for(str(session)) / "decisions.log"


def conclude(
    record: records.Record,
    *,
    status: int | None,
    ended_by: str,
    findings: Sequence[Finding] = (),
) -> dict[str, Any]:
    before = record.data.get("before")
    root = str(record.data.get("project") or "")
    summary = None
    if isinstance(before, dict) and root:
        from aishell import changes  # (lazy: not for exec)

        try:
            summary = changes.after(root, before)
        except Exception as exc:  # the session is over: its status must still reach you
            summary = changes.summary_json("none", error=f"{type(exc).__name__}: {exc}")
    return records.end(
        record,
        status=status,
        ended_by=ended_by,
        changes=summary,
        notices=[f.to_json() for f in findings],
        network_log=network_log(record.data),
    )


def envelope(data: Mapping[str, Any]) -> dict[str, Any]:
    """The result envelope of `aishell run --json`, from a finished record."""
    from aishell import changes

    summary = dict(data.get("changes") or changes.summary_json("none"))
    network = dict(data.get("network") or {})
    return {
        "version": ENVELOPE_VERSION,
        "session": data.get("id"),
        "agent": {"name": data.get("agent"), "version": data.get("agent_version")},
        "project": data.get("project"),
        "worktree": data.get("worktree"),
        "branch": summary.get("branch"),
        "started": data.get("started"),
        "ended": data.get("ended"),
        "duration_seconds": data.get("duration_seconds"),
        "exit_status": data.get("exit_status"),
        "ended_by": data.get("ended_by"),
        "ok": data.get("exit_status") == 0,
        "commits": list(summary.get("commits") or []),
        "files": list(summary.get("files") or []),
        "changes_source": summary.get("source"),
        "changes_truncated": bool(summary.get("truncated")),
        "network": {
            "policy": network.get("policy"),
            "denied_requests": network.get("denied_requests"),
        },
        "notices": list(data.get("notices") or []),
        "record": data.get("record"),
    }


def interrupted(record: records.Record) -> None:
    """aishell was interrupted while the session ran (Ctrl-C, a signal, an error)."""
    try:
        conclude(record, status=None, ended_by="interrupted")
    except Exception:  # never hide what interrupted it
        records.mark(record, "ended")


def print_envelope(data: Mapping[str, Any], *, new_line: bool = False) -> None:
    """The envelope, on lines of its own (`new_line`: the agent's output ended
    mid-line)."""
    import json
    import sys

    sys.stdout.flush()
    sys.stdout.write(("\n" if new_line else "") + json.dumps(envelope(data), indent=2) + "\n")
    sys.stdout.flush()
