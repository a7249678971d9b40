"""What a session changed in the project: the commits it made and the files it added,
modified or deleted (with line counts), for the session record and `aishell run`'s
result envelope.

In a git repository this comes from git on the host, through `hostgit.run` (which
neutralises every program the repository's config names), comparing the commit
checked out before the session with the working tree after it: `git log` for the
commits, `git diff --numstat`/`--name-status` (no external diff, no textconv) and the
untracked files for the files. Files that were already uncommitted before the session
and that it left as they were are not counted. Outside git, a listing of the project
before and after (path, size, modification time) is compared; line counts are known
only for added files there.

The parsers are pure (unit-tested from git's output); `before` and `after` run git.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any, Final

from aishell import fileio, hostgit
from aishell.tuples import NamedTuple

MAX_LISTED: Final = 20_000  # files listed outside git (beyond: "truncated")
MAX_COUNTED: Final = 8 * 1024 * 1024  # files larger than this get no line count
MAX_FILES: Final = 2_000  # file entries kept in a summary
MAX_COMMITS: Final = 500
SKIPPED_DIRS: Final = frozenset({".git", "node_modules", ".venv", "__pycache__"})


class FileChange(NamedTuple):
    path: str
    change: str  # added | modified | deleted
    lines_added: int | None = None  # None: binary, or not known
    lines_deleted: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "change": self.change,
            "lines_added": self.lines_added,
            "lines_deleted": self.lines_deleted,
        }


class Commit(NamedTuple):
    id: str
    subject: str


# ------------------------------------------------------------------ pure parsers

_STATUS: Final = {"A": "added", "M": "modified", "D": "deleted", "T": "modified"}


def parse_log(stdout: str) -> list[Commit]:
    """`git log --format=%H%x1f%s%x1e`: one record per commit, newest first."""
    commits = []
    for record in stdout.split("\x1e"):
        record = record.strip("\n")
        if not record:
            continue
        sha, _, subject = record.partition("\x1f")
        commits.append(Commit(sha.strip(), subject))
    return commits


def parse_numstat(stdout: str) -> dict[str, tuple[int | None, int | None]]:
    """`git diff --numstat -z --no-renames`: path -> (added, deleted); `-` (binary) is None."""
    counts: dict[str, tuple[int | None, int | None]] = {}
    for entry in stdout.split("\0"):
        if not entry:
            continue
        parts = entry.split("\t", 2)
        if len(parts) != 3:
            continue
        added, deleted, path = parts
        counts[path] = (_count(added), _count(deleted))
    return counts


def _count(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def parse_name_status(stdout: str) -> dict[str, str]:
    """`git diff --name-status -z --no-renames`: path -> added/modified/deleted."""
    tokens = stdout.split("\0")
    found: dict[str, str] = {}
    i = 0
    while i + 1 < len(tokens):
        status, path = tokens[i], tokens[i + 1]
        i += 2
        if status:
            found[path] = _STATUS.get(status[0], "modified")
    return found


def parse_porcelain(stdout: str) -> list[str]:
    """`git status --porcelain=v1 -z --untracked-files=all --no-renames`: the paths."""
    paths = []
    for entry in stdout.split("\0"):
        if len(entry) > 3:
            paths.append(entry[3:])
    return paths


def parse_status_v2(stdout: str) -> tuple[str | None, list[str]]:
    """`git status --porcelain=v2 -z --branch --untracked-files=all --no-renames`:
    (the commit checked out, None for a repository without one; the paths that differ
    from it: changed, unmerged, untracked)."""
    head: str | None = None
    paths = []
    for entry in stdout.split("\0"):
        if entry.startswith("# branch.oid "):
            oid = entry[len("# branch.oid ") :]
            head = None if oid == "(initial)" else oid
        elif entry.startswith("1 "):
            parts = entry.split(" ", 8)
            if len(parts) == 9:
                paths.append(parts[8])
        elif entry.startswith("u "):
            parts = entry.split(" ", 10)
            if len(parts) == 11:
                paths.append(parts[10])
        elif entry.startswith("? "):
            paths.append(entry[2:])
    return head, paths


def merge(
    statuses: Mapping[str, str],
    counts: Mapping[str, tuple[int | None, int | None]],
    untracked: Mapping[str, int | None],
    unchanged: Iterable[str] = (),
) -> list[FileChange]:
    """The changed files, sorted by path: what git diff names (with its counts), then the
    untracked files (added, with their line counts), minus `unchanged` (files that were
    already uncommitted before the session and are the same after it)."""
    skip = set(unchanged)
    changes: dict[str, FileChange] = {}
    for path, change in statuses.items():
        added, deleted = counts.get(path, (None, None))
        changes[path] = FileChange(path, change, added, deleted)
    for path, lines in untracked.items():
        changes.setdefault(path, FileChange(path, "added", lines, 0 if lines is not None else None))
    return [changes[p] for p in sorted(changes) if p not in skip]


def compare_listings(
    before: Mapping[str, tuple[int, int]],
    after: Mapping[str, tuple[int, int]],
    lines_of: Mapping[str, int | None] | None = None,
) -> list[FileChange]:
    """Two listings (path -> (size, mtime_ns)) compared: added, modified, deleted."""
    lines_of = lines_of or {}
    out = []
    for path in sorted(set(before) | set(after)):
        if path not in before:
            lines = lines_of.get(path)
            out.append(FileChange(path, "added", lines, 0 if lines is not None else None))
        elif path not in after:
            out.append(FileChange(path, "deleted"))
        elif before[path] != after[path]:
            out.append(FileChange(path, "modified"))
    return out


def count_lines(data: bytes) -> int | None:
    """Lines of a text file as git counts them (None for binary: a NUL byte)."""
    if b"\0" in data[:8000]:
        return None
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def summary_json(
    kind: str,
    *,
    head_before: str | None = None,
    head_after: str | None = None,
    branch: str | None = None,
    commits: Iterable[Commit] = (),
    files: Iterable[FileChange] = (),
    truncated: bool = False,
    error: str | None = None,
) -> dict[str, Any]:
    """The summary as the record and the envelope show it."""
    file_list = list(files)
    commit_list = list(commits)
    return {
        "source": kind,  # git | listing | none
        "head_before": head_before,
        "head_after": head_after,
        "branch": branch,
        "commits": [{"id": c.id, "subject": c.subject} for c in commit_list[:MAX_COMMITS]],
        "files": [f.to_json() for f in file_list[:MAX_FILES]],
        "truncated": truncated or len(file_list) > MAX_FILES or len(commit_list) > MAX_COMMITS,
        "error": error,
    }


# ------------------------------------------------------------------ on the host


def _git(root: str, *args: str) -> hostgit.GitResult:
    return hostgit.run(root, *args, timeout=60)


def read_regular(path: str, limit: int = MAX_COUNTED) -> bytes | None:
    """The first `limit`+1 bytes of a regular file in the project; None for anything
    else (the project is the agent's: `fileio.read_regular` neither follows a link nor
    blocks)."""
    return fileio.read_regular(path, limit)


def _digest(path: str) -> str | None:
    data = read_regular(path)
    import hashlib  # (lazy: not on every launch)

    return hashlib.sha256(data).hexdigest() if data is not None else None


def _read_lines(path: str) -> int | None:
    data = read_regular(path)
    if data is None or len(data) > MAX_COUNTED:
        return None
    return count_lines(data)


def before(root: str) -> dict[str, Any]:
    """The state to compare with after the session (JSON-able, kept in the record)."""
    try:
        # Where the project is in its repository (a project can be a subdirectory),
        # then the commit and what differs from it, under the project only.
        prefix = _git(root, "rev-parse", "--show-prefix")
        if prefix.ok:
            status = _git(
                root,
                "status", "--porcelain=v2", "-z", "--branch", "--untracked-files=all",
                "--no-renames", "--", ".",
            )  # fmt: skip
            head, dirty = parse_status_v2(status.stdout) if status.ok else (None, [])
            under = prefix.stdout.strip()
            rels = [p[len(under) :] for p in dirty if p.startswith(under)]
            return {
                "source": "git",
                "head": head,
                "dirty": {rel: _digest(os.path.join(root, rel)) for rel in rels},
            }
    except hostgit.GitUnavailable:
        pass
    listing, truncated = list_files(root)
    return {
        "source": "listing",
        "files": {k: list(v) for k, v in listing.items()},
        "truncated": truncated,
    }


def list_files(root: str) -> tuple[dict[str, tuple[int, int]], bool]:
    """path -> (size, mtime_ns) of the regular files and links under `root` (without
    `.git`, `node_modules`, `.venv`); at most MAX_LISTED."""
    found: dict[str, tuple[int, int]] = {}
    stack = [root]
    while stack:
        directory = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name not in SKIPPED_DIRS:
                        stack.append(entry.path)
                    continue
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            found[os.path.relpath(entry.path, root)] = (st.st_size, st.st_mtime_ns)
            if len(found) >= MAX_LISTED:
                return found, True
    return found, False


def after(root: str, start: Mapping[str, Any]) -> dict[str, Any]:
    """What changed since `start` (from `before`), as `summary_json`."""
    try:
        if start.get("source") == "git":
            return _after_git(root, start)
        if start.get("source") == "listing":
            now, truncated = list_files(root)
            was = {k: (int(v[0]), int(v[1])) for k, v in dict(start.get("files") or {}).items()}
            added = [p for p in now if p not in was]
            lines = {p: _read_lines(os.path.join(root, p)) for p in added[:MAX_FILES]}
            return summary_json(
                "listing",
                files=compare_listings(was, now, lines),
                truncated=truncated or bool(start.get("truncated")),
            )
    except hostgit.GitUnavailable as exc:
        return summary_json("none", error=exc.message)
    return summary_json("none")


def _after_git(root: str, start: Mapping[str, Any]) -> dict[str, Any]:
    base = start.get("head")
    head = _git(root, "rev-parse", "--verify", "-q", "HEAD")
    head_after = head.stdout.strip() if head.ok else None
    branch_result = _git(root, "symbolic-ref", "--short", "-q", "HEAD")
    branch = branch_result.stdout.strip() if branch_result.ok else None
    commits: list[Commit] = []
    if head_after:
        spec = [f"{base}..HEAD"] if base else ["HEAD"]
        log = _git(root, "log", "--no-show-signature", "--format=%H%x1f%s%x1e", *spec, "--")
        if log.ok:
            commits = parse_log(log.stdout)
    # The working tree against the commit the session started from (or, for a
    # repository without commits then, against the empty tree).
    against = base or _git(root, "hash-object", "-t", "tree", "/dev/null").stdout.strip()
    # (--relative: paths relative to the project, and only under it)
    common = ("diff", "--no-ext-diff", "--no-textconv", "--no-renames", "--relative", "-z")
    numstat = _git(root, *common, "--numstat", against, "--")
    names = _git(root, *common, "--name-status", against, "--")
    others = _git(root, "ls-files", "-z", "--others", "--exclude-standard")
    untracked = {
        p: _read_lines(os.path.join(root, p)) for p in others.stdout.split("\0") if p
    } if others.ok else {}  # fmt: skip
    dirty = dict(start.get("dirty") or {})
    unchanged = [p for p, d in dirty.items() if _digest(os.path.join(root, p)) == d]
    error = None
    if not (numstat.ok and names.ok):
        error = (numstat if not numstat.ok else names).message
    return summary_json(
        "git",
        head_before=base,
        head_after=head_after,
        branch=branch,
        commits=commits,
        files=merge(
            parse_name_status(names.stdout) if names.ok else {},
            parse_numstat(numstat.stdout) if numstat.ok else {},
            untracked,
            unchanged,
        ),
        error=error,
    )
