"""Expected failures. Each carries a one-line message that says what to do next."""

from __future__ import annotations

from aishell.constants import EXIT_ERROR, EXIT_USAGE


class AishellError(RuntimeError):
    """An expected failure: printed as one `Error:` line, exit code `exit_code`."""

    exit_code = EXIT_ERROR

    def __init__(self, message: str, *, hint: str | None = None, details: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = details  # e.g. the engine's output, shown before the Error line


class UsageError(AishellError):
    """Bad command-line usage (exit 2)."""

    exit_code = EXIT_USAGE


class ConfigError(AishellError):
    """Invalid configuration file."""


class EngineError(AishellError):
    """The container engine is missing, not answering, or failed."""


class Aborted(AishellError):
    """The user declined to continue."""
