"""The one module that runs git on the host.

The project, its `.git` directory and any linked worktree's common git directory are
writable from inside the sandbox, so everything git reads from them is untrusted
input: aishell's own git calls must never run a command the repository names. Every
call goes through `run`, which
- starts git with a cleaned environment (no `GIT_*` variable of the caller, so
  `GIT_DIR` and friends cannot redirect it), no terminal prompts, no pager, no editor;
- turns off what would execute repository-named programs: hooks, fsmonitor;
- has a timeout.

Callers pass read-only queries (`config --get`, `check-ignore`, `worktree list`,
`status`, `for-each-ref`, `merge-base`) and the few writes `--worktree` needs.
"""

from __future__ import annotations

import os
import subprocess
from typing import NamedTuple

from aishell.errors import AishellError

DEFAULT_TIMEOUT = 30.0

# `-c` options for every call: nothing the repository configures may run.
SAFETY_OPTIONS = (
    "-c",
    "core.hooksPath=/dev/null",
    "-c",
    "core.fsmonitor=false",
    "-c",
    "core.pager=cat",
)


class GitResult(NamedTuple):
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def message(self) -> str:
        """git's own one-line reason (without `fatal: `/`error: `)."""
        for line in self.stderr.splitlines():
            if line.strip():
                return line.strip().removeprefix("fatal: ").removeprefix("error: ")
        return f"exit {self.returncode}"


class GitUnavailable(AishellError):
    """git could not be run at all (missing, or it did not answer in time)."""


# The caller's GIT_* variables that only say where the user's own config lives.
KEPT_VARIABLES = frozenset({"GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM", "GIT_CONFIG_NOSYSTEM"})


def environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment git runs with: the caller's, without `GIT_*` variables (except
    those naming the user's own config files), plus no prompts, no pager, no editor."""
    source = os.environ if environ is None else environ
    env = {k: v for k, v in source.items() if not k.startswith("GIT_") or k in KEPT_VARIABLES}
    env.update(
        GIT_TERMINAL_PROMPT="0",
        GIT_PAGER="cat",
        PAGER="cat",
        GIT_EDITOR="true",
        GIT_OPTIONAL_LOCKS="0",
        LC_ALL="C",
    )
    return env


def run(
    cwd: str,
    *args: str,
    input: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> GitResult:
    """`git -C cwd <args>` with the safety options; output decoded losslessly
    (undecodable bytes as surrogates, so `os.fsencode` gives the original path back).
    Raises GitUnavailable when git is missing or does not finish within `timeout`."""
    try:
        proc = subprocess.run(
            ["git", *SAFETY_OPTIONS, "-C", cwd, *args],
            input=input.encode("utf-8", "surrogateescape") if input is not None else None,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            env=environment(),
            check=False,
        )
    except OSError as exc:
        raise GitUnavailable(
            f"cannot run git: {exc.strerror or exc}", hint="install git on this machine"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise GitUnavailable(
            f"'git {' '.join(args[:2])}' did not finish within {timeout:g}s"
        ) from exc
    return GitResult(
        proc.returncode,
        proc.stdout.decode("utf-8", "surrogateescape"),
        proc.stderr.decode("utf-8", "replace"),
    )


def parse_identity(stdout: str) -> tuple[str | None, str | None]:
    r"""(user.name, user.email) from `git config --get-regexp '^user\.(name|email)$'`."""
    name = email = None
    for line in stdout.splitlines():
        key, _, value = line.partition(" ")
        if key == "user.name":
            name = value
        elif key == "user.email":
            email = value
    return name, email


IDENTITY_ARGS = ("config", "--get-regexp", r"^user\.(name|email)$")
IDENTITY_TIMEOUT = 5.0


def identity(cwd: str) -> tuple[str | None, str | None]:
    """(user.name, user.email) as git resolves them in `cwd`; None where unset or git
    is unavailable."""
    try:
        result = run(cwd, *IDENTITY_ARGS, timeout=IDENTITY_TIMEOUT)
    except GitUnavailable:
        return None, None
    return parse_identity(result.stdout)


class PendingIdentity:
    """`identity(cwd)` started in the background: the launch asks git while it reads
    its config and inspects the engine, and collects the answer when it builds argv."""

    def __init__(self, cwd: str) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._answer: tuple[str | None, str | None] | None = None
        try:
            self._proc = subprocess.Popen(
                ["git", *SAFETY_OPTIONS, "-C", cwd, *IDENTITY_ARGS],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=environment(),
            )
        except OSError:
            self._answer = (None, None)

    def result(self) -> tuple[str | None, str | None]:
        if self._answer is None:
            assert self._proc is not None
            try:
                stdout, _ = self._proc.communicate(timeout=IDENTITY_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.communicate()
                stdout = b""
            self._answer = parse_identity(stdout.decode("utf-8", "surrogateescape"))
        return self._answer
