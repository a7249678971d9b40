"""`aishell worktrees [list] [--json]` and `aishell worktrees remove BRANCH|PATH [--force]`.

The repository is the one around the current directory (its main checkout or any
of its worktrees). Containers belong to a worktree through their label
`aishell.project=<canonical project path>`: a container whose project lies in a
worktree (the innermost one, when worktrees nest) is listed with it.

Removal rule (without --force), checked in this order:

1. a running aishell container works in the worktree -> refused (also with
   --force: stop it first);
2. `git status --porcelain` in the worktree is not empty (modified, staged or
   untracked files) -> refused;
3. the worktree's HEAD has commits that are neither in the main checkout's HEAD
   (the branch checked out in the repository itself; for a bare repository its
   HEAD) nor in the branch's upstream, if it has one -> refused ("unmerged").
   This is the rule `git branch -d` applies.

`--force` overrides 2 and 3 (`git worktree remove --force`). The branch is never
deleted.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from aishell import hostgit, output, report_json
from aishell.commands._args import parser
from aishell.constants import LABEL_HARNESS, LABEL_MANAGED, LABEL_NAME, LABEL_PROJECT
from aishell.engine import choice
from aishell.engine.containers import container_names, parse_json_lines, parse_label_string
from aishell.errors import AishellError, UsageError
from aishell.tuples import NamedTuple
from aishell.worktrees import Worktree, list_worktrees, owner_of

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

EXEC_NAME = "(exec)"


class RunningContainer(NamedTuple):
    container: str  # the engine's name
    name: str | None  # aishell's name (label aishell.name); None for exec containers
    harness: str | None
    project: str  # canonical project path (label aishell.project)
    status: str

    @property
    def display_name(self) -> str:
        return self.name or EXEC_NAME

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "container": self.container,
            "harness": self.harness,
            "project": self.project,
            "status": self.status,
        }


# --------------------------------------------------------------------------- pure


def container_from_ps(item: Mapping[str, Any]) -> RunningContainer | None:
    labels = parse_label_string(item.get("Labels"))
    project = labels.get(LABEL_PROJECT)
    if not project:
        return None
    names = container_names(item)
    return RunningContainer(
        container=names[0] if names else str(item.get("ID", ""))[:12],
        name=labels.get(LABEL_NAME) or None,
        harness=labels.get(LABEL_HARNESS) or None,
        project=project,
        status=str(item.get("Status") or ""),
    )


def assign(
    worktrees: Sequence[Worktree], containers: Sequence[RunningContainer]
) -> dict[str, list[RunningContainer]]:
    """Worktree path -> the containers whose project lies in it (innermost worktree)."""
    by_path: dict[str, list[RunningContainer]] = {wt.path: [] for wt in worktrees}
    for item in containers:
        owner = owner_of(item.project, worktrees)
        if owner is not None:
            by_path[owner.path].append(item)
    for items in by_path.values():
        items.sort(key=lambda c: (c.name is None, c.name or "", c.container))
    return by_path


def removal_blockers(
    *,
    running: Sequence[RunningContainer],
    status_lines: Sequence[str],
    unmerged: int | None,
    force: bool,
) -> list[str]:
    """Why the worktree must not be removed (empty: go ahead). `unmerged` is the number
    of commits not in the main checkout's HEAD nor the upstream (None: unknown)."""
    reasons: list[str] = []
    if running:
        names = ", ".join(c.container for c in running)
        reasons.append(f"a container is running in it ({names})")
    if force:
        return reasons
    if status_lines:
        n = len(status_lines)
        reasons.append(f"it has uncommitted changes ({n} file{'s' if n != 1 else ''})")
    if unmerged is None:
        reasons.append("git could not tell whether its commits are merged")
    elif unmerged:
        reasons.append(
            f"it has {unmerged} unmerged commit{'s' if unmerged != 1 else ''} "
            "(not in the main checkout's branch nor its upstream)"
        )
    return reasons


