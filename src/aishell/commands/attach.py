"""`aishell attach NAME [--shell]`: back into a running agent's tmux session."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aishell import hostfacts, paths, session
from aishell import project as project_mod
from aishell.commands._args import parser
from aishell.constants import LABEL_TMUX
from aishell.engine import choice
from aishell.errors import AishellError, UsageError
from aishell.launch.request import validate_name

if TYPE_CHECKING:
    from collections.abc import Sequence


def main(argv: Sequence[str]) -> int:
    p = parser("aishell attach", "Reconnect to a running agent's session in this project.")
    p.add_argument("name", help="the container name shown by 'aishell ps'")
    p.add_argument("--shell", action="store_true", help="open a shell in the container instead")
    ns = p.parse_args(list(argv))

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
    item = session.running_container(engine, container, ns.name)
    if ns.shell:
        return session.shell(engine, container, item, host)
    labels = (item.get("Config") or {}).get("Labels") or {}
    if labels.get(LABEL_TMUX) != "1":
        raise AishellError(
            f"{ns.name!r} was started without tmux, so there is no session to attach to",
            hint=f"open a shell in it with 'aishell attach {ns.name} --shell'",
        )
    return session.attach(engine, container, ns.name, host, item).status
