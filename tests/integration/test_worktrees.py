"""Git worktrees end to end: real git on the host, a real engine, as root and as a user."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

from testing.runner import Aishell


def host_git(ai: Aishell, repo: Path, *args: str, check: bool = True) -> str:
    """git on the host as `ai`'s user (so everything it writes belongs to that user)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(ai.home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "LANG": "C.UTF-8",
    }
    result = subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        **ai.process_kwargs(),  # type: ignore[arg-type]
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result.stdout


def make_repo(ai: Aishell, name: str = "wt") -> Path:
    repo = ai.new_project(name)
    host_git(ai, repo, "config", "user.name", "Ada Lovelace")
    host_git(ai, repo, "config", "user.email", "ada@example.org")
    (repo / "src").mkdir()
    (repo / "README").write_text("main checkout\n")
    (repo / "src" / "code.txt").write_text("code\n")
    if ai.user:
        subprocess.run(["chown", "-R", f"{ai.uid}:{ai.gid}", str(repo)], check=True)
    host_git(ai, repo, "add", ".")
    host_git(ai, repo, "commit", "-qm", "initial")
    return repo


def worktree_of(repo: Path, branch: str) -> Path:
    return repo.parent / f"{repo.name}.worktrees" / branch.replace("/", "-")


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("Error:")]


def test_commit_inside_a_worktree_lands_on_the_host_branch(anyone: Aishell) -> None:
    repo = make_repo(anyone)
    script = (
        "echo x > f && git add f && git commit -qm inside && git status --porcelain && "
        f"pwd && ls -A {repo}"
    )
    # Started from a subdirectory: it runs in the same subdirectory of the worktree.
    result = anyone.run("--worktree=feature", "exec", "sh", "-c", script, cwd=repo / "src")
    assert result.returncode == 0, result.stderr
    tree = worktree_of(repo, "feature")
    assert f"Created worktree {tree} (new branch feature)" in result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == str(tree / "src")
    # Of the main checkout only its git directory is mounted, not its files.
    assert lines[1:] == [".git"]

    assert "inside" in host_git(anyone, repo, "log", "feature", "--oneline")
    assert host_git(anyone, tree, "status", "--porcelain") == ""
    made = (tree / "src" / "f").stat()
    assert (made.st_uid, made.st_gid) == (anyone.uid, anyone.gid)
    ref = repo / ".git" / "refs" / "heads" / "feature"
    assert ref.stat().st_uid == anyone.uid
    assert not (repo / "src" / "f").exists()

    # Run again: the worktree is reused, the branch keeps the commit.
    again = anyone.run("--worktree=feature", "exec", "git", "log", "--format=%s", cwd=repo)
    assert again.returncode == 0, again.stderr
    assert f"Using worktree {tree} (branch feature)" in again.stderr
    assert again.stdout.split() == ["inside", "initial"]


def test_two_agents_in_parallel_on_two_worktrees(anyone: Aishell) -> None:
    repo = make_repo(anyone, "par")
    script = "date +%s.%N; echo {b} > only-{b}; sleep 5; date +%s.%N; ls"
    procs = {
        b: anyone.popen(f"--worktree={b}", "exec", "sh", "-c", script.format(b=b), cwd=repo)
        for b in ("a", "b")
    }
    outs = {b: p.communicate(timeout=300) for b, p in procs.items()}
    for b, p in procs.items():
        assert p.returncode == 0, outs[b][1]
    spans = {b: [float(x) for x in outs[b][0].split()[:2]] for b in outs}
    assert max(s[0] for s in spans.values()) < min(s[1] for s in spans.values()), "not parallel"
    for b, other in (("a", "b"), ("b", "a")):
        tree = worktree_of(repo, b)
        assert (tree / f"only-{b}").read_text() == f"{b}\n"
        assert not (tree / f"only-{other}").exists()
        assert f"only-{other}" not in outs[b][0].split()
        assert host_git(anyone, tree, "branch", "--show-current").strip() == b
    assert not (repo / "only-a").exists() and not (repo / "only-b").exists()


