"""Allowlist egress, the pure parts: the allowlist semantics (in Python and in the real
policy helper the proxy runs), the SNI rule, the session plan and the sandbox's argv,
the proxy container's argv, the Squid configuration, the decision log, builds."""

from __future__ import annotations

import subprocess
from pathlib import Path
from urllib.parse import quote

import pytest

from aishell import netpolicy
from aishell.engine import images, proxy
from aishell.engine.client import Engine
from aishell.engine.run_args import HostFacts, RunSpec, build_run_args
from testing.fake_engine import FakeEngine, ok, streamed

TEMPLATES = Path(proxy.__file__).resolve().parent.parent / "templates" / "proxy"
HELPER = TEMPLATES / "policy-helper"
SPLITTER = TEMPLATES / "log-splitter"
SESSION_ADDR = "127.1.0.2"

ALLOW = ("api.example.com", "*.corp.example", "git.example.com:8443", "localhost")

# host, port, tls (CONNECT) or not (plain HTTP), admitted?
SEMANTICS = [
    ("api.example.com", 443, True, True),
    ("api.example.com", 80, False, True),
    ("API.Example.COM", 443, True, True),  # case
    ("api.example.com.", 443, True, True),  # trailing dot
    ("api.example.com", 80, True, False),  # CONNECT only on 443 without a port
    ("api.example.com", 443, False, False),  # plain HTTP only on 80 without a port
    ("api.example.com", 22, True, False),
    ("www.api.example.com", 443, True, False),  # exact means exact
    ("example.com", 443, True, False),
    ("malicious-api.example.com", 443, True, False),  # look-alike
    ("api.example.com.evil.org", 443, True, False),
    ("evilapi.example.com", 443, True, False),
    ("a.corp.example", 443, True, True),  # *.domain: subdomains
    ("a.b.corp.example", 80, False, True),
    ("corp.example", 443, True, False),  # ... not the domain itself
    ("xcorp.example", 443, True, False),  # look-alike of the suffix
    ("a.corp.example.evil.org", 443, True, False),
    ("git.example.com", 8443, True, True),  # explicit port: CONNECT and HTTP on it
    ("git.example.com", 8443, False, True),
    ("git.example.com", 443, True, False),
    ("localhost", 80, False, True),  # a name the user listed (the proxy still refuses loopback)
    ("denied.example", 443, True, False),
]


def policy() -> netpolicy.Policy:
    return netpolicy.effective_policy(netpolicy.NetworkConfig("allowlist", ALLOW), [])


@pytest.mark.parametrize(("host", "port", "tls", "expected"), SEMANTICS)
def test_allowlist_semantics(host: str, port: int, tls: bool, expected: bool) -> None:
    assert netpolicy.admitted(policy(), host, port, tls=tls) is expected


def run_helper(tmp_path: Path, mode: str, *lines: str) -> list[str]:
    (tmp_path / "policy").mkdir(exist_ok=True)
    text = netpolicy.policy_file(policy(), session="s", project="/p", container="c")
    (tmp_path / "policy" / SESSION_ADDR).write_text(text)
    result = subprocess.run(
        ["perl", str(HELPER), mode],
        input="".join(line + "\n" for line in lines),
        capture_output=True,
        text=True,
        env={"AISHELL_PROXY_RUN": str(tmp_path), "PATH": "/usr/bin:/bin"},
        check=True,
    )
    return result.stdout.splitlines()


def request_line(host: str, port: int, tls: bool, host_header: str = "-") -> str:
    method, scheme = ("CONNECT", "-") if tls else ("GET", "http")
    fields = [SESSION_ADDR, method, scheme, host, str(port), host_header, "-"]
    return " ".join(quote(f, safe="-.*:") for f in fields)


