"""Configuration: `~/.aishell/config.yaml` (global) and `<project>/.aishell/config.yaml`.

Pipeline, per file: read → `parse_config_text` (YAML → a raw mapping that remembers
the line of every value) → `normalize` (strict validation; every key brought to one
shape, paths and variables expanded) → `merge` (pure; global then project).

Shapes are normalised per file *before* merging, so a string `docker_args` never
turns into characters and a list-form `env` merges with a map-form one. Every key a
project file contains reaches the merged result; nothing is silently dropped.

`extends: none` in the project file drops everything the project would inherit from
the global file. The global-only keys (`base_image`, `ca_certificates`, `engine`) describe the
user's image stack, which a project cannot set, so they always come from the global
file.

`yaml` is imported lazily: importing this module must stay cheap.
"""

import difflib
import os
import re
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Literal, NamedTuple

from aishell.constants import CONFIG_FILE, PROJECT_CONFIG_DIRS
from aishell.errors import ConfigError
from aishell.harnesses import HARNESS_NAMES
from aishell.netpolicy import NetworkConfig

if TYPE_CHECKING:
    from yaml.nodes import Node

Scope = Literal["global", "project"]
KeyPath = tuple[str | int, ...]

TOP_LEVEL_KEYS: Final[tuple[str, ...]] = (
    "extends",
    "mounts",
    "env",
    "ports",
    "docker_args",
    "pre_start",
    "harness_args",
    "detection",
    "gitleaks_freshness_check",
    "gitleaks_freshness_threshold",
    "tmux",
    "base_image",
    "ca_certificates",
    "network",
    "engine",
)
GLOBAL_ONLY_KEYS: Final = frozenset({"base_image", "ca_certificates", "engine"})
ENGINES: Final[tuple[str, ...]] = ("docker", "podman")
PROJECT_ONLY_KEYS: Final = frozenset({"extends"})
SEVERITIES: Final[tuple[str, ...]] = ("high", "medium", "low")
DEFAULT_PATTERN_DESCRIPTION: Final = "Custom pattern match"

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_VAR = re.compile(r"\$(?:\{(HOME|UID|GID|USER)\}|(HOME|UID|GID|USER)(?![A-Za-z0-9_]))")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_PORT = re.compile(
    r"^(?:(?P<ip>[0-9.]+|\[[^\]]*\]):)?"
    r"(?P<host>\d+(?:-\d+)?):(?P<container>\d+(?:-\d+)?)"
    r"(?:/(?P<proto>[A-Za-z]+))?$"
)
_PROTOCOLS: Final = ("tcp", "udp", "sctp")
_MAP_TAG: Final = "tag:yaml.org,2002:map"
_SEQ_TAG: Final = "tag:yaml.org,2002:seq"
_MERGE_TAG: Final = "tag:yaml.org,2002:merge"


# --------------------------------------------------------------------------- data


class Mount(NamedTuple):
    source: str  # absolute host path, expanded, normalised (symlinks kept)
    target: str  # absolute container path (the container home is the host home path)
    readonly: bool
    origin: str  # the config file it came from


class EnvEntry(NamedTuple):
    name: str
    value: str | None  # None = passthrough from the host (`docker run -e NAME`)


class CustomPattern(NamedTuple):
    glob: str
    severity: str  # "high" | "medium" | "low"
    description: str = DEFAULT_PATTERN_DESCRIPTION


class AllowEntry(NamedTuple):
    path: str
    reason: str


class DetectionConfig(NamedTuple):
    enabled: bool = True
    custom_patterns: tuple[CustomPattern, ...] = ()
    allowlist: tuple[AllowEntry, ...] = ()


def _empty_harness_args() -> Mapping[str, tuple[str, ...]]:
    return MappingProxyType({})


_NO_HARNESS_ARGS: Mapping[str, tuple[str, ...]] = _empty_harness_args()


class Config(NamedTuple):
    """The merged configuration. Immutable: `harness_args` is a read-only mapping
    (`types.MappingProxyType`) harness name → argument tokens."""

    mounts: tuple[Mount, ...] = ()
    env: tuple[EnvEntry, ...] = ()  # global keys first, then new project keys
    ports: tuple[str, ...] = ()
    docker_args: tuple[str, ...] = ()  # tokens
    pre_start: str | None = None
    harness_args: Mapping[str, tuple[str, ...]] = _NO_HARNESS_ARGS
    detection: DetectionConfig = DetectionConfig()
    gitleaks_freshness_check: bool = True
    gitleaks_freshness_threshold: int = 7
    tmux: bool = True
    base_image: str | None = None  # global only
    engine: str | None = None  # global only: "docker" or "podman"; None: auto-detect
    ca_certificates: tuple[str, ...] = ()  # global only; absolute paths of PEM files
    sources: tuple[str, ...] = ()  # config files that were loaded, in order
    network: NetworkConfig = NetworkConfig()

    def args_for(self, harness: str) -> tuple[str, ...]:
        return self.harness_args.get(harness, ())


