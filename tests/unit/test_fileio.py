"""fileio.read_regular: bounded, never blocking, links only when asked."""

from __future__ import annotations

import os
from pathlib import Path

from aishell import fileio


def test_reads_a_regular_file_up_to_one_byte_past_the_limit(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"abcdef")
    assert fileio.read_regular(str(f), 10) == b"abcdef"
    assert fileio.read_regular(str(f), 3) == b"abcd"  # limit+1: the caller sees "longer"
    assert fileio.read_regular(str(tmp_path / "missing"), 3) is None


def test_a_fifo_a_device_and_a_directory_are_not_read(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert fileio.read_regular(str(fifo), 10) is None  # (an open without O_NONBLOCK blocks)
    assert fileio.read_regular("/dev/zero", 10) is None
    assert fileio.read_regular(str(tmp_path), 10) is None


def test_links_are_followed_only_when_asked(tmp_path: Path) -> None:
    target = tmp_path / "t"
    target.write_bytes(b"x")
    link = tmp_path / "l"
    link.symlink_to(target)
    assert fileio.read_regular(str(link), 10) is None
    assert fileio.read_regular(str(link), 10, follow_links=True) == b"x"
    zero = tmp_path / "z"
    zero.symlink_to("/dev/zero")
    assert fileio.read_regular(str(zero), 10, follow_links=True) is None


def test_read_fd_stops_one_byte_past_the_limit(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"0123456789")
    fd = os.open(f, os.O_RDONLY)
    try:
        assert fileio.read_fd(fd, 4) == b"01234"
    finally:
        os.close(fd)


def test_process_start_tells_this_process_from_none() -> None:
    mine = fileio.process_start(os.getpid())
    assert mine is not None and mine.isdigit()
    assert fileio.process_start(os.getpid()) == mine  # stable for one process
    assert fileio.process_start(2**22 + 12345) is None  # beyond pid_max: no such process