def test_the_proxy_helper_has_the_same_semantics(tmp_path: Path) -> None:
    """The helper the proxy runs answers the whole table exactly as `netpolicy` does."""
    answers = run_helper(tmp_path, "request", *(request_line(h, p, t) for h, p, t, _ in SEMANTICS))
    assert [a.split()[0] for a in answers] == ["OK" if e else "ERR" for *_, e in SEMANTICS]
    assert all("log=allowlisted" in a for a in answers if a.startswith("OK"))
    assert all("log=not-allowlisted" in a for a in answers if a.startswith("ERR"))


@pytest.mark.parametrize(
    ("line", "log"),
    [
        # an address that belongs to no session (or a session that ended)
        (
            request_line("api.example.com", 80, False).replace(SESSION_ADDR, "127.1.0.9"),
            "no-session",
        ),
        ("127.0.0.1 GET http api.example.com 80 - -", "no-session"),
        # only http:// and CONNECT are proxied
        (f"{SESSION_ADDR} GET ftp api.example.com 80 - -", "scheme"),
        # plain HTTP: the Host header must name the URL's host
        (request_line("api.example.com", 80, False, "denied.example"), "host-header-mismatch"),
        (request_line("api.example.com", 80, False, "api.example.com:80"), "allowlisted"),
        (request_line("api.example.com", 80, False, "API.example.com"), "allowlisted"),
    ],
)
def test_helper_refusals(tmp_path: Path, line: str, log: str) -> None:
    (answer,) = run_helper(tmp_path, "request", line)
    assert f"log={log}" in answer
    assert answer.startswith("OK" if log == "allowlisted" else "ERR")


SNI = [
    ("api.example.com", "api.example.com", True),
    ("api.example.com", "API.EXAMPLE.COM", True),  # case-insensitive
    ("api.example.com", "api.example.com.", True),
    ("api.example.com", "pypi.org", False),  # fronting: CONNECT to an allowed host, SNI another
    ("a.corp.example", "b.corp.example", False),  # even under the same allowed wildcard
    ("api.example.com", "-", False),  # no SNI
    ("api.example.com", "", False),
    ("203.0.113.7", "api.example.com", False),
]


@pytest.mark.parametrize(("connect", "sni", "expected"), SNI)
def test_sni_must_name_the_connect_host(connect: str, sni: str, expected: bool) -> None:
    assert netpolicy.sni_accepted(connect, sni) is expected


def test_the_proxy_helper_checks_sni_the_same_way(tmp_path: Path) -> None:
    lines = [f"{SESSION_ADDR} {quote(c)} {quote(s) or '-'} -" for c, s, _ in SNI]
    answers = run_helper(tmp_path, "tls", *lines)
    assert [a.split()[0] for a in answers] == ["OK" if e else "ERR" for *_, e in SNI]
    assert "log=sni-mismatch" in answers[3] and "log=tls-without-sni" in answers[5]


# -- the sandbox --------------------------------------------------------------------

HOST = HostFacts(uid=1000, gid=1000, user="u", home="/h", cwd="/p", stdin_tty=False,
                 stdout_tty=False)  # fmt: skip


def test_allowlist_sandbox_has_no_network_only_its_socket() -> None:
    plan = netpolicy.plan(
        netpolicy.NetworkConfig("allowlist", ("a.org",)),
        [],
        sockets_root="/h/.aishell/egress/sockets",
    )
    assert plan.network == "none"
    assert plan.dns is None
    assert plan.binds == ((f"/h/.aishell/egress/sockets/{plan.session}", netpolicy.EGRESS_MOUNT),)
    env = dict(plan.env)
    assert env["HTTPS_PROXY"] == env["http_proxy"] == "http://127.0.0.1:3128"
    assert env["AISHELL_EGRESS"] == netpolicy.EGRESS_MOUNT
    assert dict(plan.labels) == {"aishell.network": "allowlist", "aishell.session": plan.session}