class Expansion(NamedTuple):
    """Values substituted for `~`, `$HOME`, `$UID`, `$GID`, `$USER`."""

    home: str
    uid: int
    gid: int
    user: str

    @classmethod
    def from_host(cls, environ: Mapping[str, str] | None = None) -> "Expansion":
        env = os.environ if environ is None else environ
        home = env.get("HOME") or str(Path.home())
        uid = os.getuid() if hasattr(os, "getuid") else 1000
        gid = os.getgid() if hasattr(os, "getgid") else 1000
        user = env.get("USER") or env.get("USERNAME") or ""
        if not user:
            try:
                import pwd

                user = pwd.getpwuid(uid).pw_name
            except (ImportError, KeyError):
                user = str(uid)
        return cls(home=home, uid=uid, gid=gid, user=user)


class FileConfig(NamedTuple):
    """One config file, validated and normalised; the input of `merge`.

    `keys` holds the top-level keys the file contains, so that a key present with
    a null/false value still overrides (e.g. `pre_start:` clears the global one).
    Optional scalars are None when the file does not set them.
    """

    path: str
    scope: Scope
    keys: frozenset[str] = frozenset()
    extends: Literal["global", "none"] = "global"
    mounts: tuple[Mount, ...] = ()
    env: tuple[EnvEntry, ...] = ()
    ports: tuple[str, ...] = ()
    docker_args: tuple[str, ...] = ()
    pre_start: str | None = None
    harness_args: tuple[tuple[str, tuple[str, ...]], ...] = ()
    detection_enabled: bool | None = None
    custom_patterns: tuple[CustomPattern, ...] = ()
    allowlist: tuple[AllowEntry, ...] = ()
    gitleaks_freshness_check: bool | None = None
    gitleaks_freshness_threshold: int | None = None
    tmux: bool | None = None
    base_image: str | None = None
    engine: str | None = None
    ca_certificates: tuple[str, ...] = ()
    network_mode: str | None = None
    network_allow: tuple[str, ...] | None = None
    network_presets: tuple[str, ...] | None = None


