"""The commands that start a sandbox: `aishell [shell]`, `aishell <agent> [ARGS...]`,
`aishell exec CMD [ARGS...]` and `aishell gitleaks [ARGS...]`.

Each turns the command line into a `LaunchRequest` and hands it to the launch
pipeline. Arguments after the command word pass through untouched; aishell's own
options (`RunOptions`) came before it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from aishell import launch
from aishell.errors import UsageError
from aishell.launch.request import LaunchRequest, default_name, validate_name
from aishell.worktrees import enter

if TYPE_CHECKING:
    from collections.abc import Sequence

    from aishell.launch.request import RunOptions


def shell(command: str, argv: Sequence[str], opts: RunOptions) -> int:
    req = LaunchRequest(kind="shell", name=opts.name, detach=opts.detach, unsafe=opts.unsafe)
    return start(req, opts)


def agent(command: str, argv: Sequence[str], opts: RunOptions) -> int:
    req = LaunchRequest(
        kind="harness",
        harness=command,
        args=tuple(argv),
        name=opts.name,
        detach=opts.detach,
        unsafe=opts.unsafe,
    )
    return start(req, opts)


def exec_(command: str, argv: Sequence[str], opts: RunOptions) -> int:
    if opts.detach:
        raise UsageError("exec runs in the foreground; --detach does not apply")
    if opts.name is not None:
        raise UsageError("exec containers have no name; --name applies to agent and shell runs")
    if not argv:
        raise UsageError("exec needs a command", hint="e.g. 'aishell exec ls -la'")
    return start(LaunchRequest(kind="exec", args=tuple(argv), unsafe=opts.unsafe), opts)


def gitleaks(command: str, argv: Sequence[str], opts: RunOptions) -> int:
    if opts.detach:
        raise UsageError("gitleaks runs in the foreground; --detach does not apply")
    req = LaunchRequest(kind="gitleaks", args=tuple(argv), name=opts.name, unsafe=opts.unsafe)
    return start(req, opts)


def start(req: LaunchRequest, opts: RunOptions) -> int:
    if opts.worktree is not None:
        req = in_worktree(req, opts.worktree)
    return launch.launch(req)


def in_worktree(req: LaunchRequest, branch: str) -> LaunchRequest:
    """The request, run in the worktree of `branch` (created or reused)."""
    if req.name is not None:
        validate_name(req.name)
    cwd = enter(branch or None, req.name or default_name(req), os.getcwd())
    return req._replace(cwd=cwd)
