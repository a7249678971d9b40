"""Network egress policy: `network: {mode: open | none | allowlist, allow, presets}`.

Imported only when a config sets `network` to something other than `open`, or by
the commands that report the policy (`check`, `info`, `ps`): `open`, the default,
costs the launch path nothing.

Allowlist mode, per session:
- an internal engine network `aishell-net-<session>` (no route out);
- a proxy container `aishell-proxy-<session>` (Debian's tinyproxy, image
  `aishell:proxy` built from the configured base image) on the default bridge for
  egress and on the internal network under the alias `aishell-proxy`; it admits
  only the allowlisted hosts (HTTP by URL, HTTPS by `CONNECT host:port`) and logs
  every decision to `~/.aishell/logs/network/<session>/decisions.log`, which is
  mounted into the proxy only;
- the agent container on the internal network only, with the proxy variables set,
  a DNS server that answers nothing outside (`--dns 192.0.2.1`, unroutable there)
  and IPv6 disabled. Without the proxy there is no route: it fails closed.

The proxy and network are removed when a foreground session ends; those of detached
sessions are collected at the next allowlist launch or `aishell ps` once their agent
container is gone.
"""

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

from aishell.errors import ConfigError

MODES = ("none", "allowlist", "open")  # tightest first
RANK = {mode: i for i, mode in enumerate(MODES)}

PROXY_IMAGE = "aishell:proxy"
PROXY_ALIAS = "aishell-proxy"
PROXY_PORT = 8888
PROXY_URL = f"http://{PROXY_ALIAS}:{PROXY_PORT}"
NO_PROXY = "localhost,127.0.0.1,::1"
# A DNS server the agent's engine-embedded resolver forwards outside names to: an
# address reserved for documentation (TEST-NET-1), unroutable on the internal network,
# so every outside name fails to resolve (no DNS tunnel) while the proxy's name,
# answered by the engine itself, still resolves.
BLACKHOLE_DNS = "192.0.2.1"

LABEL_NETWORK = "aishell.network"  # on agent containers: the mode
LABEL_SESSION = "aishell.session"
LABEL_CREATED = "aishell.created"
LABEL_PROXY_HASH = "aishell.proxy.hash"
KIND_PROXY = "proxy"
KIND_EGRESS_NET = "egress"
ORPHAN_GRACE_SECONDS = 120
# For tests only: comma-separated engine networks the proxy joins as well (where the
# test servers `allowed.test` / `denied.test` live).
EXTRA_NETWORKS_ENV = "AISHELL_PROXY_EXTRA_NETWORKS"

PROXY_TEMPLATE_FILES = ("Dockerfile", "tinyproxy.conf", "denied.html", "start.sh")

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
_HOST_RE = re.compile(rf"^(?P<wild>\*\.)?(?P<host>{_LABEL}(?:\.{_LABEL})*)(?::(?P<port>\d+))?$")


class HostPattern(NamedTuple):
    host: str  # lower case, without the `*.`
    wildcard: bool  # `*.host`: any subdomain of host (not host itself)
    port: int | None  # None: 80 (HTTP) and 443 (HTTPS)

    def __str__(self) -> str:
        text = ("*." if self.wildcard else "") + self.host
        return f"{text}:{self.port}" if self.port is not None else text

    def covers(self, other: "HostPattern") -> bool:
        """Everything `other` admits is admitted by self."""
        if self.port != other.port:
            return False
        if not self.wildcard:
            return not other.wildcard and other.host == self.host
        return other.host.endswith("." + self.host)

    def filter_regexes(self) -> list[str]:
        """tinyproxy filter lines (`FilterURLs On`, extended regexes, case-insensitive):
        HTTP requests are matched on their URL, HTTPS on `CONNECT host:port`."""
        host = (r"[^/:@]+\." if self.wildcard else "") + re.escape(self.host)
        host = host.replace(r"\-", "-")
        if self.port is None:
            return [rf"^http://{host}(:80)?(/|$)", rf"^{host}:443$"]
        return [rf"^http://{host}:{self.port}(/|$)", rf"^{host}:{self.port}$"]


def parse_host(text: str) -> HostPattern | None:
    m = _HOST_RE.match(text.strip().lower())
    if m is None:
        return None
    port = m.group("port")
    if port is not None and not 1 <= int(port) <= 65535:
        return None
    host = m.group("host")
    if m.group("wild") and "." not in host:
        return None  # `*.com` would admit a whole top-level domain
    return HostPattern(host, bool(m.group("wild")), int(port) if port is not None else None)


def host_problem(text: str) -> str | None:
    """Why `text` is not a valid allow entry, or None."""
    if parse_host(text) is not None:
        return None
    return (
        f"invalid host pattern {text!r}: use a host name ('api.example.com'), "
        "'*.domain' for its subdomains, optionally ':port'"
    )


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


