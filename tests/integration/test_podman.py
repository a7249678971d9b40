"""What only Podman needs checking: rootful (root) and rootless (a non-root user, keep-id).

The engine-neutral tests run on Podman where they are written, marked
`@pytest.mark.targets("docker", "podman")` (test_core, test_sessions); these are the
Podman-specific ones, run through `AISHELL_ENGINE=podman`. The podman fixtures
(conftest) prepare the machine with scripts/prepare-engine (AISHELL_TEST_PODMAN=1).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
from pathlib import Path

import pytest

from testing.runner import Aishell, HostTmux, shell_line
from tests.integration import test_inspect_commands as inspect_cmds
from tests.integration import test_sessions as sessions

# `anyone` (and `project`) here: rootful Podman as root, then rootless Podman as the
# non-root user.
pytestmark = pytest.mark.targets("podman")


@pytest.fixture
def pm(anyone: Aishell) -> Aishell:
    """This module's name for `anyone`: aishell on Podman."""
    return anyone


def _container(result_stderr: str, name: str) -> str:
    match = re.search(r"(aishell-[0-9a-f]{8}-" + re.escape(name) + ")", result_stderr)
    assert match, result_stderr
    return match.group(1)


def _ps(pm: Aishell, project: Path) -> list[dict]:  # type: ignore[type-arg]
    rows = inspect_cmds.json_of(pm.run("ps", "--json", cwd=project))
    for row in rows:  # the documented keys (later issues may add more)
        assert set(inspect_cmds.PS_ITEM) <= set(row), row
    return rows  # type: ignore[no-any-return]


def _state(pm: Aishell, name_part: str) -> str:
    out = pm.engine_cli("ps", "-a", "--filter", f"name={name_part}", "--format", "{{.State}}")
    state = out.stdout.strip()
    return "running" if state.startswith("Up ") else state  # podman: "Up 3 seconds ago"


# -- the engine in use --------------------------------------------------------------


def test_info_reports_podman(pm: Aishell, project: Path) -> None:
    data = inspect_cmds.json_of(pm.run("info", "--json", cwd=project))
    assert set(inspect_cmds.INFO) <= set(data), sorted(data)
    assert data["engine"]["kind"] == "podman"
    assert data["engine"]["answering"] is True
    assert data["images"]["foundation"]["exists"] is True
    assert data["images"]["foundation"]["current"] is True
    assert data["images"]["run_image"] == pm.hold("base")
    assert data["harness_volume"]["exists"] is True
    assert data["harnesses"]["opencode"]["version"]


def test_engine_from_global_config(podman_root: Aishell, tmp_path: Path) -> None:
    """`engine:` in the global config chooses podman without AISHELL_ENGINE; a bad
    value is a config error; AISHELL_ENGINE wins over the config."""
    ai = podman_root
    env = {k: v for k, v in ai.extra_env.items() if k != "AISHELL_ENGINE"}
    home = tmp_path / "cfg-home"
    other = Aishell(home=home, aishell_home=home / ".aishell", user=None, src=ai.src, extra_env=env)
    other.aishell_home.mkdir(parents=True)
    (other.aishell_home / "state.json").write_text((ai.aishell_home / "state.json").read_text())
    project = other.new_project("cfg")
    config = other.aishell_home / "config.yaml"
    config.write_text((ai.aishell_home / "config.yaml").read_text() + "engine: podman\n")
    data = inspect_cmds.json_of(other.run("info", "--json", cwd=project))
    assert data["engine"]["kind"] == "podman", data["engine"]
    ran = other.run("exec", "sh", "-c", "echo in-podman", cwd=project)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == "in-podman\n"
    overridden = inspect_cmds.json_of(
        other.run("info", "--json", cwd=project, env={"AISHELL_ENGINE": "docker"})
    )
    assert overridden["engine"]["kind"] == "docker"
    config.write_text("engine: lxc\n")
    bad = other.run("exec", "true", cwd=project)
    assert bad.returncode == 1
    assert "engine" in bad.stderr and "expected 'docker' or 'podman'" in bad.stderr, bad.stderr
    assert "Traceback" not in bad.stderr
    other.write(project / ".aishell" / "config.yaml", "engine: podman\n")
    config.write_text("")
    project_only = other.run("exec", "true", cwd=project)
    assert project_only.returncode == 1
    assert "'engine' is global-only" in project_only.stderr, project_only.stderr
    # (Its engine came from its config: its holds are in podman's storage, which the
    # release at the end of the run, going by AISHELL_ENGINE, would not look at.)
    dataclasses.replace(other, extra_env=ai.extra_env).release_holds(prune=False, keep=True)


# -- the sandbox, with Podman's own checks ------------------------------------------


