"""The per-key checks: each brings one top-level key of one file to its single shape.

Every normaliser has the same signature, `(ctx, key_path, value) -> normalised`, so
that `schema.KEYS` can name it; `loader.normalize` calls the one a key's entry names.
Errors name the file, the line (when the mapping came from YAML) and the key path.

Every list or map key has a cap on its entries (`LIMITS`), far above any real
config: a runaway or hostile file fails at once instead of costing every launch.
Each check is linear in the size of its value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Literal

from aishell import netpolicy
from aishell.config.values import (
    DEFAULT_PATTERN_DESCRIPTION,
    ENGINES,
    SEVERITIES,
    AllowEntry,
    CustomPattern,
    EnvEntry,
    Expansion,
    FileDetection,
    FileNetwork,
    KeyPath,
    LineMap,
    Mount,
    expand_vars,
)
from aishell.errors import ConfigError
from aishell.harnesses import HARNESS_NAMES
from aishell.tuples import NamedTuple

if TYPE_CHECKING:
    from pathlib import Path

# Patterns as text: `re` compiles (and caches) each one the first time it is used, so a
# launch that never needs one does not pay for it at import.
_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
_IDENT = r"^[A-Za-z_][A-Za-z0-9_-]*$"
# ASCII digits only: `\d` takes an Arabic-Indic 1 for 1, which the engine then refuses.
_PORT = (
    r"(?:(?P<ip>[0-9.]+|\[[^\]]*\]):)?"
    r"(?P<host>[0-9]+(?:-[0-9]+)?):(?P<container>[0-9]+(?:-[0-9]+)?)"
    r"(?:/(?P<proto>[A-Za-z]+))?"
)
_PROTOCOLS = ("tcp", "udp", "sctp")
# Said after "got null" where a path goes: `mounts: [~]` means null to YAML, not home.
_BARE_TILDE = ' (YAML reads a bare ~ as null: quote it, "~")'


class Limit(NamedTuple):
    cap: int  # at most this many entries
    noun: str  # what the entries are, in the error


# The most entries each list or map may hold, per file ("harness_args.*": per harness).
LIMITS: Final[Mapping[str, Limit]] = MappingProxyType(
    {
        "mounts": Limit(100, "mounts"),
        "env": Limit(1000, "variables"),
        "ports": Limit(100, "port mappings"),
        "docker_args": Limit(500, "arguments"),
        "pre_start": Limit(100, "commands"),
        "harness_args.*": Limit(200, "arguments"),
        "detection.custom_patterns": Limit(500, "patterns"),
        "detection.allowlist": Limit(1000, "entries"),
        "ca_certificates": Limit(100, "files"),
        "network.allow": Limit(1000, "hosts"),
        "network.presets": Limit(100, "presets"),
        "share_from_host": Limit(100, "paths"),
    }
)
# The longest string split shell-like (`docker_args`, `harness_args.*`): `shlex` is
# quadratic in the length of a token; the list form has no such bound.
MAX_SPLIT_CHARS: Final = 32_768
# The largest day counts (`gitleaks_freshness_threshold`, `sessions_keep_days`) and
# record count (`sessions_keep`): beyond them a value means "forever" anyway, and
# `now - days * 86400` would no longer be a number (OverflowError at launch).
MAX_DAYS: Final = 36_500
MAX_SESSION_RECORDS: Final = 100_000
# Longer than any host pattern (a 253-character name, `*.`, `:65535`): not even tried.
_MAX_HOST_CHARS = 262


# ------------------------------------------------------------------ helpers


def type_name(value: object) -> str:
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
    from datetime import date, datetime  # only for the rare YAML date in an error

    if isinstance(value, datetime):
        return "timestamp"
    if isinstance(value, date):
        return "date"
    if isinstance(value, bytes):
        return "binary"
    return type(value).__name__


def shown(text: str, limit: int = 60) -> str:
    """`text` quoted for an error, cut after `limit` characters (a 5,000-digit port
    must not fill the screen)."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "…"


def fmt(kpath: KeyPath) -> str:
    """A key path as the user would write it: `mounts[1].source`, `env['A B']`."""
    out = ""
    for part in kpath:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.match(_IDENT, part):
            out += ("." if out else "") + part
        else:
            out += f"[{part!r}]"
    return out


