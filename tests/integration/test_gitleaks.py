"""`aishell gitleaks` and the scan-freshness warning, on a real engine.

`setup --with-gitleaks` builds `aishell:foundation` with gitleaks in it, which
replaces the image every aishell home on this engine uses. The module fixture
therefore builds it once and, at the end, rebuilds the session's image (all
layers come from the engine's build cache, so this takes seconds).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aishell.security import freshness
from testing.runner import Aishell

# An AWS access key ID gitleaks' default rules report (aws-access-token);
# not a real key, and not the documentation example that gitleaks ignores.
FAKE_KEY = "AKIAIOSFODNN7EXAMPL3"
SCAN = freshness.DEFAULT_ARGS  # ("detect", "--no-git", "--verbose", "--source", ".")
NO_SCAN_WARNING = "no gitleaks scan of this project on record"


def docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def gl(root_user: Aishell, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Aishell]:
    """An aishell home set up with OpenCode and gitleaks."""
    home = tmp_path_factory.mktemp("gitleaks") / "home"
    ai = Aishell(home=home, aishell_home=home / ".aishell", user=None, src=root_user.src)
    ai.aishell_home.mkdir(parents=True)
    (ai.aishell_home / "config.yaml").write_text(
        (root_user.aishell_home / "config.yaml").read_text()
    )
    try:
        setup = ai.run("setup", "--with-opencode", "--with-gitleaks", timeout=1800)
        assert setup.returncode == 0, setup.stderr
        yield ai
    finally:
        # Give the session its own foundation image back (without gitleaks).
        restore = root_user.run("setup", "--with-opencode", timeout=1800)
        assert restore.returncode == 0, restore.stderr


def project_in(ai: Aishell, name: str, files: dict[str, str] | None = None) -> Path:
    project = ai.new_project(name)
    for rel, text in (files or {}).items():
        ai.write(project / rel, text)
    return Path(os.path.realpath(project))


def scans(ai: Aishell) -> dict[str, str]:
    return dict(json.loads((ai.aishell_home / "state.json").read_text())["gitleaks_scans"])


def test_gitleaks_needs_setup_with_gitleaks(root_user: Aishell) -> None:
    project = root_user.new_project("nogl")
    result = root_user.run("gitleaks", cwd=project)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    assert "gitleaks is not installed" in errors[0]
    assert "--with-gitleaks" in errors[0]


def test_no_warning_without_gitleaks(root_user: Aishell) -> None:
    project = root_user.new_project("nowarn")
    result = root_user.run("--unsafe", "shell", cwd=project)
    assert result.returncode == 0, result.stderr
    assert "gitleaks" not in result.stderr, result.stderr


def test_leaks_found_exit_1_and_the_scan_is_recorded(gl: Aishell) -> None:
    project = project_in(gl, "leaky", {"config.py": f'aws_access_key_id = "{FAKE_KEY}"\n'})
    result = gl.run("gitleaks", *SCAN, cwd=project)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "aws-access-token" in result.stdout + result.stderr
    assert "config.py" in result.stdout + result.stderr
    recorded = scans(gl).get(str(project))
    assert recorded is not None
    assert freshness.age_days(recorded) == 0


def test_clean_project_exit_0_and_the_scan_is_recorded(gl: Aishell) -> None:
    project = project_in(gl, "clean", {"app.py": "print('hello')\n"})
    result = gl.run("gitleaks", *SCAN, cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert str(project) in scans(gl)


def test_gitleaks_version_is_not_a_scan(gl: Aishell) -> None:
    project = project_in(gl, "version")
    result = gl.run("gitleaks", "version", cwd=project)
    assert result.returncode == 0, result.stderr
    assert str(project) not in scans(gl)


def test_the_scan_sees_the_project_at_its_path_as_the_user(gl: Aishell) -> None:
    project = project_in(gl, "where", {"sub/config.py": f'key = "{FAKE_KEY}"\n'})
    result = gl.run(
        "gitleaks",
        "detect",
        "--no-git",
        "--source",
        "sub",
        "--no-banner",
        "--report-path",
        "report.json",
        "--report-format",
        "json",
        cwd=project,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads((project / "report.json").read_text())
    assert [f["RuleID"] for f in report] == ["aws-access-token"]
    assert (project / "report.json").stat().st_uid == gl.uid


def test_default_scan_of_a_clean_project(gl: Aishell) -> None:
    project = project_in(gl, "default", {"app.py": "print('hello')\n"})
    result = gl.run("gitleaks", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert str(project) in scans(gl)


def _shell(ai: Aishell, project: Path) -> subprocess.CompletedProcess[str]:
    """A non-interactive shell run: bash reads EOF and exits; warnings come before."""
    result = ai.run("--unsafe", "shell", cwd=project)
    assert result.returncode == 0, result.stderr
    return result


def test_freshness_warning_before_and_after_a_scan(gl: Aishell) -> None:
    project = project_in(gl, "fresh", {"app.py": "x = 1\n"})
    before = _shell(gl, project)
    assert NO_SCAN_WARNING in before.stderr
    assert "aishell gitleaks" in before.stderr

    assert gl.run("gitleaks", *SCAN, cwd=project).returncode == 0
    after = _shell(gl, project)
    assert "gitleaks" not in after.stderr, after.stderr

    # exec runs never warn
    quiet = gl.run("exec", "true", cwd=project)
    assert quiet.returncode == 0 and "gitleaks" not in quiet.stderr


def test_stale_scan_warns_with_its_age(gl: Aishell) -> None:
    project = project_in(gl, "stale", {"app.py": "x = 1\n"})
    state_path = gl.aishell_home / "state.json"
    data = json.loads(state_path.read_text())
    old = datetime.now(UTC) - timedelta(days=8, hours=1)
    data["gitleaks_scans"][str(project)] = old.strftime("%Y-%m-%dT%H:%M:%SZ")
    state_path.write_text(json.dumps(data, indent=2))
    stale = _shell(gl, project)
    assert "the last gitleaks scan of this project is 8 days old (threshold 7)" in stale.stderr
    gl.write(project / ".aishell" / "config.yaml", "gitleaks_freshness_threshold: 9\n")
    assert "gitleaks" not in _shell(gl, project).stderr


def test_freshness_check_can_be_turned_off(gl: Aishell) -> None:
    project = project_in(
        gl,
        "off",
        {"app.py": "x = 1\n", ".aishell/config.yaml": "gitleaks_freshness_check: false\n"},
    )
    result = _shell(gl, project)
    assert "gitleaks" not in result.stderr, result.stderr
    assert str(project) not in scans(gl)
