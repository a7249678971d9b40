"""`security/hostpaths.py`: real paths gathered from a real tree, the findings and the
decisions a launch needs, and the gate."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from aishell.config import Config, EnvEntry, Mount
from aishell.errors import Aborted, AishellError
from aishell.project import resolve
from aishell.security import hostpaths

pytestmark = pytest.mark.usefixtures("no_color")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    (h / ".ssh").mkdir(parents=True)
    (h / "app" / ".git").mkdir(parents=True)
    return h


def facts(home: Path, config: Config, root: Path | None = None) -> hostpaths.Facts:
    project = resolve(str(root or home / "app"))
    return hostpaths.gather(config, home=str(home), aishell_home=home / ".aishell", project=project)


def mount(source: Path, target: str = "/m") -> Mount:
    return Mount(str(source), target, False, "cfg")


def test_a_planted_symlink_is_a_decision(home: Path) -> None:
    os.symlink(home / ".ssh", home / "app" / "data")
    config = Config(mounts=(mount(home / "app" / "data"),))
    f = facts(home, config)
    assert f.real[str(home / "app" / "data")] == str(home / ".ssh")
    found = hostpaths.dangers(config, f)
    assert any("symlink" in d.why and "SSH" in d.why for d in found)
    (decision,) = hostpaths.decisions(config, f, found)
    assert decision.what == str(home / "app" / "data")
    assert "whoever writes the project" in decision.why


def test_a_real_directory_in_the_project_is_fine(home: Path) -> None:
    (home / "app" / "data").mkdir()
    config = Config(mounts=(mount(home / "app" / "data"),))
    f = facts(home, config)
    assert hostpaths.dangers(config, f) == []
    assert hostpaths.decisions(config, f, []) == []


def test_a_symlink_the_user_wrote_outside_is_only_warned(home: Path) -> None:
    os.symlink(home / ".ssh", home / "keys")
    config = Config(mounts=(mount(home / "keys"),))
    f = facts(home, config)
    found = hostpaths.dangers(config, f)
    assert found and hostpaths.decisions(config, f, found) == []


def test_an_env_file_planted_as_a_symlink_is_a_decision(home: Path) -> None:
    (home / ".aws").mkdir()
    (home / ".aws" / "credentials").write_text("x")
    os.symlink(home / ".aws" / "credentials", home / "app" / ".env.list")
    config = Config(docker_args=("--env-file", str(home / "app" / ".env.list")))
    f = facts(home, config)
    assert hostpaths.decisions(config, f, hostpaths.dangers(config, f))


def test_the_home_as_project_is_a_decision(home: Path) -> None:
    f = facts(home, Config(), root=home)
    found = hostpaths.dangers(Config(), f)
    (decision,) = hostpaths.decisions(Config(), f, found)
    assert "home directory" in decision.why


def test_a_project_that_is_a_symlink_to_the_home(home: Path, tmp_path: Path) -> None:
    link = tmp_path / "work"
    os.symlink(home, link)
    f = facts(home, Config(), root=link)
    assert hostpaths.decisions(Config(), f, hostpaths.dangers(Config(), f))


def test_env_endpoints_are_findings(home: Path) -> None:
    config = Config(env=(EnvEntry("DOCKER_HOST", "tcp://x:2375"),))
    found = hostpaths.dangers(config, facts(home, config))
    assert [d.what for d in found] == ["DOCKER_HOST"]


ITEMS = [hostpaths.Decision("/home/u", "the project directory exposes your home directory")]


def test_gate_without_a_terminal_refuses() -> None:
    with pytest.raises(AishellError) as info:
        hostpaths.gate(ITEMS, interactive=False, unsafe=False)
    assert "--unsafe" in (info.value.hint or "")


def test_gate_unsafe_goes_on_with_a_warning(capsys: pytest.CaptureFixture[str]) -> None:
    hostpaths.gate(ITEMS, interactive=False, unsafe=True)
    assert "--unsafe" in capsys.readouterr().err


@pytest.mark.parametrize("answer", [True, False])
def test_gate_on_a_terminal_asks(answer: bool) -> None:
    asked: list[str] = []

    def ask(q: str) -> bool:
        asked.append(q)
        return answer

    if answer:
        hostpaths.gate(ITEMS, interactive=True, unsafe=False, ask=ask)
    else:
        with pytest.raises(Aborted):
            hostpaths.gate(ITEMS, interactive=True, unsafe=False, ask=ask)
    assert asked == ["Go on anyway?"]


def test_gate_with_nothing_to_decide_is_silent(capsys: pytest.CaptureFixture[str]) -> None:
    hostpaths.gate([], interactive=False, unsafe=False)
    assert capsys.readouterr().err == ""


def test_empty_dir_stays_empty(tmp_path: Path) -> None:
    first = hostpaths.empty_dir(tmp_path)
    (first / "planted").write_text("x")
    assert list(hostpaths.empty_dir(tmp_path).iterdir()) == []
