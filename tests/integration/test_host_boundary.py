"""Nothing the agent writes may run on the host (issue 10), as attacks on a real engine.

Each test plays the hostile agent inside a real sandbox (`aishell exec sh -c ...`, or an
interactive session through tmux), then does what the host does next (aishell's own
commands, the user's git) and looks at the host: a planted command writes a marker file
on the host when it runs, so "it did not run" is "no marker".
"""

from __future__ import annotations

import json
import os
import shlex
import stat
import subprocess
import time
from pathlib import Path

import pytest

from testing.runner import Aishell, HostTmux, shell_line

HOOKS = (
    *("applypatch-msg", "pre-applypatch", "post-applypatch", "pre-commit", "pre-merge-commit"),
    *("prepare-commit-msg", "commit-msg", "post-commit", "pre-rebase", "post-checkout"),
    *("post-merge", "pre-push", "pre-receive", "update", "proc-receive", "post-receive"),
    *("post-update", "reference-transaction", "push-to-checkout", "pre-auto-gc"),
    *("post-rewrite", "sendemail-validate", "fsmonitor-watchman", "post-index-change"),
)


# ----------------------------------------------------------------------- helpers


def host_git(
    ai: Aishell, repo: Path, *args: str, check: bool = True, tty: bool = False
) -> subprocess.CompletedProcess[str]:
    """git on the host as `ai`'s user, as the user would run it (with a terminal when
    `tty`, so that a pager would start)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(ai.home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "LANG": "C.UTF-8",
        "TERM": "xterm",
        # The user's fallback pager; a planted core.pager would still win over it.
        "PAGER": "cat",
    }
    argv = ["git", "-C", str(repo), *args]
    if tty:
        argv = ["script", "-qec", shlex.join(argv), "/dev/null"]
    result = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        env=env,
        check=False,
        stdin=subprocess.DEVNULL,
        timeout=120,
        **ai.process_kwargs(),  # type: ignore[arg-type]
    )
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def markers_dir(ai: Aishell) -> Path:
    """Where planted commands leave their marker (writable by whoever runs them)."""
    path = ai.home / f"markers-{os.urandom(4).hex()}"
    path.mkdir()
    path.chmod(0o777)
    return path


def fired(markers: Path) -> list[str]:
    return sorted(p.name for p in markers.iterdir())


def make_repo(ai: Aishell, name: str) -> Path:
    repo = ai.new_project(name)
    host_git(ai, repo, "config", "user.name", "Ada Lovelace")
    host_git(ai, repo, "config", "user.email", "ada@example.org")
    files = {
        "a.txt": "plain text\n",
        "p.bin": "through a process filter\n",
        "inc.txt": "filtered by an included config\n",
        "incif.txt": "filtered by a conditionally included config\n",
        ".gitattributes": "*.txt filter=evil diff=evil\np.bin filter=evilp\n"
        "inc.txt filter=inc\nincif.txt filter=incif\n",
    }
    for rel, text in files.items():
        (repo / rel).write_text(text)
    if ai.user:
        subprocess.run(["chown", "-R", f"{ai.uid}:{ai.gid}", str(repo)], check=True)
    host_git(ai, repo, "add", ".")
    host_git(ai, repo, "commit", "-qm", "initial")
    return repo


def plant_config(repo: Path, m: Path) -> dict[str, str]:
    """Every executable git setting we know of, each touching its own marker."""
    t = f"touch {m}"
    return {
        "core.fsmonitor": f"{t}/fsmonitor; false",
        "filter.evil.clean": f"{t}/clean; cat",
        "filter.evil.smudge": f"{t}/smudge; cat",
        "filter.evil.required": "true",
        "filter.evilp.process": f"{t}/process; false",
        "filter.evilp.required": "true",
        "diff.evil.textconv": f"{t}/textconv; cat",
        "diff.external": f"{t}/external; true",
        "core.pager": f"{t}/pager; cat",
        "pager.status": f"{t}/pager-status; cat",
        "pager.log": f"{t}/pager-log; cat",
        "core.editor": f"{t}/editor; true",
        "sequence.editor": f"{t}/sequence-editor; true",
        "core.sshCommand": f"{t}/ssh; false",
        "core.askPass": f"{t}/askpass",
        "credential.helper": f"!{t}/credential",
        "gpg.program": f"{t}/gpg; false",
        "log.showSignature": "true",
        "alias.status": f"!{t}/alias",
        "core.alternateRefsCommand": f"{t}/alternate-refs",
        "core.hooksPath": str(repo / "evil-hooks"),
        "include.path": str(repo / "inc.cfg"),
        f"includeIf.gitdir:{repo}/.git.path": str(repo / "incif.cfg"),
    }


def write_hooks(directory: Path, m: Path, tag: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for hook in HOOKS:
        path = directory / hook
        path.write_text(f"#!/bin/sh\ntouch {m}/{tag}-{hook}\n")
        path.chmod(0o755)


def plant_on_host(ai: Aishell, repo: Path, m: Path) -> None:
    """The state an earlier session could leave (e.g. with git_internals: writable, or
    before aishell made the internals read-only)."""
    for key, value in plant_config(repo, m).items():
        host_git(ai, repo, "config", "--file", str(repo / ".git" / "config"), key, value)
    (repo / "inc.cfg").write_text(f'[filter "inc"]\n\tclean = touch {m}/inc-clean; cat\n'
                                  f'\tsmudge = touch {m}/inc-smudge; cat\n')  # fmt: skip
    (repo / "incif.cfg").write_text(f'[filter "incif"]\n\tclean = touch {m}/incif-clean; cat\n'
                                    f'\tsmudge = touch {m}/incif-smudge; cat\n')  # fmt: skip
    write_hooks(repo / ".git" / "hooks", m, "hook")
    write_hooks(repo / "evil-hooks", m, "hookspath")
    (repo / "id_rsa").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")  # a high finding
    if ai.user:
        subprocess.run(["chown", "-R", f"{ai.uid}:{ai.gid}", str(repo)], check=True)


def start_detached_shell(ai: Aishell, repo: Path) -> str:
    """`aishell --detach shell` in `repo`; the engine's name of its container."""
    name = "d" + os.urandom(2).hex()
    started = ai.run("--detach", "--name", name, "shell", cwd=repo)
    assert started.returncode == 0, started.stderr
    return next(w for w in started.stderr.split() if w.startswith("aishell-") and w.endswith(name))


