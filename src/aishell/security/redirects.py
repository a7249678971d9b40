"""What the agent can still write in git directories that would send the user's git
elsewhere: moved aside when a session ends, and watched for while it runs.

The top of a git directory (the project's `.git`, a linked worktree's common
directory, a submodule's `.git/modules/<name>/`) must stay writable in the sandbox:
git makes its lock files there. Three kinds of file the agent can put there (or next
to it) make git on the host run or write what the agent chose:

- a `commondir` (`watched`, `misdirected`): git reads the repository's config and hooks
  from the directory it names (a `core.fsmonitor` there runs on the next `git status`).
  Git writes one only in a linked worktree's own directory,
  `<repository>/.git/worktrees/<name>/`, naming its repository;
- a symlink or hard link (`new_links`): git writes some of its files in place,
  following symlinks (`COMMIT_EDITMSG` on every commit, `FETCH_HEAD`, reflogs, rebase
  state), so `.git/COMMIT_EDITMSG -> ~/.bashrc` has the next `git commit` overwrite that
  file with a message the agent can leave in `SQUASH_MSG`. Git makes no links there;
- a nested repository the project's index holds as a gitlink (`recursed`): `git status`
  in the project runs git in it, with its config and hooks.

So aishell does not let them stay: each is renamed to `<name>.aishell-moved` in the
same directory (nothing is lost; `mv` restores it) when a session ends, before you get
your shell back (for a detached session, in the next aishell command in the project
once its container is gone), and the post-session notice names it; links and nested
repositories only when they were made or changed during the session (their change
time, which cannot be set back from inside). While a foreground session runs, the
`Tripwire` looks every `WATCH_INTERVAL` seconds for a `commondir` or a link at the top
of a git directory: the moment one appears it is moved aside and the session stopped.

With `git_internals: writable` none of this happens (the agent may edit the
repository's config, which is the same power); the notice still names what changed,
and aishell's own git refuses a redirected repository (`hostgit.layout_of`).
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Final

from aishell import hostgit
from aishell.security import gitwall, sweep
from aishell.tuples import NamedTuple

MOVED_SUFFIX: Final = ".aishell-moved"
MOVED_MARK: Final = "moved aside to"
REDIRECT_WHY: Final = "makes git read its config and hooks from another directory"
MAX_MODULE_DEPTH: Final = 6
WATCH_INTERVAL: Final = 0.2  # seconds between two looks while a session runs


class Moved(NamedTuple):
    path: str  # where the redirect was
    target: str  # what it named ("" when unreadable)
    moved_to: str  # where it is now ("" when it could not be moved)
    error: str = ""
    kind: str = "redirect"  # redirect (commondir) | link (symlink, hard link) | gitlink

    @property
    def why(self) -> str:
        return LINK_WHY if self.kind == "link" else REDIRECT_WHY


def gitdirs(root: str) -> list[str]:
    """The git directories of the project at `root` whose top the sandbox can write:
    its own (unless it is a linked worktree's, whose `commondir` is read-only), a
    linked worktree's common directory, and every submodule's (`modules/**`, and a
    checked-out submodule's own `.git` directory)."""
    layout = hostgit.locate(root)
    if layout is None or os.path.realpath(layout.top) != os.path.realpath(root):
        return []
    found: list[str] = []
    if not _is_worktree_gitdir(layout.gitdir):
        found.append(layout.gitdir)
    if layout.problem is None and os.path.realpath(layout.common) != os.path.realpath(
        layout.gitdir
    ):
        found.append(layout.common)
    for top in list(found):
        _modules(os.path.join(top, "modules"), found, 1)
    for rel in gitwall.submodule_paths(root):
        sub_git = os.path.normpath(os.path.join(root, rel, ".git"))
        if os.path.isdir(sub_git) and not os.path.islink(sub_git):
            real = os.path.realpath(sub_git)
            if real.startswith(os.path.realpath(root).rstrip("/") + "/"):
                found.append(sub_git)
    return list(dict.fromkeys(found))


def _is_worktree_gitdir(gitdir: str) -> bool:
    return os.path.basename(os.path.dirname(os.path.normpath(gitdir))) == "worktrees"


def _subdirs(directory: str) -> list[str]:
    """The subdirectories of `directory`, never through a symlink (one the agent made
    would send aishell to act on files outside the project)."""
    if os.path.islink(directory):
        return []
    try:
        with os.scandir(directory) as it:
            return sorted(e.path for e in it if e.is_dir(follow_symlinks=False))
    except OSError:
        return []


def _modules(directory: str, found: list[str], depth: int) -> None:
    if os.path.islink(directory):
        return
    try:
        with os.scandir(directory) as it:
            entries = [e.path for e in it if e.is_dir(follow_symlinks=False)]
    except OSError:
        return
    for entry in sorted(entries):
        if hostgit.looks_like_gitdir(entry):
            found.append(entry)
            if depth < MAX_MODULE_DEPTH:
                _modules(os.path.join(entry, "modules"), found, depth + 1)
        elif depth < MAX_MODULE_DEPTH:
            _modules(entry, found, depth + 1)


def watched(root: str) -> list[str]:
    """The `commondir` paths that must not exist in the project at `root`."""
    return [os.path.join(g, "commondir") for g in gitdirs(root)]


def misdirected(root: str) -> list[str]:
    """Linked worktrees' `commondir` files (`<gitdir>/worktrees/<name>/commondir`) that
    name anything but their own repository: one the agent added (existing ones are
    read-only in the sandbox) to send git, in a worktree it made, to its own config."""
    found = []
    for gitdir in gitdirs(root):
        for entry in _subdirs(os.path.join(gitdir, "worktrees")):
            path = os.path.join(entry, "commondir")
            if os.path.lexists(path) and hostgit.layout_of(entry, entry).problem:
                found.append(path)
    return found


def at_end(root: str) -> list[str]:
    """What a session's end moves aside in the project at `root`."""
    return [*present(watched(root)), *misdirected(root)]


def recursed(root: str, repositories: Iterable[str], since: float) -> list[str]:
    """The `.git` of nested repositories (among `repositories`, `.git` paths the sweep
    found running programs) that git in the project recurses into on its own (its
    index has a gitlink there: `git status` then runs git in it, with its config and
    hooks) and whose config, hooks or `.git` file changed after `since` (the session's
    start; a change time cannot be set back from the sandbox). Moving such a `.git`
    aside makes git see an empty submodule: it does not recurse."""
    real_root = os.path.realpath(root)
    candidates: dict[str, str] = {}
    for path in repositories:
        if os.path.basename(path) != ".git":
            continue  # a git directory elsewhere: git recurses into work trees only
        rel = os.path.relpath(os.path.realpath(os.path.dirname(path)), real_root)
        if rel != "." and not rel.startswith(".."):
            candidates[rel] = path
    if not candidates:
        return []
    linked = gitlinks(root, sorted(candidates))
    return [candidates[rel] for rel in sorted(linked) if _changed_since(candidates[rel], since)]


def gitlinks(root: str, paths: Sequence[str]) -> set[str]:
    """Which of `paths` (relative to `root`) the index of the repository at `root` holds
    as gitlinks (mode 160000), asked through aishell's own git (which runs nothing)."""
    from aishell.errors import AishellError

    try:
        result = hostgit.run(
            root, "ls-files", "--stage", "-z", "--", *(f":(literal){p}" for p in paths)
        )
    except AishellError:
        return set()
    if not result.ok:
        return set()
    found = set()
    for record in result.stdout.split("\0"):
        meta, _, path = record.partition("\t")
        if meta.startswith("160000 "):
            found.add(path)
    return found


def _changed_since(dotgit: str, since: float) -> bool:
    files = []
    gitdir = dotgit
    if not os.path.isdir(dotgit):
        files.append(dotgit)
        named = sweep.gitfile_target(dotgit)
        if named is None:
            return True
        gitdir = named
    files += [os.path.join(gitdir, n) for n in ("config", "config.worktree", "commondir")]
    hooks = os.path.join(gitdir, "hooks")
    try:
        with os.scandir(hooks) as it:
            files += [e.path for e in it]
    except OSError:
        pass
    files.append(hooks)
    for path in files:
        try:
            if os.lstat(path).st_ctime >= since:
                return True
        except OSError:
            continue
    return False


def links_at_end(root: str, since: float) -> list[Moved]:
    """Move aside the symlinks and hard links made in the project's git directories
    after `since` (the session's start)."""
    return [move_aside(p, "link") for p in new_links(link_dirs(root), since)]


CLOCK_SLACK: Final = 2.0  # seconds: file times may be coarser than time.time()


def session_end(root: str, started: float) -> list[Moved]:
    """What a session that began at `started` (0: unknown) leaves behind, moved aside:
    `commondir` redirects, and the links made in git directories since it began."""
    moved = neutralise(at_end(root))
    if started:
        moved += links_at_end(root, started - CLOCK_SLACK)
    return moved


def present(paths: Iterable[str]) -> list[str]:
    return [p for p in paths if os.path.lexists(p)]


def _target(path: str) -> str:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        try:
            return "symlink to " + os.readlink(path)
        except OSError:
            return ""
    try:
        data = os.read(fd, 4096)
    except OSError:
        return ""
    finally:
        os.close(fd)
    line = data.decode("utf-8", "replace").splitlines()[0].strip() if data else ""
    return os.path.normpath(os.path.join(os.path.dirname(path), line)) if line else ""


def watcher(root: str, since: float) -> Callable[[], list[Moved]] | None:
    """What the tripwire looks at for the project at `root` while a session that began
    at `since` runs: a `commondir` redirect, a new symlink or hard link at the top of a
    git directory. None when there is no repository."""
    paths = watched(root)
    directories = link_dirs(root)
    if not paths and not directories:
        return None

    def check() -> list[Moved]:
        return [
            *neutralise(paths),
            *(move_aside(p, "link") for p in new_links(directories, since, deep=False)),
        ]

    return check


def move_aside(path: str, kind: str = "redirect") -> Moved:
    """Rename the redirect at `path` to `<path>.aishell-moved` (or `-2`, `-3`, ...), in
    the same directory: git no longer sees it and nothing is lost. The rename acts on
    the name itself (a symlink is moved, not followed)."""
    if kind == "link":
        try:
            target = os.readlink(path)
        except OSError:
            target = ""
    else:
        target = _target(path) if os.path.basename(path) == "commondir" else ""
    for n in range(1, 100):
        new = path + MOVED_SUFFIX + (f"-{n}" if n > 1 else "")
        if os.path.lexists(new):
            continue
        try:
            _rename(path, new)
        except FileNotFoundError:
            return Moved(path, target, "", "it went away", kind)
        except OSError as exc:
            return Moved(path, target, "", exc.strerror or str(exc), kind)
        return Moved(path, target, new, "", kind)
    return Moved(path, target, "", "too many moved copies already", kind)


def _rename(path: str, new: str) -> None:
    """`os.rename`; when the directory is yours but not writable (the agent, which runs
    as you, can `chmod a-w .git` to keep its plant), it is made writable for you first
    (git needs it so anyway)."""
    try:
        os.rename(path, new)
    except PermissionError:
        directory = os.path.dirname(path) or "."
        st = os.lstat(directory)
        if st.st_uid != os.geteuid() or st.st_mode & 0o300 == 0o300:
            raise
        os.chmod(directory, (st.st_mode & 0o7777) | 0o700)
        os.rename(path, new)


def neutralise(paths: Iterable[str]) -> list[Moved]:
    """Move aside every redirect in `paths` that exists."""
    return [move_aside(p) for p in present(paths)]


def describe(moved: Moved) -> str:
    """The detail of the post-session notice's line."""
    if moved.kind == "link":
        where = f"a symlink to {moved.target}; " if moved.target else "a hard link; "
    else:
        where = f"points to {moved.target}; " if moved.target else ""
    if moved.moved_to:
        return f"{where}{MOVED_MARK} {moved.moved_to} (restore: mv {moved.moved_to} {moved.path})"
    return f"{where}could not be moved aside ({moved.error}): remove it: rm {moved.path}"


# ------------------------------------------------------------ links git writes through

# Under these, git writes files in place (reflogs appended, todo lists, rerere
# records): a symlink the agent puts there is written through. In `objects/` git only
# creates new files, but in its subdirectories, so those (one level) must not be
# symlinks either. (`hooks/`, `info/` are read-only; `modules/`, `worktrees/` hold git
# directories of their own, looked at as such.)
WRITTEN_DIRS: Final = frozenset({"logs", "refs", "rr-cache", "sequencer", "rebase-merge",
                                 "rebase-apply"})  # fmt: skip
MAX_LINK_ENTRIES: Final = 200_000

LINK_WHY: Final = (
    "git on this machine writes through it: a symlink (or hard link) the sandbox put in a "
    "git directory; your next git command there would write to the file it names "
    "(COMMIT_EDITMSG: your commit message, or one the agent left in SQUASH_MSG)"
)


def link_dirs(root: str) -> list[str]:
    """The git directories whose files git on the host writes in place: those of
    `gitdirs`, the project's own linked worktree directory, and every linked
    worktree's directory in them (`worktrees/<name>/`: its HEAD, index, logs,
    COMMIT_EDITMSG)."""
    found = gitdirs(root)
    layout = hostgit.locate(root)
    if found and layout is not None and layout.gitdir not in found:
        found.insert(0, layout.gitdir)
    for gitdir in list(found):
        found += _subdirs(os.path.join(gitdir, "worktrees"))
    return list(dict.fromkeys(found))


def _suspect(st: os.stat_result, since: float) -> bool:
    """A symlink, or a regular file with other names, made or changed after `since`."""
    if st.st_ctime < since:
        return False
    return stat.S_ISLNK(st.st_mode) or (stat.S_ISREG(st.st_mode) and st.st_nlink > 1)


def new_links(directories: Sequence[str], since: float, *, deep: bool = True) -> list[str]:
    """Symlinks and hard-linked files made after `since` in the git `directories`: at
    their top and (`deep`) in the trees git writes in place (`WRITTEN_DIRS`). Git
    itself makes neither there."""
    found: list[str] = []
    budget = [MAX_LINK_ENTRIES]
    for gitdir in directories:
        for entry in _entries(gitdir, budget):
            if MOVED_SUFFIX in entry.name:
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if _suspect(st, since):
                found.append(entry.path)
            elif deep and stat.S_ISDIR(st.st_mode) and entry.name in WRITTEN_DIRS:
                _walk(entry.path, since, found, budget)
            elif deep and stat.S_ISDIR(st.st_mode) and entry.name == "objects":
                for sub in _entries(entry.path, budget):
                    try:
                        if MOVED_SUFFIX not in sub.name and _suspect(
                            sub.stat(follow_symlinks=False), since
                        ):
                            found.append(sub.path)
                    except OSError:
                        continue
    return found


def _entries(directory: str, budget: list[int]) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(directory) as it:
            entries = list(it)
    except OSError:
        return []
    budget[0] -= len(entries)
    return entries


def _walk(directory: str, since: float, found: list[str], budget: list[int]) -> None:
    stack = [directory]
    while stack and budget[0] > 0:
        for entry in _entries(stack.pop(), budget):
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if _suspect(st, since) and MOVED_SUFFIX not in entry.name:
                found.append(entry.path)
            elif stat.S_ISDIR(st.st_mode):
                stack.append(entry.path)


class Tripwire:
    """Call `check` every `interval` seconds while a session runs; once it moves
    something aside, call `trip` (which stops the session) and stop watching."""

    def __init__(
        self,
        check: Callable[[], list[Moved]] | None,
        trip: Callable[[], None],
        interval: float = WATCH_INTERVAL,
    ) -> None:
        self.check = check
        self.trip = trip
        self.interval = interval
        self.moved: list[Moved] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Tripwire:
        if self.check is not None:
            self._thread = threading.Thread(target=self._watch, name="tripwire", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def tripped(self) -> bool:
        return bool(self.moved)

    def _watch(self) -> None:
        assert self.check is not None
        while not self._stop.wait(self.interval):
            found = self.check()
            if found:
                self.moved = found
                # (What the agent writes again before its container is gone is moved
                # aside when the session ends.)
                self.trip()
                return
