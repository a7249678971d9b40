"""Which directory is the project, and names derived from it."""

from __future__ import annotations

import os
from typing import NamedTuple

from aishell.constants import CONTAINER_PREFIX, EXTENSION_ROLE_PREFIX, PROJECT_CONFIG_DIRS
from aishell.hashing import project_hash, short_hash


class Project(NamedTuple):
    root: str  # absolute path as the user sees it (containers mount this path)
    canonical: str  # symlinks resolved; what hashes are computed from
    hash: str  # 8 hex

    @property
    def container_prefix(self) -> str:
        return f"{CONTAINER_PREFIX}{self.hash}-"

    def container_name(self, name: str) -> str:
        return f"{self.container_prefix}{name}"

    @property
    def store_key(self) -> str:
        """The name of this project's directory under `~/.aishell/projects/` (approvals,
        agent config homes): a longer hash than `hash`, so two projects never share one."""
        return short_hash(self.canonical, 16)

    @property
    def extension_role(self) -> str:
        """The hold role of the project's extension image: each home tags it
        `aishell-home-<homeid>:ext-<hash12>`."""
        return EXTENSION_ROLE_PREFIX + short_hash(self.canonical)


def _has_config_dir(directory: str, global_home: str | None) -> bool:
    for name in PROJECT_CONFIG_DIRS:
        candidate = os.path.join(directory, name)
        if os.path.isdir(candidate) and (
            global_home is None or os.path.realpath(candidate) != global_home
        ):
            return True
    return False


def find_root(cwd: str, *, aishell_home: str | None = None) -> str:
    """The nearest ancestor of `cwd` holding `.aishell/` or `.sandbox/` (not the
    global `~/.aishell`), else the git top level, else `cwd` itself."""
    cwd = os.path.abspath(cwd)
    global_home = os.path.realpath(aishell_home) if aishell_home else None
    ancestors = [cwd]
    while True:
        parent = os.path.dirname(ancestors[-1])
        if parent == ancestors[-1]:
            break
        ancestors.append(parent)
    for directory in ancestors:
        if _has_config_dir(directory, global_home):
            return directory
    for directory in ancestors:
        if os.path.exists(os.path.join(directory, ".git")):
            return directory
    return cwd


def resolve(cwd: str, *, aishell_home: str | None = None) -> Project:
    root = find_root(cwd, aishell_home=aishell_home)
    canonical = os.path.realpath(root)
    return Project(root=root, canonical=canonical, hash=project_hash(canonical))
