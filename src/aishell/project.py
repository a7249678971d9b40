"""Which directory is the project, and names derived from it."""

from __future__ import annotations

import os

from aishell.constants import CONTAINER_PREFIX, EXTENSION_ROLE_PREFIX, PROJECT_CONFIG_DIRS
from aishell.hashing import project_hash, short_hash
from aishell.tuples import NamedTuple


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


def _user_home(user_home: str | None) -> str | None:
    home = os.environ.get("HOME") if user_home is None else user_home
    return os.path.realpath(home) if home else None


def is_user_home(directory: str, user_home: str | None = None) -> bool:
    """`directory` is the user's home directory itself (`user_home`, default $HOME)."""
    home = _user_home(user_home)
    return home is not None and os.path.realpath(directory) == home


def find_root(cwd: str, *, aishell_home: str | None = None, user_home: str | None = None) -> str:
    """The nearest ancestor of `cwd` holding `.aishell/` or `.sandbox/` (not the
    aishell home itself), else the git top level, else `cwd` itself.

    The user's home directory (`user_home`, default $HOME) is never found as a
    project by its markers: below it, the search stops short of it (its `.aishell/`
    is the default aishell home, a `.git` there is a dotfiles repository, and either
    would mount the whole home). Run from the home itself, the home is `cwd`."""
    cwd = os.path.abspath(cwd)
    global_home = os.path.realpath(aishell_home) if aishell_home else None
    home = _user_home(user_home)
    ancestors = [cwd]
    while True:
        parent = os.path.dirname(ancestors[-1])
        if parent == ancestors[-1]:
            break
        ancestors.append(parent)
    if home is not None:
        real = [os.path.realpath(d) for d in ancestors]
        if home in real[1:]:  # cwd is below the home: only what lies below it counts
            ancestors = ancestors[: real.index(home)]
        elif real[0] == home:  # cwd is the home itself
            return cwd
    for directory in ancestors:
        if _has_config_dir(directory, global_home):
            return directory
    for directory in ancestors:
        if os.path.exists(os.path.join(directory, ".git")):
            return directory
    return cwd


def resolve(cwd: str, *, aishell_home: str | None = None, user_home: str | None = None) -> Project:
    root = find_root(cwd, aishell_home=aishell_home, user_home=user_home)
    canonical = os.path.realpath(root)
    return Project(root=root, canonical=canonical, hash=project_hash(canonical))