class RawConfig(dict[str, Any]):
    """A parsed YAML mapping that remembers where things were.

    `lines`: key path → line of the value; `key_lines`: key path → line of the key;
    `scalar_text`: key path → source text of plain scalars YAML turned into
    something other than a string (so `VERSION: 1.10` stays "1.10" in `env`).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lines: dict[KeyPath, int] = {}
        self.key_lines: dict[KeyPath, int] = {}
        self.scalar_text: dict[KeyPath, str] = {}


# ---------------------------------------------------------------------- expansion


def expand_vars(text: str, expansion: Expansion) -> str:
    """Expand a leading `~` (alone or before `/`) and `$HOME`, `${HOME}`, `$UID`,
    `$GID`, `$USER` (not followed by a name character). Other `$VARS` stay as they are."""
    if text == "~" or text.startswith("~/"):
        text = expansion.home + text[1:]
    values = {
        "HOME": expansion.home,
        "UID": str(expansion.uid),
        "GID": str(expansion.gid),
        "USER": expansion.user,
    }
    return _VAR.sub(lambda m: values[m.group(1) or m.group(2)], text)


# ------------------------------------------------------------------------ parsing


def parse_config_text(text: str, *, path: str, scope: Scope) -> dict[str, Any]:
    """Parse YAML text into a `RawConfig` (a dict). An empty document is an empty
    mapping; anything but a mapping at the top level is an error."""
    import yaml

    try:
        from yaml import CSafeLoader as Loader
    except ImportError:  # pragma: no cover - PyYAML built without libyaml
        from yaml import SafeLoader as Loader  # type: ignore[assignment]

    raw = RawConfig()
    loader = Loader(text)
    try:
        node = loader.get_single_node()
        data = _Builder(loader, raw, path).build(node, ()) if node is not None else None
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
    finally:
        loader.dispose()
    if data is None:
        return raw
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}:{raw.lines.get((), 1)}: the top level must be a mapping of keys, "
            f"got {_type_name(data)}",
            hint=f"write `key: value` lines in {path} (see the Configuration section "
            "of the README)",
        )
    raw.update(data)
    return raw


class _Builder:
    """Turns a composed YAML node tree into Python values, recording lines.

    Mapping keys are taken as their source text (so `on:` or `yes:` stay strings
    and never become booleans). Duplicate keys are errors; merge keys (`<<`) work.
    """

    def __init__(self, loader: Any, raw: RawConfig, path: str) -> None:
        self.loader = loader
        self.raw = raw
        self.path = path
        self.active: set[int] = set()
        self.checked: set[int] = set()

    def fail(self, node: "Node", problem: str) -> ConfigError:
        return ConfigError(
            f"Invalid YAML in {self.path} line {node.start_mark.line + 1}: {problem}",
            hint=f"fix the YAML in {self.path}",
        )

    def build(self, node: "Node", kpath: KeyPath) -> Any:
        from yaml.nodes import MappingNode, ScalarNode, SequenceNode

        self.raw.lines.setdefault(kpath, node.start_mark.line + 1)
        if isinstance(node, ScalarNode):
            value = self.loader.construct_object(node, deep=True)
            if not node.style and value is not None and not isinstance(value, str):
                self.raw.scalar_text[kpath] = node.value
            return value
        if id(node) in self.active:
            raise self.fail(node, "recursive alias")
        self.active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                if node.tag != _SEQ_TAG:
                    raise self.fail(node, f"unsupported tag '{node.tag}'")
                return [self.build(item, (*kpath, i)) for i, item in enumerate(node.value)]
            if isinstance(node, MappingNode):
                return self._mapping(node, kpath)
            raise self.fail(node, "unsupported node")  # pragma: no cover
        finally:
            self.active.discard(id(node))

    def _mapping(self, node: Any, kpath: KeyPath) -> dict[str, Any]:
        from yaml.nodes import ScalarNode

        if node.tag != _MAP_TAG:
            raise self.fail(node, f"unsupported tag '{node.tag}'")
        if id(node) not in self.checked:
            seen: dict[str, int] = {}
            for key_node, _ in node.value:
                if not isinstance(key_node, ScalarNode):
                    raise self.fail(key_node, "mapping keys must be plain strings")
                if key_node.tag == _MERGE_TAG:
                    continue
                if key_node.value in seen:
                    line = key_node.start_mark.line + 1
                    raise ConfigError(
                        f"{self.path}:{line}: {_fmt((*kpath, key_node.value))}: duplicate "
                        f"key (first on line {seen[key_node.value]}); one would be ignored",
                        hint="merge the two entries into one",
                    )
                seen[key_node.value] = key_node.start_mark.line + 1
            self.loader.flatten_mapping(node)
            self.checked.add(id(node))
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):  # pragma: no cover - merged maps
                raise self.fail(key_node, "mapping keys must be plain strings")
            key = str(key_node.value)
            sub = (*kpath, key)
            self.raw.key_lines.setdefault(sub, key_node.start_mark.line + 1)
            result[key] = self.build(value_node, sub)
        return result


# ------------------------------------------------------------------ normalisation


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "mapping"
    if isinstance(value, list | tuple):
        return "list"
    from datetime import date, datetime

    if isinstance(value, datetime):
        return "timestamp"
    if isinstance(value, date):
        return "date"
    if isinstance(value, bytes):
        return "binary"
    return type(value).__name__


def _fmt(kpath: KeyPath) -> str:
    out = ""
    for part in kpath:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENT.match(part):
            out += ("." if out else "") + part
        else:
            out += f"[{part!r}]"
    return out


def _suggest(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if not close and len(word) >= 3:  # an abbreviation: `desc` for `description`
        close = [c for c in choices if c.startswith(word.lower())][:1]
    return f" (did you mean '{close[0]}'?)" if close else ""


def _is_list(value: object) -> bool:
    return isinstance(value, list | tuple)


class _Ctx:
    def __init__(self, raw: Mapping[str, Any], path: str, expansion: Expansion) -> None:
        self.path = path
        self.expansion = expansion
        self.lines: dict[KeyPath, int] = getattr(raw, "lines", {})
        self.key_lines: dict[KeyPath, int] = getattr(raw, "key_lines", {})
        self.scalar_text: dict[KeyPath, str] = getattr(raw, "scalar_text", {})

    def line(self, kpath: KeyPath, *, at_key: bool = False) -> int | None:
        if at_key and kpath in self.key_lines:
            return self.key_lines[kpath]
        probe = kpath
        while True:
            if probe in self.lines:
                return self.lines[probe]
            if probe in self.key_lines:
                return self.key_lines[probe]
            if not probe:
                return None
            probe = probe[:-1]

    def error(
        self, kpath: KeyPath, problem: str, *, hint: str | None = None, at_key: bool = False
    ) -> ConfigError:
        line = self.line(kpath, at_key=at_key)
        where = f"{self.path}:{line}" if line is not None else self.path
        return ConfigError(f"{where}: {_fmt(kpath)}: {problem}", hint=hint)

    def type_error(
        self, kpath: KeyPath, expected: str, value: object, *, hint: str | None = None
    ) -> ConfigError:
        return self.error(kpath, f"expected {expected}, got {_type_name(value)}", hint=hint)

    def unknown_key(
        self, kpath: KeyPath, valid: Sequence[str], *, what: str = "key"
    ) -> ConfigError:
        key = str(kpath[-1])
        hint = f"valid {what}s here: {', '.join(valid)}"
        if len(kpath) > 1 and key in TOP_LEVEL_KEYS:
            hint = f"'{key}' is a top-level key; move it out of {_fmt(kpath[:-1])}"
        return self.error(
            kpath, f"unknown {what} '{key}'{_suggest(key, valid)}", hint=hint, at_key=True
        )

    def check_keys(self, kpath: KeyPath, value: Mapping[str, Any], valid: Sequence[str]) -> None:
        for key in value:
            if key not in valid:
                raise self.unknown_key((*kpath, key), valid)

    # typed readers -----------------------------------------------------------

    def boolean(self, kpath: KeyPath, value: object) -> bool:
        if isinstance(value, bool):
            return value
        hint = None
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            hint = f"write {value.strip().lower()} without quotes"
        raise self.type_error(kpath, "true or false", value, hint=hint)

    def string(self, kpath: KeyPath, value: object, *, what: str = "a string") -> str:
        if isinstance(value, str):
            return value
        hint = "quote it" if _is_scalar_non_string(value) else None
        raise self.type_error(kpath, what, value, hint=hint)

    def mapping(self, kpath: KeyPath, value: object) -> Mapping[str, Any]:
        if isinstance(value, Mapping):
            return value
        raise self.type_error(kpath, "a mapping", value)

    def items(self, kpath: KeyPath, value: object, what: str) -> Sequence[Any]:
        if _is_list(value):
            assert isinstance(value, list | tuple)
            return value
        raise self.type_error(kpath, what, value)


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

    `base_dir` anchors relative mount sources (the project root for a project
    file, the user's home for the global one); relative `ca_certificates` are
    relative to the home. `global_path` is named in "global-only key" errors.
    """
    ctx = _Ctx(raw, path, expansion)
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

    fields: dict[str, Any] = {}
    for key, value in raw.items():
        kp = (key,)
        if key == "extends":
            if value not in ("global", "none"):
                shown = repr(value) if isinstance(value, str) else _type_name(value)
                raise ctx.error(kp, f"expected 'global' or 'none', got {shown}")
            fields["extends"] = value
        elif key == "mounts":
            fields["mounts"] = _mounts(ctx, value, base_dir)
        elif key == "env":
            fields["env"] = _env(ctx, value)
        elif key == "ports":
            fields["ports"] = _ports(ctx, value)
        elif key == "docker_args":
            fields["docker_args"] = tuple(
                expand_vars(t, expansion) for t in _tokens(ctx, kp, value)
            )
        elif key == "pre_start":
            fields["pre_start"] = _pre_start(ctx, value)
        elif key == "harness_args":
            fields["harness_args"] = _harness_args(ctx, value)
        elif key == "detection":
            enabled, patterns, allow = _detection(ctx, value)
            fields.update(detection_enabled=enabled, custom_patterns=patterns, allowlist=allow)
        elif key in ("gitleaks_freshness_check", "tmux"):
            fields[key] = ctx.boolean(kp, value)
        elif key == "gitleaks_freshness_threshold":
            if isinstance(value, bool) or not isinstance(value, int):
                raise ctx.type_error(kp, "a whole number of days", value)
            if value < 1:
                raise ctx.error(kp, f"must be at least 1 (days), got {value}")
            fields[key] = value
        elif key == "base_image":
            fields[key] = _base_image(ctx, value)
        elif key == "engine":
            fields[key] = _engine(ctx, value)
        elif key == "ca_certificates":
            fields[key] = _ca_certificates(ctx, value)
        elif key == "network":
            fields.update(_network(ctx, value))
    return FileConfig(path=path, scope=scope, keys=frozenset(raw), **fields)


