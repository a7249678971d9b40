"""The agents and tools aishell can install, as data.

Each entry says which npm package provides it, which host paths hold its
configuration (mounted at the same path so logins persist), which API-key
variables it reads (passed by name only), and what it needs at run time.
"""

from __future__ import annotations

from typing import Final, NamedTuple


class Tool(NamedTuple):
    name: str
    label: str
    package: str
    command: str
    harness: bool  # runnable as `aishell <name>`
    config_dirs: tuple[str, ...] = ()  # relative to home, created as directories
    config_files: tuple[str, ...] = ()  # relative to home, created containing {}
    api_keys: tuple[str, ...] = ()
    fixed_args: tuple[str, ...] = ()  # always passed first
    env: tuple[tuple[str, str], ...] = ()  # set in every container when enabled
    # Full autonomy inside the sandbox (the container is the boundary): the agent's own
    # approval/sandbox bypass, passed first unless AISHELL_SKIP_PERMISSIONS=false...
    autonomy_args: tuple[str, ...] = ()
    # ...and not before these subcommands, which take no such option (`pi auth ...`).
    plain_subcommands: tuple[str, ...] = ()
    # With AISHELL_SKIP_PERMISSIONS=false instead: approvals back on, but what cannot
    # work inside a container stays off (Codex's own bubblewrap sandbox).
    opt_out_args: tuple[str, ...] = ()


TOOLS: Final[tuple[Tool, ...]] = (
    Tool(
        name="claude",
        label="Claude Code",
        package="@anthropic-ai/claude-code",
        command="claude",
        harness=True,
        config_dirs=(".claude",),
        config_files=(".claude.json",),
        api_keys=("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN"),
        env=(("DISABLE_AUTOUPDATER", "1"), ("IS_SANDBOX", "1")),
        autonomy_args=("--dangerously-skip-permissions",),
    ),
    Tool(
        name="opencode",
        label="OpenCode",
        package="opencode-ai",
        command="opencode",
        harness=True,
        # (its state, e.g. the last model and prompt history, lives in ~/.local/state)
        config_dirs=(".config/opencode", ".local/share/opencode", ".local/state/opencode"),
        api_keys=(
            "OPENAI_API_KEY",
            "ANTHROPIC_API_KEY",
            "GROQ_API_KEY",
            "OPENCODE_API_KEY",
            "AZURE_OPENAI_API_KEY",
            "AZURE_OPENAI_ENDPOINT",
        ),
        env=(("OPENCODE_DISABLE_AUTOUPDATE", "1"),),
        autonomy_args=("--auto",),
    ),
    Tool(
        name="codex",
        label="Codex CLI",
        package="@openai/codex",
        command="codex",
        harness=True,
        config_dirs=(".codex",),
        api_keys=("OPENAI_API_KEY", "CODEX_API_KEY"),
        fixed_args=("-c", "check_for_update_on_startup=false"),
        # Also turns off Codex's own sandbox (bubblewrap), which cannot work inside the
        # container ("No permissions to create a new namespace"); opted out, only that.
        autonomy_args=("--dangerously-bypass-approvals-and-sandbox",),
        opt_out_args=("--sandbox", "danger-full-access"),
    ),
    Tool(
        name="gemini",
        label="Gemini CLI",
        package="@google/gemini-cli",
        command="gemini",
        harness=True,
        config_dirs=(".gemini",),
        api_keys=(
            "GEMINI_API_KEY",
            "GOOGLE_API_KEY",
            "GOOGLE_CLOUD_PROJECT",
            "GOOGLE_CLOUD_LOCATION",
            "GOOGLE_GENAI_USE_VERTEXAI",
        ),
        # NO_BROWSER: "Login with Google" prints the URL and takes the pasted code (the
        # browser's callback to a port inside the container could not arrive).
        env=(("NO_BROWSER", "true"),),
        autonomy_args=("--yolo", "--skip-trust"),
    ),
    Tool(
        name="pi",
        label="Pi coding agent",
        # The package moved from @mariozechner/ to @earendil-works/ (the old
        # name's last release is 0.73, May 2026).
        package="@earendil-works/pi-coding-agent",
        command="pi",
        harness=True,
        config_dirs=(".pi",),
        api_keys=("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY", "PI_CODING_AGENT_DIR"),
        env=(("PI_SKIP_VERSION_CHECK", "1"),),
        # Pi asks no approvals for tools; --approve trusts the project's own .pi files.
        autonomy_args=("--approve",),
        plain_subcommands=(
            "install",
            "remove",
            "uninstall",
            "update",
            "list",
            "config",
            "auth",
            "mcp",
        ),
    ),
    Tool(
        name="openspec",
        label="OpenSpec",
        package="@fission-ai/openspec",
        command="openspec",
        harness=False,
        config_dirs=(".config/openspec",),
        env=(("OPENSPEC_TELEMETRY", "0"),),
    ),
)

BY_NAME: Final[dict[str, Tool]] = {t.name: t for t in TOOLS}
HARNESS_NAMES: Final[tuple[str, ...]] = tuple(t.name for t in TOOLS if t.harness)
TOOL_NAMES: Final[tuple[str, ...]] = tuple(t.name for t in TOOLS)
