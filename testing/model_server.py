"""A scripted model server for the tests: enough of the Anthropic Messages API
(streaming, as Claude Code calls it) to drive a real agent through a scripted exchange.

No model API is reachable from the test machines. This server answers
`POST /v1/messages` (Claude Code adds `?beta=true`) with server-sent events the way
the real API streams them: `message_start`, then for each content block
`content_block_start` / `content_block_delta` (`text_delta`, or `input_json_delta` for a
`tool_use`) / `content_block_stop`, then `message_delta` with the `stop_reason` and
`message_stop`. Which step of the script answers is decided by the request itself (how
many assistant turns its conversation already holds), so several agents can run the
same script at once. A request without tools (a side question such as a title) gets a
short text. Every request body is recorded (`requests`).

A script is a list of steps:
- `Bash("cmd")`: one `tool_use` of the agent's `Bash` tool (its result is the next
  request's `tool_result`);
- `Text("...")`: the final answer (`end_turn`);
- `Fail(status, message)`: an API error answer (the agent gives up with an error).

`Scripted(script).start()` listens on 0.0.0.0 (a sandbox reaches it at the bridge
gateway); `forwarder_script(host, port)` is a Node TCP forwarder for a container on a
test network (the egress proxy cannot reach host addresses, by design).
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import uuid
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple


class Bash(NamedTuple):
    command: str


class Text(NamedTuple):
    text: str


class Fail(NamedTuple):
    status: int
    message: str


Step = Bash | Text | Fail


def turn_of(body: dict[str, Any]) -> int:
    """Which step answers: the number of assistant turns in the conversation so far."""
    return sum(1 for m in body.get("messages") or [] if m.get("role") == "assistant")


def tool_results(body: dict[str, Any]) -> list[str]:
    """The text of every `tool_result` block the request carries."""
    found = []
    for message in body.get("messages") or []:
        content = message.get("content")
        if not isinstance(content, list):
            continue
        for block in content:
            if isinstance(block, dict) and block.get("type") == "tool_result":
                inner = block.get("content")
                if isinstance(inner, list):
                    inner = "".join(str(p.get("text", "")) for p in inner if isinstance(p, dict))
                found.append(str(inner))
    return found


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def bash_tool(body: dict[str, Any]) -> str:
    """The name of the agent's shell tool (Claude Code: `Bash`, OpenCode: `bash`)."""
    for tool in body.get("tools") or []:
        name = str(tool.get("name", "")) if isinstance(tool, dict) else ""
        if name.lower() == "bash":
            return name
    return "Bash"


def stream_events(step: Bash | Text, model: str, tool: str = "Bash") -> bytes:
    """The SSE body of one assistant message answering with `step`."""
    mid = f"msg_{uuid.uuid4().hex[:24]}"
    usage = {"input_tokens": 10, "output_tokens": 1}
    out = [
        _event(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": mid,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": usage,
                },
            },
        )
    ]
    if isinstance(step, Bash):
        block = {
            "type": "tool_use",
            "id": f"toolu_{uuid.uuid4().hex[:24]}",
            "name": tool,
            "input": {},
        }
        delta = {
            "type": "input_json_delta",
            "partial_json": json.dumps({"command": step.command, "description": "scripted"}),
        }
        stop = "tool_use"
    else:
        block = {"type": "text", "text": ""}
        delta = {"type": "text_delta", "text": step.text}
        stop = "end_turn"
    out += [
        _event("content_block_start", {"type": "content_block_start", "index": 0,
                                       "content_block": block}),
        _event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                       "delta": delta}),
        _event("content_block_stop", {"type": "content_block_stop", "index": 0}),
        _event("message_delta", {"type": "message_delta",
                                 "delta": {"stop_reason": stop, "stop_sequence": None},
                                 "usage": {"output_tokens": 5}}),
        _event("message_stop", {"type": "message_stop"}),
    ]  # fmt: skip
    return b"".join(out)


