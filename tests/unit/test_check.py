"""`aishell check`: each section's checks, the verdict, the JSON shape and the text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aishell import config, discovery
from aishell.commands import check
from aishell.config import Config, DetectionConfig, Mount
from aishell.project import Project
from aishell.security.rules import Severity
from aishell.security.scan import Finding, ScanResult
from aishell.security.validate import Danger
from aishell.state import State
from testing.fake_engine import FakeEngine
from testing.gathered import FOUNDATION, GOOD_STATE, HOLDS, gathered, good
from testing.json_shapes import CHECK_SHAPE, assert_shape, check_entry_ok

pytestmark = pytest.mark.usefixtures("no_color")


def statuses(checks: list[check.Check]) -> list[tuple[str, str]]:
    return [(c.status, c.label) for c in checks]


def test_aggregation_and_exit_code() -> None:
    oks = [check.Check("Engine", "ok", "a"), check.Check("Setup", "warn", "b")]
    assert check.summary(oks) == {"ok": 1, "warn": 1, "fail": 0}
    assert check.passed(oks) and check.exit_code(oks) == 0
    failing = [*oks, check.Check("Setup", "fail", "c")]
    assert not check.passed(failing) and check.exit_code(failing) == 1
    assert check.summary([]) == {"ok": 0, "warn": 0, "fail": 0}


def test_good_setup_has_no_failures() -> None:
    g = good()
    checks = (
        check.engine_checks(g)
        + check.setup_checks(g, discovery.stack_of(g))
        + check.harness_checks(g)
        + check.config_checks(g, {})
        + check.mount_checks(g.config)
    )
    assert all(c.status == "ok" for c in checks), statuses(checks)
    assert ("ok", "OpenCode 1.18.33") in statuses(checks)


def test_engine_missing_or_silent_is_critical() -> None:
    missing = check.engine_checks(gathered(engine_error="'docker' was not found on PATH"))
    assert statuses(missing) == [("fail", "Engine CLI not found")]
    silent = check.engine_checks(gathered(engine=FakeEngine(), engine_error="not answering"))
    assert [c.status for c in silent] == ["ok", "fail"]
    g = gathered(engine_error="x", state=GOOD_STATE, config=Config())
    setup = check.setup_checks(g, discovery.stack_of(g))
    assert statuses(setup)[-1] == ("warn", "Images not checked")


def test_setup_checks() -> None:
    no_setup = good(state=None, foundation_hash=None)
    got = check.setup_checks(no_setup, discovery.stack_of(no_setup))
    assert got[0].status == "fail" and got[0].label == "No setup found"

    damaged = good(state=None, state_error="the state file is damaged")
    assert check.setup_checks(damaged, discovery.stack_of(damaged))[0].status == "fail"

    no_foundation = good(images={})
    got = check.setup_checks(no_foundation, discovery.stack_of(no_foundation))
    assert statuses(got)[-1] == ("fail", "Foundation image is missing")

    stale = good(foundation_hash="changed")
    got = check.setup_checks(stale, discovery.stack_of(stale))
    assert ("warn", "Foundation image is out of date") in statuses(got)
    assert not any(c.status == "fail" for c in got)

    drift = good(
        images={HOLDS.foundation: FOUNDATION, HOLDS.base: {"Id": "x", "Config": {}}},
        extension_dockerfile="/w/proj/.aishell/Dockerfile",
        extension_hash="eh",
    )
    got = statuses(check.setup_checks(drift, discovery.stack_of(drift)))
    assert ("warn", "Base image will be pointed at the foundation on the next launch") in got
    assert ("warn", "Project image will be built on the next launch") in got


def test_harness_checks() -> None:
    missing = good(volume_item=None)
    got = check.harness_checks(missing)
    assert got[0].status == "warn" and got[0].label == "OpenCode: not installed yet"
    assert "installed on the next launch" in (got[0].detail or "")
    recreated = good(volume_item={"CreatedAt": "t2", "Labels": {"aishell.kind": "harness"}})
    assert check.harness_checks(recreated)[0].status == "warn"
    none = good(state=State(), volume_name=None)
    assert check.harness_checks(none)[0].label == "No agents selected"
    assert check.harness_checks(good(state=None)) == []
    assert all(c.status != "fail" for c in check.harness_checks(missing))


def test_config_checks() -> None:
    bad = good(
        config=None,
        config_error="Invalid YAML in /w/proj/.aishell/config.yaml line 2: oops",
        config_files=[
            config.FileReport("global", "/g/config.yaml", False),
            config.FileReport(
                "project", "/w/proj/.aishell/config.yaml", True, "Invalid YAML ... line 2: oops"
            ),
        ],
    )
    got = check.config_checks(bad, {})
    assert [c.status for c in got] == ["ok", "fail"]
    assert got[1].detail == "Invalid YAML ... line 2: oops"
    assert check.mount_checks(None)[0].status == "warn"

    both = good(config=None, config_error="Found both .aishell/ and .sandbox/", config_files=[])
    assert statuses(check.config_checks(both, {})) == [("fail", "Configuration is invalid")]

    from aishell.config import EnvEntry

    env = good(config=Config(env=(EnvEntry("AISHELL_X", "1"), EnvEntry("TOKEN", None))))
    got = check.config_checks(env, {})
    assert ("fail", "env: AISHELL_X is set by aishell itself") in statuses(got)
    assert ("warn", "env: TOKEN is not set on the host") in statuses(got)
    assert ("warn", "env: TOKEN is not set on the host") not in statuses(
        check.config_checks(env, {"TOKEN": "x"})
    )
    certs = good(foundation_hash_error="ca_certificates: cannot read /x.crt")
    assert statuses(check.config_checks(certs, {}))[-1][0] == "fail"


def test_mount_checks() -> None:
    cfg = Config(
        mounts=(
            Mount("/data", "/data", False, "g.yaml"),
            Mount("/gone", "/x", True, "p.yaml"),
        )
    )
    got = check.mount_checks(cfg, exists=lambda p: p == "/data")
    assert statuses(got) == [("ok", "/data"), ("warn", "/gone does not exist")]
    assert got[1].detail == "skipped at launch (from p.yaml)"
    assert statuses(check.mount_checks(Config())) == [("ok", "No mounts configured")]


HIGH = Finding("ssh-key", Severity.HIGH, "SSH private key file", "id_rsa", may_be_committed=True)


GROUP = Finding(
    "env-file",
    Severity.MEDIUM,
    "Environment configuration file",
    None,
    count=5,
    examples=(".env", ".env.local"),
    label="env files",
)


LOW = Finding("env-template", Severity.LOW, "Environment template file", ".env.example")


def scan(*findings: Finding) -> ScanResult:
    return ScanResult(tuple(findings), (), 10, Path("/w/proj"))


def test_security_checks() -> None:
    danger = Danger("--privileged", "gives the container every capability", "docker_args")
    got = check.security_checks(
        dangers=[danger],
        detection_enabled=True,
        scan=scan(HIGH, GROUP, LOW),
        gitleaks=True,
        freshness_message="no gitleaks scan of this project on record",
    )
    assert statuses(got) == [
        ("warn", "docker_args: --privileged"),
        ("warn", "7 sensitive file(s) detected (1 high, 5 medium, 1 low)"),
        ("warn", "Gitleaks scan is stale"),
    ]
    assert got[1].lines[0] == "HIGH   id_rsa - SSH private key file (may be committed)"
    assert "5 files: env files" in got[1].lines[1]

    medium_only = check.security_checks(dangers=[], detection_enabled=True, scan=scan(GROUP))
    assert [c.status for c in medium_only] == ["ok", "ok"]

    disabled = check.security_checks(dangers=[], detection_enabled=False, scan=None)
    assert statuses(disabled)[1] == ("ok", "Sensitive-file detection is disabled")

    fresh = check.security_checks(
        dangers=[], detection_enabled=True, scan=scan(), gitleaks=True, scan_age_days=1
    )
    assert statuses(fresh)[-1] == ("ok", "Gitleaks scan of this project is 1 day old")
    no_gitleaks = check.security_checks(
        dangers=[], detection_enabled=True, scan=scan(), gitleaks=False, freshness_message="x"
    )
    assert len(no_gitleaks) == 2
    off = check.security_checks(
        dangers=[],
        detection_enabled=True,
        scan=scan(),
        gitleaks=True,
        freshness_check=False,
        freshness_message="x",
    )
    assert len(off) == 2


def test_check_json_shape() -> None:
    checks = [
        check.Check("Engine", "ok", "a"),
        check.Check("Setup", "fail", "b", "do this"),
        check.Check("Security", "warn", "c", lines=("x",)),
    ]
    data = check.check_json(checks, check.sensitive_json(scan(HIGH, GROUP, LOW), enabled=True))
    assert_shape(data, CHECK_SHAPE)
    for entry in data["checks"]:
        check_entry_ok(entry)
    assert data["passed"] is False
    assert data["summary"] == {"ok": 1, "warn": 1, "fail": 1}
    assert data["checks"][0] == {"section": "Engine", "status": "ok", "label": "a"}
    assert data["checks"][1]["detail"] == "do this"
    sf = data["sensitive_files"]
    assert (sf["total"], sf["high"], sf["medium"], sf["low"]) == (7, 1, 5, 1)
    assert sf["findings"][0]["severity"] == "high" and sf["findings"][0]["path"] == "id_rsa"
    assert sf["findings"][1]["path"] is None and sf["findings"][1]["count"] == 5
    empty = check.check_json([], check.sensitive_json(None, enabled=False))
    assert_shape(empty, CHECK_SHAPE)
    assert empty["passed"] is True


def test_render_text_marks() -> None:
    checks = [
        check.Check("Engine", "ok", "found", "docker"),
        check.Check("Setup", "warn", "stale", "run update"),
        check.Check("Setup", "fail", "missing"),
    ]
    utf8 = check.render_text(checks, utf8=True)
    assert utf8[:3] == ["Pre-flight checks", "-" * 40, "Engine"]
    assert "  ✓ found (docker)" in utf8
    assert "  ! stale" in utf8 and "      run update" in utf8
    assert "  ✗ missing" in utf8
    assert utf8[-1] == "✗ Some critical checks failed (1 warning)"
    ascii_lines = check.render_text(checks[:1], utf8=False)
    assert "  + found (docker)" in ascii_lines
    assert ascii_lines[-1] == "+ All critical checks passed"
    assert all(line.isascii() for line in ascii_lines)
    assert "  x missing" in check.render_text(checks, utf8=False)


def test_check_without_engine_or_setup_fails(
    no_engine: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (no_engine / ".env").write_text("X=1\n")
    assert check.main(["--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert_shape(data, CHECK_SHAPE)
    for entry in data["checks"]:
        check_entry_ok(entry)
    assert data["passed"] is False
    failed = {(c["section"], c["label"]) for c in data["checks"] if c["status"] == "fail"}
    assert ("Engine", "Engine CLI not found") in failed
    assert ("Setup", "No setup found") in failed
    assert data["sensitive_files"]["total"] == 1
    assert check.main([]) == 1
    out = capsys.readouterr().out
    assert "Some critical checks failed" in out


def test_check_reports_invalid_project_config(
    no_engine: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (no_engine / ".aishell").mkdir()
    (no_engine / ".aishell" / "config.yaml").write_text("mounts: [\n")
    assert check.main(["--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    bad = [c for c in data["checks"] if c["section"] == "Configuration" and c["status"] == "fail"]
    assert bad and "Invalid YAML" in bad[0]["detail"]


def test_run_checks_honours_detection_disabled(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("X=1\n")
    g = good(
        project=Project(root=str(tmp_path), canonical=str(tmp_path), hash="12345678"),
        config=Config(detection=DetectionConfig(enabled=False)),
    )
    checks, sensitive = check.run_checks(g, {})
    assert sensitive == check.sensitive_json(None, enabled=False)
    assert ("ok", "Sensitive-file detection is disabled") in statuses(checks)
    assert check.passed(checks)

    g_on = good(project=g.project, config=Config())
    checks, sensitive = check.run_checks(g_on, {})
    assert sensitive["enabled"] is True and sensitive["total"] == 1
    assert_shape(check.check_json(checks, sensitive), CHECK_SHAPE)