def effective_policy(config: object, tools: Iterable[str]) -> Policy:
    net = getattr(config, "network", None)
    mode = getattr(net, "mode", "open") or "open"
    if mode != "allowlist":
        return Policy(mode)
    presets = tuple(getattr(net, "presets", ()))
    entries = tuple(getattr(net, "allow", ()))
    hosts: list[str] = []
    names: list[str] = []
    for tool in sorted(tools):
        if HARNESS_PRESETS.get(tool):
            names.append(tool)
            hosts += HARNESS_PRESETS[tool]
    for name in presets:
        names.append(name)
        hosts += PRESETS[name]
    hosts += entries
    allow: dict[str, HostPattern] = {}
    for text in hosts:
        pattern = parse_host(text)
        if pattern is not None:
            allow.setdefault(str(pattern), pattern)
    return Policy("allowlist", tuple(allow.values()), tuple(names), tuple(entries))


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
    """Project entries that some global entry covers (a project can only tighten)."""
    ceiling = [p for p in (parse_host(t) for t in global_allow) if p is not None]
    kept = []
    for text in project_allow:
        pattern = parse_host(text)
        if pattern is not None and any(g.covers(pattern) for g in ceiling):
            kept.append(text)
    return tuple(kept)


# -- run arguments --------------------------------------------------------------


class Plan(NamedTuple):
    """What a session needs: the agent's extra run settings, and (allowlist) the
    proxy and internal network to create before it starts."""

    policy: Policy
    session: str | None = None
    network: str | None = None  # the agent's --network
    dns: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    labels: tuple[tuple[str, str], ...] = ()

    @property
    def proxy_name(self) -> str:
        return f"aishell-proxy-{self.session}"


def plan(config: object, tools: Iterable[str], docker_args: Sequence[str] = ()) -> Plan:
    policy = effective_policy(config, tools)
    if policy.mode == "open":
        return Plan(policy)
    for arg in docker_args:
        name = arg.split("=", 1)[0]
        if name in ("--network", "--net", "--dns", "--add-host", "--sysctl"):
            raise ConfigError(
                f"docker_args: {name} would undo `network: {{mode: {policy.mode}}}`",
                hint="remove it from docker_args, or use network.mode: open",
            )
    labels: tuple[tuple[str, str], ...] = ((LABEL_NETWORK, policy.mode),)
    if policy.mode == "none":
        return Plan(policy, network="none", labels=labels)
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
    )
    return Plan(
        policy,
        session=session,
        network=f"aishell-net-{session}",
        dns=BLACKHOLE_DNS,
        env=env,
        labels=(*labels, (LABEL_SESSION, session)),
    )


def proxy_settings(policy: Policy) -> dict[str, str]:
    regexes = [r for p in policy.allow for r in p.filter_regexes()]
    ports = sorted({443, *(p.port for p in policy.allow if p.port is not None)})
    return {
        "AISHELL_PROXY_FILTER": "\n".join(regexes),
        "AISHELL_PROXY_PORTS": " ".join(str(p) for p in ports),
        "AISHELL_PROXY_ALLOW": "\n".join(str(p) for p in policy.allow),
    }


def proxy_run_args(plan_: Plan, *, log_dir: str, uid: int, gid: int, created: int) -> list[str]:
    argv = [
        "run", "--detach", "--rm", "--init",
        "--name", plan_.proxy_name,
        "--label", "aishell.managed=1",
        "--label", f"aishell.kind={KIND_PROXY}",
        "--label", f"{LABEL_SESSION}={plan_.session}",
        "--label", f"{LABEL_CREATED}={created}",
        "--user", f"{uid}:{gid}",
        "--read-only",
        "--tmpfs", "/run/aishell-proxy:rw,mode=1777,size=1m",
        "--cap-drop", "ALL",
        "--security-opt", "no-new-privileges",
        "--mount", f"type=bind,source={log_dir},target=/log",
        "-e", f"AISHELL_SESSION={plan_.session}",
    ]  # fmt: skip
    for key, value in proxy_settings(plan_.policy).items():
        argv += ["-e", f"{key}={value}"]
    argv.append(PROXY_IMAGE)
    return argv


# -- the proxy image ------------------------------------------------------------


def proxy_context(base_image: str | None) -> object:
    from aishell.engine import images

    pkg = Path(__file__).resolve().parent / "templates" / "proxy"
    files = {name: (pkg / name).read_bytes() for name in PROXY_TEMPLATE_FILES}
    return images.BuildContext(
        files=files, build_args={"BASE_IMAGE": base_image or images.DEFAULT_BASE_IMAGE}
    )


def ensure_proxy_image(engine: object, base_image: str | None, *, verbose: bool = False) -> bool:
    """Build `aishell:proxy` unless its inputs are unchanged. True if it was built."""
    from aishell.engine import images

    context = proxy_context(base_image)
    item = images.inspect_images(engine, [PROXY_IMAGE]).get(PROXY_IMAGE)  # type: ignore[arg-type]
    digest = context.hash  # type: ignore[attr-defined]
    if item and images.labels_of(item).get(LABEL_PROXY_HASH) == digest:
        return False
    images.build_from_context(
        engine,  # type: ignore[arg-type]
        context,  # type: ignore[arg-type]
        tag=PROXY_IMAGE,
        labels={LABEL_PROXY_HASH: digest, "aishell.kind": "proxy"},
        title=f"Building {PROXY_IMAGE} (the egress proxy, tinyproxy)",
        verbose=verbose,
    )
    return True


