"""`aishell check [--json]`: read-only pre-flight checks.

Never builds, pulls or starts anything: it inspects the engine, the saved setup,
the images and the harness volume, loads the configuration, and runs the
sensitive-file scan. Each check is `ok`, `warn` or `fail`; only critical checks
can fail (no engine, no setup, no foundation image, invalid configuration), and
the exit status is 1 exactly when one did.

The check builders are pure functions of the gathered data (`info.Gathered`,
the scan result), so they are tested without an engine.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aishell import agenthome, netpolicy, output, paths, report_json, trust
from aishell.commands._args import Parser, parser
from aishell.constants import EXIT_ERROR, EXIT_OK, RESERVED_ENV
from aishell.discovery import gather, stack_of, volume_ready
from aishell.engine.images import short_id
from aishell.errors import AishellError
from aishell.harnesses import BY_NAME
from aishell.security import freshness, guard, hostpaths
from aishell.security import scan as scan_mod
from aishell.security.validate import Danger

if TYPE_CHECKING:
    from aishell.config import Config
    from aishell.discovery import Gathered
    from aishell.security.scan import Finding, ScanResult

OK, WARN, FAIL = "ok", "warn", "fail"
STATUSES = (OK, WARN, FAIL)
SECTIONS = ("Engine", "Setup", "Harnesses", "Configuration", "Mounts", "Security", "Host files")
MARKS_UTF8 = {OK: "✓", WARN: "!", FAIL: "✗"}
MARKS_ASCII = {OK: "+", WARN: "!", FAIL: "x"}
_COLORS = {OK: "32", WARN: "33", FAIL: "31"}
RULE = "-" * 40
SETUP_HINT = "run 'aishell setup --with-<agent>' (e.g. --with-claude) first"


@dataclass(frozen=True)
class Check:
    section: str
    status: str  # ok | warn | fail
    label: str
    detail: str | None = None
    lines: tuple[str, ...] = ()  # extra lines for the text report (e.g. findings)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"section": self.section, "status": self.status, "label": self.label}
        if self.detail:
            data["detail"] = self.detail
        return data


# -------------------------------------------------------------------- aggregation


def summary(checks: Sequence[Check]) -> dict[str, int]:
    return {status: sum(1 for c in checks if c.status == status) for status in STATUSES}


def passed(checks: Sequence[Check]) -> bool:
    return not any(c.status == FAIL for c in checks)


def exit_code(checks: Sequence[Check]) -> int:
    return EXIT_OK if passed(checks) else EXIT_ERROR


def finding_json(f: Finding) -> dict[str, Any]:
    return {
        "path": f.path,
        "detector": f.detector,
        "severity": str(f.severity),
        "reason": f.reason,
        "count": f.count,
        "examples": list(f.examples),
        "may_be_committed": f.may_be_committed,
    }


def sensitive_json(result: ScanResult | None, *, enabled: bool) -> dict[str, Any]:
    if result is None:
        return {"enabled": enabled, "total": 0, "high": 0, "medium": 0, "low": 0, "findings": []}
    return {
        "enabled": enabled,
        "total": result.high + result.medium + result.low,
        "high": result.high,
        "medium": result.medium,
        "low": result.low,
        "findings": [finding_json(f) for f in result.findings],
    }


def check_json(
    checks: Sequence[Check],
    sensitive: Mapping[str, Any],
    *,
    host_files: Mapping[str, Any] | None = None,
    trust_state: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "passed": passed(checks),
        "summary": summary(checks),
        "checks": [c.to_json() for c in checks],
        "sensitive_files": dict(sensitive),
        "host_files": dict(host_files or host_json(None, "read-only")),
        "trust": dict(trust_state) if trust_state is not None else trust.status_json(None),
    }


def render_text(checks: Sequence[Check], *, utf8: bool = True) -> list[str]:
    marks = MARKS_UTF8 if utf8 else MARKS_ASCII

    def mark(status: str) -> str:
        return output.style(marks[status], _COLORS[status], sys.stdout)

    lines = ["Pre-flight checks", RULE]
    for section in [*SECTIONS, *sorted({c.section for c in checks} - set(SECTIONS))]:
        in_section = [c for c in checks if c.section == section]
        if not in_section:
            continue
        lines.append(section)
        for c in in_section:
            if c.detail and c.status == OK:
                lines.append(f"  {mark(c.status)} {c.label} ({c.detail})")
            else:
                lines.append(f"  {mark(c.status)} {c.label}")
                if c.detail:
                    lines.append(f"      {c.detail}")
            lines.extend(f"      {line}" for line in c.lines)
    lines.append(RULE)
    counts = summary(checks)
    warned = f" ({counts[WARN]} warning{'s' if counts[WARN] != 1 else ''})" if counts[WARN] else ""
    if passed(checks):
        lines.append(f"{mark(OK)} All critical checks passed{warned}")
    else:
        lines.append(f"{mark(FAIL)} Some critical checks failed{warned}")
    return lines


# ------------------------------------------------------------------ check builders


def engine_checks(g: Gathered) -> list[Check]:
    s = "Engine"
    if g.engine is None:
        return [Check(s, FAIL, "Engine CLI not found", g.engine_error)]
    checks = [Check(s, OK, f"Engine CLI found: {g.engine.binary}", g.engine_reason)]
    if g.engine_note:
        checks.append(Check(s, WARN, "Engine chosen without the global config", g.engine_note))
    if g.engine_error:
        checks.append(
            Check(s, FAIL, f"The {g.engine.kind} engine is not answering", g.engine_error)
        )
    else:
        version = f"server {g.server_version}" if g.server_version else None
        checks.append(Check(s, OK, f"The {g.engine.kind} engine answers", version))
    return checks


def setup_checks(g: Gathered, stack: Mapping[str, Any]) -> list[Check]:
    s = "Setup"
    checks: list[Check] = []
    st = g.state
    if g.state_error:
        checks.append(Check(s, FAIL, "The saved setup is damaged", g.state_error))
    elif st is None:
        checks.append(Check(s, FAIL, "No setup found", f"{SETUP_HINT} ({g.state_file} is missing)"))
    else:
        agents = ", ".join(sorted(st.tools)) or "no agents"
        built = f"built {st.build_time}; " if st.build_time else ""
        checks.append(Check(s, OK, "Setup found", f"{built}{agents}"))

    if not stack["known"]:
        detail = "the engine did not answer (see Engine)" if g.engine_error else stack.get("note")
        checks.append(Check(s, WARN, "Images not checked", detail))
        return checks
    foundation, base, ext = stack["foundation"], stack["base"], stack["extension"]

    def held_as(tier: Mapping[str, Any]) -> str:
        ident = tier.get("id")
        return f"{tier['tag']}, {short_id(ident)}" if ident else tier["tag"]

    if not foundation["exists"]:
        checks.append(
            Check(
                s,
                FAIL,
                "Foundation image is missing",
                f"this home holds no {foundation['tag']}; " + SETUP_HINT.replace(" first", ""),
            )
        )
        return checks
    if foundation["held"] is False:
        checks.append(
            Check(
                s,
                WARN,
                "Foundation image is not held by this home yet",
                f"the next launch holds {short_id(foundation['id'])} as {foundation['tag']} "
                "(built by another aishell home or an older aishell)",
            )
        )
    if foundation["current"] is True:
        checks.append(Check(s, OK, "Foundation image is current", held_as(foundation)))
    elif foundation["current"] is False:
        checks.append(
            Check(
                s,
                WARN,
                "Foundation image is out of date",
                "this home's inputs (aishell, base_image, ca_certificates or the gitleaks "
                "choice) changed since it was built; run 'aishell update' to rebuild it",
            )
        )
    else:
        checks.append(
            Check(s, WARN, "Cannot tell whether the foundation image is current", stack.get("note"))
        )

    if base["custom"]:
        what = f"Base image (custom, from {base.get('dockerfile') or 'the global Dockerfile'})"
        if base["current"]:
            checks.append(Check(s, OK, f"{what} is current", held_as(base)))
        elif not base["exists"]:
            checks.append(Check(s, WARN, f"{what} will be built on the next launch"))
        else:
            checks.append(
                Check(
                    s,
                    WARN,
                    f"{what} will be rebuilt on the next launch",
                    "its Dockerfile directory or the foundation image changed",
                )
            )
    elif base["current"]:
        checks.append(Check(s, OK, "Base image is the foundation", base["tag"]))
    else:
        checks.append(
            Check(s, WARN, "Base image will be pointed at the foundation on the next launch")
        )

    if not ext["configured"]:
        checks.append(Check(s, OK, "No project image", "optional: .aishell/Dockerfile"))
    elif ext["current"]:
        checks.append(Check(s, OK, "Project image is current", held_as(ext)))
    elif not ext["exists"]:
        checks.append(Check(s, WARN, "Project image will be built on the next launch"))
    else:
        checks.append(
            Check(
                s,
                WARN,
                "Project image will be rebuilt on the next launch",
                f"{ext.get('dockerfile') or 'its Dockerfile'}, its directory or the base "
                "image changed",
            )
        )
    return checks


def harness_checks(g: Gathered) -> list[Check]:
    s = "Harnesses"
    st = g.state
    if st is None:
        return []
    checks: list[Check] = []
    if not st.tools:
        checks.append(Check(s, OK, "No agents selected", "'aishell' opens a shell"))
    else:
        name = g.volume_name or ""
        record = st.volumes.get(name)
        ready = volume_ready(st, name, g.volume_item)
        for tool_name, pin in sorted(st.tools.items()):
            label = BY_NAME[tool_name].label if tool_name in BY_NAME else tool_name
            if not g.volume_known:
                checks.append(
                    Check(
                        s,
                        WARN,
                        f"{label}: not checked",
                        "the engine did not answer (see Engine)"
                        if g.engine_error
                        else "the engine was not asked",
                    )
                )
            elif g.volume_item is None:
                checks.append(
                    Check(
                        s,
                        WARN,
                        f"{label}: not installed yet",
                        f"the harness volume {name} does not exist; "
                        "it will be installed on the next launch",
                    )
                )
            elif not ready:
                checks.append(
                    Check(
                        s,
                        WARN,
                        f"{label}: the volume {name} is not recorded as filled",
                        "it is checked (and filled if needed) on the next launch",
                    )
                )
            else:
                version = record.versions.get(tool_name) if record else None
                if version:
                    checks.append(Check(s, OK, f"{label} {version}", f"pin {pin}, volume {name}"))
                else:
                    checks.append(
                        Check(s, WARN, f"{label}: installed version unknown", f"volume {name}")
                    )
    if st.gitleaks:
        checks.append(Check(s, OK, "Gitleaks installed"))
    else:
        checks.append(Check(s, OK, "Gitleaks not installed", "optional: setup --with-gitleaks"))
    return checks


def config_checks(g: Gathered, host_env: Mapping[str, str]) -> list[Check]:
    s = "Configuration"
    checks: list[Check] = []
    for f in g.config_files:
        scope = f.scope.capitalize()
        if f.error:
            checks.append(Check(s, FAIL, f"{scope} config is invalid: {f.path}", f.error))
        elif f.exists:
            checks.append(Check(s, OK, f"{scope} config loads: {f.path}"))
        else:
            checks.append(Check(s, OK, f"{scope} config: {f.path}", "not present, optional"))
    if g.config_error and not any(f.error for f in g.config_files):
        checks.append(Check(s, FAIL, "Configuration is invalid", g.config_error))
    if g.config is not None:
        for entry in g.config.env:
            if entry.name in RESERVED_ENV or entry.name.startswith("AISHELL_"):
                checks.append(
                    Check(
                        s,
                        FAIL,
                        f"env: {entry.name} is set by aishell itself",
                        f"remove it from env in {', '.join(g.config.sources)}",
                    )
                )
            elif entry.value is None and entry.name not in host_env:
                checks.append(
                    Check(
                        s,
                        WARN,
                        f"env: {entry.name} is not set on the host",
                        "it is not passed to the container",
                    )
                )
    if g.config is not None:
        tools = list(g.state.tools) if g.state is not None else []
        policy = netpolicy.effective_policy(g.config.network, tools)
        detail = None
        if policy.mode == "allowlist":
            detail = "allow: " + (", ".join(str(p) for p in policy.allow) or "(nothing)")
            if g.egress_proxy:  # started by the first allowlist launch when not running
                detail += f"; egress proxy {g.egress_proxy}"
        checks.append(Check(s, OK, f"network policy: {policy.describe()}", detail))
    if g.foundation_hash_error:
        checks.append(Check(s, FAIL, "ca_certificates cannot be used", g.foundation_hash_error))
    checks += trust_checks(g)
    return checks


def trust_checks(g: Gathered) -> list[Check]:
    """Whether the project's aishell config is approved (see `aishell trust`)."""
    s = "Configuration"
    st = g.trust
    if st is None:
        if g.trust_error is None:
            return []
        return [Check(s, WARN, "Project config approval not checked", g.trust_error)]
    if st.state == "none":
        return []
    name = st.config_dir.name if st.config_dir else ".aishell"
    if st.state == "approved" and st.record is not None:
        return [Check(s, OK, f"Project config ({name}/) is approved", st.record.approved_at)]
    return [
        Check(
            s,
            WARN,
            f"Project config ({name}/) is not approved"
            + (" yet" if st.state == "new" else ": it changed since you approved it"),
            f"launches refuse it until you approve it: '{trust.approve_command(g.project)}'",
        )
    ]


