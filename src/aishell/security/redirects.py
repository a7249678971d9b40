"""`commondir` redirects at the top of a git directory: moved aside, and watched for.

A `commondir` file makes git read a repository's config, hooks and objects from the
directory it names. Git writes one only in a linked worktree's own directory,
`<repository>/.git/worktrees/<name>/` (read-only in the sandbox, `gitwall`). The top of
every other git directory (the project's `.git`, a linked worktree's common directory,
a submodule's `.git/modules/<name>/`) must stay writable, because git makes its lock
files there, so the agent can write one: your git would then run whatever config that
other directory holds (a `core.fsmonitor` on the next `git status`).

So aishell does not let such a file stay:

- `neutralise` renames each one to `commondir.aishell-moved` (same directory: nothing
  is lost, `mv` restores it) when a session ends, before you get your shell back (for a
  detached session, in the next aishell command in the project once its container is
  gone), and the post-session notice names it;
- `Tripwire` watches for one while a foreground session runs (a `git status` in
  another terminal would follow it): the moment one appears it is moved aside and the
  session is stopped, since no tool writes one there.

With `git_internals: writable` neither happens (the agent may edit the repository's
config, which is the same power); the notice still names the file, and aishell's own
git refuses the repository (`hostgit.layout_of`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Final, NamedTuple

from aishell import hostgit
from aishell.security import gitwall

MOVED_SUFFIX: Final = ".aishell-moved"
MOVED_MARK: Final = "moved aside to"
MAX_MODULE_DEPTH: Final = 6
WATCH_INTERVAL: Final = 0.2  # seconds between two looks while a session runs


class Moved(NamedTuple):
    path: str  # where the redirect was
    target: str  # what it named ("" when unreadable)
    moved_to: str  # where it is now ("" when it could not be moved)
    error: str = ""


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


def _modules(directory: str, found: list[str], depth: int) -> None:
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
        try:
            with os.scandir(os.path.join(gitdir, "worktrees")) as it:
                entries = sorted(e.path for e in it if e.is_dir(follow_symlinks=False))
        except OSError:
            continue
        for entry in entries:
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
        named = _gitfile(dotgit)
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


def _gitfile(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as fh:
            line = fh.readline(4096).strip()
    except OSError:
        return None
    if not line.startswith("gitdir:") or not line[7:].strip():
        return None
    return os.path.normpath(os.path.join(os.path.dirname(path), line[7:].strip()))


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


def move_aside(path: str) -> Moved:
    """Rename the redirect at `path` to `<path>.aishell-moved` (or `-2`, `-3`, ...), in
    the same directory: git no longer sees it and nothing is lost. The rename acts on
    the name itself (a symlink is moved, not followed)."""
    target = _target(path) if os.path.basename(path) == "commondir" else ""
    for n in range(1, 100):
        new = path + MOVED_SUFFIX + (f"-{n}" if n > 1 else "")
        if os.path.lexists(new):
            continue
        try:
            _rename(path, new)
        except FileNotFoundError:
            return Moved(path, target, "", "it went away")
        except OSError as exc:
            return Moved(path, target, "", exc.strerror or str(exc))
        return Moved(path, target, new)
    return Moved(path, target, "", "too many moved copies already")


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
    where = f"points to {moved.target}; " if moved.target else ""
    if moved.moved_to:
        return f"{where}{MOVED_MARK} {moved.moved_to} (restore: mv {moved.moved_to} {moved.path})"
    return f"{where}could not be moved aside ({moved.error}): remove it: rm {moved.path}"


class Tripwire:
    """Watch `paths` while a session runs; when one appears, move it aside and call
    `trip` once (which stops the session)."""

    def __init__(
        self, paths: Sequence[str], trip: Callable[[], None], interval: float = WATCH_INTERVAL
    ) -> None:
        self.paths = tuple(paths)
        self.trip = trip
        self.interval = interval
        self.moved: list[Moved] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Tripwire:
        if self.paths:
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
        while not self._stop.wait(self.interval):
            found = neutralise(self.paths)
            if found:
                self.moved = found
                # (What the agent writes again before its container is gone is moved
                # aside when the session ends.)
                self.trip()
                return
