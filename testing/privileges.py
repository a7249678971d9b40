"""Run permission-dependent tests for real, even as root.

Root bypasses file permissions through CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH.
A test decorated with `@permissions_enforced` that finds itself with those
capabilities re-runs itself in a child pytest whose capability bounding set
lacks them (`setpriv`), so "permission denied" paths are exercised instead of
skipped, and the outer test fails if the inner one does.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_DAC_BITS = (1 << 1) | (1 << 2)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH


def bypasses_permissions() -> bool:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) & _DAC_BITS)
    return os.geteuid() == 0


def permissions_enforced(test: F) -> F:
    @functools.wraps(test)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not bypasses_permissions():
            return test(*args, **kwargs)
        nodeid = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" (", 1)[0]
        assert nodeid, "PYTEST_CURRENT_TEST is not set"
        setpriv = shutil.which("setpriv")
        assert setpriv, "setpriv (util-linux) is needed to drop CAP_DAC_* as root"
        result = subprocess.run(
            [
                setpriv,
                "--bounding-set",
                "-dac_override,-dac_read_search",
                "--",
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "-p",
                "no:xdist",
                nodeid,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
        assert " passed" in result.stdout, result.stdout[-3000:]
        return None

    return wrapper  # type: ignore[return-value]
