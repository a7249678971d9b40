"""Validation of the version pins given to `setup --with-X=VERSION`."""

from __future__ import annotations

import re

from aishell.errors import UsageError

LATEST = "latest"

_NUM = r"(?:0|[1-9][0-9]*)"
_SEMVER = re.compile(rf"^{_NUM}\.{_NUM}\.{_NUM}(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$", re.ASCII)
_SHELL_META = set(";&|`$()[]{}<>!\\\"' \t\n*?~#")


def parse_pin(label: str, value: str | None) -> str:
    """Turn the value of `--with-X[=VALUE]` into a pin: "latest" or X.Y.Z[-pre][+build]."""
    if value is None or value in {"", "true", LATEST}:
        return LATEST
    if any(ch in _SHELL_META for ch in value):
        raise UsageError(
            f"invalid {label} version {value!r}: it contains shell metacharacters",
            hint="give a version like 1.2.3 or 1.2.3-beta.1, or leave it out for the latest",
        )
    if not _SEMVER.match(value):
        raise UsageError(
            f"invalid {label} version {value!r}: expected X.Y.Z or X.Y.Z-prerelease",
            hint="for example 2.0.22 or 1.0.0-beta.1; leave it out for the latest",
        )
    return value
