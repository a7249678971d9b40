"""The only module that spawns the container engine's CLI.

Four verbs: `capture` (run, collect output), `stream` (run, hand each output
line to a callback), `call` (run with our stdio, return the status) and
`exec_` (replace this process). Failures that mean "no engine" or "engine not
answering" become one clear EngineError.

Every call but the interactive ones (`call`, `exec_`) has a timeout: questions and
quick changes (`capture`, `checked`, `capture_many`, `inspect_many`) `short_timeout()`
seconds, builds and fills (`stream`) `long_timeout()`; the environment variables
AISHELL_ENGINE_TIMEOUT and AISHELL_ENGINE_LONG_TIMEOUT change them. An engine that
does not answer in time ends in one EngineError; its CLI process is killed. Output
that is not UTF-8 is decoded with replacement characters, never an exception.
"""

from __future__ import annotations

import _socket  # the C module: `socket` builds enums on import, which costs a launch ~2 ms
import contextlib
import json
import os
import re
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from typing import IO, NoReturn

from aishell.engine.run_args import Flavour
from aishell.errors import EngineError
from aishell.tuples import NamedTuple

ENGINE_KINDS = ("docker", "podman")

_NOT_ANSWERING = (
    "cannot connect to the docker daemon",
    "is the docker daemon running",
    "error during connect",
    "cannot connect to podman",
    "unable to connect to podman",
)
_PERMISSION = "permission denied while trying to connect"

TIMEOUT_ENV = "AISHELL_ENGINE_TIMEOUT"
LONG_TIMEOUT_ENV = "AISHELL_ENGINE_LONG_TIMEOUT"
DEFAULT_TIMEOUT = 60.0  # inspections, listings, creating and removing things
DEFAULT_LONG_TIMEOUT = 3600.0  # builds, fills, waiting for another aishell's fill


def _seconds(variable: str, default: float) -> float:
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value < 1e9:  # (also refuses nan and inf)
        raise EngineError(
            f"{variable}={raw!r} is not a number of seconds",
            hint=f"set {variable} to a positive number, e.g. {variable}={default:g}, or unset it",
        )
    return value


def short_timeout() -> float:
    """Seconds a question or a quick change to the engine may take."""
    return _seconds(TIMEOUT_ENV, DEFAULT_TIMEOUT)


