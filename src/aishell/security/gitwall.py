"""Git internals read-only inside the sandbox.

Git on the host runs what a repository's `config` and `hooks/` name, and reads
`info/attributes` to choose filters; a `.git` that the agent could rename away and
replace would carry its own. So, unless `git_internals: writable`, a launch mounts
over them, at the same paths:

- `.git` itself onto itself (read-write): a mount point, so it cannot be renamed,
  removed or replaced; the same for `.git/worktrees`, `.git/modules` and each git
  directory in them (a directory that merely *contains* a mount point can be moved);
- read-only: `config`, `config.worktree`, `hooks/`, `info/` of the repository's git
  directory, of every submodule's (`.git/modules/**`, and checked-out submodules with
  a `.git` directory of their own, as `.gitmodules` lists them), and of a linked
  worktree's common directory; each linked worktree's `commondir`, `gitdir` and
  `config.worktree` (`.git/worktrees/*/`); a `.git` *file* (linked worktree,
  submodule), so it cannot be pointed elsewhere.

Everything else in `.git` stays writable (git creates lock files at its top, and
objects, refs, the index, logs and rebase state are ordinary work), so `git add`,
`commit`, `checkout -b`, `rebase`, `stash` work inside; a local `git config` write
fails with git's own error. What the agent can still *create* there: a `commondir`
redirect is moved aside when the session ends and stops a session that writes one
(`security/redirects.py`); rebase `exec` lines, alternates, a new submodule git
directory are reported after the session (`security/guard.py`); aishell's own git
refuses a redirected repository (`hostgit.locate`).

Only paths that exist are mounted over (the engine would create missing targets on
the host, and an empty `commondir` or `config` breaks git): a missing `hooks/` or
`info/` is created on the host first; other missing files are left alone. A path
that is a symlink is followed only when it stays inside the project (or the mounted
common directory); one pointing out of it stops the launch, since mounting it would
expose whatever it names.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence

from aishell import hostgit
from aishell.engine.run_args import Bind
from aishell.errors import AishellError
from aishell.tuples import NamedTuple

READ_ONLY_FILES = ("config", "config.worktree")
READ_ONLY_DIRS = ("hooks", "info")
CREATED_DIRS = ("hooks", "info")
LINK_FILES = ("commondir", "gitdir", "config.worktree")  # in .git/worktrees/<name>/
MAX_MODULE_DEPTH = 6


class View(NamedTuple):
    """A host directory (symlinks resolved) and where the container sees it."""

    real: str
    target: str


class Wall(NamedTuple):
    binds: tuple[Bind, ...]  # parents before what they hold
    created: tuple[str, ...]  # directories to create on the host before the launch
    created_files: tuple[str, ...] = ()  # empty files to create (config.worktree)


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _mapped(real: str, view: View) -> str:
    rel = os.path.relpath(real, view.real)
    return view.target if rel == "." else os.path.join(view.target, rel)


class _Planner:
    def __init__(self, views: Sequence[View], taken: Iterable[str], also: Sequence[View]) -> None:
        self.views = sorted(views, key=lambda v: len(v.real), reverse=True)
        self.also = list(also)  # other read-write mounts that show the same files
        self.taken = set(taken)
        self.binds: list[Bind] = []
        self.created: list[str] = []
        self.created_files: list[str] = []

    def target_of(self, path: str) -> str:
        """The container path of host `path`: resolved, it must lie in a view."""
        real = os.path.realpath(path)
        for view in self.views:
            if _within(real, view.real):
                return _mapped(real, view)
        raise AishellError(
            f"{path} leads to {real}, outside the project: aishell will not mount it "
            "(it would expose that directory to the sandbox)",
            hint="replace the symlink with the file or directory itself, or set "
            "'git_internals: writable' in your config",
        )

    def _add(self, real: str, primary: str, readonly: bool) -> None:
        """Bind `real` at `primary`, and wherever another read-write mount shows it."""
        targets = [primary, *(_mapped(real, v) for v in self.also if _within(real, v.real))]
        for target in targets:
            if target not in self.taken:
                self.taken.add(target)
                self.binds.append(Bind(real, target, readonly))

    def bind(self, path: str, *, readonly: bool) -> None:
        self._add(os.path.realpath(path), self.target_of(path), readonly)

    def pin(self, directory: str) -> None:
        """Bind a directory onto itself (read-write): it becomes a mount point."""
        if os.path.isdir(directory):
            self.bind(directory, readonly=False)

    def gitdir(self, gitdir: str, depth: int = 0) -> None:
        """Protect one git directory (a repository's, a submodule's, a common dir)."""
        self.pin(gitdir)
        per_worktree = worktree_config_enabled(gitdir)
        if per_worktree:
            self.need_file(os.path.join(gitdir, "config.worktree"))
        for name in READ_ONLY_FILES:
            path = os.path.join(gitdir, name)
            if os.path.isfile(path):
                self.bind(path, readonly=True)
            elif path in self.created_files:
                self.bind_created(path)
        for name in READ_ONLY_DIRS:
            path = os.path.join(gitdir, name)
            if not os.path.lexists(path) and name in CREATED_DIRS:
                self.created.append(path)
                self.bind_created(path)
            elif os.path.isdir(path):
                self.bind(path, readonly=True)
        worktrees = os.path.join(gitdir, "worktrees")
        if os.path.isdir(worktrees):
            self.pin(worktrees)
            for entry in sorted(_subdirs(worktrees)):
                self.pin(entry)
                if per_worktree:
                    self.need_file(os.path.join(entry, "config.worktree"))
                for name in LINK_FILES:
                    path = os.path.join(entry, name)
                    if os.path.isfile(path):
                        self.bind(path, readonly=True)
                    elif path in self.created_files:
                        self.bind_created(path)
        modules = os.path.join(gitdir, "modules")
        if os.path.isdir(modules) and depth < MAX_MODULE_DEPTH:
            self.modules(modules, depth + 1)

    def need_file(self, path: str) -> None:
        """A file git reads when it exists: created empty (valid, and harmless) when
        missing, so that it can be mounted read-only."""
        if not os.path.lexists(path):
            self.created_files.append(path)

    def bind_created(self, path: str) -> None:
        """A directory that will exist once `created` is made (its parent is real)."""
        target = os.path.join(self.target_of(os.path.dirname(path)), os.path.basename(path))
        real = os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))
        self._add(real, target, True)

    def modules(self, directory: str, depth: int) -> None:
        """`.git/modules/...`: submodule git directories (names may contain '/')."""
        self.pin(directory)
        for entry in sorted(_subdirs(directory)):
            if hostgit.looks_like_gitdir(entry):
                self.gitdir(entry, depth)
            elif depth < MAX_MODULE_DEPTH:
                self.modules(entry, depth + 1)


def _subdirs(directory: str) -> list[str]:
    try:
        with os.scandir(directory) as entries:
            return [e.path for e in entries if e.is_dir(follow_symlinks=False)]
    except OSError:
        return []


_GITMODULES_PATH = r"(?m)^\s*path\s*=\s*(.+?)\s*$"


def submodule_paths(root: str) -> list[str]:
    """The paths `.gitmodules` lists (untrusted: the callers keep them in the project)."""
    try:
        with open(os.path.join(root, ".gitmodules"), encoding="utf-8", errors="replace") as fh:
            text = fh.read(1 << 20)
    except OSError:
        return []
    found = []
    for raw in re.findall(_GITMODULES_PATH, text):
        path = raw.strip('"')
        if path and not os.path.isabs(path):
            found.append(path)
    return found


def plan(
    root: str,
    *,
    linked: Sequence[Bind] = (),
    taken: Iterable[str] = (),
    other_mounts: Sequence[Bind] = (),
) -> Wall:
    """The binds that make the git internals of the project at `root` read-only.

    `linked`: the binds `worktrees.git_dir_binds` made for a linked worktree's git
    directories outside the project (the container sees them at their targets).
    `other_mounts`: the configured mounts; a read-write one that also shows the
    repository (say, its parent directory at another path) gets the same binds there.
    Raises AishellError for a redirected repository or a symlink out of the project."""
    views = [View(os.path.realpath(root), root)]
    views += [View(os.path.realpath(b.source), b.target) for b in linked]
    also = [View(os.path.realpath(b.source), b.target) for b in other_mounts if not b.readonly]
    planner = _Planner(views, [*taken, root, *(b.target for b in linked)], also)
    dotgit = os.path.join(root, ".git")
    if os.path.islink(dotgit):
        real = os.path.realpath(dotgit)
        if not any(_within(real, v.real) for v in views):
            return Wall((), ())  # not mounted: out of the agent's reach
    layout = hostgit.locate(root)
    if layout is None or os.path.realpath(layout.top) != os.path.realpath(root):
        return Wall((), ())  # no repository here (one above the project is not mounted)
    if layout.problem:
        raise AishellError(layout.problem, hint=hostgit.refusal_hint(layout))
    if os.path.isfile(dotgit):
        planner.bind(dotgit, readonly=True)
        if not any(_within(os.path.realpath(layout.common), v.real) for v in views):
            return _finish(planner)  # the repository's git directory is not mounted
        planner.gitdir(layout.common)  # (its worktrees/<name>/ holds this one's links)
    else:
        planner.gitdir(layout.gitdir)  # `.git`, or the project itself when it is bare
    for rel in submodule_paths(root):
        sub = os.path.normpath(os.path.join(root, rel))
        if not _within(os.path.realpath(sub), os.path.realpath(root)):
            continue
        sub_git = os.path.join(sub, ".git")
        if os.path.islink(sub_git) or not os.path.lexists(sub_git):
            continue
        if os.path.isfile(sub_git):
            planner.bind(sub_git, readonly=True)
        elif os.path.isdir(sub_git):
            sub_layout = hostgit.layout_of(sub, sub_git)
            if sub_layout.problem:
                raise AishellError(sub_layout.problem, hint=hostgit.refusal_hint(sub_layout))
            planner.gitdir(sub_git)
    return _finish(planner)


def _finish(planner: _Planner) -> Wall:
    binds = sorted(planner.binds, key=lambda b: b.target.count("/"))
    return Wall(tuple(binds), tuple(planner.created), tuple(planner.created_files))


def worktree_config_enabled(gitdir: str) -> bool:
    """`extensions.worktreeConfig` is on in this git directory's config: git then reads
    `config.worktree` (at the top, and in each `worktrees/<name>/`) when it exists."""
    path = os.path.join(gitdir, "config")
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            if "worktreeconfig" not in fh.read(1 << 20).lower():
                return False  # (the cheap test first: no git call on the launch path)
    except OSError:
        return False
    for entry in hostgit.config_file(path):
        if entry.key.lower() == "extensions.worktreeconfig":
            return (entry.value or "true").strip().lower() in ("true", "yes", "on", "1")
    return False


def prepare(wall: Wall) -> None:
    """Create the missing directories and empty files the wall mounts over (on the host)."""
    for path in wall.created_files:
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644))
        except FileExistsError:
            pass
        except OSError as exc:
            raise AishellError(
                f"cannot create {path}: {exc.strerror}",
                hint="fix the permissions of the repository's .git directory",
            ) from exc
    for path in wall.created:
        try:
            os.mkdir(path, 0o755)
        except FileExistsError:
            pass
        except OSError as exc:
            raise AishellError(
                f"cannot create {path}: {exc.strerror}",
                hint="fix the permissions of the repository's .git directory",
            ) from exc
