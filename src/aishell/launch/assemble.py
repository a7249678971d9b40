"""Step 3 of a launch: assemble. Pure: what was resolved and materialised -> RunSpec.

No I/O and no environment reads: everything comes from `Resolved` and `Materials`.
`build_run_args` then turns the spec into the engine's argv.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aishell.constants import (
    LABEL_HARNESS,
    LABEL_HOME,
    LABEL_KIND,
    LABEL_NAME,
    LABEL_PROJECT,
    LABEL_PROJECT_HASH,
    LABEL_TMUX,
)
from aishell.engine.run_args import Bind, RunSpec
from aishell.harnesses import BY_NAME
from aishell.security import hardening

if TYPE_CHECKING:
    from collections.abc import Mapping

    from aishell.config import Config
    from aishell.harnesses import Tool
    from aishell.launch.materialise import Materials
    from aishell.launch.request import LaunchRequest
    from aishell.launch.resolve import Resolved


def command_for(req: LaunchRequest, config: Config, environ: Mapping[str, str]) -> tuple[str, ...]:
    if req.kind == "exec":
        return req.args
    if req.kind == "shell":
        return ("bash",)
    if req.kind == "gitleaks":
        # (freshness imports datetime: only gitleaks runs pay for it)
        from aishell.security.freshness import DEFAULT_ARGS

        return ("gitleaks", *(req.args or DEFAULT_ARGS))
    assert req.harness is not None
    tool = BY_NAME[req.harness]
    if req.kind == "run":
        return headless_command(
            tool,
            req.prompt or "",
            tool.autonomy_args if autonomous(environ) else tool.opt_out_args,
            tuple(config.harness_args.get(tool.name, ())),
        )
    extra: tuple[str, ...] = ()
    if not (req.args and req.args[0] in tool.plain_subcommands):
        extra = tool.autonomy_args if autonomous(environ) else tool.opt_out_args
    defaults = tuple(config.harness_args.get(tool.name, ()))
    return (tool.command, *tool.fixed_args, *extra, *defaults, *req.args)


def headless_command(
    tool: Tool, prompt: str, autonomy: tuple[str, ...], defaults: tuple[str, ...]
) -> tuple[str, ...]:
    """The agent's headless command line (`aishell run`): the prompt is one argument,
    wherever the agent's template puts it, and nothing in it is interpreted."""
    placed = tuple(
        prompt if part == "{prompt}" else part.replace("{prompt}", prompt)
        for part in tool.headless_prompt
    )
    return (tool.command, *tool.fixed_args, *tool.headless_command, *autonomy, *defaults, *placed)


def autonomous(environ: Mapping[str, str]) -> bool:
    """Agents run with their own approvals off unless AISHELL_SKIP_PERMISSIONS=false."""
    return environ.get("AISHELL_SKIP_PERMISSIONS", "").lower() != "false"


def environment(
    tools: list[str], configured: tuple[tuple[str, str | None], ...]
) -> list[tuple[str, str | None]]:
    """The agents' API-key variables (passed from the host by name), then the configured
    env; a configured name replaces an API-key entry and moves to the end."""
    env: dict[str, str | None] = {}
    for name in tools:
        for key in BY_NAME[name].api_keys:
            env.setdefault(key, None)
    for key, value in configured:
        env.pop(key, None)
        env[key] = value
    return list(env.items())


def assemble(r: Resolved, m: Materials) -> RunSpec:
    req, config = r.req, r.config
    tools = sorted(r.state.tools)
    named = r.container is not None
    labels = [
        (LABEL_PROJECT, r.project.canonical),
        (LABEL_PROJECT_HASH, r.project.hash),
        (LABEL_KIND, req.kind),
    ]
    if r.home_id:
        labels.append((LABEL_HOME, r.home_id))
    if named:
        labels.append((LABEL_NAME, r.short))
    if req.harness:
        labels.append((LABEL_HARNESS, req.harness))
    if m.owner is not None:  # who started it: the aishell home and user
        labels += list(m.owner.labels().items())

    tmux = req.interactive and config.tmux and (r.host.tty or req.detach)
    fixed_env = [pair for name in tools for pair in BY_NAME[name].env]
    if tmux:
        labels.append((LABEL_TMUX, "1"))
        if r.terminal is not None:
            columns, lines = r.terminal
            fixed_env += [("AISHELL_COLUMNS", str(columns)), ("AISHELL_LINES", str(lines))]
    egress = r.egress
    if egress is not None:
        labels += egress.labels
        fixed_env += egress.env
    return RunSpec(
        image=m.image,
        command=command_for(req, config, r.host.env),
        project_dir=r.project.root,
        workdir=r.host.cwd,
        mode="detach" if (req.detach or tmux) else ("interactive" if req.interactive else "exec"),
        name=r.container,
        labels=tuple(labels),
        harness_volume=m.volume,
        binds=(
            *m.agent_binds,
            *r.config_binds,
            *r.git_binds,
            *r.guard_binds,
            *(Bind(src, dst, readonly=True) for src, dst in (egress.binds if egress else ())),
        ),
        fixed_env=tuple(fixed_env),
        env=tuple(environment(tools, r.env)),
        # Published only where a person runs something to reach (agent and shell runs,
        # detached or not): exec, gitleaks and verify beside them must not collide.
        ports=tuple(config.ports) if req.interactive else (),
        docker_args=tuple(config.docker_args),
        pre_start=config.pre_start if req.interactive or req.detach else None,
        tmux=tmux,
        flavour=m.flavour,
        network=egress.network if egress else None,
        dns=egress.dns if egress else None,
        seccomp_profile=hardening.SECCOMP_PROFILE,
        cap_drop=hardening.DROPPED_CAPABILITIES,
    )
