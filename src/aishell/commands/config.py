"""`aishell config [--json]`: the effective configuration of this project, merged from
the global and the project file, with the file and line each value came from.

Read-only. With an invalid file it shows the error (exit 1), like every launch would.
The values and origins come from `config.origins` (pure); this module only renders.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aishell import config as config_mod
from aishell import output, paths, report_json
from aishell.commands._args import parser
from aishell.constants import EXIT_ERROR, EXIT_OK

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


def where(origin: Mapping[str, Any], home: str) -> str:
    """`~/.aishell/config.yaml:3` for an origin `{file, line}`."""
    path = str(origin.get("file") or "?")
    if home and (path == home or path.startswith(home.rstrip("/") + "/")):
        path = "~" + path[len(home.rstrip("/")) :]
    line = origin.get("line")
    return f"{path}:{line}" if line else path


def _short(value: Any) -> str:
    if isinstance(value, dict) and {"source", "target", "readonly"} <= value.keys():  # a mount
        text = (
            value["source"]
            if value["source"] == value["target"]
            else (f"{value['source']}:{value['target']}")
        )
        return text + (":ro" if value["readonly"] else "")
    return json.dumps(value, ensure_ascii=False)


def render(keys: Mapping[str, Mapping[str, Any]], *, home: str) -> list[str]:
    """One block per key: `key: value  (file:line)`, list items and map entries on
    their own lines with their own origins; unset keys last, as `(default)`."""
    lines: list[str] = []
    defaults: list[str] = []
    for name, entry in keys.items():
        value = entry.get("value")
        origins = entry.get("origins")
        if origins is None:
            defaults.append(f"  {name}: {_short(value)}")
            continue
        if isinstance(value, list) and len(origins) == len(value) and value:
            lines.append(f"{name}:")
            for item, origin in zip(value, origins, strict=True):
                lines.append(f"  - {_short(item)}  ({where(origin, home)})")
        elif isinstance(value, dict) and origins and all("key" in o for o in origins):
            lines.append(f"{name}:")
            for origin in origins:
                key = origin["key"]
                lines.append(f"  {key}: {_short(value.get(key))}  ({where(origin, home)})")
        else:
            places = ", ".join(where(o, home) for o in origins) or "set empty"
            lines.append(f"{name}: {_short(value)}  ({places})")
    if defaults:
        lines.append("Defaults (no file sets them):")
        lines.extend(defaults)
    return lines


def main(argv: Sequence[str]) -> int:
    p = parser(
        "aishell config",
        "Show the effective configuration of this project (global file merged with the "
        "project's) and the file and line each value came from.",
    )
    p.add_argument("--json", action="store_true", help="print JSON (see docs/json-output.md)")
    ns = p.parse_args(list(argv))

    project = report_json.current_project()
    report = config_mod.inspect_config(
        aishell_home=paths.aishell_home(),
        project_root=Path(project.root),
        expansion=config_mod.Expansion.from_host(),
    )
    files = [
        {"scope": f.scope, "path": f.path, "exists": f.exists, "error": f.error}
        for f in report.files
    ]
    keys = (
        config_mod.origins(report.part("global"), report.part("project"))
        if report.config is not None
        else None
    )
    if ns.json:
        report_json.emit(
            {"project": project.root, "valid": keys is not None, "files": files, "keys": keys}
        )
        return EXIT_OK if keys is not None else EXIT_ERROR
    home = str(paths.user_home())
    for f in report.files:
        state = "invalid" if f.error else ("loaded" if f.exists else "not present")
        output.out(f"# {f.scope} config: {where({'file': f.path}, home)} ({state})")
    if keys is None:
        output.error(report.error or "the configuration is invalid")
        return EXIT_ERROR
    for line in render(keys, home=home):
        output.out(line)
    return EXIT_OK
