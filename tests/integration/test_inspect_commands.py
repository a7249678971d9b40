"""ps, volumes, info and check against a real engine, as root and as a non-root user.

JSON outputs are validated against the shapes documented in docs/json-output.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from testing.runner import Aishell

NULL_STR = (str, type(None))
NULL_BOOL = (bool, type(None))

PS_ITEM = {
    "name": NULL_STR,
    "container": str,
    "status": str,
    "state": str,
    "created": str,
    "harness": NULL_STR,
    "pre_start": str,
    "network": NULL_STR,
    "project": NULL_STR,
}
VOLUME_ITEM = {
    "name": str,
    "status": str,
    "size": NULL_STR,
    "size_bytes": (int, type(None)),
    "harnesses": (list, type(None)),
    "versions": dict,
    "in_use_by": [str],
    "labelled": bool,
    "made_by": (dict, type(None)),
    "held_by": [dict],
}
PRUNE = {"removed": [str], "skipped": [{"name": str, "reason": str}]}
FINDING = {
    "path": NULL_STR,
    "detector": str,
    "severity": str,
    "reason": str,
    "count": int,
    "examples": [str],
    "may_be_committed": bool,
}
TRUST = {
    "state": NULL_STR,
    "config_dir": NULL_STR,
    "digest": NULL_STR,
    "approved_digest": NULL_STR,
    "approved_at": NULL_STR,
    "error": NULL_STR,
}
CHECK = {
    "trust": TRUST,
    "passed": bool,
    "summary": {"ok": int, "warn": int, "fail": int},
    "checks": [dict],
    "sensitive_files": {
        "enabled": bool,
        "total": int,
        "high": int,
        "medium": int,
        "low": int,
        "findings": [FINDING],
    },
    "host_files": {
        "git_internals": str,
        "pending": [
            {"path": str, "change": str, "why": str, "detail": str, "kind": str, "diff": bool}
        ],
        "repositories": [{"path": str, "runs": [str]}],
        "artifacts": [{"path": str, "what": str}],
        "redirect": NULL_STR,
    },
}
TIER = {"tag": str, "held": NULL_BOOL, "exists": NULL_BOOL, "id": NULL_STR, "current": NULL_BOOL}
INFO = {
    "aishell_version": str,
    "network": (dict, type(None)),
    "trust": TRUST,
    "project": {
        "root": str,
        "canonical": str,
        "hash": str,
        "container_prefix": str,
        "extension_tag": str,
    },
    "engine": {
        "cli": NULL_STR,
        "kind": NULL_STR,
        "answering": bool,
        "server_version": NULL_STR,
        "error": NULL_STR,
    },
    "images": {
        "known": bool,
        "home_id": str,
        "foundation": TIER,
        "base": {**TIER, "custom": bool, "dockerfile": NULL_STR},
        "extension": {**TIER, "configured": bool, "dockerfile": NULL_STR},
        "run_image": str,
        "note": NULL_STR,
    },
    "harness_volume": {"name": NULL_STR, "exists": NULL_BOOL, "ready": NULL_BOOL},
    "harnesses": dict,
    "gitleaks": {"installed": bool, "last_scan": NULL_STR},
    "files": {
        "aishell_home": str,
        "state_file": str,
        "state_found": bool,
        "state_error": NULL_STR,
        "build_time": NULL_STR,
        "config": [{"scope": str, "path": str, "exists": bool, "error": NULL_STR}],
        "config_in_effect": [str],
        "config_error": NULL_STR,
    },
}
HARNESS = {
    "label": str,
    "harness": bool,
    "enabled": bool,
    "pin": NULL_STR,
    "version": NULL_STR,
    "config_paths": [{"path": str, "kind": str, "exists": bool, "source": str, "shared": bool}],
}


def assert_shape(value: Any, shape: Any, where: str = "$") -> None:
    if isinstance(shape, dict):
        assert isinstance(value, dict), f"{where}: expected an object, got {value!r}"
        assert set(value) == set(shape), f"{where}: keys {sorted(value)} != {sorted(shape)}"
        for key, sub in shape.items():
            assert_shape(value[key], sub, f"{where}.{key}")
    elif isinstance(shape, list):
        assert isinstance(value, list), f"{where}: expected an array, got {value!r}"
        for i, item in enumerate(value):
            assert_shape(item, shape[0], f"{where}[{i}]")
    else:
        assert isinstance(value, shape), f"{where}: {value!r} is not {shape}"


def assert_check_json(data: Any) -> None:
    assert_shape(data, CHECK)
    for entry in data["checks"]:
        assert (
            {"section", "status", "label"}
            <= set(entry)
            <= {
                "section",
                "status",
                "label",
                "detail",
            }
        )
        assert entry["status"] in ("ok", "warn", "fail")
    assert data["summary"]["fail"] == sum(c["status"] == "fail" for c in data["checks"])
    assert data["passed"] == (data["summary"]["fail"] == 0)


def docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=False)


def container_of(project: Path, name: str) -> str:
    digest = hashlib.sha256(os.path.realpath(project).encode()).hexdigest()[:8]
    return f"aishell-{digest}-{name}"


def json_of(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def ps_json(ai: Aishell, project: Path) -> list[dict[str, Any]]:
    data = json_of(ai.run("ps", "--json", cwd=project))
    assert_shape(data, [PS_ITEM])
    return data


def wait_for_row(
    ai: Aishell, project: Path, name: str, done: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """Poll `ps --json` (up to 10 s) until the row of `name` satisfies `done`."""
    deadline = time.monotonic() + 10
    row: dict[str, Any] | None = None
    while True:
        row = next((r for r in ps_json(ai, project) if r["name"] == name), None)
        if row is not None and done(row):
            return row
        if time.monotonic() > deadline:
            raise AssertionError(f"ps never showed the expected row for {name}: {row}")
        time.sleep(0.25)


@pytest.fixture
def detached(anyone: Aishell) -> Iterator[Callable[[Path, str], str]]:
    """Start `aishell --detach --name N shell` in a project; removed afterwards."""
    started: list[str] = []

    def start(project: Path, name: str) -> str:
        full = container_of(project, name)
        started.append(full)
        result = anyone.run("--detach", "--name", name, "shell", cwd=project)
        assert result.returncode == 0, result.stderr
        return full

    yield start
    for full in started:
        anyone.engine_cli("rm", "-f", full)


# ------------------------------------------------------------------------------ ps


def test_ps_empty_project(anyone: Aishell, project: Path) -> None:
    assert ps_json(anyone, project) == []
    text = anyone.run("ps", cwd=project)
    assert text.returncode == 0, text.stderr
    assert text.stdout.strip() == "No containers for this project."
    assert "aishell" in text.stderr  # how to start one


def test_ps_lists_a_detached_sandbox(
    anyone: Aishell, project: Path, detached: Callable[[Path, str], str]
) -> None:
    full = detached(project, "x")
    row = wait_for_row(anyone, project, "x", lambda r: r["pre_start"] != "pending")
    assert row["container"] == full
    assert row["state"] == "running"
    assert row["status"].startswith("Up")
    assert row["pre_start"] == "none"
    assert row["harness"] is None
    text = anyone.run("ps", cwd=project)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "CREATED", "PRE_START", "NETWORK"]
    assert lines[1].split()[0] == "x" and lines[1].split()[-2:] == ["none", "open"]
    # Another project sees none of it.
    other = anyone.new_project("other")
    assert ps_json(anyone, other) == []


def test_ps_reports_failed_pre_start(
    anyone: Aishell, project: Path, detached: Callable[[Path, str], str]
) -> None:
    anyone.write(project / ".aishell" / "config.yaml", 'pre_start: "exit 3"\n')
    full = detached(project, "bad")
    row = wait_for_row(anyone, project, "bad", lambda r: r["pre_start"] == "failed")
    assert row["container"] == full
    text = anyone.run("ps", cwd=project)
    assert text.returncode == 0, text.stderr
    assert "FAILED" in text.stdout
    assert "pre_start failed in bad" in text.stderr
    assert f"exec {full} cat /tmp/pre-start.log" in text.stderr
    # The banner is for people: JSON mode keeps stderr quiet.
    assert "pre_start failed" not in anyone.run("ps", "--json", cwd=project).stderr


def test_ps_reports_ready_pre_start(
    anyone: Aishell, project: Path, detached: Callable[[Path, str], str]
) -> None:
    anyone.write(project / ".aishell" / "config.yaml", 'pre_start: "sleep 1; echo ok"\n')
    detached(project, "good")
    first = next(r for r in ps_json(anyone, project) if r["name"] == "good")
    assert first["pre_start"] in ("pending", "ready")
    wait_for_row(anyone, project, "good", lambda r: r["pre_start"] == "ready")
    text = anyone.run("ps", cwd=project)
    assert "pre_start failed" not in text.stderr


# ------------------------------------------------------------------------- volumes


def active_volume(ai: Aishell) -> str:
    return str(json.loads((ai.aishell_home / "state.json").read_text())["harness_volume"])


def test_volumes_list_shows_the_active_volume(anyone: Aishell, project: Path) -> None:
    data = json_of(anyone.run("volumes", "--json", cwd=project))
    assert_shape(data, [VOLUME_ITEM])
    active = [v for v in data if v["status"] == "active"]
    assert [v["name"] for v in active] == [active_volume(anyone)]
    vol = active[0]
    assert vol["harnesses"] == ["opencode"]
    assert vol["versions"].get("opencode")
    assert vol["size_bytes"] is None or vol["size_bytes"] > 1_000_000
    assert all(v["status"] in ("active", "orphaned") for v in data)
    text = anyone.run("volumes", "list", cwd=project)
    assert text.returncode == 0, text.stderr
    line = next(x for x in text.stdout.splitlines() if x.startswith(vol["name"]))
    assert line.split()[1] == "active"
    assert f"opencode {vol['versions']['opencode']}" in line


@pytest.fixture
def orphans(root_user: Aishell) -> Iterator[list[str]]:
    """Two fake orphaned harness volumes; the second is mounted by a running container."""
    suffix = os.urandom(4).hex()
    names = [f"aishell-harness-test{suffix}a", f"aishell-harness-test{suffix}b"]
    for name in names:
        created = docker(
            "volume", "create", "--label", "aishell.kind=harness",
            "--label", "aishell.managed=1", name,
        )  # fmt: skip
        assert created.returncode == 0, created.stderr
    user = docker(
        "run", "-d", "--rm", "--label", "aishell.test=1", "--entrypoint", "sleep",
        "-v", f"{names[1]}:/x", root_user.hold("foundation"), "600",
    )  # fmt: skip
    assert user.returncode == 0, user.stderr
    yield names
    docker("rm", "-f", user.stdout.strip())
    for name in names:
        docker("volume", "rm", "-f", name)


def volume_exists(name: str) -> bool:
    return docker("volume", "inspect", name).returncode == 0


def test_volumes_prune(root_user: Aishell, orphans: list[str]) -> None:
    ai = root_user
    project = ai.new_project("prune")
    free, used = orphans
    listed = {v["name"]: v for v in json_of(ai.run("volumes", "--json", cwd=project))}
    assert listed[free]["status"] == "orphaned" and listed[free]["in_use_by"] == []
    assert listed[used]["status"] == "orphaned" and len(listed[used]["in_use_by"]) == 1
    assert listed[free]["harnesses"] is None  # no aishell.harnesses label

    # No terminal and no --yes: refuses, removes nothing. (Names restrict the prune to
    # these volumes: other tests on this engine may own other orphaned volumes.)
    refused = ai.run("volumes", "prune", free, used, cwd=project)
    assert refused.returncode == 1
    assert "--yes" in refused.stderr
    assert volume_exists(free)

    # The active volume is never pruned, even when named.
    active = ai.run("volumes", "prune", "--yes", "--json", active_volume(ai), cwd=project)
    data = json_of(active)
    assert_shape(data, PRUNE)
    assert data["removed"] == []
    assert data["skipped"][0]["name"] == active_volume(ai)
    assert volume_exists(active_volume(ai))

    result = ai.run("volumes", "prune", "--yes", "--json", free, used, cwd=project)
    data = json_of(result)
    assert_shape(data, PRUNE)
    assert data["removed"] == [free]
    assert [s["name"] for s in data["skipped"]] == [used]
    assert "in use" in data["skipped"][0]["reason"]
    assert not volume_exists(free)
    assert volume_exists(used)

    text = ai.run("volumes", "prune", "--yes", used, cwd=project)
    assert text.returncode == 0, text.stderr
    assert f"Skipping {used} (in use by container" in text.stdout
    assert "No orphaned volumes to prune." in text.stdout


def test_volumes_usage_errors(root_user: Aishell) -> None:
    bad = root_user.run("volumes", "frobnicate")
    assert bad.returncode == 2
    assert bad.stderr.startswith("Error:")
    missing = root_user.run("volumes", "prune", "--yes", "aishell-harness-doesnotexist")
    assert missing.returncode == 1
    assert "no harness volume named" in missing.stderr


# --------------------------------------------------------------------------- check


def test_check_passes_on_a_good_setup(anyone: Aishell, project: Path) -> None:
    text = anyone.run("check", cwd=project)
    assert text.returncode == 0, text.stdout + text.stderr
    assert text.stdout.startswith("Pre-flight checks")
    assert "All critical checks passed" in text.stdout
    assert "✓" in text.stdout  # LANG=C.UTF-8
    data = json_of(anyone.run("check", "--json", cwd=project))
    assert_check_json(data)
    assert data["passed"] is True
    labels = {(c["section"], c["status"], c["label"]) for c in data["checks"]}
    assert ("Setup", "ok", "Setup found") in labels
    assert any(
        s == "Harnesses" and st == "ok" and lb.startswith("OpenCode ") for s, st, lb in labels
    )
    assert data["sensitive_files"]["total"] == 0


def test_check_reports_sensitive_files_and_mounts(anyone: Aishell, project: Path) -> None:
    anyone.write(project / "id_rsa", "-----BEGIN OPENSSH PRIVATE KEY-----\n")
    anyone.write(project / ".aishell" / "config.yaml", "mounts:\n  - /nonexistent/aishell-src\n")
    result = anyone.run("check", "--json", cwd=project)
    data = json.loads(result.stdout)
    assert_check_json(data)
    assert result.returncode == 0  # warnings never fail
    assert data["sensitive_files"]["high"] == 1
    assert data["sensitive_files"]["findings"][0]["path"] == "id_rsa"
    warns = {(c["section"], c["label"]) for c in data["checks"] if c["status"] == "warn"}
    assert ("Mounts", "/nonexistent/aishell-src does not exist") in warns
    assert any(section == "Security" for section, _ in warns)


def test_check_fails_without_setup(anyone: Aishell, project: Path) -> None:
    empty = anyone.home / f"empty-{os.urandom(3).hex()}"
    empty.mkdir()
    if anyone.user:
        os.chown(empty, anyone.uid, anyone.gid)
    env = {"AISHELL_HOME": str(empty)}
    text = anyone.run("check", cwd=project, env=env)
    assert text.returncode == 1, text.stdout
    assert "Some critical checks failed" in text.stdout
    result = anyone.run("check", "--json", cwd=project, env=env)
    assert result.returncode == 1
    data = json.loads(result.stdout)
    assert_check_json(data)
    assert data["passed"] is False
    failed = {(c["section"], c["label"]) for c in data["checks"] if c["status"] == "fail"}
    assert ("Setup", "No setup found") in failed
    assert not (empty / "state.json").exists()  # check writes nothing


def test_check_fails_on_invalid_config(anyone: Aishell, project: Path) -> None:
    anyone.write(project / ".aishell" / "config.yaml", "mounts: [\n")
    result = anyone.run("check", "--json", cwd=project)
    assert result.returncode == 1
    data = json.loads(result.stdout)
    assert_check_json(data)
    bad = [c for c in data["checks"] if c["status"] == "fail"]
    assert [c["section"] for c in bad] == ["Configuration"]
    assert "Invalid YAML" in bad[0]["detail"]


# ---------------------------------------------------------------------------- info


def test_info_json(anyone: Aishell, project: Path) -> None:
    data = json_of(anyone.run("info", "--json", cwd=project))
    assert_shape(data, INFO)
    for entry in data["harnesses"].values():
        assert_shape(entry, HARNESS)
    p = data["project"]
    assert p["root"] == str(project)
    assert p["container_prefix"] == container_of(project, "")
    assert p["hash"] == p["container_prefix"].split("-")[1]
    assert data["engine"]["answering"] is True
    images = data["images"]
    assert images["known"] is True
    assert images["foundation"]["exists"] is True
    assert images["base"]["exists"] is True
    assert images["extension"]["configured"] is False
    assert images["run_image"] == anyone.hold("base")
    assert images["base"]["id"] == images["foundation"]["id"]  # no global Dockerfile
    assert data["harness_volume"]["name"] == active_volume(anyone)
    assert data["harness_volume"]["exists"] is True
    opencode = data["harnesses"]["opencode"]
    assert opencode["enabled"] is True and opencode["pin"] == "latest" and opencode["version"]
    assert [c["path"] for c in opencode["config_paths"]] == [
        str(anyone.home / ".config" / "opencode"),
        str(anyone.home / ".local" / "share" / "opencode"),
        str(anyone.home / ".local" / "state" / "opencode"),
        str(anyone.home / ".local" / "share" / "opencode" / "auth.json"),
    ]
    assert all(str(anyone.aishell_home) in c["source"] for c in opencode["config_paths"])
    assert data["files"]["aishell_home"] == str(anyone.aishell_home)
    assert data["files"]["state_found"] is True
    text = anyone.run("info", cwd=project)
    assert text.returncode == 0, text.stderr
    assert p["hash"] in text.stdout and "OpenCode" in text.stdout


def test_info_without_engine(anyone: Aishell, project: Path) -> None:
    env = {"AISHELL_ENGINE": "/nonexistent/docker"}
    data = json_of(anyone.run("info", "--json", cwd=project, env=env))
    assert_shape(data, INFO)
    assert data["images"]["known"] is False
    assert data["images"]["note"]
    assert data["engine"]["answering"] is False
    assert data["harnesses"]["opencode"]["enabled"] is True
    check = anyone.run("check", "--json", cwd=project, env=env)
    assert check.returncode == 1
    failed = [c for c in json.loads(check.stdout)["checks"] if c["status"] == "fail"]
    assert [c["section"] for c in failed] == ["Engine"]
