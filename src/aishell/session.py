"""Interactive sessions: an agent (or shell) running inside tmux in its container.

The launch pipeline starts such a container detached and then attaches this terminal
to its tmux session; `aishell attach` does the same later. Attaching returns what
happened: the agent's exit status, or that the user detached (the agent keeps
running, and so must its session resources).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from aishell import output
from aishell.engine.containers import parse_inspect
from aishell.errors import AishellError

if TYPE_CHECKING:
    from aishell.engine.client import Engine
    from aishell.engine.run_args import HostFacts

DETACHED = 200  # aishell-attach's status when the user detached


class Outcome(NamedTuple):
    status: int  # the agent's exit status; 0 when the user detached
    detached: bool  # the agent still runs


def env_of(item: dict[str, Any]) -> dict[str, str]:
    env: dict[str, str] = {}
    for entry in (item.get("Config") or {}).get("Env") or []:
        key, _, value = entry.partition("=")
        env[key] = value
    return env


def exec_prefix(item: dict[str, Any], host: HostFacts) -> list[str]:
    """`exec -it` as the container's user, with the host terminal's TERM."""
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
    status = engine.call([*exec_prefix(item, host), container, "aishell-attach"])
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