def suggest(word: str, choices: Sequence[str]) -> str:
    import difflib  # (lazy: only a mistake needs it)

    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if not close and len(word) >= 3:  # an abbreviation: `desc` for `description`
        close = [c for c in choices if c.startswith(word.lower())][:1]
    return f" (did you mean '{close[0]}'?)" if close else ""


def _is_scalar_non_string(value: object) -> bool:
    from datetime import date  # only for the rare YAML date in an error

    return isinstance(value, int | float | date)


class Ctx:
    """What the checks of one file share: where it is, where its values were, how to
    expand variables, and how to word an error."""

    def __init__(
        self,
        raw: Mapping[str, Any],
        path: str,
        expansion: Expansion,
        *,
        base_dir: Path,
        top_level: Sequence[str] = (),
    ) -> None:
        self.path = path
        self.expansion = expansion
        self.base_dir = base_dir
        self.top_level = top_level  # named in the hint for a top-level key put too deep
        self.lines = LineMap.of(raw)
        self.scalar_text: Mapping[KeyPath, str] = getattr(raw, "scalar_text", {})

    def line(self, kpath: KeyPath, *, at_key: bool = False) -> int | None:
        return self.lines.line(kpath, at_key=at_key)

    def error(
        self, kpath: KeyPath, problem: str, *, hint: str | None = None, at_key: bool = False
    ) -> ConfigError:
        line = self.line(kpath, at_key=at_key)
        where = f"{self.path}:{line}" if line is not None else self.path
        return ConfigError(f"{where}: {fmt(kpath)}: {problem}", hint=hint)

    def type_error(
        self, kpath: KeyPath, expected: str, value: object, *, hint: str | None = None
    ) -> ConfigError:
        return self.error(kpath, f"expected {expected}, got {type_name(value)}", hint=hint)

    def unknown_key(
        self, kpath: KeyPath, valid: Sequence[str], *, what: str = "key"
    ) -> ConfigError:
        key = str(kpath[-1])
        hint = f"valid {what}s here: {', '.join(valid)}"
        if len(kpath) > 1 and key in self.top_level:
            hint = f"'{key}' is a top-level key; move it out of {fmt(kpath[:-1])}"
        return self.error(
            kpath, f"unknown {what} '{key}'{suggest(key, valid)}", hint=hint, at_key=True
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

    def path_string(self, kpath: KeyPath, value: object) -> str:
        """A string where a path goes: a null there is most likely a bare `~`."""
        if value is None:
            raise self.error(kpath, f"expected a string, got null{_BARE_TILDE}")
        return self.string(kpath, value)

    def mapping(self, kpath: KeyPath, value: object, *, limit: str = "") -> Mapping[str, Any]:
        """`value` as a mapping; with `limit` (a `LIMITS` name), at most that many entries."""
        if isinstance(value, Mapping):
            if limit:
                self.check_count(kpath, len(value), limit)
            return value
        raise self.type_error(kpath, "a mapping", value)

    def items(self, kpath: KeyPath, value: object, what: str, *, limit: str = "") -> Sequence[Any]:
        """`value` as a list; with `limit` (a `LIMITS` name), at most that many items."""
        if isinstance(value, list | tuple):
            if limit:
                self.check_count(kpath, len(value), limit)
            return value
        raise self.type_error(kpath, what, value)

    def check_count(self, kpath: KeyPath, count: int, limit: str) -> None:
        cap, noun = LIMITS[limit]
        if count > cap:
            raise self.error(
                kpath,
                f"more than {cap} {noun}",
                hint=f"{fmt(kpath)} may hold at most {cap}",
                at_key=True,
            )


def _abs_path(text: str, base: str) -> str:
    return os.path.normpath(text if os.path.isabs(text) else os.path.join(base, text))


# --------------------------------------------------------------- the checks


def extends(ctx: Ctx, kp: KeyPath, value: object) -> Literal["global", "none"]:
    if value == "global" or value == "none":
        return value
    shown = repr(value) if isinstance(value, str) else type_name(value)
    raise ctx.error(kp, f"expected 'global' or 'none', got {shown}")


def boolean(ctx: Ctx, kp: KeyPath, value: object) -> bool:
    return ctx.boolean(kp, value)


def _number(value: int) -> str:
    """An int for an error: in full up to 18 digits (str() of more than 4,300 is
    itself an error)."""
    if abs(value) < 10**18:
        return str(value)
    sign = "a negative" if value < 0 else "a"
    return f"{sign} number of about {int(value.bit_length() * 0.30103) + 1} digits"


def _whole(ctx: Ctx, kp: KeyPath, value: object, what: str, cap: int, unit: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ctx.type_error(kp, f"a whole number of {what}", value)
    if not 1 <= value <= cap:
        raise ctx.error(
            kp,
            f"must be from 1 to {cap}{unit}, got {_number(value)}",
            hint=f"set {fmt(kp)} to a whole number from 1 to {cap}",
        )
    return value


def threshold_days(ctx: Ctx, kp: KeyPath, value: object) -> int:
    return _whole(ctx, kp, value, "days", MAX_DAYS, " (days; 36500 is 100 years)")


def record_count(ctx: Ctx, kp: KeyPath, value: object) -> int:
    return _whole(ctx, kp, value, "session records", MAX_SESSION_RECORDS, "")


def mounts(ctx: Ctx, kp: KeyPath, value: object) -> tuple[Mount, ...]:
    if value is None:
        return ()
    result: list[Mount] = []
    for i, item in enumerate(ctx.items(kp, value, "a list of mounts", limit="mounts")):
        ikp: KeyPath = (*kp, i)
        if isinstance(item, str):
            source, target, readonly = _split_mount(ctx, ikp, item)
        elif isinstance(item, Mapping):
            ctx.check_keys(ikp, item, ("source", "target", "readonly"))
            if "source" not in item:
                raise ctx.error(ikp, "missing 'source'", hint="write `source: /host/path`")
            source = ctx.path_string((*ikp, "source"), item["source"])
            # Left out: the source path. Written but null (`target:`, `target: ~`) is
            # an error: a bare ~ there most likely meant the home directory.
            target = None
            if "target" in item:
                if item["target"] is None:
                    raise ctx.error(
                        (*ikp, "target"),
                        f"expected a string, got null{_BARE_TILDE}",
                        hint="leave target out to mount at the source path",
                    )
                target = ctx.string((*ikp, "target"), item["target"])
            readonly = ctx.boolean((*ikp, "readonly"), item.get("readonly", False))
        elif item is None:
            raise ctx.error(ikp, f"expected a string or a mapping, got null{_BARE_TILDE}")
        else:
            raise ctx.type_error(ikp, "a string or a mapping", item)
        if not source.strip():
            raise ctx.error(ikp, "empty mount source")
        src = _abs_path(expand_vars(source, ctx.expansion), str(ctx.base_dir))
        if target is None:
            dst = src
        else:
            expanded = expand_vars(target, ctx.expansion)
            if not os.path.isabs(expanded):
                raise ctx.error(
                    ikp,
                    f"mount target '{target}' is not an absolute path",
                    hint="write SRC:DST[:ro] with an absolute DST (~ and $HOME allowed)",
                )
            dst = os.path.normpath(expanded)
        result.append(Mount(source=src, target=dst, readonly=readonly, origin=ctx.path))
    return tuple(result)


def _split_mount(ctx: Ctx, kp: KeyPath, text: str) -> tuple[str, str | None, bool]:
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


def _env_name(ctx: Ctx, kp: KeyPath, name: str, *, at_key: bool) -> str:
    if not re.match(_ENV_NAME, name):
        raise ctx.error(
            kp,
            f"invalid variable name '{name}' (letters, digits and _, not starting with a digit)",
            at_key=at_key,
        )
    return name


def env(ctx: Ctx, kp: KeyPath, value: object) -> tuple[EnvEntry, ...]:
    if value is None:
        return ()
    result: dict[str, str | None] = {}
    if isinstance(value, list | tuple | Mapping):
        ctx.check_count(kp, len(value), "env")
    if isinstance(value, Mapping):
        for name, item in value.items():
            ikp: KeyPath = (*kp, name)
            _env_name(ctx, ikp, str(name), at_key=True)
            text: str | None
            if item is None:
                text = None
            elif ikp in ctx.scalar_text:
                text = expand_vars(ctx.scalar_text[ikp], ctx.expansion)
            elif isinstance(item, bool):
                text = "true" if item else "false"
            elif isinstance(item, str | int | float):
                text = expand_vars(str(item), ctx.expansion)
            else:
                raise ctx.type_error(
                    ikp, "a string, number or bool (or nothing, to pass it through)", item
                )
            result[name] = text
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            ikp = (*kp, i)
            entry = ctx.string(ikp, item, what="a string KEY=value or KEY")
            name, sep, literal = entry.partition("=")
            _env_name(ctx, ikp, name, at_key=False)
            if name in result:
                raise ctx.error(ikp, f"'{name}' is set twice", hint="keep one of the two")
            result[name] = expand_vars(literal, ctx.expansion) if sep else None
    else:
        raise ctx.type_error(kp, "a mapping or a list", value)
    return tuple(EnvEntry(name, text) for name, text in result.items())


def port_problem(spec: str) -> str | None:
    """Why `spec` is not `[IP:]HOST:CONTAINER[/PROTO]`, or None."""
    m = re.fullmatch(_PORT, spec)
    if m is None:
        return "is not [IP:]HOST:CONTAINER[/PROTO]"
    ip, proto = m.group("ip"), m.group("proto")
    if ip is not None:
        if ip.startswith("["):
            import ipaddress  # only for the rare IPv6 binding

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
        for digits in (low, high or low):
            digits = digits.lstrip("0") or "0"
            if len(digits) > 5:  # int() of thousands of digits is an error, not a port
                return f"has port {digits[:10]}… ({len(digits)} digits) outside 1-65535"
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


def ports(ctx: Ctx, kp: KeyPath, value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    result: list[str] = []
    for i, item in enumerate(ctx.items(kp, value, "a list of port mappings", limit="ports")):
        ikp: KeyPath = (*kp, i)
        if isinstance(item, int | float) and not isinstance(item, bool):
            text = ctx.scalar_text.get(ikp, str(item))
            raise ctx.error(
                ikp,
                f"port mapping {text} must be a quoted string "
                "(YAML reads unquoted N:M as a number)",
                hint=f'write it as "{text}"',
            )
        spec = ctx.string(ikp, item).strip()
        problem = port_problem(spec)
        if problem is not None:
            raise ctx.error(
                ikp,
                f"invalid port mapping {shown(spec)}: {problem}",
                hint='use e.g. "8080:80", "127.0.0.1:3000:3000", "[::1]:53:53/udp" '
                'or "8000-8001:8000-8001"',
            )
        result.append(spec)
    return tuple(result)


def tokens(ctx: Ctx, kp: KeyPath, value: object, *, limit: str) -> tuple[str, ...]:
    """A string split shell-like, or a list of strings (one token each); at most
    `LIMITS[limit]` of them."""
    if value is None:
        return ()
    if isinstance(value, str):
        return _split(ctx, kp, value, limit)
    if isinstance(value, list | tuple):
        ctx.check_count(kp, len(value), limit)
        result: list[str] = []
        for i, item in enumerate(value):
            token = ctx.string((*kp, i), item)
            if not token:
                raise ctx.error((*kp, i), "empty argument")
            result.append(token)
        return tuple(result)
    raise ctx.type_error(kp, "a string or a list of strings", value)


def _split(ctx: Ctx, kp: KeyPath, text: str, limit: str) -> tuple[str, ...]:
    """`shlex.split(text)`, stopping one token past the cap."""
    if len(text) > MAX_SPLIT_CHARS:
        raise ctx.error(
            kp,
            f"a string of more than {MAX_SPLIT_CHARS} characters to split",
            hint="use the list form, one argument per item",
        )
    import shlex  # (lazy: only a string to split needs it)

    lexer = shlex.shlex(text, posix=True)
    lexer.whitespace_split = True
    lexer.commenters = ""  # as shlex.split(text, comments=False)
    found: list[str] = []
    try:
        for token in lexer:
            found.append(token)
            ctx.check_count(kp, len(found), limit)
    except ValueError as exc:
        raise ctx.error(
            kp, f"cannot split {text!r}: {exc}", hint="close the quote or use the list form"
        ) from exc
    return tuple(found)


def docker_args(ctx: Ctx, kp: KeyPath, value: object) -> tuple[str, ...]:
    return tuple(expand_vars(t, ctx.expansion) for t in tokens(ctx, kp, value, limit="docker_args"))


def pre_start(ctx: Ctx, kp: KeyPath, value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, list | tuple):
        ctx.check_count(kp, len(value), "pre_start")
        commands = [ctx.string((*kp, i), item).strip() for i, item in enumerate(value)]
        joined = " && ".join(c for c in commands if c)
        return joined or None
    raise ctx.type_error(kp, "a string or a list of strings", value)


def harness_args(ctx: Ctx, kp: KeyPath, value: object) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if value is None:
        return ()
    mapping = ctx.mapping(kp, value)
    result: list[tuple[str, tuple[str, ...]]] = []
    for name, args in mapping.items():
        if name not in HARNESS_NAMES:
            raise ctx.unknown_key((*kp, name), HARNESS_NAMES, what="harness")
        result.append((name, tokens(ctx, (*kp, name), args, limit="harness_args.*")))
    return tuple(result)


def _severity(ctx: Ctx, kp: KeyPath, value: object) -> str:
    text = ctx.string(kp, value, what="high, medium or low")
    if text.strip().lower() not in SEVERITIES:
        raise ctx.error(kp, f"unknown severity '{text}' (use high, medium or low)")
    return text.strip().lower()


def detection(ctx: Ctx, kp: KeyPath, value: object) -> FileDetection:
    if value is None:
        return FileDetection()
    mapping = ctx.mapping(kp, value)
    ctx.check_keys(kp, mapping, ("enabled", "custom_patterns", "allowlist"))
    enabled = ctx.boolean((*kp, "enabled"), mapping["enabled"]) if "enabled" in mapping else None

    patterns: list[CustomPattern] = []
    raw_patterns = mapping.get("custom_patterns")
    if raw_patterns is not None:
        pkp: KeyPath = (*kp, "custom_patterns")
        for glob, spec in ctx.mapping(pkp, raw_patterns, limit="detection.custom_patterns").items():
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
        listed = ctx.items(akp, raw_allow, "a list of {path, reason}", limit="detection.allowlist")
        for i, item in enumerate(listed):
            ikp: KeyPath = (*akp, i)
            entry = ctx.mapping(ikp, item)
            ctx.check_keys(ikp, entry, ("path", "reason"))
            texts: dict[str, str] = {}
            for name in ("path", "reason"):
                if name not in entry:
                    raise ctx.error(ikp, f"missing '{name}'", hint="write {path: ..., reason: ...}")
                read = ctx.path_string if name == "path" else ctx.string
                text = read((*ikp, name), entry[name])
                if not text.strip():
                    raise ctx.error((*ikp, name), f"empty {name}")
                texts[name] = text
            allow.append(AllowEntry(texts["path"], texts["reason"]))
    return FileDetection(enabled, tuple(patterns), tuple(allow))


def engine(ctx: Ctx, kp: KeyPath, value: object) -> str | None:
    if value is None:
        return None
    text = ctx.string(kp, value, what="'docker' or 'podman'")
    if text not in ENGINES:
        raise ctx.error(
            kp,
            f"expected 'docker' or 'podman', got {text!r}",
            hint="leave engine out to use Docker when it answers, else Podman",
        )
    return text


GIT_INTERNALS: Final[tuple[str, ...]] = ("read-only", "writable")


def git_internals(ctx: Ctx, kp: KeyPath, value: object) -> str | None:
    """`read-only` (the default: the repository's config, hooks and info are mounted
    read-only in the sandbox) or `writable`."""
    if value is None:
        return None
    text = ctx.string(kp, value, what="'read-only' or 'writable'")
    if text not in GIT_INTERNALS:
        raise ctx.error(
            kp,
            f"expected 'read-only' or 'writable', got {text!r}",
            hint="leave git_internals out to keep .git/config and .git/hooks read-only",
        )
    return text


def base_image(ctx: Ctx, kp: KeyPath, value: object) -> str | None:
    if value is None:
        return None
    text = ctx.string(kp, value, what="an image reference")
    if not text or any(c.isspace() for c in text):
        raise ctx.error(kp, f"invalid image reference {text!r}", hint="e.g. debian:trixie-slim")
    return text


def ca_certificates(ctx: Ctx, kp: KeyPath, value: object) -> tuple[str, ...]:
    """PEM files; relative paths are relative to the home directory."""
    if value is None:
        return ()
    result: list[str] = []
    for i, item in enumerate(
        ctx.items(kp, value, "a list of PEM file paths", limit="ca_certificates")
    ):
        text = ctx.path_string((*kp, i), item)
        if not text.strip():
            raise ctx.error((*kp, i), "empty path")
        result.append(_abs_path(expand_vars(text, ctx.expansion), ctx.expansion.home))
    return tuple(result)


def network(ctx: Ctx, kp: KeyPath, value: object) -> FileNetwork:
    if value is None:
        return FileNetwork()
    if isinstance(value, str):  # shorthand: `network: none`
        value = {"mode": value}
    mapping = ctx.mapping(kp, value)
    ctx.check_keys(kp, mapping, ("mode", "allow", "presets"))
    mode: str | None = None
    if "mode" in mapping:
        mode = ctx.string((*kp, "mode"), mapping["mode"], what="open, none or allowlist")
        if mode not in netpolicy.MODES:
            raise ctx.error(
                (*kp, "mode"),
                f"unknown mode '{mode}'{suggest(mode, netpolicy.MODES)}",
                hint="use open (default), none or allowlist",
            )
    allow: tuple[str, ...] | None = None
    if mapping.get("allow") is not None:
        akp: KeyPath = (*kp, "allow")
        hosts: list[str] = []
        listed = ctx.items(akp, mapping["allow"], "a list of host patterns", limit="network.allow")
        for i, item in enumerate(listed):
            text = ctx.string((*akp, i), item, what="a host pattern").strip().lower()
            if len(text) > _MAX_HOST_CHARS:
                raise ctx.error((*akp, i), f"invalid host pattern {text[:40]!r}…: too long")
            problem = netpolicy.host_problem(text)
            if problem is not None:
                raise ctx.error((*akp, i), problem)
            hosts.append(text)
        allow = tuple(dict.fromkeys(hosts))
    presets: tuple[str, ...] | None = None
    if mapping.get("presets") is not None:
        pkp: KeyPath = (*kp, "presets")
        chosen: list[str] = []
        names = sorted(netpolicy.PRESETS)
        listed = ctx.items(
            pkp, mapping["presets"], "a list of preset names", limit="network.presets"
        )
        for i, item in enumerate(listed):
            name = ctx.string((*pkp, i), item, what="a preset name")
            if name not in netpolicy.PRESETS:
                raise ctx.error(
                    (*pkp, i),
                    f"unknown preset '{name}'{suggest(name, names)}",
                    hint=f"presets: {', '.join(names)} (each agent's own hosts are added "
                    "automatically)",
                )
            chosen.append(name)
        presets = tuple(dict.fromkeys(chosen))
    return FileNetwork(mode, allow, presets)


def share_logins(ctx: Ctx, kp: KeyPath, value: object) -> tuple[tuple[str, bool], ...]:
    """`{agent: true|false}`: whether an agent's login is shared by all projects."""
    if value is None:
        return ()
    from aishell.harnesses import TOOLS

    names = [t.name for t in TOOLS if t.logins]
    mapping = ctx.mapping(kp, value)
    result: list[tuple[str, bool]] = []
    for name, flag in mapping.items():
        if name not in names:
            raise ctx.unknown_key((*kp, name), names, what="agent")
        result.append((name, ctx.boolean((*kp, name), flag)))
    return tuple(result)


def share_from_host(ctx: Ctx, kp: KeyPath, value: object) -> tuple[str, ...]:
    """Paths under the home (`~/...`; relative: relative to the home), mounted
    read-only from the host into every sandbox inside an agent's config."""
    if value is None:
        return ()
    home = os.path.normpath(ctx.expansion.home)
    result: list[str] = []
    for i, item in enumerate(
        ctx.items(kp, value, "a list of paths under your home", limit="share_from_host")
    ):
        text = ctx.path_string((*kp, i), item)
        if not text.strip():
            raise ctx.error((*kp, i), "empty path")
        path = _abs_path(expand_vars(text, ctx.expansion), home)
        if not path.startswith(home.rstrip("/") + "/"):
            raise ctx.error(
                (*kp, i),
                f"{text!r} is not under your home ({home})",
                hint="list files or directories inside an agent's config, e.g. ~/.claude/CLAUDE.md",
            )
        result.append(path)
    return tuple(dict.fromkeys(result))
