"""Which container engine to use: `AISHELL_ENGINE`, then `engine:` in the global
config, then auto-detection (Docker when it answers, else Podman).

The only engine module that reads user configuration; `client.Engine` itself never
does. Detection makes no engine call (it runs on the launch path).
"""

from __future__ import annotations

import os
from functools import cache

from aishell import config as config_mod
from aishell import output, paths
from aishell.constants import CONFIG_FILE
from aishell.engine.client import ENGINE_KINDS, Engine
from aishell.errors import ConfigError, EngineError


def _which(name: str) -> str | None:
    """`shutil.which` without importing shutil (it costs more than the launch can spare)."""
    if os.sep in name:
        return name if os.access(name, os.X_OK) and not os.path.isdir(name) else None
    for directory in os.environ.get("PATH", os.defpath).split(os.pathsep):
        candidate = os.path.join(directory or ".", name)
        if os.access(candidate, os.X_OK) and not os.path.isdir(candidate):
            return candidate
    return None


def _kind_of(binary: str) -> str:
    return "podman" if "podman" in os.path.basename(binary) else "docker"


_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")


def _docker_answers_cheaply() -> tuple[bool, str]:
    """Whether Docker counts as answering, and why: it is pointed somewhere on purpose
    (DOCKER_HOST, DOCKER_CONTEXT, a current context) or its socket exists and is ours
    to use. No engine call: this runs on the launch path."""
    for variable in ("DOCKER_HOST", "DOCKER_CONTEXT"):
        if os.environ.get(variable):
            return True, f"{variable} is set"
    sockets = list(_SOCKETS)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        sockets.append(os.path.join(runtime, "docker.sock"))  # rootless Docker
    refused = ""
    for path in sockets:
        if os.path.exists(path):
            if os.access(path, os.R_OK | os.W_OK):
                return True, f"its socket {path} is usable"
            refused = refused or path
    config = os.path.join(
        os.environ.get("DOCKER_CONFIG") or os.path.expanduser("~/.docker"), "config.json"
    )
    try:
        with open(config, encoding="utf-8") as fh:
            if '"currentContext"' in fh.read():
                return True, f"{config} names a context"
    except OSError:
        pass
    if refused:
        return (
            False,
            f"Docker's socket {refused} is not yours to use (you are not in the 'docker' group)",
        )
    return False, "Docker's socket does not exist (the Docker engine is not running)"


DOCKER_GROUP_FIX = (
    "to use Docker, add yourself to the docker group ('sudo usermod -aG docker $USER', "
    "then log out and back in)"
)

# Why the engine of this process was chosen (`aishell check` shows it).
_reason: list[str] = []


def reason() -> str | None:
    """Why `get_engine` chose the engine it returned (None before it ran)."""
    return _reason[-1] if _reason else None


def _detect() -> Engine:
    """Neither AISHELL_ENGINE nor `engine:` is set: Docker when it answers, else Podman.
    Falling back to Podman is never silent: it says why, and how to get Docker."""
    docker = _which("docker")
    answers, why = _docker_answers_cheaply() if docker else (False, "")
    if docker and answers:
        _reason.append(f"auto-detected: {why}")
        return Engine(binary=os.path.abspath(docker), kind="docker")
    podman = _which("podman")
    if podman:
        _reason.append(
            f"auto-detected: {why}; using Podman" if docker else "auto-detected: no docker CLI"
        )
        if docker:
            output.info(
                f"Note: using Podman, not Docker: {why}; {DOCKER_GROUP_FIX}, or set "
                "'engine: podman' in ~/.aishell/config.yaml (or AISHELL_ENGINE=podman) "
                "to choose Podman and silence this note"
            )
        return Engine(binary=os.path.abspath(podman), kind="podman")
    if docker:  # installed but not answering: its own error explains
        _reason.append(f"auto-detected: {why}; no podman CLI")
        return Engine(binary=os.path.abspath(docker), kind="docker")
    raise EngineError(
        "no container engine found: neither 'docker' nor 'podman' is on PATH",
        hint="install Docker (https://docs.docker.com/engine/install/) or Podman, "
        "or set AISHELL_ENGINE to the engine's CLI",
    )


_READ_CONFIG = "<global config>"


def _configured_engine() -> str | None:
    """`engine:` from the global config, for commands that did not load it."""
    home = paths.aishell_home()
    if not (home / CONFIG_FILE).is_file():
        return None
    try:
        cfg = config_mod.load_config(
            aishell_home=home, project_root=None, expansion=config_mod.Expansion.from_host()
        )
    except ConfigError as exc:
        raise EngineError(
            f"cannot tell which engine to use: {exc.message}",
            hint=exc.hint or "fix the global config, or set AISHELL_ENGINE",
        ) from exc
    return cfg.engine


@cache
def get_engine(configured: str | None = _READ_CONFIG) -> Engine:
    """Resolve the engine CLI once. Precedence: `AISHELL_ENGINE` (a name or a path),
    then `engine:` from the global config (`configured`: the value of a config the
    caller already loaded; by default the global config is read), then auto-detection
    (Docker when it answers, else Podman)."""
    wanted = os.environ.get("AISHELL_ENGINE")
    origin = "AISHELL_ENGINE"
    if not wanted:
        wanted = _configured_engine() if configured == _READ_CONFIG else configured
        origin = "engine (global config)"
    if not wanted:
        return _detect()
    _reason.append(f"chosen by {origin}")
    found = _which(wanted)
    if found is None:
        if wanted in ENGINE_KINDS:
            raise EngineError(
                f"'{wanted}' was not found on PATH (chosen by {origin})",
                hint="install Docker (https://docs.docker.com/engine/install/) or "
                "Podman, or choose the other engine",
            )
        raise EngineError(
            f"AISHELL_ENGINE={wanted!r} was not found",
            hint="set AISHELL_ENGINE to 'docker', 'podman' or the path of an engine CLI",
        )
    return Engine(binary=os.path.abspath(found), kind=_kind_of(found))
