"""Git worktrees: what a linked worktree needs mounted, and `--worktree[=BRANCH]`.

A linked worktree's `.git` is a file (`gitdir: <repo>/.git/worktrees/<name>`); the
objects and refs a commit needs live in the repository's *common* git directory,
outside the worktree. `git_dir_binds` finds it by reading that file and the
`commondir` file next to it (no git subprocess: launches call it only when `.git`
is a file), and checks that they really are this worktree's before mounting.

`enter` creates (or reuses) the worktree for a branch, by default next to the
repository in `<repo-parent>/<repo-name>.worktrees/<branch>` (`/` in the branch
becomes `-`), and returns the directory to run in.

This module is on the launch path: keep its imports light.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterable, Sequence

from aishell import hostgit, output
from aishell.engine.run_args import Bind
from aishell.errors import AishellError, UsageError
from aishell.tuples import NamedTuple

DEFAULT_LOCATION = "../{repo}.worktrees"
LOCATION_ENV = "AISHELL_WORKTREE_DIR"
BRANCH_PREFIX = "aishell/"

# `git worktree add` checks the branch out: allow it more than a query's time.
CHECKOUT_TIMEOUT = 600.0


# ----------------------------------------------------------------------- mounts


def parse_gitfile(text: str) -> str | None:
    """The path of a `.git` file's `gitdir: <path>` line (None if there is none)."""
    for line in text.splitlines():
        if line.startswith("gitdir:"):
            path = line[len("gitdir:") :].strip()
            return path or None
    return None


def is_within(path: str, root: str) -> bool:
    """`path` is `root` or lies below it (whole path segments: /a/bc is not in /a/b)."""
    if path == root:
        return True
    prefix = root if root.endswith("/") else root + "/"
    return path.startswith(prefix)


