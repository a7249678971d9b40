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

from testing.runner import CREATED, NON_ROOT_USER, Aishell, HostTmux, ensure_non_root_user

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
    release_all_holds()
    shutil.rmtree(root, ignore_errors=True)


def release_all_holds() -> None:
    """Every home this worker made goes away with the run: its image tags go too (a
    shared engine collected thousands, which every image inspection then returned),
    each image kept under one cache tag for the next run."""
    for ai in list(CREATED):
        try:
            ai.release_holds(prune=False, keep=True)
        except Exception as exc:  # (a home whose user or engine is gone: nothing to do)
            print(f"releasing the holds of {ai.aishell_home} failed: {exc}", file=sys.stderr)
    CREATED.clear()


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
def shared_root_src(shared_root: Path) -> Path:
    """A copy of aishell's source that non-root users can read."""
    src = shared_root / "src"
    if not src.exists():
        shutil.copytree(REPO / "src", src)
        subprocess.run(["chmod", "-R", "a+rX", str(shared_root)], check=True)
    return src


@pytest.fixture(scope="session")
def user(engine: str, shared_root_src: Path, root_user: Aishell) -> Aishell:
    """aishell run as a non-root user (member of the docker group)."""
    uid = ensure_non_root_user()
    home = Path(f"/home/{NON_ROOT_USER}") / f"it-{os.getpid()}"
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    ai = Aishell(home=home, aishell_home=home / ".aishell", user=NON_ROOT_USER, src=shared_root_src)
    _global_config(ai.aishell_home)
    subprocess.run(["chown", "-R", f"{uid}:{uid}", str(home)], check=True)
    result = ai.run("setup", "--with-opencode", timeout=1500)
    assert result.returncode == 0, result.stderr
    return ai


# -- Podman ----------------------------------------------------------------------
# scripts/prepare-engine (AISHELL_TEST_PODMAN=1) installs podman, writes these
# files and loads the base image into root's and the test user's storage.
CI_ETC = Path(os.environ.get("AISHELL_CI_ETC", "/etc/aishell-ci"))
CONTAINERS_CONF = CI_ETC / "containers.conf"


def podman_env(user: str | None) -> dict[str, str]:
    """The environment podman needs here (rootful: root; rootless: `user`)."""
    env = {"AISHELL_ENGINE": "podman", "CONTAINERS_CONF": str(CONTAINERS_CONF)}
    if user is not None:
        import pwd

        uid = pwd.getpwnam(user).pw_uid
        env["CONTAINERS_STORAGE_CONF"] = str(CI_ETC / f"storage-{user}.conf")
        env["XDG_RUNTIME_DIR"] = f"/run/user/{uid}"
    return env


def _podman_answers(user: str | None) -> str | None:
    """None when podman runs a container for `user` (None: root); else the error."""
    import pwd

    home = Path(pwd.getpwnam(user).pw_dir if user else "/root")
    probe = Aishell(
        home=home,
        aishell_home=home / ".aishell-probe",
        user=user,
        src=REPO / "src",
        extra_env=podman_env(user),
    )
    try:
        result = probe.engine_cli(
            "run", "--rm", "--network", "none", "debian:trixie-slim", "true", timeout=120
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    return None if result.returncode == 0 else (result.stderr.strip() or "exit status")


@pytest.fixture(scope="session")
def podman_engine(engine: str) -> str:
    """Podman prepared for root and the non-root test user (idempotent)."""
    prep = subprocess.run(
        [str(REPO / "scripts" / "prepare-engine")],
        capture_output=True,
        text=True,
        env={**os.environ, "AISHELL_TEST_PODMAN": "1"},
        check=False,
    )
    problem = (prep.stderr.strip() or "prepare-engine failed") if prep.returncode else None
    problem = problem or _podman_answers(None)
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"podman is not usable and CI is set: {problem}")
        pytest.skip(f"podman is not usable: {problem}")
    return "podman"


