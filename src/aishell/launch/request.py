"""What the user asked to start: the launch request and the rules for its name."""

from __future__ import annotations

import re
from typing import Literal

from aishell.errors import UsageError
from aishell.tuples import NamedTuple

Kind = Literal["harness", "shell", "exec", "gitleaks", "run"]

NAME_RE = r"[A-Za-z0-9][A-Za-z0-9_.-]*"
MAX_NAME = 46


class LaunchRequest(NamedTuple):
    kind: Kind
    harness: str | None = None
    args: tuple[str, ...] = ()
    name: str | None = None
    detach: bool = False
    unsafe: bool = False
    verbose: bool = False
    cwd: str | None = None  # where to run (a --worktree checkout); None: the current dir
    # `aishell run` (kind "run", harness set): the prompt, the time limit in seconds,
    # and whether stdout ends with the result envelope (JSON)
    prompt: str | None = None
    timeout: float | None = None
    json: bool = False

    @property
    def interactive(self) -> bool:
        """An agent or a shell (the kinds that prompt, run pre_start and use tmux)."""
        return self.kind in ("harness", "shell")


class RunOptions(NamedTuple):
    """aishell's own options that apply to sandbox runs (given before the command)."""

    name: str | None = None
    detach: bool = False
    unsafe: bool = False
    worktree: str | None = None  # --worktree[=BRANCH]: "" without a value, None when absent
    install: bool = False  # --install: install a missing agent without a terminal to say so


def validate_name(name: str) -> None:
    if not name:
        raise UsageError("the container name is empty", hint="give --name a value")
    if len(name) > MAX_NAME:
        raise UsageError(
            f"the container name {name!r} is {len(name)} characters long",
            hint=f"use at most {MAX_NAME} characters",
        )
    if not re.fullmatch(NAME_RE, name):
        raise UsageError(
            f"invalid container name {name!r}",
            hint="use letters, digits, '_', '.' and '-', starting with a letter or digit",
        )


def default_name(req: LaunchRequest) -> str:
    if req.kind in ("harness", "run") and req.harness:
        return req.harness
    return "shell" if req.kind == "shell" else req.kind


def setup_hint(tools: dict[str, str], add: str | None = None, *, gitleaks: bool = False) -> str:
    """The setup command that keeps the current selection and adds `add` (setup is
    declarative: whatever it does not name is disabled)."""
    wanted = dict(tools)
    if add:
        wanted.setdefault(add, "latest")
    flags = [
        f"--with-{t}" if pin == "latest" else f"--with-{t}={pin}"
        for t, pin in sorted(wanted.items())
    ]
    if gitleaks:
        flags.append("--with-gitleaks")
    return "run 'aishell setup " + " ".join(flags) + "'"