def _first_line(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.readline(4096).rstrip("\r\n")
    except (OSError, UnicodeDecodeError):
        return None


class LinkedGitDir(NamedTuple):
    """A linked worktree's git directories: `*_path` as git inside the container finds
    them (lexically from the `.git` file, since the container has the same paths),
    `*_real` with symlinks resolved on the host."""

    gitdir_path: str
    gitdir_real: str
    common_path: str
    common_real: str


def read_linked_git_dir(root: str) -> LinkedGitDir | None:
    """The git directories named by `<root>/.git` when it is a linked worktree's `.git`
    file (a `commondir` file next to the gitdir); None otherwise (a `.git` directory,
    no `.git`, a submodule)."""
    dotgit = os.path.join(root, ".git")
    text = _first_line(dotgit) if os.path.isfile(dotgit) else None
    gitdir = parse_gitfile(text or "")
    if gitdir is None:
        return None
    gitdir_path = os.path.normpath(os.path.join(root, gitdir))
    gitdir_real = os.path.realpath(gitdir_path)
    common = _first_line(os.path.join(gitdir_real, "commondir"))
    if not common:
        return None
    return LinkedGitDir(
        gitdir_path=gitdir_path,
        gitdir_real=gitdir_real,
        common_path=os.path.normpath(os.path.join(gitdir_path, common)),
        common_real=os.path.realpath(os.path.join(gitdir_real, common)),
    )


def verify_linked(root: str, found: LinkedGitDir) -> str | None:
    """Why `found` must not be mounted (None: it is this worktree's repository).

    The `.git` file is in the project, which the agent can rewrite; pointing it
    elsewhere must not get any other directory mounted. So the gitdir must be
    `<common>/worktrees/<name>` of a real git directory, and its `gitdir` file,
    which only git on the host writes, must point back to this `.git` file (all
    compared with symlinks resolved)."""
    common = found.common_real
    if os.path.dirname(found.gitdir_real) != os.path.join(common, "worktrees"):
        return f"{found.gitdir_path} is not in the worktrees directory of {found.common_path}"
    if not (
        os.path.isfile(os.path.join(common, "HEAD"))
        and os.path.isdir(os.path.join(common, "objects"))
        and os.path.isdir(os.path.join(common, "refs"))
    ):
        return f"{found.common_path} is not a git directory"
    back = _first_line(os.path.join(found.gitdir_real, "gitdir"))
    here = os.path.realpath(os.path.join(root, ".git"))
    if not back or os.path.realpath(os.path.join(found.gitdir_real, back)) != here:
        return f"{found.gitdir_path} does not point back to {os.path.join(root, '.git')}"
    return None


def plan_binds(project_real: str, found: LinkedGitDir, taken: Iterable[str] = ()) -> list[Bind]:
    """Read-write binds at the same path for what lies outside the project: the common
    dir (it holds the gitdir too, unless symlinks place that elsewhere)."""
    binds: list[Bind] = []
    if not is_within(found.common_real, project_real):
        binds.append(Bind(found.common_real, found.common_path))
    if not is_within(found.gitdir_path, found.common_path) and not is_within(
        found.gitdir_real, project_real
    ):
        binds.append(Bind(found.gitdir_real, found.gitdir_path))
    taken = set(taken)
    return [b for b in binds if b.target not in taken]


def git_dir_binds(root: str, taken: Iterable[str] = ()) -> list[Bind]:
    """What a linked worktree at `root` needs mounted so that git works inside: the
    repository's common git directory, at its own path. Warns (and mounts nothing)
    when the `.git` file names a directory that is not this worktree's."""
    found = read_linked_git_dir(root)
    if found is None:
        return []
    problem = verify_linked(root, found)
    if problem:
        output.warn(
            f"{os.path.join(root, '.git')}: {problem}; the repository's git directory is "
            "not mounted, so git will not work inside (if the worktree was moved, run "
            "'git worktree repair' in the repository)"
        )
        return []
    return plan_binds(os.path.realpath(root), found, taken)


# ----------------------------------------------------------- worktree list (pure)


class Worktree(NamedTuple):
    path: str
    head: str | None = None  # commit id; None for a bare repository or an unborn branch
    branch: str | None = None  # full ref, e.g. refs/heads/feature; None when detached
    bare: bool = False
    detached: bool = False
    locked: bool = False
    prunable: bool = False

    @property
    def branch_name(self) -> str | None:
        if self.branch is None:
            return None
        return self.branch.removeprefix("refs/heads/")


def parse_porcelain(text: str) -> list[Worktree]:
    """`git worktree list --porcelain` output -> worktrees (the main one first)."""
    found: list[Worktree] = []
    fields: dict[str, str] = {}

    def flush() -> None:
        if "worktree" in fields:
            found.append(
                Worktree(
                    path=fields["worktree"],
                    head=fields.get("HEAD"),
                    branch=fields.get("branch"),
                    bare="bare" in fields,
                    detached="detached" in fields,
                    locked="locked" in fields,
                    prunable="prunable" in fields,
                )
            )
        fields.clear()

    for line in text.splitlines():
        if not line.strip():
            flush()
            continue
        key, _, value = line.partition(" ")
        if key == "worktree" and "worktree" in fields:
            flush()
        fields[key] = value
    flush()
    return found


def owner_of(path: str, worktrees: Sequence[Worktree]) -> Worktree | None:
    """The worktree `path` (canonical) lies in; the innermost one when they nest."""
    best: Worktree | None = None
    best_len = -1
    for wt in worktrees:
        if wt.bare:
            continue
        real = os.path.realpath(wt.path)
        if is_within(path, real) and len(real) > best_len:
            best, best_len = wt, len(real)
    return best


def for_branch(worktrees: Sequence[Worktree], branch: str) -> Worktree | None:
    ref = "refs/heads/" + branch
    for wt in worktrees:
        if wt.branch == ref:
            return wt
    return None


# ------------------------------------------------------------- naming (pure)

_FORBIDDEN = set(" ~^:?*[\\\x7f")


def check_branch_name(name: str) -> None:
    """Reject names git would refuse as a branch (git's check-ref-format rules), with
    a clear message before anything is created."""
    problem = None
    if not name:
        problem = "it is empty"
    elif name.startswith("-"):
        problem = "it starts with '-'"
    elif name == "@" or "@{" in name:
        problem = "it contains '@{' or is '@'"
    elif any(ch in _FORBIDDEN or ord(ch) < 32 for ch in name):
        problem = "it contains a space, a control character or one of ~ ^ : ? * [ \\"
    elif ".." in name or "//" in name or name.endswith(("/", ".")) or name.startswith("/"):
        problem = "it contains '..' or '//', or starts or ends with '/', or ends with '.'"
    elif any(part.startswith(".") or part.endswith(".lock") for part in name.split("/")):
        problem = "a part of it starts with '.' or ends with '.lock'"
    if problem:
        raise UsageError(
            f"invalid branch name {name!r} for --worktree: {problem}",
            hint="use e.g. --worktree=feature/login",
        )


def default_branch(name: str) -> str:
    """The branch `--worktree` without a value uses: `aishell/<container name>`."""
    return BRANCH_PREFIX + name


def branch_slug(branch: str) -> str:
    """The directory name of a branch's worktree: `/` becomes `-`."""
    return branch.replace("/", "-")


def repo_name(main: Worktree) -> str:
    base = os.path.basename(main.path.rstrip("/")) or "repo"
    if main.bare and base.endswith(".git") and len(base) > 4:
        base = base[:-4]
    return base


def worktrees_dir(main: Worktree, setting: str | None, home: str | None = None) -> str:
    """The directory that holds this repository's worktrees: `setting` (AISHELL_WORKTREE_DIR)
    or `../{repo}.worktrees`; `{repo}` is the repository's directory name, `~` is the
    home directory, a relative path is relative to the repository's directory."""
    template = setting or DEFAULT_LOCATION
    template = template.replace("{repo}", repo_name(main))
    if template == "~" or template.startswith("~/"):
        template = (home or os.path.expanduser("~")) + template[1:]
    return os.path.normpath(os.path.join(main.path, template))


def worktree_path(
    directory: str, branch: str, exists: Callable[[str], bool] = os.path.lexists
) -> str:
    """`<directory>/<slug>`, or `<slug>-2`, `-3`, … when that path is taken."""
    base = os.path.join(directory, branch_slug(branch))
    candidate, n = base, 1
    while exists(candidate):
        n += 1
        candidate = f"{base}-{n}"
    return candidate


# ----------------------------------------------------------------------- git


def list_worktrees(cwd: str, *, purpose: str) -> list[Worktree]:
    result = hostgit.run(cwd, "worktree", "list", "--porcelain")
    if not result.ok:
        if "not a git repository" in result.stderr:
            raise AishellError(
                f"{cwd} is not inside a git repository",
                hint=f"{purpose} works in a git repository (or one of its worktrees)",
            )
        raise AishellError(
            f"git worktree list failed: {result.message}", details=result.stderr.strip() or None
        )
    worktrees = parse_porcelain(result.stdout)
    if not worktrees:
        raise AishellError(f"git listed no worktrees for {cwd}")
    return worktrees


def _usable(wt: Worktree | None) -> bool:
    return wt is not None and not wt.bare and os.path.isdir(wt.path)


def _lock_repository(main: Worktree) -> int | None:
    """An exclusive lock on the repository's git directory (a directory fd with flock),
    so that concurrent launches do not create the same worktree twice."""
    directory = main.path if main.bare else os.path.join(main.path, ".git")
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError:
        os.close(fd)
        return None
    return fd


def enter(branch: str | None, name: str, cwd: str) -> str:
    """Create (or reuse) the worktree for `branch` (default `aishell/<name>`) of the
    repository around `cwd`; the directory to run in (the same subdirectory when it
    exists there, else the worktree's top)."""
    branch = branch or default_branch(name)
    check_branch_name(branch)
    worktrees = list_worktrees(cwd, purpose="--worktree")
    main = worktrees[0]
    here = owner_of(os.path.realpath(cwd), worktrees)
    rel = os.path.relpath(os.path.realpath(cwd), os.path.realpath(here.path)) if here else "."

    existing = for_branch(worktrees, branch)
    if not _usable(existing):
        lock = _lock_repository(main)
        try:
            existing = for_branch(list_worktrees(cwd, purpose="--worktree"), branch)
            if not _usable(existing):
                path = _create(main, here.path if here else cwd, branch, existing is not None)
                return _same_subdir(path, rel)
        finally:
            if lock is not None:
                os.close(lock)
    assert existing is not None
    output.info(f"Using worktree {existing.path} (branch {branch})")
    return _same_subdir(existing.path, rel)


def _create(main: Worktree, start: str, branch: str, stale: bool) -> str:
    """`git worktree add` for `branch` (created from the commit checked out in `start`
    when it does not exist yet); the new worktree's path."""
    if stale:  # registered, but its directory is gone
        hostgit.run(main.path, "worktree", "prune")
    directory = worktrees_dir(main, os.environ.get(LOCATION_ENV))
    path = worktree_path(directory, branch)
    known = hostgit.run(main.path, "show-ref", "--verify", "--quiet", "refs/heads/" + branch).ok
    args = ["worktree", "add", path, branch] if known else ["worktree", "add", "-b", branch, path]
    result = hostgit.run(start, *args, timeout=CHECKOUT_TIMEOUT)
    if not result.ok:
        hint = None
        if "invalid reference" in result.stderr or "not a valid object" in result.stderr:
            hint = "the repository has no commit yet; commit something first"
        raise AishellError(
            f"creating the worktree for {branch} failed: {result.message}",
            hint=hint,
            details=result.stderr.strip() or None,
        )
    how = "existing branch" if known else "new branch"
    output.info(f"Created worktree {path} ({how} {branch})")
    return path


def _same_subdir(path: str, rel: str) -> str:
    """`path/rel` when that directory exists (and `rel` stays inside), else `path`."""
    if rel in (".", "") or rel == ".." or rel.startswith("../"):
        return path
    target = os.path.normpath(os.path.join(path, rel))
    return target if os.path.isdir(target) else path
