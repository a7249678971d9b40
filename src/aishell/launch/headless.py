"""`aishell run`: the agent in its headless mode, its output streamed and recorded.

The engine CLI runs as a child without a terminal (stdin /dev/null); what the agent
writes to stdout and stderr is passed to aishell's own stdout and stderr as it arrives
and appended, in arrival order, to the session record's `output.log`. With a time
limit the container is stopped when it is reached (the status is then 124, as
timeout(1) reports it).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from typing import TYPE_CHECKING, Final

from aishell.tuples import NamedTuple

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from aishell.engine.client import Engine
    from aishell.records import Record

TIMED_OUT: Final = 124
# The most of an agent's output a record keeps (the rest is still shown): an agent that
# prints without end must not fill the disk through its record.
MAX_RECORDED: Final = 64 * 1024 * 1024


class OutputLog:
    """The record's output.log: appended to until `limit` bytes, then a last line says
    that the rest was not recorded (`truncated`)."""

    def __init__(self, path: str | os.PathLike[str] | None, limit: int = MAX_RECORDED) -> None:
        self.limit = limit
        self.written = 0
        self.truncated = False
        self.fd: int | None = None
        if path is not None:
            with contextlib.suppress(OSError):
                self.fd = os.open(
                    path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600
                )

    def write(self, chunk: bytes) -> None:
        if self.fd is None or self.truncated:
            return
        room = self.limit - self.written
        part = chunk[:room]
        with contextlib.suppress(OSError):
            os.write(self.fd, part)
        self.written += len(part)
        if len(chunk) > room:
            self.truncated = True
            with contextlib.suppress(OSError):
                os.write(
                    self.fd,
                    f"\n[aishell: output beyond {self.limit} bytes not recorded]\n".encode(),
                )

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class Ended(NamedTuple):
    status: int
    timed_out: bool
    output_truncated: bool = False


def call(
    engine: Engine,
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    container: str | None,
    record: Record | None,
    timeout: float | None,
) -> Ended:
    log = OutputLog(record.output_path if record is not None else None)
    lock = threading.Lock()
    streams = {1: sys.stdout, 2: sys.stderr}
    last = [b"\n"]  # the last byte the agent wrote to stdout

    def sink(fd: int, chunk: bytes) -> None:
        with lock:
            if fd == 1 and chunk:
                last[0] = chunk[-1:]
            stream = streams[fd]
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
                stream.buffer.write(chunk)
                stream.buffer.flush()
            log.write(chunk)

    expired = threading.Event()
    timer = None
    if timeout is not None and container:

        def stop() -> None:
            expired.set()
            with contextlib.suppress(Exception):
                engine.capture("stop", "-t", "5", container, timeout=60)

        timer = threading.Timer(timeout, stop)
        timer.daemon = True
        timer.start()
    try:
        status = engine.call_teed(argv, env=env, sink=sink)
    finally:
        if timer is not None:
            timer.cancel()
        log.close()
    if record is not None:
        record.open_line = last[0] != b"\n"
    if expired.is_set():
        return Ended(TIMED_OUT, True, log.truncated)
    return Ended(status, False, log.truncated)
