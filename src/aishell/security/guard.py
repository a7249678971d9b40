"""After every session: what the sandbox changed in files that run on the host.

Before a container starts, `begin` records the state (kind, content digest, mode) of
the project's auto-run files (`autorun.WATCHED`: editor tasks, direnv, pre-commit,
dev containers, agent settings, ...) and of the repository's git internals (config,
hooks, info, `commondir`, rebase and sequencer todo lists, submodules' and linked
worktrees' git directories, and any other file at the top of `.git`), and keeps a
copy of each small file in `~/.aishell/guard/<project-hash>/`: outside the project,
out of the agent's reach. When the session is over (`finish`; for a detached session,
`settle` in the next aishell command in the project once the container is gone), it
records the state again, compares, walks the project (`sweep`: host-root artifacts and
git repositories whose config or hooks run programs) and prints one short notice
naming each change and why it matters. The findings stay pending, and `aishell check`
shows them, until `aishell guard ack`; `aishell guard diff` shows the changes.
Nothing else is reverted (a `commondir` redirect is moved aside: `redirects.py`).

The guard never stops a launch: when its state cannot be written it warns and the
session goes on (the walls in `gitwall` and `hardening` do not depend on it).
"""

from __future__ import annotations

import contextlib
import fcntl
import fnmatch
import json
import os
import stat
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from aishell import fileio, hostgit, output, paths
from aishell.constants import LABEL_GUARD_SESSION
from aishell.engine.containers import parse_json_lines, parse_label_string
from aishell.hashing import sha256_hex
from aishell.security import autorun, redirects, sweep
from aishell.tuples import NamedTuple

if TYPE_CHECKING:
    from aishell.engine.client import Engine
    from aishell.project import Project

VERSION: Final = 1
MAX_COPY: Final = 256 * 1024  # files up to this size are kept, for `aishell guard diff`
MAX_READ: Final = 16 * 1024 * 1024  # larger files are compared by size and mtime
MAX_GIT_FILES: Final = 2_000  # entries recorded per git directory
MAX_MODULE_DEPTH: Final = 6
MAX_OBJECTS: Final = 512  # kept copies before unreferenced ones are removed

# --------------------------------------------------------------------- git internals

# Files at the top of a git directory that are git's own state: not watched.
GIT_STATE: Final = frozenset(
    {
        "HEAD", "ORIG_HEAD", "FETCH_HEAD", "MERGE_HEAD", "MERGE_MODE", "MERGE_MSG",
        "MERGE_RR", "MERGE_AUTOSTASH", "SQUASH_MSG", "COMMIT_EDITMSG", "TAG_EDITMSG",
        "NOTES_EDITMSG", "EDIT_DESCRIPTION", "REBASE_HEAD", "CHERRY_PICK_HEAD",
        "REVERT_HEAD", "AUTO_MERGE", "NOTES_MERGE_PARTIAL", "NOTES_MERGE_REF",
        "NOTES_MERGE_WORKTREE", "index", "packed-refs", "shallow", "description",
        "gc.log", "gc.pid", "logs", "objects", "refs", "rr-cache", "lfs", "branches",
        "remotes", "gitk.cache", "GITGUI_MSG", "GITGUI_BCK", "fsmonitor--daemon",
        "fsmonitor--daemon.ipc", "rebase-apply", "filter-repo", "locked",
        "opencode",  # OpenCode's project ID (git never reads it)
    }
)  # fmt: skip
GIT_STATE_PREFIXES: Final = ("BISECT_", "sharedindex.", "index.", "tmp_")
# Watched specially (below): not reported as "other files".
GIT_HANDLED: Final = frozenset(
    {"config", "config.worktree", "commondir", "gitdir", "hooks", "info", "worktrees",
     "modules", "rebase-merge", "sequencer"}
)  # fmt: skip
GIT_WHY: Final[Mapping[str, str]] = {
    "config": "git runs the programs its config names (fsmonitor, hooks path, filters, "
    "pager, ssh command, ...)",
    "config.worktree": "git reads it as config (when worktreeConfig is on) and runs "
    "the programs it names",
    "commondir": "makes git read its config and hooks from another directory",
    "gitdir": "tells git which worktree this git directory belongs to",
    "info/attributes": "chooses which filter and diff programs git runs on which files",
    "info": "git reads it (attributes, excludes, sparse-checkout)",
    "rebase-merge/git-rebase-todo": "git rebase --continue runs what it lists "
    "('exec' lines are shell commands)",
    "sequencer/todo": "git cherry-pick/revert --continue works through it",
    "objects/info/alternates": "makes git read objects from another repository (and push "
    "them when a ref points at them)",
    "objects/info/http-alternates": "makes git fetch objects from other URLs",
    "modules": "a submodule's git directory: git runs its config and hooks in the submodule",
    "worktrees": "a linked worktree's git directory",
    "other": "a file in the git directory that git may read",
}


