"""Network egress policy, as pure data and functions: `network: {mode, allow, presets}`.

Modes (tightest first): `none` (loopback only), `allowlist` (only listed hosts, through
the egress proxy), `open` (no restriction, the default). This module knows the modes,
the host presets, the host-pattern syntax, how a project's policy merges under the
global one, and what a session needs (`plan`). It does no I/O and never talks to the
engine: the proxy that enforces an allowlist lives in `aishell.engine.proxy`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from functools import cache

from aishell.errors import ConfigError
from aishell.tuples import NamedTuple

MODES = ("none", "allowlist", "open")  # tightest first
RANK = {mode: i for i, mode in enumerate(MODES)}

# Inside an allowlist sandbox (no network but loopback): the entrypoint's relay listens
# on 127.0.0.1:RELAY_PORT and forwards to the session's unix socket, mounted read-only
# at EGRESS_MOUNT; the socket leads only to this home's egress proxy.
RELAY_PORT = 3128
PROXY_URL = f"http://127.0.0.1:{RELAY_PORT}"
EGRESS_MOUNT = "/run/aishell-egress"
NO_PROXY = "localhost,127.0.0.1,::1"

LABEL_NETWORK = "aishell.network"  # on agent containers: the mode
LABEL_SESSION = "aishell.session"

# Hosts each agent needs to work (API, login, telemetry), added automatically in
# allowlist mode for every enabled harness.
HARNESS_PRESETS: dict[str, tuple[str, ...]] = {
    "claude": (
        "api.anthropic.com",
        "console.anthropic.com",
        "statsig.anthropic.com",
        "claude.ai",
        "sentry.io",
    ),
    "opencode": (
        "opencode.ai",
        "*.opencode.ai",
        "models.dev",
        "api.anthropic.com",
        "api.openai.com",
    ),
    "codex": ("api.openai.com", "auth.openai.com", "chatgpt.com"),
    "gemini": (
        "generativelanguage.googleapis.com",
        "cloudcode-pa.googleapis.com",
        "oauth2.googleapis.com",
        "accounts.google.com",
        "play.googleapis.com",
    ),
    "pi": ("api.anthropic.com", "api.openai.com", "generativelanguage.googleapis.com"),
    "openspec": (),
}
# Opt-in presets (`network.presets`).
PRESETS: dict[str, tuple[str, ...]] = {
    "npm": ("registry.npmjs.org",),
    "pypi": ("pypi.org", "files.pythonhosted.org"),
    "github": (
        "github.com",
        "api.github.com",
        "codeload.github.com",
        "objects.githubusercontent.com",
        "raw.githubusercontent.com",
    ),
}

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
# ASCII digits only (`\d` would take Arabic-Indic digits too), any number of them: the range is
# checked on the digits, never by int() of thousands of them (a ValueError).
_HOST = rf"(?P<wild>\*\.)?(?P<host>{_LABEL}(?:\.{_LABEL})*)(?::(?P<port>[0-9]+))?"
_PORT_PROBLEM = "port outside 1-65535"


@cache
def _host_re() -> re.Pattern[str]:
    """Compiled on first use: most launches never parse a host pattern."""
    return re.compile(_HOST)


class NetworkConfig(NamedTuple):
    """`network` as the configuration gives it: mode none < allowlist < open; `allow`
    host patterns and opt-in `presets` (see docs/network.md)."""

    mode: str = "open"
    allow: tuple[str, ...] = ()
    presets: tuple[str, ...] = ()


class HostPattern(NamedTuple):
    host: str  # lower case, without the `*.`
    wildcard: bool  # `*.host`: any subdomain of host (not host itself)
    port: int | None  # None: 80 (HTTP) and 443 (HTTPS)

    def __str__(self) -> str:
        text = ("*." if self.wildcard else "") + self.host
        return f"{text}:{self.port}" if self.port is not None else text

    def covers(self, other: HostPattern) -> bool:
        """Everything `other` admits is admitted by self."""
        if self.port != other.port:
            return False
        if not self.wildcard:
            return not other.wildcard and other.host == self.host
        # `*.d` covers the names under d, the `*.x.d` under it, and `*.d` itself
        return other.host.endswith("." + self.host) or (other.wildcard and other.host == self.host)

    def admits(self, host: str, port: int, *, tls: bool) -> bool:
        """Whether a request to `host:port` matches: plain HTTP (`tls=False`, by URL) or
        a CONNECT tunnel (`tls=True`). Without a port the pattern means HTTP on 80 and
        HTTPS on 443. The proxy's policy helper implements the same rules."""
        want = self.port if self.port is not None else (443 if tls else 80)
        if port != want:
            return False
        name = normalise_host(host)
        if self.wildcard:
            return name.endswith("." + self.host) and len(name) > len(self.host) + 1
        return name == self.host


def normalise_host(host: str) -> str:
    """How the proxy compares names: lower case, without a trailing dot or brackets."""
    name = host.strip().lower()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    return name.removesuffix(".")


