"""Trust on change: the project's aishell config takes effect only once approved.

The project's config directory (`.aishell/` or its alias `.sandbox/`: `config.yaml`,
`Dockerfile` and every other file in it, the build context of the project image) is
written by whoever can write the project, the agent included. So a launch uses it
only when its exact content is what the user approved:

- `snapshot` reads the whole directory once (no symlink followed below it, bounded)
  into memory; its `digest` covers every entry's path, kind, mode and content.
- Approvals live outside every sandbox, in `~/.aishell/projects/<key>/trust/`
  (`<key>`: `Project.store_key`, a hash of the canonical project path): a record
  (`approved.json`: digest, time) and a copy of the approved content (`approved/`),
  which later changes are shown against as a unified diff.
- A launch whose snapshot matches the approval reads the project config from that
  snapshot (never a second read of the file) and builds the project image from the
  approved copy: what the agent changes afterwards cannot reach the launch.
- A change that only narrows the sandbox (`narrows`: mounts removed or made
  read-only, ports removed, a stricter network policy, `pre_start` removed,
  detection tightened; nothing else changed) is approved automatically, and said so.

Everything shown on the terminal is agent-written text: control characters and
bidirectional overrides are made visible (`visible`), so nothing can hide a line.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

from aishell import fileio, output, paths
from aishell.constants import CONFIG_FILE, DOCKERFILE
from aishell.errors import AishellError, ConfigError
from aishell.tuples import NamedTuple

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from aishell.config import Expansion, FileConfig
    from aishell.project import Project

TrustState = Literal["none", "approved", "new", "changed"]

VERSION: Final = 1
MAX_ENTRIES: Final = 2000  # files, directories and links in the config directory
MAX_TOTAL_BYTES: Final = 64 << 20  # the whole directory: it is read on every launch
EFFECTIVE: Final = (CONFIG_FILE, DOCKERFILE)  # what aishell itself reads (symlinks followed)
SHOWN_LINES: Final = 400  # lines of diff a launch shows before it refers to `aishell trust`

_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_O_NOCTTY = getattr(os, "O_NOCTTY", 0)


class Entry(NamedTuple):
    """One entry of the config directory."""

    rel: str  # POSIX path relative to the config directory
    kind: Literal["file", "dir", "link", "other"]
    mode: int  # permission bits (files and directories), 0 otherwise
    data: bytes = b""  # a file's content
    link: str = ""  # a symlink's target (for `EFFECTIVE` files: the link they were read through)


class Snapshot(NamedTuple):
    """The config directory as one launch read it."""

    name: str  # ".aishell" or ".sandbox"
    location: str  # the real path when the directory itself is a symlink, else ""
    entries: tuple[Entry, ...]  # sorted by `rel`

    @property
    def digest(self) -> str:
        from aishell.hashing import sha256

        h = sha256(f"aishell-trust-{VERSION}\0{self.name}\0{self.location}\0".encode())
        for e in self.entries:
            h.update(e.rel.encode("utf-8", "surrogateescape") + b"\0")
            h.update(f"{e.kind}\0{e.mode:o}\0".encode())
            h.update(sha256(e.data).digest())
            h.update(e.link.encode("utf-8", "surrogateescape") + b"\0")
        return h.hexdigest()

    def get(self, rel: str) -> Entry | None:
        return next((e for e in self.entries if e.rel == rel), None)

    @property
    def takes_effect(self) -> bool:
        """A `config.yaml` or a `Dockerfile` is there: otherwise aishell reads nothing
        of the directory and there is nothing to approve."""
        return any(self.get(name) is not None for name in EFFECTIVE)

    def reader(self, config_dir: Path) -> Callable[[Path], str | None]:
        """Reads `config_dir/config.yaml` from this snapshot (for `config.load_config`)."""
        from aishell.config.loader import config_text

        def read(path: Path) -> str | None:
            if path != config_dir / CONFIG_FILE:
                from aishell.config.loader import read_config_file

                return read_config_file(path)
            entry = self.get(CONFIG_FILE)
            if entry is None:
                return None
            if entry.kind != "file":
                raise ConfigError(
                    f"Cannot read {path}: it is not a regular file",
                    hint="a config file must be a regular file (or a symlink to one)",
                )
            return config_text(path, entry.data)

        return read


class Record(NamedTuple):
    """An approval: which content, when."""

    digest: str
    approved_at: str  # ISO 8601, UTC
    name: str  # the config directory's name then


class Status(NamedTuple):
    state: TrustState  # none: nothing to approve (no config dir, or nothing aishell reads)
    config_dir: Path | None
    snapshot: Snapshot | None
    record: Record | None

    @property
    def trusted(self) -> bool:
        return self.state in ("none", "approved")


# ------------------------------------------------------------------ reading


def _limit_error(config_dir: Path, what: str) -> AishellError:
    return AishellError(
        f"{config_dir} holds {what}; aishell reads all of it on every launch "
        "(it is the project image's build context)",
        hint="keep .aishell/ small: move large files elsewhere and COPY them from a "
        "directory the Dockerfile builds from, or fetch them in the Dockerfile",
    )


def _kind_of(mode: int) -> Literal["file", "dir", "link", "other"]:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISLNK(mode):
        return "link"
    return "other"


class _Walk:
    """Reads a directory tree through file descriptors: below the top, no symlink is
    ever followed (a directory swapped for a link mid-walk is not entered)."""

    def __init__(self, config_dir: Path) -> None:
        self.config_dir = config_dir
        self.entries: list[Entry] = []
        self.total = 0

    def fail(self, rel: str, exc: OSError) -> AishellError:
        where = self.config_dir / rel if rel else self.config_dir
        return AishellError(
            f"cannot read {where}: {exc.strerror or exc}",
            hint="aishell must read the whole project config directory to check it",
        )

    def add(self, entry: Entry) -> None:
        self.entries.append(entry)
        self.total += len(entry.data)
        if len(self.entries) > MAX_ENTRIES:
            raise _limit_error(self.config_dir, f"more than {MAX_ENTRIES} entries")
        if self.total > MAX_TOTAL_BYTES:
            raise _limit_error(self.config_dir, f"more than {MAX_TOTAL_BYTES >> 20} MiB")

    def read_file(self, dir_fd: int, name: str, rel: str, *, follow: bool) -> Entry:
        flags = os.O_RDONLY | _O_NONBLOCK | _O_NOCTTY | os.O_CLOEXEC
        if not follow:
            flags |= _O_NOFOLLOW
        else:  # through a link: what it points to is opened only when it is a regular file
            kind = _kind_of(os.stat(name, dir_fd=dir_fd).st_mode)
            if kind != "file":
                return Entry(rel, kind, 0)
        fd = os.open(name, flags, dir_fd=dir_fd)
        try:
            info = os.fstat(fd)
            kind = _kind_of(info.st_mode)
            if kind != "file":
                return Entry(rel, kind, 0)
            data = fileio.read_fd(fd, MAX_TOTAL_BYTES - self.total)
        finally:
            os.close(fd)
        if len(data) > MAX_TOTAL_BYTES - self.total:
            raise _limit_error(self.config_dir, f"more than {MAX_TOTAL_BYTES >> 20} MiB")
        return Entry(rel, "file", stat.S_IMODE(info.st_mode), data)

    def walk(self, dir_fd: int, prefix: str) -> None:
        with os.scandir(dir_fd) as listing:
            names = sorted(e.name for e in listing)
        for name in names:
            rel = prefix + name
            try:
                info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                kind = _kind_of(info.st_mode)
                if kind == "link":
                    target = os.readlink(name, dir_fd=dir_fd)
                    if not prefix and name in EFFECTIVE:
                        # aishell reads these through the link: what counts is the content
                        entry = self.read_file(dir_fd, name, rel, follow=True)
                        self.add(entry._replace(link=target))
                    else:
                        self.add(Entry(rel, "link", 0, link=target))
                elif kind == "file":
                    self.add(self.read_file(dir_fd, name, rel, follow=False))
                elif kind == "dir":
                    self.add(Entry(rel, "dir", stat.S_IMODE(info.st_mode)))
                    sub = os.open(
                        name,
                        os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW | os.O_CLOEXEC,
                        dir_fd=dir_fd,
                    )
                    try:
                        self.walk(sub, rel + "/")
                    finally:
                        os.close(sub)
                else:
                    self.add(Entry(rel, "other", 0))
            except FileNotFoundError:
                continue  # gone while we looked (or a dangling link for EFFECTIVE)
            except OSError as exc:
                raise self.fail(rel, exc) from exc


def snapshot(config_dir: Path) -> Snapshot:
    """Read `config_dir` (the project's `.aishell/` or `.sandbox/`) whole."""
    location = ""
    if os.path.islink(config_dir):
        location = os.path.realpath(config_dir)
    walk = _Walk(config_dir)
    try:
        fd = os.open(config_dir, os.O_RDONLY | _O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise walk.fail("", exc) from exc
    try:
        walk.walk(fd, "")
    except OSError as exc:
        raise walk.fail("", exc) from exc
    finally:
        os.close(fd)
    return Snapshot(config_dir.name, location, tuple(sorted(walk.entries)))


# ------------------------------------------------------------------ the store


def trust_dir(project: Project) -> Path:
    return paths.projects_dir() / project.store_key / "trust"


def approved_dir(project: Project) -> Path:
    """The copy of the approved content (the build context of the project image)."""
    return trust_dir(project) / "approved"


def load_record(project: Project) -> Record | None:
    try:
        data = json.loads((trust_dir(project) / "approved.json").read_text(encoding="utf-8"))
        return Record(str(data["digest"]), str(data["approved_at"]), str(data["name"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def status(project: Project, config_dir: Path | None) -> Status:
    """What a launch in `project` would find: its config directory (as found by
    `config.find_project_config_dir`), read, compared with the approval."""
    if config_dir is None:
        return Status("none", None, None, None)
    snap = snapshot(config_dir)
    record = load_record(project)
    if not snap.takes_effect:
        return Status("none", config_dir, snap, record)
    if record is not None and record.digest == snap.digest:
        return Status("approved", config_dir, snap, record)
    return Status("new" if record is None else "changed", config_dir, snap, record)


def approved_snapshot(project: Project) -> Snapshot | None:
    """The approved content, read back from its copy (None when there is none)."""
    record = load_record(project)
    directory = approved_dir(project)
    if record is None or not directory.is_dir():
        return None
    snap = snapshot(directory)
    return snap._replace(name=record.name, location="")


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    import fcntl

    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(directory / ".lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def write_tree(snap: Snapshot, target: Path) -> None:
    """Write the snapshot's content as a directory tree at `target` (new)."""
    target.mkdir(mode=0o700)
    dirs: list[tuple[Path, int]] = []
    for e in snap.entries:
        path = target / e.rel
        if e.kind == "dir":
            path.mkdir(mode=0o700)
            dirs.append((path, e.mode))
        elif e.kind == "file":
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(e.data)
                os.fchmod(fh.fileno(), e.mode)
        elif e.kind == "link":
            os.symlink(e.link, path)
        # "other" (FIFOs, sockets, devices): nothing a build could use; not copied
    for path, mode in reversed(dirs):
        os.chmod(path, mode | 0o700)


def approve(project: Project, snap: Snapshot) -> Record:
    """Record `snap` as approved for `project` and keep a copy of it."""
    directory = trust_dir(project)
    record = Record(snap.digest, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), snap.name)
    with _locked(directory):
        tmp = directory / f"approved.new-{os.getpid()}"
        old = directory / f"approved.old-{os.getpid()}"
        import shutil  # (lazy: not on every launch)

        for leftover in (tmp, old):
            shutil.rmtree(leftover, ignore_errors=True)
        try:
            write_tree(snap, tmp)
            current = directory / "approved"
            if current.exists():
                os.replace(current, old)
            os.replace(tmp, current)
            payload = {
                "version": VERSION,
                "project": project.canonical,
                "digest": record.digest,
                "approved_at": record.approved_at,
                "name": record.name,
            }
            meta = directory / f"approved.json.{os.getpid()}.tmp"
            meta.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
            os.replace(meta, directory / "approved.json")
        except OSError as exc:
            raise AishellError(
                f"cannot record the approval in {directory}: {exc.strerror or exc}",
                hint="check the permissions of your aishell home",
            ) from exc
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(old, ignore_errors=True)
    return record


# ------------------------------------------------------------------ showing it

# Control characters (C0 but tab, DEL, C1) and the bidirectional and invisible
# format characters that can make a terminal show something else than the text.
_INVISIBLE = frozenset(
    (
        *range(0x00, 0x09),
        *range(0x0A, 0x20),
        0x7F,
        *range(0x80, 0xA0),
        *(0x061C, 0x200B, 0x200C, 0x200D, 0x200E, 0x200F, 0x2028, 0x2029, 0xFEFF),
        *range(0x202A, 0x202F),
        *range(0x2060, 0x2065),
        *range(0x2066, 0x206A),
    )
)


def visible(text: str) -> str:
    """`text` with every character that could hide or reorder what a terminal shows
    written as an escape (`\\x1b`, `\\u202e`)."""
    if all(ord(c) not in _INVISIBLE for c in text):
        return text
    out = []
    for c in text:
        code = ord(c)
        if code in _INVISIBLE:
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(c)
    return "".join(out)


def _text_lines(entry: Entry | None) -> list[str] | None:
    """The lines of a text file entry; None when it is binary."""
    if entry is None:
        return []
    if entry.kind != "file":
        return [_describe(entry)]
    if b"\0" in entry.data[:8192]:
        return None
    text = entry.data.decode("utf-8", "backslashreplace")
    return text.splitlines()


def _describe(entry: Entry) -> str:
    if entry.kind == "link":
        return f"(symlink to {entry.link})"
    if entry.kind == "dir":
        return f"(directory, mode {entry.mode:o})"
    if entry.kind == "other":
        return "(not a regular file: FIFO, socket or device)"
    from aishell.hashing import sha256

    return f"(binary file, {len(entry.data)} bytes, sha256 {sha256(entry.data).hexdigest()[:16]})"


def diff_lines(old: Snapshot | None, new: Snapshot) -> list[str]:
    """A unified diff from the approved content (`old`, None: nothing approved yet)
    to `new`, file by file, made safe to print."""
    lines: list[str] = []
    name = new.name
    if new.location:
        lines.append(visible(f"{name}/ is a symlink to {new.location}"))
    before = {e.rel: e for e in old.entries} if old else {}
    after = {e.rel: e for e in new.entries}
    for rel in sorted(set(before) | set(after)):
        a, b = before.get(rel), after.get(rel)
        if a == b or (a is not None and b is not None and a.kind == b.kind == "dir"):
            if a is not None and b is not None and a.mode != b.mode:
                lines.append(visible(f"mode of {name}/{rel}: {a.mode:o} -> {b.mode:o}"))
            continue
        label = visible(f"{name}/{rel}")
        if b is not None and b.link and b.kind == "file":
            lines.append(visible(f"{name}/{rel} is read through a symlink to {b.link}"))
        if a is not None and b is not None and a.kind == b.kind == "file" and a.data == b.data:
            lines.append(f"mode of {label}: {a.mode:o} -> {b.mode:o}")
            continue
        old_lines, new_lines = _text_lines(a), _text_lines(b)
        if old_lines is None or new_lines is None:
            what = "added" if a is None else ("removed" if b is None else "changed")
            shown = _describe(b) if b is not None else _describe(a) if a is not None else ""
            lines.append(f"{label}: binary file {what} {shown}")
            continue
        import difflib  # (lazy: only a diff needs it)

        lines += [
            visible(line.rstrip("\n"))
            for line in difflib.unified_diff(
                old_lines,
                new_lines,
                fromfile="/dev/null" if a is None else f"approved {label}",
                tofile="/dev/null" if b is None else f"now {label}",
                lineterm="",
            )
        ]
    return lines


def colour(line: str) -> str:
    if line.startswith(("+++", "---")):
        return output.style(line, "1")
    if line.startswith("+"):
        return output.style(line, "32")
    if line.startswith("-"):
        return output.style(line, "31")
    if line.startswith("@@"):
        return output.style(line, "36")
    return line


def show(lines: Sequence[str], *, limit: int | None = None, hint: str = "") -> None:
    shown = lines if limit is None else lines[:limit]
    for line in shown:
        output.info(colour(line))
    if len(shown) < len(lines):
        output.info(f"... {len(lines) - len(shown)} more lines{hint}")


# ------------------------------------------------------------------ narrowing


def _mounts_narrow(old: FileConfig, new: FileConfig) -> bool:
    for m in new.mounts:
        if not any(
            o.source == m.source and o.target == m.target and (m.readonly or not o.readonly)
            for o in old.mounts
        ):
            return False
    return True


_MODE_RANK = {"none": 0, "allowlist": 1, "open": 2}


def _network_narrows(old: FileConfig, new: FileConfig) -> bool:
    a, b = old.network, new.network
    if a == b:
        return True
    if b.mode is None:  # the project stops setting a mode: the global one applies
        return a.mode is None and b == a
    if a.mode is None:  # the project starts tightening (it can only tighten)
        return True
    if _MODE_RANK.get(b.mode, 9) < _MODE_RANK.get(a.mode, 0):
        return True
    if b.mode != a.mode:
        return False
    if b.mode != "allowlist":
        return b == a
    return set(b.allow or ()) <= set(a.allow or ()) and set(b.presets or ()) <= set(a.presets or ())


def _detection_narrows(old: FileConfig, new: FileConfig) -> bool:
    a, b = old.detection, new.detection
    enabled = b.enabled == a.enabled or b.enabled is True or (b.enabled is None and not a.enabled)
    patterns = set(a.custom_patterns) <= set(b.custom_patterns)
    allowed = set(b.allowlist) <= set(a.allowlist)
    return enabled and patterns and allowed


def narrows(old: FileConfig, new: FileConfig) -> bool:
    """`new` (a project config file) reaches nothing `old` did not: the only
    differences are mounts removed or made read-only, ports removed, a stricter or
    newly set network policy, `pre_start` removed, detection turned on or tightened,
    `git_internals` set to `read-only`.
    Anything else (or any doubt) is not narrowing."""
    same = (
        "extends",
        "env",
        "docker_args",
        "harness_args",
        "gitleaks_freshness_check",
        "gitleaks_freshness_threshold",
        "tmux",
        "base_image",
        "ca_certificates",
        "engine",
    )
    if any(getattr(old, key) != getattr(new, key) for key in same):
        return False
    if not set(new.ports) <= set(old.ports):
        return False
    if new.pre_start is not None and new.pre_start != old.pre_start:
        return False  # (None: removed, or `pre_start:` clearing the global one)
    if new.git_internals not in (old.git_internals, "read-only"):
        return False  # (None: the global setting decides, which may be `writable`)
    return _mounts_narrow(old, new) and _network_narrows(old, new) and _detection_narrows(old, new)


def only_config_changed(old: Snapshot, new: Snapshot) -> bool:
    """Everything but `config.yaml` is the same (the build context included)."""
    if (old.name, old.location) != (new.name, new.location):
        return False
    rest = [e for e in old.entries if e.rel != CONFIG_FILE]
    return rest == [e for e in new.entries if e.rel != CONFIG_FILE]


def narrowing_change(
    project: Project, st: Status, *, expansion: Expansion, aishell_home: Path
) -> bool:
    """The snapshot differs from the approved one only by a narrowing config change."""
    if st.state != "changed" or st.snapshot is None or st.config_dir is None:
        return False
    old = approved_snapshot(project)
    if old is None or old.digest != (st.record.digest if st.record else None):
        return False
    if not only_config_changed(old, st.snapshot):
        return False
    old_config = _file_config(old, st.config_dir, project, expansion, aishell_home)
    new_config = _file_config(st.snapshot, st.config_dir, project, expansion, aishell_home)
    if old_config is None or new_config is None:
        return False
    return narrows(old_config, new_config)


def _file_config(
    snap: Snapshot, config_dir: Path, project: Project, expansion: Expansion, home: Path
) -> FileConfig | None:
    from aishell.config import load_file

    try:
        part = load_file(
            config_dir / CONFIG_FILE,
            scope="project",
            base_dir=Path(project.root),
            expansion=expansion,
            global_path=str(home / CONFIG_FILE),
            read=snap.reader(config_dir),
        )
    except ConfigError:
        return None
    if part is None:  # no config.yaml: an empty project config
        from aishell.config import FileConfig

        return FileConfig(path=str(config_dir / CONFIG_FILE), scope="project")
    return part


# ------------------------------------------------------------------ the gate


def approve_command(project: Project) -> str:
    import shlex

    return f"cd {shlex.quote(project.root)} && aishell trust"


def headline(st: Status) -> str:
    where = st.config_dir.name if st.config_dir else ".aishell"
    if st.state == "new":
        return f"The project's aishell config ({where}/) is not approved yet"
    return f"The project's aishell config ({where}/) changed since you approved it"


def gate(
    project: Project,
    st: Status,
    *,
    interactive: bool,
    expansion: Expansion,
    aishell_home: Path,
    ask: Callable[[str], bool] = output.ask_yes_no,
) -> Status:
    """Let the launch go on only with approved content: approved or nothing to
    approve; a narrowing change (approved now, with a word); on a terminal, the
    user's yes after seeing the diff. Otherwise AishellError (no terminal) or
    Aborted (the user said no). Returns the status the launch goes on with."""
    if st.trusted or st.snapshot is None:
        return st
    if narrowing_change(project, st, expansion=expansion, aishell_home=aishell_home):
        record = approve(project, st.snapshot)
        output.info(
            f"The project's aishell config ({st.snapshot.name}/) changed only in ways "
            "that narrow the sandbox (or only in form); approved without asking."
        )
        return st._replace(state="approved", record=record)
    if not interactive:
        raise AishellError(
            f"{headline(st)}, and there is no terminal to ask",
            hint=f"review and approve it with '{approve_command(project)}' "
            "(it can widen what the sandbox reaches)",
        )
    old = approved_snapshot(project) if st.state == "changed" else None
    output.info(output.style(headline(st) + ":", "1"))
    show(
        diff_lines(old, st.snapshot),
        limit=SHOWN_LINES,
        hint=f"; see them all with '{approve_command(project)}'",
    )
    output.info(
        "It takes effect only once you approve it: it can widen what the sandbox "
        "reaches (mounts, network, options, the image it builds)."
    )
    if not ask("Trust this configuration?"):
        from aishell.errors import Aborted

        raise Aborted("Aborted.")
    record = approve(project, st.snapshot)
    return st._replace(state="approved", record=record)


def status_json(st: Status | None, error: str | None = None) -> dict[str, object]:
    """The trust state for `info --json` / `check --json` (docs/json-output.md)."""
    if st is None:
        return {
            "state": None,
            "config_dir": None,
            "digest": None,
            "approved_digest": None,
            "approved_at": None,
            "error": error,
        }
    return {
        "state": st.state,
        "config_dir": str(st.config_dir) if st.config_dir else None,
        "digest": st.snapshot.digest if st.snapshot and st.snapshot.takes_effect else None,
        "approved_digest": st.record.digest if st.record else None,
        "approved_at": st.record.approved_at if st.record else None,
        "error": error,
    }
