"""Helpers for the egress tests: local test servers and host listeners only.

- `start_upstream`: a container on a test network of its own, under the names
  `allowed.test` and `denied.test`, answering plain HTTP on 80 and HTTPS (HTTP/1.1 and
  HTTP/2, a self-signed certificate for both names) on 443, each answer naming the
  host it was asked for and the protocol; the egress proxy joins that network through
  the test-only variable AISHELL_PROXY_EXTRA_NETWORKS.
- `Listener`: a TCP and UDP listener on the host that records what reaches it.
- `bridge_addresses`: this host's addresses on its container bridges.

Nothing here contacts an address outside this machine.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import subprocess
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from testing.runner import Aishell

# Node (from the foundation image): HTTP on 80, HTTPS with HTTP/1.1 and HTTP/2 on 443.
SERVER = r"""
const fs = require("fs"), http = require("http"), http2 = require("http2"), net = require("net");
// Clients the proxy cuts off mid-way reset their connections: never let that end the server.
process.on("uncaughtException", (e) => console.error("upstream:", e.message));
const answer = (q, r) => {
  const host = q.headers[":authority"] || q.headers.host || "-";
  r.end("hello from " + host.replace(/:\d+$/, "") + " over HTTP/" + q.httpVersion + "\n");
};
http.createServer(answer).listen(80);
http2.createSecureServer({
  key: fs.readFileSync("/certs/key.pem"), cert: fs.readFileSync("/certs/cert.pem"),
  allowHTTP1: true,
}, answer).listen(443);
// a server that talks first, as SSH does (SSH over an allowed port must not tunnel)
net.createServer(s => { s.on("error", () => {}); s.write("SSH-2.0-aishell-test\r\n"); })
  .listen(2222);
"""


class Upstream:
    def __init__(self, network: str, name: str, ip: str, certs: Path) -> None:
        self.network = network
        self.name = name
        self.ip = ip
        self.certs = certs

    @property
    def env(self) -> dict[str, str]:
        return {"AISHELL_PROXY_EXTRA_NETWORKS": self.network}


def docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=False)


def start_upstream(image: str, tag: str, workdir: Path) -> Upstream:
    # A new name each time: a home's proxy that joined an earlier one (same name, gone
    # since) must not count as joined (it is then recreated, joining this one).
    # (Not labelled aishell.test=1: a concurrent test run's clean-up removes every
    # container with that label on the engine. The fixture removes its own.)
    unique = f"{tag}-{os.getpid()}-{os.urandom(3).hex()}"
    net = f"aishell-it-upstream-{unique}"
    name = f"aishell-it-srv-{unique}"
    certs = workdir / f"certs-{tag}"
    certs.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "2", "-subj", "/CN=allowed.test",
            "-addext", "subjectAltName=DNS:allowed.test,DNS:denied.test",
            "-keyout", str(certs / "key.pem"), "-out", str(certs / "cert.pem"),
        ],
        check=True, capture_output=True,
    )  # fmt: skip
    os.chmod(certs, 0o755)
    for pem in certs.iterdir():
        os.chmod(pem, 0o644)
    docker("rm", "-f", name)
    docker("network", "rm", net)
    made = docker("network", "create", net)
    assert made.returncode == 0, made.stderr
    started = docker(
        "run", "-d", "--rm", "--name", name,
        "--network", net, "--network-alias", "allowed.test", "--network-alias", "denied.test",
        "-v", f"{certs}:/certs:ro", "--entrypoint", "node", image, "-e", SERVER,
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    ip = docker(
        "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name
    ).stdout.strip()
    assert ip
    return Upstream(net, name, ip, certs)


def stop_upstream(up: Upstream) -> None:
    docker("rm", "-f", up.name)
    # the egress proxies that joined it (they stay up for their homes' next sessions)
    joined = docker(
        "network", "inspect", "-f", "{{range $k, $v := .Containers}}{{$k}} {{end}}", up.network
    )
    for container in joined.stdout.split():
        docker("network", "disconnect", "-f", up.network, container)
    docker("network", "rm", up.network)


class Listener:
    """A TCP and a UDP socket on the host, bound to `address` (one port for both),
    recording every connection and datagram that reaches them."""

    def __init__(self, address: str = "0.0.0.0") -> None:
        self.address = address
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind((address, 0))
        self.port = self.tcp.getsockname()[1]
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind((address, self.port))
        self.tcp.listen(16)
        self.received: list[str] = []
        self._stop = False
        self._threads = [
            threading.Thread(target=self._accept, daemon=True),
            threading.Thread(target=self._datagrams, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, peer = self.tcp.accept()
            except OSError:
                return
            conn.settimeout(2)
            try:
                data = conn.recv(4096)
            except OSError:
                data = b""
            self.received.append(f"tcp from {peer[0]}: {data[:60]!r}")
            conn.close()

    def _datagrams(self) -> None:
        while not self._stop:
            try:
                data, peer = self.udp.recvfrom(4096)
            except OSError:
                return
            if peer is None:  # the socket was shut down
                return
            self.received.append(f"udp from {peer[0]}: {data[:60]!r}")

    def close(self) -> None:
        self._stop = True
        for sock in (self.tcp, self.udp):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


def bridge_addresses() -> list[str]:
    """This host's IPv4 addresses on its container bridges (docker0, br-*, podman*, cni-*)."""
    out = subprocess.run(
        ["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=True
    ).stdout
    found = []
    for line in out.splitlines():
        parts = line.split()
        name, addr = parts[1], parts[3].split("/")[0]
        if name.startswith(("docker", "br-", "podman", "cni-", "virbr")):
            found.append(addr)
    return sorted(set(found))


def home_id(ai: Aishell) -> str:
    real = os.path.realpath(ai.aishell_home)
    return hashlib.sha256(f"{ai.uid}:{real}".encode()).hexdigest()[:12]


def egress_container(ai: Aishell) -> str:
    return f"aishell-egress-{home_id(ai)}"