def mount_checks(
    config: Config | None, exists: Callable[[str], bool] = os.path.exists
) -> list[Check]:
    s = "Mounts"
    if config is None:
        return [Check(s, WARN, "Mounts not checked", "the configuration is invalid")]
    if not config.mounts:
        return [Check(s, OK, "No mounts configured")]
    checks = []
    for m in config.mounts:
        where = m.source if m.target == m.source else f"{m.source} -> {m.target}"
        where += " (read-only)" if m.readonly else ""
        if exists(m.source):
            checks.append(Check(s, OK, where))
        else:
            checks.append(
                Check(
                    s,
                    WARN,
                    f"{m.source} does not exist",
                    f"skipped at launch (from {m.origin})",
                )
            )
    return checks


def _finding_line(f: Finding) -> str:
    severity = f.severity.value.upper().ljust(7)
    if f.path is not None:
        text = f"{f.path} - {f.reason}"
        if f.may_be_committed:
            text += " (may be committed)"
    else:
        text = f"{f.count} files: {f.label or f.reason} (e.g. {', '.join(f.examples)})"
        if f.may_be_committed:
            text += " (some may be committed)"
    return f"{severity}{text}"


def security_checks(
    *,
    dangers: Sequence[Danger],
    detection_enabled: bool,
    scan: ScanResult | None,
    scan_error: str | None = None,
    gitleaks: bool = False,
    freshness_check: bool = True,
    freshness_message: str | None = None,
    scan_age_days: int | None = None,
) -> list[Check]:
    s = "Security"
    checks: list[Check] = []
    if dangers:
        checks.extend(Check(s, WARN, f"{d.source}: {d.what}", d.why) for d in dangers)
    else:
        checks.append(Check(s, OK, "No dangerous Docker options or mount paths"))

    if not detection_enabled:
        checks.append(
            Check(s, OK, "Sensitive-file detection is disabled", "detection.enabled: false")
        )
    elif scan_error:
        checks.append(Check(s, WARN, "Sensitive-file scan failed", scan_error))
    elif scan is not None:
        total = scan.high + scan.medium + scan.low
        notes = tuple(f"Note: {n}" for n in scan.notes)
        if total == 0:
            checks.append(Check(s, OK, "No sensitive files detected", lines=notes))
        else:
            label = (
                f"{total} sensitive file(s) detected "
                f"({scan.high} high, {scan.medium} medium, {scan.low} low)"
            )
            lines = tuple(_finding_line(f) for f in scan.findings) + notes
            status = WARN if scan.high else OK
            checks.append(Check(s, status, label, lines=lines))

    if gitleaks and freshness_check:
        if freshness_message:
            checks.append(Check(s, WARN, "Gitleaks scan is stale", freshness_message))
        elif scan_age_days is not None:
            days = f"{scan_age_days} day{'s' if scan_age_days != 1 else ''}"
            checks.append(Check(s, OK, f"Gitleaks scan of this project is {days} old"))
    return checks


