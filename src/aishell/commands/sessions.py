"""`aishell sessions [--json] [--all]` and `aishell logs SESSION`: the session records
(records.py) of this project (or of every project), and one record in full: what was
started, how it ended, what it changed, the agent's output (`aishell run`) and the
network decisions."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from aishell import output, paths, records
from aishell import project as project_mod
from aishell.errors import AishellError, UsageError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

SESSIONS_USAGE: Final = (
    "usage: aishell sessions [--json] [--all]\n\n"
    "This project's recent sessions, newest first (--all: every project's).\n"
    "Records live in ~/.aishell/sessions/; 'aishell logs SESSION' shows one."
)
LOGS_USAGE: Final = (
    "usage: aishell logs [--json] SESSION\n\n"
    "One session's record: what was started, how it ended, what it changed, then the\n"
    "agent's output (aishell run) and the network decisions. SESSION: its id, or the\n"
    "start of it."
)
# What a terminal would obey in text the agent wrote: control characters but tab
# and newline (escape sequences could rewrite the screen, or the title).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x9b]")


def _project_hash() -> str | None:
    """Where this project's records are (a linked worktree's: its repository's)."""
    from aishell.launch.recording import record_key

    try:
        project = project_mod.resolve(os.getcwd(), aishell_home=str(paths.aishell_home()))
    except AishellError:
        return None
    return record_key(project)


def shown(data: Mapping[str, Any]) -> dict[str, Any]:
    """One record as `sessions --json` lists it."""
    summary = dict(data.get("changes") or {})
    network = dict(data.get("network") or {})
    return {
        "session": data.get("id"),
        "kind": data.get("kind"),
        "agent": data.get("agent"),
        "agent_version": data.get("agent_version"),
        "project": data.get("project"),
        "worktree": data.get("worktree"),
        "branch": summary.get("branch"),
        "container": data.get("container"),
        "state": data.get("state"),
        "started": data.get("started"),
        "ended": data.get("ended"),
        "duration_seconds": data.get("duration_seconds"),
        "exit_status": data.get("exit_status"),
        "ended_by": data.get("ended_by"),
        "commits": len(summary.get("commits") or []),
        "files_changed": len(summary.get("files") or []),
        "network_policy": network.get("policy"),
        "denied_requests": network.get("denied_requests"),
        "notices": len(data.get("notices") or []),
        "record": data.get("record"),
    }


def sessions(argv: Sequence[str]) -> int:
    as_json = every = False
    for arg in argv:
        if arg in ("-h", "--help"):
            print(SESSIONS_USAGE)
            return 0
        if arg == "--json":
            as_json = True
        elif arg == "--all":
            every = True
        else:
            raise UsageError(f"unknown argument {arg!r}", hint="see 'aishell sessions --help'")
    scope = None if every else _project_hash()
    if not every and scope is None:
        raise UsageError(
            "not in a project", hint="run it in a project directory, or 'aishell sessions --all'"
        )
    found = [shown(d) for d in records.listing(scope)]
    if as_json:
        output.out(json.dumps({"version": 1, "sessions": found}, indent=2))
        return 0
    if not found:
        output.info("No sessions recorded" + ("" if every else " in this project") + ".")
        return 0
    for item in found:
        what = item["agent"] or item["kind"]
        if item["state"] != "ended":
            how = item["state"]
        elif item["ended_by"] == "exit":
            how = f"exit {item['exit_status']}"
        else:
            how = str(item["ended_by"])
        line = f"{item['session']}  {item['kind']!s:<8} {what!s:<9} {how:<12}"
        if item["files_changed"] or item["commits"]:
            line += f" {item['commits']} commits, {item['files_changed']} files"
        if every:
            line += f"  {item['project']}"
        output.out(line)
    return 0


def clean(text: str) -> str:
    """Text for a terminal with its control characters made visible."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def logs(argv: Sequence[str]) -> int:
    as_json = False
    wanted: list[str] = []
    for arg in argv:
        if arg in ("-h", "--help"):
            print(LOGS_USAGE)
            return 0
        if arg == "--json":
            as_json = True
        elif arg.startswith("-"):
            raise UsageError(f"unknown option {arg!r}", hint="see 'aishell logs --help'")
        else:
            wanted.append(arg)
    if len(wanted) != 1:
        raise UsageError("logs needs one session", hint="see 'aishell sessions' for their ids")
    hits = records.find(wanted[0], _project_hash())
    if not hits:
        raise AishellError(
            f"no session {wanted[0]!r} recorded",
            hint="'aishell sessions' (or --all) lists them",
        )
    if len(hits) > 1:
        raise UsageError(
            f"{wanted[0]!r} names {len(hits)} sessions",
            hint="give more of the id: " + ", ".join(h.name for h in hits[:5]),
        )
    directory = hits[0]
    data = records.load(directory) or {}
    out_text = _read(directory / records.OUTPUT)
    net_text = _read(directory / records.NETWORK)
    if as_json:
        data.pop("before", None)
        output.out(
            json.dumps(
                {"version": 1, "session": data, "output": out_text, "network_log": net_text},
                indent=2,
            )
        )
        return 0
    terminal = sys.stdout.isatty()
    for line in _header(data):
        output.out(line)
    if out_text is not None:
        output.out("--- output ---")
        sys.stdout.write(clean(out_text) if terminal else out_text)
        if out_text and not out_text.endswith("\n"):
            sys.stdout.write("\n")
    output.out("--- network decisions ---")
    if net_text is None:
        policy = (data.get("network") or {}).get("policy")
        output.out(f"(none recorded: network policy {policy})")
    else:
        sys.stdout.write(clean(net_text) if terminal else net_text)
    sys.stdout.flush()
    return 0


def _read(path: Path) -> str | None:
    try:
        return path.read_bytes().decode("utf-8", "replace")
    except OSError:
        return None


def _header(data: Mapping[str, Any]) -> list[str]:
    summary = dict(data.get("changes") or {})
    network = dict(data.get("network") or {})
    lines = [
        f"session   {data.get('id')}",
        f"kind      {data.get('kind')}",
    ]
    if data.get("agent"):
        lines.append(f"agent     {data.get('agent')} {data.get('agent_version') or ''}".rstrip())
    status = data.get("exit_status")
    denied = network.get("denied_requests")
    lines += [
        f"project   {data.get('project')}",
        f"command   {' '.join(str(a) for a in data.get('command') or [])}",
        f"image     {data.get('image')}",
        f"started   {data.get('started')}",
        f"ended     {data.get('ended') or '-'} ({data.get('ended_by') or data.get('state')}"
        + (f", status {status})" if status is not None else ")"),
        f"network   {network.get('policy')}"
        + (f", {denied} denied" if network.get("policy") == "allowlist" else ""),
    ]
    if summary.get("branch"):
        lines.append(f"branch    {summary.get('branch')}")
    for commit in summary.get("commits") or []:
        lines.append(f"commit    {str(commit.get('id'))[:12]} {commit.get('subject')}")
    for f in summary.get("files") or []:
        counts = ""
        if f.get("lines_added") is not None:
            counts = f" +{f.get('lines_added')} -{f.get('lines_deleted')}"
        lines.append(f"file      {f.get('change'):<8} {f.get('path')}{counts}")
    for notice in data.get("notices") or []:
        lines.append(f"notice    {notice.get('change')} {notice.get('path')}: {notice.get('why')}")
    return [clean(line) for line in lines]
