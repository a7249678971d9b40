"""Engine choice (AISHELL_ENGINE > `engine:` > auto-detection) and the Docker/Podman
differences kept inside the engine modules: run argv per flavour, build progress,
name conflicts, idempotent volume creation."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

import pytest

from aishell.config import Expansion, load_config
from aishell.engine import choice, client, images, volumes
from aishell.engine.run_args import Bind, Flavour, HostFacts, RunSpec, build_run_args
from aishell.errors import ConfigError, EngineError

HOST = HostFacts(
    uid=1000,
    gid=1000,
    user="alice",
    home="/home/alice",
    cwd="/home/alice/p",
    stdin_tty=False,
    stdout_tty=False,
)


def _spec(flavour: Flavour, **kw: Any) -> RunSpec:
    base: dict[str, Any] = {
        "image": "aishell:base",
        "command": ("true",),
        "project_dir": "/home/alice/p",
        "workdir": "/home/alice/p",
        "harness_volume": "aishell-harness-0123456789ab",
        "binds": (
            Bind("/home/alice/.config/opencode", "/home/alice/.config/opencode"),
            Bind("/data", "/data", readonly=True),
        ),
        "flavour": flavour,
    }
    base.update(kw)
    return RunSpec(**base)


# -- run argv per flavour -------------------------------------------------------------


def test_docker_argv_is_unchanged_by_default() -> None:
    argv = build_run_args(_spec(Flavour()), HOST).argv
    assert argv[:4] == ("run", "--rm", "--init", "-i")
    assert "--userns=keep-id" not in argv
    assert "type=volume,source=aishell-harness-0123456789ab,target=/tools,readonly" in argv
    assert "type=bind,source=/data,target=/data,readonly" in argv
    assert not any("relabel" in a or a.endswith(":z") for a in argv)


def test_rootful_podman_needs_no_user_namespace() -> None:
    argv = build_run_args(_spec(Flavour(kind="podman")), HOST).argv
    assert "--userns=keep-id" not in argv and "--user" not in argv
    assert "type=volume,source=aishell-harness-0123456789ab,target=/tools,ro" in argv
    assert "type=bind,source=/data,target=/data,ro" in argv


def test_rootless_podman_keeps_the_uid_and_starts_as_container_root() -> None:
    argv = build_run_args(_spec(Flavour(kind="podman", rootless=True)), HOST).argv
    assert argv[:6] == ("run", "--rm", "--init", "--userns=keep-id", "--user", "0:0")
    assert "LOCAL_UID=1000" in argv


def test_selinux_relabels_binds_shared() -> None:
    podman = build_run_args(_spec(Flavour(kind="podman", selinux=True)), HOST).argv
    assert "type=bind,source=/home/alice/p,target=/home/alice/p,relabel=shared" in podman
    assert "type=bind,source=/data,target=/data,ro,relabel=shared" in podman
    docker = build_run_args(_spec(Flavour(selinux=True)), HOST).argv
    assert "/home/alice/p:/home/alice/p:z" in docker
    assert "/data:/data:ro,z" in docker
    # a path that -v cannot express keeps --mount (no relabel possible there)
    odd = build_run_args(_spec(Flavour(selinux=True), binds=(Bind("/a:b", "/a:b"),)), HOST).argv
    assert "type=bind,source=/a:b,target=/a:b" in odd


def test_engine_flavour(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client, "selinux_enforcing", lambda: False)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert client.Engine("/usr/bin/podman", "podman").flavour == Flavour("podman", True, False)
    assert client.Engine("/usr/bin/docker", "docker").flavour == Flavour("docker", False, False)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert client.Engine("/usr/bin/podman", "podman").flavour.rootless is False


# -- engine choice ---------------------------------------------------------------------


def _bin(directory: Path, *names: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        path = directory / name
        path.write_text("#!/bin/sh\n")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("AISHELL_ENGINE", "DOCKER_HOST", "DOCKER_CONTEXT", "XDG_RUNTIME_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    choice.get_engine.cache_clear()
    yield tmp_path  # type: ignore[misc]
    choice.get_engine.cache_clear()


def test_auto_detect_prefers_docker_when_it_answers(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _bin(clean_env / "bin", "docker", "podman")
    monkeypatch.setattr(
        choice,
        "_docker_answers_cheaply",
        lambda: (True, "its socket /var/run/docker.sock is usable"),
    )
    assert choice.get_engine().kind == "docker"
    choice.get_engine.cache_clear()
    monkeypatch.setattr(
        choice,
        "_docker_answers_cheaply",
        lambda: (False, "Docker's socket does not exist (the Docker engine is not running)"),
    )
    assert choice.get_engine().kind == "podman"


def test_auto_detect_without_podman_falls_back_to_docker(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _bin(clean_env / "bin", "docker")
    monkeypatch.setattr(
        choice,
        "_docker_answers_cheaply",
        lambda: (False, "Docker's socket does not exist (the Docker engine is not running)"),
    )
    assert choice.get_engine().kind == "docker"


def test_no_engine_at_all(clean_env: Path) -> None:
    with pytest.raises(EngineError, match="neither 'docker' nor 'podman'"):
        choice.get_engine()


def test_docker_host_counts_as_docker(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent.sock")
    assert choice._docker_answers_cheaply() == (True, "DOCKER_HOST is set")


def test_precedence_env_then_config_then_detection(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _bin(clean_env / "bin", "docker", "podman")
    monkeypatch.setattr(
        choice,
        "_docker_answers_cheaply",
        lambda: (True, "its socket /var/run/docker.sock is usable"),
    )
    home = Path(os.environ["AISHELL_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.yaml").write_text("engine: podman\n")
    assert choice.get_engine().kind == "podman"  # read from the global config
    choice.get_engine.cache_clear()
    assert choice.get_engine(None).kind == "docker"  # a loaded config without the key
    choice.get_engine.cache_clear()
    assert choice.get_engine("podman").kind == "podman"
    choice.get_engine.cache_clear()
    monkeypatch.setenv("AISHELL_ENGINE", "docker")
    assert choice.get_engine("podman").kind == "docker"


def test_bad_global_engine_is_an_engine_error(clean_env: Path) -> None:
    _bin(clean_env / "bin", "docker")
    home = Path(os.environ["AISHELL_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.yaml").write_text("engine: lxc\n")
    with pytest.raises(EngineError, match="expected 'docker' or 'podman'"):
        choice.get_engine()


def test_configured_engine_missing_says_who_chose_it(clean_env: Path) -> None:
    with pytest.raises(EngineError, match=r"'podman' was not found on PATH \(chosen by engine"):
        choice.get_engine("podman")


# -- config key -------------------------------------------------------------------------


def _exp(home: Path) -> Expansion:
    return Expansion(home=str(home), uid=1000, gid=1000, user="alice")


def test_engine_key_is_global_only_and_validated(tmp_path: Path) -> None:
    home = tmp_path / ".aishell"
    home.mkdir()
    (home / "config.yaml").write_text("engine: podman\n")
    cfg = load_config(aishell_home=home, project_root=None, expansion=_exp(tmp_path))
    assert cfg.engine == "podman"
    (home / "config.yaml").write_text("engine: 3\n")
    with pytest.raises(ConfigError, match="engine"):
        load_config(aishell_home=home, project_root=None, expansion=_exp(tmp_path))
    (home / "config.yaml").write_text("")
    project = tmp_path / "p"
    (project / ".aishell").mkdir(parents=True)
    (project / ".aishell" / "config.yaml").write_text("engine: docker\n")
    with pytest.raises(ConfigError, match="global-only"):
        load_config(aishell_home=home, project_root=project, expansion=_exp(tmp_path))


def test_engine_key_defaults_to_auto(tmp_path: Path) -> None:
    cfg = load_config(aishell_home=tmp_path, project_root=None, expansion=_exp(tmp_path))
    assert cfg.engine is None


# -- engine output differences --------------------------------------------------------


def test_podman_build_steps_are_progress() -> None:
    match = re.search(images._STEP, "STEP 3/12: RUN apt-get update")
    assert match and (match.group(5), match.group(6)) == ("3", "12")


def test_name_conflict_messages_of_both_engines() -> None:
    docker = (
        'docker: Error response from daemon: Conflict. The container name "/aishell-fill-x"'
        ' is already in use by container "abc".'
    )
    podman = (
        'Error: creating container storage: the container name "aishell-fill-x" is already'
        " in use by 93f3. You have to remove that container to be able to reuse that name:"
        " that name is already in use"
    )
    assert volumes._name_conflict(docker) and volumes._name_conflict(podman)
    assert not volumes._name_conflict("Error: volume is already in use by a container")


class _VolumeEngine:
    def __init__(self, stderr: str) -> None:
        self.stderr = stderr

    def checked(self, *args: str, what: str, **_: object) -> None:
        raise EngineError(f"{what} failed: {self.stderr}", details=self.stderr)


def test_volume_create_is_idempotent_on_podman() -> None:
    engine: Any = _VolumeEngine("Error: volume with name v already exists: volume already exists")
    volumes.create_volume(engine, "v", {"a": "b"})
    with pytest.raises(EngineError):
        volumes.create_volume(_VolumeEngine("Error: no space left"), "v", {})  # type: ignore[arg-type]
