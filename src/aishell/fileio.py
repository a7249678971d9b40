"""Reading files that someone else may have placed: bounded, never blocking.

A file in the project, or anything the sandbox could reach, is untrusted: a FIFO there
would block an open, a link to /dev/zero would never end a read. `read_regular` opens
without blocking, reads only a regular file, and only so far (`read_fd` is its bounded
read, for callers that open the file themselves). `process_start` reads /proc to tell
a live process from a later one with the same PID.
"""

from __future__ import annotations

import os
import stat

_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_NOCTTY = getattr(os, "O_NOCTTY", 0)


def read_regular(path: str, limit: int, *, follow_links: bool = False) -> bytes | None:
    """The first `limit`+1 bytes of the regular file `path` (so a caller can tell a
    longer file); None for anything else or on any error. A symlink is followed only
    with `follow_links` (for the user's own files)."""
    flags = os.O_RDONLY | _O_NONBLOCK | _O_NOCTTY | os.O_CLOEXEC
    if not follow_links:
        flags |= _O_NOFOLLOW
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return read_fd(fd, limit)
    except OSError:
        return None
    finally:
        os.close(fd)


def read_fd(fd: int, limit: int) -> bytes:
    """At most `limit`+1 bytes from the open file `fd` (so a caller can tell a longer
    file); OSError as the read raises it."""
    chunks: list[bytes] = []
    left = limit + 1
    while left > 0:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def process_start(pid: int) -> str | None:
    """When process `pid` started (field 22 of /proc/PID/stat, in clock ticks since
    boot): with the PID it tells a live process from a later one that reuses the PID.
    None when there is no such process (or no /proc)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2 :].split()
    return fields[19].decode() if len(fields) > 19 else None
