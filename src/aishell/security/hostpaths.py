"""What the host paths of a launch really are, and the decisions that depend on it.

`validate` judges paths without I/O; this module does the I/O it needs (`realpath`
of every path a config names, of the home, the project and the aishell home) and
puts the results together for a launch and for `aishell check`:

- `dangers`: every advisory finding (options, mounts by spelling and by real path,
  `env` that hands the agent an engine, a project root that is or holds the home).
- `decisions`: what needs the user's yes before a launch goes on: a project root that
  is the home (or holds it, or aishell's own home), and a mount source inside the
  project that a symlink leads out of it (whoever writes the project, the agent,
  chooses what that mounts). On a terminal the user is asked; without one the launch
  is refused; `--unsafe` goes on (with the warning).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from aishell import output
from aishell.errors import Aborted, AishellError
from aishell.security import validate
from aishell.tuples import NamedTuple

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from aishell.config import Config
    from aishell.project import Project
    from aishell.security.validate import Danger


class Facts(NamedTuple):
    """The real paths a judgement needs."""

    home: str
    real_home: str
    aishell_home: str  # its real path
    root: str  # the project root as the user sees it
    real_root: str
    real: Mapping[str, str]  # every host path the config names -> its real path


def gather(config: Config, *, home: str, aishell_home: str | Path, project: Project) -> Facts:
    names = validate.host_paths(config.docker_args, (m.source for m in config.mounts), home=home)
    return Facts(
        home=home,
        real_home=os.path.realpath(home),
        aishell_home=os.path.realpath(aishell_home),
        root=project.root,
        real_root=project.canonical,
        real={path: os.path.realpath(path) for path in names},
    )


def dangers(config: Config, facts: Facts) -> list[Danger]:
    """Every advisory finding of `config` in this project (printed before every launch
    and by `aishell check`)."""
    common = {"home": facts.home, "real_home": facts.real_home, "aishell_home": facts.aishell_home}
    found = validate.check_project_root(facts.root, real_root=facts.real_root, **common)
    found += validate.check_docker_args(
        config.docker_args,
        real=facts.real,
        project=(facts.root, facts.real_root),
        **common,
    )
    found += validate.check_mounts(
        [(m.source, m.target) for m in config.mounts], real=facts.real, **common
    )
    found += validate.check_env(e.name for e in config.env)
    return list(dict.fromkeys(found))


class Decision(NamedTuple):
    what: str
    why: str


def decisions(config: Config, facts: Facts, found: Iterable[Danger]) -> list[Decision]:
    """What the launch may not do without the user's yes (see the module docstring)."""
    result = [Decision(d.what, d.why) for d in found if d.source == validate.SOURCE_PROJECT]
    for path, real in facts.real.items():  # mount sources, -v/--mount, device=, --env-file
        if validate.leaves_project(path, real, root=facts.root, real_root=facts.real_root):
            result.append(
                Decision(
                    path,
                    f"is a symlink inside the project to {real}: whoever writes the project "
                    "(the agent, too) chooses what this path exposes",
                )
            )
    return result


def gate(
    items: list[Decision],
    *,
    interactive: bool,
    unsafe: bool,
    ask: Callable[[str], bool] = output.ask_yes_no,
) -> None:
    if not items:
        return
    output.info(output.style("This launch reaches more than a project should:", "1"))
    for item in items:
        output.info(f"  - {item.what}: {item.why}")
    if unsafe:
        output.warn("going on anyway (--unsafe)")
        return
    if not interactive:
        raise AishellError(
            f"{items[0].what}: {items[0].why}; no terminal to ask",
            hint="start aishell inside a project (a git repository, or a directory with "
            ".aishell/), mount the real path instead of the symlink, or pass --unsafe",
        )
    if not ask("Go on anyway?"):
        raise Aborted("Aborted.")


def empty_dir(aishell_home: str | Path) -> Path:
    """An empty directory of aishell's own, bound read-only over what a sandbox must not
    see (the aishell home, when it is inside the project)."""
    path = Path(aishell_home) / "empty"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if any(path.iterdir()):
        import shutil

        shutil.rmtree(path)
        path.mkdir(mode=0o700)
    return path