def host_checks(status: guard.Status | None, git_internals: str) -> list[Check]:
    """The host boundary (security/guard.py): the repository's git internals, what
    sandboxes changed that runs on this machine, and what they must not leave."""
    s = "Host files"
    checks: list[Check] = []
    if git_internals == "writable":
        checks.append(
            Check(
                s,
                WARN,
                "git_internals: writable: sandboxes can change this repository's config and hooks",
                "git on this machine runs what they name; remove the key to keep them "
                "read-only inside",
            )
        )
    else:
        checks.append(Check(s, OK, "Git config, hooks and info are read-only in sandboxes"))
    if status is None:
        return checks
    if status.redirect:
        checks.append(
            Check(
                s,
                FAIL,
                "The repository's git directory is redirected",
                status.redirect,
                lines=(status.redirect_hint or "",),
            )
        )
    if status.pending:
        n = len(status.pending)
        checks.append(
            Check(
                s,
                WARN,
                f"{n} change{'s' if n != 1 else ''} by sandboxes to files that run on this machine",
                "see them: aishell guard diff; mark them seen: aishell guard ack",
                lines=tuple(guard.line_of(f) for f in status.pending),
            )
        )
    else:
        checks.append(Check(s, OK, "No unseen changes by sandboxes to files that run here"))
    if status.repositories:
        n = len(status.repositories)
        checks.append(
            Check(
                s,
                WARN,
                f"{n} other git repositor{'ies' if n != 1 else 'y'} in the project run programs",
                "git runs what their config and hooks name when you use git there",
                lines=tuple(f"{r.path}: {', '.join(r.reasons)}" for r in status.repositories),
            )
        )
    swept = status.swept
    if swept.artifact_count:
        n = swept.artifact_count
        more = n - len(swept.artifacts)
        checks.append(
            Check(
                s,
                WARN,
                f"{n} set-user-ID, device or root-owned file{'s' if n != 1 else ''} in the "
                "project or its writable mounts",
                "remove what you did not put there (with sudo where it is root's)",
                lines=tuple(f"{a.path}: {a.what}" for a in swept.artifacts)
                + ((f"... and {more} more",) if more > 0 else ()),
            )
        )
    else:
        checks.append(Check(s, OK, "No set-user-ID, device or root-owned files in the project"))
    if swept.truncated:
        checks.append(
            Check(s, WARN, f"Stopped looking after {swept.entries} entries", "the project is huge")
        )
    return checks


