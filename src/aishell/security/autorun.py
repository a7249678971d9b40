"""Data: the files in a project that programs on the host run or obey without being
asked to, so an agent that changes them reaches outside its sandbox later. The guard
(`security/guard.py`) compares them before and after every session.

Each entry is a project-relative path, matched case-insensitively (the project may
later be opened on a case-insensitive filesystem, where `.VSCode/Tasks.json` is the
same file): a file, a directory (ending in `/`: every file below it, a few levels
deep), or a name pattern in the project's top directory (`*.code-workspace`). The
most specific entry that matches a file says why it matters. Add a row to watch more.
"""

from __future__ import annotations

import fnmatch
from typing import Final

from aishell.tuples import NamedTuple


class Watched(NamedTuple):
    path: str  # lowercase; "dir/" for a directory; a fnmatch pattern for top-level names
    why: str


WATCHED: Final[tuple[Watched, ...]] = (
    # editors
    Watched(
        ".vscode/tasks.json",
        'VS Code runs tasks with "runOn": "folderOpen" when you open the folder',
    ),
    Watched(
        ".vscode/settings.json",
        "VS Code settings name programs it runs (terminal, linters, formatters, git)",
    ),
    Watched(
        ".vscode/launch.json", "VS Code debug configurations run programs and pre-launch tasks"
    ),
    Watched(".vscode/extensions.json", "VS Code offers to install the extensions it recommends"),
    Watched(".vscode/", "VS Code reads its workspace configuration from here"),
    Watched("*.code-workspace", "a VS Code workspace: settings, tasks and launch configurations"),
    Watched(".idea/", "JetBrains IDEs run configurations, startup tasks and tools from here"),
    Watched(".zed/", "Zed runs tasks and language servers configured here"),
    Watched(
        ".devcontainer.json", "initializeCommand runs on your machine when a dev container opens"
    ),
    Watched(".devcontainer/", "initializeCommand runs on your machine when a dev container opens"),
    # shells and tool managers
    Watched(".envrc", "direnv runs it in your shell when you enter the directory (once allowed)"),
    Watched(".mise.toml", "mise runs its hooks and env scripts when you enter the directory"),
    Watched("mise.toml", "mise runs its hooks and env scripts when you enter the directory"),
    # git, as committed files
    Watched(
        ".pre-commit-config.yaml",
        "pre-commit runs its hooks, including local commands, on git commit",
    ),
    Watched(".husky/", "husky's git hooks run on git commit, push and checkout"),
    Watched(".gitmodules", "submodule URLs and paths git fetches and checks out"),
    Watched(
        ".gitattributes",
        "chooses which filter and diff programs of your git config run on which files",
    ),
    # package managers
    Watched(
        ".npmrc", "npm settings for every npm command here (node-options, script-shell, registry)"
    ),
    Watched(".yarnrc.yml", "yarnPath: yarn runs that file for every yarn command here"),
    Watched(".yarnrc", "yarn settings for every yarn command here"),
    Watched(".pnpmfile.cjs", "pnpm runs it on every install here"),
    Watched("bunfig.toml", "bun runs its preload scripts for every bun command here"),
    # coding agents used outside the sandbox
    Watched(
        ".claude/settings.json",
        "Claude Code hooks: commands it runs on your machine when you use it here",
    ),
    Watched(
        ".claude/settings.local.json",
        "Claude Code hooks: commands it runs on your machine when you use it here",
    ),
    Watched(".claude/", "Claude Code commands, agents and hooks for this project"),
    Watched(".mcp.json", "MCP servers that Claude Code and other agents start on your machine"),
    Watched(".cursor/", "Cursor rules and MCP servers for this project"),
    Watched(".gemini/", "Gemini CLI settings and MCP servers for this project"),
    Watched(".codex/", "Codex CLI configuration for this project"),
    Watched(".opencode/", "OpenCode plugins and commands it runs for this project"),
    Watched("opencode.json", "OpenCode configuration: MCP servers and commands it starts"),
    Watched("opencode.jsonc", "OpenCode configuration: MCP servers and commands it starts"),
    Watched(".pi/", "Pi configuration for this project"),
)

MAX_DIR_DEPTH: Final = 4  # levels below a watched directory
MAX_DIR_FILES: Final = 500  # files recorded per watched directory


def top_names() -> tuple[frozenset[str], tuple[str, ...]]:
    """(first path segments to look for in the project's top directory, top-level name
    patterns)."""
    names = {w.path.split("/", 1)[0] for w in WATCHED if not _is_pattern(w.path)}
    patterns = tuple(w.path for w in WATCHED if _is_pattern(w.path))
    return frozenset(names), patterns


def _is_pattern(path: str) -> bool:
    return any(ch in path for ch in "*?[")


def why(rel: str) -> str | None:
    """Why the file at project-relative `rel` matters (None: it is not watched): the
    most specific entry wins (an exact path over a directory over a pattern)."""
    low = rel.lower()
    best: tuple[int, str] | None = None
    for w in WATCHED:
        if w.path.endswith("/"):
            score = len(w.path) if low.startswith(w.path) else -1
        elif _is_pattern(w.path):
            score = 0 if "/" not in low and fnmatch.fnmatchcase(low, w.path) else -1
        else:
            score = 10_000 if low == w.path else -1
        if score >= 0 and (best is None or score > best[0]):
            best = (score, w.why)
    return best[1] if best else None
