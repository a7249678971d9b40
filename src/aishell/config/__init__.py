"""Configuration: `~/.aishell/config.yaml` (global) and `<project>/.aishell/config.yaml`.

Pipeline, per file: read → `parse_config_text` (YAML → a raw mapping that remembers
the line of every value) → `normalize` (strict validation; every key brought to one
shape, paths and variables expanded) → `merge` (pure; global then project).

Shapes are normalised per file *before* merging, so a string `docker_args` never
turns into characters and a list-form `env` merges with a map-form one. Every key a
project file contains reaches the merged result; nothing is silently dropped.

`extends: none` in the project file drops everything the project would inherit from
the global file. The global-only keys (`base_image`, `ca_certificates`, `engine`) describe
the user's image stack, which a project cannot set, so they always come from the global
file.

Limits, per file, far above any real config: a regular file (or a symlink to one)
of at most 1 MiB, opened without blocking; YAML nested at most 32 levels, with at
most 50,000 values and keys once aliases and merge keys are expanded; numbers of at
most 4,300 characters; no NUL characters in strings; strings split shell-like
(`docker_args`, `harness_args`) of at most 32,768 characters; and at most: 100
`mounts`, 1,000 `env` variables, 100 `ports`, 500 `docker_args`, 100 `pre_start`
commands, 200 arguments per harness in `harness_args`, 500
`detection.custom_patterns`, 1,000 `detection.allowlist` entries, 100
`ca_certificates`, 1,000 `network.allow` hosts, 100 `network.presets`, 100
`share_from_host` paths (`loader.MAX_*`, `checks.LIMITS`); whole numbers of days from
1 to 36,500 and `sessions_keep` from 1 to 100,000 (`checks.MAX_*`). The README's
configuration reference lists them; a unit test keeps the two in step.

Modules: `schema` (the records and the table of keys, `KEYS`), `checks` (one
normaliser per key), `merge` (`merge`, `origins`), `loader` (files, YAML, cache,
`load_config`, `inspect_config`); `values` holds the records the checks build.
`yaml` is imported lazily: importing this package must stay cheap.
"""

from __future__ import annotations

from aishell.config.loader import (
    ConfigReport,
    FileReport,
    find_project_config_dir,
    inspect_config,
    load_config,
    load_file,
    normalize,
    parse_config_text,
    read_config_file,
)
from aishell.config.merge import merge, origins
from aishell.config.schema import (
    DEFAULT_PATTERN_DESCRIPTION,
    ENGINES,
    GLOBAL_ONLY_KEYS,
    KEYS,
    PROJECT_ONLY_KEYS,
    SEVERITIES,
    TOP_LEVEL_KEYS,
    AllowEntry,
    Config,
    CustomPattern,
    DetectionConfig,
    EnvEntry,
    Expansion,
    FileConfig,
    FileDetection,
    FileNetwork,
    Key,
    KeyPath,
    LineMap,
    Mount,
    NetworkConfig,
    RawConfig,
    Scope,
    expand_vars,
)

__all__ = [
    "DEFAULT_PATTERN_DESCRIPTION",
    "ENGINES",
    "GLOBAL_ONLY_KEYS",
    "KEYS",
    "PROJECT_ONLY_KEYS",
    "SEVERITIES",
    "TOP_LEVEL_KEYS",
    "AllowEntry",
    "Config",
    "ConfigReport",
    "CustomPattern",
    "DetectionConfig",
    "EnvEntry",
    "Expansion",
    "FileConfig",
    "FileDetection",
    "FileNetwork",
    "FileReport",
    "Key",
    "KeyPath",
    "LineMap",
    "Mount",
    "NetworkConfig",
    "RawConfig",
    "Scope",
    "expand_vars",
    "find_project_config_dir",
    "inspect_config",
    "load_config",
    "load_file",
    "merge",
    "normalize",
    "origins",
    "parse_config_text",
    "read_config_file",
]
