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
from typing import TYPE_CHECKING, Final, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from aishell.engine.client import Engine
    from aishell.records import Record

TIMED_OUT: Final = 124


class Ended(NamedTuple):
    status: int
    timed_out: bool


def call(
    engine: Engine,
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    container: str | None,
    record: Record | None,
    timeout: float | None,
) -> Ended:
    log = None
    if record is not None:
        with contextlib.suppress(OSError):
            log = os.open(
                record.output_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600
            )
    lock = threading.Lock()
    streams = {1: sys.stdout, 2: sys.stderr}

    def sink(fd: int, chunk: bytes) -> None:
        with lock:
            stream = streams[fd]
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
                stream.buffer.write(chunk)
                stream.buffer.flush()
            if log is not None:
                with contextlib.suppress(OSError):
                    os.write(log, chunk)

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
        if log is not None:
            os.close(log)
    if expired.is_set():
        return Ended(TIMED_OUT, True)
    return Ended(status, False)