@pytest.fixture(scope="session")
def podman_root(podman_engine: str, shared_root: Path) -> Aishell:
    """aishell as root with rootful Podman (AISHELL_ENGINE=podman), set up with OpenCode."""
    home = shared_root / "podman-root-home"
    home.mkdir()
    ai = Aishell(
        home=home,
        aishell_home=home / ".aishell",
        user=None,
        src=REPO / "src",
        extra_env=podman_env(None),
    )
    _global_config(ai.aishell_home)
    result = ai.run("setup", "--with-opencode", timeout=1500)
    assert result.returncode == 0, result.stderr
    return ai


@pytest.fixture(scope="session")
def podman_user(podman_engine: str, shared_root: Path, podman_root: Aishell) -> Aishell:
    """aishell as the non-root test user with rootless Podman (keep-id), set up with OpenCode."""
    uid = ensure_non_root_user()
    problem = _podman_answers(NON_ROOT_USER)
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"rootless podman does not work for {NON_ROOT_USER}: {problem}")
        pytest.skip(f"rootless podman does not work for {NON_ROOT_USER}: {problem}")
    home = Path(f"/home/{NON_ROOT_USER}") / f"pm-{os.getpid()}"
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    src = shared_root / "src"
    if not src.exists():
        shutil.copytree(REPO / "src", src)
        subprocess.run(["chmod", "-R", "a+rX", str(shared_root)], check=True)
    ai = Aishell(
        home=home,
        aishell_home=home / ".aishell",
        user=NON_ROOT_USER,
        src=src,
        extra_env=podman_env(NON_ROOT_USER),
    )
    _global_config(ai.aishell_home)
    subprocess.run(["chown", "-R", f"{uid}:{uid}", str(home)], check=True)
    result = ai.run("setup", "--with-opencode", timeout=1500)
    assert result.returncode == 0, result.stderr
    return ai


# -- who runs aishell, on which engine ---------------------------------------------
# `anyone` is aishell as one of these targets. A test that uses it (or `project`) runs
# once per target: on Docker as root and as the non-root user unless it is marked
# otherwise, e.g. @pytest.mark.targets("docker", "podman") for all four, or
# @pytest.mark.targets("podman") for Podman only.
TARGETS = {
    "docker-root": "root_user",
    "docker-user": "user",
    "podman-root": "podman_root",  # rootful Podman
    "podman-user": "podman_user",  # rootless Podman (keep-id)
}
TARGET_GROUPS = {
    "docker": ("docker-root", "docker-user"),
    "podman": ("podman-root", "podman-user"),
}
DEFAULT_TARGETS = ("docker",)


def _targets(names: tuple[str, ...]) -> list[str]:
    expanded: list[str] = []
    for name in names:
        for target in TARGET_GROUPS.get(name, (name,)):
            if target not in TARGETS:
                raise pytest.UsageError(
                    f"unknown target {target!r}: expected one of "
                    f"{', '.join([*TARGETS, *TARGET_GROUPS])}"
                )
            if target not in expanded:
                expanded.append(target)
    return expanded


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "anyone" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("targets")
    names = tuple(marker.args) if marker else DEFAULT_TARGETS
    metafunc.parametrize("anyone", _targets(names), indirect=True)


@pytest.fixture
def anyone(request: pytest.FixtureRequest) -> Aishell:
    """aishell as one target (see TARGETS): the test runs once for each."""
    return request.getfixturevalue(TARGETS[request.param])


@pytest.fixture
def project(anyone: Aishell, tmp_path: Path) -> Path:
    return anyone.new_project()


@pytest.fixture
def host_tmux() -> Iterator[HostTmux]:
    """A private host tmux server, killed after the test."""
    server = HostTmux(f"aishell-it-{os.getpid()}-{os.urandom(3).hex()}")
    yield server
    server.kill()


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
    if shutil.which("podman") and CONTAINERS_CONF.exists():
        env = {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}
        ids = subprocess.run(
            ["podman", "ps", "-aq", "--filter", "label=aishell.test=1"],
            capture_output=True,
            text=True,
            env=env,
        ).stdout.split()
        if ids:
            subprocess.run(["podman", "rm", "-f", *ids], capture_output=True, env=env)
    _ = sys