def admitted(policy: Policy, host: str, port: int, *, tls: bool) -> bool:
    """Whether the session's policy admits a request (see `HostPattern.admits`)."""
    return policy.mode == "open" or (
        policy.mode == "allowlist" and any(p.admits(host, port, tls=tls) for p in policy.allow)
    )


def sni_accepted(connect_host: str, sni: str | None) -> bool:
    """A CONNECT tunnel is spliced only when the TLS ClientHello names (SNI) the same
    host as the CONNECT request, case-insensitively; no SNI is refused."""
    if not sni or sni == "-":
        return False
    return normalise_host(sni) == normalise_host(connect_host)


def _parse_host(text: str) -> HostPattern | str:
    """The pattern `text` stands for, or why it stands for none. Never raises."""
    m = _host_re().fullmatch(text.strip().lower())
    if m is None:
        return (
            "use a host name ('api.example.com'), '*.domain' for its subdomains, optionally ':port'"
        )
    port = m.group("port")
    number = None
    if port is not None:
        digits = port.lstrip("0")
        number = int(digits) if 0 < len(digits) <= 5 else 0
        if not 1 <= number <= 65535:
            return _PORT_PROBLEM
    host = m.group("host")
    if m.group("wild") and "." not in host:
        # `*.com` would admit a whole top-level domain
        return "'*.' needs a domain with a dot ('*.example.com'), not a top-level domain"
    return HostPattern(host, bool(m.group("wild")), number)


def parse_host(text: str) -> HostPattern | None:
    """The pattern `text` stands for, None when it is not one (see `host_problem`)."""
    found = _parse_host(text)
    return found if isinstance(found, HostPattern) else None


def host_problem(text: str) -> str | None:
    """Why `text` is not a valid allow entry, or None. Names the entry (its first 60
    characters)."""
    found = _parse_host(text)
    if isinstance(found, HostPattern):
        return None
    shown = repr(text) if len(text) <= 60 else repr(text[:60]) + "…"
    return f"invalid host pattern {shown}: {found}"


class Policy(NamedTuple):
    """The effective policy of a session (harness presets included)."""

    mode: str
    allow: tuple[HostPattern, ...] = ()
    presets: tuple[str, ...] = ()  # opt-in presets and harness names whose hosts are in
    extra: tuple[str, ...] = ()  # explicit entries from config

    def describe(self) -> str:
        if self.mode == "open":
            return "open (no restriction)"
        if self.mode == "none":
            return "none (no network, loopback only)"
        return f"allowlist ({len(self.allow)} hosts)"


def effective_policy(net: NetworkConfig, tools: Iterable[str]) -> Policy:
    """The policy a session runs with: the configured one plus, for an allowlist, the
    hosts of every enabled agent."""
    mode = net.mode or "open"
    if mode != "allowlist":
        return Policy(mode)
    hosts: list[str] = []
    names: list[str] = []
    for tool in sorted(tools):
        if HARNESS_PRESETS.get(tool):
            names.append(tool)
            hosts += HARNESS_PRESETS[tool]
    for name in net.presets:
        names.append(name)
        hosts += PRESETS[name]
    hosts += net.allow
    allow: dict[str, HostPattern] = {}
    for text in hosts:
        pattern = parse_host(text)
        if pattern is not None:
            allow.setdefault(str(pattern), pattern)
    return Policy("allowlist", tuple(allow.values()), tuple(names), tuple(net.allow))


def describe_lines(policy: Policy) -> list[str]:
    lines = [f"network: {policy.describe()}"]
    if policy.mode == "allowlist":
        if policy.presets:
            lines.append("  presets: " + ", ".join(policy.presets))
        lines.append("  allow: " + (", ".join(str(p) for p in policy.allow) or "(nothing)"))
    return lines


def policy_json(policy: Policy) -> dict[str, object]:
    return {
        "mode": policy.mode,
        "presets": list(policy.presets),
        "allow": [str(p) for p in policy.allow],
    }


# -- config merge ---------------------------------------------------------------


def merge_allow(global_allow: Sequence[str], project_allow: Sequence[str]) -> tuple[str, ...]:
    """Project entries that some global entry covers (a project can only tighten), in
    the project's order. Linear: the global entries go into two sets, and each project
    entry is looked up once as itself and once per domain it lies under (a name has
    at most 127 labels), instead of being compared with every global entry."""
    exact: set[tuple[str, int | None]] = set()
    wild: set[tuple[str, int | None]] = set()
    for text in global_allow:
        g = parse_host(text)
        if g is not None:
            (wild if g.wildcard else exact).add((g.host, g.port))
    kept = []
    for text in project_allow:
        pattern = parse_host(text)
        if pattern is not None and _covered(pattern, exact, wild):
            kept.append(text)
    return tuple(kept)


