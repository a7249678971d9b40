"""Rendering helpers shared by the inspection commands (`ps`, `volumes`, `info`, `check`).

Each of those commands first computes plain data (dicts, lists, strings, numbers,
booleans, None) and then renders it either as text or, with `--json`, as one JSON
document on stdout. The JSON shapes are documented in docs/json-output.md; change
them only compatibly (add keys, never rename or drop one).
"""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Any

from aishell import hostfacts, output, paths
from aishell import project as project_mod

if TYPE_CHECKING:
    from collections.abc import Sequence

    from aishell.project import Project


def dumps(data: Any) -> str:
    """The JSON text of `data`: two-space indent, keys in the order the command built them."""
    return json.dumps(data, indent=2, ensure_ascii=False)


def emit(data: Any) -> None:
    """Write `data` as JSON to stdout (and nothing else)."""
    output.out(dumps(data))


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, indent: str = "") -> list[str]:
    """Left-aligned columns separated by two spaces; the last column is not padded."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells: Sequence[str]) -> str:
        padded = [cell.ljust(widths[i]) for i, cell in enumerate(cells[:-1])]
        return (indent + "  ".join([*padded, cells[-1]])).rstrip()

    return [line(headers), *(line(row) for row in rows)]


def logical_cwd() -> str:
    """The working directory as the user typed it ($PWD) when it is the real one."""
    return hostfacts.logical_cwd(dict(os.environ))


def current_project() -> Project:
    """The project the current directory belongs to (same rules as a launch)."""
    return project_mod.resolve(logical_cwd(), aishell_home=str(paths.aishell_home()))


def stdout_is_utf8() -> bool:
    encoding = (
        (getattr(sys.stdout, "encoding", None) or "").lower().replace("-", "").replace("_", "")
    )
    return encoding in {"utf8", "utf8sig"}