def describe_branch(wt: Worktree) -> str:
    if wt.bare:
        return "(bare)"
    if wt.branch_name:
        return wt.branch_name
    if wt.detached and wt.head:
        return f"(detached {wt.head[:7]})"
    return "(detached)" if wt.detached else "(unknown)"


def to_json(
    worktrees: Sequence[Worktree], assigned: Mapping[str, Sequence[RunningContainer]]
) -> list[dict[str, Any]]:
    return [
        {
            "path": wt.path,
            "branch": wt.branch_name,
            "head": wt.head,
            "main": i == 0,
            "bare": wt.bare,
            "detached": wt.detached,
            "locked": wt.locked,
            "prunable": wt.prunable,
            "containers": [c.to_json() for c in assigned.get(wt.path, ())],
        }
        for i, wt in enumerate(worktrees)
    ]


def render_table(
    worktrees: Sequence[Worktree], assigned: Mapping[str, Sequence[RunningContainer]]
) -> list[str]:
    rows = []
    for i, wt in enumerate(worktrees):
        branch = describe_branch(wt)
        notes = [
            n for n, on in (("main", i == 0), ("locked", wt.locked), ("gone", wt.prunable)) if on
        ]
        if notes:
            branch += f" [{', '.join(notes)}]"
        containers = ", ".join(c.display_name for c in assigned.get(wt.path, ())) or "-"
        rows.append([branch, wt.path, containers])
    return report_json.table(["BRANCH", "PATH", "CONTAINERS"], rows)


def find_target(worktrees: Sequence[Worktree], target: str, cwd: str) -> Worktree | None:
    """The worktree named by a branch (`feature`, `refs/heads/feature`) or a path."""
    ref = target if target.startswith("refs/") else "refs/heads/" + target
    for wt in worktrees:
        if wt.branch == ref:
            return wt
    real = os.path.realpath(os.path.join(cwd, os.path.expanduser(target)))
    for wt in worktrees:
        if os.path.realpath(wt.path) == real:
            return wt
    return None


# ------------------------------------------------------------------------ I/O


def engine_name() -> str:
    try:
        return choice.get_engine().name
    except AishellError:
        return "docker"


def running_containers() -> list[RunningContainer]:
    """The running aishell containers (one `ps` call)."""
    engine = choice.get_engine()
    result = engine.checked(
        "ps",
        "--no-trunc",
        "--filter",
        f"label={LABEL_MANAGED}=1",
        "--format",
        "{{json .}}",
        what="listing containers",
    )
    found = [container_from_ps(item) for item in parse_json_lines(result.stdout)]
    return [c for c in found if c is not None]


def unmerged_count(wt: Worktree) -> int | None:
    """Commits in the worktree's HEAD that are neither in the main checkout's HEAD nor
    in the branch's upstream (None when git cannot tell)."""
    upstream = ""
    if wt.branch:
        result = hostgit.run(wt.path, "for-each-ref", "--format=%(upstream)", wt.branch)
        upstream = result.stdout.strip() if result.ok else ""
    args = ["rev-list", "--count", "--ignore-missing", "HEAD", "--not", "main-worktree/HEAD"]
    if upstream:
        args.append(upstream)
    result = hostgit.run(wt.path, *args)
    if not result.ok:
        return None
    try:
        return int(result.stdout.strip())
    except ValueError:
        return None


# -------------------------------------------------------------------- commands


def _cwd() -> str:
    return report_json.logical_cwd()