class Scripted:
    """The server: `start()`, then `port`, `requests`, `stop()`."""

    def __init__(self, script: Sequence[Step], *, side_answer: str = "Scripted") -> None:
        self.script = list(script)
        self.side_answer = side_answer
        self.requests: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    def answer(self, body: dict[str, Any]) -> Step:
        if not body.get("tools"):  # a side request (a title, a summary): not the script
            return Text(self.side_answer)
        turn = turn_of(body)
        return self.script[min(turn, len(self.script) - 1)]

    def main_requests(self) -> list[dict[str, Any]]:
        """The recorded requests of the scripted conversation (with tools)."""
        with self._lock:
            return [r for r in self.requests if r.get("tools")]

    def start(self, host: str = "0.0.0.0") -> Scripted:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _send(self, status: int, ctype: str, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._send(200, "application/json", b"{}")

            def do_HEAD(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {}
                with owner._lock:
                    owner.paths.append(self.path)
                path = self.path.split("?", 1)[0]
                if path.endswith("/count_tokens"):
                    self._send(200, "application/json", b'{"input_tokens": 10}')
                    return
                if not path.endswith("/v1/messages"):
                    self._send(404, "application/json", b'{"type":"error"}')
                    return
                with owner._lock:
                    owner.requests.append(body)
                step = owner.answer(body)
                if isinstance(step, Fail):
                    err = {
                        "type": "error",
                        "error": {"type": "invalid_request_error", "message": step.message},
                    }
                    self._send(step.status, "application/json", json.dumps(err).encode())
                    return
                model = str(body.get("model") or "claude-scripted")
                if not body.get("stream"):
                    self._send(200, "application/json", _plain_message(step, model))
                    return
                events = stream_events(step, model, bash_tool(body))
                self._send(200, "text/event-stream", events)

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def _plain_message(step: Bash | Text, model: str) -> bytes:
    if isinstance(step, Bash):
        content: list[dict[str, Any]] = [
            {"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:24]}", "name": "Bash",
             "input": {"command": step.command, "description": "scripted"}}
        ]  # fmt: skip
        stop = "tool_use"
    else:
        content = [{"type": "text", "text": step.text}]
        stop = "end_turn"
    message = {
        "id": f"msg_{uuid.uuid4().hex[:24]}", "type": "message", "role": "assistant",
        "model": model, "content": content, "stop_reason": stop, "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 5},
    }  # fmt: skip
    return json.dumps(message).encode()


def forwarder_script(host: str, port: int, listen: int = 80) -> str:
    """Node source of a TCP forwarder: connections to `listen` go to host:port."""
    return (
        'const net = require("net");'
        'process.on("uncaughtException", (e) => console.error("forwarder:", e.message));'
        "net.createServer((c) => {"
        f"  const u = net.connect({port}, {json.dumps(host)});"
        '  c.on("error", () => u.destroy()); u.on("error", () => c.destroy());'
        "  c.pipe(u); u.pipe(c);"
        f"}}).listen({listen});"
    )


class ModelNetwork:
    """The scripted server as `model.test` on a test network of its own (a forwarder
    container), for allowlist sessions: the egress proxy joins the network through the
    test-only variable AISHELL_PROXY_EXTRA_NETWORKS."""

    def __init__(self, network: str, container: str) -> None:
        self.network = network
        self.container = container

    @property
    def env(self) -> dict[str, str]:
        return {"AISHELL_PROXY_EXTRA_NETWORKS": self.network}


def _docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=False)


def start_model_network(image: str, port: int, tag: str = "model") -> ModelNetwork:
    """A network with a forwarder named `model.test` (port 80) to this host's `port`.
    (Not labelled aishell.test=1: a concurrent run's clean-up removes those.)"""
    unique = f"{tag}-{os.getpid()}-{os.urandom(3).hex()}"
    net, name = f"aishell-it-upstream-{unique}", f"aishell-it-srv-{unique}"
    made = _docker("network", "create", net)
    assert made.returncode == 0, made.stderr
    gateway = _docker(
        "network", "inspect", net, "-f", "{{(index .IPAM.Config 0).Gateway}}"
    ).stdout.strip()
    assert gateway, f"no gateway for {net}"
    started = _docker(
        "run", "-d", "--rm", "--name", name, "--network", net, "--network-alias", "model.test",
        "--entrypoint", "node", image, "-e", forwarder_script(gateway, port),
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    return ModelNetwork(net, name)


def stop_model_network(up: ModelNetwork) -> None:
    _docker("rm", "-f", up.container)
    joined = _docker(
        "network", "inspect", "-f", "{{range $k, $v := .Containers}}{{$k}} {{end}}", up.network
    )
    for container in joined.stdout.split():  # the egress proxies that joined it
        _docker("network", "disconnect", "-f", up.network, container)
    _docker("network", "rm", up.network)


def bridge_gateway() -> str:
    """Where a sandbox on the default bridge reaches this host."""
    out = _docker("network", "inspect", "bridge", "-f", "{{(index .IPAM.Config 0).Gateway}}")
    return out.stdout.strip() or "172.17.0.1"