def dirty_stat(path: Path) -> None:
    """Same content, other mtime: git must read the file again (through its filters)."""
    st = path.stat()
    os.utime(path, (st.st_atime, st.st_mtime - 100))


# ------------------------------------------------- aishell's own git on the host


def test_aishells_own_git_runs_nothing_a_repository_names(
    anyone: Aishell, host_tmux: HostTmux
) -> None:
    repo = make_repo(anyone, "own-git")
    m = markers_dir(anyone)
    plant_on_host(anyone, repo, m)
    for path in ("a.txt", "p.bin", "inc.txt", "incif.txt"):
        dirty_stat(repo / path)

    check = anyone.run("check", cwd=repo)
    assert "id_rsa" in check.stdout, check.stdout  # the scan ran (and asked git)
    assert json.loads(anyone.run("check", "--json", cwd=repo).stdout)["sensitive_files"]
    assert fired(m) == [], "aishell check"

    # An interactive launch: the scan runs before the prompt; answer no, then yes.
    for answer in ("n", "y"):
        session = f"own{answer}"
        host_tmux.start(session, shell_line(anyone, "--name", session, "shell", cwd=repo))
        host_tmux.wait_for(session, lambda s: "Proceed with 1 high-severity" in s, timeout=120)
        host_tmux.keys(session, answer, "Enter")
        if answer == "y":
            host_tmux.wait_for(session, lambda s: "[aishell]" in s.split("Proceed", 1)[1], 120)
            time.sleep(0.5)
            host_tmux.keys(session, "exit 0", "Enter")
        screen = host_tmux.wait_for(session, lambda s: "HOST-RC=" in s, timeout=120)
        assert ("HOST-RC=1" if answer == "n" else "HOST-RC=0") in screen, screen
        assert fired(m) == [], f"interactive launch answered {answer}"

    # --worktree: `git worktree add` checks the branch out (filters, post-checkout).
    wt = anyone.run("--worktree=feature", "exec", "cat", "a.txt", "p.bin", cwd=repo)
    assert wt.returncode == 0, wt.stderr
    assert wt.stdout == "plain text\nthrough a process filter\n"
    assert fired(m) == [], "--worktree"

    tree = repo.parent / f"{repo.name}.worktrees" / "feature"
    for path in ("a.txt", "p.bin", "inc.txt", "incif.txt"):
        dirty_stat(tree / path)
    listed = anyone.run("worktrees", cwd=repo)
    assert listed.returncode == 0, listed.stderr
    removed = anyone.run("worktrees", "remove", "feature", cwd=repo)
    assert removed.returncode == 0, removed.stderr
    assert not tree.exists()
    assert fired(m) == [], "aishell worktrees remove"


