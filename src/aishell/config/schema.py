"""What a configuration is: the records, and one table of the top-level keys.

`KEYS` is the single description of every key: where it may appear, which check in
`checks.py` normalises it, how the global and project files combine, and its value
when no file sets it. `loader.normalize` and `merge.merge` are driven by it, so a
new key is one `Key(...)` entry here plus its field in `FileConfig` (what one file
says) and in `Config` (the merged result); a unit test fails when the three disagree.

Merge rules (global file first, then the project file; `extends: none` in the project
file drops the global file for every rule except `global-only` and `network-special`):

- `selects-layers`  (`extends`) not merged: it decides whether the global file takes part
- `concatenate`     the items of every file, in order
- `map-merge`       entries by name (their first field); a later file's entry replaces an
                    earlier one in place, new names are appended
- `map-concatenate` per name, the items of every file concatenated (`harness_args`)
- `project-wins`    the last file's value that is not null
- `project-replaces` the last file that has the key, even with a null value
- `global-only`     the global file's value (a project file may not set the key)
- `network-special` `netpolicy.merge`: the project may only tighten the global policy
- `per-part`        a mapping whose `parts` each have their own rule (`detection`)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final, Literal

from aishell.config import checks
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
    RawConfig,
    Scope,
    expand_vars,
)
from aishell.netpolicy import NetworkConfig
from aishell.tuples import NamedTuple

__all__ = [
    "DEFAULT_PATTERN_DESCRIPTION",
    "ENGINES",
    "GLOBAL_ONLY_KEYS",
    "KEYS",
    "KEYS_BY_NAME",
    "PROJECT_ONLY_KEYS",
    "SEVERITIES",
    "TOP_LEVEL_KEYS",
    "AllowEntry",
    "Config",
    "CustomPattern",
    "DetectionConfig",
    "EnvEntry",
    "Expansion",
    "FileConfig",
    "FileDetection",
    "FileNetwork",
    "Key",
    "KeyPath",
    "KeyScope",
    "LineMap",
    "MergeRule",
    "Mount",
    "NetworkConfig",
    "Normaliser",
    "Part",
    "RawConfig",
    "Scope",
    "expand_vars",
]

KeyScope = Literal["global-only", "project-only", "both"]
MergeRule = Literal[
    "selects-layers",
    "concatenate",
    "map-merge",
    "map-concatenate",
    "project-wins",
    "project-replaces",
    "global-only",
    "network-special",
    "per-part",
]
Normaliser = Callable[[checks.Ctx, KeyPath, Any], Any]


# ----------------------------------------------------------- merged records


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
    git_internals: str = "read-only"  # or "writable": .git/config, hooks, info in the sandbox
    share_logins: tuple[tuple[str, bool], ...] = ()  # global only: agent -> shared login
    share_from_host: tuple[str, ...] = ()  # global only: read-only host agent config
    sessions_keep_days: int = 30  # global only: session records kept this many days...
    sessions_keep: int = 100  # ...and at most this many per project (records.py)

    def args_for(self, harness: str) -> tuple[str, ...]:
        return self.harness_args.get(harness, ())


class FileConfig(NamedTuple):
    """One config file, validated and normalised; the input of `merge`.

    One field per top-level key, holding what this file says (null / empty when it
    does not set the key). `keys` holds the top-level keys the file contains, so
    that a key present with a null/false value still overrides (e.g. `pre_start:`
    clears the global one). `lines` says where each value was (empty when the file
    was normalised from a plain mapping); `merge.origins` reads it.
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
    detection: FileDetection = FileDetection()
    gitleaks_freshness_check: bool | None = None
    gitleaks_freshness_threshold: int | None = None
    tmux: bool | None = None
    base_image: str | None = None
    ca_certificates: tuple[str, ...] = ()
    network: FileNetwork = FileNetwork()
    engine: str | None = None
    git_internals: str | None = None
    share_logins: tuple[tuple[str, bool], ...] = ()
    share_from_host: tuple[str, ...] = ()
    sessions_keep_days: int | None = None
    sessions_keep: int | None = None
    lines: LineMap = LineMap()

    # The flat names `detection` had before it was one field.
    @property
    def detection_enabled(self) -> bool | None:
        return self.detection.enabled

    @property
    def custom_patterns(self) -> tuple[CustomPattern, ...]:
        return self.detection.custom_patterns

    @property
    def allowlist(self) -> tuple[AllowEntry, ...]:
        return self.detection.allowlist


# ------------------------------------------------------------- the key table


class Part(NamedTuple):
    """One sub-value of a `per-part` key: a field of its `FileConfig` value and of
    its `Config` value, which have the same names."""

    name: str
    merge: MergeRule
    default: Any


class Key(NamedTuple):
    name: str
    scope: KeyScope
    normalise: Normaliser  # (ctx, key path, raw value) -> the FileConfig field
    merge: MergeRule
    default: Any  # the Config field when no file sets the key (a record for `per-part`)
    parts: tuple[Part, ...] = ()  # `per-part` only


KEYS: Final[tuple[Key, ...]] = (
    Key("extends", "project-only", checks.extends, "selects-layers", "global"),
    Key("mounts", "both", checks.mounts, "concatenate", ()),
    Key("env", "both", checks.env, "map-merge", ()),
    Key("ports", "both", checks.ports, "concatenate", ()),
    Key("docker_args", "both", checks.docker_args, "concatenate", ()),
    Key("pre_start", "both", checks.pre_start, "project-replaces", None),
    Key("harness_args", "both", checks.harness_args, "map-concatenate", _NO_HARNESS_ARGS),
    Key(
        "detection",
        "both",
        checks.detection,
        "per-part",
        DetectionConfig(),
        parts=(
            Part("enabled", "project-wins", True),
            Part("custom_patterns", "map-merge", ()),
            Part("allowlist", "concatenate", ()),
        ),
    ),
    Key("gitleaks_freshness_check", "both", checks.boolean, "project-wins", True),
    Key("gitleaks_freshness_threshold", "both", checks.threshold_days, "project-wins", 7),
    Key("tmux", "both", checks.boolean, "project-wins", True),
    Key("base_image", "global-only", checks.base_image, "global-only", None),
    Key("ca_certificates", "global-only", checks.ca_certificates, "global-only", ()),
    Key("network", "both", checks.network, "network-special", NetworkConfig()),
    Key("engine", "global-only", checks.engine, "global-only", None),
    Key("git_internals", "both", checks.git_internals, "project-wins", "read-only"),
    Key("share_logins", "global-only", checks.share_logins, "global-only", ()),
    Key("share_from_host", "global-only", checks.share_from_host, "global-only", ()),
    Key("sessions_keep_days", "global-only", checks.threshold_days, "global-only", 30),
    Key("sessions_keep", "global-only", checks.record_count, "global-only", 100),
)
KEYS_BY_NAME: Final[Mapping[str, Key]] = MappingProxyType({k.name: k for k in KEYS})

TOP_LEVEL_KEYS: Final[tuple[str, ...]] = tuple(k.name for k in KEYS)
GLOBAL_ONLY_KEYS: Final = frozenset(k.name for k in KEYS if k.scope == "global-only")
PROJECT_ONLY_KEYS: Final = frozenset(k.name for k in KEYS if k.scope == "project-only")