def test_remove_refuses_unmerged_and_uncommitted_work(anyone: Aishell) -> None:
    repo = make_repo(anyone, "rm")
    main_branch = host_git(anyone, repo, "branch", "--show-current").strip()
    work = anyone.run(
        "--worktree=a",
        "exec",
        "sh",
        "-c",
        "echo 1 > n && git add n && git commit -qm work",
        cwd=repo,
    )
    assert work.returncode == 0, work.stderr
    tree = worktree_of(repo, "a")

    refused = anyone.run("worktrees", "remove", "a", cwd=repo)
    assert refused.returncode == 1
    errors = error_lines(refused.stderr)
    assert len(errors) == 1, refused.stderr
    assert "1 unmerged commit" in errors[0]
    assert "aishell worktrees remove a --force" in errors[0]
    assert tree.is_dir()

    dirty = anyone.run("--worktree=c", "exec", "touch", "untracked", cwd=repo)
    assert dirty.returncode == 0, dirty.stderr
    refused = anyone.run("worktrees", "remove", "c", cwd=repo)
    assert refused.returncode == 1
    assert "uncommitted changes (1 file)" in refused.stderr
    assert worktree_of(repo, "c").is_dir()

    forced = anyone.run("worktrees", "remove", str(tree), "--force", cwd=repo / "src")
    assert forced.returncode == 0, forced.stderr
    assert "branch a kept" in forced.stderr
    assert not tree.exists()
    assert "work" in host_git(anyone, repo, "log", "a", "--oneline")

    # Merged work goes without --force.
    clean = anyone.run(
        "--worktree=d",
        "exec",
        "sh",
        "-c",
        "echo 2 > m && git add m && git commit -qm merged",
        cwd=repo,
    )
    assert clean.returncode == 0, clean.stderr
    host_git(anyone, repo, "merge", "-q", "--ff-only", "d")
    assert host_git(anyone, repo, "branch", "--show-current").strip() == main_branch
    removed = anyone.run("worktrees", "remove", "d", cwd=repo)
    assert removed.returncode == 0, removed.stderr
    assert not worktree_of(repo, "d").exists()

    main_refused = anyone.run("worktrees", "remove", main_branch, cwd=repo)
    assert main_refused.returncode == 2
    assert "main checkout" in main_refused.stderr


def test_list_shows_worktrees_with_their_containers(anyone: Aishell) -> None:
    repo = make_repo(anyone, "ls")
    name = "busy" + os.urandom(2).hex()
    started = anyone.run("--worktree", "--name", name, "--detach", "shell", cwd=repo)
    assert started.returncode == 0, started.stderr
    tree = worktree_of(repo, f"aishell/{name}")
    found = re.search(r"(aishell-[0-9a-f]{8}-" + name + ")", started.stderr)
    assert found, started.stderr
    container = found.group(1)
    assert f"Attach: cd {tree} && aishell attach {name}" in started.stderr
    try:
        listed = anyone.run("worktrees", "--json", cwd=repo)
        assert listed.returncode == 0, listed.stderr
        data = json.loads(listed.stdout)
        assert [d["path"] for d in data] == [str(repo), str(tree)]
        assert data[0]["main"] and not data[1]["main"]
        assert data[1]["branch"] == f"aishell/{name}"
        assert [c["name"] for c in data[1]["containers"]] == [name]
        assert data[0]["containers"] == []
        assert data[1]["containers"][0]["container"] == container

        table = anyone.run("worktrees", cwd=tree)
        assert table.returncode == 0, table.stderr
        row = [line for line in table.stdout.splitlines() if str(tree) in line]
        assert row and row[0].split()[-1] == name, table.stdout

        busy = anyone.run("worktrees", "remove", f"aishell/{name}", "--force", cwd=repo)
        assert busy.returncode == 1
        assert "a container is running in it" in busy.stderr
        assert tree.is_dir()
    finally:
        anyone.engine_cli("rm", "-f", container)
    for _ in range(50):
        gone = anyone.run("worktrees", "remove", f"aishell/{name}", cwd=repo)
        if gone.returncode == 0:
            break
        time.sleep(0.2)
    assert gone.returncode == 0, gone.stderr
    assert not tree.exists()


def test_an_existing_linked_worktree_works_inside(anyone: Aishell) -> None:
    repo = make_repo(anyone, "plain")
    tree = repo.parent / "plain-linked"
    host_git(anyone, repo, "worktree", "add", "-q", "-b", "linked", str(tree))
    result = anyone.run(
        "exec",
        "sh",
        "-c",
        "git status --porcelain && git log --format=%s -1 && "
        "git commit -q --allow-empty -m from-container",
        cwd=tree / "src",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["initial"]
    assert host_git(anyone, repo, "log", "linked", "--format=%s", "-1").strip() == (
        "from-container"
    )


def test_worktree_outside_a_repository_is_one_error(root_user: Aishell, tmp_path: Path) -> None:
    result = root_user.run("--worktree=x", "exec", "true", cwd=tmp_path)
    assert result.returncode == 1
    assert error_lines(result.stderr) == [
        f"Error: {tmp_path} is not inside a git repository; "
        "--worktree works in a git repository (or one of its worktrees)"
    ]
    listed = root_user.run("worktrees", cwd=tmp_path)
    assert listed.returncode == 1
    assert "is not inside a git repository" in listed.stderr