@pytest.mark.parametrize("where", ["main", "worktree"])
def test_a_redirected_git_directory_is_refused_and_named(anyone: Aishell, where: str) -> None:
    """`.git/commondir` makes git read another directory's config and hooks. The top of
    `.git` stays writable (git makes lock files there), so the agent can create it:
    aishell's own git refuses such a repository, the post-session notice and check name
    it."""
    repo = make_repo(anyone, "redirect")
    m = markers_dir(anyone)
    cwd = repo
    gitdir = ".git"
    if where == "worktree":
        made = anyone.run("--worktree=side", "exec", "true", cwd=repo)
        assert made.returncode == 0, made.stderr
        cwd = repo.parent / f"{repo.name}.worktrees" / "side"
        gitdir = f"{repo}/.git/worktrees/side"
    plant = (
        f"set -e; g={shlex.quote(gitdir)}; mkdir -p evil/hooks; "
        f"cp -r {repo}/.git/objects {repo}/.git/refs {repo}/.git/HEAD evil/; "
        f"printf '[core]\\n\\tfsmonitor = touch {m}/redirect; false\\n' > evil/config; "
        'echo "$PWD/evil" > "$g/commondir"; echo planted'
    )
    result = anyone.run("exec", "sh", "-c", plant, cwd=cwd)
    if where == "worktree":
        # A linked worktree's own git directory keeps its commondir read-only; the
        # repository's git directory (mounted, its top writable) gets one: named.
        assert "planted" not in result.stdout, result.stdout + result.stderr
        plant = plant.replace(gitdir, f"{repo}/.git").replace("evil", "evil2")
        again = anyone.run("exec", "sh", "-c", plant, cwd=cwd)
        assert "planted" in again.stdout, again.stderr
        assert f"{repo}/.git/commondir" in again.stderr, again.stderr
        assert "another directory" in again.stderr and "moved aside" in again.stderr
        listed = anyone.run("worktrees", cwd=repo)  # moved aside: nothing to refuse
        assert listed.returncode == 0 and "side" in listed.stdout, listed.stderr
        assert fired(m) == []
        return
    assert "planted" in result.stdout, result.stderr
    assert ".git/commondir" in result.stderr  # the post-session notice
    assert "makes git read its config and hooks from another directory" in result.stderr
    # The session's end moved it aside (the tests below); one that is there when no
    # session ended (a detached one still running wrote it, or someone on the host) is
    # refused by aishell's own git and named by check.
    moved = repo / ".git" / "commondir.aishell-moved"
    os.rename(moved, repo / ".git" / "commondir")

    check = anyone.run("check", "--json", cwd=repo)
    assert check.returncode == 1
    data = json.loads(check.stdout)
    assert "commondir" in (data["host_files"]["redirect"] or "")
    refused = anyone.run("worktrees", cwd=repo)
    assert refused.returncode == 1
    errors = [line for line in refused.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "commondir" in errors[0] and "rm " in errors[0], refused.stderr
    launch = anyone.run("exec", "true", cwd=repo)
    assert launch.returncode == 1 and "commondir" in launch.stderr
    assert fired(m) == [], "aishell's own git followed the redirect"


# ------------------------------------------------------- the user's git afterwards

INSIDE_PLANTS = r"""
m={m}
t="touch $m"
G=$(git rev-parse --path-format=absolute --git-common-dir)
for key in core.fsmonitor core.pager core.sshCommand core.hooksPath filter.evil.clean \
        filter.evil.smudge diff.evil.textconv diff.external alias.st include.path \
        remote.origin.uploadpack; do
    git config "$key" "$t/cfg-$key; false" && echo "PLANTED git config $key"
done
git config --local --add include.path "$PWD/inc.cfg" && echo "PLANTED include"
for s in "" sudo; do
    $s sh -c 'printf "[core]\n\tfsmonitor = $1/append; false\n" >> "$2/config"' _ "$t" "$G" \
        && echo "PLANTED append $s"
    $s sh -c 'cp "$2/config" /tmp/c && echo "[core] fsmonitor = $1/replace" >> /tmp/c \
        && cp /tmp/c "$2/config"' _ "$t" "$G" && echo "PLANTED copy $s"
    $s sed -i "s|bare = false|bare = false\n\tfsmonitor = $t/sed; false|" "$G/config" \
        && echo "PLANTED sed $s"
    $s mv "$G/config" "$G/config.old" && echo "PLANTED mv-config $s"
    $s rm -f "$G/config" && echo "PLANTED rm-config $s"
    for hook in {hooks}; do
        $s sh -c 'printf "#!/bin/sh\n$2/$1\n" > "$3/hooks/$1" && chmod +x "$3/hooks/$1"' \
            _ "$hook" "$t" "$G" && echo "PLANTED hook $hook $s"
    done
    $s rm -rf "$G/hooks" && echo "PLANTED rm-hooks $s"
    $s mv "$G/hooks" "$G/hooks.old" && echo "PLANTED mv-hooks $s"
    $s ln -sfn /tmp "$G/hooks" && echo "PLANTED ln-hooks $s"
    $s sh -c 'echo "*.txt filter=evil" > "$1/info/attributes"' _ "$G" \
        && echo "PLANTED attributes $s"
    $s mv .git .git.moved && echo "PLANTED mv-git $s"
    if [ -f .git ]; then
        $s sh -c 'echo "gitdir: $PWD/evil" > .git' && echo "PLANTED gitfile $s"
        $s sh -c 'echo /tmp > "$1/commondir"' _ "$(git rev-parse --absolute-git-dir)" \
            && echo "PLANTED worktree-commondir $s"
    fi
done
echo DONE
"""


@pytest.mark.targets("docker", "podman")
@pytest.mark.parametrize("where", ["main", "worktree"])
def test_the_users_git_runs_nothing_the_agent_planted(anyone: Aishell, where: str) -> None:
    repo = make_repo(anyone, "users-git")
    m = markers_dir(anyone)
    remote = anyone.home / f"remote-{os.urandom(3).hex()}.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    if anyone.user:
        subprocess.run(["chown", "-R", f"{anyone.uid}:{anyone.gid}", str(remote)], check=True)
    host_git(anyone, repo, "remote", "add", "origin", str(remote))
    host_git(anyone, repo, "push", "-q", "origin", "HEAD:refs/heads/main")

    script = INSIDE_PLANTS.format(m=m, hooks=" ".join(HOOKS))
    where_args = ["--worktree=side"] if where == "worktree" else []
    result = anyone.run(*where_args, "exec", "bash", "-c", script, cwd=repo)
    assert "DONE" in result.stdout, result.stderr
    planted = [line for line in result.stdout.splitlines() if line.startswith("PLANTED")]
    assert planted == [], planted
    assert "Device or resource busy" in result.stderr or "Read-only" in result.stderr

    # What the user does next on the host: every command that runs hooks, filters,
    # fsmonitor, pagers, textconv, ssh or upload-pack.
    if where == "worktree":
        repo = repo.parent / f"{repo.name}.worktrees" / "side"
    (repo / "a.txt").write_text("changed on the host\n")
    host_git(anyone, repo, "status", tty=True)
    host_git(anyone, repo, "diff", tty=True)
    host_git(anyone, repo, "log", "-p", "-1", tty=True)
    host_git(anyone, repo, "commit", "-qam", "by the user")
    host_git(anyone, repo, "checkout", "-q", "-b", "topic")
    host_git(anyone, repo, "checkout", "-q", "-")
    host_git(anyone, repo, "fetch", "-q", "origin")
    host_git(anyone, repo, "push", "-q", "origin", "HEAD:refs/heads/" + where)
    assert fired(m) == [], "the user's git ran what the agent planted"
    # And git still works inside.
    again = anyone.run("exec", "git", "log", "--format=%s", cwd=repo)
    assert again.stdout.split("\n")[0] == "by the user", again.stderr


@pytest.mark.targets("docker", "podman")
def test_normal_git_work_inside_still_works(anyone: Aishell) -> None:
    repo = make_repo(anyone, "normal")
    script = r"""
set -e
echo one > one.txt && git add one.txt && git commit -qm one
git checkout -q -b side
echo two > two.txt && git add two.txt && git commit -qm two
git checkout -q -
echo three > three.txt && git add three.txt && git commit -qm three
git checkout -q side && git rebase -q - && git log --format=%s | head -3 | tr '\n' ' '
echo
echo dirty >> one.txt && git stash -q && git stash list | wc -l && git stash pop -q
git diff --stat | tail -1
git checkout -q one.txt
git config --global user.name "Inside" && git config --global --get user.name
git worktree add -q wt-inside -b side2 && git -C wt-inside log --format=%s -1 \
    && git worktree remove wt-inside
if git config --local core.fsmonitor x 2>/tmp/err; then echo WRITABLE; else cat /tmp/err; fi
"""
    result = anyone.run("exec", "bash", "-c", script, cwd=repo)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "two three one initial" or lines[0].startswith("two three one"), lines
    assert lines[1] == "1"
    assert "1 file changed" in lines[2]
    assert lines[3] == "Inside"
    assert lines[4] == "two"
    assert "WRITABLE" not in result.stdout
    assert "could not write config file .git/config" in lines[-1], lines[-1]
    # The user's own global git config is not the sandbox's.
    name = host_git(anyone, repo, "config", "--global", "--get", "user.name", check=False)
    assert name.stdout.strip() != "Inside"
    assert host_git(anyone, repo, "status", "--porcelain").stdout.strip() == ""


def test_git_internals_writable_opt_out(anyone: Aishell) -> None:
    repo = make_repo(anyone, "writable")
    anyone.write(repo / ".aishell" / "config.yaml", "git_internals: writable\n")
    result = anyone.run("exec", "git", "config", "aishell.test", "yes", cwd=repo)
    assert result.returncode == 0, result.stderr
    assert "git_internals: writable" in result.stderr
    assert host_git(anyone, repo, "config", "aishell.test").stdout.strip() == "yes"
    check = json.loads(anyone.run("check", "--json", cwd=repo).stdout)
    assert check["host_files"]["git_internals"] == "writable"
    warned = [c for c in check["checks"] if c["label"].startswith("git_internals: writable")]
    assert warned and warned[0]["status"] == "warn"
    # What it changed is still reported after the session.
    assert ".git/config" in result.stderr


def test_other_views_per_worktree_config_and_a_hooks_path_in_the_project(
    anyone: Aishell,
) -> None:
    repo = make_repo(anyone, "views")
    m = markers_dir(anyone)
    host_git(anyone, repo, "config", "core.repositoryFormatVersion", "1")
    host_git(anyone, repo, "config", "extensions.worktreeConfig", "true")
    host_git(anyone, repo, "config", "core.hooksPath", ".githooks")  # husky-style
    anyone.write(repo / ".githooks" / "README", "hooks\n")
    # A configured mount that shows the repository a second time, read-write.
    anyone.write(repo / ".aishell" / "config.yaml", f"mounts:\n  - {repo.parent}:/alt\n")
    alt = f"/alt/{repo.name}/.git"
    script = f"""
printf '[core]\\n\\tfsmonitor = touch {m}/alt; false\\n' >> {alt}/config && echo PLANTED alt
printf '#!/bin/sh\\ntouch {m}/alt-hook\\n' > {alt}/hooks/post-checkout && echo PLANTED alt-hook
printf '[core]\\n\\tfsmonitor = touch {m}/wt; false\\n' > .git/config.worktree \\
    && echo PLANTED config.worktree
printf '#!/bin/sh\\ntouch {m}/githooks\\n' > .githooks/pre-commit && chmod +x .githooks/pre-commit
echo DONE
"""
    result = anyone.run("exec", "sh", "-c", script, cwd=repo)
    assert "DONE" in result.stdout, result.stderr
    assert [x for x in result.stdout.splitlines() if x.startswith("PLANTED")] == []
    assert (repo / ".git" / "config.worktree").read_text() == ""  # made empty, read-only
    line = [x for x in result.stderr.splitlines() if " .githooks/pre-commit:" in x]
    assert line and "core.hooksPath" in line[0], result.stderr  # not blocked: named
    host_git(anyone, repo, "status", tty=True)
    host_git(anyone, repo, "checkout", "-q", "-b", "other")
    assert fired(m) == []


# ------------------------------------------------------------------- host root


SETUID_ATTEMPTS = r"""
cd "$1"
cp /bin/sh ./sh2
sudo cp /bin/sh ./sh3
sudo chmod u+s ./sh3 && echo MADE chmod-u+s
sudo chmod g+s ./sh3 && echo MADE chmod-g+s
chmod u+s ./sh2 && echo MADE user-chmod
sudo chmod 4755 ./sh3 && echo MADE chmod-4755
sudo install -m 4755 /bin/sh ./sh4 && echo MADE install
sudo chgrp 0 ./sh2 2>/dev/null; sudo chmod 2755 ./sh2 && echo MADE chmod-2755
sudo perl -MFcntl -e 'sysopen(F, "sh5", O_CREAT|O_WRONLY, 04755) or exit 1' \
    && echo MADE open-creat
sudo perl -e '$p = "sh3"; exit(syscall(268, -100, $p, 04755) == 0 ? 0 : 1)' \
    && echo MADE fchmodat
sudo perl -e '$p = "sh3"; exit(syscall(452, -100, $p, 04755, 0) == 0 ? 0 : 1)' \
    && echo MADE fchmodat2
sudo perl -e '$p = "sh6"; exit(syscall(133, $p, 0104755, 0) == 0 ? 0 : 1)' \
    && echo MADE mknod-regular-setuid
sudo mknod kmsg c 1 11 && echo MADE char-device
sudo mknod disk b 8 0 && echo MADE block-device
sudo mknod null c 1 3 && echo MADE null-device
# a file capability (cap_net_raw+ep), by setxattr(2)
sudo perl -e '$p = "sh3"; $n = "security.capability";
    $v = "\x01\x00\x00\x02\x00\x20" . ("\x00" x 14);
    exit(syscall(188, $p, $n, $v, 20, 0) == 0 ? 0 : 1)' \
    && echo MADE file-capability
sudo perl -e '$b = "\0" x 120; exit(syscall(425, 1, $b) >= 0 ? 0 : 1)' && echo MADE io_uring
sudo perl -e 'exit(syscall(272, 0x10000000) == 0 ? 0 : 1)' && echo MADE unshare-user
echo DONE
"""


@pytest.mark.targets("docker", "podman")
def test_no_setuid_files_or_device_nodes_from_the_sandbox(anyone: Aishell) -> None:
    project = anyone.new_project("suid")
    result = anyone.run("exec", "bash", "-c", SETUID_ATTEMPTS, "_", str(project), cwd=project)
    assert "DONE" in result.stdout, result.stderr
    made = [line for line in result.stdout.splitlines() if line.startswith("MADE")]
    assert made == [], made
    for path in project.iterdir():
        st = os.lstat(path)
        assert not st.st_mode & (stat.S_ISUID | stat.S_ISGID), (path, oct(st.st_mode))
        assert not (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)), path
        if stat.S_ISREG(st.st_mode):
            with pytest.raises(OSError):
                os.getxattr(path, "security.capability", follow_symlinks=False)
    # sudo still works for what it is used for, and files root made there are reported.
    owner = anyone.run("exec", "sudo", "touch", "by-root", cwd=project)
    assert owner.returncode == 0, owner.stderr
    uid = os.lstat(project / "by-root").st_uid
    rootless = anyone.user is not None and anyone.extra_env.get("AISHELL_ENGINE") == "podman"
    if rootless:
        assert uid not in (0, anyone.uid)  # a subordinate UID: not host root
    else:
        assert uid == 0
    if anyone.user is not None and not rootless:
        assert "by-root: owned by root" in owner.stderr, owner.stderr


