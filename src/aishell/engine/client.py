"""The only module that spawns the container engine's CLI.

Four verbs: `capture` (run, collect output), `stream` (run, hand each output
line to a callback), `call` (run with our stdio, return the status) and
`exec_` (replace this process). Failures that mean "no engine" or "engine not
answering" become one clear EngineError.
"""

from __future__ import annotations

import _socket  # the C module: `socket` builds enums on import, which costs a launch ~2 ms
import contextlib
import json
import os
import re
import subprocess
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from typing import NamedTuple, NoReturn

from aishell.engine.run_args import Flavour
from aishell.errors import EngineError

ENGINE_KINDS = ("docker", "podman")

_NOT_ANSWERING = (
    "cannot connect to the docker daemon",
    "is the docker daemon running",
    "error during connect",
    "cannot connect to podman",
    "unable to connect to podman",
)
_PERMISSION = "permission denied while trying to connect"


class Result(NamedTuple):
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class Engine(NamedTuple):
    binary: str  # absolute path of the CLI
    kind: str  # "docker" or "podman"

    @property
    def name(self) -> str:
        return os.path.basename(self.binary)

    @property
    def rootless(self) -> bool:
        """Rootless Podman: the host user's own engine, its UIDs mapped into a range.
        (A local podman run by a non-root user is rootless; no engine call needed.)"""
        return self.kind == "podman" and os.geteuid() != 0

    @property
    def flavour(self) -> Flavour:
        """What `build_run_args` must know about this engine."""
        return Flavour(kind=self.kind, rootless=self.rootless, selinux=selinux_enforcing())

    # -- verbs ---------------------------------------------------------------

    def capture(
        self,
        *args: str,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Result:
        try:
            proc = subprocess.run(
                [self.binary, *args],
                input=input,
                capture_output=True,
                text=True,
                env=None if env is None else dict(env),
                stdin=None if input is not None else subprocess.DEVNULL,
                timeout=timeout,
                check=False,
            )
        except FileNotFoundError as exc:
            raise self._missing() from exc
        except subprocess.TimeoutExpired as exc:
            raise EngineError(
                f"'{self.name} {' '.join(args[:2])}' did not answer within {timeout:.0f}s",
                hint=f"check that the {self.kind} engine is running ('{self.name} info')",
            ) from exc
        result = Result(proc.returncode, proc.stdout, proc.stderr)
        if not result.ok:
            self.raise_if_unreachable(result.stderr)
        return result

    def capture_many(self, *commands: Sequence[str]) -> list[Result]:
        """Run several read-only commands at once (inspections on the launch path)."""
        procs = []
        for args in commands:
            try:
                procs.append(
                    subprocess.Popen(
                        [self.binary, *args],
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                        text=True,
                    )
                )
            except FileNotFoundError as exc:
                raise self._missing() from exc
        results = []
        for proc in procs:
            out, err = proc.communicate()
            results.append(Result(proc.returncode, out, err))
        for result in results:
            if not result.ok:
                self.raise_if_unreachable(result.stderr)
        return results

    def inspect_many(self, *queries: tuple[str, Sequence[str]]) -> list[Result]:
        """Inspect objects ("image"/"volume"/"container", names) as `<cli> <kind> inspect`
        would print them. Read-only; on the launch path, so it asks the Docker API
        socket directly when it can (a CLI start costs more than the whole query)."""
        socket_path = self._api_socket()
        if socket_path is not None:
            try:
                return [self._api_inspect(socket_path, kind, names) for kind, names in queries]
            except OSError:
                pass  # fall back to the CLI, which explains what is wrong
        return self.capture_many(*[[kind, "inspect", *names] for kind, names in queries])

    def _api_socket(self) -> str | None:
        if self.kind != "docker" or os.environ.get("DOCKER_CONTEXT"):
            return None
        host = os.environ.get("DOCKER_HOST", "")
        if host and not host.startswith("unix://"):
            return None
        path = host.removeprefix("unix://") or "/var/run/docker.sock"
        if not host and os.path.exists(os.path.expanduser("~/.docker/config.json")):
            return None  # the CLI may be pointed at another context; let it decide
        return path if os.path.exists(path) else None

    def _api_inspect(self, socket_path: str, kind: str, names: Sequence[str]) -> Result:
        endpoint = {
            "image": "/images/{}/json",
            "volume": "/volumes/{}",
            "container": "/containers/{}/json",
        }[kind]
        found: list[object] = []
        missing: list[str] = []
        for name in names:
            status, body = _api_get(socket_path, endpoint.format(name))
            if status == 200:
                found.append(json.loads(body))
            elif status == 404:
                missing.append(name)
            else:
                raise OSError(f"engine API answered {status}")
        stderr = "".join(f"Error: No such {kind}: {n}\n" for n in missing)
        return Result(1 if missing else 0, json.dumps(found) if found else "[]\n", stderr)

    def checked(
        self,
        *args: str,
        what: str,
        hint: str | None = None,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Result:
        """`capture`, raising EngineError (with the engine's output) on failure."""
        result = self.capture(*args, input=input, env=env, timeout=timeout)
        if not result.ok:
            raise EngineError(
                f"{what} failed: {first_line(result.stderr) or f'exit {result.returncode}'}",
                hint=hint,
                details=result.stderr.strip() or result.stdout.strip() or None,
            )
        return result

    def stream(
        self,
        args: Sequence[str],
        on_line: Callable[[str], None],
        *,
        env: Mapping[str, str] | None = None,
        stdin_text: str | None = None,
    ) -> int:
        """Run with stdout+stderr merged, calling `on_line` for each line."""
        try:
            proc = subprocess.Popen(
                [self.binary, *args],
                stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                env=None if env is None else dict(env),
            )
        except FileNotFoundError as exc:
            raise self._missing() from exc
        assert proc.stdout is not None
        if stdin_text is not None:
            assert proc.stdin is not None
            proc.stdin.write(stdin_text)
            proc.stdin.close()
        try:
            for line in proc.stdout:
                on_line(line.rstrip("\n"))
        except BaseException:
            proc.kill()
            proc.wait()
            with contextlib.suppress(Exception):  # what it printed before it ended
                for line in proc.stdout:
                    on_line(line.rstrip("\n"))
            raise
        return proc.wait()

    def call(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> int:
        """Run with our own stdin/stdout/stderr; return the exit status."""
        try:
            proc = subprocess.Popen([self.binary, *argv], env=None if env is None else dict(env))
        except FileNotFoundError as exc:
            raise self._missing() from exc
        while True:
            try:
                return proc.wait()
            except KeyboardInterrupt:
                # The engine CLI forwards the signal to the container; keep waiting.
                continue

    def exec_(self, argv: Sequence[str], *, env: Mapping[str, str]) -> NoReturn:
        """Replace this process with the engine CLI (signals and exit status are its own)."""
        try:
            os.execve(self.binary, [self.binary, *argv], dict(env))
        except OSError as exc:
            raise EngineError(f"cannot run {self.binary}: {exc.strerror}") from exc

    # -- failure classification -------------------------------------------

    def raise_if_unreachable(self, stderr: str) -> None:
        low = stderr.lower()
        stderr = "\n".join(dict.fromkeys(stderr.strip().splitlines()))
        if _PERMISSION in low:
            raise EngineError(
                f"no permission to talk to the {self.kind} engine",
                hint="add yourself to the docker group ('sudo usermod -aG docker $USER', "
                "then log out and back in), or set AISHELL_ENGINE=podman",
                details=stderr.strip(),
            )
        if any(marker in low for marker in _NOT_ANSWERING):
            pointed = self._pointed_at()
            if pointed:
                raise EngineError(
                    f"the {self.kind} engine at {pointed} is not answering",
                    hint=f"start that engine or correct {pointed.split('=')[0]}; "
                    f"unset it to use the local engine; check with '{self.name} info'",
                    details=stderr.strip(),
                )
            raise EngineError(
                f"the {self.kind} engine is not answering",
                hint=f"start it (e.g. 'sudo systemctl start {self.kind}') "
                f"and check with '{self.name} info'",
                details=stderr.strip(),
            )

    def _pointed_at(self) -> str | None:
        """`NAME=value` of the variable that points the CLI at a (remote) engine."""
        names = ("DOCKER_HOST", "DOCKER_CONTEXT") if self.kind == "docker" else ("CONTAINER_HOST",)
        for name in names:
            if os.environ.get(name):
                return f"{name}={os.environ[name]}"
        return None

    def _missing(self) -> EngineError:
        return EngineError(
            f"the container engine CLI '{self.binary}' was not found",
            hint="install Docker (https://docs.docker.com/engine/install/) "
            "or set AISHELL_ENGINE to the engine's CLI",
        )


def _api_get(socket_path: str, path: str) -> tuple[int, bytes]:
    """One HTTP/1.0 GET on the engine's unix socket: (status, body)."""
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(20)
        sock.connect(socket_path)
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n".encode())
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    finally:
        sock.close()
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ", 2)[1])
    except (IndexError, ValueError) as exc:
        raise OSError("unreadable answer from the engine API") from exc
    if b"transfer-encoding: chunked" in head.lower():
        raise OSError("chunked answer from the engine API")
    return status, body


# The engine CLI's usage tip after an error ("Run 'docker run --help' for more
# information", "See 'docker run --help'."): never the cause.
_USAGE_TIP = re.compile(r"^(?:Run|See) '[^']*--help'")
_ERROR_PREFIXES = ("docker: ", "podman: ", "Error: ", "Error response from daemon: ")


def engine_cause(text: str) -> str:
    """The line of an engine CLI's error output that says what went wrong: the last
    line that is not its usage tip, without the CLI's `docker: Error response from
    daemon:` prefixes ("" when there is none)."""
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not _USAGE_TIP.match(line)]
    if not lines:
        return ""
    cause = lines[-1]
    changed = True
    while changed:
        changed = False
        for prefix in _ERROR_PREFIXES:
            if cause.startswith(prefix):
                cause, changed = cause[len(prefix) :], True
    return cause


def first_line(text: str) -> str:
    for line in text.splitlines():
        line = line.strip()
        if line:
            return line.removeprefix("Error: ").removeprefix("Error response from daemon: ")
    return ""


@cache
def selinux_enforcing() -> bool:
    """SELinux enforcing on this host (bind mounts then need relabelling)."""
    try:
        with open("/sys/fs/selinux/enforce", "rb") as fh:
            return fh.read(1) == b"1"
    except OSError:
        return False