class State(NamedTuple):
    kind: str  # file | link | dir | other
    digest: str  # content (file), target (link), "" (dir, other)
    mode: int  # permission bits (with set-user-ID etc.)


Snapshot = dict[str, State]  # shown path -> state


class Finding(NamedTuple):
    path: str  # project-relative, or absolute outside the project
    change: str  # new | changed | removed | mode | found
    why: str
    detail: str = ""
    before: str | None = None  # digest of the kept copy (for diff)
    after: str | None = None  # digest of the new content
    kind: str = "file"  # file | repository | artifact
    fingerprint: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "change": self.change,
            "why": self.why,
            "detail": self.detail,
            "kind": self.kind,
            "diff": self.kind == "file" and self.change != "removed",
        }

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.path, self.change, self.after or "", self.fingerprint)


# ---------------------------------------------------------------------- the store


class Store:
    """`~/.aishell/guard/<project-hash>/`: sessions/, objects/, pending.json, acked.json."""

    def __init__(self, project: Project, home: Path | None = None) -> None:
        self.project = project
        self.dir = (home or paths.aishell_home()) / "guard" / project.hash
        self.sessions = self.dir / "sessions"
        self.objects = self.dir / "objects"

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.dir / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def keep(self, digest: str, data: bytes) -> None:
        path = self.objects / digest
        if path.exists():
            return
        self.objects.mkdir(parents=True, exist_ok=True, mode=0o700)
        _write_atomic(path, data)

    def object(self, digest: str | None) -> bytes | None:
        if not digest:
            return None
        try:
            return (self.objects / digest).read_bytes()
        except OSError:
            return None

    def read_json(self, name: str) -> Any:
        try:
            return json.loads((self.dir / name).read_text())
        except (OSError, ValueError):
            return None

    def write_json(self, name: str, data: Any) -> None:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        _write_atomic(self.dir / name, (json.dumps(data, indent=1) + "\n").encode())

    def pending(self) -> list[Finding]:
        data = self.read_json("pending.json")
        found = []
        for item in (data or {}).get("findings", []) if isinstance(data, dict) else []:
            try:
                found.append(Finding(**{k: item[k] for k in Finding._fields if k in item}))
            except TypeError:
                continue
        return found

    def acked(self) -> set[str]:
        data = self.read_json("acked.json")
        return set(data.get("fingerprints", [])) if isinstance(data, dict) else set()

    def session_files(self) -> list[Path]:
        try:
            return sorted(self.sessions.glob("*.json"))
        except OSError:
            return []


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# ------------------------------------------------------------------------ snapshots


def _state(path: str, keep: Store | None) -> State | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISLNK(st.st_mode):
        try:
            return State("link", os.readlink(path), mode)
        except OSError:
            return State("link", "", mode)
    if stat.S_ISDIR(st.st_mode):
        return State("dir", "", mode)
    if not stat.S_ISREG(st.st_mode):
        return State("other", f"{st.st_mode:o}:{st.st_rdev}", mode)
    if st.st_size > MAX_READ:
        return State("file", f"size:{st.st_size}:mtime:{st.st_mtime_ns}", mode)
    # Read once per process: a file whose inode, size, ctime and mtime are unchanged
    # since `begin` read it is unchanged (ctime cannot be set back from the sandbox).
    signature = (st.st_ino, st.st_size, st.st_ctime_ns, st.st_mtime_ns)
    known = _READ.get(path)
    if known is not None and known[0] == signature:
        return known[1]
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as fh:
            data = fh.read(MAX_READ + 1)
    except OSError:
        return State("file", "unreadable", mode)
    digest = sha256_hex(data)
    if keep is not None and len(data) <= MAX_COPY:
        with contextlib.suppress(OSError):
            keep.keep(digest, data)
    state = State("file", digest, mode)
    _READ[path] = (signature, state)
    return state


