"""`aishell attach NAME [--shell]`: back into a running agent's tmux session."""

from collections.abc import Sequence
from typing import Any

from aishell import output, paths
from aishell.commands._args import parser
from aishell.constants import LABEL_TMUX
from aishell.engine import choice
from aishell.engine.client import Engine
from aishell.engine.containers import parse_inspect
from aishell.engine.run_args import HostFacts
from aishell.errors import AishellError, UsageError

DETACHED = 200  # aishell-attach's status when the user detached
# Containers this process detached from (still running): their session resources stay.
DETACHED_FROM: set[str] = set()


def _env_of(item: dict[str, Any]) -> dict[str, str]:
    env: dict[str, str] = {}
    for entry in (item.get("Config") or {}).get("Env") or []:
        key, _, value = entry.partition("=")
        env[key] = value
    return env


def _exec_prefix(item: dict[str, Any], host: HostFacts) -> list[str]:
    """`exec -it` as the container's user, with the host terminal's TERM."""
    env = _env_of(item)
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


def attach_session(
    engine: Engine, container: str, short: str, host: HostFacts, *, wait_for_start: bool = False
) -> int:
    """Attach this terminal to the container's tmux session; the agent's exit status,
    or 0 after printing how to come back when the user detached."""
    item = None
    if not wait_for_start:
        item = _running_container(engine, container, short)
    else:
        result = engine.capture("container", "inspect", container)
        item = parse_inspect(result.stdout) if result.ok else None
        if item is None:
            raise AishellError(f"the container {container} ended before it could be attached")
    status = engine.call([*_exec_prefix(item, host), container, "aishell-attach"])
    if status == DETACHED:
        output.info(f"Detached from {short}; it keeps running. Back with: aishell attach {short}")
        DETACHED_FROM.add(container)
        return 0
    return status


def _running_container(engine: Engine, container: str, short: str) -> dict[str, Any]:
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


def main(argv: Sequence[str]) -> int:
    p = parser("aishell attach", "Reconnect to a running agent's session in this project.")
    p.add_argument("name", help="the container name shown by 'aishell ps'")
    p.add_argument("--shell", action="store_true", help="open a shell in the container instead")
    ns = p.parse_args(list(argv))

    from aishell import hostfacts
    from aishell import project as project_mod
    from aishell.launch import validate_name

    validate_name(ns.name)
    host = hostfacts.gather(want_git=False)
    if not host.tty:
        raise UsageError(
            "attach needs an interactive terminal",
            hint="run it from a terminal (not a pipe or a script)",
        )
    project = project_mod.resolve(host.cwd, aishell_home=str(paths.aishell_home()))
    engine = choice.get_engine()
    container = project.container_name(ns.name)
    item = _running_container(engine, container, ns.name)
    if ns.shell:
        return engine.call([*_exec_prefix(item, host), "-w", host.cwd, container, "bash", "-l"])
    labels = (item.get("Config") or {}).get("Labels") or {}
    if labels.get(LABEL_TMUX) != "1":
        raise AishellError(
            f"{ns.name!r} was started without tmux, so there is no session to attach to",
            hint=f"open a shell in it with 'aishell attach {ns.name} --shell'",
        )
    return attach_session(engine, container, ns.name, host)
