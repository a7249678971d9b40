"""One walk of the project (and the other writable mounts) after a session, and in
`aishell check`, looking for what no sandbox should leave behind:

- host-root artifacts: set-user-ID or set-group-ID files, device nodes, files with
  file capabilities, and (when you are not root) files owned by root. The sandbox
  cannot make the first three (`security/hardening.py`); the walk still reports any it
  finds, also ones that were there before;
- git repositories other than the project's own (a `.git` anywhere below the root, or
  a directory that is a git directory itself), each with what in its config or hooks
  makes git run a program. Git runs those when you work in that directory, and git
  in the project runs a submodule's when it recurses into it.

The walk never follows symlinks and descends into everything (nothing is pruned: a
set-user-ID file in `node_modules` is as dangerous as one anywhere). It stops after
`MAX_ENTRIES` entries and says so.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Sequence
from typing import Final

from aishell import hostgit
from aishell.hashing import sha256_hex
from aishell.tuples import NamedTuple

MAX_ENTRIES: Final = 1_000_000
MAX_REPORTED: Final = 50  # artifacts and repositories kept (the count goes on)
CAPABILITY_XATTR: Final = "security.capability"


class Artifact(NamedTuple):
    path: str  # absolute
    what: str  # e.g. "set-user-ID file owned by root"
    fingerprint: str  # changes when the file does (for acknowledging)


class Repository(NamedTuple):
    path: str  # the `.git` (or the git directory itself), absolute
    reasons: tuple[str, ...]  # what runs: "core.fsmonitor", "hook pre-commit", ...
    fingerprint: str


class SweepResult(NamedTuple):
    artifacts: tuple[Artifact, ...] = ()
    artifact_count: int = 0
    repositories: tuple[Repository, ...] = ()  # only those whose config or hooks run something
    entries: int = 0
    truncated: bool = False


def describe(st: os.stat_result, host_uid: int) -> str | None:
    """What is wrong with a file of this status (None: nothing)."""
    mode = st.st_mode
    owner = "root" if st.st_uid == 0 else f"UID {st.st_uid}"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        kind = "character" if stat.S_ISCHR(mode) else "block"
        major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
        if major == 0 and minor == 0 and stat.S_ISCHR(mode):
            return None  # an overlay whiteout: opens nothing
        return f"{kind} device node {major}:{minor} (gives raw access to a device)"
    if stat.S_ISREG(mode) and mode & (stat.S_ISUID | stat.S_ISGID):
        bits = " and ".join(
            name
            for bit, name in ((stat.S_ISUID, "set-user-ID"), (stat.S_ISGID, "set-group-ID"))
            if mode & bit
        )
        return f"{bits} file owned by {owner} (whoever runs it gets its owner's rights)"
    if st.st_uid == 0 and host_uid != 0:
        return "owned by root (you cannot change or remove it without root)"
    return None


def _fingerprint(path: str, st: os.stat_result) -> str:
    return f"{path}:{st.st_mode:o}:{st.st_uid}:{st.st_rdev}:{st.st_size}:{int(st.st_mtime)}"


def _has_capabilities(path: str) -> bool:
    try:
        return bool(os.getxattr(path, CAPABILITY_XATTR, follow_symlinks=False))
    except OSError:
        return False


def _is_gitdir_listing(names: set[str]) -> bool:
    return "HEAD" in names and "objects" in names and "refs" in names and "config" in names


class _Walk:
    def __init__(self, host_uid: int, skip: set[str], max_entries: int) -> None:
        self.host_uid = host_uid
        self.skip = skip
        self.max_entries = max_entries
        self.artifacts: list[Artifact] = []
        self.artifact_count = 0
        self.gitdirs: list[tuple[str, str]] = []  # (shown path, git directory)
        self.entries = 0
        self.truncated = False

    def note(self, path: str, what: str, st: os.stat_result) -> None:
        self.artifact_count += 1
        if len(self.artifacts) < MAX_REPORTED:
            self.artifacts.append(Artifact(path, what, _fingerprint(path, st)))

    def own(self, path: str) -> bool:
        real = os.path.realpath(path)
        return any(_within(real, own) for own in self.skip)

    def directory(self, directory: str) -> list[str]:
        """Look at one directory's entries; the subdirectories to walk next."""
        try:
            with os.scandir(directory) as it:
                listing = list(it)
        except OSError:
            return []
        if (
            _is_gitdir_listing({e.name for e in listing})
            and os.path.basename(directory) != ".git"
            and not self.own(directory)
        ):
            self.gitdirs.append((directory, directory))
        subdirs = []
        for entry in listing:
            self.entries += 1
            if self.entries > self.max_entries:
                self.truncated = True
                return []
            try:
                subdir = self.entry(entry)
            except OSError:
                continue
            if subdir:
                subdirs.append(entry.path)
        return subdirs

    def entry(self, entry: os.DirEntry[str]) -> bool:
        """Look at one entry; whether it is a directory to walk."""
        if entry.is_symlink():
            return False
        if entry.name == ".git" and not self.own(entry.path):
            named = entry.path if entry.is_dir() else gitfile_target(entry.path)
            if named:
                self.gitdirs.append((entry.path, named))
        st = entry.stat(follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            if st.st_uid == 0 and self.host_uid != 0:
                self.note(entry.path, ROOT_DIRECTORY, st)
            return True
        what = describe(st, self.host_uid)
        if (
            what is None
            and stat.S_ISREG(st.st_mode)
            and st.st_mode & 0o111
            and _has_capabilities(entry.path)
        ):
            what = "file with file capabilities (whoever runs it gets them)"
        if what is not None:
            self.note(entry.path, what, st)
        return False


ROOT_DIRECTORY: Final = (
    "directory owned by root (you cannot change or remove what is in it without root)"
)


def sweep(
    roots: Sequence[str],
    *,
    host_uid: int,
    skip_gitdirs: Iterable[str] = (),
    known: Iterable[str] = (),
    max_entries: int = MAX_ENTRIES,
) -> SweepResult:
    """Walk `roots`; `skip_gitdirs`: git directories not to report as repositories
    (the project's own, which the guard compares on its own); `known`: fingerprints of
    repositories not to report (acknowledged, or already pending)."""
    walk = _Walk(host_uid, {os.path.realpath(p) for p in skip_gitdirs}, max_entries)
    stack = [os.path.abspath(r) for r in roots if os.path.isdir(r)]
    seen: set[str] = set()
    while stack and not walk.truncated:
        directory = stack.pop()
        real = os.path.realpath(directory)
        if real not in seen:
            seen.add(real)
            stack += walk.directory(directory)
    known = set(known)
    repositories = [
        r for shown, gitdir in walk.gitdirs if (r := inspect_repository(shown, gitdir, known))
    ]
    return SweepResult(
        artifacts=tuple(walk.artifacts),
        artifact_count=walk.artifact_count,
        repositories=tuple(repositories[:MAX_REPORTED]),
        entries=walk.entries,
        truncated=walk.truncated,
    )


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def gitfile_target(path: str) -> str | None:
    """The git directory a `.git` file names (`gitdir: <path>`), or None."""
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as fh:
            line = fh.readline(4096).strip()
    except OSError:
        return None
    if not line.startswith("gitdir:"):
        return None
    named = line[len("gitdir:") :].strip()
    return os.path.normpath(os.path.join(os.path.dirname(path), named)) if named else None


def executable_hooks(hooks_dir: str) -> list[str]:
    """The hooks git would run from `hooks_dir` (executable files, not `*.sample`)."""
    found = []
    try:
        with os.scandir(hooks_dir) as entries:
            for entry in entries:
                try:
                    if (
                        not entry.name.endswith(".sample")
                        and entry.is_file()
                        and entry.stat().st_mode & 0o111
                    ):
                        found.append(entry.name)
                except OSError:
                    continue
    except OSError:
        return []
    return sorted(found)


def _digest_files(paths: Iterable[str]) -> str:
    parts = []
    for path in paths:
        parts.append(path.encode("utf-8", "surrogateescape") + b"\0")
        try:
            with open(path, "rb") as fh:
                parts.append(fh.read(1 << 20))
        except OSError:
            parts.append(b"-")
    return sha256_hex(b"".join(parts))[:16]


def _layout(gitdir: str) -> hostgit.Layout:
    return hostgit.layout_of(os.path.dirname(gitdir), gitdir)


def _config_files(layout: hostgit.Layout) -> list[str]:
    dirs = [layout.gitdir] if layout.common == layout.gitdir else [layout.gitdir, layout.common]
    return [
        os.path.join(d, name)
        for d in dirs
        for name in ("config", "config.worktree")
        if os.path.isfile(os.path.join(d, name))
    ]


def fingerprint(shown: str, gitdir: str) -> str:
    """Changes when what the repository's config or hooks run may have changed (read
    without running git): its config files, `commondir` and executable hooks."""
    layout = _layout(gitdir)
    hooks = os.path.join(layout.common, "hooks")
    files = [
        *_config_files(layout),
        os.path.join(gitdir, "commondir"),
        *(os.path.join(hooks, h) for h in executable_hooks(hooks)),
    ]
    return f"{shown}:{_digest_files(files)}"


def runs_what(gitdir: str) -> list[str]:
    """What the git directory's config and hooks make git run (its common directory's
    too, when `commondir` names one): "core.fsmonitor", "hook pre-commit", ..."""
    layout = _layout(gitdir)
    reasons: list[str] = []
    if layout.problem:
        reasons.append(f"commondir redirects git to {layout.common}")
    for path in _config_files(layout):
        for entry, _why in hostgit.executable_settings(path):
            if entry.key not in reasons:
                reasons.append(entry.key)
    reasons += [f"hook {h}" for h in executable_hooks(os.path.join(layout.common, "hooks"))]
    return reasons


def inspect_repository(shown: str, gitdir: str, known: Iterable[str] = ()) -> Repository | None:
    """The repository at `gitdir` when its config or hooks run something; None too when
    its fingerprint is in `known` (acknowledged or already reported: git need not be
    asked again)."""
    if not os.path.isdir(gitdir):
        return None
    print_ = fingerprint(shown, gitdir)
    if print_ in set(known):
        return None
    reasons = runs_what(gitdir)
    if not reasons:
        return None
    return Repository(shown, tuple(reasons), print_)