_READ: dict[str, tuple[tuple[int, int, int, int], State]] = {}


def _scandir(path: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(path) as entries:
            return list(entries)
    except OSError:
        return []


def _record_tree(
    path: str, shown: str, out: Snapshot, keep: Store | None, *, depth: int, limit: int
) -> None:
    """Every file below `path` (not following symlinks), `depth` levels deep."""
    stack = [(path, shown, 0)]
    count = 0
    while stack:
        directory, label, level = stack.pop()
        for entry in sorted(_scandir(directory), key=lambda e: e.name):
            if count >= limit:
                return
            name = f"{label}/{entry.name}"
            if entry.is_dir(follow_symlinks=False):
                if level + 1 < depth:
                    stack.append((entry.path, name, level + 1))
                continue
            state = _state(entry.path, keep)
            if state is not None:
                out[name] = state
                count += 1


def project_files(root: str, out: Snapshot, keep: Store | None) -> None:
    """The watched auto-run files of the project (names matched case-insensitively)."""
    names, patterns = autorun.top_names()
    dirs = {w.path.rstrip("/") for w in autorun.WATCHED if w.path.endswith("/")}
    for entry in _scandir(root):
        low = entry.name.lower()
        if low in names:
            if entry.is_dir(follow_symlinks=False) and low in dirs:
                _record_tree(
                    entry.path, entry.name, out, keep,
                    depth=autorun.MAX_DIR_DEPTH, limit=autorun.MAX_DIR_FILES,
                )  # fmt: skip
                continue
            if entry.is_dir(follow_symlinks=False):
                continue
        elif not any(fnmatch.fnmatchcase(low, p) for p in patterns):
            continue
        state = _state(entry.path, keep)
        if state is not None:
            out[entry.name] = state


def _git_other(name: str) -> bool:
    return not (
        name in GIT_STATE
        or name in GIT_HANDLED
        or name.endswith(".lock")
        or name.startswith(GIT_STATE_PREFIXES)
        or redirects.MOVED_SUFFIX in name  # moved aside by aishell
    )


def git_internals(
    gitdir: str, shown: str, out: Snapshot, keep: Store | None, depth: int = 0
) -> None:
    """One git directory: its config, hooks, info, redirects, todo lists, the other
    files at its top, and its linked worktrees' and submodules' git directories."""
    if not os.path.isdir(gitdir):
        return
    for name in ("config", "config.worktree", "commondir", "gitdir"):
        state = _state(os.path.join(gitdir, name), keep)
        if state is not None:
            out[f"{shown}/{name}"] = state
    for name in ("hooks", "info"):
        path = os.path.join(gitdir, name)
        state = _state(path, None)
        if state is not None and state.kind != "dir":
            out[f"{shown}/{name}"] = state  # a symlink or a file where a directory belongs
        elif state is not None:
            _record_tree(path, f"{shown}/{name}", out, keep, depth=2, limit=MAX_GIT_FILES)
    for rel in (
        "rebase-merge/git-rebase-todo",
        "sequencer/todo",
        "objects/info/alternates",
        "objects/info/http-alternates",
    ):
        state = _state(os.path.join(gitdir, rel), keep)
        if state is not None:
            out[f"{shown}/{rel}"] = state
    for entry in _scandir(gitdir):
        if _git_other(entry.name):
            state = _state(entry.path, keep)
            if state is not None:
                out[f"{shown}/{entry.name}"] = state
    for entry in _scandir(os.path.join(gitdir, "worktrees")):
        if entry.is_dir(follow_symlinks=False):
            for name in ("commondir", "gitdir", "config.worktree"):
                state = _state(os.path.join(entry.path, name), keep)
                if state is not None:
                    out[f"{shown}/worktrees/{entry.name}/{name}"] = state
    if depth < MAX_MODULE_DEPTH:
        _modules(os.path.join(gitdir, "modules"), f"{shown}/modules", out, keep, depth + 1)


def _modules(directory: str, shown: str, out: Snapshot, keep: Store | None, depth: int) -> None:
    for entry in _scandir(directory):
        if not entry.is_dir(follow_symlinks=False):
            continue
        if hostgit.looks_like_gitdir(entry.path):
            git_internals(entry.path, f"{shown}/{entry.name}", out, keep, depth)
        elif depth < MAX_MODULE_DEPTH:
            _modules(entry.path, f"{shown}/{entry.name}", out, keep, depth + 1)


def git_dirs(root: str) -> list[tuple[str, str]]:
    """(git directory, shown prefix) to watch for the project at `root`: its own, and
    a linked worktree's common directory; none when the repository is above the
    project (not mounted)."""
    layout = hostgit.locate(root)
    if layout is None or os.path.realpath(layout.top) != os.path.realpath(root):
        return []
    found = [(layout.gitdir, shown_path(root, layout.gitdir))]
    if os.path.realpath(layout.common) != os.path.realpath(layout.gitdir):
        found.append((layout.common, shown_path(root, layout.common)))
    return found


def shown_path(root: str, path: str) -> str:
    real_root, real = os.path.realpath(root), os.path.realpath(path)
    if real == real_root or real.startswith(real_root.rstrip("/") + "/"):
        return os.path.relpath(real, real_root)
    return os.path.normpath(path)


HOOKS_PATH_WHY: Final = "git runs its hooks from here (core.hooksPath in the repository's config)"
INCLUDED_WHY: Final = (
    "the repository's git config pulls it in (include.path): git runs what it names"
)


def config_targets(root: str, gitdirs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Files in the project that the repository's (read-only) git config makes git read
    as hooks or config: a `core.hooksPath` directory and `include.path` files there.
    (project-relative path, why)."""
    real_root = os.path.realpath(root)
    found: list[tuple[str, str]] = []
    for gitdir, _shown in gitdirs:
        for name in ("config", "config.worktree"):
            path = os.path.join(gitdir, name)
            try:
                with open(path, encoding="utf-8", errors="replace") as fh:
                    text = fh.read(1 << 20).lower()
            except OSError:
                continue
            if "hookspath" not in text and "include" not in text:
                continue  # (the cheap test first: no git call on the launch path)
            for entry in hostgit.config_file(path):
                section, _sub, key = entry.parts
                if not entry.value:
                    continue
                if (section, key) == ("core", "hookspath"):
                    base, why = root, HOOKS_PATH_WHY
                elif section in ("include", "includeif") and key == "path":
                    origin = entry.origin_path or path
                    base, why = os.path.dirname(os.path.join(gitdir, origin)), INCLUDED_WHY
                else:
                    continue
                target = os.path.realpath(os.path.join(base, os.path.expanduser(entry.value)))
                if target != real_root and target.startswith(real_root.rstrip("/") + "/"):
                    found.append((os.path.relpath(target, real_root), why))
    return list(dict.fromkeys(found))


def collect(
    root: str,
    gitdirs: Sequence[tuple[str, str]],
    keep: Store | None,
    extra: Sequence[tuple[str, str]] = (),
) -> Snapshot:
    out: Snapshot = {}
    project_files(root, out, keep)
    for gitdir, shown in gitdirs:
        git_internals(gitdir, shown, out, keep)
    for rel, _why in extra:
        path = os.path.join(root, rel)
        if os.path.isdir(path) and not os.path.islink(path):
            _record_tree(path, rel, out, keep, depth=2, limit=MAX_GIT_FILES)
        else:
            state = _state(path, keep)
            if state is not None:
                out[rel] = state
    return out


# ---------------------------------------------------------------------- comparison


def why_of(
    path: str, gitdirs: Sequence[tuple[str, str]], extra: Sequence[tuple[str, str]] = ()
) -> str:
    """Why the file at `path` (as shown) matters."""
    for rel, why in extra:
        if path == rel or path.startswith(rel.rstrip("/") + "/"):
            return why
    for _gitdir, shown in gitdirs:
        prefix = shown.rstrip("/") + "/"
        if path.startswith(prefix):
            return _git_why(path[len(prefix) :])
    return autorun.why(path) or GIT_WHY["other"]


def _git_why(rel: str) -> str:
    parts = rel.split("/")
    if parts[0] == "modules":
        return GIT_WHY["modules"]
    if parts[0] == "worktrees":
        return GIT_WHY["worktrees"]
    if parts[0] == "hooks":
        name = parts[-1]
        if len(parts) == 1:
            return "git runs its hooks from this directory"
        if name.endswith(".sample"):
            return "a sample hook (git runs it only once renamed without .sample)"
        return f"a git hook: git runs it ({name})"
    if rel in GIT_WHY:
        return GIT_WHY[rel]
    if parts[0] == "info":
        return GIT_WHY["info"]
    return GIT_WHY["other"]


def compare(
    before: Mapping[str, State],
    after: Mapping[str, State],
    gitdirs: Sequence[tuple[str, str]],
    extra: Sequence[tuple[str, str]] = (),
) -> list[Finding]:
    findings = []
    for path in sorted(set(before) | set(after)):
        old, new = before.get(path), after.get(path)
        if old == new:
            continue
        if old is None:
            change = "new"
        elif new is None:
            change = "removed"
        elif old.kind == new.kind and old.digest == new.digest:
            change = "mode"
        else:
            change = "changed"
        detail = ""
        if change == "mode" and old is not None and new is not None:
            detail = f"mode {old.mode:o} -> {new.mode:o}"
        if new is not None and new.kind == "link":
            detail = f"now a symlink to {new.digest}"
        findings.append(
            Finding(
                path=path,
                change=change,
                why=why_of(path, gitdirs, extra),
                detail=detail,
                before=old.digest if old is not None and old.kind == "file" else None,
                after=new.digest if new is not None and new.kind == "file" else None,
            )
        )
    return findings


def enrich(
    findings: Sequence[Finding], root: str, gitdirs: Sequence[tuple[str, str]] = ()
) -> list[Finding]:
    """Add what a changed git file now makes git run (config keys, exec lines, the
    redirect's target)."""
    enriched = []
    for f in findings:
        path = f.path if os.path.isabs(f.path) else os.path.join(root, f.path)
        name = os.path.basename(f.path)
        detail = f.detail
        if f.change != "removed" and "/" in f.path and not detail:
            in_git = any(f.path.startswith(shown.rstrip("/") + "/") for _g, shown in gitdirs)
            if name in ("config", "config.worktree") and in_git:
                keys = [e.key for e, _ in hostgit.executable_settings(path)]
                if keys:
                    detail = "now runs: " + ", ".join(dict.fromkeys(keys))
            elif name == "commondir":
                target = _first_line(path)
                if target:
                    detail = f"points to {os.path.normpath(os.path.join(os.path.dirname(path), target))}; remove it: rm {path}"  # noqa: E501
            elif name in ("git-rebase-todo", "todo"):
                execs = exec_lines(path)
                if execs:
                    detail = "exec lines: " + "; ".join(execs[:3])
        enriched.append(f._replace(detail=detail))
    return enriched


def with_moved(
    findings: Sequence[Finding], moved: Sequence[redirects.Moved], root: str
) -> list[Finding]:
    """The findings, each redirect that was moved aside named with where it is now."""
    result = list(findings)
    for m in moved:
        shown = shown_path(root, m.path)
        found = Finding(shown, "new", m.why, redirects.describe(m))
        for i, f in enumerate(result):
            if f.path == shown:
                result[i] = f._replace(why=found.why, detail=found.detail)
                break
        else:
            result.append(found)
    return result


def _first_line(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.readline(4096).strip() or None
    except OSError:
        return None


def exec_lines(path: str) -> list[str]:
    """The `exec`/`x` lines of a rebase todo list."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = fh.read(1 << 20).splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        word, _, rest = line.strip().partition(" ")
        if word in ("exec", "x") and rest.strip():
            found.append(rest.strip())
    return found


# -------------------------------------------------------------------------- sessions


class Session(NamedTuple):
    id: str
    store: Store
    root: str
    gitdirs: tuple[tuple[str, str], ...]
    sweep_roots: tuple[str, ...]
    host_uid: int
    detached: bool = False
    extra: tuple[tuple[str, str], ...] = ()  # (project-relative path, why): config targets
    walled: bool = True  # git internals read-only: `commondir` redirects are moved aside
    started: float = 0.0  # time.time() when it began

    @property
    def label(self) -> tuple[str, str]:
        return (LABEL_GUARD_SESSION, self.id)


def begin(
    project: Project,
    *,
    host_uid: int,
    sweep_roots: Sequence[str] = (),
    detached: bool = False,
    walled: bool = True,
) -> Session | None:
    """Record the state before a session (None, with a warning, when that fails)."""
    store = Store(project)
    sid = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.urandom(4).hex()}"
    gitdirs = tuple(git_dirs(project.root))
    extra = tuple(config_targets(project.root, gitdirs))
    started = time.time()
    session = Session(
        sid, store, project.root, gitdirs, tuple(sweep_roots), host_uid, detached, extra,
        walled, started,
    )  # fmt: skip
    try:
        snapshot = collect(project.root, gitdirs, store, extra)
        store.sessions.mkdir(parents=True, exist_ok=True, mode=0o700)
        record = {
            "version": VERSION,
            "id": sid,
            "root": project.root,
            "started": started,
            "pid": os.getpid(),
            "pid_start": fileio.process_start(os.getpid()),
            "detached": detached,
            "host_uid": host_uid,
            "gitdirs": [list(g) for g in gitdirs],
            "sweep_roots": list(sweep_roots),
            "extra": [list(e) for e in extra],
            "walled": walled,
            "snapshot": {k: list(v) for k, v in snapshot.items()},
        }
        _write_atomic(store.sessions / f"{sid}.json", json.dumps(record).encode())
    except OSError as exc:
        output.warn(
            f"cannot record the project's state for the post-session check in {store.dir} "
            f"({exc.strerror or exc}); changes the agent makes will not be reported"
        )
        return None
    return session


def _load(store: Store, path: Path) -> tuple[Session, Snapshot, dict[str, Any]] | None:
    try:
        data = json.loads(path.read_text())
        session = Session(
            id=data["id"],
            store=store,
            root=data["root"],
            gitdirs=tuple((g[0], g[1]) for g in data["gitdirs"]),
            sweep_roots=tuple(data.get("sweep_roots", ())),
            host_uid=int(data["host_uid"]),
            detached=bool(data.get("detached")),
            extra=tuple((e[0], e[1]) for e in data.get("extra", ())),
            walled=data.get("walled", True) is not False,
            started=float(data.get("started") or 0.0),
        )
        snapshot = {k: State(v[0], v[1], int(v[2])) for k, v in data["snapshot"].items()}
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None
    return session, snapshot, data


def mark_detached(session: Session) -> None:
    """The session goes on in the background: `settle` finishes it later."""
    path = session.store.sessions / f"{session.id}.json"
    try:
        data = json.loads(path.read_text())
        data["detached"] = True
        _write_atomic(path, json.dumps(data).encode())
    except (OSError, ValueError):
        pass


def finish(session: Session, moved: Sequence[redirects.Moved] = ()) -> list[Finding]:
    """The session is over: compare, move redirects aside, sweep, record and print the
    notice. `moved`: redirects the tripwire moved aside while the session ran."""
    store = session.store
    with _quiet_errors(store), store.locked():
        path = store.sessions / f"{session.id}.json"
        loaded = _load(store, path)
        if loaded is None:
            return []
        new = _conclude(loaded[0], loaded[1], moved)
        with contextlib.suppress(OSError):
            path.unlink()
        _collect_garbage(store, at_most=MAX_OBJECTS)
        notice(new, root=session.root)
        return new
    return []


@contextlib.contextmanager
def _quiet_errors(store: Store) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        output.warn(f"the post-session check failed ({exc.strerror or exc} in {store.dir})")


def _conclude(
    session: Session, before: Snapshot, moved: Sequence[redirects.Moved] = ()
) -> list[Finding]:
    """Compare, move redirects aside and sweep; add what is new to the pending
    findings; return it."""
    store = session.store
    after = collect(session.root, session.gitdirs, store, session.extra)
    findings = enrich(
        compare(before, after, session.gitdirs, session.extra), session.root, session.gitdirs
    )
    if session.walled:
        moved = [*moved, *redirects.session_end(session.root, session.started)]
    findings = with_moved(findings, moved, session.root)
    acked = store.acked()
    pending = store.pending()
    result = sweep.sweep(
        [session.root, *session.sweep_roots],
        host_uid=session.host_uid,
        skip_gitdirs=[g for g, _ in session.gitdirs],
        known=acked | {f.fingerprint for f in pending if f.fingerprint},
    )
    unlinked: dict[str, redirects.Moved] = {}
    if session.walled and result.repositories and session.started:
        # Nested repositories git in the project recurses into, changed in the session.
        since = session.started - redirects.CLOCK_SLACK
        for path in redirects.recursed(session.root, [r.path for r in result.repositories], since):
            unlinked[path] = redirects.move_aside(path)
    for repo in result.repositories:
        detail = "runs: " + ", ".join(repo.reasons)
        if repo.path in unlinked:
            detail += "; git in the project recurses into it (a gitlink in its index): "
            detail += redirects.describe(unlinked[repo.path])
        findings.append(
            Finding(
                path=shown_path(session.root, repo.path),
                change="found",
                why="a git repository whose config or hooks run programs when you use git there",
                detail=detail,
                kind="repository",
                fingerprint=repo.fingerprint,
            )
        )
    for art in result.artifacts:
        findings.append(
            Finding(
                path=shown_path(session.root, art.path),
                change="found",
                why=art.what,
                kind="artifact",
                fingerprint=art.fingerprint,
            )
        )
    known = {f.key for f in pending}
    new = [
        f
        for f in findings
        if f.key not in known and (not f.fingerprint or f.fingerprint not in acked)
    ]
    if new:
        store.write_json(
            "pending.json",
            {
                "version": VERSION,
                "root": session.root,
                "findings": [f._asdict() | {"session": session.id} for f in [*pending, *new]],
            },
        )
    return new


def settle(project: Project, engine: Engine | None) -> list[Finding]:
    """Finish the sessions of this project that are over (their aishell is gone and
    their container too). Detached sessions need `engine` to tell; without it they
    wait. Prints the notice for what is new."""
    store = Store(project)
    files = store.session_files()
    if not files:
        return []
    candidates: list[Path] = []
    for path in files:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        pid, started = data.get("pid"), data.get("pid_start")
        if (
            not data.get("detached")
            and isinstance(pid, int)
            and started is not None
            and fileio.process_start(pid) == started
        ):
            continue  # its aishell still runs: it finishes the session itself
        candidates.append(path)
    if not candidates:
        return []
    running = running_sessions(engine)
    if running is None:
        return []  # the engine cannot tell which containers still run
    new: list[Finding] = []
    with _quiet_errors(store), store.locked():
        for path in candidates:
            loaded = _load(store, path)
            if loaded is None or loaded[0].id in running:
                continue
            new += _conclude(loaded[0], loaded[1])
            with contextlib.suppress(OSError):
                path.unlink()
        _collect_garbage(store, at_most=MAX_OBJECTS)
    notice(new, root=project.root)
    return new


def settle_with_any_engine(project: Project) -> list[Finding]:
    """`settle` for commands that have no engine at hand (`ps`, `guard`): the configured
    one when it can be found, else only what needs none."""
    from aishell.engine import choice
    from aishell.errors import AishellError

    try:
        engine: Engine | None = choice.get_engine()
    except AishellError:
        engine = None
    return settle(project, engine)


def running_sessions(engine: Engine | None) -> set[str] | None:
    """The guard session IDs of the containers that exist (None: unknown)."""
    if engine is None:
        return None
    try:
        result = engine.capture(
            "ps", "-a", "--filter", f"label={LABEL_GUARD_SESSION}", "--format", "{{json .}}"
        )
    except Exception:
        return None
    if not result.ok:
        return None
    found = set()
    for item in parse_json_lines(result.stdout):
        labels = parse_label_string(item.get("Labels"))
        sid = labels.get(LABEL_GUARD_SESSION)
        state = str(item.get("State") or "").lower()
        if sid and state not in ("exited", "dead", "removing", "stopped"):
            found.add(sid)
    return found


def _collect_garbage(store: Store, *, at_most: int = 0) -> None:
    """Remove kept copies nothing refers to any more; with `at_most`, only once there
    are more than that many (a session's copies are the next one's: no churn)."""
    if not store.objects.is_dir():
        return
    if at_most:
        with os.scandir(store.objects) as entries:
            if sum(1 for _ in entries) <= at_most:
                return
    wanted: set[str] = set()
    for f in store.pending():
        wanted.update(d for d in (f.before, f.after) if d)
    for path in store.session_files():
        loaded = _load(store, path)
        if loaded is not None:
            wanted.update(s.digest for s in loaded[1].values() if s.kind == "file")
    for obj in store.objects.iterdir():
        if obj.name not in wanted:
            with contextlib.suppress(OSError):
                obj.unlink()


def acknowledge(project: Project) -> list[Finding]:
    """Mark the pending findings seen: they are no longer shown (and repositories and
    artifacts with the same fingerprint are not reported again)."""
    store = Store(project)
    with store.locked():
        pending = store.pending()
        acked = store.acked() | {f.fingerprint for f in pending if f.fingerprint}
        store.write_json("acked.json", {"version": VERSION, "fingerprints": sorted(acked)})
        with contextlib.suppress(OSError):
            (store.dir / "pending.json").unlink()
        _collect_garbage(store)
    return pending


# --------------------------------------------------------------------------- output


def line_of(f: Finding) -> str:
    text = f"{f.change:<8} {f.path}: {f.why}"
    return text + (f" ({f.detail})" if f.detail else "")


def notice(findings: Sequence[Finding], *, root: str) -> None:
    """One short notice on stderr."""
    if not findings:
        return
    n = len(findings)
    moved = any(redirects.MOVED_MARK in f.detail for f in findings)
    output.warn(
        f"the sandbox left {n} change{'s' if n != 1 else ''} in {root} that programs on "
        "this machine run or obey ("
        + (
            "git redirects were moved aside, nothing else was reverted"
            if moved
            else "nothing was reverted"
        )
        + "):"
    )
    for f in findings:
        output.info("  " + line_of(f))
    output.info("  See the changes: aishell guard diff   Mark them seen: aishell guard ack")


def diff(project: Project, only: Iterable[str] = ()) -> list[str]:
    """Unified diffs, kept copy before the session -> the file now, of the pending
    file findings (or those of the paths in `only`)."""
    store = Store(project)
    wanted = set(only)
    lines: list[str] = []
    for f in store.pending():
        if f.kind != "file" or (wanted and f.path not in wanted):
            continue
        path = f.path if os.path.isabs(f.path) else os.path.join(project.root, f.path)
        old = store.object(f.before) if f.before else b""
        if f.before and old is None:
            lines.append(f"--- {f.path}: no copy was kept (larger than {MAX_COPY} bytes)")
            continue
        try:
            with open(path, "rb") as fh:
                now = fh.read(MAX_READ)
        except OSError:
            now = b""
        if b"\0" in (old or b"") or b"\0" in now:
            lines.append(f"Binary file {f.path} {f.change}")
            continue
        import difflib  # (only `guard diff` needs it)

        lines += difflib.unified_diff(
            (old or b"").decode("utf-8", "replace").splitlines(),
            now.decode("utf-8", "replace").splitlines(),
            fromfile=f"{f.path} (before the session)" if f.before else "/dev/null",
            tofile=f"{f.path} (now)" if f.change != "removed" else "/dev/null",
            lineterm="",
        )
        if f.change == "mode":
            lines.append(f"mode change {f.path}: {f.detail}")
    return lines


# --------------------------------------------------------------------------- status


class Status(NamedTuple):
    """What `aishell check` shows about the host boundary."""

    pending: tuple[Finding, ...]
    swept: sweep.SweepResult
    repositories: tuple[sweep.Repository, ...]  # not acknowledged, not already pending
    redirect: str | None  # why aishell's git refuses this repository
    redirect_hint: str | None


def status(
    project: Project, engine: Engine | None, *, host_uid: int, extra_roots: Sequence[str] = ()
) -> Status:
    """Finish sessions that are over, then the pending findings, a fresh sweep of the
    project (and `extra_roots`) and whether the repository is redirected."""
    settle(project, engine)
    store = Store(project)
    pending = tuple(store.pending())
    gitdirs = git_dirs(project.root)
    swept = sweep.sweep(
        [project.root, *extra_roots],
        host_uid=host_uid,
        skip_gitdirs=[g for g, _ in gitdirs],
        known=store.acked() | {f.fingerprint for f in pending if f.fingerprint},
    )
    repos = swept.repositories
    layout = hostgit.locate(project.root)
    if layout is not None and layout.problem:
        return Status(pending, swept, repos, layout.problem, hostgit.refusal_hint(layout))
    return Status(pending, swept, repos, None, None)
