"""Project discovery never takes the aishell home or $HOME itself as a project marker
(issue 15, item 3): with AISHELL_HOME elsewhere, `~/.aishell` made every repository
under the home resolve to $HOME, mounted read-write."""

from __future__ import annotations

from pathlib import Path

import pytest

from aishell import config as config_mod
from aishell.config import find_project_config_dir
from aishell.project import find_root, is_user_home, resolve


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """$HOME is a directory of the test's own, holding a `.aishell/` with global keys."""
    home = tmp_path / "home"
    (home / ".aishell").mkdir(parents=True)
    (home / ".aishell" / "config.yaml").write_text("base_image: debian:trixie-slim\n")
    monkeypatch.setenv("HOME", str(home))
    return home


@pytest.mark.parametrize(
    ("dirs", "cwd", "expected"),
    [
        pytest.param(["src/repo/.git", "src/repo/pkg"], "src/repo/pkg", "src/repo", id="repo"),
        pytest.param(["src/repo/.git"], "src/repo", "src/repo", id="repo-top"),
        pytest.param(["notes"], "notes", "notes", id="no-marker"),
        pytest.param([".git", "notes"], "notes", "notes", id="dotfiles-repo-in-home"),
        pytest.param([".sandbox", "notes"], "notes", "notes", id="sandbox-in-home"),
        pytest.param(
            ["src/p/.aishell", "src/p/.git", "src/p/a/b"], "src/p/a/b", "src/p", id="project"
        ),
        pytest.param([], ".", ".", id="home-itself"),
    ],
)
@pytest.mark.parametrize("aishell_home", ["elsewhere", "home/.aishell", None])
def test_home_markers_never_make_the_home_a_project(
    home: Path, dirs: list[str], cwd: str, expected: str, aishell_home: str | None
) -> None:
    for rel in dirs:
        (home / rel).mkdir(parents=True, exist_ok=True)
    other = str(home.parent / aishell_home) if aishell_home else None
    got = find_root(str(home / cwd), aishell_home=other)
    assert got == str((home / expected).resolve())
    assert resolve(str(home / cwd), aishell_home=other).root == got


def test_markers_above_the_home_do_not_count(home: Path) -> None:
    (home.parent / ".git").mkdir()
    (home / "work").mkdir()
    assert find_root(str(home / "work")) == str(home / "work")


def test_a_home_reached_through_a_symlink_is_still_the_home(home: Path, tmp_path: Path) -> None:
    link = tmp_path / "home-link"
    link.symlink_to(home)
    (home / "notes").mkdir()
    assert find_root(str(link / "notes"), aishell_home=str(tmp_path / "elsewhere")) == str(
        link / "notes"
    )
    assert is_user_home(str(link))


def test_project_config_dir_is_never_the_one_in_home(home: Path, tmp_path: Path) -> None:
    assert find_project_config_dir(home, aishell_home=tmp_path / "elsewhere") is None
    project = home / "src" / "p"
    (project / ".aishell").mkdir(parents=True)
    assert find_project_config_dir(project) == project / ".aishell"


def test_launching_in_home_with_aishell_home_elsewhere_reads_no_project_config(
    home: Path, tmp_path: Path
) -> None:
    """~/.aishell/config.yaml holds global-only keys: read as a project config it made
    every launch in the home fail."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cfg = config_mod.load_config(
        aishell_home=elsewhere,
        project_root=home,
        expansion=config_mod.Expansion(home=str(home), uid=1000, gid=1000, user="alice"),
    )
    assert not any(str(home / ".aishell") in source for source in cfg.sources)