def _abs_path(text: str, base: str) -> str:
    return os.path.normpath(text if os.path.isabs(text) else os.path.join(base, text))


def _mounts(ctx: _Ctx, value: object, base_dir: Path) -> tuple[Mount, ...]:
    if value is None:
        return ()
    result: list[Mount] = []
    for i, item in enumerate(ctx.items(("mounts",), value, "a list of mounts")):
        kp: KeyPath = ("mounts", i)
        if isinstance(item, str):
            source, target, readonly = _split_mount(ctx, kp, item)
        elif isinstance(item, Mapping):
            ctx.check_keys(kp, item, ("source", "target", "readonly"))
            if "source" not in item:
                raise ctx.error(kp, "missing 'source'", hint="write `source: /host/path`")
            source = ctx.string((*kp, "source"), item["source"])
            raw_target = item.get("target")
            target = None if raw_target is None else ctx.string((*kp, "target"), raw_target)
            readonly = ctx.boolean((*kp, "readonly"), item.get("readonly", False))
        else:
            raise ctx.type_error(kp, "a string or a mapping", item)
        if not source.strip():
            raise ctx.error(kp, "empty mount source")
        src = _abs_path(expand_vars(source, ctx.expansion), str(base_dir))
        if target is None:
            dst = src
        else:
            expanded = expand_vars(target, ctx.expansion)
            if not os.path.isabs(expanded):
                raise ctx.error(
                    kp,
                    f"mount target '{target}' is not an absolute path",
                    hint="write SRC:DST[:ro] with an absolute DST (~ and $HOME allowed)",
                )
            dst = os.path.normpath(expanded)
        result.append(Mount(source=src, target=dst, readonly=readonly, origin=ctx.path))
    return tuple(result)


