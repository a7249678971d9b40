"""Git worktrees: gitdir/commondir parsing, mounts, naming, the removal rule, `--worktree`.

Pure parts are tested directly; `enter` and the removal checks also run against
real git repositories in tmp (git only, never the container engine).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from aishell import worktrees as wt
from aishell.cli import GlobalOptions, main, parse_global
from aishell.commands import worktrees as cmd
from aishell.engine.run_args import Bind
from aishell.errors import AishellError, UsageError
from aishell.worktrees import Worktree

# ------------------------------------------------------------------ .git file


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("gitdir: /r/.git/worktrees/a\n", "/r/.git/worktrees/a"),
        ("gitdir: /r/.git/worktrees/a", "/r/.git/worktrees/a"),
        ("gitdir: ../r/.git/worktrees/a\n", "../r/.git/worktrees/a"),
        ("gitdir:/x\n", "/x"),
        ("gitdir: /with space/.git\n", "/with space/.git"),
        ("gitdir: /x\r\n", "/x"),
        ("", None),
        ("gitdir:\n", None),
        ("something else\n", None),
    ],
)
def test_parse_gitfile(text: str, expected: str | None) -> None:
    assert wt.parse_gitfile(text) == expected


@pytest.mark.parametrize(
    ("path", "root", "inside"),
    [
        ("/a/b", "/a/b", True),
        ("/a/b/c", "/a/b", True),
        ("/a/bc", "/a/b", False),
        ("/a", "/a/b", False),
        ("/a/b/.git", "/a/b/", True),
        ("/x", "/", True),
    ],
)
def test_is_within_is_segment_aware(path: str, root: str, inside: bool) -> None:
    assert wt.is_within(path, root) is inside


def _fake_repo(repo: Path) -> Path:
    common = repo / ".git"
    (common / "objects").mkdir(parents=True)
    (common / "refs").mkdir()
    (common / "HEAD").write_text("ref: refs/heads/main\n")
    return common


def _fake_worktree(
    tmp_path: Path, *, relative: bool = False, name: str = "feature"
) -> tuple[Path, Path]:
    """A repository layout as git makes it: repo/.git/worktrees/<name> and a checkout."""
    repo = tmp_path / "repo"
    common = repo / ".git" if (repo / ".git").is_dir() else _fake_repo(repo)
    gitdir = common / "worktrees" / name
    gitdir.mkdir(parents=True)
    (gitdir / "commondir").write_text("../..\n")
    checkout = tmp_path / "repo.worktrees" / name
    checkout.mkdir(parents=True)
    (gitdir / "gitdir").write_text(f"{checkout}/.git\n")
    target = os.path.relpath(gitdir, checkout) if relative else str(gitdir)
    (checkout / ".git").write_text(f"gitdir: {target}\n")
    return repo, checkout


def test_linked_worktree_mounts_the_common_dir(tmp_path: Path) -> None:
    repo, checkout = _fake_worktree(tmp_path)
    found = wt.read_linked_git_dir(str(checkout))
    assert found is not None
    assert found.gitdir_path == str(repo / ".git" / "worktrees" / "feature")
    assert found.common_path == str(repo / ".git")
    assert wt.verify_linked(str(checkout), found) is None
    # The worktree's own git dir is inside the common dir: one mount covers both.
    assert wt.git_dir_binds(str(checkout)) == [Bind(str(repo / ".git"), str(repo / ".git"))]


def test_relative_gitdir(tmp_path: Path) -> None:
    repo, checkout = _fake_worktree(tmp_path, relative=True)
    assert wt.git_dir_binds(str(checkout)) == [Bind(str(repo / ".git"), str(repo / ".git"))]


def test_symlinked_paths_mount_the_real_source_at_the_written_path(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    repo, checkout = _fake_worktree(real)
    link = tmp_path / "link"
    link.symlink_to(real)
    (checkout / ".git").write_text(f"gitdir: {link}/repo/.git/worktrees/feature\n")
    assert wt.git_dir_binds(str(checkout)) == [Bind(str(repo / ".git"), f"{link}/repo/.git")]


def test_plain_repository_and_no_git_need_nothing(tmp_path: Path) -> None:
    assert wt.git_dir_binds(str(tmp_path)) == []
    (tmp_path / ".git").mkdir()
    assert wt.read_linked_git_dir(str(tmp_path)) is None
    assert wt.git_dir_binds(str(tmp_path)) == []


@pytest.mark.parametrize("content", [b"", b"not a gitfile\n", b"\xff\xfe", b"gitdir: /nowhere\n"])
def test_unreadable_or_dangling_gitfile_is_ignored(tmp_path: Path, content: bytes) -> None:
    (tmp_path / ".git").write_bytes(content)
    assert wt.git_dir_binds(str(tmp_path)) == []


def test_submodule_gitdir_is_not_mounted(tmp_path: Path) -> None:
    modules = tmp_path / "super" / ".git" / "modules" / "sub"
    modules.mkdir(parents=True)
    sub = tmp_path / "super" / "sub"
    sub.mkdir()
    (sub / ".git").write_text("gitdir: ../.git/modules/sub\n")
    assert wt.git_dir_binds(str(sub)) == []


def test_git_dir_inside_the_project_is_not_mounted_again(tmp_path: Path) -> None:
    project = tmp_path / "p"
    common = _fake_repo(project / "meta")
    gitdir = common / "worktrees" / "x"
    gitdir.mkdir(parents=True)
    (gitdir / "commondir").write_text("../..\n")
    (gitdir / "gitdir").write_text(f"{project}/.git\n")
    (project / ".git").write_text("gitdir: meta/.git/worktrees/x\n")
    found = wt.read_linked_git_dir(str(project))
    assert found is not None and wt.verify_linked(str(project), found) is None
    assert wt.git_dir_binds(str(project)) == []


def test_already_mounted_target_is_skipped(tmp_path: Path) -> None:
    repo, checkout = _fake_worktree(tmp_path)
    assert wt.git_dir_binds(str(checkout), taken=[str(repo / ".git")]) == []


# A `.git` file the agent rewrote must not get any other directory mounted.


def _forged(tmp_path: Path, capsys: pytest.CaptureFixture[str], checkout: Path) -> str:
    assert wt.git_dir_binds(str(checkout)) == []
    err = capsys.readouterr().err
    assert "the repository's git directory is not mounted" in err
    return err


def test_forged_gitdir_of_another_worktree_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, mine = _fake_worktree(tmp_path, name="mine")
    _fake_worktree(tmp_path, name="other")
    (mine / ".git").write_text(f"gitdir: {repo}/.git/worktrees/other\n")
    assert "does not point back" in _forged(tmp_path, capsys, mine)


def test_forged_commondir_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    _fake_repo(home)  # a dotfiles repository: ~/.git
    fake = tmp_path / "writable" / "fake"
    fake.mkdir(parents=True)
    project = tmp_path / "project"
    project.mkdir()
    (fake / "commondir").write_text(f"{home}/.git\n")
    (fake / "gitdir").write_text(f"{project}/.git\n")
    (project / ".git").write_text(f"gitdir: {fake}\n")
    assert "is not in the worktrees directory" in _forged(tmp_path, capsys, project)


def test_forged_symlink_to_another_repository_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other_repo, _ = _fake_worktree(tmp_path / "o", name="x")
    writable = tmp_path / "writable"
    writable.mkdir()
    (writable / "link").symlink_to(other_repo / ".git")
    project = tmp_path / "project"
    project.mkdir()
    (project / ".git").write_text(f"gitdir: {writable}/link/worktrees/x\n")
    assert "does not point back" in _forged(tmp_path, capsys, project)


def test_common_dir_that_is_not_a_git_dir_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, checkout = _fake_worktree(tmp_path)
    (repo / ".git" / "HEAD").unlink()
    assert "is not a git directory" in _forged(tmp_path, capsys, checkout)


def test_plan_binds_is_segment_aware() -> None:
    found = wt.LinkedGitDir("/r/.git/worktrees/x", "/r/.git/worktrees/x", "/r/.git", "/r/.git")
    assert wt.plan_binds("/r.wt/x", found) == [Bind("/r/.git", "/r/.git")]
    assert wt.plan_binds("/r", found) == []  # inside the project
    assert wt.plan_binds("/r/.gi", found) == [Bind("/r/.git", "/r/.git")]
    elsewhere = found._replace(gitdir_path="/g/x", gitdir_real="/g/x")
    assert wt.plan_binds("/p", elsewhere) == [Bind("/r/.git", "/r/.git"), Bind("/g/x", "/g/x")]


# ------------------------------------------------------------ porcelain listing

PORCELAIN = """\
worktree /src/repo
HEAD 1111111111111111111111111111111111111111
branch refs/heads/main

