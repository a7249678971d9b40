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


def from_exception(exc: OSError | UnicodeError) -> AishellError:
    """One clear error for a filesystem or encoding failure: what failed, on which
    file, and what to do."""
    import errno

    if isinstance(exc, UnicodeError):
        return AishellError(
            f"text that is not valid UTF-8 ({exc})",
            hint="check the file or output named above, or run again with --debug",
        )
    where = f" {exc.filename}" if exc.filename else ""
    reason = exc.strerror or str(exc) or type(exc).__name__
    hints = {
        errno.EROFS: "the file system is read-only: make it writable "
        "(for aishell's own files, or set AISHELL_HOME to a writable directory)",
        errno.ENOSPC: "the disk is full: free some space and run the command again",
        errno.EDQUOT: "the disk quota is used up: free some space and run the command again",
        errno.EACCES: "check the owner and permissions",
        errno.EPERM: "check the owner and permissions",
        errno.ENOENT: "check that the path exists",
    }
    return AishellError(
        f"cannot access{where}: {reason}",
        hint=hints.get(exc.errno or 0, "run again with --debug for details"),
    )
