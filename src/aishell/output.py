"""The only module that writes to the terminal.

aishell's own messages (progress, warnings, errors) go to stderr so that the
stdout of `aishell exec` stays the command's own. Data that a user asked for
(`ps`, `info`, `--json`) goes to stdout through `out()`.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from types import TracebackType


def _color_enabled(stream: TextIO) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return stream.isatty() and os.environ.get("TERM", "") != "dumb"


def style(text: str, code: str, stream: TextIO | None = None) -> str:
    """Wrap `text` in an ANSI SGR `code` (e.g. "1;31") when colour is on."""
    if _color_enabled(stream or sys.stderr):
        return f"\033[{code}m{text}\033[0m"
    return text


def out(text: str = "") -> None:
    """Write a line of requested data to stdout."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def info(text: str = "") -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def warn(text: str) -> None:
    sys.stderr.write(style("Warning:", "33", sys.stderr) + " " + text + "\n")
    sys.stderr.flush()


def error(text: str) -> None:
    sys.stderr.write(style("Error:", "1;31", sys.stderr) + " " + text + "\n")
    sys.stderr.flush()


def raw_err(text: str) -> None:
    """Write text to stderr as it is (engine output shown on failure)."""
    sys.stderr.write(text if text.endswith("\n") or not text else text + "\n")
    sys.stderr.flush()


def interactive_terminal() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def ask_yes_no(question: str) -> bool:
    """Ask on the terminal; only y/yes (any case) counts as yes."""
    sys.stderr.write(question + " [y/N]: ")
    sys.stderr.flush()
    try:
        answer = sys.stdin.readline()
    except KeyboardInterrupt:
        sys.stderr.write("\n")
        return False
    return answer.strip().lower() in {"y", "yes"}


def wait_for_enter(prompt: str) -> None:
    """Wait until the user presses Enter (Ctrl-C raises KeyboardInterrupt)."""
    sys.stderr.write(prompt)
    sys.stderr.flush()
    sys.stdin.readline()


def format_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s"


class Progress:
    """Progress display for a long operation.

    - terminal (and `CI` unset): a spinner line with the elapsed time and the
      latest status, replaced by a final line when done;
    - not a terminal or `CI` set: one line at start and one at the end;
    - verbose: the operation streams its own output; we print start and end.
    """

    _FRAMES = "|/-\\"

    def __init__(self, title: str, *, verbose: bool = False, stream: TextIO | None = None):
        self.title = title
        self.verbose = verbose
        self.stream = stream or sys.stderr
        self.status = ""
        self.done_message: str | None = None  # the final line instead of "<title>: done"
        self._start = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.animated = not verbose and self.stream.isatty() and not os.environ.get("CI")

    def __enter__(self) -> Progress:
        self._start = time.monotonic()
        if self.animated:
            self._thread = threading.Thread(target=self._spin, daemon=True)
            self._thread.start()
        else:
            self.stream.write(f"{self.title}...\n")
            self.stream.flush()
        return self

    def update(self, status: str) -> None:
        self.status = status

    def _spin(self) -> None:
        i = 0
        while not self._stop.wait(0.1):
            elapsed = format_duration(time.monotonic() - self._start)
            status = f" {self.status}" if self.status else ""
            line = f"{self._FRAMES[i % 4]} {self.title}{status} ({elapsed})"
            width = _terminal_width(self.stream)
            self.stream.write("\r\033[K" + line[: width - 1])
            self.stream.flush()
            i += 1

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self.stream.write("\r\033[K")
        elapsed = format_duration(time.monotonic() - self._start)
        if exc_type is None:
            self.stream.write(f"{self.done_message or self.title + ': done'} ({elapsed})\n")
        else:
            self.stream.write(f"{self.title}: failed ({elapsed})\n")
        self.stream.flush()


def _terminal_width(stream: TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError):
        return 80
