"""`aishell guard [list] [--json]`, `aishell guard diff [PATH...]`, `aishell guard ack`:
what the sandbox changed in this project's files that run on the host.

After every session aishell compares the project's auto-run files (editor tasks,
direnv, pre-commit, dev containers, agent settings, ...) and its git internals with
their state before the session, and walks the project for git repositories whose
config or hooks run programs and for set-user-ID, device and root-owned files (see
`security/guard.py`). What it found stays pending until acknowledged: `list` shows
it (and finishes sessions that ended in the background), `diff` shows each changed
file against the copy kept before the session, `ack` marks everything seen. Nothing
is ever reverted: use the diff, and git, to undo what you do not want.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aishell import output, report_json
from aishell.commands._args import parser
from aishell.errors import UsageError
from aishell.security import guard

if TYPE_CHECKING:
    from collections.abc import Sequence

    from aishell.project import Project


def _settle(project: Project) -> None:
    guard.settle_with_any_engine(project)


def cmd_list(argv: Sequence[str]) -> int:
    p = parser(
        "aishell guard",
        "Show what sandboxes changed in this project's files that run on this machine "
        "(editor tasks, direnv, pre-commit, agent settings, git config and hooks, ...), "
        "and git repositories or set-user-ID, device and root-owned files they left. "
        "'aishell guard diff' shows the changes, 'aishell guard ack' marks them seen.",
    )
    p.usage = (
        "aishell guard [list] [--json]\n       aishell guard diff [PATH...]\n"
        "       aishell guard ack"
    )
    p.add_argument("list", nargs="?", choices=["list"], help="list them (the default)")
    p.add_argument("--json", action="store_true", help="print JSON (docs/json-output.md)")
    ns = p.parse_args(list(argv))
    project = report_json.current_project()
    _settle(project)
    pending = guard.Store(project).pending()
    if ns.json:
        report_json.emit({"project": project.root, "pending": [f.to_json() for f in pending]})
        return 0
    if not pending:
        output.info(f"Nothing pending for {project.root}.")
        return 0
    for f in pending:
        output.out(guard.line_of(f))
    output.info("See the changes: aishell guard diff   Mark them seen: aishell guard ack")
    return 0


def cmd_diff(argv: Sequence[str]) -> int:
    p = parser(
        "aishell guard diff",
        "Show the pending changes as unified diffs: each file as it was before the session "
        "(a copy aishell kept) against the file now.",
    )
    p.add_argument("paths", nargs="*", metavar="PATH", help="only these (as 'guard' lists them)")
    ns = p.parse_args(list(argv))
    project = report_json.current_project()
    _settle(project)
    lines = guard.diff(project, ns.paths)
    if not lines:
        output.info("No pending changes to show.")
    for line in lines:
        output.out(line)
    return 0


def cmd_ack(argv: Sequence[str]) -> int:
    p = parser(
        "aishell guard ack",
        "Mark the pending findings seen: 'guard' and 'check' stop showing them. Nothing is "
        "changed in the project.",
    )
    p.parse_args(list(argv))
    project = report_json.current_project()
    _settle(project)
    done = guard.acknowledge(project)
    n = len(done)
    output.info(f"Marked {n} finding{'s' if n != 1 else ''} seen." if n else "Nothing pending.")
    return 0


def main(argv: Sequence[str]) -> int:
    args = list(argv)
    if args[:1] == ["diff"]:
        return cmd_diff(args[1:])
    if args[:1] == ["ack"]:
        return cmd_ack(args[1:])
    if args and not args[0].startswith("-") and args[0] != "list":
        raise UsageError(
            f"unknown 'aishell guard' subcommand {args[0]!r}",
            hint="use 'list' (the default), 'diff' or 'ack'; see 'aishell guard --help'",
        )
    return cmd_list(args)