def host_json(status: guard.Status | None, git_internals: str) -> dict[str, Any]:
    if status is None:
        return {"git_internals": git_internals, "pending": [], "repositories": [],
                "artifacts": [], "redirect": None}  # fmt: skip
    return {
        "git_internals": git_internals,
        "pending": [f.to_json() for f in status.pending],
        "repositories": [{"path": r.path, "runs": list(r.reasons)} for r in status.repositories],
        "artifacts": [{"path": a.path, "what": a.what} for a in status.swept.artifacts],
        "redirect": status.redirect,
    }


def host_status(g: Gathered) -> guard.Status | None:
    """The guard's view of the project; the sweep also walks the configured read-write
    mounts and the agents' config directories (mounted read-write into every sandbox)."""
    extra = [m.source for m in g.config.mounts if not m.readonly] if g.config else []
    tools = sorted(g.state.tools) if g.state is not None else []
    extra += [path for path in agent_roots(g, tools) if os.path.isdir(path)]
    return guard.status(g.project, g.engine if g.engine_answers else None,
                        host_uid=os.getuid(), extra_roots=extra)  # fmt: skip


def agent_roots(g: Gathered, tools: Sequence[str]) -> list[str]:
    """The host directories behind the agents' read-write config mounts for this
    project (its own copies, and the shared login stores)."""
    plan = agenthome.plan(
        tools,
        project_key=g.project.store_key,
        home=g.home,
        aishell_home=str(paths.aishell_home()),
        share=dict(g.config.share_logins) if g.config is not None else None,
    )
    return [b.source for b in plan.binds(str(paths.agents_dir())) if not b.readonly]


