"""`aishell verify` on a real engine: it passes on a default sandbox (as root and as a
non-root user) and fails when the configuration opens a hole in the walls."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from testing.runner import Aishell

IDS = ["user", "not-root", "canary", "socket", "capabilities", "env", "project",
       "git-internals", "setuid", "devices", "init", "tool-opencode"]  # fmt: skip


def _private_tmp(ai: Aishell) -> Path:
    """This user's own temporary directory for verify's canaries: the machine's /tmp is
    shared with other verify runs (another test worker's), whose canaries are there
    while they run."""
    path = ai.home / "tmp"
    if not path.exists():
        path.mkdir()
        if ai.user:
            os.chown(path, ai.uid, ai.gid)
    return path


def _verify(ai: Aishell, project: Path, *args: str) -> tuple[int, str, str]:
    env = {"TMPDIR": str(_private_tmp(ai))}
    result = ai.run("verify", *args, cwd=project, timeout=900, env=env)
    return result.returncode, result.stdout, result.stderr


def _json(ai: Aishell, project: Path) -> tuple[int, dict[str, Any]]:
    code, out, err = _verify(ai, project, "--json")
    try:
        return code, json.loads(out)
    except ValueError as exc:
        raise AssertionError(f"stdout is not JSON:\n{out}\n--- stderr:\n{err}") from exc


def _statuses(data: dict[str, Any]) -> dict[str, str]:
    return {c["id"]: c["status"] for c in data["checks"]}


def _leftovers(ai: Aishell, project: Path) -> list[str]:
    dirs = [ai.home, project, _private_tmp(ai)]
    return [str(p) for d in dirs for p in d.iterdir() if p.name.startswith(".aishell-verify-")]


def test_verify_passes_on_a_default_sandbox(anyone: Aishell, project: Path) -> None:
    code, out, err = _verify(anyone, project)
    assert code == 0, out + err
    lines = out.splitlines()
    assert len(lines) == len(IDS) + 1, out
    assert not [line for line in lines if line.startswith("✗")], out
    assert lines[-1].startswith("All "), out
    if anyone.user is None:
        assert "- The agent does not run as root: skipped" in out
    else:
        assert "✓ The agent does not run as root" in out
    assert "✓ OpenCode is present and runs" in out
    assert _leftovers(anyone, project) == []


def test_verify_json_shape(anyone: Aishell, project: Path) -> None:
    code, data = _json(anyone, project)
    assert code == 0, data
    assert list(data) == ["passed", "checks"]
    assert data["passed"] is True
    assert [c["id"] for c in data["checks"]] == IDS
    for check in data["checks"]:
        assert list(check) == ["id", "label", "status", "detail"]
        assert check["status"] in ("pass", "fail", "skip")
        assert isinstance(check["label"], str) and isinstance(check["detail"], str)
    expected = {i: "pass" for i in IDS}
    if anyone.user is None:
        expected["not-root"] = "skip"
    assert _statuses(data) == expected
    user = next(c for c in data["checks"] if c["id"] == "user")
    assert user["detail"] == f"uid {anyone.uid}, gid {anyone.gid}"


def test_verify_fails_when_the_docker_socket_is_mounted(anyone: Aishell, project: Path) -> None:
    anyone.write(
        project / ".aishell" / "config.yaml",
        'mounts:\n  - "/var/run/docker.sock:/var/run/docker.sock"\n',
    )
    code, data = _json(anyone, project)
    assert code == 1
    assert data["passed"] is False
    statuses = _statuses(data)
    assert statuses["socket"] == "fail", data
    assert {i for i, s in statuses.items() if s == "fail"} == {"socket"}, data["checks"]
    socket = next(c for c in data["checks"] if c["id"] == "socket")
    assert "docker.sock" in socket["detail"]
    # And as text: the failing line says what was found.
    code, out, _ = _verify(anyone, project)
    assert code == 1
    assert "✗ No Docker or Podman API is reachable: " in out
    assert out.splitlines()[-1].startswith("1 of ")


def test_verify_fails_when_the_home_directory_is_mounted(anyone: Aishell, project: Path) -> None:
    anyone.write(project / ".aishell" / "config.yaml", 'mounts:\n  - "~"\n')
    code, data = _json(anyone, project)
    assert code == 1
    statuses = _statuses(data)
    assert statuses["canary"] == "fail", data
    assert {i for i, s in statuses.items() if s == "fail"} == {"canary"}, data
    canary = next(c for c in data["checks"] if c["id"] == "canary")
    assert f"through the configured mount {anyone.home}" in canary["detail"]
    assert _leftovers(anyone, project) == []


def test_verify_fails_on_added_capabilities(root_user: Aishell) -> None:
    project = root_user.new_project("caps")
    root_user.write(project / ".aishell" / "config.yaml", "docker_args: --cap-add SYS_ADMIN\n")
    code, data = _json(root_user, project)
    assert code == 1
    caps = next(c for c in data["checks"] if c["id"] == "capabilities")
    assert caps["status"] == "fail"
    assert "sys_admin" in caps["detail"]


def test_verify_under_an_allowlist_policy(root_user: Aishell) -> None:
    """verify registers a session with the home's egress proxy; nothing of it is left."""
    project = root_user.new_project("verify-net")
    root_user.write(
        project / ".aishell" / "config.yaml",
        "network:\n  mode: allowlist\n  allow: [example.org]\n",
    )
    label = f"label=aishell.project={os.path.realpath(project)}"
    result = root_user.run("verify", "--json", cwd=project, timeout=300)
    data = json.loads(result.stdout)
    assert result.returncode == 0 and data["passed"], data
    leftovers = subprocess.run(
        ["docker", "ps", "-aq", "--filter", label], capture_output=True, text=True, check=True
    ).stdout.split()
    assert leftovers == []