def test_allowlist_run_args(tmp_path: Path) -> None:
    from aishell.engine.run_args import Bind

    plan = netpolicy.plan(netpolicy.NetworkConfig("allowlist", ("a.org",)), [], sockets_root="/s")
    spec = RunSpec(
        image="i",
        command=("true",),
        project_dir="/p",
        workdir="/p",
        network=plan.network,
        binds=tuple(Bind(s, t, readonly=True) for s, t in plan.binds),
    )
    argv = build_run_args(spec, HOST).argv
    assert argv[argv.index("--network") + 1] == "none"
    assert f"type=bind,source=/s/{plan.session},target=/run/aishell-egress,readonly" in argv
    assert "--dns" not in argv and "--sysctl" not in argv
    # nothing else of aishell's home reaches the sandbox
    assert not any("egress/sessions" in a or "logs/network" in a for a in argv)


def test_none_mode_plan() -> None:
    plan = netpolicy.plan(netpolicy.NetworkConfig("none"), [])
    assert plan.network == "none" and plan.binds == () and plan.session is None


def test_policy_file_lists_the_allowlist() -> None:
    text = netpolicy.policy_file(policy(), session="abc", project="/p", container="aishell-x")
    assert "session abc\n" in text and "container aishell-x\n" in text
    assert [line for line in text.splitlines() if line.startswith("allow ")] == [
        f"allow {h}" for h in ALLOW
    ]


# -- the proxy container ------------------------------------------------------------


def engine(kind: str = "docker", rootless: bool = False) -> Engine:
    return FakeEngine([], kind=kind, binary=f"/usr/bin/{kind}", rootless=rootless)


def create_args(eng: Engine, uid: int) -> list[str]:
    return proxy.proxy_create_args(
        eng,
        name="aishell-egress-abc",
        image="sha256:img",
        home_id="abc",
        content_hash="h",
        extras=(),
        uid=uid,
        gid=uid,
        egress="/h/.aishell/egress",
        logs="/h/.aishell/logs/network",
        host_addrs=["172.17.0.1", "10.0.0.5"],
    )


@pytest.mark.parametrize(
    ("uid", "rootless", "as_user", "caps"),
    [
        (1000, False, ["--user", "1000:1000"], []),  # the host user's own UID: no capability
        (0, False, ["--user", "0:0"], ["SETUID", "SETGID", "KILL"]),  # to start Squid as nobody
        (1000, True, [], ["SETUID", "SETGID", "KILL"]),  # rootless: root in the user namespace
    ],
)
def test_proxy_container_args(
    uid: int, rootless: bool, as_user: list[str], caps: list[str]
) -> None:
    argv = create_args(engine("podman" if rootless else "docker", rootless), uid)
    assert argv[:3] == ["create", "--init", "--rm"]
    assert ("--user" in argv) is bool(as_user)
    if as_user:
        assert argv[argv.index("--user") + 1] == as_user[1]
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--cap-add"] == caps
    assert argv[argv.index("--cap-drop") + 1] == "ALL"
    for needed in ("--read-only", "no-new-privileges", "aishell.home=abc", "aishell.proxy.hash=h"):
        assert any(needed in a for a in argv), needed
    assert "AISHELL_PROXY_HOST_ADDRESSES=172.17.0.1 10.0.0.5" in argv
    assert "--network" not in argv and "--privileged" not in argv
    assert argv[-1] == "sha256:img"


def test_proxy_name_is_per_home() -> None:
    assert proxy.container_name("0123456789ab") == "aishell-egress-0123456789ab"


