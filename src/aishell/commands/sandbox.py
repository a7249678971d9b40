"""The commands that start a sandbox: `aishell [shell]`, `aishell <agent> [ARGS...]`,
`aishell exec CMD [ARGS...]` and `aishell gitleaks [ARGS...]`.

Each turns the command line into a `LaunchRequest` and hands it to the launch
pipeline. Arguments after the command word pass through untouched; aishell's own
options (`RunOptions`) came before it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from aishell import launch, output
from aishell.errors import UsageError
from aishell.launch.request import LaunchRequest, default_name, validate_name
from aishell.launch.resolve import NotInstalled
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
    try:
        return launch.launch(req)
    except NotInstalled as missing:
        install_missing(missing, explicit=opts.install)
    return launch.launch(req)


def install_missing(missing: NotInstalled, *, explicit: bool) -> None:
    """The first run of an agent (or of aishell): install what the launch lacks, with
    the same steps as `aishell setup`, keeping everything installed now. On a terminal
    it says so and goes ahead; without one only with --install (a script must not
    start a minute-long install by surprise)."""
    if not (explicit or output.interactive_terminal()):
        raise missing
    from aishell.commands import setup  # (only a first run pays for its imports)

    keep = describe(missing.selection, missing.gitleaks)
    output.info(
        f"{missing.message[0].upper()}{missing.message[1:]}: installing {missing.what} now "
        f"(as 'aishell setup {keep}' would; the first time this builds the sandbox image, "
        "about a minute)"
    )
    setup.provision(dict(missing.selection), gitleaks=missing.gitleaks, first_run=True)
    output.info(f"Installed {missing.what}; starting it.")


def describe(selection: dict[str, str], gitleaks: bool) -> str:
    """The setup flags of a selection, e.g. `--with-claude --with-pi=1.2.3`."""
    flags = [
        f"--with-{t}" if pin == "latest" else f"--with-{t}={pin}"
        for t, pin in sorted(selection.items())
    ]
    if gitleaks:
        flags.append("--with-gitleaks")
    return " ".join(flags) or "(no agents)"


def in_worktree(req: LaunchRequest, branch: str) -> LaunchRequest:
    """The request, run in the worktree of `branch` (created or reused)."""
    if req.name is not None:
        validate_name(req.name)
    cwd = enter(branch or None, req.name or default_name(req), os.getcwd())
    return req._replace(cwd=cwd)
