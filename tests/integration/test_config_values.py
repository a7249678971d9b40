"""Bad config values end in one `Error:` line naming the file, the key and the value,
and a non-zero exit, for a launch and for `aishell check`; nothing starts.

Each case was, before the fix, a launch that started (a mount at the wrong path), a
traceback on the second launch (OverflowError in the session-record pruning), or an
engine error that named no config key (digits the engine does not read)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from testing.runner import Aishell


@contextlib.contextmanager
def global_config(ai: Aishell, extra: str) -> Iterator[Path]:
    """`extra` appended to the home's global config for the duration (tests in one
    worker run one after another; the config is restored even when the test fails)."""
    path = ai.aishell_home / "config.yaml"
    before = path.read_text()
    path.write_text(before + extra)
    try:
        yield path
    finally:
        path.write_text(before)


def assert_check_names(stdout: str, scope: str, fragment: str) -> None:
    """`aishell check` marks the file invalid and says why on the next line."""
    lines = stdout.splitlines()
    marked = [i for i, line in enumerate(lines) if f"✗ {scope} config is invalid:" in line]
    assert len(marked) == 1, stdout
    assert fragment in lines[marked[0] + 1], stdout


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("Error:")]


def assert_one_error(result: object, *fragments: str) -> None:
    stderr = result.stderr  # type: ignore[attr-defined]
    assert result.returncode != 0, stderr  # type: ignore[attr-defined]
    assert "Traceback" not in stderr, stderr
    lines = error_lines(stderr)
    assert len(lines) == 1, stderr
    for fragment in fragments:
        assert fragment in lines[0], stderr
    assert len(lines[0]) < 400, lines[0]  # a 4,300-digit value is not echoed in full


HUGE = "9" * 400  # an int YAML reads; days * 86400 of it is no float


@pytest.mark.parametrize(
    ("extra", "fragments"),
    [
        (f"sessions_keep_days: {HUGE}\n", ("sessions_keep_days: must be from 1 to 36500",)),
        (f"sessions_keep: {HUGE}\n", ("sessions_keep: must be from 1 to 100000",)),
        (
            f"gitleaks_freshness_threshold: {HUGE}\n",
            ("gitleaks_freshness_threshold: must be from 1 to 36500",),
        ),
        ("sessions_keep_days: 0\n", ("sessions_keep_days: must be from 1 to 36500", "got 0")),
    ],
)
def test_a_bad_number_in_the_global_config_stops_every_launch_and_check(
    anyone: Aishell, project: Path, extra: str, fragments: tuple[str, ...]
) -> None:
    """Launched twice: the first launch leaves a session record, the second prunes the
    records with `sessions_keep_days` (where a huge value was an OverflowError)."""
    with global_config(anyone, extra) as path:
        for _ in range(2):
            launched = anyone.run("exec", "sh", "-c", "echo STARTED", cwd=project)
            assert "STARTED" not in launched.stdout
            assert_one_error(launched, f"{path}:", *fragments)
        checked = anyone.run("check", cwd=project)
        assert checked.returncode != 0
        assert f"Global config is invalid: {path}" in checked.stdout
        assert_check_names(checked.stdout, "Global", fragments[0])


@pytest.mark.parametrize(
    ("config", "fragments"),
    [
        # Arabic-Indic digits: `\d` took them for a port; the engine refused them.
        ('ports: ["\u0661\u0662\u0663\u0664:80"]\n', ("config.yaml:1: ports[0]: invalid port",)),
        (f'ports: ["{"9" * 5000}:80"]\n', ("ports[0]: invalid port mapping", "5000 digits")),
        (
            "network:\n  mode: allowlist\n  allow: ['example.com:99999999999']\n",
            ("network.allow[0]: invalid host pattern 'example.com:99999999999': port outside",),
        ),
        (
            "network:\n  mode: allowlist\n  allow: ['example.com:\u0661\u0662']\n",
            ("network.allow[0]: invalid host pattern",),
        ),
        # YAML reads a bare ~ as null: the mount went to the source path, not the home.
        (
            "mounts:\n  - source: /usr/share/doc\n    target: ~\n",
            ("config.yaml:3: mounts[0].target: expected a string, got null",),
        ),
        (
            "mounts:\n  - source:\n    target: /data\n",
            ("config.yaml:2: mounts[0].source: expected a string, got null",),
        ),
    ],
)
def test_a_bad_value_in_the_project_config_stops_the_launch_and_check(
    anyone: Aishell, project: Path, config: str, fragments: tuple[str, ...]
) -> None:
    anyone.write(project / ".aishell" / "config.yaml", config)
    launched = anyone.run("exec", "sh", "-c", "echo STARTED", cwd=project)
    assert "STARTED" not in launched.stdout
    assert_one_error(launched, *fragments)
    checked = anyone.run("check", cwd=project)
    assert checked.returncode != 0
    assert_check_names(checked.stdout, "Project", fragments[0])