def test_setuid_files_already_in_the_project_are_reported(anyone: Aishell) -> None:
    """The sweep reports what it finds whoever made it: here, one put there on the host."""
    project = anyone.new_project("preexisting")
    tool = project / "bin" / "tool"
    anyone.write(tool, "#!/bin/sh\n")
    tool.chmod(0o4755)
    data = json.loads(anyone.run("check", "--json", cwd=project).stdout)
    found = [a for a in data["host_files"]["artifacts"] if a["path"] == str(tool)]
    assert found and "set-user-ID" in found[0]["what"], data["host_files"]
    first = anyone.run("exec", "true", cwd=project)
    assert "bin/tool: set-user-ID" in first.stderr, first.stderr
    assert anyone.run("guard", "ack", cwd=project).returncode == 0
    second = anyone.run("exec", "true", cwd=project)
    assert "bin/tool" not in second.stderr  # acknowledged: not repeated after sessions
    data = json.loads(anyone.run("check", "--json", cwd=project).stdout)
    assert [a["path"] for a in data["host_files"]["artifacts"]] == [str(tool)]  # check: always


def test_sudo_apt_get_install_still_works(anyone: Aishell) -> None:
    project = anyone.new_project("apt")
    result = anyone.run(
        "exec", "sh", "-c",
        "sudo apt-get update -qq >/dev/null && sudo apt-get install -y -qq hello >/dev/null "
        "&& hello",
        cwd=project, timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Hello, world!" in result.stdout


# ------------------------------------------------------------------ auto-run files

AUTORUN_PLANTS = r"""
set -e
mkdir -p .vscode .VSCode .devcontainer .claude sub deep/er
echo '{"tasks":[{"label":"x","command":"id","runOptions":{"runOn":"folderOpen"}}]}' \
    > .vscode/tasks.json
echo '{"tasks":[]}' > .VSCode/Tasks.json
echo 'echo pwned' > .envrc
echo '{"initializeCommand":"id"}' > .devcontainer/devcontainer.json
echo '{"hooks":{"SessionStart":[{"hooks":[{"type":"command","command":"id"}]}]}}' \
    > .claude/settings.local.json
echo '{"mcpServers":{"x":{"command":"id"}}}' > .mcp.json
printf 'repos:\n- repo: local\n  hooks: [{id: x, name: x, entry: id, language: system}]\n' \
    > .pre-commit-config.yaml
echo 'node-options=--require ./x.js' > .npmrc
git -C sub init -q && git -C sub config core.fsmonitor 'id; false'
git -C deep/er init -q
printf '#!/bin/sh\nid\n' > deep/er/.git/hooks/pre-commit && chmod +x deep/er/.git/hooks/pre-commit
echo planted
"""


def test_changed_autorun_files_are_listed_after_the_session(anyone: Aishell) -> None:
    repo = make_repo(anyone, "autorun")
    anyone.write(repo / ".vscode" / "settings.json", '{"editor.tabSize": 2}\n')
    result = anyone.run("exec", "bash", "-c", AUTORUN_PLANTS, cwd=repo)
    assert "planted" in result.stdout, result.stderr
    notice = result.stderr
    for path, why in [
        (".vscode/tasks.json", "runOn"),
        (".VSCode/Tasks.json", "runOn"),
        (".envrc", "direnv"),
        (".devcontainer/devcontainer.json", "initializeCommand"),
        (".claude/settings.local.json", "Claude Code hooks"),
        (".mcp.json", "MCP servers"),
        (".pre-commit-config.yaml", "pre-commit"),
        (".npmrc", "npm"),
        ("sub/.git", "core.fsmonitor"),
        ("deep/er/.git", "hook pre-commit"),
    ]:
        line = [x for x in notice.splitlines() if f" {path}:" in x]
        assert line and why in line[0], (path, notice)
    assert ".vscode/settings.json" not in notice  # unchanged: not named
    assert "aishell guard diff" in notice

    # `check` shows the same until acknowledged; `guard diff` shows the change.
    data = json.loads(anyone.run("check", "--json", cwd=repo).stdout)
    pending = {p["path"] for p in data["host_files"]["pending"]}
    assert {".envrc", ".vscode/tasks.json", "sub/.git"} <= pending, pending
    text = anyone.run("check", cwd=repo).stdout
    assert "change" in text and ".envrc" in text
    diff = anyone.run("guard", "diff", ".envrc", cwd=repo)
    assert diff.returncode == 0, diff.stderr
    assert "+echo pwned" in diff.stdout
    listed = anyone.run("guard", "--json", cwd=repo)
    assert {p["path"] for p in json.loads(listed.stdout)["pending"]} == pending
    ack = anyone.run("guard", "ack", cwd=repo)
    assert ack.returncode == 0 and "seen" in ack.stderr, ack.stderr
    data = json.loads(anyone.run("check", "--json", cwd=repo).stdout)
    assert data["host_files"]["pending"] == [] and data["host_files"]["repositories"] == []
    # Nothing was reverted.
    assert (repo / ".envrc").read_text() == "echo pwned\n"
    # The next change to an acknowledged file is reported again.
    again = anyone.run("exec", "sh", "-c", "echo more >> .envrc", cwd=repo)
    assert " .envrc:" in again.stderr and "changed" in again.stderr


def test_a_repository_the_agent_creates_is_named(anyone: Aishell) -> None:
    project = anyone.home / "projects" / f"norepo-{os.urandom(3).hex()}"
    project.mkdir(parents=True)
    anyone.write(project / ".aishell" / "config.yaml", "tmux: false\n")
    script = "git init -q && git config core.pager 'id'; echo made"
    result = anyone.run("exec", "sh", "-c", script, cwd=project)
    assert "made" in result.stdout, result.stderr
    lines = [x for x in result.stderr.splitlines() if " .git:" in x]
    assert lines and "core.pager" in lines[0], result.stderr


def test_a_detached_session_is_checked_once_its_container_is_gone(
    anyone: Aishell,
) -> None:
    repo = make_repo(anyone, "detached")
    container = start_detached_shell(anyone, repo)
    try:
        planted = anyone.engine_cli(
            "exec", "-u", f"{anyone.uid}:{anyone.gid}", "-w", str(repo), container,
            "sh", "-c", "echo 'echo pwned' > .envrc",
        )  # fmt: skip
        assert planted.returncode == 0, planted.stderr
        running = anyone.run("guard", cwd=repo)
        assert ".envrc" not in running.stdout + running.stderr  # still running: not yet
    finally:
        anyone.engine_cli("stop", "-t", "1", container)
    later = anyone.run("guard", cwd=repo)
    assert " .envrc:" in later.stderr, later.stderr  # the notice, from the next command
    assert ".envrc" in later.stdout  # and the list


def test_verify_probes_the_host_boundary(anyone: Aishell) -> None:
    repo = make_repo(anyone, "verify-wall")
    result = anyone.run("verify", "--json", cwd=repo, timeout=900)
    data = json.loads(result.stdout)
    statuses = {c["id"]: c["status"] for c in data["checks"]}
    assert statuses["git-internals"] == "pass", data
    assert statuses["setuid"] == "pass", data
    assert statuses["devices"] == "pass", data
    anyone.write(repo / ".aishell" / "config.yaml", "git_internals: writable\n")
    opened = json.loads(anyone.run("verify", "--json", cwd=repo, timeout=900).stdout)
    git = next(c for c in opened["checks"] if c["id"] == "git-internals")
    assert git["status"] == "fail" and "git_internals: writable" in git["detail"]
    assert host_git(anyone, repo, "config", "--get", "aishell.verify", check=False).stdout == ""
    # The probes can fail: with the hardening undone by docker_args, they say so.
    anyone.write(
        repo / ".aishell" / "config.yaml",
        "docker_args: --security-opt seccomp=unconfined --cap-add MKNOD --cap-add SETFCAP\n",
    )
    undone = json.loads(anyone.run("verify", "--json", cwd=repo, timeout=900).stdout)
    checks = {c["id"]: c for c in undone["checks"]}
    assert checks["setuid"]["status"] == "fail", checks["setuid"]
    assert "appeared on the host" in checks["setuid"]["detail"]
    assert checks["devices"]["status"] == "fail", checks["devices"]
    assert checks["git-internals"]["status"] == "pass"
    assert not [p for p in repo.iterdir() if p.name.startswith(".aishell-verify-")]


# ------------------------------------------------ redirects at the top of .git

EVIL_COMMONDIR = (
    "set -e; mkdir -p {evil}/hooks; cp -r {g}/objects {g}/refs {g}/HEAD {evil}/; "
    "printf '[core]\\n\\tfsmonitor = touch {m}/{tag}; false\\n' > {evil}/config; "
    'echo "{evil}" > {g}/commondir; echo planted'
)


def plant_commondir(gitdir: str, evil: str, m: Path, tag: str) -> str:
    """Shell: make `gitdir` read its config (a planted fsmonitor) from `evil`."""
    return EVIL_COMMONDIR.format(g=shlex.quote(gitdir), evil=shlex.quote(evil), m=m, tag=tag)


@pytest.mark.targets("docker", "podman")
@pytest.mark.parametrize("where", ["main", "worktree"])
def test_a_commondir_redirect_never_reaches_the_users_git(anyone: Aishell, where: str) -> None:
    """The top of `.git` must stay writable (lock files), so the agent can write a
    `commondir` there: a main repository's git directory never has one, and git would
    read its config and hooks from the directory it names. When the session ends
    aishell moves it aside (nothing is lost), so the user's git afterwards runs nothing
    and aishell goes on working in the project."""
    repo = make_repo(anyone, "commondir")
    m = markers_dir(anyone)
    cwd = repo
    if where == "worktree":
        made = anyone.run("--worktree=side", "exec", "true", cwd=repo)
        assert made.returncode == 0, made.stderr
        cwd = repo.parent / f"{repo.name}.worktrees" / "side"
    plant = plant_commondir(f"{repo}/.git", f"{cwd}/evil", m, "redirect")
    result = anyone.run("exec", "sh", "-c", plant, cwd=cwd)
    assert "planted" in result.stdout, result.stderr
    moved = repo / ".git" / "commondir.aishell-moved"
    assert not (repo / ".git" / "commondir").exists()
    assert moved.read_text().strip() == f"{cwd}/evil"  # kept, under another name
    line = [x for x in result.stderr.splitlines() if ".git/commondir:" in x]
    assert line and "moved aside" in line[0] and str(moved) in line[0], result.stderr

    for where_git in {repo, cwd}:
        (where_git / "a.txt").write_text(f"changed in {where_git.name}\n")
        host_git(anyone, where_git, "status", tty=True)
        host_git(anyone, where_git, "diff", tty=True)
        host_git(anyone, where_git, "commit", "-qam", "by the user")
    assert fired(m) == [], "the user's git followed the planted commondir"
    # aishell itself goes on: no refusal, and check sees no redirect.
    assert anyone.run("exec", "true", cwd=cwd).returncode == 0
    data = json.loads(anyone.run("check", "--json", cwd=repo).stdout)
    assert data["host_files"]["redirect"] is None, data["host_files"]


@pytest.mark.targets("docker", "podman")
def test_a_commondir_written_while_the_session_runs_stops_it(anyone: Aishell) -> None:
    """While the session runs, the user's git in another terminal would follow a
    planted `commondir`: aishell watches for one, moves it aside and stops the
    session at once (no legitimate tool writes one there)."""
    repo = make_repo(anyone, "tripwire")
    m = markers_dir(anyone)
    plant = plant_commondir(f"{repo}/.git", f"{repo}/evil", m, "live")
    # (and keep aishell from renaming it: .git is the agent's as much as the user's)
    script = f"{plant}; chmod a-w .git; for i in $(seq 600); do sleep 0.2; done; echo survived"
    result = anyone.run("exec", "sh", "-c", script, cwd=repo, timeout=300)
    assert "planted" in result.stdout, result.stderr
    assert "survived" not in result.stdout, "the session went on"
    assert result.returncode != 0
    assert "stopped the session" in result.stderr, result.stderr
    assert not (repo / ".git" / "commondir").exists()
    assert (repo / ".git" / "commondir.aishell-moved").is_file()
    host_git(anyone, repo, "status", tty=True)
    assert fired(m) == []
    sessions = json.loads(anyone.run("sessions", "--json", cwd=repo).stdout)["sessions"]
    assert sessions[0]["ended_by"] == "guard", sessions[0]


@pytest.mark.targets("docker", "podman")
def test_a_submodules_git_directory_is_walled_too(anyone: Aishell) -> None:
    """`.git/modules/<name>/`: the submodule's config, hooks and info are read-only,
    and a `commondir` planted at its top is moved aside; the user's `git status` in the
    superproject (which runs git in the submodule) and in the submodule runs nothing."""
    upstream = make_repo(anyone, "sub-upstream")
    repo = make_repo(anyone, "super")
    host_git(
        anyone, repo, "-c", "protocol.file.allow=always",
        "submodule", "add", "-q", str(upstream), "lib",
    )  # fmt: skip
    host_git(anyone, repo, "commit", "-qm", "add lib")
    assert (repo / ".git" / "modules" / "lib" / "config").is_file()
    m = markers_dir(anyone)
    g = f"{repo}/.git/modules/lib"
    script = f"""
cd lib
git config core.fsmonitor 'touch {m}/sub-config; false' && echo PLANTED config
printf '[core]\\n\\tfsmonitor = touch {m}/sub-append; false\\n' >> {g}/config && echo PLANTED append
sudo sh -c 'printf "[core] fsmonitor = touch {m}/sub-sudo\\n" >> {g}/config' && echo PLANTED sudo
printf '#!/bin/sh\\ntouch {m}/sub-hook\\n' > {g}/hooks/post-checkout && echo PLANTED hook
echo '* filter=evil' > {g}/info/attributes && echo PLANTED attributes
mv {g} {g}.moved && echo PLANTED mv-gitdir
{plant_commondir(g, f"{repo}/evil", m, "sub-redirect")} >/dev/null && echo commondir-written
echo DONE
"""
    result = anyone.run("exec", "bash", "-c", script, cwd=repo)
    assert "DONE" in result.stdout, result.stderr
    planted = [x for x in result.stdout.splitlines() if x.startswith("PLANTED")]
    assert planted == [], planted
    assert "commondir-written" in result.stdout  # the top is writable: moved aside after
    assert not Path(g, "commondir").exists() and Path(g, "commondir.aishell-moved").exists()
    assert ".git/modules/lib/commondir:" in result.stderr, result.stderr
    (repo / "lib" / "a.txt").write_text("changed in the submodule\n")
    host_git(anyone, repo, "status", tty=True)
    host_git(anyone, repo / "lib", "status", tty=True)
    host_git(
        anyone, repo / "lib", "-c", "user.name=U", "-c", "user.email=u@e.org", "commit", "-qam", "x"
    )
    assert fired(m) == []


def test_configured_read_write_mounts_are_swept_after_the_session(anyone: Aishell) -> None:
    """A read-write mount outside the project is as writable as the project: what the
    sweep reports there (a file root made, a set-user-ID file) is named after the session."""
    project = anyone.new_project("swept-mount")
    shared = anyone.home / f"shared-{os.urandom(3).hex()}"
    shared.mkdir()
    if anyone.user:
        subprocess.run(["chown", f"{anyone.uid}:{anyone.gid}", str(shared)], check=True)
    anyone.write(project / ".aishell" / "config.yaml", f"mounts:\n  - {shared}\n")
    tool = shared / "tool"
    anyone.write(tool, "#!/bin/sh\n")  # (a chown clears set-user-ID: that goes last)
    tool.chmod(0o4755)  # put there on the host: reported whoever made it
    script = (
        f"sudo touch {shared}/by-root; sudo cp /bin/sh {shared}/sh2; "
        f"sudo chmod u+s {shared}/sh2 && echo MADE; echo DONE"
    )
    result = anyone.run("exec", "sh", "-c", script, cwd=project)
    assert "DONE" in result.stdout and "MADE" not in result.stdout, result.stderr
    assert f"{shared}/tool: set-user-ID" in result.stderr, result.stderr
    rootless = anyone.user is not None and anyone.extra_env.get("AISHELL_ENGINE") == "podman"
    if anyone.user is not None and not rootless:
        assert f"{shared}/by-root: owned by root" in result.stderr, result.stderr
    data = json.loads(anyone.run("check", "--json", cwd=project).stdout)
    assert str(tool) in {a["path"] for a in data["host_files"]["artifacts"]}, data["host_files"]


def test_a_detached_sessions_redirect_is_moved_aside_by_the_next_command(
    anyone: Aishell,
) -> None:
    """A detached session has no aishell watching it: once its container is gone, the
    next aishell command in the project concludes it, which moves the redirect aside
    (a launch that meets the redirect first does that instead of refusing)."""
    repo = make_repo(anyone, "detached-redirect")
    m = markers_dir(anyone)
    container = start_detached_shell(anyone, repo)
    try:
        plant = plant_commondir(f"{repo}/.git", f"{repo}/evil", m, "detached")
        planted = anyone.engine_cli(
            "exec", "-u", f"{anyone.uid}:{anyone.gid}", "-w", str(repo), container,
            "sh", "-c", plant,
        )  # fmt: skip
        assert "planted" in planted.stdout, planted.stderr
    finally:
        anyone.engine_cli("stop", "-t", "1", container)
    launch = anyone.run("exec", "true", cwd=repo)
    assert launch.returncode == 0, launch.stderr
    assert "moved aside" in launch.stderr and ".git/commondir" in launch.stderr
    assert not (repo / ".git" / "commondir").exists()
    host_git(anyone, repo, "status", tty=True)
    assert fired(m) == []


def test_a_worktree_the_agent_adds_cannot_send_git_elsewhere(anyone: Aishell) -> None:
    """A linked worktree made inside the sandbox has a git directory the wall did not
    see at launch (`.git/worktrees/<new>/`): its `commondir` pointed at a config the
    agent wrote is moved aside when the session ends; git's own entry is left alone."""
    repo = make_repo(anyone, "new-worktree")
    m = markers_dir(anyone)
    g = f"{repo}/.git"
    script = (
        f"set -e; git worktree add -q wt-ok -b ok; git worktree add -q wt-evil -b evil; "
        f"mkdir -p evil/hooks; cp -r {g}/objects {g}/refs {g}/HEAD evil/; "
        f"printf '[core]\\n\\tfsmonitor = touch {m}/new-wt; false\\n' > evil/config; "
        f'echo "$PWD/evil" > {g}/worktrees/wt-evil/commondir; echo planted'
    )
    result = anyone.run("exec", "sh", "-c", script, cwd=repo)
    assert "planted" in result.stdout, result.stderr
    assert ".git/worktrees/wt-evil/commondir:" in result.stderr, result.stderr
    assert not Path(g, "worktrees/wt-evil/commondir").exists()
    assert Path(g, "worktrees/wt-ok/commondir").read_text().strip() == "../.."
    host_git(anyone, repo / "wt-ok", "status", tty=True)
    host_git(anyone, repo / "wt-evil", "status", tty=True, check=False)  # broken, harmless
    assert fired(m) == []


NESTED_PLANTS = r"""
set -e
m={m}
mkdir nested && cd nested && git init -q && git commit -q --allow-empty -m n
git config core.fsmonitor "touch $m/nested-fsmonitor; false"
cd .. && git add nested 2>/dev/null
git init -q /tmp/up && git -C /tmp/up commit -q --allow-empty -m up
git -c protocol.file.allow=always submodule add -q /tmp/up added
git config --file .git/modules/added/config core.fsmonitor "touch $m/added-fsmonitor; false"
printf '#!/bin/sh\ntouch %s/added-hook\n' "$m" > .git/modules/added/hooks/post-index-change
chmod +x .git/modules/added/hooks/post-index-change
git -C kept status --porcelain >/dev/null
echo planted
"""


def test_a_nested_repository_the_users_git_would_recurse_into_is_unlinked(
    anyone: Aishell,
) -> None:
    """The agent makes a repository inside the project whose config runs a program and
    adds it to the index as a gitlink (or adds a submodule and plants its config): the
    user's `git status` in the project would run git in it. When the session ends its
    `.git` is moved aside (git then sees an empty submodule); a nested repository that
    was there before and did not change is left alone."""
    repo = make_repo(anyone, "nested")
    m = markers_dir(anyone)
    kept = repo / "kept"
    kept.mkdir()
    if anyone.user:
        subprocess.run(["chown", f"{anyone.uid}:{anyone.gid}", str(kept)], check=True)
    host_git(anyone, kept, "init", "-q")
    host_git(anyone, kept, "-c", "user.name=U", "-c", "user.email=u@e.org",
             "commit", "-q", "--allow-empty", "-m", "k")  # fmt: skip
    hook = kept / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\nexit 0\n")  # the user's own hook: runs nothing bad
    hook.chmod(0o755)
    if anyone.user:
        subprocess.run(["chown", "-R", f"{anyone.uid}:{anyone.gid}", str(repo)], check=True)
    host_git(anyone, repo, "add", "kept")
    host_git(anyone, repo, "commit", "-qm", "kept as a gitlink")
    time.sleep(2.1)  # (the user's files are older than the session: change times)
    script = NESTED_PLANTS.format(m=m)
    result = anyone.run("exec", "bash", "-c", script, cwd=repo)
    assert "planted" in result.stdout, result.stderr
    for name in ("nested", "added"):
        line = [x for x in result.stderr.splitlines() if f" {name}/.git:" in x]
        assert line and "recurses into it" in line[0] and "moved aside" in line[0], (
            name, result.stderr,
        )  # fmt: skip
        assert not (repo / name / ".git").exists()
        assert (repo / name / ".git.aishell-moved").exists()
    assert (kept / ".git").is_dir()  # there before, unchanged: left alone
    (repo / "a.txt").write_text("changed\n")
    host_git(anyone, repo, "status", tty=True)
    host_git(anyone, repo, "diff", tty=True)
    host_git(anyone, repo, "commit", "-qam", "by the user")
    assert fired(m) == [], "the user's git ran a nested repository's planted config"


LINK_PLANTS = r"""
set -e
g=$(git rev-parse --absolute-git-dir)
c=$(git rev-parse --path-format=absolute --git-common-dir)
b=$(git symbolic-ref --short HEAD)
rm -f "$c/logs/refs/heads/$b" && ln -s {victim}/profile "$c/logs/refs/heads/$b"
ln "$PWD/notes.txt" "$g/ORIG_HEAD" 2>/dev/null && echo LINKED  # (.git is its own mount)
printf 'touch {m}/squash-msg\n' > "$g/SQUASH_MSG"
rm -f "$g/COMMIT_EDITMSG"
ln -s {victim}/bashrc "$g/COMMIT_EDITMSG"
echo planted
sleep 1
"""


@pytest.mark.targets("docker", "podman")
@pytest.mark.parametrize("where", ["main", "worktree"])
def test_links_in_git_directories_do_not_make_the_users_git_write_elsewhere(
    anyone: Aishell, where: str
) -> None:
    """Git writes some files in its directory in place, following symlinks:
    `COMMIT_EDITMSG` (the message, taken from a `SQUASH_MSG` the agent can write),
    `FETCH_HEAD`, reflogs. A symlink there to the user's `~/.bashrc` would have their
    next `git commit` overwrite it with what the agent chose; a hard link to a project
    file would have it rewritten after the session (past the notice). Those made in
    the session are moved aside when it ends."""
    repo = make_repo(anyone, "links")
    victim = anyone.home / f"victim-{os.urandom(3).hex()}"
    victim.mkdir()
    for name in ("bashrc", "profile"):
        (victim / name).write_text(f"the user's {name}\n")
    if anyone.user:
        subprocess.run(["chown", "-R", f"{anyone.uid}:{anyone.gid}", str(victim)], check=True)
    (repo / "notes.txt").write_text("my notes\n")
    remote = anyone.home / f"links-remote-{os.urandom(3).hex()}.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    if anyone.user:
        subprocess.run(["chown", "-R", f"{anyone.uid}:{anyone.gid}", str(repo), str(remote)],
                       check=True)  # fmt: skip
    host_git(anyone, repo, "remote", "add", "origin", str(remote))
    host_git(anyone, repo, "push", "-q", "origin", "HEAD:refs/heads/main")
    cwd = repo
    if where == "worktree":
        made = anyone.run("--worktree=side", "exec", "true", cwd=repo)
        assert made.returncode == 0, made.stderr
        cwd = repo.parent / f"{repo.name}.worktrees" / "side"
        (cwd / "notes.txt").write_text("my notes\n")
        if anyone.user:
            subprocess.run(["chown", f"{anyone.uid}:{anyone.gid}", str(cwd / "notes.txt")],
                           check=True)  # fmt: skip
    m = markers_dir(anyone)
    result = anyone.run("exec", "bash", "-c", LINK_PLANTS.format(victim=victim, m=m), cwd=cwd)
    assert "planted" in result.stdout or "stopped the session" in result.stderr, result.stderr
    assert "LINKED" not in result.stdout
    assert "COMMIT_EDITMSG" in result.stderr and "writes through it" in result.stderr, result.stderr
    assert "logs/refs/heads/" in result.stderr, result.stderr
    # What the user does next: commit (the editor opens on COMMIT_EDITMSG), fetch.
    (cwd / "a.txt").write_text("changed\n")
    host_git(anyone, cwd, "add", "a.txt")
    host_git(anyone, cwd, "-c", "core.editor=true", "commit", "-q")
    host_git(anyone, cwd, "commit", "-q", "--allow-empty", "-m", "second")
    host_git(anyone, cwd, "fetch", "-q", "origin")
    assert (victim / "bashrc").read_text() == "the user's bashrc\n"
    assert (victim / "profile").read_text() == "the user's profile\n"
    assert (cwd / "notes.txt").read_text() == "my notes\n"
    assert fired(m) == []
