"""One launch pipeline for every way of starting a sandbox (agent, shell, exec,
gitleaks, detached), in four steps:

1. `resolve`     (launch/resolve.py)     host facts, project, config, setup, security
                                         checks and the user's decision; no engine
2. `materialise` (launch/materialise.py) images, harness volume, agent config paths,
                                         stale container: the only side effects
3. `assemble`    (launch/assemble.py)    pure: -> RunSpec (then `build_run_args`)
4. `run`         (launch/run.py)         hand over to the engine (egress proxy around it)
"""

from __future__ import annotations

from aishell.config import Config
from aishell.engine.client import Engine
from aishell.engine.run_args import HostFacts, RunArgs, RunSpec, build_run_args
from aishell.launch.assemble import assemble
from aishell.launch.materialise import materialise
from aishell.launch.request import LaunchRequest
from aishell.launch.resolve import host_facts, resolve
from aishell.launch.run import run
from aishell.netpolicy import Plan
from aishell.project import Project
from aishell.tuples import NamedTuple

__all__ = ["LaunchRequest", "Prepared", "launch", "prepare"]


def launch(req: LaunchRequest) -> int:
    resolved = resolve(req)
    materials = materialise(resolved)
    spec = assemble(resolved, materials)
    return run(resolved, materials, spec)


class Prepared(NamedTuple):
    """A launch resolved, materialised and assembled, not yet run (`aishell verify`
    starts its own command with it)."""

    engine: Engine
    project: Project
    config: Config
    host: HostFacts
    spec: RunSpec
    run_args: RunArgs
    container: str | None
    egress: Plan | None = None


def prepare(req: LaunchRequest) -> Prepared:
    resolved = resolve(req)
    materials = materialise(resolved)
    spec = assemble(resolved, materials)
    host = host_facts(resolved)
    return Prepared(
        engine=materials.engine,
        project=resolved.project,
        config=resolved.config,
        host=host,
        spec=spec,
        run_args=build_run_args(spec, host),
        container=resolved.container,
        egress=resolved.egress,
    )
