"""The values one config file normalises into, and what they need to know about a file.

These are the records the per-key checks (`checks.py`) build; the whole-config
records and the table of keys (`schema.py`) are made of them. They live apart from
`schema.py` only so that `checks.py` can build them while `schema.py` names the
checks in its table without an import circle. `schema` re-exports every name here.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Literal

from aishell.tuples import NamedTuple

if TYPE_CHECKING:
    from collections.abc import Mapping

Scope = Literal["global", "project"]
KeyPath = tuple[str | int, ...]

SEVERITIES: Final[tuple[str, ...]] = ("high", "medium", "low")
DEFAULT_PATTERN_DESCRIPTION: Final = "Custom pattern match"
ENGINES: Final[tuple[str, ...]] = ("docker", "podman")

_VAR = re.compile(r"\$(?:\{(HOME|UID|GID|USER)\}|(HOME|UID|GID|USER)(?![A-Za-z0-9_]))")
_NO_LINES: Mapping[KeyPath, int] = MappingProxyType({})


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


class FileDetection(NamedTuple):
    """`detection` as one file gives it; `enabled` is None when the file does not say."""

    enabled: bool | None = None
    custom_patterns: tuple[CustomPattern, ...] = ()
    allowlist: tuple[AllowEntry, ...] = ()


class FileNetwork(NamedTuple):
    """`network` as one file gives it; None where the file does not say."""

    mode: str | None = None
    allow: tuple[str, ...] | None = None
    presets: tuple[str, ...] | None = None


class Expansion(NamedTuple):
    """Values substituted for `~`, `$HOME`, `$UID`, `$GID`, `$USER`."""

    home: str
    uid: int
    gid: int
    user: str

    @classmethod
    def from_host(cls, environ: Mapping[str, str] | None = None) -> Expansion:
        env = os.environ if environ is None else environ
        home = env.get("HOME") or str(Path.home())
        uid = os.getuid() if hasattr(os, "getuid") else 1000
        gid = os.getgid() if hasattr(os, "getgid") else 1000
        user = env.get("USER") or env.get("USERNAME") or ""
        if not user:
            try:
                import pwd  # rarely needed: only when USER and USERNAME are both unset

                user = pwd.getpwuid(uid).pw_name
            except (ImportError, KeyError):
                user = str(uid)
        return cls(home=home, uid=uid, gid=gid, user=user)


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


class LineMap(NamedTuple):
    """Where the values of one file were: key path → line (1-based). Empty for a
    mapping that did not come from YAML text."""

    values: Mapping[KeyPath, int] = _NO_LINES  # the line of each value
    keys: Mapping[KeyPath, int] = _NO_LINES  # the line of each mapping key

    @classmethod
    def of(cls, raw: Mapping[str, Any]) -> LineMap:
        if isinstance(raw, RawConfig):
            return cls(raw.lines, raw.key_lines)
        return cls()

    def line(self, kpath: KeyPath, *, at_key: bool = False) -> int | None:
        """The line of `kpath` (of its key with `at_key`), else of its nearest parent."""
        if at_key and kpath in self.keys:
            return self.keys[kpath]
        probe = kpath
        while True:
            if probe in self.values:
                return self.values[probe]
            if probe in self.keys:
                return self.keys[probe]
            if not probe:
                return None
            probe = probe[:-1]
