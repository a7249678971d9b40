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

Modules: `schema` (the records and the table of keys, `KEYS`), `checks` (one
normaliser per key), `merge`, `loader` (files, YAML, cache,
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
from aishell.config.merge import merge
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
    "parse_config_text",
    "read_config_file",
]