def _split_mount(ctx: _Ctx, kp: KeyPath, text: str) -> tuple[str, str | None, bool]:
    parts = text.split(":")
    if len(parts) > 3:
        raise ctx.error(kp, f"too many ':' in mount '{text}' (expected SRC, SRC:DST or SRC:DST:ro)")
    readonly = False
    if len(parts) == 3:
        option = parts[2]
        if option not in ("ro", "rw"):
            raise ctx.error(kp, f"unknown mount option '{option}' in '{text}' (use ro or rw)")
        readonly = option == "ro"
    if len(parts) >= 2 and not parts[1]:
        raise ctx.error(kp, f"empty mount target in '{text}'")
    return parts[0], (parts[1] if len(parts) >= 2 else None), readonly


def _env_name(ctx: _Ctx, kp: KeyPath, name: str, *, at_key: bool) -> str:
    if not _ENV_NAME.match(name):
        raise ctx.error(
            kp,
            f"invalid variable name '{name}' (letters, digits and _, not starting with a digit)",
            at_key=at_key,
        )
    return name


def _env(ctx: _Ctx, value: object) -> tuple[EnvEntry, ...]:
    if value is None:
        return ()
    result: dict[str, str | None] = {}
    if isinstance(value, Mapping):
        for name, item in value.items():
            kp: KeyPath = ("env", name)
            _env_name(ctx, kp, str(name), at_key=True)
            text: str | None
            if item is None:
                text = None
            elif kp in ctx.scalar_text:
                text = expand_vars(ctx.scalar_text[kp], ctx.expansion)
            elif isinstance(item, bool):
                text = "true" if item else "false"
            elif isinstance(item, str | int | float):
                text = expand_vars(str(item), ctx.expansion)
            else:
                raise ctx.type_error(
                    kp, "a string, number or bool (or nothing, to pass it through)", item
                )
            result[name] = text
    elif _is_list(value):
        assert isinstance(value, list | tuple)
        for i, item in enumerate(value):
            kp = ("env", i)
            entry = ctx.string(kp, item, what="a string KEY=value or KEY")
            name, sep, literal = entry.partition("=")
            _env_name(ctx, kp, name, at_key=False)
            if name in result:
                raise ctx.error(kp, f"'{name}' is set twice", hint="keep one of the two")
            result[name] = expand_vars(literal, ctx.expansion) if sep else None
    else:
        raise ctx.type_error(("env",), "a mapping or a list", value)
    return tuple(EnvEntry(name, text) for name, text in result.items())


def _port_problem(spec: str) -> str | None:
    m = _PORT.match(spec)
    if m is None:
        return "is not [IP:]HOST:CONTAINER[/PROTO]"
    ip, proto = m.group("ip"), m.group("proto")
    if ip is not None:
        if ip.startswith("["):
            import ipaddress

            try:
                ipaddress.IPv6Address(ip[1:-1])
            except ValueError:
                return f"has an invalid IPv6 address {ip}"
        else:
            octets = ip.split(".")
            if len(octets) != 4 or not all(o.isdigit() and int(o) <= 255 for o in octets):
                return f"has an invalid IPv4 address {ip}"
    if proto is not None and proto not in _PROTOCOLS:
        return f"has an unknown protocol '{proto}' (use tcp, udp or sctp)"
    spans: list[tuple[int, int]] = []
    for part in (m.group("host"), m.group("container")):
        low, _, high = part.partition("-")
        start, end = int(low), int(high or low)
        for port in (start, end):
            if not 1 <= port <= 65535:
                return f"has port {port} outside 1-65535"
        if end < start:
            return f"has a decreasing range {part}"
        spans.append((start, end))
    (hs, he), (cs, ce) = spans
    if he - hs != ce - cs:
        return "has host and container ranges of different lengths"
    return None


