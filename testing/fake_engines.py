"""Fake engine *binaries* for integration tests: shell scripts put where aishell looks
for its engine CLI (AISHELL_ENGINE=<path>), which hang, print bytes that are not UTF-8,
fail, lie, or do something just before handing over to the real engine.

Unlike `testing/fake_engine.FakeEngine` (an in-process stand-in for unit tests), these
run as real processes: aishell spawns them exactly as it spawns docker or podman.
"""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path

# The whole CLI hangs (a daemon that stopped answering, a stuck credential helper).
HANG = "exec sleep 3600\n"
# Every call prints bytes that are not UTF-8, on both streams, and fails.
GARBAGE = "printf '\\377\\376\\200 garbage \\351t\\351\\n'\nprintf '\\377\\200\\n' >&2\nexit 1\n"
# Every call fails the way an engine error does.
FAIL = "echo 'Error response from daemon: something broke inside the engine' >&2\nexit 1\n"


def write_engine(directory: Path, body: str, *, kind: str = "docker") -> Path:
    """An executable `<directory>/<kind>` running `body` (sh; "$@" are aishell's args).
    Readable and runnable by every user (the tests run aishell as a non-root user too)."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o755)
    path = directory / kind
    path.write_text("#!/bin/sh\n" + body)
    os.chmod(path, 0o755)
    return path


def real_engine(kind: str = "docker") -> str:
    found = shutil.which(kind)
    assert found, f"{kind} is not installed"
    return found


def wrapper(directory: Path, before_run: str = "", *, on_run: str | None = None,
            kind: str = "docker") -> Path:  # fmt: skip
    """An engine CLI that is the real one, except for `run`: `before_run` (shell) runs
    first and then the real `run`, or `on_run` runs instead of it."""
    real = shlex.quote(real_engine(kind))
    body = f'if [ "$1" = run ]; then\n{before_run}\n'
    body += on_run if on_run is not None else f'exec {real} "$@"\n'
    body += f'fi\nexec {real} "$@"\n'
    return write_engine(directory, body, kind=kind)