def cmd_list(argv: Sequence[str]) -> int:
    p = parser(
        "aishell worktrees",
        "List the git worktrees of the repository around the current directory, with the "
        "aishell containers running in each. 'aishell worktrees remove BRANCH|PATH' removes one.",
    )
    p.usage = (
        "aishell worktrees [list] [--json]\n       aishell worktrees remove BRANCH|PATH [--force]"
    )
    p.add_argument("list", nargs="?", choices=["list"], help="list them (the default)")
    p.add_argument("--json", action="store_true", help="print a JSON array (docs/worktrees.md)")
    ns = p.parse_args(list(argv))
    worktrees = list_worktrees(_cwd(), purpose="aishell worktrees")
    try:
        containers = running_containers()
    except AishellError as exc:
        output.warn(f"containers not shown: {exc.message}")
        containers = []
    assigned = assign(worktrees, containers)
    if ns.json:
        report_json.emit(to_json(worktrees, assigned))
        return 0
    for line in render_table(worktrees, assigned):
        output.out(line)
    if len(worktrees) == 1:
        output.info("No linked worktrees. Start an agent in one: aishell --worktree=BRANCH <agent>")
    return 0


def cmd_remove(argv: Sequence[str]) -> int:
    p = parser(
        "aishell worktrees remove",
        "Remove a git worktree (the branch is kept). Refused while an aishell container runs "
        "in it, and, unless --force, when it has uncommitted changes or commits that are "
        "neither in the main checkout's branch nor in its upstream.",
    )
    p.add_argument("target", metavar="BRANCH|PATH", help="the worktree's branch or directory")
    p.add_argument(
        "--force",
        action="store_true",
        help="remove even with uncommitted changes (they are lost) or unmerged commits "
        "(they stay on the branch, which is kept)",
    )
    ns = p.parse_args(list(argv))
    cwd = _cwd()
    worktrees = list_worktrees(cwd, purpose="aishell worktrees remove")
    wt = find_target(worktrees, ns.target, cwd)
    if wt is None:
        raise AishellError(
            f"no worktree for {ns.target!r} in this repository",
            hint="list them with 'aishell worktrees'",
        )
    if wt is worktrees[0] or wt.bare:
        raise UsageError(
            f"{wt.path} is the repository's main checkout, not a linked worktree",
            hint="only linked worktrees can be removed",
        )
    assigned = assign(worktrees, running_containers())
    running = list(assigned.get(wt.path, ()))
    exists = os.path.isdir(wt.path)
    status_lines: list[str] = []
    unmerged: int | None = 0
    if exists and not ns.force:
        status = hostgit.run(wt.path, "status", "--porcelain")
        if not status.ok:
            raise AishellError(
                f"git status failed in {wt.path}: {status.message}",
                hint="fix the worktree, or remove it with --force",
                details=status.stderr.strip() or None,
            )
        status_lines = [line for line in status.stdout.splitlines() if line.strip()]
        unmerged = unmerged_count(wt)
    reasons = removal_blockers(
        running=running, status_lines=status_lines, unmerged=unmerged, force=ns.force
    )
    if reasons:
        if running:
            stop = " && ".join(f"{engine_name()} stop {c.container}" for c in running)
            hint = f"stop it first ({stop}); --force does not override a running container"
        else:
            hint = (
                "commit or merge the work, or drop it with "
                f"'aishell worktrees remove {ns.target} --force' (the branch is kept)"
            )
        raise AishellError(f"not removing {wt.path}: {'; '.join(reasons)}", hint=hint)
    main_path = worktrees[0].path
    args = ["worktree", "remove", *(["--force"] if ns.force else []), wt.path]
    result = hostgit.run(main_path, *args)
    if not result.ok:
        raise AishellError(
            f"git worktree remove failed: {result.message}",
            hint=None if ns.force else "add --force to remove it anyway",
            details=result.stderr.strip() or None,
        )
    kept = ""
    if wt.branch_name:
        kept = f"; branch {wt.branch_name} kept (delete it with 'git branch -D {wt.branch_name}')"
    output.info(f"Removed worktree {wt.path}{kept}")
    return 0


def main(argv: Sequence[str]) -> int:
    args = list(argv)
    if args[:1] == ["remove"]:
        return cmd_remove(args[1:])
    if args and not args[0].startswith("-") and args[0] != "list":
        raise UsageError(
            f"unknown 'aishell worktrees' subcommand {args[0]!r}",
            hint="use 'list' (the default) or 'remove'; see 'aishell worktrees --help'",
        )
    return cmd_list(args)