def test_host_addresses(tmp_path: Path) -> None:
    fib = tmp_path / "fib_trie"
    fib.write_text(
        "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 0.0.0.0\n        /0 universe UNICAST\n"
        "     |-- 127.0.0.1\n        /32 host LOCAL\n     |-- 172.17.0.1\n        /32 host LOCAL\n"
        "     |-- 172.17.255.255\n        /32 link BROADCAST\n     |-- 10.1.2.3\n"
        "        /32 host LOCAL\n"
    )
    v6 = tmp_path / "if_inet6"
    v6.write_text(
        "00000000000000000000000000000001 01 80 10 80       lo\n"
        "fe800000000000000242acfffe110002 05 40 20 80  docker0\n"
    )
    assert proxy.host_addresses(str(fib), str(v6)) == [
        "10.1.2.3",
        "172.17.0.1",
        "fe80:0000:0000:0000:0242:acff:fe11:0002",
    ]
    assert proxy.host_addresses(str(tmp_path / "none"), str(tmp_path / "none")) == []


def test_extra_networks_only_from_the_test_variable() -> None:
    assert proxy.extra_networks({}) == ()
    assert proxy.extra_networks({proxy.EXTRA_NETWORKS_ENV: " b, a,,a"}) == ("a", "b")


# -- Squid's configuration ----------------------------------------------------------


def squid_lines() -> list[str]:
    text = (TEMPLATES / "squid.conf").read_text()
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def test_squid_never_bumps_and_cuts_by_default() -> None:
    bump = [line for line in squid_lines() if line.startswith("ssl_bump ")]
    assert bump[-1] == "ssl_bump terminate all"  # Squid's own default would be splice
    assert not any(line.split()[1] in ("bump", "stare", "client-first", "server-first")
                   for line in bump)  # fmt: skip
    splices = [line for line in bump if " splice " in f" {line} "]
    assert splices == ["ssl_bump splice aishell_step2 aishell_sni_ok"]
    port = next(line for line in squid_lines() if line.startswith("http_port"))
    assert port.startswith("http_port 127.0.0.1:3128 ")  # loopback of the proxy container only
    assert "generate-host-certificates=off" in port


def test_squid_checks_policy_before_destination() -> None:
    access = [line for line in squid_lines() if line.startswith("http_access")]
    assert access == [
        "http_access allow CONNECT",  # judged in ssl_bump (terminate, never a bumped error page)
        "http_access deny !aishell_allowed",  # names outside the policy are never looked up
        "http_access deny aishell_forbidden_dst",
        "http_access allow all",
    ]
    bump = [line for line in squid_lines() if line.startswith("ssl_bump ")]
    assert bump[:2] == [
        "ssl_bump terminate aishell_step1 !aishell_allowed",
        "ssl_bump terminate aishell_step1 aishell_forbidden_dst",
    ]


def test_squid_forbids_loopback_link_local_and_the_host() -> None:
    forbidden = " ".join(
        line for line in squid_lines() if line.startswith("acl aishell_forbidden_dst")
    )
    for net in (
        "127.0.0.0/8",
        "0.0.0.0/8",
        "169.254.0.0/16",
        "::1/128",
        "fe80::/10",
        "::ffff:0:0/96",
    ):
        assert net in forbidden
    assert '"/run/aishell-proxy/host-addresses"' in forbidden
    # private ranges a user may allowlist on purpose (corporate hosts) stay allowed
    for private in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"):
        assert private not in forbidden


def test_squid_policy_helpers_are_per_source_address() -> None:
    helpers = [line for line in squid_lines() if line.startswith("external_acl_type")]
    assert len(helpers) == 2 and all(" %>a " in line for line in helpers)
    assert "%ssl::>sni" in helpers[1]


# -- the decision log ---------------------------------------------------------------

SQUID_LINES = [
    ("NONE_NONE/200 CONNECT a.org:443 sni=a.org tls=splice policy=sni-ok", "ALLOW"),
    ("TCP_TUNNEL/200 CONNECT a.org:443 sni=a.org tls=splice policy=-", "ALLOW"),
    ("NONE_NONE/000 CONNECT b.org:443 sni=- tls=terminate policy=not-allowlisted", "DENY"),
    ("NONE_NONE/200 CONNECT a.org:443 sni=b.org tls=terminate policy=sni-mismatch", "DENY"),
    ("NONE_NONE_ABORTED/200 CONNECT a.org:443 sni=- tls=peek policy=allowlisted", "DENY"),
    ("TCP_MISS/200 GET http://a.org/ sni=- tls=- policy=allowlisted", "ALLOW"),
    ("TCP_DENIED/403 GET http://b.org/ sni=- tls=- policy=not-allowlisted", "DENY"),
]


