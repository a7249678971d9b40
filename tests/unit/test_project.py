"""Project root discovery and the names derived from it."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import pytest

from aishell.project import Project, find_root, resolve


def _ancestors_are_clean(path: Path) -> bool:
    """No marker above tmp_path could change the answer."""
    for parent in [path, *path.parents]:
        for marker in (".aishell", ".sandbox", ".git"):
            if (parent / marker).exists():
                return False
    return True


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    if not _ancestors_are_clean(tmp_path):
        pytest.skip("a parent of the temporary directory holds a project marker")
    root = tmp_path / "w"
    root.mkdir()
    return root


def make(base: Path, layout: dict[str, str]) -> None:
    """layout: relative path -> 'dir' | 'file' | 'gitfile'."""
    for rel, kind in layout.items():
        path = base / rel
        if kind == "dir":
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            text = "gitdir: /elsewhere/.git/worktrees/x\n" if kind == "gitfile" else ""
            path.write_text(text)


# layout, cwd (relative), expected root (relative; "" = the tree itself)
CASES = [
    pytest.param({"a/b/c": "dir"}, "a/b/c", "a/b/c", id="plain-cwd"),
    pytest.param({"a/.aishell": "dir", "a/b/c": "dir"}, "a/b/c", "a", id="aishell-ancestor"),
    pytest.param({"a/.sandbox": "dir", "a/b/c": "dir"}, "a/b/c", "a", id="sandbox-alias"),
    pytest.param({"a/b/.aishell": "dir"}, "a/b", "a/b", id="aishell-in-cwd"),
    pytest.param({"a/.git": "dir", "a/b/c": "dir"}, "a/b/c", "a", id="git-dir"),
    pytest.param({"a/.git": "gitfile", "a/b/c": "dir"}, "a/b/c", "a", id="git-file-worktree"),
    pytest.param({"a/b/.git": "dir"}, "a/b", "a/b", id="git-in-cwd"),
    pytest.param(
        {".aishell": "dir", "a/.aishell": "dir", "a/b/c": "dir"}, "a/b/c", "a", id="nearest-aishell"
    ),
    pytest.param({".git": "dir", "a/.git": "dir", "a/b/c": "dir"}, "a/b/c", "a", id="nearest-git"),
    pytest.param(
        {"a/.git": "dir", "a/b/.aishell": "dir", "a/b/c": "dir"},
        "a/b/c",
        "a/b",
        id="aishell-nearer-than-git",
    ),
    pytest.param(
        {"a/.aishell": "dir", "a/b/.git": "dir", "a/b/c": "dir"},
        "a/b/c",
        "a",
        id="aishell-further-up-beats-nearer-git",
    ),
    pytest.param(
        {".sandbox": "dir", "a/b/.git": "gitfile", "a/b/c": "dir"},
        "a/b/c",
        "",
        id="sandbox-further-up-beats-worktree",
    ),
    pytest.param(
        {"a/.aishell": "file", "a/b": "dir"}, "a/b", "a/b", id="aishell-file-is-not-config"
    ),
    pytest.param(
        {"a/.sandbox": "file", "a/.git": "dir", "a/b": "dir"}, "a/b", "a", id="sandbox-file-ignored"
    ),
    pytest.param({"a/b/.aishell": "dir", "a/b/c/d": "dir"}, "a/b/c/d", "a/b", id="two-levels-up"),
    pytest.param(
        {"a/.aishell": "dir", "a/b/.sandbox": "dir", "a/b/c": "dir"},
        "a/b/c",
        "a/b",
        id="nearest-of-either-name",
    ),
    pytest.param({"a/.gitignore": "file", "a/b": "dir"}, "a/b", "a/b", id="gitignore-not-git"),
]


@pytest.mark.parametrize(("layout", "cwd", "expected"), CASES)
def test_find_root(tree: Path, layout: dict[str, str], cwd: str, expected: str) -> None:
    make(tree, layout)
    (tree / cwd).mkdir(parents=True, exist_ok=True)
    want = str(tree / expected) if expected else str(tree)
    assert find_root(str(tree / cwd)) == want
    assert resolve(str(tree / cwd)).root == want


@pytest.mark.parametrize(
    ("layout", "cwd", "aishell_home", "expected"),
    [
        pytest.param(
            {"home/.aishell": "dir", "home/code/proj": "dir"},
            "home/code/proj",
            "home/.aishell",
            "home/code/proj",
            id="global-home-is-not-a-project",
        ),
        pytest.param(
            {"home/.aishell": "dir", "home/code/proj/.git": "dir", "home/code/proj/x": "dir"},
            "home/code/proj/x",
            "home/.aishell",
            "home/code/proj",
            id="git-project-under-home",
        ),
        pytest.param(
            {"home/.aishell": "dir", "home/code/proj/.aishell": "dir", "home/code/proj/x": "dir"},
            "home/code/proj/x",
            "home/.aishell",
            "home/code/proj",
            id="aishell-project-under-home",
        ),
        pytest.param(
            {"home/.aishell": "dir", "home/.git": "dir", "home/code/proj": "dir"},
            "home/code/proj",
            "home/.aishell",
            "home/code/proj",
            id="dotfiles-repo-in-home-is-not-a-project",
        ),
        pytest.param(
            {"home/.aishell": "dir", "home/.sandbox": "dir", "home/code": "dir"},
            "home/code",
            "home/.aishell",
            "home/code",
            id="sandbox-in-home-is-not-a-project",
        ),
        pytest.param(
            {"home/.aishell": "dir", "home/code": "dir"},
            "home",
            "home/.aishell",
            "home",
            id="cwd-is-home",
        ),
        pytest.param(
            {"home/.aishell/sub": "dir"},
            "home/.aishell/sub",
            "home/.aishell",
            "home/.aishell/sub",
            id="inside-global-home",
        ),
    ],
)
def test_global_home_is_not_a_project_config(
    tree: Path, layout: dict[str, str], cwd: str, aishell_home: str, expected: str
) -> None:
    make(tree, layout)
    got = find_root(
        str(tree / cwd), aishell_home=str(tree / aishell_home), user_home=str(tree / "home")
    )
    assert got == str(tree / expected)


def test_global_home_through_a_symlink_is_recognised(tree: Path) -> None:
    make(tree, {"home/.aishell": "dir", "home/code/proj": "dir"})
    link = tree / "aishell-link"
    link.symlink_to(tree / "home" / ".aishell")
    cwd = str(tree / "home/code/proj")
    assert find_root(cwd, aishell_home=str(link)) == cwd


def test_a_dot_aishell_outside_the_user_home_counts(tree: Path) -> None:
    make(tree, {"srv/.aishell": "dir", "srv/code/proj": "dir"})
    got = find_root(str(tree / "srv/code/proj"), user_home=str(tree / "home"))
    assert got == str(tree / "srv")


def test_relative_cwd_is_made_absolute(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make(tree, {"a/.aishell": "dir", "a/b": "dir"})
    monkeypatch.chdir(tree / "a")
    assert find_root("b") == str(tree / "a")
    monkeypatch.chdir(tree / "a/b")
    assert find_root(".") == str(tree / "a")


def test_plain_cwd_is_returned_normalised(tree: Path) -> None:
    (tree / "x/y").mkdir(parents=True)
    assert find_root(str(tree / "x/y") + "/") == str(tree / "x/y")
    assert find_root(str(tree / "x/./y/../y")) == str(tree / "x/y")


# --------------------------------------------------------------- symlinks, hash


@pytest.mark.parametrize("marker", [".aishell", ".sandbox", ".git", None])
def test_symlinked_project_keeps_the_link_path(tree: Path, marker: str | None) -> None:
    real = tree / "real" / "proj"
    (real / "sub").mkdir(parents=True)
    if marker:
        (real / marker).mkdir()
    link = tree / "link"
    link.symlink_to(tree / "real")
    cwd = link / "proj" / "sub"
    project = resolve(str(cwd))
    expected_root = str(link / "proj") if marker else str(cwd)
    expected_canonical = os.path.realpath(expected_root)
    assert project.root == expected_root
    assert project.canonical == expected_canonical
    assert project.canonical != project.root
    assert project.hash == hashlib.sha256(expected_canonical.encode()).hexdigest()[:8]


def test_same_project_through_link_or_real_path_has_one_hash(tree: Path) -> None:
    real = tree / "real"
    (real / ".aishell").mkdir(parents=True)
    (tree / "link").symlink_to(real)
    via_link = resolve(str(tree / "link"))
    direct = resolve(str(real))
    assert via_link.root != direct.root
    assert via_link.canonical == direct.canonical
    assert via_link.hash == direct.hash
    assert via_link.extension_role == direct.extension_role
    assert via_link.container_name("claude") == direct.container_name("claude")


def test_different_projects_have_different_hashes(tree: Path) -> None:
    (tree / "a/.git").mkdir(parents=True)
    (tree / "b/.git").mkdir(parents=True)
    assert resolve(str(tree / "a")).hash != resolve(str(tree / "b")).hash


@pytest.mark.parametrize(
    "canonical",
    ["/", "/home/alice/proj", "/srv/with space/and,comma", "/ünïcode/路径"],
)
def test_project_names(canonical: str) -> None:
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    project = Project(root=canonical, canonical=canonical, hash=digest[:8])
    assert re.fullmatch(r"[0-9a-f]{8}", project.hash)
    assert project.container_prefix == f"aishell-{digest[:8]}-"
    assert project.container_name("claude") == f"aishell-{digest[:8]}-claude"
    assert project.container_name("my.name_2") == f"aishell-{digest[:8]}-my.name_2"
    assert project.extension_role == f"ext-{digest[:12]}"  # held as aishell-home-<id>:ext-…
    assert re.fullmatch(r"ext-[0-9a-f]{12}", project.extension_role)


def test_resolve_hash_is_8_hex_of_canonical(tree: Path) -> None:
    (tree / "p/.aishell").mkdir(parents=True)
    project = resolve(str(tree / "p"))
    assert re.fullmatch(r"[0-9a-f]{8}", project.hash)
    assert project.hash == hashlib.sha256(project.canonical.encode()).hexdigest()[:8]
    assert project.container_name("shell").startswith(f"aishell-{project.hash}-")
