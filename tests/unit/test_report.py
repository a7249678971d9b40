"""Report rendering and the launch gate."""

from __future__ import annotations

from pathlib import Path

import pytest

from aishell.errors import Aborted, AishellError
from aishell.security.report import FOOTER, HEADER, gate, render
from aishell.security.rules import Severity
from aishell.security.scan import Finding, ScanResult

HIGH_KEY = Finding(
    "ssh-key", Severity.HIGH, "SSH private key file", "deploy/id_rsa", may_be_committed=True
)
HIGH_P12 = Finding("key-container", Severity.HIGH, "Key container file (PKCS12/JKS)", "a.p12")
ENV_GROUP = Finding(
    "env-file",
    Severity.MEDIUM,
    "Environment configuration file",
    None,
    count=15,
    examples=(".env", ".env.local"),
    label="env files",
)
LOW = Finding("env-template", Severity.LOW, "Environment template file", ".env.example")


def result(*findings: Finding, notes: tuple[str, ...] = ()) -> ScanResult:
    return ScanResult(tuple(findings), notes, 100, Path("/proj"))


@pytest.fixture(autouse=True)
def _no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("FORCE_COLOR", raising=False)


# --------------------------------------------------------------------------- render


def test_render_layout() -> None:
    lines = render(result(HIGH_KEY, HIGH_P12, ENV_GROUP, LOW), root=Path("/work/proj"))
    assert lines == [
        f"{HEADER} /work/proj",
        "-" * 50,
        "  HIGH   deploy/id_rsa - SSH private key file (may be committed)",
        "  HIGH   a.p12 - Key container file (PKCS12/JKS)",
        "  MEDIUM 15 files detected: env files (e.g. .env, .env.local)",
        "  LOW    .env.example - Environment template file",
        "",
        FOOTER,
    ]
    assert HEADER == "Sensitive files detected in project directory"
    assert FOOTER == "The agent will be able to read these files inside the container."


def test_render_uses_the_result_root_by_default() -> None:
    assert render(result(LOW))[0] == f"{HEADER} /proj"
    no_root = ScanResult((LOW,), (), 1)
    assert render(no_root)[0] == HEADER


def test_render_group_without_label_and_committable() -> None:
    group = ENV_GROUP._replace(label="", severity=Severity.HIGH, may_be_committed=True)
    (line,) = [x for x in render(result(group)) if x.startswith("  HIGH")]
    assert line == (
        "  HIGH   15 files detected: Environment configuration file (e.g. .env, .env.local)"
        " (some may be committed)"
    )


def test_render_notes() -> None:
    lines = render(result(LOW, notes=("skipped unreadable directory x (Permission denied)",)))
    assert lines[-1] == (
        "Note: sensitive-file scan: skipped unreadable directory x (Permission denied)"
    )
    only_notes = render(result(notes=("n",)))
    assert only_notes == ["Note: sensitive-file scan: n"]


def test_render_nothing() -> None:
    assert render(result()) == []


def test_render_colours(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setenv("FORCE_COLOR", "1")
    lines = render(result(HIGH_P12, ENV_GROUP, LOW))
    assert lines[0] == f"\033[1m{HEADER} /proj\033[0m"
    assert lines[2] == "  \033[1;31mHIGH\033[0m   a.p12 - Key container file (PKCS12/JKS)"
    assert lines[3].startswith("  \033[33mMEDIUM\033[0m 15 files")
    assert lines[4].startswith("  \033[2mLOW\033[0m    .env.example")


# --------------------------------------------------------------------------- gate


class Asker:
    def __init__(self, answer: bool) -> None:
        self.answer = answer
        self.questions: list[str] = []

    def __call__(self, question: str) -> bool:
        self.questions.append(question)
        return self.answer


def test_gate_no_findings_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    ask = Asker(False)
    gate(result(), interactive=True, unsafe=False, ask=ask)
    assert ask.questions == []
    assert capsys.readouterr().err == ""


def test_gate_no_high_does_not_prompt(capsys: pytest.CaptureFixture[str]) -> None:
    ask = Asker(False)
    gate(result(ENV_GROUP, LOW), interactive=True, unsafe=False, ask=ask)
    gate(result(ENV_GROUP, LOW), interactive=False, unsafe=False, ask=ask)
    assert ask.questions == []
    err = capsys.readouterr().err
    assert "15 files detected: env files" in err
    assert FOOTER in err


def test_gate_no_tty_with_high_fails(capsys: pytest.CaptureFixture[str]) -> None:
    ask = Asker(True)
    with pytest.raises(AishellError) as info:
        gate(result(HIGH_KEY, HIGH_P12, LOW), interactive=False, unsafe=False, ask=ask)
    assert type(info.value) is AishellError
    assert info.value.message == "2 high-severity sensitive file(s) found and no terminal to ask"
    assert info.value.hint == (
        "Review them, allowlist them in .aishell/config.yaml (detection.allowlist), "
        "or pass --unsafe"
    )
    assert info.value.exit_code == 1
    assert ask.questions == []
    assert "deploy/id_rsa" in capsys.readouterr().err  # the report is shown first


def test_gate_counts_files_of_a_high_group() -> None:
    group = ENV_GROUP._replace(severity=Severity.HIGH)
    with pytest.raises(AishellError, match=r"^15 high-severity"):
        gate(result(group), interactive=False, unsafe=False, ask=Asker(True))


def test_gate_unsafe_passes_with_a_note(capsys: pytest.CaptureFixture[str]) -> None:
    ask = Asker(False)
    gate(result(HIGH_KEY), interactive=False, unsafe=True, ask=ask)
    gate(result(HIGH_KEY), interactive=True, unsafe=True, ask=ask)
    assert ask.questions == []
    err = capsys.readouterr().err
    assert "Warning: continuing despite 1 high-severity finding(s) (--unsafe)" in err


def test_gate_tty_yes_passes() -> None:
    ask = Asker(True)
    gate(result(HIGH_KEY, HIGH_P12), interactive=True, unsafe=False, ask=ask)
    assert ask.questions == ["Proceed with 2 high-severity finding(s)?"]


def test_gate_tty_no_aborts() -> None:
    ask = Asker(False)
    with pytest.raises(Aborted, match=r"^Aborted\.$") as info:
        gate(result(HIGH_KEY), interactive=True, unsafe=False, ask=ask)
    assert info.value.exit_code == 1
    assert ask.questions == ["Proceed with 1 high-severity finding(s)?"]


def test_gate_default_asker_reads_stdin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    gate(result(HIGH_KEY), interactive=True, unsafe=False)
    assert "Proceed with 1 high-severity finding(s)? [y/N]: " in capsys.readouterr().err


def test_gate_notes_without_findings_are_shown(capsys: pytest.CaptureFixture[str]) -> None:
    gate(result(notes=("skipped unreadable directory x",)), interactive=False, unsafe=False)
    assert capsys.readouterr().err == "Note: sensitive-file scan: skipped unreadable directory x\n"
