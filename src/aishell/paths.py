"""Where aishell keeps its files. `AISHELL_HOME` relocates `~/.aishell`."""

from __future__ import annotations

import os
from pathlib import Path


def user_home(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    home = env.get("HOME")
    return Path(home) if home else Path.home()


def aishell_home(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    override = env.get("AISHELL_HOME")
    if override:
        return Path(override).expanduser()
    return user_home(environ) / ".aishell"


def home_id(environ: dict[str, str] | None = None, uid: int | None = None) -> str:
    """This aishell home's short name on the engine: a hash of the user's UID and the
    real path of the home, so each user's each home has its own image holds."""
    from aishell.hashing import short_hash

    real = os.path.realpath(aishell_home(environ))
    return short_hash(f"{os.getuid() if uid is None else uid}:{real}", 12)


def state_file(environ: dict[str, str] | None = None) -> Path:
    return aishell_home(environ) / "state.json"


def global_config_file(environ: dict[str, str] | None = None) -> Path:
    return aishell_home(environ) / "config.yaml"


def global_dockerfile(environ: dict[str, str] | None = None) -> Path:
    return aishell_home(environ) / "Dockerfile"


def logs_dir(environ: dict[str, str] | None = None) -> Path:
    return aishell_home(environ) / "logs"


def projects_dir(environ: dict[str, str] | None = None) -> Path:
    """Per-project state outside every sandbox: approvals of the project's aishell
    config (trust) and the agents' per-project config homes."""
    return aishell_home(environ) / "projects"


def agents_dir(environ: dict[str, str] | None = None) -> Path:
    """The agents' shared login stores (`agents/<agent>/store/...`)."""
    return aishell_home(environ) / "agents"


def egress_dir(environ: dict[str, str] | None = None) -> Path:
    """Allowlist sessions' policies and sockets (engine/proxy.py): never mounted into a
    sandbox, except each session's own socket directory, read-only."""
    return aishell_home(environ) / "egress"


def findings_seen_file(project_hash: str, environ: dict[str, str] | None = None) -> Path:
    """The digest of the sensitive-file findings the user last read for a project."""
    return aishell_home(environ) / "cache" / "findings-seen" / project_hash
