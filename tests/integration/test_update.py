"""`aishell update` on a real engine: a fresh volume, switched to only when complete.

Each test has its own AISHELL_HOME (with the session's global config, so the
foundation image is the same one), so the shared session setup is not disturbed.
The volume `setup --with-opencode` fills is shared with the session; update never
touches it, and the tests remove only the fresh volumes they made.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aishell.engine import volumes
from aishell.hashing import selection_hash
from testing.runner import Aishell

FRESH_SUFFIX = r"-[0-9]{8}t[0-9]{6}-[0-9a-f]{4}"


def docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=False)


def read_state(ai: Aishell) -> dict:  # type: ignore[type-arg]
    return json.loads((ai.aishell_home / "state.json").read_text())


def tools_mount(container: str) -> str:
    """The name of the volume mounted at /tools in a container."""
    result = docker("inspect", "--format", "{{json .Mounts}}", container)
    assert result.returncode == 0, result.stderr
    mounts = json.loads(result.stdout)
    [name] = [m.get("Name") for m in mounts if m.get("Destination") == "/tools"]
    return str(name)


def volume_names() -> set[str]:
    return set(docker("volume", "ls", "--format", "{{.Name}}").stdout.split())


@pytest.fixture
def home(root_user: Aishell, tmp_path: Path) -> Iterator[Aishell]:
    """A dedicated aishell home, set up with OpenCode; its fresh volumes are removed after."""
    ai = root_user.sibling(tmp_path / "home")
    setup = ai.run("setup", "--with-opencode", timeout=1500)
    assert setup.returncode == 0, setup.stderr
    yield ai
    mine = os.path.realpath(ai.home) + os.sep
    listed = docker(
        "ps",
        "-a",
        "--filter",
        "label=aishell.project",
        "--format",
        '{{.ID}} {{.Label "aishell.project"}}',
    ).stdout
    for line in listed.splitlines():
        cid, _, project = line.partition(" ")
        if project.startswith(mine):
            docker("rm", "-f", cid)
    try:
        made = read_state(ai).get("volumes", {})
    except (OSError, ValueError):
        made = {}
    for name in made:
        if re.search(FRESH_SUFFIX + "$", name):
            docker("volume", "rm", name)
    ai.release_holds()  # e.g. the foundation `update --force` built for this home only


def pretend_a_release(ai: Aishell) -> None:
    """Record an older OpenCode than the volume holds, as if a release came out since:
    update then fills a fresh volume (it keeps the volume when nothing changed)."""
    path = ai.aishell_home / "state.json"
    data = json.loads(path.read_text())
    data["volumes"][data["harness_volume"]]["versions"]["opencode"] = "0.0.1"
    path.write_text(json.dumps(data, indent=2))


def _project_of(ai: Aishell, name: str) -> Path:
    project = ai.home / name
    project.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    return Path(os.path.realpath(project))


def test_update_while_a_container_runs(home: Aishell) -> None:
    ai = home
    project = _project_of(ai, "running")
    pretend_a_release(ai)
    before = read_state(ai)
    old = before["harness_volume"]
    assert not re.search(FRESH_SUFFIX, old)

    name = "upd" + os.urandom(3).hex()
    started = ai.run("--detach", "--name", name, "shell", cwd=project)
    assert started.returncode == 0, started.stderr
    found = re.search(r"(aishell-[0-9a-f]{8}-" + name + ")", started.stderr)
    assert found, started.stderr
    running = found.group(1)
    assert tools_mount(running) == old

    result = ai.run("update", timeout=1500)
    assert result.returncode == 0, result.stderr
    after = read_state(ai)
    new = after["harness_volume"]
    assert re.fullmatch(re.escape(volumes.volume_name({"opencode": "latest"})) + FRESH_SUFFIX, new)
    assert new != old and new in volume_names() and old in volume_names()
    assert after["volumes"][new]["versions"]["opencode"]
    assert after["tools"] == before["tools"]
    label = docker(
        "volume",
        "inspect",
        "--format",
        '{{index .Labels "aishell.harness.hash"}}|{{index .Labels "aishell.kind"}}',
        new,
    )
    assert label.stdout.strip() == volumes.selection_hash_of(new) + "|harness"
    version = after["volumes"][new]["versions"]["opencode"]
    assert f"OpenCode 0.0.1 \u2192 {version}" in result.stderr
    assert f"Reinstalling only what changed: OpenCode {version}" in result.stderr
    [notice] = [line for line in result.stderr.splitlines() if line.startswith("Still running")]
    assert notice.startswith(f"Still running with the previous volume {old}: ")
    assert running in notice  # (the shared volume may serve other containers too)
    assert "aishell volumes prune" in result.stderr

    # The running container was not touched: same volume, agent still works.
    assert docker("inspect", "--format", "{{.State.Running}}", running).stdout.strip() == "true"
    assert tools_mount(running) == old
    probe = docker("exec", running, "opencode", "--version")
    assert probe.returncode == 0, probe.stderr
    assert re.fullmatch(r"\d+\.\d+\.\d+\s*", probe.stdout)

    # A new launch mounts the new volume, and needs no install.
    proc = ai.popen("exec", "sh", "-c", "opencode --version && sleep 60", cwd=project)
    try:
        fresh_users: list[str] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not fresh_users:
            fresh_users = docker(
                "ps",
                "-q",
                "--filter",
                f"volume={new}",
                "--filter",
                f"label=aishell.project={project}",
            ).stdout.split()
            if proc.poll() is not None:
                break
            time.sleep(0.2)
        assert fresh_users, proc.communicate(timeout=30)
        [cid] = fresh_users
        assert tools_mount(cid) == new
        old_users = docker(
            "ps",
            "--format",
            "{{.Names}}",
            "--filter",
            f"volume={old}",
            "--filter",
            f"label=aishell.project={project}",
        ).stdout.split()
        assert old_users == [running]
    finally:
        for cid in docker(
            "ps", "-q", "--filter", f"volume={new}", "--filter", f"label=aishell.project={project}"
        ).stdout.split():
            docker("rm", "-f", cid)
        _out, err = proc.communicate(timeout=60)
    assert "Installing" not in err

    again = ai.run("exec", "opencode", "--version", cwd=project)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == version
    assert "Installing" not in again.stderr


def test_failed_update_leaves_the_working_volume_active(home: Aishell) -> None:
    ai = home
    project = _project_of(ai, "failing")
    state_path = ai.aishell_home / "state.json"
    data = read_state(ai)
    working = data["harness_volume"]
    impossible = {"opencode": "0.0.0-does-not-exist"}
    data["tools"] = impossible
    state_path.write_text(json.dumps(data, indent=2))
    saved = state_path.read_bytes()

    result = ai.run("update", timeout=1500)
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    assert "opencode-ai@0.0.0-does-not-exist" in errors[0]
    assert f"nothing changed: {working} stays in use" in errors[0]
    assert "Traceback" not in result.stderr
    assert "npm error" in result.stderr.split("Error:")[0]  # the engine's output comes first
    assert "Installing OpenCode: failed" in result.stderr

    assert state_path.read_bytes() == saved
    prefix = volumes.volume_name(impossible) + "-"
    assert not [v for v in volume_names() if v.startswith(prefix)]
    leftovers = docker("ps", "-aq", "--filter", "name=aishell-fill-" + selection_hash(impossible))
    assert leftovers.stdout.strip() == ""

    works = ai.run("exec", "opencode", "--version", cwd=project)
    assert works.returncode == 0, works.stderr
    assert re.fullmatch(r"\d+\.\d+\.\d+\s*", works.stdout)


def test_update_with_nothing_new_keeps_the_volume(home: Aishell) -> None:
    ai = home
    before = read_state(ai)
    result = ai.run("update", timeout=900)
    assert result.returncode == 0, result.stderr
    if "Reinstalling only what changed" in result.stderr:  # a release came out meanwhile
        before = read_state(ai)
        result = ai.run("update", timeout=900)
    assert "Already up to date:" in result.stderr, result.stderr
    assert read_state(ai)["harness_volume"] == before["harness_volume"]
    assert "Installing" not in result.stderr


def test_update_without_agents_has_nothing_to_do(home: Aishell) -> None:
    ai = home
    assert ai.run("setup", timeout=1500).returncode == 0
    result = ai.run("update", timeout=600)
    assert result.returncode == 0, result.stderr
    assert "No agents selected; nothing to update." in result.stderr
    assert read_state(ai)["harness_volume"] == ""


def test_update_without_setup(root_user: Aishell, tmp_path: Path) -> None:
    empty = Aishell(home=tmp_path, aishell_home=tmp_path / "none", user=None, src=root_user.src)
    result = empty.run("update")
    assert result.returncode == 1
    assert result.stderr.strip().startswith("Error: no setup found; run 'aishell setup")


def test_update_force_rebuilds_the_foundation(home: Aishell) -> None:
    ai = home
    before = docker("image", "inspect", "--format", "{{.Id}}", ai.hold()).stdout.strip()
    old = read_state(ai)["harness_volume"]
    pretend_a_release(ai)
    result = ai.run("update", "--force", timeout=1800)
    assert result.returncode == 0, result.stderr
    assert "Building the foundation image" in result.stderr
    assert "is up to date" not in result.stderr
    after = docker("image", "inspect", "--format", "{{.Id}}", ai.hold()).stdout.strip()
    assert after and after != before
    assert read_state(ai)["harness_volume"] != old
    works = ai.run("exec", "opencode", "--version", cwd=_project_of(ai, "forced"))
    assert works.returncode == 0, works.stderr
