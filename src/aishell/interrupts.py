"""Signals that end aishell: SIGTERM and SIGHUP raise `Terminated`.

Python's default for SIGTERM ends the process on the spot, skipping every `finally`
and `except` that removes what a command made (a fill container, a half-filled
volume, a build's images). `install()` turns SIGTERM and SIGHUP into `Terminated`,
a KeyboardInterrupt, so the same clean-up that runs on Ctrl-C runs for them.
SIGKILL cannot be caught: what a killed aishell leaves is collected by the next
aishell command (`engine/leftovers.py`).
"""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import FrameType

EXIT_TERMINATED = 143  # 128 + SIGTERM


class Terminated(KeyboardInterrupt):
    """aishell was asked to end (SIGTERM or SIGHUP)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _raise_terminated(signum: int, _frame: FrameType | None) -> None:
    raise Terminated(signum)


def install() -> None:
    """From now on SIGTERM and SIGHUP raise `Terminated` (main thread only)."""
    for signum in (signal.SIGTERM, signal.SIGHUP):
        try:
            if signal.getsignal(signum) is signal.SIG_IGN:
                continue  # e.g. started with nohup: keep ignoring it
            signal.signal(signum, _raise_terminated)
        except ValueError:  # not the main thread
            return