def test_pre_start_runs_as_the_user_and_logs(pm: Aishell, project: Path) -> None:
    pm.write(
        project / ".aishell" / "config.yaml",
        "pre_start:\n  - echo started-$(id -u)\n  - touch /tmp/pre-start-marker\n",
    )
    name = "pre" + os.urandom(3).hex()
    result = pm.run("--detach", "--name", name, "shell", cwd=project)
    assert result.returncode == 0, result.stderr
    full = _container(result.stderr, name)
    assert f"aishell stop {name}" in result.stderr
    try:
        for _ in range(100):
            probe = pm.engine_cli(
                "exec", full, "sh", "-c", "test -f /tmp/pre-start.done && cat /tmp/pre-start.log"
            )
            if probe.returncode == 0:
                break
            time.sleep(0.1)
        assert probe.stdout.strip() == f"started-{pm.uid}", probe.stderr
        owner = pm.engine_cli("exec", full, "stat", "-c", "%u", "/tmp/pre-start-marker")
        assert owner.stdout.strip() == str(pm.uid)
        ps = _ps(pm, project)
        row = next(r for r in ps if r["name"] == name)
        assert row["state"] == "running" and row["container"] == full
        assert row["pre_start"] in ("ready", "running"), row
        assert re.match(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", row["created"]), row
        again = pm.run("--detach", "--name", name, "shell", cwd=project)
        assert again.returncode == 1
        assert f"already running; attach with 'aishell attach {name}'" in again.stderr
    finally:
        pm.engine_cli("rm", "-f", full)


def test_ps_volumes_check_json(pm: Aishell, project: Path) -> None:
    assert _ps(pm, project) == []
    volumes = inspect_cmds.json_of(pm.run("volumes", "--json", cwd=project))
    for row in volumes:
        assert set(inspect_cmds.VOLUME_ITEM) <= set(row), row
    state = json.loads((pm.aishell_home / "state.json").read_text())
    active = [v for v in volumes if v["name"] == state["harness_volume"]]
    assert active and active[0]["status"] == "active", volumes
    assert active[0]["harnesses"] == ["opencode"]
    check = pm.run("check", "--json", cwd=project)
    data = json.loads(check.stdout)
    inspect_cmds.assert_check_json(data)
    assert data["passed"] is True, data
    labels = {(c["section"], c["status"], c["label"]) for c in data["checks"]}
    assert any("podman engine answers" in lb for _, st, lb in labels if st == "ok"), labels
    assert check.returncode == 0


def test_detach_attach_same_process_and_exit_status(
    pm: Aishell, project: Path, host_tmux: HostTmux
) -> None:
    name = "s" + os.urandom(3).hex()
    host_tmux.start("a", shell_line(pm, "--unsafe", "--name", name, "shell", cwd=project))
    host_tmux.wait_for("a", lambda s: sessions.PROMPT.search(s) is not None)
    host_tmux.keys("a", "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.5; done", "Enter")
    host_tmux.wait_for("a", lambda s: len(sessions._ticks(s)) >= 3)
    host_tmux.keys("a", "C-b", "d")
    screen = host_tmux.wait_for("a", lambda s: "HOST-RC=" in s)
    assert "HOST-RC=0" in screen
    assert f"aishell attach {name}" in screen
    assert _state(pm, name) == "running"
    last_seen = max(sessions._ticks(screen) or [0])
    time.sleep(1.5)
    host_tmux.start("b", shell_line(pm, "attach", name, cwd=project))
    screen = host_tmux.wait_for("b", lambda s: max(sessions._ticks(s) or [0]) > last_seen + 2)
    host_tmux.keys("b", "C-c")
    host_tmux.wait_for("b", sessions._prompt_after_last_tick)
    host_tmux.keys("b", "exit 5", "Enter")
    screen = host_tmux.wait_for("b", lambda s: "HOST-RC=" in s)
    assert "HOST-RC=5" in screen
    for _ in range(100):
        if _state(pm, name) == "":
            break
        time.sleep(0.1)
    assert _state(pm, name) == ""


def test_update_fills_a_new_volume(pm: Aishell, project: Path) -> None:
    state_file = pm.aishell_home / "state.json"
    saved = state_file.read_text()
    before = json.loads(saved)["harness_volume"]
    after = before
    data = json.loads(saved)  # as if an OpenCode release came out since the setup
    data["volumes"][before]["versions"]["opencode"] = "0.0.1"
    state_file.write_text(json.dumps(data))
    try:
        result = pm.run("update", cwd=project, timeout=900)
        assert result.returncode == 0, result.stderr
        after = json.loads(state_file.read_text())["harness_volume"]
        assert after != before and after.startswith(before[: len("aishell-harness-") + 12])
        ran = pm.run("exec", "opencode", "--version", cwd=project)
        assert ran.returncode == 0, ran.stderr
        listed = pm.engine_cli("volume", "ls", "--format", "{{.Name}}").stdout.split()
        assert after in listed
    finally:
        # The session's other tests keep using the volume they were set up with.
        state_file.write_text(saved)
        if after != before:
            pm.engine_cli("volume", "rm", after)


def test_verify_passes_on_podman(pm: Aishell, project: Path) -> None:
    result = pm.run("verify", "--json", cwd=project, timeout=300)
    data = json.loads(result.stdout)
    failed = [c for c in data["checks"] if c["status"] == "fail"]
    assert result.returncode == 0 and data["passed"], failed


def test_volumes_prune_on_podman(pm: Aishell, project: Path) -> None:
    orphan = "aishell-harness-podmantest" + os.urandom(3).hex()
    created = pm.engine_cli(
        "volume",
        "create",
        "--label",
        "aishell.kind=harness",
        "--label",
        "aishell.managed=1",
        orphan,
    )
    assert created.returncode == 0, created.stderr
    listed = {v["name"]: v for v in json.loads(pm.run("volumes", "--json", cwd=project).stdout)}
    assert listed[orphan]["status"] == "orphaned"
    pruned = pm.run("volumes", "prune", "--yes", "--json", orphan, cwd=project)
    assert pruned.returncode == 0, pruned.stderr
    assert json.loads(pruned.stdout)["removed"] == [orphan]