def _ports(ctx: _Ctx, value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    result: list[str] = []
    for i, item in enumerate(ctx.items(("ports",), value, "a list of port mappings")):
        kp: KeyPath = ("ports", i)
        if isinstance(item, int | float) and not isinstance(item, bool):
            text = ctx.scalar_text.get(kp, str(item))
            raise ctx.error(
                kp,
                f"port mapping {text} must be a quoted string "
                "(YAML reads unquoted N:M as a number)",
                hint=f'write it as "{text}"',
            )
        spec = ctx.string(kp, item).strip()
        problem = _port_problem(spec)
        if problem is not None:
            raise ctx.error(
                kp,
                f"invalid port mapping '{spec}': {problem}",
                hint='use e.g. "8080:80", "127.0.0.1:3000:3000", "[::1]:53:53/udp" '
                'or "8000-8001:8000-8001"',
            )
        result.append(spec)
    return tuple(result)


def _tokens(ctx: _Ctx, kp: KeyPath, value: object) -> tuple[str, ...]:
    """A string split shell-like, or a list of strings (one token each)."""
    if value is None:
        return ()
    if isinstance(value, str):
        try:
            return tuple(shlex.split(value))
        except ValueError as exc:
            raise ctx.error(
                kp, f"cannot split {value!r}: {exc}", hint="close the quote or use the list form"
            ) from exc
    if _is_list(value):
        assert isinstance(value, list | tuple)
        tokens: list[str] = []
        for i, item in enumerate(value):
            token = ctx.string((*kp, i), item)
            if not token:
                raise ctx.error((*kp, i), "empty argument")
            tokens.append(token)
        return tuple(tokens)
    raise ctx.type_error(kp, "a string or a list of strings", value)


def _pre_start(ctx: _Ctx, value: object) -> str | None:
    kp: KeyPath = ("pre_start",)
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if _is_list(value):
        assert isinstance(value, list | tuple)
        commands = [ctx.string((*kp, i), item).strip() for i, item in enumerate(value)]
        joined = " && ".join(c for c in commands if c)
        return joined or None
    raise ctx.type_error(kp, "a string or a list of strings", value)


def _harness_args(ctx: _Ctx, value: object) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if value is None:
        return ()
    kp: KeyPath = ("harness_args",)
    mapping = ctx.mapping(kp, value)
    result: list[tuple[str, tuple[str, ...]]] = []
    for name, args in mapping.items():
        if name not in HARNESS_NAMES:
            raise ctx.unknown_key((*kp, name), HARNESS_NAMES, what="harness")
        result.append((name, _tokens(ctx, (*kp, name), args)))
    return tuple(result)


def _severity(ctx: _Ctx, kp: KeyPath, value: object) -> str:
    text = ctx.string(kp, value, what="high, medium or low")
    if text.strip().lower() not in SEVERITIES:
        raise ctx.error(kp, f"unknown severity '{text}' (use high, medium or low)")
    return text.strip().lower()


def _detection(
    ctx: _Ctx, value: object
) -> tuple[bool | None, tuple[CustomPattern, ...], tuple[AllowEntry, ...]]:
    if value is None:
        return None, (), ()
    kp: KeyPath = ("detection",)
    mapping = ctx.mapping(kp, value)
    ctx.check_keys(kp, mapping, ("enabled", "custom_patterns", "allowlist"))
    enabled = ctx.boolean((*kp, "enabled"), mapping["enabled"]) if "enabled" in mapping else None

    patterns: list[CustomPattern] = []
    raw_patterns = mapping.get("custom_patterns")
    if raw_patterns is not None:
        pkp: KeyPath = (*kp, "custom_patterns")
        for glob, spec in ctx.mapping(pkp, raw_patterns).items():
            gkp: KeyPath = (*pkp, glob)
            if not str(glob).strip():
                raise ctx.error(gkp, "empty glob", at_key=True)
            if isinstance(spec, Mapping):
                ctx.check_keys(gkp, spec, ("severity", "description"))
                severity = _severity(ctx, (*gkp, "severity"), spec.get("severity", "medium"))
                description = spec.get("description")
                if description is None:
                    description = DEFAULT_PATTERN_DESCRIPTION
                description = ctx.string((*gkp, "description"), description)
            elif isinstance(spec, str):
                severity, description = _severity(ctx, gkp, spec), DEFAULT_PATTERN_DESCRIPTION
            else:
                raise ctx.type_error(
                    gkp, "a severity (high, medium, low) or {severity, description}", spec
                )
            patterns.append(CustomPattern(str(glob), severity, description))

    allow: list[AllowEntry] = []
    raw_allow = mapping.get("allowlist")
    if raw_allow is not None:
        akp: KeyPath = (*kp, "allowlist")
        for i, item in enumerate(ctx.items(akp, raw_allow, "a list of {path, reason}")):
            ikp: KeyPath = (*akp, i)
            entry = ctx.mapping(ikp, item)
            ctx.check_keys(ikp, entry, ("path", "reason"))
            texts: dict[str, str] = {}
            for name in ("path", "reason"):
                if name not in entry:
                    raise ctx.error(ikp, f"missing '{name}'", hint="write {path: ..., reason: ...}")
                text = ctx.string((*ikp, name), entry[name])
                if not text.strip():
                    raise ctx.error((*ikp, name), f"empty {name}")
                texts[name] = text
            allow.append(AllowEntry(texts["path"], texts["reason"]))
    return enabled, tuple(patterns), tuple(allow)


def _engine(ctx: _Ctx, value: object) -> str | None:
    if value is None:
        return None
    kp: KeyPath = ("engine",)
    text = ctx.string(kp, value, what="'docker' or 'podman'")
    if text not in ENGINES:
        raise ctx.error(
            kp,
            f"expected 'docker' or 'podman', got {text!r}",
            hint="leave engine out to use Docker when it answers, else Podman",
        )
    return text


def _base_image(ctx: _Ctx, value: object) -> str | None:
    if value is None:
        return None
    kp: KeyPath = ("base_image",)
    text = ctx.string(kp, value, what="an image reference")
    if not text or any(c.isspace() for c in text):
        raise ctx.error(kp, f"invalid image reference {text!r}", hint="e.g. debian:trixie-slim")
    return text


def _ca_certificates(ctx: _Ctx, value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    kp: KeyPath = ("ca_certificates",)
    result: list[str] = []
    for i, item in enumerate(ctx.items(kp, value, "a list of PEM file paths")):
        text = ctx.string((*kp, i), item)
        if not text.strip():
            raise ctx.error((*kp, i), "empty path")
        result.append(_abs_path(expand_vars(text, ctx.expansion), ctx.expansion.home))
    return tuple(result)


def _network(ctx: _Ctx, value: object) -> dict[str, Any]:
    if value is None:
        return {}
    from aishell import netpolicy as netmod

    kp: KeyPath = ("network",)
    if isinstance(value, str):  # shorthand: `network: none`
        value = {"mode": value}
    mapping = ctx.mapping(kp, value)
    ctx.check_keys(kp, mapping, ("mode", "allow", "presets"))
    fields: dict[str, Any] = {}
    if "mode" in mapping:
        mode = ctx.string((*kp, "mode"), mapping["mode"], what="open, none or allowlist")
        if mode not in netmod.MODES:
            raise ctx.error(
                (*kp, "mode"),
                f"unknown mode '{mode}'{_suggest(mode, netmod.MODES)}",
                hint="use open (default), none or allowlist",
            )
        fields["network_mode"] = mode
    if mapping.get("allow") is not None:
        akp: KeyPath = (*kp, "allow")
        allow: list[str] = []
        for i, item in enumerate(ctx.items(akp, mapping["allow"], "a list of host patterns")):
            text = ctx.string((*akp, i), item, what="a host pattern").strip().lower()
            problem = netmod.host_problem(text)
            if problem is not None:
                raise ctx.error((*akp, i), problem)
            allow.append(text)
        fields["network_allow"] = tuple(dict.fromkeys(allow))
    if mapping.get("presets") is not None:
        pkp: KeyPath = (*kp, "presets")
        presets: list[str] = []
        names = sorted(netmod.PRESETS)
        for i, item in enumerate(ctx.items(pkp, mapping["presets"], "a list of preset names")):
            name = ctx.string((*pkp, i), item, what="a preset name")
            if name not in netmod.PRESETS:
                raise ctx.error(
                    (*pkp, i),
                    f"unknown preset '{name}'{_suggest(name, names)}",
                    hint=f"presets: {', '.join(names)} (each agent's own hosts are added "
                    "automatically)",
                )
            presets.append(name)
        fields["network_presets"] = tuple(dict.fromkeys(presets))
    return fields


def merge_network(global_part: FileConfig | None, project_part: FileConfig | None) -> NetworkConfig:
    """The project may only tighten (see `netpolicy.merge`)."""
    from aishell import netpolicy

    g = None
    if global_part is not None:
        g = NetworkConfig(
            global_part.network_mode or "open",
            global_part.network_allow or (),
            global_part.network_presets or (),
        )
    if project_part is None:
        return netpolicy.merge(g, None, None, None)
    return netpolicy.merge(
        g, project_part.network_mode, project_part.network_allow, project_part.network_presets
    )


# -------------------------------------------------------------------------- merge


def merge(global_part: FileConfig | None, project_part: FileConfig | None) -> Config:
    """Combine the normalised files (either may be None). Pure."""
    inherit = project_part is None or project_part.extends == "global"
    layers = [p for p in ((global_part if inherit else None), project_part) if p is not None]

    def last(attr: str, default: Any) -> Any:
        value = default
        for layer in layers:
            if getattr(layer, attr) is not None:
                value = getattr(layer, attr)
        return value

    env: dict[str, str | None] = {}
    harness_args: dict[str, tuple[str, ...]] = {}
    patterns: dict[str, CustomPattern] = {}
    pre_start: str | None = None
    for layer in layers:
        env.update((e.name, e.value) for e in layer.env)
        for name, args in layer.harness_args:
            harness_args[name] = harness_args.get(name, ()) + args
        patterns.update((p.glob, p) for p in layer.custom_patterns)
        if "pre_start" in layer.keys:
            pre_start = layer.pre_start

    return Config(
        mounts=tuple(m for layer in layers for m in layer.mounts),
        env=tuple(EnvEntry(name, value) for name, value in env.items()),
        ports=tuple(p for layer in layers for p in layer.ports),
        docker_args=tuple(a for layer in layers for a in layer.docker_args),
        pre_start=pre_start,
        harness_args=MappingProxyType(harness_args),
        detection=DetectionConfig(
            enabled=last("detection_enabled", True),
            custom_patterns=tuple(patterns.values()),
            allowlist=tuple(a for layer in layers for a in layer.allowlist),
        ),
        gitleaks_freshness_check=last("gitleaks_freshness_check", True),
        gitleaks_freshness_threshold=last("gitleaks_freshness_threshold", 7),
        tmux=last("tmux", True),
        base_image=global_part.base_image if global_part else None,
        engine=global_part.engine if global_part else None,
        ca_certificates=global_part.ca_certificates if global_part else (),
        sources=tuple(p.path for p in (global_part, project_part) if p is not None),
        network=(
            merge_network(global_part, project_part)
            if any(p is not None and "network" in p.keys for p in (global_part, project_part))
            else NetworkConfig()
        ),
    )


# ------------------------------------------------------------------------ loading


def find_project_config_dir(project_root: Path, *, aishell_home: Path | None = None) -> Path | None:
    """The project's `.aishell/` or `.sandbox/` directory, None if neither exists.

    Both present is an error. A directory that *is* the global aishell home
    (a project rooted at the home directory) is not a project config dir.
    """
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


def read_config_file(path: Path) -> str | None:
    """The file's text, or None when it does not exist."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"Cannot read {path}: it is not UTF-8 text ({exc.reason})",
            hint="save the file as UTF-8",
        ) from exc
    except OSError as exc:
        raise ConfigError(
            f"Cannot read {path}: {exc.strerror or exc}",
            hint="check that it is a readable file",
        ) from exc


_CACHE_VERSION = "1"


def _cache_file(cache_dir: Path, text: str, path: Path, scope: Scope) -> Path:
    from aishell.hashing import short_hash

    key = short_hash("\0".join((_CACHE_VERSION, str(path), scope, text)), 32)
    return cache_dir / f"{key}.json"


def _raw_from_cache(cache: Path) -> RawConfig | None:
    """A parse of the same text cached as JSON (parsing YAML costs more than the launch
    can spare); None when there is none or it is unreadable."""
    import json

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
    import json
    import os

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
) -> FileConfig | None:
    """Read, parse and normalise one config file; None when it does not exist.

    With `cache_dir`, the parse of a text that normalised cleanly before is
    reused from a JSON cache keyed by the text itself (never stale)."""
    text = read_config_file(path)
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


def load_config(*, aishell_home: Path, project_root: Path | None, expansion: Expansion) -> Config:
    """Load `<aishell_home>/config.yaml` and the project's config, and merge them."""
    global_path = aishell_home / CONFIG_FILE
    cache_dir = aishell_home / "cache" / "config"
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
            )
    return merge(global_part, project_part)


def _is_scalar_non_string(value: object) -> bool:
    from datetime import date

    return isinstance(value, int | float | date)
