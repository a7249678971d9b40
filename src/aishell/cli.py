"""Command-line entry point.

aishell's own options are read only before the command word; everything
after an agent name or `exec` is passed through untouched. Command modules are
imported only when their command runs, so `--help` and `--version` stay fast.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence

from aishell import __version__
from aishell.constants import EXIT_ERROR, EXIT_INTERRUPTED
from aishell.errors import AishellError, UsageError
from aishell.harnesses import BY_NAME, HARNESS_NAMES
from aishell.tuples import NamedTuple


class GlobalOptions(NamedTuple):
    name: str | None = None
    detach: bool = False
    unsafe: bool = False
    debug: bool = False
    worktree: str | None = None  # --worktree[=BRANCH]: "" without a value, None when absent
    install: bool = False  # install what the run needs (first run) without a terminal


class Command(NamedTuple):
    """One row of the command table: the command's function is imported only when the
    command runs (`--help` and `--version` stay fast)."""

    target: str  # "module:function" under aishell.commands
    summary: str  # the line in `aishell --help`
    run_options: bool = False  # takes --name/--detach/--unsafe/--worktree; called (cmd, argv, opts)
    usage: str | None = None  # `COMMAND --help` for commands whose arguments pass through


_EXEC_USAGE = (
    "usage: aishell exec COMMAND [ARGS...]\n\n"
    "Run one command in the sandbox (same image, mounts and environment as an agent),\n"
    "without the sensitive-file prompt, pre_start or tmux. Standard input and output\n"
    "are passed through; the exit status is the command's own."
)
_GITLEAKS_USAGE = (
    "usage: aishell gitleaks [GITLEAKS ARGS...]\n\n"
    "Run gitleaks inside the sandbox on the project (needs 'aishell setup --with-gitleaks').\n"
    "Without arguments: 'gitleaks detect --no-git --verbose --source .'.\n"
    "Completed scans are recorded, and agent runs warn when the last scan is older\n"
    "than gitleaks_freshness_threshold days."
)
_SHELL_USAGE = (
    "usage: aishell [--name N] [--detach] [--unsafe] [shell]\n\n"
    "Start an interactive bash in the sandbox."
)

# The one command table (agents are added below it, from harnesses.py).
COMMANDS: dict[str, Command] = {
    "setup": Command(
        "setup:main", "build the sandbox image and install the selected agents (alias: build)"
    ),
    "update": Command("update:main", "refresh the installed agents (re-resolves 'latest')"),
    "shell": Command(
        "sandbox:shell",
        "interactive bash in the sandbox (the default command)",
        run_options=True,
        usage=_SHELL_USAGE,
    ),
    "exec": Command(
        "sandbox:exec_",
        "run one command in the sandbox: no prompt, no tmux, exit status passed through",
        run_options=True,
        usage=_EXEC_USAGE,
    ),
    "run": Command(
        "run:main",
        "hand an agent a task: headless, output streamed, exit status (and --json result)",
        run_options=True,
    ),
    "sessions": Command("sessions:sessions", "this project's recorded sessions (--all, --json)"),
    "logs": Command("sessions:logs", "one recorded session: what it did, its output and network"),
    "attach": Command(
        "attach:main", "reconnect to a running agent (or --shell for a shell in its container)"
    ),
    "ps": Command("ps:main", "list this project's containers (--all: every project's)"),
    "stop": Command("stop:main", "stop running agents or shells (NAME..., or --all)"),
    "volumes": Command("volumes:main", "list or prune the harness volumes"),
    "images": Command("images:main", "list aishell's images, or prune the ones nothing holds"),
    "gitleaks": Command(
        "sandbox:gitleaks",
        "scan the project for secrets with gitleaks, inside the sandbox",
        run_options=True,
        usage=_GITLEAKS_USAGE,
    ),
    "trust": Command("trust:main", "approve the project's aishell config (.aishell/)"),
    "check": Command("check:main", "read-only pre-flight checks"),
    "info": Command("info:main", "project, image stack and installed agents"),
    "config": Command("config:main", "the effective configuration and where each value came from"),
    "completion": Command(
        "aishell.completion:main", "print shell completion for bash, zsh or fish"
    ),
    "verify": Command("verify:main", "start a sandbox and test that its walls hold"),
    "worktrees": Command(
        "worktrees:main",
        "list the repository's git worktrees and their containers, or remove one",
    ),
    "guard": Command(
        "guard:main", "what sandboxes changed in files that run on this machine (diff, ack)"
    ),
}
AGENTS: dict[str, Command] = {
    name: Command(
        "sandbox:agent",
        f"run {BY_NAME[name].label}; arguments pass through untouched",
        run_options=True,
    )
    for name in HARNESS_NAMES
}
ALIASES = {"build": "setup", "a": "attach"}


def _installed_harnesses() -> list[str] | None:
    """Harnesses in the saved setup (read without importing anything heavy)."""
    import json

    from aishell import paths

    try:
        data = json.loads(paths.state_file().read_text())
        return [t for t in data.get("tools", {}) if t in HARNESS_NAMES]
    except (OSError, ValueError, AttributeError, TypeError):
        return None


def help_text() -> str:
    installed = _installed_harnesses()
    shown = installed if installed else list(HARNESS_NAMES)
    lines = [
        "usage: aishell [OPTIONS] [COMMAND] [ARGS...]",
        "",
        "Run AI coding agents in a throw-away container: your project at its real path,",
        "your UID/GID, nothing else of your machine unless you mount it.",
        "",
        "Agents"
        + (
            " (installed)"
            if installed
            else " (the first 'aishell <agent>' installs one, or 'aishell setup --with-<agent>')"
        )
        + ":",
    ]
    for name in shown:
        lines.append(f"  {name:<10} {AGENTS[name].summary}")
    lines += ["", "Commands:"]
    for name, command in COMMANDS.items():
        lines.append(f"  {name:<10} {command.summary}")
    lines += [
        "",
        "Options (before the command):",
        "  --name N      container name suffix (default: the agent's name, or 'shell')",
        "  --detach, -d  start in the background; reconnect with 'aishell attach N'",
        "  --unsafe      skip the sensitive-file prompt",
        "  --install     install a missing agent (or the sandbox image) without asking;",
        "                on a terminal aishell installs it anyway, saying so first",
        "  --worktree[=BRANCH]",
        "                run in the git worktree of BRANCH (created next to the repository",
        "                if needed; default branch aishell/<name>); see 'aishell worktrees'",
        "  --debug       show tracebacks for unexpected errors",
        "  --version     print the version",
        "  -h, --help    this help; 'aishell help COMMAND' or 'aishell COMMAND --help' for more",
        "",
        "Exit status: 0 ok, 1 error, 2 usage error; the command's own status for",
        "agents, shell, exec and attach.",
    ]
    return "\n".join(lines)


def _suggest(word: str, choices: Sequence[str]) -> str:
    import difflib

    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean '{match[0]}'? " if match else ""


def parse_global(argv: Sequence[str]) -> tuple[GlobalOptions, str | None, list[str]]:
    """Split argv into aishell's options, the command word and the rest."""
    name: str | None = None
    worktree: str | None = None
    detach = unsafe = debug = install = False
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            i += 1
            break
        if not arg.startswith("-") or arg == "-":
            break
        if arg == "--name":
            if i + 1 >= len(argv):
                raise UsageError("--name needs a value", hint="e.g. 'aishell --name review claude'")
            name = argv[i + 1]
            i += 2
            continue
        if arg.startswith("--name="):
            name = arg.split("=", 1)[1]
        elif arg in ("--detach", "-d"):
            detach = True
        elif arg == "--unsafe":
            unsafe = True
        elif arg == "--install":
            install = True
        elif arg == "--debug":
            debug = True
        elif arg == "--worktree":
            worktree = ""
        elif arg.startswith("--worktree="):
            worktree = arg.split("=", 1)[1]
            if not worktree:
                raise UsageError(
                    "--worktree= needs a branch name",
                    hint="e.g. --worktree=feature, or --worktree alone for aishell/<name>",
                )
        elif arg in ("-h", "--help"):
            return GlobalOptions(name, detach, unsafe, debug, worktree, install), "help", []
        elif arg in ("-V", "--version"):
            return GlobalOptions(name, detach, unsafe, debug, worktree, install), "version", []
        else:
            raise UsageError(f"unknown option {arg!r}", hint=_unknown_option_hint(arg, argv[i:]))
        i += 1
    command = argv[i] if i < len(argv) else None
    rest = list(argv[i + 1 :]) if command is not None else []
    return GlobalOptions(name, detach, unsafe, debug, worktree, install), command, rest


