"""The one module that runs git on the host.

The project, its `.git` directory and any linked worktree's common git directory are
reachable from inside the sandbox (the top of `.git` stays writable, and with
`git_internals: writable` everything is), so everything git reads from them is
untrusted input: aishell's own git calls must never run a program the repository
names. Every call goes through `run`, which
- refuses a repository whose git directory is redirected elsewhere (`locate`: a
  `commondir` file in a main repository's `.git`, or a linked worktree's pointing
  anywhere but its own repository), with an error naming the file;
- starts git with a cleaned environment (no `GIT_*` variable of the caller, so
  `GIT_DIR` and friends cannot redirect it), no terminal prompts, no pager, no editor;
- reads the effective configuration first (`git config --list`, which runs nothing)
  and carries settings that turn off everything it could run: hooks, fsmonitor,
  pagers, editors, ssh/askpass/credential helpers, external diff, and every filter
  and diff driver the repository defines (`gitconfig.overrides`), as `GIT_CONFIG_*`
  variables that git's own child processes (the checkout inside `worktree add`, the
  status inside `worktree remove`) inherit; submodules are never recursed into;
- has a timeout.

Callers pass read-only queries (`config --get`, `check-ignore`, `worktree list`,
`status`, `for-each-ref`, `merge-base`) and the few writes `--worktree` needs.
"""

from __future__ import annotations

import os
import subprocess

from aishell import gitconfig
from aishell.errors import AishellError
from aishell.tuples import NamedTuple

DEFAULT_TIMEOUT = 30.0

# Global options for every call (the rest goes through `gitconfig.environment`).
GLOBAL_OPTIONS = ("--no-pager",)

# Commands that only read configuration files: they run nothing the config names, so
# they need no listing of it first.
CONFIG_ONLY = frozenset({"config"})


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


class GitRefused(GitUnavailable):
    """aishell will not run git in this repository: its git directory is redirected."""


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
        GIT_SEQUENCE_EDITOR="true",
        GIT_ASKPASS="",
        SSH_ASKPASS="",
        GIT_OPTIONAL_LOCKS="0",
        LC_ALL="C",
    )
    return env


# ------------------------------------------------------------------ where git looks