def test_log_splitter_files_lines_under_their_session(tmp_path: Path) -> None:
    run, logs = tmp_path / "run", tmp_path / "logs"
    (run / "session").mkdir(parents=True)
    (logs / "sess1").mkdir(parents=True)
    (run / "session" / SESSION_ADDR).write_text("sess1\n")
    feed = tmp_path / "feed"
    stamp = "2026-01-01T00:00:00+0000"
    feed.write_text(
        "".join(f"{stamp} {SESSION_ADDR} {line}\n" for line, _ in SQUID_LINES)
        + f"{stamp} 127.1.0.77 TCP_MISS/200 GET http://x.org/ sni=- tls=- policy=allowlisted\n"
    )
    subprocess.run(
        ["perl", str(SPLITTER), str(feed)],
        env={
            "AISHELL_PROXY_RUN": str(run),
            "AISHELL_PROXY_LOGS": str(logs),
            "PATH": "/usr/bin:/bin",
        },
        check=True,
        timeout=30,
    )
    got = (logs / "sess1" / "decisions.log").read_text().splitlines()
    assert [line.split()[1] for line in got] == [d for _, d in SQUID_LINES]
    assert all(line.split()[2] == "sess1" for line in got)
    assert got[4].endswith("policy=not-tls")  # peeked, never TLS: named as such
    assert "x.org" in (run / "unmatched.log").read_text()  # no session: not in anyone's log


# -- builds ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "network"), [("open", None), ("allowlist", "none"), ("none", "none")]
)
def test_build_network_follows_the_policy(mode: str, network: str | None) -> None:
    assert images.build_network(mode) == network


def test_build_without_network_passes_it_and_says_so(tmp_path: Path) -> None:
    from aishell.errors import EngineError

    fake = FakeEngine(
        [(lambda call: call.verb == "stream", streamed("Step 1/2 : FROM x", returncode=1))]
    )
    fake.on(("rmi",), ok()).on(("image", "inspect"), ok())
    with pytest.raises(EngineError) as exc:
        images.build_image(fake, tag="t", context_dir=tmp_path, title="Building", network="none")
    build = next(c for c in fake.calls if c.verb == "stream")
    assert build.args[build.args.index("--network") + 1] == "none"
    assert "without network" in (exc.value.hint or "")


# -- the proxy's life ---------------------------------------------------------------


def running_proxy(content_hash: str, extras: str = "") -> str:
    import json

    labels = {"aishell.proxy.hash": content_hash, "aishell.proxy.extra": extras}
    return json.dumps([{"State": {"Running": True}, "Config": {"Labels": labels}}])


def test_a_running_current_proxy_costs_one_inspection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AISHELL_HOME", str(tmp_path))
    monkeypatch.delenv(proxy.EXTRA_NETWORKS_ENV, raising=False)
    current = proxy.proxy_context(None).hash
    fake = FakeEngine([(("container", "inspect"), ok(running_proxy(current)))])
    proxy.ensure_proxy(fake, base_image=None, uid=1000, gid=1000)
    assert fake.argvs() == [("container", "inspect", proxy.container_name(proxy.paths.home_id()))]


