"""The agents and tools aishell can install, as data.

Each entry says which npm package provides it, where its configuration lives
(relative to the home; see docs/agents.md), which API-key variables it reads
(passed by name only), and what it needs at run time.

Agent config is **per project**: each project gets its own copy of the agent's
config paths (`config_dirs`, `config_files`), kept in
`~/.aishell/projects/<key>/home/` and mounted at the usual path inside the
sandbox, so hooks, plugins, MCP servers and commands an agent writes in one
project never run in another one, nor on the host (the host's own config is not
mounted at all). Only the agent's **login files** (`logins`) are shared between
projects, through one store per agent (`~/.aishell/agents/<agent>/store/`), when
their format holds nothing but tokens (`share_logins`); each login file is either
bind-mounted on its own (`via="bind"`: for agents that replace the file by
renaming, which a bind mount turns into an in-place write), or a symlink into the
store mounted at `LOGIN_STORE_MOUNT/<agent>` (`via="link"`: for agents that write
the file in place, which works before the first login too).
"""

from __future__ import annotations

from typing import Final, Literal

from aishell.tuples import NamedTuple

#: Where an agent's shared login store is mounted inside the sandbox (link logins).
LOGIN_STORE_MOUNT: Final = "/run/aishell/logins"


class Login(NamedTuple):
    """A file holding an agent's login (tokens, API keys), relative to the home."""

    rel: str
    via: Literal["bind", "link"]
    # bind: the store needs the file before the first login; what an empty login is
    seed: str | None = None


class Tool(NamedTuple):
    name: str
    label: str
    package: str
    command: str
    harness: bool  # runnable as `aishell <name>`
    config_dirs: tuple[str, ...] = ()  # relative to home, per project: directories
    config_files: tuple[str, ...] = ()  # relative to home, per project: files, created as {}
    api_keys: tuple[str, ...] = ()
    fixed_args: tuple[str, ...] = ()  # always passed first
    env: tuple[tuple[str, str], ...] = ()  # set in every container when enabled
    logins: tuple[Login, ...] = ()  # inside config_dirs; shared or per project
    # Shared between projects by default: False when the login file's format can
    # carry something that runs (then it is per project unless `share_logins` says so).
    share_logins: bool = True
    login_risk: str = ""  # why a shared login file could run something (docs, warnings)
    # config_files: top-level JSON keys copied from the host's own file into a new
    # project's copy (what makes the agent skip its first-run questions; no commands)
    seed_keys: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # Full autonomy inside the sandbox (the container is the boundary): the agent's own
    # approval/sandbox bypass, passed first unless AISHELL_SKIP_PERMISSIONS=false...
    autonomy_args: tuple[str, ...] = ()
    # ...and not before these subcommands, which take no such option (`pi auth ...`).
    plain_subcommands: tuple[str, ...] = ()
    # With AISHELL_SKIP_PERMISSIONS=false instead: approvals back on, but what cannot
    # work inside a container stays off (Codex's own bubblewrap sandbox).
    opt_out_args: tuple[str, ...] = ()
    # Its headless mode (`aishell run`): what comes before the autonomy flags (a
    # subcommand), and after them, where the element "{prompt}" (or a "{prompt}" inside
    # an element) is replaced by the prompt, passed as one argument, never to a shell.
    headless_command: tuple[str, ...] = ()
    headless_prompt: tuple[str, ...] = ("{prompt}",)


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
        # Written to a temporary file and renamed; on EBUSY (a bind-mounted file)
        # Claude Code copies it in place. `{}` reads as "not logged in".
        logins=(Login(".claude/.credentials.json", "bind", "{}\n"),),
        seed_keys=(
            (
                ".claude.json",
                (
                    "hasCompletedOnboarding",
                    "lastOnboardingVersion",
                    "theme",
                    "oauthAccount",
                    "userID",
                    "primaryApiKey",
                    "customApiKeyResponses",
                    "bypassPermissionsModeAccepted",
                ),
            ),
        ),
        autonomy_args=("--dangerously-skip-permissions",),
        headless_prompt=("-p", "--", "{prompt}"),  # --print; `--` ends the options
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
        logins=(Login(".local/share/opencode/auth.json", "link"),),
        share_logins=False,
        login_risk="an auth.json entry of type 'wellknown' makes OpenCode load its "
        "configuration (plugins, MCP servers) from the URL the entry names",
        autonomy_args=("--auto",),
        headless_command=("run",),
        headless_prompt=("--", "{prompt}"),
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
        logins=(Login(".codex/auth.json", "link"),),
        # Also turns off Codex's own sandbox (bubblewrap), which cannot work inside the
        # container ("No permissions to create a new namespace"); opted out, only that.
        autonomy_args=("--dangerously-bypass-approvals-and-sandbox",),
        opt_out_args=("--sandbox", "danger-full-access"),
        # `codex exec` refuses a directory that is not a git repository without it
        headless_command=("exec",),
        headless_prompt=("--skip-git-repo-check", "--", "{prompt}"),
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
        logins=(
            Login(".gemini/oauth_creds.json", "link"),
            Login(".gemini/google_accounts.json", "link"),
        ),
        # NO_BROWSER: "Login with Google" prints the URL and takes the pasted code (the
        # browser's callback to a port inside the container could not arrive).
        env=(("NO_BROWSER", "true"),),
        autonomy_args=("--yolo", "--skip-trust"),
        headless_prompt=("--prompt={prompt}",),  # (one token: a prompt can start with -)
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
        # (not PI_CODING_AGENT_DIR: the host's value would move Pi's config off the
        # project's copy, to a path the sandbox does not keep)
        api_keys=("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY"),
        env=(("PI_SKIP_VERSION_CHECK", "1"),),
        logins=(Login(".pi/agent/auth.json", "link"),),
        share_logins=False,
        login_risk="an auth.json API key that starts with '!' is run as a shell command",
        # Pi asks no approvals for tools; --approve trusts the project's own .pi files.
        autonomy_args=("--approve",),
        headless_prompt=("-p", "{prompt}"),
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
