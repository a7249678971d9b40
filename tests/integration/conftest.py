"""Integration tests: a real engine, real images, a real agent from the npm registry.

The base image and engine are prepared by scripts/prepare-engine (run by
scripts/test). With CI set, a missing engine fails the run instead of skipping.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from testing.runner import Aishell, NON_ROOT_USER, ensure_non_root_user

REPO = Path(__file__).resolve().parents[2]


def _engine_answers() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def engine() -> str:
    if not _engine_answers():
        subprocess.run([str(REPO / "scripts" / "prepare-engine")], check=False)
    if not _engine_answers():
        if os.environ.get("CI"):
            pytest.fail("no container engine answers and CI is set: integration tests must run")
        pytest.skip("no container engine answers (run scripts/prepare-engine)")
    return "docker"


@pytest.fixture(scope="session")
def shared_root() -> Iterator[Path]:
    # Not under pytest's tmp dir: that one is private to root, and the
    # non-root user must read aishell's source from here.
    root = Path(tempfile.mkdtemp(prefix="aishell-it-"))
    os.chmod(root, 0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _global_config(home: Path) -> None:
    certs = sorted(glob.glob("/usr/local/share/ca-certificates/**/*.crt", recursive=True))
    home.mkdir(parents=True, exist_ok=True)
    lines = ["ca_certificates:"] + [f"  - {c}" for c in certs] if certs else []
    (home / "config.yaml").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="session")
def root_user(engine: str, shared_root: Path) -> Aishell:
    """aishell run as root, with its own HOME and AISHELL_HOME, set up with OpenCode."""
    home = shared_root / "root-home"
    home.mkdir()
    ai = Aishell(home=home, aishell_home=home / ".aishell", user=None, src=REPO / "src")
    _global_config(ai.aishell_home)
    result = ai.run("setup", "--with-opencode", timeout=1500)
    assert result.returncode == 0, result.stderr
    return ai


@pytest.fixture(scope="session")
def user(engine: str, shared_root: Path, root_user: Aishell) -> Aishell:
    """aishell run as a non-root user (member of the docker group)."""
    uid = ensure_non_root_user()
    home = Path(f"/home/{NON_ROOT_USER}") / f"it-{os.getpid()}"
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    src = shared_root / "src"
    if not src.exists():
        shutil.copytree(REPO / "src", src)
        subprocess.run(["chmod", "-R", "a+rX", str(shared_root)], check=True)
    ai = Aishell(home=home, aishell_home=home / ".aishell", user=NON_ROOT_USER, src=src)
    _global_config(ai.aishell_home)
    subprocess.run(["chown", "-R", f"{uid}:{uid}", str(home)], check=True)
    result = ai.run("setup", "--with-opencode", timeout=1500)
    assert result.returncode == 0, result.stderr
    return ai


@pytest.fixture(params=["root", "user"])
def anyone(request: pytest.FixtureRequest) -> Aishell:
    """Each test using this runs once as root and once as a non-root user."""
    return request.getfixturevalue("root_user" if request.param == "root" else "user")


@pytest.fixture
def project(anyone: Aishell, tmp_path: Path) -> Path:
    return anyone.new_project()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Remove containers the tests left behind (by label); images and volumes are a cache.
    # Only once everything is over: an xdist worker that finishes early must not
    # remove what the other worker's tests still use.
    if hasattr(session.config, "workerinput") or shutil.which("docker") is None:
        return
    ids = subprocess.run(
        ["docker", "ps", "-aq", "--filter", "label=aishell.test=1"], capture_output=True, text=True
    ).stdout.split()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)
    _ = sys
