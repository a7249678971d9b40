"""Display of a sensitive-file scan and the launch gate built on it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from aishell import output
from aishell.errors import Aborted, AishellError
from aishell.security.rules import Severity
from aishell.security.scan import Finding, ScanResult

__all__ = ["FOOTER", "HEADER", "digest", "gate", "hold_for_reading", "render"]

HEADER = "Sensitive files detected in project directory"
FOOTER = "The agent will be able to read these files inside the container."
RULE_WIDTH = 50

_LABEL_WIDTH = len("MEDIUM") + 1
_STYLES = {Severity.HIGH: "1;31", Severity.MEDIUM: "33", Severity.LOW: "2"}


def render(result: ScanResult, *, root: Path | None = None) -> list[str]:
    """The report as lines (colour through output.style).

    Without findings only the notes are rendered (often nothing at all).
    """
    notes = [output.style(f"Note: sensitive-file scan: {note}", "2") for note in result.notes]
    if not result.findings:
        return notes
    root = root if root is not None else result.root
    header = HEADER if root is None else f"{HEADER} {root}"
    lines = [output.style(header, "1"), "-" * RULE_WIDTH]
    lines.extend(_finding_line(f) for f in result.findings)
    lines.append("")
    lines.append(FOOTER)
    lines.extend(notes)
    return lines


def _finding_line(f: Finding) -> str:
    name = f.severity.value.upper()
    label = output.style(name, _STYLES[f.severity]) + " " * (_LABEL_WIDTH - len(name))
    if f.path is not None:
        text = f"{f.path} - {f.reason}"
        if f.may_be_committed:
            text += " (may be committed)"
    else:
        what = f.label or f.reason
        text = f"{f.count} files detected: {what} (e.g. {', '.join(f.examples)})"
        if f.may_be_committed:
            text += " (some may be committed)"
    return f"  {label}{text}"


def gate(
    result: ScanResult,
    *,
    interactive: bool,
    unsafe: bool,
    ask: Callable[[str], bool] = output.ask_yes_no,
) -> None:
    """Show the findings and decide whether the launch may go on.

    No high findings, or `unsafe`: go on. High findings without a terminal:
    AishellError. With a terminal: ask; "no" raises Aborted (exit 1).
    """
    for line in render(result):
        output.info(line)
    high = result.high
    if not high:
        return
    if unsafe:
        output.warn(f"continuing despite {high} high-severity finding(s) (--unsafe)")
        return
    if not interactive:
        raise AishellError(
            f"{high} high-severity sensitive file(s) found and no terminal to ask",
            hint="Review them, allowlist them in .aishell/config.yaml (detection.allowlist), "
            "or pass --unsafe",
        )
    if not ask(f"Proceed with {high} high-severity finding(s)?"):
        raise Aborted("Aborted.")


def digest(result: ScanResult) -> str:
    """What the user was shown, as a short hash (the same findings give the same)."""
    from aishell.hashing import short_hash

    parts = sorted(
        f"{f.severity.value}|{f.detector}|{f.path}|{f.count}|{','.join(f.examples)}"
        for f in result.findings
    )
    return short_hash("\n".join(parts), 16)


PAUSE_PROMPT = (
    "Press Enter to start, Ctrl-C to stop (asked again only when these findings change): "
)


def hold_for_reading(
    result: ScanResult,
    *,
    seen: Path,
    wait: Callable[[str], None] = output.wait_for_enter,
) -> None:
    """On a terminal the agent's screen would cover the findings at once: when they
    are new or changed since the user last read them (their digest in `seen`), wait
    for Enter. High findings were already asked about (y/N): nothing to hold then."""
    if not result.findings or result.high:
        return
    now = digest(result)
    try:
        if seen.read_text().strip() == now:
            return
    except OSError:
        pass
    wait(PAUSE_PROMPT)
    try:
        seen.parent.mkdir(parents=True, exist_ok=True)
        seen.write_text(now + "\n")
    except OSError:
        pass  # the question comes again next time: harmless
