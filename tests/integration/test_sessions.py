"""tmux sessions, detach and attach, driven from a host tmux pane as a person would."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

from testing.runner import Aishell, HostTmux, shell_line


def _ticks(screen: str) -> list[int]:
    return [int(n) for n in re.findall(r"^tick (\d+)$", screen, flags=re.M)]


PROMPT = re.compile(r"^\[aishell\] \S+ [$#]", flags=re.M)


def _prompt_after_last_tick(screen: str) -> bool:
    tail = screen.rsplit("tick ", 1)[-1]
    return PROMPT.search(tail) is not None


def _container_state(ai: Aishell, name_part: str) -> str:
    out = ai.engine_cli("ps", "-a", "--filter", f"name={name_part}", "--format", "{{.State}}")
    return out.stdout.strip()


def test_detach_attach_same_process_and_exit_status(
    anyone: Aishell, project: Path, host_tmux: HostTmux
) -> None:
    name = "s" + os.urandom(3).hex()
    host_tmux.start("a", shell_line(anyone, "--unsafe", "--name", name, "shell", cwd=project))
    host_tmux.wait_for("a", lambda s: PROMPT.search(s) is not None)
    host_tmux.keys("a", "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.5; done", "Enter")
    host_tmux.wait_for("a", lambda s: len(_ticks(s)) >= 3)
    host_tmux.keys("a", "C-b", "d")
    screen = host_tmux.wait_for("a", lambda s: "HOST-RC=" in s)
    assert "HOST-RC=0" in screen
    assert f"aishell attach {name}" in screen
    assert _container_state(anyone, name) == "running"
    last_seen = max(_ticks(screen) or [0])

    ps = anyone.run("ps", "--json", cwd=project)
    if ps.returncode == 0:  # `ps` is its own command; check it when present
        rows = json.loads(ps.stdout)
        assert any(r["name"] == name and r["state"] == "running" for r in rows), rows

    time.sleep(2)
    host_tmux.start("b", shell_line(anyone, "attach", name, cwd=project))
    screen = host_tmux.wait_for("b", lambda s: max(_ticks(s) or [0]) > last_seen + 2)
    # The same loop kept counting while nobody was attached: no restart from 1.
    assert min(_ticks(screen)) > 1 or max(_ticks(screen)) > last_seen + 2
    host_tmux.keys("b", "C-c")
    host_tmux.wait_for("b", _prompt_after_last_tick)
    host_tmux.keys("b", "exit 5", "Enter")
    screen = host_tmux.wait_for("b", lambda s: "HOST-RC=" in s)
    assert "HOST-RC=5" in screen
    for _ in range(50):
        if _container_state(anyone, name) == "":
            break
        time.sleep(0.1)
    assert _container_state(anyone, name) == ""


@pytest.mark.targets("docker", "podman")
def test_agent_runs_as_the_user_inside_tmux(
    anyone: Aishell, project: Path, host_tmux: HostTmux
) -> None:
    host_tmux.start("c", shell_line(anyone, "--unsafe", "opencode", "--version", cwd=project))
    screen = host_tmux.wait_for("c", lambda s: "HOST-RC=" in s)
    assert "HOST-RC=0" in screen
    assert re.search(r"^\d+\.\d+\.\d+$", screen, flags=re.M), screen


def test_name_conflicts_and_detach(anyone: Aishell, project: Path) -> None:
    name = "d" + os.urandom(3).hex()
    started = anyone.run("--detach", "--name", name, "shell", cwd=project)
    assert started.returncode == 0, started.stderr
    assert f"aishell attach {name}" in started.stderr
    full = re.search(r"(aishell-[0-9a-f]{8}-" + name + ")", started.stderr)
    assert full
    try:
        again = anyone.run("--detach", "--name", name, "shell", cwd=project)
        assert again.returncode == 1
        assert f"already running; attach with 'aishell attach {name}'" in again.stderr
        # A stopped namesake is removed with a message and replaced.
        anyone.engine_cli("rm", "-f", full.group(1))
        anyone.engine_cli("create", "--name", full.group(1), anyone.hold("foundation"), "true")
        replaced = anyone.run("--detach", "--name", name, "shell", cwd=project)
        assert replaced.returncode == 0, replaced.stderr
        assert f"Removed stopped container {full.group(1)}" in replaced.stderr
    finally:
        anyone.engine_cli("rm", "-f", full.group(1))


def test_attach_errors(anyone: Aishell, project: Path) -> None:
    no_tty = anyone.run("attach", "nothing", cwd=project)
    assert no_tty.returncode == 2
    assert "attach needs an interactive terminal" in no_tty.stderr
    bad = anyone.run("attach", "-bad name", cwd=project)
    assert bad.returncode == 2


def test_attach_missing_container_from_a_terminal(
    anyone: Aishell, project: Path, host_tmux: HostTmux
) -> None:
    host_tmux.start("e", shell_line(anyone, "attach", "no-such-thing", cwd=project))
    screen = host_tmux.wait_for("e", lambda s: "HOST-RC=" in s)
    assert "Error: no container named 'no-such-thing' in this project" in screen
    assert "HOST-RC=1" in screen


def test_tmux_false_runs_without_tmux(anyone: Aishell, project: Path, host_tmux: HostTmux) -> None:
    anyone.write(project / ".aishell" / "config.yaml", "tmux: false\n")
    host_tmux.start("f", shell_line(anyone, "--unsafe", "shell", cwd=project))
    host_tmux.wait_for("f", lambda s: PROMPT.search(s) is not None)
    host_tmux.keys("f", 'echo "tmux=${TMUX:-none}"; exit 3', "Enter")
    screen = host_tmux.wait_for("f", lambda s: "HOST-RC=" in s)
    assert "tmux=none" in screen
    assert "HOST-RC=3" in screen


def test_attach_shell_opens_a_shell_beside_the_agent(
    anyone: Aishell, project: Path, host_tmux: HostTmux
) -> None:
    name = "sh" + os.urandom(3).hex()
    started = anyone.run("--detach", "--name", name, "shell", cwd=project)
    assert started.returncode == 0, started.stderr
    full = re.search(r"(aishell-[0-9a-f]{8}-" + name + ")", started.stderr)
    assert full
    try:
        host_tmux.start("g", shell_line(anyone, "attach", name, "--shell", cwd=project))
        host_tmux.wait_for("g", lambda s: PROMPT.search(s) is not None)
        host_tmux.keys("g", 'echo "uid=$(id -u) tmux=${TMUX:-none}"; exit 3', "Enter")
        screen = host_tmux.wait_for("g", lambda s: "HOST-RC=" in s)
        assert f"uid={anyone.uid} tmux=none" in screen
        assert "HOST-RC=3" in screen
        assert _container_state(anyone, name) == "running"  # the agent's session is untouched
    finally:
        anyone.engine_cli("rm", "-f", full.group(1))


def test_attach_to_a_stopped_container(anyone: Aishell, project: Path, host_tmux: HostTmux) -> None:
    name = "st" + os.urandom(3).hex()
    started = anyone.run("--detach", "--name", name, "shell", cwd=project)
    full = re.search(r"(aishell-[0-9a-f]{8}-" + name + ")", started.stderr)
    assert full, started.stderr
    try:
        anyone.engine_cli("rm", "-f", full.group(1))
        anyone.engine_cli("create", "--name", full.group(1), anyone.hold("foundation"), "true")
        host_tmux.start("h", shell_line(anyone, "attach", name, cwd=project))
        screen = host_tmux.wait_for("h", lambda s: "HOST-RC=" in s)
        assert f"Error: the container '{name}' is not running" in screen
        assert "HOST-RC=1" in screen
    finally:
        anyone.engine_cli("rm", "-f", full.group(1))
