"""Sensitive-file scan of a project directory: one walk, names only, never prints.

The walk prunes `PRUNED_DIRS` as it goes, never follows symlinks, and matches
every non-directory entry (regular files and symlinks) by name through a
`rules.Matcher`; the few detectors that also need the content (a GCP
service-account key is a `.json` file with `"type": "service_account"`) read the
first `rules.CONTENT_BYTES` of files whose name already matched. The allowlist
is applied to individual findings before more than `GROUP_THRESHOLD` findings of
one detector are collapsed into a summary. High findings that git does not
ignore are marked `may_be_committed` (one `git check-ignore --stdin` call for all
of them).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from aishell import hostgit
from aishell.errors import AishellError
from aishell.security.rules import (
    BUILTIN_DETECTORS,
    CONTENT_BYTES,
    AllowlistEntryLike,
    CustomPatternLike,
    Detector,
    Matcher,
    Severity,
    compile_allowlist,
    custom_detectors,
)
from aishell.tuples import NamedTuple

__all__ = [
    "GIT_TIMEOUT_SECONDS",
    "GROUP_THRESHOLD",
    "PRUNED_DIRS",
    "Finding",
    "ScanResult",
    "scan_project",
]

#: Directories never descended into (below the project root; the root itself is
#: always scanned whatever its name). They hold dependencies, build output, VCS
#: data and caches: many files, rarely anything the user wrote. The price: a
#: `.env` inside one of them (e.g. `vendor/.env`) is not reported.
PRUNED_DIRS: Final = frozenset(
    {
        ".git",
        "node_modules",
        "vendor",
        "target",
        "build",
        "dist",
        "__pycache__",
        ".venv",
        "venv",
        ".cache",
        ".bundle",
        ".cpcache",
        ".tox",
        ".mypy_cache",
        ".pytest_cache",
        ".gradle",
        ".terraform",
    }
)

#: More findings than this for one detector collapse into one summary finding.
GROUP_THRESHOLD: Final = 3

GIT_TIMEOUT_SECONDS: Final = 5.0

ScandirFn = Callable[[str], AbstractContextManager[Iterator[os.DirEntry[str]]]]


class Finding(NamedTuple):
    detector: str  # Detector.id, e.g. "ssh-key" or "custom:*.secret"
    severity: Severity
    reason: str
    path: str | None  # project-relative POSIX path; None for a summary
    count: int = 1  # type: ignore[assignment]  # shadows tuple.count(), on purpose
    examples: tuple[str, ...] = ()  # summaries: the first two paths
    may_be_committed: bool = False  # high only: not ignored by git
    label: str = ""  # the detector's plural label, for summaries ("env files")


@dataclass(frozen=True)
class ScanResult:
    findings: tuple[Finding, ...]
    notes: tuple[str, ...]
    files_scanned: int
    root: Path | None = None

    def _count(self, severity: Severity) -> int:
        return sum(f.count for f in self.findings if f.severity is severity)

    @property
    def high(self) -> int:
        """Number of high-severity files (summaries count all their files)."""
        return self._count(Severity.HIGH)

    @property
    def medium(self) -> int:
        return self._count(Severity.MEDIUM)

    @property
    def low(self) -> int:
        return self._count(Severity.LOW)


def scan_project(
    root: Path,
    *,
    custom_patterns: Iterable[CustomPatternLike] = (),
    allowlist: Iterable[AllowlistEntryLike] = (),
    git: bool = True,
    scandir: ScandirFn | None = None,
) -> ScanResult:
    """Scan `root` for sensitive files.

    An unreadable root raises AishellError; below it, unreadable directories
    become notes. `scandir` replaces `os.scandir` (tests use it to simulate
    failures).
    """
    customs, notes = custom_detectors(custom_patterns)
    matcher = Matcher((*BUILTIN_DETECTORS, *customs))
    note_list = list(notes)
    hits, files = _walk(os.fspath(root), matcher, note_list, scandir or os.scandir)

    allowed = compile_allowlist(allowlist, root=os.path.abspath(root))
    by_detector: dict[str, list[tuple[str, Detector]]] = {}
    base = os.fspath(root)
    for rel in hits:
        if allowed and allowed.matches(rel):
            continue

        def content_ok(d: Detector, rel: str = rel) -> bool:
            return _content_matches(os.path.join(base, rel), d)

        detector = matcher.classify(rel, content_ok=content_ok)
        if detector is not None:
            by_detector.setdefault(detector.id, []).append((rel, detector))

    high_paths = [
        rel for items in by_detector.values() for rel, d in items if d.severity is Severity.HIGH
    ]
    committable: set[str] = set()
    if git and high_paths:
        committable = _not_ignored_by_git(root, high_paths, note_list)

    findings: list[Finding] = []
    for items in by_detector.values():
        items.sort(key=lambda item: item[0])
        d = items[0][1]
        if len(items) > GROUP_THRESHOLD:
            paths = [rel for rel, _ in items]
            findings.append(
                Finding(
                    d.id,
                    d.severity,
                    d.reason,
                    None,
                    count=len(items),
                    examples=tuple(paths[:2]),
                    may_be_committed=any(p in committable for p in paths),
                    label=d.label,
                )
            )
        else:
            findings.extend(
                Finding(d.id, d.severity, d.reason, rel, 1, (), rel in committable, d.label)
                for rel, _ in items
            )
    findings.sort(key=_sort_key)
    return ScanResult(tuple(findings), tuple(note_list), files, Path(root))


def _sort_key(f: Finding) -> tuple[int, str, str]:
    return (f.severity.rank, f.path if f.path is not None else f.examples[0], f.detector)


def _walk(
    root: str, matcher: Matcher, notes: list[str], scandir: ScandirFn
) -> tuple[list[str], int]:
    """Return (relative paths of candidate files, number of non-directory entries).

    This is the hot loop: per entry one `is_dir()` (answered from the
    directory listing, no stat), one `lower()`, a set lookup and two
    tuple-`startswith/endswith` calls. Relative paths are built only for
    candidates, except when a custom pattern needs the path.
    """
    names = matcher.names
    prefixes = matcher.prefixes
    suffixes = matcher.suffixes
    hot_dirs = matcher.hot_dirs
    name_re = matcher.name_regex.match if matcher.name_regex is not None else None
    path_re = matcher.path_regex.match if matcher.path_regex is not None else None
    gated_suffixes = matcher.gated_suffixes
    gated_re = matcher.gated_regex.match if matcher.gated_regex is not None else None
    pruned = PRUNED_DIRS

    hits: list[str] = []
    add_hit = hits.append
    files = 0
    # (absolute directory path, its relative path with a trailing "/" or "", hot)
    stack: list[tuple[str, str, bool]] = [(root, "", False)]
    push = stack.append
    pop = stack.pop
    while stack:
        dir_path, rel_dir, hot = pop()
        try:
            listing = scandir(dir_path)
        except OSError as exc:
            if not rel_dir:
                raise AishellError(
                    f"Cannot read the project directory {root}: {_reason(exc)}"
                ) from exc
            notes.append(f"skipped unreadable directory {rel_dir[:-1]} ({_reason(exc)})")
            continue
        with listing as entries:
            try:
                for entry in entries:
                    name = entry.name
                    if entry.is_dir(follow_symlinks=False):
                        if name not in pruned:
                            push(
                                (
                                    entry.path,
                                    rel_dir + name + "/",
                                    hot or (name.lower() in hot_dirs),
                                )
                            )
                        continue
                    files += 1
                    lname = name.lower()
                    if (
                        lname in names
                        or lname.startswith(prefixes)
                        or lname.endswith(suffixes)
                        or hot
                        or (
                            gated_re is not None
                            and lname.endswith(gated_suffixes)
                            and gated_re(lname) is not None
                        )
                        or (name_re is not None and name_re(lname) is not None)
                        or (path_re is not None and path_re(rel_dir + name) is not None)
                    ) and (entry.is_file(follow_symlinks=False) or entry.is_symlink()):
                        add_hit(rel_dir + name)
            except OSError as exc:
                where = rel_dir[:-1] or "."
                notes.append(f"stopped reading directory {where} ({_reason(exc)})")
    return hits, files


_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


def _content_matches(path: str, detector: Detector) -> bool:
    """The file's first `CONTENT_BYTES` match `detector.content`. A file that cannot be
    read (or is not a regular file) counts as a match: its name alone matched, and a
    missed key is worse than a second look."""
    import re

    assert detector.content is not None
    try:
        if stat.S_ISLNK(os.lstat(path).st_mode):
            return False  # its target is scanned where it is (when it is in the project)
        fd = os.open(path, os.O_RDONLY | _O_NOFOLLOW | _O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return True
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        data = os.read(fd, CONTENT_BYTES)
    except OSError:
        return True
    finally:
        os.close(fd)
    return re.search(detector.content, data) is not None


def _reason(exc: OSError) -> str:
    return exc.strerror or exc.__class__.__name__


def _not_ignored_by_git(root: Path, paths: Sequence[str], notes: list[str]) -> set[str]:
    """The subset of `paths` that git does not ignore (so may be committed).

    One `git check-ignore --stdin -z` for all paths. Tracked files are never
    reported as ignored by check-ignore, so they count as committable, which
    they are. Not a repository, no git, or any failure: empty set.
    """
    payload = "".join(p + "\0" for p in paths)
    try:
        result = hostgit.run(
            os.fspath(root), "check-ignore", "--stdin", "-z",
            input=payload, timeout=GIT_TIMEOUT_SECONDS,
        )  # fmt: skip
    except hostgit.GitRefused as exc:
        notes.append(f"did not ask git which files are ignored: {exc.message}")
        return set()
    except hostgit.GitUnavailable:
        return set()
    if result.returncode not in (0, 1):  # 128: not a repository, or a fatal error
        if "not a git repository" not in result.stderr:
            first = result.stderr.strip().splitlines()[:1]
            notes.append(
                "could not ask git which files are ignored" + (f": {first[0]}" if first else "")
            )
        return set()
    ignored = {p for p in result.stdout.split("\0") if p}
    return {p for p in paths if p not in ignored}
