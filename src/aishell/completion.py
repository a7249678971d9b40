"""`aishell completion bash|zsh|fish`: shell completion scripts, made from the command
table (commands, agents, options), plus `aishell completion --sessions`, which the
scripts call to complete the names of this project's running containers.

Install (one line each, see the README):

    bash  aishell completion bash > ~/.local/share/bash-completion/completions/aishell
    zsh   echo 'eval "$(aishell completion zsh)"' >> ~/.zshrc     (after compinit)
    fish  aishell completion fish > ~/.config/fish/completions/aishell.fish

It sits beside `cli` (it reads the command table); `cli` reaches it by name only.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

from aishell import cli, output
from aishell.commands._args import parser
from aishell.errors import UsageError
from aishell.harnesses import TOOLS

if TYPE_CHECKING:
    from collections.abc import Sequence

SHELLS = ("bash", "zsh", "fish")
GLOBAL_FLAGS = (
    "--name", "--detach", "--unsafe", "--install", "--worktree", "--debug", "--help", "--version",
)  # fmt: skip

# The words each command takes (beyond files); SESSIONS: running container names.
SESSIONS = "@sessions"
ARGUMENTS: dict[str, tuple[str, ...]] = {
    "setup": (*(f"--with-{t.name}" for t in TOOLS), "--with-gitleaks", "--force", "--verbose"),
    "update": ("--force", "--verbose"),
    "attach": (SESSIONS, "--shell"),
    "stop": (SESSIONS, "--all", "--everywhere"),
    "ps": ("--all", "--json"),
    "volumes": ("list", "prune", "--yes", "--json"),
    "images": ("list", "prune", "--yes", "--json"),
    "worktrees": ("list", "remove", "--force", "--json"),
    "check": ("--json",),
    "info": ("--json",),
    "config": ("--json",),
    "verify": ("--json",),
    "run": ("--json", "--timeout", *(t.name for t in TOOLS if t.harness)),
    "sessions": ("--all", "--json"),
    "logs": ("--json",),
    "completion": SHELLS,
}


def commands() -> list[str]:
    return [*cli.COMMANDS, *cli.AGENTS, *cli.ALIASES, "help"]


def arguments(command: str) -> tuple[str, ...]:
    command = cli.ALIASES.get(command, command)
    if command == "help":
        return tuple(cli.COMMANDS)
    return ARGUMENTS.get(command, ())


def _words(items: Sequence[str]) -> str:
    return " ".join(shlex.quote(w) for w in items if w != SESSIONS)


def _cases(pattern: str, body: str) -> list[str]:
    """One `case` arm per command with arguments, rendered by `body(words, sessions)`."""
    lines = []
    names = [*ARGUMENTS, "help", *cli.ALIASES]
    for name in names:
        words = arguments(name)
        if not words:
            continue
        lines.append(pattern.format(name=name, body=body.format(
            words=_words(words), sessions="1" if SESSIONS in words else ""
        )))  # fmt: skip
    return lines


def bash_script() -> str:
    arms = _cases("        {name}) {body} ;;", 'words="{words}"; sessions={sessions}')
    return "\n".join(
        [
            "# aishell completion for bash: aishell completion bash > "
            "~/.local/share/bash-completion/completions/aishell",
            "_aishell() {",
            '    local cur="${COMP_WORDS[COMP_CWORD]}" cmd="" i words="" sessions=""',
            "    for ((i = 1; i < COMP_CWORD; i++)); do",
            '        case "${COMP_WORDS[i]}" in',
            "            --name) ((i++)) ;;",
            "            -*) ;;",
            '            *) cmd="${COMP_WORDS[i]}"; break ;;',
            "        esac",
            "    done",
            '    if [ -z "$cmd" ]; then',
            f'        COMPREPLY=($(compgen -W "{_words(commands())} {_words(GLOBAL_FLAGS)}"'
            ' -- "$cur"))',
            "        return",
            "    fi",
            '    case "$cmd" in',
            *arms,
            "        *) return ;;  # an agent's or exec's own arguments: files",
            "    esac",
            '    if [ -n "$sessions" ]; then',
            '        words="$words $(aishell completion --sessions 2>/dev/null)"',
            "    fi",
            '    COMPREPLY=($(compgen -W "$words" -- "$cur"))',
            "}",
            "complete -o default -F _aishell aishell",
            "",
        ]
    )


def zsh_script() -> str:
    arms = _cases("        {name}) {body} ;;", "words=({words}); sessions={sessions}")
    return "\n".join(
        [
            "#compdef aishell",
            '# aishell completion for zsh: eval "$(aishell completion zsh)" in ~/.zshrc,'
            " after compinit",
            "_aishell() {",
            "    local cmd='' i sessions=''",
            "    local -a words_",
            "    for ((i = 2; i < CURRENT; i++)); do",
            '        case "${words[i]}" in',
            "            --name) ((i++)) ;;",
            "            -*) ;;",
            '            *) cmd="${words[i]}"; break ;;',
            "        esac",
            "    done",
            '    if [[ -z "$cmd" ]]; then',
            f"        compadd -- {_words(commands())} {_words(GLOBAL_FLAGS)}",
            "        return",
            "    fi",
            "    local -a words_",
            '    case "$cmd" in',
            *[arm.replace("words=(", "words_=(") for arm in arms],
            "        *) _files; return ;;  # an agent's or exec's own arguments",
            "    esac",
            '    if [[ -n "$sessions" ]]; then',
            '        words_+=(${(f)"$(aishell completion --sessions 2>/dev/null)"})',
            "    fi",
            '    compadd -- "${words_[@]}"',
            "}",
            "compdef _aishell aishell",
            "",
        ]
    )


def fish_script() -> str:
    lines = [
        "# aishell completion for fish: aishell completion fish > "
        "~/.config/fish/completions/aishell.fish",
        "complete -c aishell -e",
        f"complete -c aishell -n __fish_use_subcommand -f -a {shlex.quote(' '.join(commands()))}",
    ]
    for flag in GLOBAL_FLAGS:
        lines.append(f"complete -c aishell -n __fish_use_subcommand -l {flag[2:]}")
    for name in [*ARGUMENTS, "help", *cli.ALIASES]:
        words = arguments(name)
        if not words:
            continue
        plain = " ".join(w for w in words if w != SESSIONS)
        cond = f"'__fish_seen_subcommand_from {name}'"
        lines.append(f"complete -c aishell -n {cond} -f -a {shlex.quote(plain)}")
        if SESSIONS in words:
            lines.append(
                f"complete -c aishell -n {cond} -f -a '(aishell completion --sessions 2>/dev/null)'"
            )
    return "\n".join([*lines, ""])


SCRIPTS = {"bash": bash_script, "zsh": zsh_script, "fish": fish_script}


def session_names() -> list[str]:
    """This project's running containers, by aishell name (for the scripts)."""
    from aishell import report_json
    from aishell.constants import LABEL_NAME, LABEL_PROJECT_HASH
    from aishell.engine import choice

    project = report_json.current_project()
    result = choice.get_engine().capture(
        "ps", "--filter", f"label={LABEL_PROJECT_HASH}={project.hash}",
        "--format", '{{.Label "' + LABEL_NAME + '"}}',
    )  # fmt: skip
    return sorted({n.strip() for n in result.stdout.split() if n.strip()}) if result.ok else []


def main(argv: Sequence[str]) -> int:
    p = parser(
        "aishell completion",
        "Print the completion script for your shell (commands, agents, options, running "
        "sessions). Install: bash: aishell completion bash > "
        "~/.local/share/bash-completion/completions/aishell; zsh: add "
        "'eval \"$(aishell completion zsh)\"' to ~/.zshrc after compinit; fish: aishell "
        "completion fish > ~/.config/fish/completions/aishell.fish",
    )
    p.add_argument("shell", nargs="?", choices=SHELLS, help="bash, zsh or fish")
    p.add_argument("--sessions", action="store_true", help="(for the scripts) running names")
    ns = p.parse_args(list(argv))
    if ns.sessions:
        for name in session_names():
            output.out(name)
        return 0
    if ns.shell is None:
        raise UsageError("name your shell", hint="'aishell completion bash' (or zsh, fish)")
    output.out(SCRIPTS[ns.shell]().rstrip("\n"))
    return 0
