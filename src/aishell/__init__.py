"""aishell: run AI coding agents in throw-away containers."""

from __future__ import annotations

__version__ = "0.1.0"