def long_timeout() -> float:
    """Seconds a build, a fill or waiting for another aishell may take."""
    return _seconds(LONG_TIMEOUT_ENV, DEFAULT_LONG_TIMEOUT)


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
        """Run and collect the output; `timeout` seconds at most (default
        `short_timeout()`)."""
        seconds = short_timeout() if timeout is None else timeout
        try:
            proc = subprocess.run(
                [self.binary, *args],
                input=input,
                capture_output=True,
                text=True,
                errors="replace",
                env=None if env is None else dict(env),
                stdin=None if input is not None else subprocess.DEVNULL,
                timeout=seconds,
                check=False,
            )
        except FileNotFoundError as exc:
            raise self._missing() from exc
        except OSError as exc:
            raise self._not_runnable(exc) from exc
        except ValueError as exc:
            raise _bad_argument(self, exc) from exc
        except subprocess.TimeoutExpired as exc:
            raise self.timed_out(args, seconds) from exc
        result = Result(proc.returncode, proc.stdout, proc.stderr)
        if not result.ok:
            self.raise_if_unreachable(result.stderr)
        return result

    def capture_many(self, *commands: Sequence[str], timeout: float | None = None) -> list[Result]:
        """Run several read-only commands at once (inspections on the launch path);
        all of them within `timeout` seconds (default `short_timeout()`)."""
        import time

        seconds = short_timeout() if timeout is None else timeout
        procs: list[subprocess.Popen[str]] = []
        try:
            for args in commands:
                procs.append(
                    subprocess.Popen(
                        [self.binary, *args],
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                        text=True,
                        errors="replace",
                    )
                )
            deadline = time.monotonic() + seconds
            results = []
            for proc, args in zip(procs, commands, strict=False):
                try:
                    out, err = proc.communicate(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired as exc:
                    raise self.timed_out(args, seconds) from exc
                results.append(Result(proc.returncode, out, err))
        except FileNotFoundError as exc:
            raise self._missing() from exc
        except OSError as exc:
            raise self._not_runnable(exc) from exc
        except ValueError as exc:
            raise _bad_argument(self, exc) from exc
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
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
                return _api_inspect(socket_path, queries, timeout=short_timeout())
            except TimeoutError as exc:
                # The CLI would wait on the same engine: say so now.
                raise self.timed_out((queries[0][0], "inspect"), short_timeout()) from exc
            except (OSError, ValueError):
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
        hold_stdin: bool = False,
        timeout: float | None = None,
    ) -> int:
        """Run with stdout+stderr merged, calling `on_line` for each line; `timeout`
        seconds at most (default `long_timeout()`), then the process is killed and
        EngineError raised. `hold_stdin`: the child's stdin is a pipe this process
        holds open until the child ends, so the child sees end-of-file as soon as
        this process is gone, however it ended (even SIGKILL). On Linux the engine
        CLI is killed when this process dies (a build then stops: the engine ends a
        build whose client is gone)."""
        import threading

        seconds = long_timeout() if timeout is None else timeout
        piped = stdin_text is not None or hold_stdin
        try:
            proc = subprocess.Popen(
                [self.binary, *args],
                stdin=subprocess.PIPE if piped else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                env=None if env is None else dict(env),
                preexec_fn=_dies_with_parent(),
            )
        except FileNotFoundError as exc:
            raise self._missing() from exc
        except OSError as exc:
            raise self._not_runnable(exc) from exc
        except ValueError as exc:
            raise _bad_argument(self, exc) from exc
        assert proc.stdout is not None
        if stdin_text is not None:
            assert proc.stdin is not None
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.write(stdin_text)
                proc.stdin.close()
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            proc.kill()

        timer = threading.Timer(seconds, expire)
        timer.daemon = True
        timer.start()
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
        finally:
            timer.cancel()
            status = proc.wait()
            if proc.stdin is not None:
                with contextlib.suppress(OSError):
                    proc.stdin.close()
        if expired.is_set():
            raise EngineError(
                f"'{self.name} {' '.join(args[:1])}' did not finish within {seconds:g}s",
                hint=f"check the {self.kind} engine ('{self.name} ps'); for a slow build or "
                f"install raise {LONG_TIMEOUT_ENV} (seconds)",
            )
        return status

    def call(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> int:
        """Run with our own stdin/stdout/stderr; return the exit status (128+N when
        the CLI was killed by signal N, as a shell reports it). SIGTERM, SIGHUP and
        SIGQUIT sent to aishell are passed on to the CLI (which passes them on to the
        container), so a child run ends the way an exec'd one would."""
        try:
            return run_passing_signals(
                lambda: subprocess.Popen(
                    [self.binary, *argv], env=None if env is None else dict(env)
                )
            )
        except FileNotFoundError as exc:
            raise self._missing() from exc
        except OSError as exc:
            raise self._not_runnable(exc) from exc
        except ValueError as exc:
            raise _bad_argument(self, exc) from exc

    def call_teed(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None,
        sink: Callable[[int, bytes], None],
    ) -> int:
        """`call` without a terminal (a headless run): stdin is /dev/null, and what the
        CLI writes to stdout (1) and stderr (2) goes to `sink` chunk by chunk as it
        arrives (`aishell run` shows and records it). Signals are passed on as `call`
        does."""
        import threading

        pumps: list[threading.Thread] = []

        def pump(fd: int, pipe: IO[bytes] | None) -> None:
            assert pipe is not None
            while True:
                try:
                    chunk = os.read(pipe.fileno(), 65536)
                except OSError:
                    break
                if not chunk:
                    break
                sink(fd, chunk)
            pipe.close()

        def start() -> subprocess.Popen[bytes]:
            proc = subprocess.Popen(
                [self.binary, *argv],
                env=None if env is None else dict(env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for fd, pipe in ((1, proc.stdout), (2, proc.stderr)):
                thread = threading.Thread(target=pump, args=(fd, pipe), daemon=True)
                thread.start()
                pumps.append(thread)
            return proc

        try:
            status = run_passing_signals(start)
        except FileNotFoundError as exc:
            raise self._missing() from exc
        except OSError as exc:
            raise self._not_runnable(exc) from exc
        except ValueError as exc:
            raise _bad_argument(self, exc) from exc
        for thread in pumps:
            thread.join()
        return status

    def exec_(self, argv: Sequence[str], *, env: Mapping[str, str]) -> NoReturn:
        """Replace this process with the engine CLI (signals and exit status are its own)."""
        from aishell import journal

        journal.close_current()  # this process ends here: its journal with it
        try:
            os.execve(self.binary, [self.binary, *argv], dict(env))
        except ValueError as exc:  # a NUL character in an argument or the environment
            raise EngineError(
                f"cannot run {self.name}: {exc}",
                hint="remove the NUL character from the configuration or the environment",
            ) from exc
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

    def timed_out(self, args: Sequence[str], seconds: float) -> EngineError:
        """The engine did not answer `args` within `seconds` (its CLI was killed)."""
        return EngineError(
            f"the {self.kind} engine did not answer within {seconds:g}s "
            f"('{self.name} {' '.join(args[:2])}')",
            hint=f"check that it is running ('{self.name} info'); "
            f"on a slow engine raise {TIMEOUT_ENV} (seconds)",
        )

    def _not_runnable(self, exc: OSError) -> EngineError:
        return EngineError(
            f"cannot run the container engine CLI '{self.binary}': {exc.strerror}",
            hint="check its permissions, or set AISHELL_ENGINE to the engine's CLI",
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


_FORWARDED = (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


def run_passing_signals(start: Callable[[], subprocess.Popen[bytes]]) -> int:
    """Start a child with `start` and wait for it, passing SIGTERM, SIGHUP and SIGQUIT
    on to it (one that arrives while it is being started is passed on once it runs) and
    riding out Ctrl-C (the terminal sends it to both; the engine CLI forwards it to the
    container). The exit status, 128+N when the child was killed by signal N."""
    child: list[subprocess.Popen[bytes]] = []
    pending: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        if not child:
            pending.append(signum)
            return
        with contextlib.suppress(OSError):
            child[0].send_signal(signum)

    previous = {}
    for signum in _FORWARDED:
        try:
            previous[signum] = signal.signal(signum, forward)
        except ValueError:  # not the main thread: leave the signals alone
            break
    try:
        child.append(start())
        for waiting in pending:
            forward(waiting, None)
        while True:
            try:
                status = child[0].wait()
                break
            except KeyboardInterrupt:
                continue
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 128 - status if status < 0 else status


_API_ENDPOINTS = {
    "image": "/images/{}/json",
    "volume": "/volumes/{}",
    "container": "/containers/{}/json",
}


def _api_inspect(
    socket_path: str, queries: Sequence[tuple[str, Sequence[str]]], *, timeout: float
) -> list[Result]:
    """`inspect_many` through the Docker API, one GET per object, answered as the CLI
    prints them: a JSON array of the objects found (their text as the engine sent it:
    checked, not parsed and written again), `Error: No such <kind>: <name>` for each
    missing one, exit 1 when any is missing. (One after the other: asked at once from
    threads they took longer, the engine's work for an image being CPU-bound.)"""
    results = []
    for kind, names in queries:
        found: list[str] = []
        missing: list[str] = []
        for name in names:
            path = _API_ENDPOINTS[kind].format(name)
            status, body = _api_get(socket_path, path, timeout=timeout)
            if status == 200:
                text = body.decode("utf-8", "replace")
                if not isinstance(json.loads(text), dict):  # (ValueError: the CLI explains)
                    raise ValueError(f"unexpected answer from the engine API for {name}")
                found.append(text)
            elif status == 404:
                missing.append(name)
            else:
                raise OSError(f"engine API answered {status}")
        stderr = "".join(f"Error: No such {kind}: {n}\n" for n in missing)
        stdout = f"[{','.join(found)}]\n" if found else "[]\n"
        results.append(Result(1 if missing else 0, stdout, stderr))
    return results


def _api_get(socket_path: str, path: str, *, timeout: float) -> tuple[int, bytes]:
    """One HTTP/1.0 GET on the engine's unix socket: (status, body)."""
    import time

    deadline = time.monotonic() + timeout
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(socket_path)
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n".encode())
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
            if time.monotonic() > deadline:  # an engine that trickles counts as hung
                raise TimeoutError(f"no complete answer within {timeout:g}s")
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


def _dies_with_parent() -> Callable[[], None] | None:
    """A `preexec_fn` that makes the child get SIGKILL when this process dies (Linux
    `prctl(PR_SET_PDEATHSIG)`); None where that does not exist. Used for builds and
    fills only: they are long, and may print nothing for minutes."""
    import sys

    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError, ImportError):
        return None
    parent = os.getpid()

    def set_pdeathsig() -> None:  # runs in the child, between fork and exec
        prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
        if os.getppid() != parent:  # the parent died before the prctl took effect
            os._exit(1)

    return set_pdeathsig


def _bad_argument(engine: Engine, exc: ValueError) -> EngineError:
    """subprocess refused an argument or environment value (a NUL character)."""
    return EngineError(
        f"cannot run {engine.name}: {exc}",
        hint="an argument or environment value holds a NUL character; "
        "remove it from the configuration or the environment",
    )


# The engine CLI's usage tip after an error ("Run 'docker run --help' for more
# information", "See 'docker run --help'."): never the cause.
_USAGE_TIP = r"^(?:Run|See) '[^']*--help'"
_ERROR_PREFIXES = ("docker: ", "podman: ", "Error: ", "Error response from daemon: ")


def engine_cause(text: str) -> str:
    """The line of an engine CLI's error output that says what went wrong: the last
    line that is not its usage tip, without the CLI's `docker: Error response from
    daemon:` prefixes ("" when there is none)."""
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not re.match(_USAGE_TIP, line)]
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
