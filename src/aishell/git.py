"""The few facts aishell reads from the host's git."""

from __future__ import annotations

import subprocess


def identity(cwd: str) -> tuple[str | None, str | None]:
    """(user.name, user.email) as git resolves them in `cwd`; None where unset."""
    try:
        proc = subprocess.run(
            ["git", "config", "--get-regexp", r"^user\.(name|email)$"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None, None
    name = email = None
    for line in proc.stdout.splitlines():
        key, _, value = line.partition(" ")
        if key == "user.name":
            name = value
        elif key == "user.email":
            email = value
    return name, email