def _covered(
    p: HostPattern, exact: set[tuple[str, int | None]], wild: set[tuple[str, int | None]]
) -> bool:
    """Whether an entry of `exact` or `wild` covers `p` (as `HostPattern.covers`)."""
    if (p.host, p.port) in (wild if p.wildcard else exact):
        return True  # the same host (or the same `*.domain`)
    domain = p.host
    while "." in domain:
        domain = domain.split(".", 1)[1]
        if (domain, p.port) in wild:
            return True
    return False


def merge(
    global_net: NetworkConfig | None,
    project_mode: str | None,
    project_allow: tuple[str, ...] | None,
    project_presets: tuple[str, ...] | None,
) -> NetworkConfig:
    """The project may only tighten: mode none < allowlist < open. When both are
    allowlists, the project's entries are kept only where the global allows them
    (presets named by both; hosts covered by a global host or preset host). A project
    that names no hosts inherits the global allowlist. (`extends: none` does not lift
    the global network policy: callers pass the global part regardless.)"""
    g = global_net or NetworkConfig()
    g_mode = g.mode or "open"
    if project_mode is None and project_allow is None and project_presets is None:
        return NetworkConfig(g_mode, g.allow, g.presets)
    p_mode = project_mode or g_mode
    mode = min(g_mode, p_mode, key=RANK.__getitem__)
    names_project = project_allow is not None or project_presets is not None
    if g_mode != "allowlist" or not names_project:
        if g_mode == "allowlist":
            return NetworkConfig(mode, g.allow, g.presets)
        return NetworkConfig(mode, project_allow or (), project_presets or ())
    ceiling = [*g.allow, *(h for name in g.presets for h in PRESETS[name])]
    presets = tuple(p for p in project_presets or () if p in g.presets)
    allow = merge_allow(ceiling, project_allow or ())
    return NetworkConfig(mode, allow, presets)


# -- what a session needs -------------------------------------------------------


class Plan(NamedTuple):
    """What a session needs: the agent's extra run settings, and (allowlist) the
    session to register with this home's egress proxy before it starts."""

    policy: Policy
    session: str | None = None
    network: str | None = None  # the agent's --network ("none" for none and allowlist)
    dns: str | None = None  # (unused since the agent has no network at all)
    env: tuple[tuple[str, str], ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    socket_dir: str | None = None  # allowlist: host directory mounted at EGRESS_MOUNT

    @property
    def binds(self) -> tuple[tuple[str, str], ...]:
        """(host directory, target) mounted read-only into the sandbox."""
        return ((self.socket_dir, EGRESS_MOUNT),) if self.socket_dir else ()


# docker_args that would undo a restricted policy.
_NETWORK_OPTIONS = ("--network", "--net", "--dns", "--add-host", "--sysctl")


def plan(
    net: NetworkConfig,
    tools: Iterable[str],
    docker_args: Sequence[str] = (),
    *,
    session: str | None = None,
    sockets_root: str | None = None,
) -> Plan:
    """The session's plan. `session` names an allowlist session (a fresh random id
    when not given); its socket directory is `<sockets_root>/<session>`."""
    policy = effective_policy(net, tools)
    if policy.mode == "open":
        return Plan(policy)
    for arg in docker_args:
        name = arg.split("=", 1)[0]
        if name in _NETWORK_OPTIONS:
            raise ConfigError(
                f"docker_args: {name} would undo `network: {{mode: {policy.mode}}}`",
                hint="remove it from docker_args, or use network.mode: open",
            )
    labels: tuple[tuple[str, str], ...] = ((LABEL_NETWORK, policy.mode),)
    if policy.mode == "none":
        return Plan(policy, network="none", labels=labels)
    if session is None:
        session = os.urandom(5).hex()
    env = (
        ("http_proxy", PROXY_URL),
        ("https_proxy", PROXY_URL),
        ("HTTP_PROXY", PROXY_URL),
        ("HTTPS_PROXY", PROXY_URL),
        ("no_proxy", NO_PROXY),
        ("NO_PROXY", NO_PROXY),
        ("NODE_USE_ENV_PROXY", "1"),
        ("AISHELL_NETWORK", "allowlist"),
        ("AISHELL_EGRESS", EGRESS_MOUNT),
    )
    return Plan(
        policy,
        session=session,
        network="none",
        env=env,
        labels=(*labels, (LABEL_SESSION, session)),
        socket_dir=f"{sockets_root}/{session}" if sockets_root else None,
    )


def policy_file(policy: Policy, *, session: str, project: str, container: str) -> str:
    """The session's policy as the egress proxy reads it (written by aishell on the host,
    in a directory the proxy has mounted and the sandbox has not). The proxy uses only
    the `allow` lines."""
    lines = [
        "# aishell egress policy (written by aishell; the sandbox cannot see or edit it)",
        f"session {session}",
        f"project {project}",
        f"container {container}",
        *(f"allow {p}" for p in policy.allow),
    ]
    return "\n".join(lines) + "\n"
