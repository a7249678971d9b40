"""Reading config files: file → text → raw mapping (with lines) → `FileConfig` → `Config`.

`parse_config_text` turns YAML into a `RawConfig` that remembers the line of every
value; `normalize` validates one file's raw mapping key by key (`schema.KEYS` names
the check of each); `load_file` does both for one file, reusing a JSON cache of the
parse; `load_config` loads the global and project files and merges them, raising
the first error (launches); `inspect_config` does the same but reports every file
and error instead of raising (`aishell info`, `aishell check`).

`yaml` is imported lazily (inside `parse_config_text`): importing this module must
stay cheap, and a cached parse needs no YAML at all.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from aishell import fileio
from aishell.config.checks import Ctx, fmt, type_name
from aishell.config.merge import merge
from aishell.config.schema import (
    GLOBAL_ONLY_KEYS,
    KEYS_BY_NAME,
    PROJECT_ONLY_KEYS,
    TOP_LEVEL_KEYS,
    Config,
    FileConfig,
)
from aishell.config.values import Expansion, KeyPath, RawConfig, Scope
from aishell.constants import CONFIG_FILE, PROJECT_CONFIG_DIRS
from aishell.errors import AishellError, ConfigError
from aishell.hashing import short_hash
from aishell.tuples import NamedTuple

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from yaml.events import Event
    from yaml.nodes import Node, ScalarNode

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"


# ------------------------------------------------------------------ parsing

# Limits on one file's YAML, far above any real config (which needs a few dozen
# values): a hostile or runaway file fails at once instead of taking seconds and
# gigabytes. All the limits are listed in the `aishell.config` docstring.
MAX_DEPTH: Final = 32  # levels of nested lists and mappings
MAX_NODES: Final = 50_000  # values and keys, every use of an alias or merge key in full
MAX_NUMBER_CHARS: Final = 4300  # Python's own limit for int(); longer numbers are errors

_TOO_MANY = f"more than {MAX_NODES} values once aliases (*name) and merge keys (<<) are expanded"
_TOO_DEEP = f"nested more than {MAX_DEPTH} levels deep"
_NUL = "contains a NUL character (\\0), which cannot be passed to a program"
_NUMBER_TAGS = {"tag:yaml.org,2002:int": "integer", "tag:yaml.org,2002:float": "number"}
_SCALAR_KINDS = {
    **_NUMBER_TAGS,
    "tag:yaml.org,2002:bool": "boolean",
    "tag:yaml.org,2002:timestamp": "date",
}


def parse_config_text(text: str, *, path: str, scope: Scope) -> dict[str, Any]:
    """Parse YAML text into a `RawConfig` (a dict). An empty document is an empty
    mapping; anything but a mapping at the top level is an error.

    Bounded: at most `MAX_DEPTH` levels of nesting and `MAX_NODES` values (counted in
    the text first, then again as aliases and merge keys are expanded), numbers of at
    most `MAX_NUMBER_CHARS` characters, no NUL characters in strings.
    """
    import yaml

    try:
        from yaml import CSafeLoader as Loader
    except ImportError:  # pragma: no cover - PyYAML built without libyaml
        # The pure-Python loader has the same interface; mypy sees two classes.
        from yaml import SafeLoader as Loader  # type: ignore[assignment]

    raw = RawConfig()
    try:
        _check_events(yaml.parse(text, Loader=Loader), path)
        loader = Loader(text)
        try:
            node = loader.get_single_node()
            data = _Builder(loader, raw, path).build(node, ()) if node is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = exc.problem or exc.context or "parse error"
        if exc.context and exc.problem and exc.problem.startswith("but "):
            problem = f"{exc.context}, {exc.problem}"
        raise ConfigError(
            f"Invalid YAML in {path}{where}: {problem}",
            hint=f"fix the YAML syntax in {path}",
        ) from exc
    except yaml.YAMLError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "parse error"
        raise ConfigError(
            f"Invalid YAML in {path}: {first}", hint=f"fix the YAML syntax in {path}"
        ) from exc
    if data is None:
        return raw
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}:{raw.lines.get((), 1)}: the top level must be a mapping of keys, "
            f"got {type_name(data)}",
            hint=f"write `key: value` lines in {path} (see the Configuration section "
            "of the README)",
        )
    raw.update(data)
    return raw


def _invalid(path: str, line: int, problem: str) -> ConfigError:
    return ConfigError(
        f"Invalid YAML in {path} line {line}: {problem}", hint=f"fix the YAML in {path}"
    )


def _check_events(events: Iterator[Event], path: str) -> None:
    """Depth and size of the text as written, before anything is composed (libyaml's
    parser streams events without recursion; composing and building do recurse).

    A syntax error ends the scan silently: composing then stops at it too (or at an
    earlier error of its own, which is the one to report), having seen only events
    this scan has already bounded."""
    from yaml import YAMLError
    from yaml import events as ev

    depth = count = 0
    try:
        for event in events:
            if isinstance(event, ev.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise _invalid(path, _line(event), _TOO_DEEP)
            elif isinstance(event, ev.CollectionEndEvent):
                depth -= 1
                continue
            elif not isinstance(event, ev.ScalarEvent):
                continue
            count += 1
            if count > MAX_NODES:
                raise _invalid(path, _line(event), _TOO_MANY)
    except YAMLError:
        return


def _line(event: Event) -> int:
    return event.start_mark.line + 1 if event.start_mark is not None else 1


class _Builder:
    """Turns a composed YAML node tree into Python values, recording lines.

    Mapping keys are taken as their source text (so `on:` or `yes:` stay strings
    and never become booleans). Duplicate keys are errors; merge keys (`<<`) work:
    a mapping's own keys win over merged ones, and earlier merged mappings over later
    ones. Every node built (an alias once per use) and every merged key counts
    towards `MAX_NODES`.
    """

    def __init__(self, loader: Any, raw: RawConfig, path: str) -> None:
        import yaml

        self.yaml = yaml
        self.nodes = yaml.nodes
        self.loader = loader
        self.raw = raw
        self.path = path
        self.budget = MAX_NODES
        self.active: set[int] = set()
        self.merging: set[int] = set()
        self.flat: dict[int, list[tuple[Node, Node]]] = {}

    def fail(self, node: Node, problem: str) -> ConfigError:
        return _invalid(self.path, node.start_mark.line + 1, problem)

    def fail_at(self, kpath: KeyPath, node: Node, problem: str, hint: str) -> ConfigError:
        if not kpath:
            return self.fail(node, problem)
        return ConfigError(
            f"{self.path}:{node.start_mark.line + 1}: {fmt(kpath)}: {problem}", hint=hint
        )

    def spend(self, node: Node, n: int = 1) -> None:
        self.budget -= n
        if self.budget < 0:
            raise self.fail(node, _TOO_MANY)

    def build(self, node: Node, kpath: KeyPath) -> Any:
        self.spend(node)
        self.raw.lines.setdefault(kpath, node.start_mark.line + 1)
        if isinstance(node, self.nodes.ScalarNode):
            return self._scalar(node, kpath)
        if len(kpath) >= MAX_DEPTH:  # deep through aliases, though not in the text
            raise self.fail(node, _TOO_DEEP)
        if id(node) in self.active:
            raise self.fail(node, "recursive alias")
        self.active.add(id(node))
        try:
            if isinstance(node, self.nodes.SequenceNode):
                if node.tag != _SEQ_TAG:
                    raise self.fail(node, f"unsupported tag '{node.tag}'")
                return [self.build(item, (*kpath, i)) for i, item in enumerate(node.value)]
            if isinstance(node, self.nodes.MappingNode):
                return self._mapping(node, kpath)
            raise self.fail(node, "unsupported node")  # pragma: no cover
        finally:
            self.active.discard(id(node))

    def _scalar(self, node: ScalarNode, kpath: KeyPath) -> Any:
        text = node.value
        kind = _SCALAR_KINDS.get(node.tag)
        if node.tag in _NUMBER_TAGS and len(text) > MAX_NUMBER_CHARS:
            raise self.fail_at(
                kpath,
                node,
                f"a number of {len(text)} characters is too long (at most {MAX_NUMBER_CHARS})",
                "quote it if it is text",
            )
        try:
            value = self.loader.construct_object(node, deep=True)
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
            # A resolver's pattern matched but the value is impossible (2024-13-45), or
            # an explicit tag (`!!bool maybe`) names a type the text is not.
            shown = repr(text) if len(text) <= 40 else repr(text[:40]) + "…"
            detail = f" ({exc})" if isinstance(exc, ValueError) and kind == "date" else ""
            raise self.fail_at(
                kpath,
                node,
                f"{shown} is not a valid {kind or node.tag}{detail}",
                "quote it if it is text",
            ) from exc
        if isinstance(value, str):
            if "\0" in value:
                raise self.fail_at(kpath, node, _NUL, "remove it")
        elif not node.style and value is not None:
            self.raw.scalar_text[kpath] = text
        return value

    def _pairs(self, node: Any, kpath: KeyPath) -> list[tuple[Node, Node]]:
        """The mapping's key and value nodes with merge keys (`<<`) resolved, each key
        once: its first position, the value that wins."""
        if id(node) in self.flat:
            return self.flat[id(node)]
        if id(node) in self.merging:
            raise self.fail(node, "recursive alias")
        self.merging.add(id(node))
        merged: dict[str, tuple[Node, Node]] = {}
        own: dict[str, tuple[Node, Node]] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, self.nodes.ScalarNode):
                raise self.fail(key_node, "mapping keys must be plain strings")
            if "\0" in key_node.value:
                raise self.fail_at((*kpath, key_node.value), key_node, _NUL, "remove it")
            if key_node.tag == _MERGE_TAG:
                for source in self._merge_sources(node, value_node):
                    pairs = self._pairs(source, kpath)
                    self.spend(source, len(pairs))
                    for pair in pairs:
                        merged.setdefault(pair[0].value, pair)  # earlier mappings win
                continue
            if key_node.value in own:
                first = own[key_node.value][0].start_mark.line + 1
                raise ConfigError(
                    f"{self.path}:{key_node.start_mark.line + 1}: "
                    f"{fmt((*kpath, key_node.value))}: duplicate key (first on line {first}); "
                    "one would be ignored",
                    hint="merge the two entries into one",
                )
            own[key_node.value] = (key_node, value_node)
        merged.update(own)  # a mapping's own keys win over merged ones
        self.merging.discard(id(node))
        self.flat[id(node)] = pairs = list(merged.values())
        return pairs

    def _merge_sources(self, node: Node, value_node: Any) -> list[Node]:
        if isinstance(value_node, self.nodes.MappingNode):
            return [value_node]
        if isinstance(value_node, self.nodes.SequenceNode):
            for sub in value_node.value:
                if not isinstance(sub, self.nodes.MappingNode):
                    raise self.yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"expected a mapping for merging, but found {sub.id}",
                        sub.start_mark,
                    )
            return list(value_node.value)
        raise self.yaml.constructor.ConstructorError(
            "while constructing a mapping",
            node.start_mark,
            f"expected a mapping or list of mappings for merging, but found {value_node.id}",
            value_node.start_mark,
        )

    def _mapping(self, node: Any, kpath: KeyPath) -> dict[str, Any]:
        if node.tag != _MAP_TAG:
            raise self.fail(node, f"unsupported tag '{node.tag}'")
        result: dict[str, Any] = {}
        for key_node, value_node in self._pairs(node, kpath):
            self.spend(key_node)
            key = str(key_node.value)
            sub = (*kpath, key)
            self.raw.key_lines.setdefault(sub, key_node.start_mark.line + 1)
            result[key] = self.build(value_node, sub)
        return result


# ------------------------------------------------------------ normalisation


def normalize(
    raw: Mapping[str, Any],
    *,
    path: str,
    scope: Scope,
    base_dir: Path,
    expansion: Expansion,
    global_path: str | None = None,
) -> FileConfig:
    """Validate one file's raw mapping and bring every key to its single shape.

    Each key is checked by the normaliser its `schema.KEYS` entry names. `base_dir`
    anchors relative mount sources (the project root for a project file, the user's
    home for the global one); relative `ca_certificates` are relative to the home.
    `global_path` is named in "global-only key" errors.
    """
    ctx = Ctx(raw, path, expansion, base_dir=base_dir, top_level=TOP_LEVEL_KEYS)
    valid = [k for k in TOP_LEVEL_KEYS if k not in (PROJECT_ONLY_KEYS if scope == "global" else ())]
    for key in raw:
        kp: KeyPath = (key,)
        if not isinstance(key, str):
            raise ctx.error(kp, "keys must be strings", at_key=True)
        if scope == "project" and key in GLOBAL_ONLY_KEYS:
            where = global_path or "the global config file (~/.aishell/config.yaml)"
            raise ctx.error(
                kp,
                f"'{key}' is global-only; move it to {where}",
                hint=f"it configures your image stack, which is shared by all projects: "
                f"put it in {where}",
                at_key=True,
            )
        if scope == "global" and key in PROJECT_ONLY_KEYS:
            raise ctx.error(
                kp,
                f"'{key}' only means something in a project config; remove it from {path}",
                at_key=True,
            )
        if key not in valid:
            raise ctx.unknown_key(kp, valid)
    fields = {key: KEYS_BY_NAME[key].normalise(ctx, (key,), value) for key, value in raw.items()}
    return FileConfig(path=path, scope=scope, keys=frozenset(raw), lines=ctx.lines, **fields)


# ------------------------------------------------------------------ loading


def find_project_config_dir(project_root: Path, *, aishell_home: Path | None = None) -> Path | None:
    """The project's `.aishell/` or `.sandbox/` directory, None if neither exists.

    Both present is an error. A directory that *is* the global aishell home
    (a project rooted at the home directory) is not a project config dir, and
    neither is anything in the user's home directory itself ($HOME/.aishell is the
    default aishell home even when AISHELL_HOME points elsewhere).
    """
    from aishell.project import is_user_home

    if is_user_home(str(project_root)):
        return None
    home_real = os.path.realpath(aishell_home) if aishell_home is not None else None
    found = [
        project_root / name
        for name in PROJECT_CONFIG_DIRS
        if (project_root / name).is_dir()
        and (home_real is None or os.path.realpath(project_root / name) != home_real)
    ]
    if len(found) > 1:
        raise ConfigError(
            f"Found both {found[0].name}/ and {found[1].name}/ in {project_root}; "
            "remove or rename one of them",
            hint="aishell needs a single project config directory (.sandbox/ is an alias "
            "of .aishell/)",
        )
    return found[0] if found else None


MAX_FILE_BYTES: Final = 1 << 20  # 1 MiB; a config file is a few lines of YAML
Reader = Callable[[Path], str | None]  # a config file's text, None when it does not exist
# Opening a FIFO without O_NONBLOCK waits for a writer; neither flag exists on Windows.
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_NOCTTY = getattr(os, "O_NOCTTY", 0)

_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def read_config_file(path: Path) -> str | None:
    """The file's text, or None when it does not exist.

    Only a regular file (or a symlink to one) of at most `MAX_FILE_BYTES` is read:
    it is opened without blocking and checked with `fstat` first, so a FIFO, a
    device such as /dev/zero or a directory is one clean error, never a hang.
    Line ends are read as universal newlines.
    """
    try:
        fd = os.open(path, os.O_RDONLY | _O_NONBLOCK | os.O_CLOEXEC | _O_NOCTTY)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _unreadable(path, exc.strerror or str(exc)) from exc
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise _unreadable(path, os.strerror(errno.EISDIR))
        if not stat.S_ISREG(info.st_mode):
            kind = next((name for test, name in _KINDS if test(info.st_mode)), None)
            what = f"it is {kind}, not a regular file" if kind else "it is not a regular file"
            raise ConfigError(
                f"Cannot read {path}: {what}",
                hint="a config file must be a regular file (or a symlink to one)",
            )
        data = fileio.read_fd(fd, MAX_FILE_BYTES)  # (one byte more: a larger file shows)
    except OSError as exc:
        raise _unreadable(path, exc.strerror or str(exc)) from exc
    finally:
        os.close(fd)
    return config_text(path, data, size=info.st_size)


def config_text(path: Path, data: bytes, *, size: int = 0) -> str:
    """The text of a config file read as `data` (at most `MAX_FILE_BYTES`, UTF-8; line
    ends read as universal newlines). Also used for a file read by someone else (the
    trust snapshot of a project's `.aishell/`)."""
    if len(data) > MAX_FILE_BYTES:
        size = max(size, len(data))
        raise ConfigError(
            f"Cannot read {path}: it is larger than 1 MiB ({size} bytes)",
            hint="a config file is a few lines of YAML; check that this is the right file",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"Cannot read {path}: it is not UTF-8 text ({exc.reason})",
            hint="save the file as UTF-8",
        ) from exc
    return text.replace("\r\n", "\n").replace("\r", "\n")  # as text-mode reading does


def _unreadable(path: Path, reason: str) -> ConfigError:
    return ConfigError(f"Cannot read {path}: {reason}", hint="check that it is a readable file")


_CACHE_VERSION = "2"  # 2: parses made with the limits above


def _cache_file(cache_dir: Path, text: str, path: Path, scope: Scope) -> Path:
    key = short_hash("\0".join((_CACHE_VERSION, str(path), scope, text)), 32)
    return cache_dir / f"{key}.json"


def _raw_from_cache(cache: Path) -> RawConfig | None:
    """A parse of the same text cached as JSON (parsing YAML costs more than the launch
    can spare); None when there is none or it is unreadable."""
    try:
        data = json.loads(cache.read_text(encoding="utf-8"))
        raw = RawConfig(data["data"])
        raw.lines = {tuple(k): v for k, v in data["lines"]}
        raw.key_lines = {tuple(k): v for k, v in data["key_lines"]}
        raw.scalar_text = {tuple(k): v for k, v in data["scalar_text"]}
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return raw


def _raw_to_cache(cache: Path, raw: RawConfig) -> None:
    try:
        payload = json.dumps(
            {
                "data": dict(raw),
                "lines": [[list(k), v] for k, v in raw.lines.items()],
                "key_lines": [[list(k), v] for k, v in raw.key_lines.items()],
                "scalar_text": [[list(k), v] for k, v in raw.scalar_text.items()],
            }
        )
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(payload, encoding="utf-8")
        os.replace(tmp, cache)
    except (OSError, TypeError, ValueError):
        pass  # a cache is only a cache


def load_file(
    path: Path,
    *,
    scope: Scope,
    base_dir: Path,
    expansion: Expansion,
    global_path: str | None = None,
    cache_dir: Path | None = None,
    read: Reader | None = None,
) -> FileConfig | None:
    """Read, parse and normalise one config file; None when it does not exist.

    With `cache_dir`, the parse of a text that normalised cleanly before is
    reused from a JSON cache keyed by the text itself (never stale). `read`
    replaces `read_config_file` (a launch reads the project file from the snapshot
    it approved, see `trust`)."""
    text = (read or read_config_file)(path)
    if text is None:
        return None
    cache = _cache_file(cache_dir, text, path, scope) if cache_dir is not None else None
    raw: Mapping[str, Any] | None = _raw_from_cache(cache) if cache is not None else None
    cached = raw is not None
    if raw is None:
        raw = parse_config_text(text, path=str(path), scope=scope)
    result = normalize(
        raw,
        path=str(path),
        scope=scope,
        base_dir=base_dir,
        expansion=expansion,
        global_path=global_path,
    )
    if cache is not None and not cached and isinstance(raw, RawConfig):
        _raw_to_cache(cache, raw)
    return result


def load_config(
    *,
    aishell_home: Path,
    project_root: Path | None,
    expansion: Expansion,
    read_project: Reader | None = None,
) -> Config:
    """Load `<aishell_home>/config.yaml` and the project's config, and merge them.
    Raises the first `ConfigError`. `read_project` reads the project file instead of
    `read_config_file` (the text the user approved, never a second read of the file)."""
    global_path = aishell_home / CONFIG_FILE
    cache_dir = _cache_dir(aishell_home)
    global_part = load_file(
        global_path,
        scope="global",
        base_dir=Path(expansion.home),
        expansion=expansion,
        cache_dir=cache_dir,
    )
    project_part = None
    if project_root is not None:
        config_dir = find_project_config_dir(project_root, aishell_home=aishell_home)
        if config_dir is not None:
            project_part = load_file(
                config_dir / CONFIG_FILE,
                scope="project",
                base_dir=project_root,
                expansion=expansion,
                global_path=str(global_path),
                cache_dir=cache_dir,
                read=read_project,
            )
    return merge(global_part, project_part)


def _cache_dir(aishell_home: Path) -> Path:
    return aishell_home / "cache" / "config"


# --------------------------------------------------------------- inspecting


class FileReport(NamedTuple):
    """One config file as `inspect_config` found it."""

    scope: Scope
    path: str
    exists: bool  # a file is there (`Path.is_file`)
    error: str | None = None  # "message; hint" of its ConfigError
    config: FileConfig | None = None  # None when missing or invalid


class ConfigReport(NamedTuple):
    """Every config file (global first, then the project's), the merged result when
    all of them are valid, and the first error."""

    files: tuple[FileReport, ...]
    config: Config | None  # None when any file (or the project config dir) is invalid
    error: str | None  # the first error, "message; hint"
    project_config_dir: Path | None  # `.aishell/` or `.sandbox/`, when there is one

    def part(self, scope: Scope) -> FileConfig | None:
        """The normalised file of `scope` (for `merge.origins`), None if missing or invalid."""
        return next((f.config for f in self.files if f.scope == scope), None)


def _error_text(exc: AishellError) -> str:
    return f"{exc.message}; {exc.hint}" if exc.hint else exc.message


def inspect_config(
    *,
    aishell_home: Path,
    project_root: Path | None,
    expansion: Expansion,
    cache_dir: Path | None = None,
) -> ConfigReport:
    """Load both config files like `load_config`, but report instead of raising.

    Lists the global file, then the project's `config.yaml`; when the project has
    no config directory (or has both `.aishell/` and `.sandbox/`, which is itself
    the first error), the project entry is where one would go, marked missing and
    never read; with `project_root` None there is no project entry. Each entry says
    whether the file exists and its error, if any; `config` is the merged result
    only when every file is valid. No cache unless `cache_dir` is given (`aishell
    info` and `check` write nothing).
    """
    global_path = aishell_home / CONFIG_FILE
    first_error: str | None = None
    config_dir: Path | None = None
    try:
        if project_root is not None:
            config_dir = find_project_config_dir(project_root, aishell_home=aishell_home)
    except ConfigError as exc:
        first_error = _error_text(exc)
    candidates: list[tuple[Scope, Path, Path]] = [("global", global_path, Path(expansion.home))]
    if config_dir is not None and project_root is not None:
        candidates.append(("project", config_dir / CONFIG_FILE, project_root))
    files: list[FileReport] = []
    for scope, path, base_dir in candidates:
        try:
            part = load_file(
                path,
                scope=scope,
                base_dir=base_dir,
                expansion=expansion,
                global_path=str(global_path) if scope == "project" else None,
                cache_dir=cache_dir,
            )
        except ConfigError as exc:
            files.append(FileReport(scope, str(path), path.is_file(), _error_text(exc)))
            first_error = first_error or files[-1].error
        else:
            files.append(FileReport(scope, str(path), path.is_file(), None, part))
    if config_dir is None and project_root is not None:
        placeholder = project_root / PROJECT_CONFIG_DIRS[0] / CONFIG_FILE
        files.append(FileReport("project", str(placeholder), False))
    report = ConfigReport(tuple(files), None, first_error, config_dir)
    if first_error is None:
        report = report._replace(config=merge(report.part("global"), report.part("project")))
    return report