GLOBAL_OPTIONS = ("--name", "--detach", "--unsafe", "--install", "--worktree", "--debug")
# Options of the commands (after the command word) that people put first by habit.
COMMAND_OPTIONS = {"--json": "ps", "--all": "ps", "--yes": "volumes prune", "--shell": "attach"}


def _unknown_option_hint(arg: str, rest: Sequence[str]) -> str:
    """What to do about an option aishell does not have (given before the command)."""
    option = arg.split("=", 1)[0]
    later = next((word for word in rest[1:] if not word.startswith("-")), None)
    if option in COMMAND_OPTIONS:
        where = f"'aishell {later}'" if later else f"e.g. 'aishell {COMMAND_OPTIONS[option]}'"
        return f"{option} is an option of a command: put it after the command, {where} {option}"
    suggestion = _suggest(option, [*GLOBAL_OPTIONS, "--help", "--version"])
    return (
        f"{suggestion}aishell's own options (before the command) are "
        f"{', '.join(GLOBAL_OPTIONS)}; see 'aishell --help'"
    )


def _run(opts: GlobalOptions, command: str, rest: list[str]) -> int:
    if command == "version":
        print(f"aishell {__version__}")
        return 0
    if command == "help":
        if rest and (rest[0] in COMMANDS or rest[0] in ALIASES):
            return _run(opts, ALIASES.get(rest[0], rest[0]), ["--help"])
        print(help_text())
        return 0
    command = ALIASES.get(command, command)
    entry = COMMANDS.get(command) or AGENTS.get(command)
    runs = entry is not None and entry.run_options
    if not runs and (opts.name is not None or opts.detach or opts.unsafe or opts.install):
        raise UsageError(
            f"--name, --detach, --unsafe and --install apply to agent and shell runs, "
            f"not '{command}'"
        )
    if not runs and opts.worktree is not None:
        raise UsageError(
            f"--worktree applies to agent, shell, exec and gitleaks runs, not '{command}'"
        )
    if entry is None:
        choices = [*COMMANDS, *ALIASES, *AGENTS]
        raise UsageError(
            f"unknown command {command!r}",
            hint=f"{_suggest(command, choices)}see 'aishell --help'",
        )
    if entry.usage is not None and rest[:1] in (["-h"], ["--help"]):
        print(entry.usage)
        return 0
    _before_command()
    function = _target(entry)
    if entry.run_options:
        from aishell.launch.request import RunOptions

        run_options = RunOptions(opts.name, opts.detach, opts.unsafe, opts.worktree, opts.install)
        return int(function(command, rest, run_options))
    return int(function(rest))


