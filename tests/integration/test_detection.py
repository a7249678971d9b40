"""Sensitive-file detection before interactive runs, on a real engine."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from testing.runner import Aishell, HostTmux, shell_line


def _created_since(project: Path, since: int) -> str:
    return subprocess.run(
        [
            "docker",
            "events",
            "--since",
            str(since),
            "--until",
            str(int(time.time()) + 1),
            "--filter",
            "event=create",
            "--filter",
            f"label=aishell.project={os.path.realpath(project)}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@pytest.fixture
def leaky(anyone: Aishell) -> Path:
    project = anyone.new_project("leaky")
    anyone.write(project / "deploy" / "id_rsa", "-----BEGIN OPENSSH PRIVATE KEY-----\n")
    anyone.write(project / ".env", "TOKEN=x\n")
    return project


def test_high_findings_without_terminal_fail_and_start_nothing(
    anyone: Aishell, leaky: Path
) -> None:
    since = int(time.time()) - 1
    result = anyone.run("shell", cwd=leaky)
    assert result.returncode == 1
    assert "deploy/id_rsa" in result.stderr
    assert "SSH private key" in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "--unsafe" in errors[0], result.stderr
    assert _created_since(leaky, since) == ""


def test_unsafe_and_exec_are_not_stopped(anyone: Aishell, leaky: Path) -> None:
    unsafe = anyone.run("--unsafe", "shell", cwd=leaky)  # bash reads EOF and exits
    assert unsafe.returncode == 0, unsafe.stderr
    assert "SSH private key" in unsafe.stderr  # still reported
    exec_ = anyone.run("exec", "true", cwd=leaky)
    assert exec_.returncode == 0, exec_.stderr
    assert "Sensitive files" not in exec_.stderr


def test_allowlist_and_disabled_detection(anyone: Aishell, leaky: Path) -> None:
    anyone.write(
        leaky / ".aishell" / "config.yaml",
        "detection:\n  allowlist:\n    - {path: deploy/id_rsa, reason: test fixture key}\n",
    )
    allowed = anyone.run("shell", cwd=leaky)
    assert allowed.returncode == 0, allowed.stderr
    assert "id_rsa" not in allowed.stderr
    assert ".env" in allowed.stderr  # medium findings are still listed
    anyone.write(leaky / ".aishell" / "config.yaml", "detection:\n  enabled: false\n")
    off = anyone.run("shell", cwd=leaky)
    assert off.returncode == 0, off.stderr
    assert "Sensitive files" not in off.stderr


@pytest.mark.parametrize(("answer", "expect_rc"), [("n", 1), ("y", 4)])
def test_terminal_prompt(
    anyone: Aishell, leaky: Path, host_tmux: HostTmux, answer: str, expect_rc: int
) -> None:
    host_tmux.start("p", shell_line(anyone, "--name", f"p{answer}", "shell", cwd=leaky))
    host_tmux.wait_for("p", lambda s: "Proceed with 1 high-severity" in s)
    host_tmux.keys("p", answer, "Enter")
    if answer == "y":
        host_tmux.wait_for("p", lambda s: "[aishell]" in s.split("Proceed", 1)[1])
        time.sleep(0.5)
        host_tmux.keys("p", "exit 4", "Enter")
    screen = host_tmux.wait_for("p", lambda s: "HOST-RC=" in s)
    assert f"HOST-RC={expect_rc}" in screen
    if answer == "n":
        assert "Aborted." in screen