# -- session lifecycle ----------------------------------------------------------


def log_dir_for(session: str) -> Path:
    import time

    from aishell import paths

    stamp = time.strftime("%Y%m%d-%H%M%S")
    return paths.logs_dir() / "network" / f"{stamp}-{session}"


def start(
    engine: object,
    plan_: Plan,
    *,
    base_image: str | None,
    uid: int,
    gid: int,
    verbose: bool = False,
) -> Path:
    """Create the internal network and start the proxy; returns the log directory.
    On any failure everything made so far is removed and an error raised: the agent
    is never started without its proxy."""
    import time

    eng = engine  # Engine
    collect_orphans(eng)
    ensure_proxy_image(eng, base_image, verbose=verbose)
    log_dir = log_dir_for(plan_.session or "")
    log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    (log_dir / "decisions.log").touch(mode=0o600)
    created = int(time.time())
    try:
        eng.checked(  # type: ignore[attr-defined]
            "network", "create", "--internal",
            "--label", "aishell.managed=1",
            "--label", f"aishell.kind={KIND_EGRESS_NET}",
            "--label", f"{LABEL_SESSION}={plan_.session}",
            "--label", f"{LABEL_CREATED}={created}",
            str(plan_.network),
            what=f"creating the network {plan_.network}",
        )  # fmt: skip
        eng.checked(  # type: ignore[attr-defined]
            *proxy_run_args(plan_, log_dir=str(log_dir), uid=uid, gid=gid, created=created),
            what="starting the egress proxy",
        )
        eng.checked(  # type: ignore[attr-defined]
            "network",
            "connect",
            "--alias",
            PROXY_ALIAS,
            str(plan_.network),
            plan_.proxy_name,
            what="connecting the egress proxy",
            hint=f"the proxy may have failed to start; see {log_dir / 'decisions.log'}",
        )
        for extra in filter(None, os.environ.get(EXTRA_NETWORKS_ENV, "").split(",")):
            eng.checked(  # type: ignore[attr-defined]
                "network",
                "connect",
                extra.strip(),
                plan_.proxy_name,
                what=f"connecting the egress proxy to {extra}",
            )
    except BaseException:
        stop(eng, plan_)
        raise
    return log_dir


def stop(engine: object, plan_: Plan) -> None:
    """Remove the session's proxy and network (quietly; repeated calls are harmless)."""
    import time

    eng = engine
    eng.capture("rm", "-f", plan_.proxy_name)  # type: ignore[attr-defined]
    for _ in range(20):
        result = eng.capture("network", "rm", str(plan_.network))  # type: ignore[attr-defined]
        if (
            result.ok
            or "no such network" in result.stderr.lower()
            or "not found" in (result.stderr.lower())
        ):
            return
        time.sleep(0.25)


def collect_orphans(engine: object, *, now: float | None = None) -> list[str]:
    """Remove proxies and networks of sessions whose agent container is gone (detached
    sessions that ended). Sessions younger than the grace period are left alone (their
    agent may be starting). Returns the sessions removed."""
    import time

    eng = engine
    nets = eng.capture(  # type: ignore[attr-defined]
        "network", "ls", "--filter", f"label=aishell.kind={KIND_EGRESS_NET}",
        "--format", '{{.Name}}\t{{.Label "' + LABEL_SESSION + '"}}\t{{.Label "'
        + LABEL_CREATED + '"}}',
    )  # fmt: skip
    if not nets.ok or not nets.stdout.strip():
        return []
    conts = eng.capture(  # type: ignore[attr-defined]
        "ps", "-a", "--filter", f"label={LABEL_SESSION}",
        "--format", '{{.Label "' + LABEL_SESSION + '"}}\t{{.Label "aishell.kind"}}',
    )  # fmt: skip
    if not conts.ok:
        return []
    live = set()
    for line in conts.stdout.splitlines():
        session, _, kind = line.partition("\t")
        if kind != KIND_PROXY:
            live.add(session)
    current = time.time() if now is None else now
    try:  # for tests: AISHELL_NETWORK_ORPHAN_GRACE (seconds)
        grace = int(os.environ.get("AISHELL_NETWORK_ORPHAN_GRACE", ORPHAN_GRACE_SECONDS))
    except ValueError:
        grace = ORPHAN_GRACE_SECONDS
    removed = []
    for line in nets.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) != 3:
            continue
        name, session, created = parts
        try:
            age = current - int(created)
        except ValueError:
            age = ORPHAN_GRACE_SECONDS + 1
        if session and session not in live and age > grace:
            stop(eng, Plan(Policy("allowlist"), session=session, network=name))
            removed.append(session)
    return removed