def _before_command() -> None:
    """Every command that may touch the engine: SIGTERM/SIGHUP clean up as Ctrl-C does,
    and what an aishell of this home left when it was killed is collected first."""
    from aishell import interrupts, journal

    interrupts.install()
    if journal.has_pending():
        from aishell.engine import leftovers

        leftovers.collect()


def _target(entry: Command) -> Callable[..., int]:
    """The command's function (its module imported now, not before)."""
    import importlib

    module, _, name = entry.target.partition(":")
    if not module.startswith("aishell."):  # (completion sits beside cli: it reads the table)
        module = f"aishell.commands.{module}"
    function: Callable[..., int] = getattr(importlib.import_module(module), name)
    return function


def report_error(exc: AishellError) -> None:
    from aishell import output
    from aishell.errors import Aborted

    if isinstance(exc, Aborted):  # the user said no: not an error to explain
        output.info(exc.message)
        return
    if exc.details:
        output.raw_err(exc.details)
    message = exc.message
    if exc.hint:
        message = f"{message}; {exc.hint}"
    output.error(message)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    debug = bool(os.environ.get("AISHELL_DEBUG"))
    try:
        opts, command, rest = parse_global(args)
        debug = debug or opts.debug
        return _run(opts, command or "shell", rest)
    except AishellError as exc:
        if debug:
            import traceback

            traceback.print_exc()
        report_error(exc)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        from aishell.interrupts import Terminated

        if isinstance(exc, Terminated):
            sys.stderr.write("\nTerminated.\n")
            return exc.exit_code
        sys.stderr.write("\nInterrupted.\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_ERROR
    except (OSError, UnicodeError) as exc:
        # A filesystem or encoding failure no command turned into a message of its own:
        # still one line, with the real cause.
        if debug:
            raise
        from aishell.errors import from_exception

        report_error(from_exception(exc))
        return EXIT_ERROR
    except Exception as exc:
        if debug:
            raise
        sys.stderr.write(
            f"Error: unexpected error: {type(exc).__name__}: {exc}; "
            "run again with --debug (or AISHELL_DEBUG=1) and report it\n"
        )
        return EXIT_ERROR
    finally:
        if "aishell.journal" in sys.modules:
            sys.modules["aishell.journal"].close_current()
