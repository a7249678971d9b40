"""`commondir` redirects (security/redirects.py): which git directories are watched,
moving one aside, the tripwire's thread, and how the guard's notice names them; with
real git repositories on disk."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from aishell.security import guard, redirects


def git(cwd: Path, *args: str) -> None:
    env = {"PATH": os.environ["PATH"], "HOME": str(cwd), "GIT_CONFIG_NOSYSTEM": "1"}
    subprocess.run(
        ["git", "-C", str(cwd), "-c", "user.name=T", "-c", "user.email=t@e.org",
         "-c", "protocol.file.allow=always", *args],
        check=True, capture_output=True, text=True, env=env,
    )  # fmt: skip


def repo(path: Path) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q")
    (path / "a.txt").write_text("a\n")
    git(path, "add", ".")
    git(path, "commit", "-qm", "init")
    return path


def test_a_main_repository_watches_its_own_git_directory(tmp_path: Path) -> None:
    r = repo(tmp_path / "r")
    assert redirects.gitdirs(str(r)) == [str(r / ".git")]
    assert redirects.watched(str(r)) == [str(r / ".git" / "commondir")]


def test_a_linked_worktree_watches_the_common_directory_not_its_own(tmp_path: Path) -> None:
    r = repo(tmp_path / "r")
    git(r, "worktree", "add", "-q", str(tmp_path / "wt"), "-b", "side")
    # Its own directory's commondir is git's (read-only in the sandbox): not a redirect.
    assert redirects.gitdirs(str(tmp_path / "wt")) == [str(r / ".git")]


def test_submodules_git_directories_are_watched(tmp_path: Path) -> None:
    up = repo(tmp_path / "up")
    r = repo(tmp_path / "r")
    git(r, "submodule", "add", "-q", str(up), "lib")
    git(r, "submodule", "add", "-q", str(up), "deep/er/lib2")
    found = redirects.gitdirs(str(r))
    assert found[0] == str(r / ".git")
    assert set(found[1:]) == {str(r / ".git/modules/lib"), str(r / ".git/modules/deep/er/lib2")}


def test_a_submodule_with_its_own_git_directory_is_watched(tmp_path: Path) -> None:
    r = repo(tmp_path / "r")
    repo(r / "vendor")
    (r / ".gitmodules").write_text('[submodule "v"]\n\tpath = vendor\n\turl = x\n')
    assert str(r / "vendor" / ".git") in redirects.gitdirs(str(r))
    (r / ".gitmodules").write_text('[submodule "v"]\n\tpath = ../outside\n\turl = x\n')
    repo(tmp_path / "outside")
    assert redirects.gitdirs(str(r)) == [str(r / ".git")]  # never out of the project


def test_no_repository_or_one_above_the_project_watches_nothing(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    assert redirects.gitdirs(str(tmp_path / "plain")) == []
    r = repo(tmp_path / "r")
    (r / "sub").mkdir()
    assert redirects.gitdirs(str(r / "sub")) == []  # the repository is not mounted


def test_a_redirected_repository_watches_its_own_top_only(tmp_path: Path) -> None:
    r = repo(tmp_path / "r")
    evil = repo(tmp_path / "evil")
    (r / ".git" / "commondir").write_text(f"{evil}/.git\n")
    assert redirects.gitdirs(str(r)) == [str(r / ".git")]  # not evil's


def test_move_aside_keeps_the_file_under_another_name(tmp_path: Path) -> None:
    r = repo(tmp_path / "r")
    planted = r / ".git" / "commondir"
    planted.write_text("../evil\n")
    moved = redirects.move_aside(str(planted))
    assert moved == redirects.Moved(str(planted), str(r / "evil"), str(planted) + ".aishell-moved")
    assert not planted.exists() and Path(moved.moved_to).read_text() == "../evil\n"
    planted.write_text("/elsewhere\n")  # again: a second name, the first is kept
    again = redirects.move_aside(str(planted))
    assert again.moved_to == str(planted) + ".aishell-moved-2" and again.target == "/elsewhere"
    assert Path(moved.moved_to).read_text() == "../evil\n"
    assert "restore: mv" in redirects.describe(again) and "points to /elsewhere" in (
        redirects.describe(again)
    )


def test_move_aside_moves_a_symlink_itself(tmp_path: Path) -> None:
    r = repo(tmp_path / "r")
    target = tmp_path / "precious"
    target.write_text("keep me\n")
    planted = r / ".git" / "commondir"
    planted.symlink_to(target)
    moved = redirects.move_aside(str(planted))
    assert os.path.islink(moved.moved_to) and target.read_text() == "keep me\n"
    assert moved.target == f"symlink to {target}"


def test_move_aside_of_what_went_away_or_cannot_move(tmp_path: Path) -> None:
    gone = redirects.move_aside(str(tmp_path / "commondir"))
    assert gone.moved_to == "" and gone.error == "it went away"
    assert "could not be moved aside" in redirects.describe(gone)
    assert "rm " in redirects.describe(gone)


def test_neutralise_touches_only_what_exists(tmp_path: Path) -> None:
    r = repo(tmp_path / "r")
    paths = redirects.watched(str(r))
    assert redirects.neutralise(paths) == []
    (r / ".git" / "commondir").write_text("x\n")
    assert [m.path for m in redirects.neutralise(paths)] == paths
    assert redirects.present(paths) == []


def test_the_tripwire_moves_a_plant_aside_and_trips_once(tmp_path: Path) -> None:
    r = repo(tmp_path / "r")
    tripped = threading.Event()
    calls: list[int] = []

    def trip() -> None:
        calls.append(1)
        tripped.set()

    with redirects.Tripwire(redirects.watcher(str(r), time.time()), trip, interval=0.01) as wire:
        assert not wire.tripped
        (r / ".git" / "commondir").write_text("../evil\n")
        assert tripped.wait(10)
    assert calls == [1] and wire.tripped
    assert wire.moved[0].moved_to.endswith("commondir.aishell-moved")
    assert not (r / ".git" / "commondir").exists()


def test_a_tripwire_with_nothing_to_watch_starts_no_thread() -> None:
    before = threading.active_count()
    with redirects.Tripwire(None, lambda: None) as wire:
        assert threading.active_count() == before
    assert not wire.tripped


def test_the_notice_names_the_moved_redirect(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    moved = redirects.Moved(f"{tmp_path}/.git/commondir", "/evil", f"{tmp_path}/.git/x")
    plain = guard.Finding(".envrc", "new", "direnv")
    named = guard.Finding(".git/commondir", "new", "why", detail="points to /evil; rm it")
    result = guard.with_moved([plain, named], [moved], str(tmp_path))
    assert result[0] == plain and "moved aside to" in result[1].detail
    assert "rm it" not in result[1].detail
    # One the compare did not see (the tripwire moved it before): added.
    added = guard.with_moved([plain], [moved], str(tmp_path))
    assert added[1].path == ".git/commondir" and added[1].why == guard.GIT_WHY["commondir"]
    guard.notice(added, root=str(tmp_path))
    err = capsys.readouterr().err
    assert "git redirects were moved aside, nothing else was reverted" in err
    guard.notice([plain], root=str(tmp_path))
    assert "(nothing was reverted)" in capsys.readouterr().err


def test_a_moved_aside_redirect_is_not_an_other_file() -> None:
    assert not guard._git_other("commondir.aishell-moved")
    assert not guard._git_other("commondir.aishell-moved-3")
    assert guard._git_other("commondir.else")


def test_a_worktree_entry_naming_another_repository_is_misdirected(tmp_path: Path) -> None:
    r = repo(tmp_path / "r")
    git(r, "worktree", "add", "-q", str(tmp_path / "wt"), "-b", "side")
    assert redirects.misdirected(str(r)) == []  # git's own: names its repository
    entry = r / ".git" / "worktrees" / "wt"
    evil = repo(tmp_path / "evil")
    (entry / "commondir").write_text(f"{evil}/.git\n")
    assert redirects.misdirected(str(r)) == [str(entry / "commondir")]
    assert redirects.at_end(str(r)) == [str(entry / "commondir")]
    (r / ".git" / "commondir").write_text("x\n")
    assert redirects.at_end(str(r))[0] == str(r / ".git" / "commondir")


def nested_gitlink(r: Path, name: str) -> Path:
    sub = r / name
    repo(sub)
    git(r, "add", name)
    return sub / ".git"


def test_recursed_names_a_changed_nested_repository_held_as_a_gitlink(tmp_path: Path) -> None:
    r = repo(tmp_path / "r")
    linked = nested_gitlink(r, "linked")
    loose = r / "loose"
    repo(loose)  # not in the index: git in the project does not go in
    found = [str(linked), str(loose / ".git")]
    assert redirects.recursed(str(r), found, since=0) == [str(linked)]
    # Older than the session: left alone.
    assert redirects.recursed(str(r), found, since=time.time() + 60) == []
    assert redirects.gitlinks(str(r), ["linked", "loose", "nothing"]) == {"linked"}


def test_recursed_follows_a_gitfile_and_sees_its_changes(tmp_path: Path) -> None:
    r = repo(tmp_path / "r")
    linked = nested_gitlink(r, "w")
    gitdir = r / "moved-gitdir"
    linked.rename(gitdir)
    linked.write_text("gitdir: ../moved-gitdir\n")
    since = time.time() + 60
    assert redirects.recursed(str(r), [str(linked)], since=since) == []
    later = time.time() + 120
    os.utime(gitdir / "config", (later, later))  # mtime: not what counts
    assert redirects.recursed(str(r), [str(linked)], since=since) == []
    assert redirects._changed_since(str(linked), since=0)


def test_recursed_ignores_what_is_not_a_work_tree_in_the_project(tmp_path: Path) -> None:
    r = repo(tmp_path / "r")
    assert redirects.recursed(str(r), [str(r / "bare.git"), str(tmp_path / "x/.git")], 0) == []
    assert redirects.gitlinks(str(tmp_path / "plain-dir-missing"), ["x"]) == set()


def test_a_moved_nested_git_keeps_no_target(tmp_path: Path) -> None:
    r = repo(tmp_path / "r")
    linked = nested_gitlink(r, "n")
    moved = redirects.move_aside(str(linked))
    assert moved.target == "" and moved.moved_to == str(linked) + ".aishell-moved"
    assert redirects.describe(moved).startswith("moved aside to ")


def test_move_aside_through_a_directory_made_read_only(tmp_path: Path) -> None:
    r = repo(tmp_path / "r")
    planted = r / ".git" / "commondir"
    planted.write_text("../evil\n")
    (r / ".git").chmod(0o555)
    try:
        moved = redirects.move_aside(str(planted))
    finally:
        (r / ".git").chmod(0o755)
    assert moved.moved_to and not planted.exists()


def test_no_repository_no_watcher(tmp_path: Path) -> None:
    assert redirects.watcher(str(tmp_path), 0) is None


def test_the_tripwire_catches_a_symlink_at_the_top_of_git(tmp_path: Path) -> None:
    r = repo(tmp_path / "r")
    (r / ".git" / "COMMIT_EDITMSG").unlink()
    tripped = threading.Event()
    with redirects.Tripwire(
        redirects.watcher(str(r), time.time() - 2), tripped.set, interval=0.01
    ) as wire:
        (r / ".git" / "COMMIT_EDITMSG").symlink_to(tmp_path / "victim")
        assert tripped.wait(10)
    assert wire.moved[0].kind == "link" and wire.moved[0].target == str(tmp_path / "victim")
    assert "a symlink to" in redirects.describe(wire.moved[0])
    assert not (r / ".git" / "COMMIT_EDITMSG").is_symlink()


def test_new_links_finds_symlinks_and_hard_links_made_after_the_start(tmp_path: Path) -> None:
    r = repo(tmp_path / "r")
    g = r / ".git"
    os.symlink("/old", g / "OLD_LINK")  # before the session: left alone
    since = time.time() + 0.0
    time.sleep(0.01)
    (g / "COMMIT_EDITMSG").unlink()
    (g / "COMMIT_EDITMSG").symlink_to(tmp_path / "bashrc")
    os.link(r / "a.txt", g / "FETCH_HEAD")  # a hard link to a project file
    heads = g / "logs" / "refs" / "heads"
    branch = next(heads.iterdir())
    branch.unlink()
    branch.symlink_to(tmp_path / "profile")
    (g / "objects" / "ab").symlink_to("/x")  # git writes loose objects into it
    (g / "objects" / "pack" / "evil").symlink_to("/x")  # deeper in objects/: only read
    (g / "hooks" / "x").symlink_to("/x")  # read-only in the sandbox: not looked at
    (g / "worktrees").symlink_to(tmp_path)  # a git directory's own entry, replaced
    dirs = redirects.link_dirs(str(r))
    found = redirects.new_links(dirs, since)
    assert sorted(found) == sorted(
        [str(g / "COMMIT_EDITMSG"), str(g / "FETCH_HEAD"), str(branch), str(g / "objects/ab"),
         str(g / "worktrees")]
    )  # fmt: skip
    top = redirects.new_links(dirs, since, deep=False)
    assert sorted(top) == sorted(
        [str(g / "COMMIT_EDITMSG"), str(g / "FETCH_HEAD"), str(g / "worktrees")]
    )
    moved = redirects.links_at_end(str(r), since)
    assert {m.kind for m in moved} == {"link"} and len(moved) == 5
    assert redirects.new_links(dirs, since) == []  # moved names are not looked at again
    assert (r / "a.txt").read_text() == "a\n"


def test_link_dirs_include_linked_worktrees_directories(tmp_path: Path) -> None:
    r = repo(tmp_path / "r")
    git(r, "worktree", "add", "-q", str(tmp_path / "wt"), "-b", "side")
    assert redirects.link_dirs(str(r)) == [str(r / ".git"), str(r / ".git/worktrees/wt")]
    assert redirects.link_dirs(str(tmp_path / "wt")) == [
        str(r / ".git/worktrees/wt"), str(r / ".git"),
    ]  # fmt: skip


def test_symlinked_modules_and_worktrees_are_not_followed(tmp_path: Path) -> None:
    """A `.git/modules` or `.git/worktrees` the agent replaced by a symlink must not send
    aishell to move files outside the project: it is itself what gets moved aside."""
    elsewhere = repo(tmp_path / "elsewhere")
    (elsewhere / ".git" / "commondir").write_text("x\n")
    r = repo(tmp_path / "r")
    (r / ".git" / "modules").symlink_to(elsewhere)
    (r / ".git" / "worktrees").symlink_to(elsewhere / ".git")
    assert redirects.gitdirs(str(r)) == [str(r / ".git")]
    assert redirects.link_dirs(str(r)) == [str(r / ".git")]
    assert redirects.misdirected(str(r)) == []
    moved = redirects.links_at_end(str(r), 0)
    assert sorted(os.path.basename(m.path) for m in moved) == ["modules", "worktrees"]
    assert (elsewhere / ".git" / "commondir").exists()


def test_session_end_moves_redirects_and_the_sessions_links(tmp_path: Path) -> None:
    r = repo(tmp_path / "r")
    started = time.time()
    (r / ".git" / "commondir").write_text("../evil\n")
    (r / ".git" / "COMMIT_EDITMSG").unlink()
    (r / ".git" / "COMMIT_EDITMSG").symlink_to(tmp_path / "bashrc")
    assert [m.kind for m in redirects.session_end(str(r), 0)] == ["redirect"]  # start unknown
    assert [m.kind for m in redirects.session_end(str(r), started)] == ["link"]
    assert not (r / ".git" / "COMMIT_EDITMSG").is_symlink()