# ------------------------------------------------------------------------- running


def _scan(g: Gathered) -> tuple[ScanResult | None, str | None]:
    if g.config is None or not g.config.detection.enabled:
        return None, None
    try:
        result = scan_mod.scan_project(
            Path(g.project.root),
            custom_patterns=g.config.detection.custom_patterns,
            allowlist=g.config.detection.allowlist,
        )
    except AishellError as exc:
        return None, exc.message
    return result, None


def run_checks(g: Gathered, host_env: Mapping[str, str]) -> tuple[list[Check], dict[str, Any]]:
    checks = engine_checks(g)
    checks += setup_checks(g, stack_of(g))
    checks += harness_checks(g)
    checks += config_checks(g, host_env)
    checks += mount_checks(g.config)
    if g.config is not None:
        cfg = g.config
        facts = hostpaths.gather(
            cfg, home=g.home, aishell_home=paths.aishell_home(), project=g.project
        )
        dangers = hostpaths.dangers(cfg, facts)
        dangers += [Danger(d.what, d.why, "mounts") for d in hostpaths.decisions(cfg, facts, [])]
        result, error = _scan(g)
        st = g.state
        last = st.gitleaks_scans.get(g.project.canonical) if st else None
        gitleaks = bool(st and st.gitleaks)
        checks += security_checks(
            dangers=dangers,
            detection_enabled=cfg.detection.enabled,
            scan=result,
            scan_error=error,
            gitleaks=gitleaks,
            freshness_check=cfg.gitleaks_freshness_check,
            freshness_message=freshness.staleness_message(last, cfg.gitleaks_freshness_threshold)
            if gitleaks
            else None,
            scan_age_days=freshness.age_days(last),
        )
        sensitive = sensitive_json(result, enabled=cfg.detection.enabled)
    else:
        checks.append(
            Check("Security", WARN, "Security not checked", "the configuration is invalid")
        )
        sensitive = sensitive_json(None, enabled=False)
    return checks, sensitive


def build_parser() -> Parser:
    p = parser(
        "aishell check",
        "Read-only pre-flight checks: engine, setup, images, agents, configuration, mounts, "
        "security. Exit status 1 when a critical check fails, else 0. Builds, pulls and "
        "starts nothing.",
    )
    p.add_argument("--json", action="store_true", help="print JSON (see docs/json-output.md)")
    return p


def main(argv: Sequence[str]) -> int:
    ns = build_parser().parse_args(list(argv))
    g = gather()
    checks, sensitive = run_checks(g, dict(os.environ))
    internals = g.config.git_internals if g.config is not None else "read-only"
    status = host_status(g)
    checks += host_checks(status, internals)
    if ns.json:
        report_json.emit(
            check_json(
                checks,
                sensitive,
                host_files=host_json(status, internals),
                trust_state=trust.status_json(g.trust, g.trust_error),
            )
        )
    else:
        for line in render_text(checks, utf8=report_json.stdout_is_utf8()):
            output.out(line)
    return exit_code(checks)
