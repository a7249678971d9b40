"""`aishell run [--json] [--timeout DURATION] AGENT PROMPT...`: hand an agent a task.

The agent runs in a fresh sandbox in its own headless mode (harnesses.py:
`headless_command`, `headless_prompt`) with its full-autonomy flag, the prompt passed
as one argument (the words joined by spaces; `-`, or no words with piped stdin: read
from stdin). Its output is streamed and recorded (launch/headless.py), its exit status
is aishell's, and with `--json` stdout ends with the result envelope
(docs/json-output.md). Nothing asks a question: an unapproved project config or a
high-severity sensitive file refuses the run (`--unsafe` for the latter).
"""

from __future__ import annotations

import os
import re
import sys
from typing import TYPE_CHECKING, Final

from aishell.commands.sandbox import start
from aishell.errors import UsageError
from aishell.harnesses import HARNESS_NAMES
from aishell.launch.request import LaunchRequest

if TYPE_CHECKING:
    from collections.abc import Sequence

    from aishell.launch.request import RunOptions

USAGE: Final = (
    "usage: aishell [--name N] [--worktree[=BRANCH]] [--unsafe] run [--json] "
    "[--timeout DURATION] AGENT [PROMPT... | -]\n\n"
    "Hand an agent a task: it runs non-interactively in a fresh sandbox (its own\n"
    "headless mode, full autonomy inside the sandbox), its output streamed to stdout,\n"
    "its exit status as aishell's. The prompt is the words after AGENT, passed as one\n"
    "argument (no shell); '-' or piped stdin reads it from stdin.\n\n"
    "  --json              end stdout with the result envelope (docs/json-output.md)\n"
    "  --timeout DURATION  stop the agent after DURATION (e.g. 90s, 30m, 2h); exit 124\n"
    "  --name, --worktree[=BRANCH], --unsafe  as before the command (see aishell --help);\n"
    "                      --worktree alone: a new branch aishell/<agent>-run-<id>\n\n"
    "Every session is recorded: 'aishell sessions', 'aishell logs SESSION'."
)
# An argument of more than 128 KiB cannot be passed to a program on Linux.
MAX_PROMPT: Final = 100_000
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d)?")
_UNIT: Final = {None: 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """`90`, `90s`, `30m`, `2h`, `1d` -> seconds (more than 0)."""
    match = _DURATION.fullmatch(text.strip())
    if not match or float(match.group(1)) <= 0:
        raise UsageError(
            f"--timeout: {text!r} is not a duration", hint="e.g. --timeout 90s, 30m or 2h"
        )
    return float(match.group(1)) * _UNIT[match.group(2)]


def parse(argv: Sequence[str], opts: RunOptions) -> tuple[LaunchRequest, RunOptions]:
    """The request of an `aishell run` command line (the options may also come after
    `run`: --name, --worktree, --unsafe, --install)."""
    as_json = False
    timeout: float | None = None
    i = 0
    args = list(argv)
    while i < len(args):
        arg = args[i]
        if arg == "--":
            i += 1
            break
        if not arg.startswith("-") or arg == "-":
            break
        if arg == "--json":
            as_json = True
        elif arg in ("--timeout", "--name"):
            if i + 1 >= len(args):
                raise UsageError(f"{arg} needs a value", hint="see 'aishell run --help'")
            if arg == "--timeout":
                timeout = parse_duration(args[i + 1])
            else:
                opts = opts._replace(name=args[i + 1])
            i += 1
        elif arg.startswith("--timeout="):
            timeout = parse_duration(arg.split("=", 1)[1])
        elif arg.startswith("--name="):
            opts = opts._replace(name=arg.split("=", 1)[1])
        elif arg == "--worktree":
            opts = opts._replace(worktree="")
        elif arg.startswith("--worktree=") and arg != "--worktree=":
            opts = opts._replace(worktree=arg.split("=", 1)[1])
        elif arg == "--unsafe":
            opts = opts._replace(unsafe=True)
        elif arg == "--install":
            opts = opts._replace(install=True)
        elif arg in ("--detach", "-d"):
            raise UsageError("run waits for the agent; --detach does not apply")
        else:
            raise UsageError(f"unknown option {arg!r} for run", hint="see 'aishell run --help'")
        i += 1
    if opts.detach:
        raise UsageError("run waits for the agent; --detach does not apply")
    if i >= len(args):
        raise UsageError("run needs an agent and a prompt", hint="e.g. aishell run claude 'fix it'")
    agent, words = args[i], args[i + 1 :]
    if words[:1] == ["--"]:  # `aishell run codex -- -x`: the prompt is "-x"
        words = words[1:]
    if agent not in HARNESS_NAMES:
        raise UsageError(
            f"unknown agent {agent!r} for run", hint=f"one of {', '.join(HARNESS_NAMES)}"
        )
    prompt = prompt_of(words)
    name = opts.name
    if name is None:
        name = f"{agent}-run-{os.urandom(3).hex()}"  # runs at once never share a name
    req = LaunchRequest(
        kind="run",
        harness=agent,
        name=name,
        unsafe=opts.unsafe,
        prompt=prompt,
        timeout=timeout,
        json=as_json,
    )
    return req, opts


def prompt_of(words: Sequence[str]) -> str:
    """The prompt: the words joined by spaces, or stdin for `-` (or no words when
    stdin is not a terminal)."""
    if list(words) == ["-"] or (not words and not sys.stdin.isatty()):
        prompt = read_stdin()
    elif not words:
        raise UsageError("run needs a prompt", hint="give it after the agent, or pipe it in")
    else:
        prompt = " ".join(words)
    return check_prompt(prompt)


def read_stdin() -> str:
    data = sys.stdin.buffer.read(MAX_PROMPT * 4 + 1)
    return data.decode("utf-8", "surrogateescape")


def check_prompt(prompt: str) -> str:
    if not prompt.strip():
        raise UsageError("the prompt is empty", hint="give the agent something to do")
    if "\0" in prompt:
        raise UsageError("the prompt contains a NUL character", hint="remove it")
    size = len(prompt.encode("utf-8", "surrogateescape"))
    if size > MAX_PROMPT:
        raise UsageError(
            f"the prompt is {size} bytes long; at most {MAX_PROMPT} can be passed",
            hint="put the long part in a file in the project and point the agent at it",
        )
    return prompt


def main(command: str, argv: Sequence[str], opts: RunOptions) -> int:
    if list(argv[:1]) in (["-h"], ["--help"]):
        print(USAGE)
        return 0
    req, opts = parse(argv, opts)
    return start(req, opts)