def _first_line(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as fh:
            return fh.readline(4096).rstrip("\r\n")
    except OSError:
        return None


class Layout(NamedTuple):
    """Where git finds a repository from some directory (as git itself would)."""

    top: str  # the directory holding `.git` (or the git directory of a bare repository)
    gitdir: str  # the git directory (`.git`, or what a `.git` file names)
    common: str  # the common git directory (the gitdir unless `commondir` names another)
    problem: str | None = None  # why aishell will not run git here (a redirect)


def looks_like_gitdir(path: str) -> bool:
    return (
        os.path.isfile(os.path.join(path, "HEAD"))
        and os.path.isdir(os.path.join(path, "objects"))
        and os.path.isdir(os.path.join(path, "refs"))
    )


def layout_of(top: str, gitdir: str) -> Layout:
    """The layout of the git directory `gitdir` found at `top`, with its problem: a
    `commondir` file must only be in a linked worktree's own directory,
    `<common>/worktrees/<name>`, and name that `<common>`."""
    commondir_file = os.path.join(gitdir, "commondir")
    if not os.path.lexists(commondir_file):
        return Layout(top, gitdir, gitdir)
    text = _first_line(commondir_file)
    target = os.path.normpath(os.path.join(gitdir, text)) if text else ""
    real_gitdir = os.path.realpath(gitdir)
    real_common = os.path.realpath(target) if target else ""
    if (
        target
        and os.path.dirname(real_gitdir) == os.path.join(real_common, "worktrees")
        and looks_like_gitdir(real_common)
    ):
        return Layout(top, gitdir, target)
    shown = target or "(nothing readable)"
    return Layout(
        top,
        gitdir,
        target or gitdir,
        problem=(
            f"{commondir_file} makes git use the configuration and hooks of {shown} "
            "instead of this repository's own (only a linked worktree's directory "
            "under <repository>/.git/worktrees/ has such a file, naming its repository)"
        ),
    )


def locate(cwd: str) -> Layout | None:
    """The repository git would use in `cwd` (the nearest `.git`, or a bare repository),
    found without running git; None outside any repository."""
    here = os.path.abspath(cwd)
    while True:
        dotgit = os.path.join(here, ".git")
        if os.path.isdir(dotgit):
            return layout_of(here, dotgit)
        if os.path.isfile(dotgit):
            line = _first_line(dotgit) or ""
            if line.startswith("gitdir:"):
                named = line[len("gitdir:") :].strip()
                if named:
                    return layout_of(here, os.path.normpath(os.path.join(here, named)))
        if looks_like_gitdir(here):
            return layout_of(here, here)
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


def refusal_hint(layout: Layout) -> str:
    commondir = os.path.join(layout.gitdir, "commondir")
    return (
        f"if you did not make it, the sandbox's agent may have: look at it, then remove it "
        f"('rm {commondir}'); 'aishell guard' lists what changed"
    )


def check_layout(cwd: str) -> Layout | None:
    """`locate`, raising GitRefused when the repository is redirected."""
    found = locate(cwd)
    if found is not None and found.problem:
        raise GitRefused(found.problem, hint=refusal_hint(found))
    return found


# ------------------------------------------------------------------------- running


def _spawn(
    cwd: str,
    args: tuple[str, ...],
    *,
    env: dict[str, str],
    input: str | None,
    timeout: float,
) -> GitResult:
    try:
        proc = subprocess.run(
            ["git", *GLOBAL_OPTIONS, "-C", cwd, *args],
            input=input.encode("utf-8", "surrogateescape") if input is not None else None,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            env=env,
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


def list_config(
    cwd: str, *, timeout: float = DEFAULT_TIMEOUT
) -> tuple[GitResult, list[gitconfig.Entry]]:
    """The effective configuration in `cwd`, with each entry's scope and file (reading
    configuration runs nothing it names)."""
    check_layout(cwd)
    env = environment()
    env.update(gitconfig.environment(gitconfig.FIXED_OVERRIDES))
    result = _spawn(
        cwd,
        ("config", "--list", "--show-scope", "--show-origin", "-z"),
        env=env,
        input=None,
        timeout=timeout,
    )
    return result, gitconfig.parse_listing(result.stdout) if result.ok else []


def run(
    cwd: str,
    *args: str,
    input: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> GitResult:
    """`git -C cwd <args>` with everything the repository could make it run turned off;
    output decoded losslessly (undecodable bytes as surrogates, so `os.fsencode` gives
    the original path back). Raises GitRefused for a redirected repository, and
    GitUnavailable when git is missing or does not finish within `timeout`."""
    check_layout(cwd)
    env = environment()
    if args[:1] and args[0] in CONFIG_ONLY:
        settings = list(gitconfig.FIXED_OVERRIDES)
    else:
        listed, entries = list_config(cwd, timeout=timeout)
        if not listed.ok and "not a git repository" not in listed.stderr:
            return listed  # a config git cannot read: the command would fail the same way
        settings = gitconfig.overrides(entries)
    env.update(gitconfig.environment(settings))
    return _spawn(cwd, args, env=env, input=input, timeout=timeout)


def config_file(path: str, *, timeout: float = DEFAULT_TIMEOUT) -> list[gitconfig.Entry]:
    """The settings in one config file, with what it includes (reading them runs
    nothing); empty when git cannot read it."""
    env = environment()
    env.update(gitconfig.environment(gitconfig.FIXED_OVERRIDES))
    try:
        result = _spawn(
            "/",
            ("config", "--file", path, "--includes", "--list", "--show-scope",
             "--show-origin", "-z"),
            env=env,
            input=None,
            timeout=timeout,
        )  # fmt: skip
    except GitUnavailable:
        return []
    return gitconfig.parse_listing(result.stdout) if result.ok else []


def executable_settings(path: str) -> list[tuple[gitconfig.Entry, str]]:
    """The settings in the config file `path` (and what it includes) that make git run
    a program, with why."""
    return gitconfig.executable(config_file(path))


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
            check_layout(cwd)
        except GitRefused:
            self._answer = (None, None)  # the launch's own checks say why
            return
        env = environment()
        env.update(gitconfig.environment(gitconfig.FIXED_OVERRIDES))
        try:
            self._proc = subprocess.Popen(
                ["git", *GLOBAL_OPTIONS, "-C", cwd, *IDENTITY_ARGS],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=env,
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
