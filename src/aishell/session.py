"""Interactive sessions: an agent (or shell) running inside tmux in its container.

The launch pipeline starts such a container detached and then attaches this terminal
to its tmux session; `aishell attach` does the same later. Attaching returns what
happened: the agent's exit status, or that the user detached (the agent keeps
running, and so must its session resources).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aishell import output
from aishell.engine.containers import parse_inspect
from aishell.errors import AishellError
from aishell.tuples import NamedTuple

if TYPE_CHECKING:
    from collections.abc import Mapping

    from aishell.engine.client import Engine
    from aishell.engine.run_args import HostFacts

DETACHED = 200  # aishell-attach's status when the user detached


class Outcome(NamedTuple):
    status: int  # the agent's exit status; 0 when the user detached
    detached: bool  # the agent still runs
    ended_by: str = "exit"  # exit | timeout (aishell run's time limit)


def env_of(item: dict[str, Any]) -> dict[str, str]:
    env: dict[str, str] = {}
    for entry in (item.get("Config") or {}).get("Env") or []:
        key, _, value = entry.partition("=")
        env[key] = value
    return env


def detach_keys(environ: Mapping[str, str]) -> str:
    """What to press to detach from the agent's tmux. Inside the user's own tmux with
    the same prefix (Ctrl-b), Ctrl-b d would detach *their* session: then the inner one
    is reached with the prefix twice (tmux's send-prefix)."""
    if not environ.get("TMUX"):
        return "Ctrl-b d"
    return "Ctrl-b d" if _outer_prefix() not in (None, "C-b") else "Ctrl-b Ctrl-b d"


def _outer_prefix() -> str | None:
    """The prefix key of the tmux this terminal runs in (the one place that asks it)."""
    import subprocess

    try:
        result = subprocess.run(
            ["tmux", "show-options", "-gv", "prefix"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def exec_prefix(item: dict[str, Any], host: HostFacts, *, detach: str | None = None) -> list[str]:
    """`exec -it` as the container's user, with the host terminal's TERM (and, for
    aishell-attach, the keys that detach)."""
    env = env_of(item)
    uid = env.get("LOCAL_UID", str(host.uid))
    gid = env.get("LOCAL_GID", str(host.gid))
    home = env.get("LOCAL_HOME", host.home)
    return [
        "exec",
        "-it",
        "-u",
        f"{uid}:{gid}",
        "-e",
        f"HOME={home}",
        "-e",
        f"TERM={host.term or 'xterm-256color'}",
        "-e",
        f"COLORTERM={host.colorterm or 'truecolor'}",
        "-e",
        "LANG=C.UTF-8",
        *(["-e", f"AISHELL_DETACH_KEYS={detach}"] if detach else []),
    ]


def running_container(engine: Engine, container: str, short: str) -> dict[str, Any]:
    """The inspect data of the running container `container` (aishell name `short`)."""
    result = engine.capture("container", "inspect", container)
    item = parse_inspect(result.stdout) if result.ok else None
    if item is None:
        raise AishellError(
            f"no container named {short!r} in this project",
            hint="list them with 'aishell ps'",
        )
    if not (item.get("State") or {}).get("Running"):
        raise AishellError(
            f"the container {short!r} is not running",
            hint=f"start a new one with 'aishell {short}' (or 'aishell --name {short} <agent>')",
        )
    return item


def just_started(engine: Engine, container: str) -> dict[str, Any]:
    """The inspect data of a container the launch pipeline started a moment ago."""
    result = engine.capture("container", "inspect", container)
    item = parse_inspect(result.stdout) if result.ok else None
    if item is None:
        raise AishellError(f"the container {container} ended before it could be attached")
    return item


def attach(
    engine: Engine, container: str, short: str, host: HostFacts, item: dict[str, Any]
) -> Outcome:
    """Attach this terminal to the container's tmux session (`item`: its inspect data)."""
    keys = detach_keys(host.env)
    if keys != "Ctrl-b d":
        output.info(
            f"You are inside tmux: detach from {short} with {keys} "
            "(Ctrl-b d alone would detach your own tmux session)"
        )
    status = engine.call([*exec_prefix(item, host, detach=keys), container, "aishell-attach"])
    if status == DETACHED:
        output.info(
            f"Detached from {short}; it keeps running. "
            f"Back with: aishell attach {short}   Stop it: aishell stop {short}"
        )
        return Outcome(0, detached=True)
    return Outcome(status, detached=False)


def shell(engine: Engine, container: str, item: dict[str, Any], host: HostFacts) -> int:
    """A login shell in the running container, in the current directory."""
    return engine.call([*exec_prefix(item, host), "-w", host.cwd, container, "bash", "-l"])
