"""Reading the engine's view of aishell containers."""

from __future__ import annotations

import json
from typing import Any


def parse_inspect(stdout: str) -> dict[str, Any] | None:
    try:
        items = json.loads(stdout)
    except json.JSONDecodeError:
        return None
    return items[0] if items else None
