"""`aishell info [--json]`: the project, its image stack, the installed agents, the files.

Read-only. Works without a container engine: what needs the engine (does an
image exist, is it current, does the harness volume exist) is then `unknown`
(null in JSON), with a note saying why. The facts come from `discovery.gather()`
(shared with `aishell check`); the `*_json` / `render_*` functions here are pure.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from aishell import __version__, netpolicy, output, paths, report_json, trust
from aishell.commands._args import Parser, parser
from aishell.discovery import Gathered, config_paths, gather, stack_of, volume_ready
from aishell.engine.images import short_id
from aishell.harnesses import TOOLS

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


def info_json(g: Gathered) -> dict[str, Any]:
    st = g.state
    record = st.volumes.get(g.volume_name) if st and g.volume_name else None
    versions = record.versions if record else {}
    harnesses = {}
    for tool in TOOLS:
        enabled = bool(st and tool.name in st.tools)
        harnesses[tool.name] = {
            "label": tool.label,
            "harness": tool.harness,
            "enabled": enabled,
            "pin": st.tools.get(tool.name) if st else None,
            "version": versions.get(tool.name) if enabled else None,
            "config_paths": config_paths(
                tool.name,
                g.home,
                project_key=g.project.store_key,
                aishell_home=g.aishell_home,
                share=dict(g.config.share_logins) if g.config else None,
            )
            if enabled
            else [],
        }
    last_scan = st.gitleaks_scans.get(g.project.canonical) if st else None
    return {
        "aishell_version": __version__,
        "project": {
            "root": g.project.root,
            "canonical": g.project.canonical,
            "hash": g.project.hash,
            "container_prefix": g.project.container_prefix,
            "extension_tag": g.holds.tag(g.project.extension_role),
        },
        "engine": {
            "cli": g.engine.binary if g.engine else None,
            "kind": g.engine.kind if g.engine else None,
            "answering": g.engine_answers,
            "server_version": g.server_version,
            "error": g.engine_error,
        },
        "images": stack_of(g),
        "harness_volume": {
            "name": g.volume_name,
            "exists": (g.volume_item is not None) if g.volume_known else None,
            "ready": volume_ready(st, g.volume_name, g.volume_item) if g.volume_known else None,
        },
        "harnesses": harnesses,
        "gitleaks": {
            "installed": bool(st and st.gitleaks),
            "last_scan": last_scan,
        },
        "files": {
            "aishell_home": g.aishell_home,
            "state_file": g.state_file,
            "state_found": st is not None,
            "state_error": g.state_error,
            "build_time": (st.build_time or None) if st else None,
            "config": [
                {"scope": f.scope, "path": f.path, "exists": f.exists, "error": f.error}
                for f in g.config_files
            ],
            "config_in_effect": list(g.config.sources) if g.config else [],
            "config_error": g.config_error,
        },
        "network": _network_json(g),
        "trust": trust.status_json(g.trust, g.trust_error),
    }


def _network_json(g: Gathered) -> dict[str, Any] | None:
    """The effective egress policy (None when the configuration does not load)."""
    if g.config is None:
        return None
    tools = list(g.state.tools) if g.state is not None else []
    return netpolicy.policy_json(netpolicy.effective_policy(g.config.network, tools))


def _yes_no_unknown(value: bool | None, yes: str, no: str) -> str:
    return "unknown" if value is None else (yes if value else no)


def _tier_line(tier: Mapping[str, Any], *, foundation: bool = False) -> str:
    if tier.get("configured") is False:
        return "not configured"
    if tier["exists"] is None:
        return "unknown"
    if not tier["exists"]:
        return "missing (run 'aishell setup')" if foundation else "missing (built on next launch)"
    stale = (
        "out of date (run 'aishell update')"
        if foundation
        else "out of date (rebuilt on next launch)"
    )
    state = _yes_no_unknown(tier["current"], "current", stale)
    if tier.get("held") is False:
        return f"not held yet (held on next launch), {state}"
    return f"present, {state}"


def _short(ident: str | None) -> str:
    return short_id(ident) if ident else "-"


def render_info(data: Mapping[str, Any]) -> list[str]:
    home = str(paths.user_home())

    def short(path: str | None) -> str:
        if not path:
            return "-"
        return "~" + path[len(home) :] if home and path.startswith(home + os.sep) else path

    p = data["project"]
    lines = [
        "Project",
        f"  Root:              {p['root']}",
        f"  Canonical path:    {p['canonical']}",
        f"  Hash:              {p['hash']}",
        f"  Container prefix:  {p['container_prefix']}",
        "",
        "Images",
    ]
    img = data["images"]
    base = img["base"]
    base_kind = f"custom, from {short(base['dockerfile'])}" if base["custom"] else "the foundation"
    ext = img["extension"]
    found = img["foundation"]
    rows = [
        ["foundation", _short(found["id"]), _tier_line(found, foundation=True)],
        ["base", _short(base["id"]), f"{_tier_line(base)} ({base_kind})"],
        [
            "project",
            _short(ext["id"]),
            _tier_line(ext) + (f" (from {short(ext['dockerfile'])})" if ext["configured"] else ""),
        ],
    ]
    lines += report_json.table(["TIER", "ID", "STATE"], rows, indent="  ")
    run = ext if ext["configured"] else base
    run_id = f" ({_short(run['id'])})" if run["id"] else ""
    lines.append(f"  Launches run:      {img['run_image']}{run_id}")
    lines.append(f"  Held by this home: {found['tag'].rsplit(':', 1)[0]}:<tier>")
    if img["note"]:
        lines.append(f"  Note: {img['note']}")
    lines += ["", "Agents"]
    enabled = {name: h for name, h in data["harnesses"].items() if h["enabled"]}
    if not enabled:
        lines.append("  none installed ('aishell setup --with-<agent>')")
    for h in enabled.values():
        version = h["version"] or "version unknown"
        lines.append(f"  {h['label'] + ':':<18} {version} (pin {h['pin']})")
    vol = data["harness_volume"]
    if vol["name"]:
        state = _yes_no_unknown(vol["exists"], "present", "missing: filled on next launch")
        lines.append(f"  Harness volume:    {vol['name']} ({state})")
    gl = data["gitleaks"]
    gl_text = "installed" if gl["installed"] else "not installed"
    if gl["installed"]:
        gl_text += f", last scan of this project: {gl['last_scan'] or 'never'}"
    lines.append(f"  Gitleaks:          {gl_text}")
    if enabled:
        lines += ["", "Agent config in this project's sandboxes (docs/agents.md)"]
        for h in enabled.values():
            for entry in h["config_paths"]:
                missing = "" if entry["exists"] else ", created on next launch"
                what = "shared login" if entry["shared"] else "this project's"
                lines.append(
                    f"  {h['label'] + ':':<18} {short(entry['path'])} "
                    f"({what}: {short(entry['source'])}{missing})"
                )
    f = data["files"]
    eng = data["engine"]
    lines += ["", "Files"]
    lines.append(f"  aishell home:      {f['aishell_home']}")
    state_text = "found" if f["state_found"] else (f["state_error"] or "not found (no setup)")
    if f["build_time"]:
        state_text += f", built {f['build_time']}"
    lines.append(f"  State:             {f['state_file']} ({state_text})")
    for entry in f["config"]:
        status = (
            "error: " + entry["error"]
            if entry["error"]
            else (
                "in effect"
                if entry["path"] in f["config_in_effect"]
                else ("present" if entry["exists"] else "not present")
            )
        )
        lines.append(f"  {entry['scope'].capitalize() + ' config:':<18} {entry['path']} ({status})")
    if f["config_error"] and not any(e["error"] for e in f["config"]):
        lines.append(f"  Config error:      {f['config_error']}")
    lines += _trust_lines(data.get("trust"))
    net = data.get("network")
    if net:
        lines += ["", "Network"]
        lines.append(f"  Mode:              {net['mode']}")
        if net["mode"] == "allowlist":
            lines.append(f"  Presets:           {', '.join(net['presets']) or '(none)'}")
            lines.append(f"  Allowed hosts:     {', '.join(net['allow']) or '(none)'}")
    lines += ["", "Engine"]
    if eng["cli"]:
        answer = f"server {eng['server_version']}" if eng["answering"] else "not answering"
        lines.append(f"  {eng['kind']}: {eng['cli']} ({answer})")
    if eng["error"]:
        lines.append(f"  {eng['error']}")
    return lines


def _trust_lines(t: Mapping[str, Any] | None) -> list[str]:
    if not t or t.get("state") is None:
        error = (t or {}).get("error")
        return [f"  Project config:    {error}"] if error else []
    state = {
        "none": "nothing to approve",
        "approved": f"approved {t['approved_at']}",
        "new": "NOT approved yet (run 'aishell trust')",
        "changed": "CHANGED since approved (run 'aishell trust')",
    }[t["state"]]
    return [f"  Project config:    {state}"]


# ------------------------------------------------------------------------ command


def build_parser() -> Parser:
    p = parser(
        "aishell info",
        "Show the project (hash, container prefix), the image stack, the installed agents "
        "and their host config paths, and the files aishell uses. Works without the engine.",
    )
    p.add_argument("--json", action="store_true", help="print JSON (see docs/json-output.md)")
    return p


def main(argv: Sequence[str]) -> int:
    ns = build_parser().parse_args(list(argv))
    data = info_json(gather())
    if ns.json:
        report_json.emit(data)
        return 0
    for line in render_info(data):
        output.out(line)
    return 0