worktree /src/repo.worktrees/feature-x
HEAD 2222222222222222222222222222222222222222
branch refs/heads/feature/x
locked

worktree /src/repo.worktrees/det
HEAD 3333333333333333333333333333333333333333
detached
prunable gitdir file points to non-existent location

"""


def test_parse_porcelain() -> None:
    found = wt.parse_porcelain(PORCELAIN)
    assert [w.path for w in found] == [
        "/src/repo",
        "/src/repo.worktrees/feature-x",
        "/src/repo.worktrees/det",
    ]
    assert found[0].branch_name == "main"
    assert found[1].branch == "refs/heads/feature/x" and found[1].locked
    assert found[1].branch_name == "feature/x"
    assert found[2].detached and found[2].prunable and found[2].branch_name is None
    assert found[2].head == "3" * 40


def test_parse_porcelain_bare_and_without_blank_lines() -> None:
    text = "worktree /src/r.git\nbare\nworktree /src/wt\nHEAD abc\nbranch refs/heads/b"
    found = wt.parse_porcelain(text)
    assert found == [
        Worktree("/src/r.git", bare=True),
        Worktree("/src/wt", head="abc", branch="refs/heads/b"),
    ]
    assert wt.parse_porcelain("") == []


def test_owner_of_picks_the_innermost(tmp_path: Path) -> None:
    outer = Worktree(str(tmp_path / "r"))
    inner = Worktree(str(tmp_path / "r" / ".worktrees" / "a"))
    other = Worktree(str(tmp_path / "ra"))
    trees = [outer, inner, other]
    assert wt.owner_of(str(tmp_path / "r" / "src"), trees) == outer
    assert wt.owner_of(str(tmp_path / "r" / ".worktrees" / "a" / "x"), trees) == inner
    assert wt.owner_of(str(tmp_path / "ra"), trees) == other
    assert wt.owner_of(str(tmp_path / "elsewhere"), trees) is None


# -------------------------------------------------------------------- naming


@pytest.mark.parametrize("name", ["feature", "feature/login", "aishell/claude", "v1.2", "a-b_c"])
def test_valid_branch_names(name: str) -> None:
    wt.check_branch_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "-x",
        "a b",
        "a..b",
        "a/",
        "/a",
        "a//b",
        "a.",
        ".a",
        "a/.b",
        "x.lock",
        "a@{b",
        "@",
        "a:b",
        "a~1",
        "a^",
        "a?",
        "a*",
        "a[",
        "a\\b",
        "a\tb",
    ],
)
def test_invalid_branch_names(name: str) -> None:
    with pytest.raises(UsageError, match="invalid branch name"):
        wt.check_branch_name(name)


def test_default_branch_and_slug() -> None:
    assert wt.default_branch("claude") == "aishell/claude"
    assert wt.branch_slug("aishell/claude") == "aishell-claude"
    assert wt.branch_slug("feature") == "feature"


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        (None, "/src/repo.worktrees"),
        ("", "/src/repo.worktrees"),
        (".worktrees", "/src/repo/.worktrees"),
        ("../wt/{repo}", "/src/wt/repo"),
        ("/var/wt/{repo}", "/var/wt/repo"),
        ("~/wt/{repo}", "/home/u/wt/repo"),
        ("~", "/home/u"),
    ],
)
def test_worktrees_dir(setting: str | None, expected: str) -> None:
    main_wt = Worktree("/src/repo", head="1", branch="refs/heads/main")
    assert wt.worktrees_dir(main_wt, setting, home="/home/u") == expected


def test_worktrees_dir_of_a_bare_repository() -> None:
    assert wt.worktrees_dir(Worktree("/src/r.git", bare=True), None) == "/src/r.worktrees"
    assert wt.repo_name(Worktree("/src/r.git")) == "r.git"  # not bare: the directory's name


def test_worktree_path_avoids_taken_paths() -> None:
    taken = {"/w/aishell-claude", "/w/aishell-claude-2"}
    assert wt.worktree_path("/w", "feature", taken.__contains__) == "/w/feature"
    assert wt.worktree_path("/w", "aishell/claude", taken.__contains__) == "/w/aishell-claude-3"


# ------------------------------------------------------------- removal rule


def _running(project: str, name: str | None = "claude") -> cmd.RunningContainer:
    return cmd.RunningContainer(f"aishell-12345678-{name}", name, name, project, "Up 1 second")


def test_removal_allowed_when_clean_and_merged() -> None:
    assert cmd.removal_blockers(running=[], status_lines=[], unmerged=0, force=False) == []


def test_removal_blocked_by_each_reason() -> None:
    reasons = cmd.removal_blockers(
        running=[_running("/w")], status_lines=["?? f", " M g"], unmerged=3, force=False
    )
    assert len(reasons) == 3
    assert "a container is running in it (aishell-12345678-claude)" in reasons[0]
    assert "uncommitted changes (2 files)" in reasons[1]
    assert "3 unmerged commits" in reasons[2]
    one = cmd.removal_blockers(running=[], status_lines=[], unmerged=1, force=False)
    assert one == ["it has 1 unmerged commit (not in the main checkout's branch nor its upstream)"]


def test_unknown_merge_state_blocks_without_force() -> None:
    reasons = cmd.removal_blockers(running=[], status_lines=[], unmerged=None, force=False)
    assert reasons == ["git could not tell whether its commits are merged"]


def test_force_overrides_work_but_not_a_running_container() -> None:
    assert cmd.removal_blockers(running=[], status_lines=["?? f"], unmerged=5, force=True) == []
    assert cmd.removal_blockers(running=[_running("/w")], status_lines=[], unmerged=0, force=True)


# --------------------------------------------------- containers and rendering


def test_container_from_ps_and_assign(tmp_path: Path) -> None:
    main_wt = Worktree(str(tmp_path / "r"), head="1" * 40, branch="refs/heads/main")
    feature = Worktree(str(tmp_path / "r.wt" / "f"), head="2" * 40, branch="refs/heads/f")
    items = [
        {
            "Names": "aishell-aaaaaaaa-claude",
            "Status": "Up 2 minutes",
            "Labels": f"aishell.managed=1,aishell.project={tmp_path}/r.wt/f,"
            "aishell.name=claude,aishell.harness=claude",
        },
        {
            "Names": "aishell-bbbbbbbb-exec",
            "Labels": f"aishell.managed=1,aishell.project={tmp_path}/r/sub",
        },
        {"Names": "aishell-cccccccc-x", "Labels": "aishell.managed=1,aishell.project=/other"},
        {"Names": "no-project", "Labels": "aishell.managed=1"},
    ]
    found = [cmd.container_from_ps(item) for item in items]
    assert found[3] is None
    containers = [c for c in found if c is not None]
    assigned = cmd.assign([main_wt, feature], containers)
    assert [c.container for c in assigned[feature.path]] == ["aishell-aaaaaaaa-claude"]
    assert [c.display_name for c in assigned[main_wt.path]] == ["(exec)"]

    data = cmd.to_json([main_wt, feature], assigned)
    assert data[0]["main"] is True and data[1]["main"] is False
    assert data[1]["branch"] == "f"
    assert data[1]["containers"] == [
        {
            "name": "claude",
            "container": "aishell-aaaaaaaa-claude",
            "harness": "claude",
            "project": f"{tmp_path}/r.wt/f",
            "status": "Up 2 minutes",
        }
    ]
    lines = cmd.render_table([main_wt, feature], assigned)
    assert lines[0].split() == ["BRANCH", "PATH", "CONTAINERS"]
    assert lines[1].split() == ["main", "[main]", main_wt.path, "(exec)"]
    assert lines[2].split() == ["f", feature.path, "claude"]


def test_describe_branch() -> None:
    assert cmd.describe_branch(Worktree("/x", bare=True)) == "(bare)"
    assert cmd.describe_branch(Worktree("/x", head="abcdef123", detached=True)) == (
        "(detached abcdef1)"
    )


def test_find_target_by_branch_or_path(tmp_path: Path) -> None:
    (tmp_path / "wt" / "a").mkdir(parents=True)
    trees = [
        Worktree(str(tmp_path / "r"), branch="refs/heads/main"),
        Worktree(str(tmp_path / "wt" / "a"), branch="refs/heads/feature/a"),
    ]
    assert cmd.find_target(trees, "feature/a", "/") == trees[1]
    assert cmd.find_target(trees, "refs/heads/feature/a", "/") == trees[1]
    assert cmd.find_target(trees, "wt/a", str(tmp_path)) == trees[1]
    assert cmd.find_target(trees, str(tmp_path / "wt" / "a") + "/", "/") == trees[1]
    assert cmd.find_target(trees, "nope", str(tmp_path)) is None


# --------------------------------------------------------------- command line


@pytest.mark.parametrize(
    ("argv", "worktree", "command"),
    [
        (["--worktree", "claude"], "", "claude"),
        (["--worktree=feature/x", "exec", "ls"], "feature/x", "exec"),
        (["--name", "n", "--worktree=b", "shell"], "b", "shell"),
        (["claude", "--worktree=x"], None, "claude"),
    ],
)
def test_parse_worktree_option(argv: list[str], worktree: str | None, command: str) -> None:
    opts, cmd_word, _ = parse_global(argv)
    assert opts.worktree == worktree
    assert cmd_word == command


def test_worktree_option_defaults_keep_old_options_equal() -> None:
    assert parse_global(["--unsafe", "claude"])[0] == GlobalOptions(unsafe=True)


def test_empty_worktree_value_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--worktree= needs a branch name"):
        parse_global(["--worktree=", "claude"])


def test_worktree_option_only_for_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--worktree=x", "ps"]) == 2
    assert "--worktree applies to agent, shell, exec and gitleaks runs" in capsys.readouterr().err


def test_unknown_worktrees_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["worktrees", "rm", "x"]) == 2
    assert "unknown 'aishell worktrees' subcommand 'rm'" in capsys.readouterr().err


def test_help_mentions_worktrees(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "--worktree[=BRANCH]" in out
    assert "worktrees" in out


# ------------------------------------------------------------- with real git

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "gitconfig"))
    monkeypatch.delenv(wt.LOCATION_ENV, raising=False)
    path = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    _git(path, "config", "user.name", "T")
    _git(path, "config", "user.email", "t@example.org")
    (path / "src").mkdir()
    (path / "src" / "a.txt").write_text("a\n")
    _git(path, "add", ".")
    _git(path, "commit", "-qm", "init")
    return path


@needs_git
def test_enter_creates_then_reuses(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    where = wt.enter("feature/x", "claude", str(repo))
    expected = repo.parent / "repo.worktrees" / "feature-x"
    assert where == str(expected)
    assert _git(expected, "branch", "--show-current").strip() == "feature/x"
    assert "Created worktree" in capsys.readouterr().err
    # The same subdirectory, when it exists there; the mounts cover the common dir.
    assert wt.enter("feature/x", "claude", str(repo / "src")) == str(expected / "src")
    assert "Using worktree" in capsys.readouterr().err
    assert wt.git_dir_binds(str(expected)) == [Bind(str(repo / ".git"), str(repo / ".git"))]


@needs_git
def test_enter_default_branch_existing_branch_and_location(
    repo: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(wt.LOCATION_ENV, str(tmp_path / "elsewhere" / "{repo}"))
    where = Path(wt.enter(None, "claude", str(repo)))
    assert where == tmp_path / "elsewhere" / "repo" / "aishell-claude"
    _git(repo, "branch", "old")
    other = Path(wt.enter("old", "x", str(where)))
    assert _git(other, "branch", "--show-current").strip() == "old"


@needs_git
def test_enter_recreates_a_worktree_whose_directory_is_gone(repo: Path) -> None:
    where = Path(wt.enter("gone", "x", str(repo)))
    shutil.rmtree(where)
    again = Path(wt.enter("gone", "x", str(repo)))
    assert again.is_dir()
    assert _git(again, "branch", "--show-current").strip() == "gone"


@needs_git
def test_concurrent_enters_create_one_worktree(repo: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        paths = list(pool.map(lambda _: wt.enter("race", "x", str(repo)), range(4)))
    assert len(set(paths)) == 1
    listed = wt.list_worktrees(str(repo), purpose="test")
    assert [w.branch_name for w in listed].count("race") == 1


@needs_git
def test_enter_outside_a_repository(tmp_path: Path) -> None:
    with pytest.raises(AishellError, match="is not inside a git repository"):
        wt.enter("x", "y", str(tmp_path))


@needs_git
def test_enter_in_a_repository_without_commits(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    subprocess.run(["git", "init", "-q", str(empty)], check=True)
    with pytest.raises(AishellError) as info:
        wt.enter("x", "y", str(empty))
    assert "creating the worktree for x failed" in info.value.message
    assert info.value.hint == "the repository has no commit yet; commit something first"


@needs_git
def test_unmerged_count(repo: Path) -> None:
    where = Path(wt.enter("feat", "x", str(repo)))
    tree = Worktree(str(where), branch="refs/heads/feat")
    assert cmd.unmerged_count(tree) == 0
    (where / "n.txt").write_text("n\n")
    _git(where, "add", ".")
    _git(where, "commit", "-qm", "work")
    assert cmd.unmerged_count(tree) == 1
    _git(repo, "merge", "-q", "--ff-only", "feat")
    assert cmd.unmerged_count(tree) == 0


@needs_git
def test_hooks_planted_in_the_git_dir_do_not_run_on_the_host(repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "hook-ran"
    hook = repo / ".git" / "hooks" / "post-checkout"
    hook.parent.mkdir(exist_ok=True)
    hook.write_text(f"#!/bin/sh\ntouch {marker}\n")
    hook.chmod(0o755)
    wt.enter("hooked", "x", str(repo))
    assert not marker.exists()