def test_a_proxy_that_does_not_start_is_an_error_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aishell.engine.client import Result
    from aishell.errors import EngineError

    monkeypatch.setenv("AISHELL_HOME", str(tmp_path))
    monkeypatch.delenv(proxy.EXTRA_NETWORKS_ENV, raising=False)
    monkeypatch.setattr(proxy, "READY_TIMEOUT", 3.0)
    monkeypatch.setattr(proxy, "ensure_proxy_image", lambda *a, **k: "sha256:img")
    said = "aishell-egress: the Squid configuration is invalid:\nFATAL: Bungled squid.conf line 3\n"

    def start(call: object) -> Result:  # the proxy says why it stops, then is gone
        (tmp_path / "egress" / "proxy.log").write_text(said)
        return ok()

    fake = FakeEngine(
        [
            (("container", "inspect"), Result(1, "[]", "Error: No such container\n")),
            (("rm", "-f"), ok()),
            (("create",), ok("0123456789abcdef\n")),
            (("start",), start),
        ]
    )
    with pytest.raises(EngineError) as exc:
        proxy.ensure_proxy(fake, base_image=None, uid=1000, gid=1000)
    assert str(exc.value.message) == (
        "the egress proxy did not start: FATAL: Bungled squid.conf line 3"
    )
    assert "the sandbox was not started" in (exc.value.hint or "")
    assert (tmp_path / "egress" / "sessions").is_dir()


def test_a_session_is_files_the_proxy_picks_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AISHELL_HOME", str(tmp_path))
    (tmp_path / "egress" / "sessions").mkdir(parents=True)
    (tmp_path / "egress" / "sockets").mkdir()
    plan = netpolicy.plan(
        netpolicy.NetworkConfig("allowlist", ("a.org",)),
        [],
        sockets_root=str(tmp_path / "egress" / "sockets"),
    )
    log = proxy.open_session(plan, project="/p", container="aishell-x-shell")
    session = plan.session or ""
    policy_text = (tmp_path / "egress" / "sessions" / session / "policy").read_text()
    assert "allow a.org\n" in policy_text
    assert (tmp_path / "egress" / "sockets" / session).is_dir()
    assert not list((tmp_path / "egress" / "sessions").glob(".new-*"))  # renamed in at once
    assert log == tmp_path / "logs" / "network" / session / "decisions.log"
    assert f"INFO {session} session opened: project /p container aishell-x-shell" in log.read_text()
    assert oct(log.stat().st_mode & 0o777) == "0o600"
    proxy.close_session(plan)
    assert not (tmp_path / "egress" / "sessions" / session).exists()


def test_check_shows_the_policy_and_this_homes_proxy() -> None:
    from aishell.commands import check
    from aishell.config import Config
    from testing.gathered import good

    cfg = Config(network=netpolicy.NetworkConfig("allowlist", ("a.org",)))
    g = good(config=cfg, egress_proxy="aishell-egress-0123456789ab: running")
    line = next(c for c in check.config_checks(g, {}) if c.label.startswith("network policy"))
    assert line.label == "network policy: allowlist (6 hosts)"  # opencode's 5 hosts + a.org
    assert line.detail is not None
    assert (
        "a.org" in line.detail
        and "egress proxy aishell-egress-0123456789ab: running" in line.detail
    )


def test_discovery_asks_for_the_proxy_only_under_an_allowlist(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from aishell import discovery
    from aishell.config import Config
    from testing.gathered import gathered

    for mode in ("open", "none", "allowlist"):
        fake = FakeEngine(
            [
                (("container", "inspect"), ok("running\n")),
                (("version",), ok('{"Server": {"Version": "28.0"}}')),
                (("image", "inspect"), ok("[]")),
            ]
        )
        monkeypatch.setattr(discovery.choice, "get_engine", lambda *a, _f=fake, **k: _f)
        g = gathered(config=Config(network=netpolicy.NetworkConfig(mode)))
        discovery._ask_engine(g)
        asked = [c.args for c in fake.calls if c.args[0] == "container"]
        if mode == "allowlist":
            name = proxy.container_name(g.holds.home_id)
            assert asked == [("container", "inspect", "--format", "{{.State.Status}}", name)]
            assert g.egress_proxy == f"{name}: running"
        else:
            assert asked == [] and g.egress_proxy is None
