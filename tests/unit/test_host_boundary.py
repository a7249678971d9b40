"""The host boundary's pure parts and host-side modules, without an engine: git config
classification and neutralisation (with real git on the host), the git wall's binds,
the seccomp profile, the auto-run table, the sweep, the guard's snapshots, and the
`check` and `verify` verdicts."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import stat
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from aishell import gitconfig, hostgit
from aishell.commands import check, verify
from aishell.engine.run_args import Bind, HostFacts, RunSpec, build_run_args
from aishell.errors import AishellError
from aishell.project import Project
from aishell.security import autorun, gitwall, guard, hardening, sweep
from testing.fake_engine import FakeEngine

REPO_ROOT = Path(__file__).resolve().parents[2]


def git(cwd: Path, *args: str) -> str:
    env = {"PATH": os.environ["PATH"], "HOME": str(cwd), "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(
        ["git", "-C", str(cwd), *args], check=True, capture_output=True, text=True, env=env
    ).stdout


def make_repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q")
    git(path, "config", "user.name", "T")
    git(path, "config", "user.email", "t@example.org")
    (path / "a.txt").write_text("a\n")
    (path / ".gitattributes").write_text("*.txt filter=evil diff=evil\n")
    git(path, "add", ".")
    git(path, "commit", "-qm", "init")
    return path


# ------------------------------------------------------------------ gitconfig


def test_parse_listing_keeps_scope_origin_key_and_value() -> None:
    text = (
        "local\0file:.git/config\0core.fsmonitor\ntouch x; y\0"
        "local\0file:.git/config\0x.novalue\0"
        "global\0file:/h/.gitconfig\0sub.a=b.c.key\nv\nwith newline\0"
    )
    entries = gitconfig.parse_listing(text)
    assert entries == [
        gitconfig.Entry("local", "file:.git/config", "core.fsmonitor", "touch x; y"),
        gitconfig.Entry("local", "file:.git/config", "x.novalue", None),
        gitconfig.Entry("global", "file:/h/.gitconfig", "sub.a=b.c.key", "v\nwith newline"),
    ]
    assert entries[2].parts == ("sub", "a=b.c", "key")
    assert entries[0].parts == ("core", None, "fsmonitor")
    assert entries[0].origin_path == ".git/config"


@pytest.mark.parametrize(
    ("key", "value", "runs"),
    [
        ("core.fsmonitor", "touch /tmp/x", True),
        ("core.fsmonitor", "false", False),
        ("core.fsmonitor", "true", False),  # the built-in daemon
        ("core.hooksPath", "/elsewhere", True),
        ("core.pager", "less", True),
        ("pager.log", "evil", True),
        ("pager.log", "false", False),
        ("filter.Evil.clean", "x", True),
        ("filter.Evil.smudge", "x", True),
        ("filter.x.process", "x", True),
        ("filter.x.required", "true", False),
        ("filter.x.clean", "", False),
        ("diff.external", "x", True),
        ("diff.x.textconv", "x", True),
        ("diff.x.binary", "true", False),
        ("merge.x.driver", "x %O", True),
        ("alias.st", "status", False),
        ("alias.st", "!touch x", True),
        ("credential.helper", "store", True),
        ("credential.helper", "", False),
        ("credential.https://x.helper", "cache", True),
        ("gpg.program", "x", True),
        ("gpg.ssh.program", "x", True),
        ("remote.origin.url", "https://example.org/x", False),
        ("remote.origin.url", "ext::sh -c touch% /tmp/x", True),
        ("remote.origin.uploadpack", "x", True),
        ("url.ext::sh -c x.insteadOf", "https://", True),
        ("url.https://mirror/.insteadOf", "https://", False),
        ("protocol.ext.allow", "always", True),
        ("protocol.file.allow", "always", False),
        ("submodule.x.update", "!touch x", True),
        ("submodule.x.update", "rebase", False),
        ("include.path", "x.cfg", True),
        ("includeIf.gitdir:/x/.path", "x.cfg", True),
        ("core.sshCommand", "ssh -i x", True),
        ("core.editor", "vim", True),
        ("sequence.editor", "x", True),
        ("user.name", "x", False),
        ("core.bare", "false", False),
        ("sendemail.smtpServer", "/usr/bin/evil", True),
        ("sendemail.smtpServer", "smtp.example.org", False),
        ("hook.pre-commit.command", "x", True),
    ],
)
def test_executable_reason(key: str, value: str, runs: bool) -> None:
    entry = gitconfig.Entry("local", "file:.git/config", key, value)
    assert (gitconfig.executable_reason(entry) is not None) is runs


def test_overrides_blank_every_repository_driver_and_keep_the_users() -> None:
    entries = [
        gitconfig.Entry("local", "", "filter.a=b.clean", "x"),
        gitconfig.Entry("worktree", "", "diff.d.textconv", "x"),
        gitconfig.Entry("local", "", "pager.status", "x"),
        gitconfig.Entry("global", "", "filter.lfs.process", "git-lfs filter-process"),
        gitconfig.Entry("local", "", "user.name", "x"),
    ]
    settings = dict(gitconfig.overrides(entries))
    assert settings["core.fsmonitor"] == "false"
    assert settings["core.hooksPath"] == "/dev/null"
    assert settings["protocol.allow"] == "never"
    for name in ("clean", "smudge", "process"):
        assert settings[f"filter.a=b.{name}"] == ""
    assert settings["filter.a=b.required"] == "false"
    assert settings["diff.d.textconv"] == "" and settings["diff.d.command"] == ""
    assert settings["pager.status"] == "false"
    assert not any(k.startswith("filter.lfs") for k in settings)  # the user's own
    env = gitconfig.environment([("a.b", "1"), ("c.d=e.f", "")])
    assert env == {
        "GIT_CONFIG_COUNT": "2",
        "GIT_CONFIG_KEY_0": "a.b",
        "GIT_CONFIG_VALUE_0": "1",
        "GIT_CONFIG_KEY_1": "c.d=e.f",
        "GIT_CONFIG_VALUE_1": "",
    }


# -------------------------------------------------------------------- hostgit


def plant(repo: Path, marker: Path) -> None:
    t = f"touch {marker}"
    cfg = repo / ".git" / "config"
    for key, value in {
        "core.fsmonitor": f"{t}-fsmonitor; false",
        "filter.evil.clean": f"{t}-clean; cat",
        "filter.evil.smudge": f"{t}-smudge; cat",
        "filter.evil.process": f"{t}-process; false",
        "filter.evil.required": "true",
        "diff.evil.textconv": f"{t}-textconv; cat",
        "core.pager": f"{t}-pager; cat",
        "include.path": str(repo / "inc.cfg"),
    }.items():
        git(repo, "config", "--file", str(cfg), key, value)
    (repo / "inc.cfg").write_text(f'[filter "evil"]\n\tclean = {t}-included; cat\n')
    hooks = repo / ".git" / "hooks"
    for hook in ("post-checkout", "reference-transaction", "post-index-change"):
        (hooks / hook).write_text(f"#!/bin/sh\n{t}-{hook}\n")
        (hooks / hook).chmod(0o755)


def test_run_neutralises_planted_drivers_in_status_and_worktree_add(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    marker = tmp_path / "m"
    plant(repo, marker)
    st = (repo / "a.txt").stat()
    os.utime(repo / "a.txt", (st.st_atime, st.st_mtime - 100))  # force a re-read
    assert hostgit.run(str(repo), "status", "--porcelain").ok
    added = hostgit.run(str(repo), "worktree", "add", str(tmp_path / "wt"), "-b", "b")
    assert added.ok, added.stderr
    assert (tmp_path / "wt" / "a.txt").read_text() == "a\n"
    assert hostgit.run(str(tmp_path / "wt"), "status", "--porcelain").stdout == ""
    assert hostgit.run(str(repo), "worktree", "remove", str(tmp_path / "wt")).ok
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("m-")) == []
    # The same git without aishell's settings runs them (the test can fail).
    subprocess.run(["git", "-C", str(repo), "status"], capture_output=True, check=False)
    assert (tmp_path / "m-fsmonitor").exists()


def test_locate_and_the_commondir_redirect(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    found = hostgit.locate(str(repo / "sub" / "dir"))
    assert found is not None and found.gitdir == str(repo / ".git") and found.problem is None
    assert hostgit.locate(str(tmp_path)) is None
    (repo / ".git" / "commondir").write_text("../evil\n")
    found = hostgit.locate(str(repo))
    assert found is not None and found.problem and "commondir" in found.problem
    with pytest.raises(hostgit.GitRefused) as info:
        hostgit.run(str(repo), "status")
    assert f"rm {repo}/.git/commondir" in (info.value.hint or "")
    assert hostgit.identity(str(repo)) == (None, None)  # refused: nothing


def test_a_linked_worktrees_commondir_is_fine(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    git(repo, "worktree", "add", "-q", str(tmp_path / "wt"), "-b", "b")
    found = hostgit.locate(str(tmp_path / "wt"))
    assert found is not None and found.problem is None
    assert os.path.realpath(found.common) == os.path.realpath(repo / ".git")
    (repo / ".git" / "worktrees" / "wt" / "commondir").write_text(str(tmp_path / "else"))
    found = hostgit.locate(str(tmp_path / "wt"))
    assert found is not None and found.problem


def test_executable_settings_of_a_config_file(tmp_path: Path) -> None:
    cfg = tmp_path / "config"
    (tmp_path / "more.cfg").write_text("[core]\n\tpager = evil\n")
    cfg.write_text("[core]\n\tfsmonitor = x\n[include]\n\tpath = more.cfg\n[user]\n\tname = n\n")
    keys = [e.key for e, _ in hostgit.executable_settings(str(cfg))]
    assert keys == ["core.fsmonitor", "include.path", "core.pager"]
    assert hostgit.executable_settings(str(tmp_path / "missing")) == []


# -------------------------------------------------------------------- gitwall


def targets(wall: gitwall.Wall) -> list[tuple[str, bool]]:
    return [(b.target, b.readonly) for b in wall.binds]


def test_wall_of_a_main_repository(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    (repo / ".git" / "info").rename(repo / ".git" / "info-gone")  # missing: created
    (repo / ".git" / "worktrees" / "x").mkdir(parents=True)
    (repo / ".git" / "worktrees" / "x" / "commondir").write_text("../..\n")
    (repo / ".git" / "modules" / "lib").mkdir(parents=True)
    for name in ("HEAD", "config"):
        (repo / ".git" / "modules" / "lib" / name).write_text("x\n")
    for name in ("objects", "refs", "hooks"):
        (repo / ".git" / "modules" / "lib" / name).mkdir()
    wall = gitwall.plan(str(repo))
    g = str(repo / ".git")
    assert targets(wall) == [
        (g, False),
        (f"{g}/config", True),
        (f"{g}/hooks", True),
        (f"{g}/info", True),
        (f"{g}/worktrees", False),
        (f"{g}/modules", False),
        (f"{g}/worktrees/x", False),
        (f"{g}/modules/lib", False),
        (f"{g}/worktrees/x/commondir", True),
        (f"{g}/modules/lib/config", True),
        (f"{g}/modules/lib/hooks", True),
        (f"{g}/modules/lib/info", True),
    ]
    assert set(wall.created) == {f"{g}/info", f"{g}/modules/lib/info"}
    gitwall.prepare(wall)
    assert (repo / ".git" / "info").is_dir()
    # Nothing else appeared where the engine would mount.
    assert not (repo / ".git" / "config.worktree").exists()


def test_wall_refuses_a_redirect_and_a_symlink_out_of_the_project(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    hooks = repo / ".git" / "hooks"
    for p in hooks.iterdir():
        p.unlink()
    hooks.rmdir()
    (tmp_path / "secret").mkdir()
    hooks.symlink_to(tmp_path / "secret")
    with pytest.raises(AishellError) as info:
        gitwall.plan(str(repo))
    assert "outside the project" in info.value.message
    hooks.unlink()
    hooks.symlink_to(repo / "myhooks")
    (repo / "myhooks").mkdir()
    wall = gitwall.plan(str(repo))
    assert (str(repo / "myhooks"), True) in targets(wall)  # inside: followed
    (repo / ".git" / "commondir").write_text("../evil\n")
    with pytest.raises(AishellError) as info:
        gitwall.plan(str(repo))
    assert "commondir" in info.value.message


def test_wall_of_a_linked_worktree_and_outside_any_repository(tmp_path: Path) -> None:
    from aishell.worktrees import git_dir_binds

    repo = make_repo(tmp_path / "r")
    wt = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", str(wt), "-b", "b")
    linked = git_dir_binds(str(wt))
    assert [b.target for b in linked] == [str(repo / ".git")]
    wall = gitwall.plan(str(wt), linked=linked)
    g = str(repo / ".git")
    got = targets(wall)
    assert (str(wt / ".git"), True) in got
    assert (f"{g}/config", True) in got and (f"{g}/hooks", True) in got
    assert (f"{g}/worktrees/wt", False) in got and (f"{g}/worktrees/wt/commondir", True) in got
    assert (g, False) not in got  # already mounted by git_dir_binds
    plain = tmp_path / "plain"
    plain.mkdir()
    assert gitwall.plan(str(plain)) == gitwall.Wall((), ())
    inner = repo / "sub"
    inner.mkdir()
    assert gitwall.plan(str(inner)) == gitwall.Wall((), ())  # the repository is not mounted


def test_wall_of_a_submodule_with_its_own_git_directory(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    make_repo(repo / "vendor" / "lib")
    (repo / ".gitmodules").write_text(
        '[submodule "lib"]\n\tpath = vendor/lib\n[submodule "x"]\n\tpath = ../../etc\n'
    )
    got = targets(gitwall.plan(str(repo)))
    sub = str(repo / "vendor" / "lib" / ".git")
    assert (sub, False) in got and (f"{sub}/config", True) in got
    assert not [t for t, _ in got if t.startswith("/etc") or "/../" in t]


# ------------------------------------------------------------ seccomp and caps


def _generator() -> ModuleType:
    path = REPO_ROOT / "scripts" / "gen-seccomp"
    loader = importlib.machinery.SourceFileLoader("gen_seccomp", str(path))
    spec = importlib.util.spec_from_loader("gen_seccomp", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_the_committed_seccomp_profile_is_the_generators_output() -> None:
    gen = _generator()
    committed = Path(hardening.SECCOMP_PROFILE).read_text()
    assert committed == gen.generate(), "run scripts/gen-seccomp"


def test_the_profile_denies_what_it_must() -> None:
    profile = json.loads(Path(hardening.SECCOMP_PROFILE).read_text())
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO" and profile["defaultErrnoRet"] == 1
    rules = profile["syscalls"]
    allowed_plain = set(rules[0]["names"])
    for name in ("mount", "ptrace", "bpf", "keyctl", "unshare", "setns", "io_uring_setup",
                 "open_by_handle_at", "kexec_load", "init_module", "chmod", "mknod",
                 "openat", "clone", "clone3", "personality"):  # fmt: skip
        assert name not in allowed_plain, name
    for name in ("read", "write", "execve", "fchown", "setresuid", "chroot", "seccomp"):
        assert name in allowed_plain, name

    def masked(name: str) -> list[tuple[int, int, int]]:
        return [
            (a["index"], a["value"], a["valueTwo"])
            for r in rules
            if name in r["names"] and r["action"] == "SCMP_ACT_ALLOW"
            for a in r.get("args", [])
        ]

    for name, index in (("chmod", 1), ("fchmod", 1), ("fchmodat", 2), ("open", 2),
                        ("openat", 3), ("creat", 1)):  # fmt: skip
        assert masked(name) == [(index, 0o6000, 0)], name
    assert sorted(masked("mknodat")) == sorted(
        (2, 0o176000, t) for t in (0, 0o100000, 0o010000, 0o140000)
    )
    assert masked("clone") == [(0, 0x7E020000, 0)]
    enosys = next(r for r in rules if r.get("errnoRet") == 38)
    assert {"clone3", "io_uring_setup", "io_uring_enter", "openat2", "fchmodat2"} <= set(
        enosys["names"]
    )


def test_syscall_names_from_a_header() -> None:
    gen = _generator()
    text = (
        "#define __NR_read 0\n#define __NR_write 1\n#define __NR3264_x 2\n#define __NR_syscalls 3\n"
    )
    assert gen.syscall_names(text) == {"read", "write"}


def test_every_run_gets_the_profile_and_the_dropped_capabilities() -> None:
    host = HostFacts(uid=1, gid=1, user="u", home="/h", cwd="/p", stdin_tty=False,
                     stdout_tty=False)  # fmt: skip
    spec = RunSpec(image="i", command=("true",), project_dir="/p", workdir="/p",
                   seccomp_profile="/x/seccomp.json", cap_drop=("MKNOD", "SETFCAP"))  # fmt: skip
    argv = build_run_args(spec, host).argv
    assert argv[:9] == ("run", "--rm", "--init", "--security-opt", "seccomp=/x/seccomp.json",
                        "--cap-drop", "MKNOD", "--cap-drop", "SETFCAP")  # fmt: skip
    # docker_args come later, so a user can still override (and is warned about it)
    assert hardening.DROPPED_CAPABILITIES == ("MKNOD", "SETFCAP", "FSETID")
    assert Path(hardening.SECCOMP_PROFILE).is_file()


# -------------------------------------------------------------------- autorun


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (".vscode/tasks.json", "runOn"),
        (".VSCode/Tasks.JSON", "runOn"),
        (".vscode/other.json", "workspace configuration"),
        (".envrc", "direnv"),
        ("x.code-workspace", "VS Code workspace"),
        ("sub/x.code-workspace", None),
        (".claude/settings.local.json", "hooks"),
        (".claude/commands/x.md", "commands"),
        ("README.md", None),
    ],
)
def test_why_a_file_is_watched(path: str, expected: str | None) -> None:
    why = autorun.why(path)
    assert (why is None) if expected is None else (why is not None and expected in why)


# ---------------------------------------------------------------------- sweep


def test_describe_artifacts() -> None:
    d = sweep.describe
    setuid_root = os.stat_result((stat.S_IFREG | 0o4755, 1, 1, 1, 0, 0, 0, 0, 0, 0))
    assert "set-user-ID file owned by root" in (d(setuid_root, 1000) or "")
    setgid = os.stat_result((stat.S_IFREG | 0o2755, 1, 1, 1, 1000, 0, 0, 0, 0, 0))
    assert "set-group-ID" in (d(setgid, 1000) or "")
    plain_root = os.stat_result((stat.S_IFREG | 0o644, 1, 1, 1, 0, 0, 0, 0, 0, 0))
    assert "owned by root" in (d(plain_root, 1000) or "")
    assert d(plain_root, 0) is None  # you are root: root's files are yours


def test_sweep_finds_setuid_files_and_repositories(tmp_path: Path) -> None:
    project = make_repo(tmp_path / "p")
    (project / "tool").write_text("#!/bin/sh\n")
    (project / "tool").chmod(0o4755)
    (project / "deep" / "er").mkdir(parents=True)
    nested = make_repo(project / "deep" / "er" / "nested")
    git(nested, "config", "core.fsmonitor", "touch x")
    plain = make_repo(project / "plain")
    assert plain.is_dir()
    hook = nested / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\n")
    hook.chmod(0o755)
    (project / "lnk").symlink_to("/etc")
    result = sweep.sweep([str(project)], host_uid=os.getuid(),
                         skip_gitdirs=[str(project / ".git")])  # fmt: skip
    assert [a.path for a in result.artifacts if "set-user-ID" in a.what] == [str(project / "tool")]
    assert [(r.path, r.reasons) for r in result.repositories] == [
        (str(nested / ".git"), ("core.fsmonitor", "hook pre-commit"))
    ]
    capped = sweep.sweep([str(project)], host_uid=os.getuid(), max_entries=3)
    assert capped.truncated


# ---------------------------------------------------------------------- guard


@pytest.fixture
def proj(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    root = make_repo(tmp_path / "proj")
    monkeypatch.setenv("AISHELL_HOME", str(tmp_path / "home"))
    return Project(str(root), str(root), "abcd1234")


def test_snapshot_compare_and_why(proj: Project) -> None:
    root = Path(proj.root)
    (root / ".vscode").mkdir()
    (root / ".vscode" / "settings.json").write_text("{}\n")
    gitdirs = guard.git_dirs(proj.root)
    assert gitdirs == [(str(root / ".git"), ".git")]
    before = guard.collect(proj.root, gitdirs, None)
    assert ".vscode/settings.json" in before and ".git/config" in before
    assert ".git/HEAD" not in before and ".git/index" not in before  # git's own state
    (root / ".vscode" / "tasks.json").write_text("{}\n")
    (root / ".vscode" / "settings.json").write_text('{"x": 1}\n')
    (root / ".git" / "commondir").write_text("../evil\n")
    (root / ".git" / "hooks" / "pre-commit").write_text("#!/bin/sh\n")
    (root / ".git" / "hooks" / "pre-push.sample").chmod(0o644)
    (root / ".git" / "index.lock").write_text("")
    after = guard.collect(proj.root, gitdirs, None)
    found = {f.path: f for f in guard.compare(before, after, gitdirs)}
    assert set(found) == {
        ".vscode/tasks.json", ".vscode/settings.json", ".git/commondir",
        ".git/hooks/pre-commit", ".git/hooks/pre-push.sample",
    }  # fmt: skip
    assert found[".vscode/tasks.json"].change == "new"
    assert found[".vscode/settings.json"].change == "changed"
    assert found[".git/hooks/pre-push.sample"].change == "mode"
    assert "another directory" in found[".git/commondir"].why
    assert "git hook" in found[".git/hooks/pre-commit"].why
    enriched = {f.path: f for f in guard.enrich(list(found.values()), proj.root, gitdirs)}
    assert "rm " in enriched[".git/commondir"].detail


def test_a_session_from_begin_to_ack(proj: Project, capsys: pytest.CaptureFixture[str]) -> None:
    root = Path(proj.root)
    session = guard.begin(proj, host_uid=os.getuid())
    assert session is not None and session.label[0] == "aishell.guard.session"
    (root / ".envrc").write_text("echo hi\n")
    git(root, "config", "--file", str(root / ".git" / "config"), "core.fsmonitor", "x")
    todo = root / ".git" / "rebase-merge"
    todo.mkdir()
    (todo / "git-rebase-todo").write_text("pick abc x\nexec touch /tmp/pwned\n")
    new = guard.finish(session)
    err = capsys.readouterr().err
    assert {f.path for f in new} == {".envrc", ".git/config", ".git/rebase-merge/git-rebase-todo"}
    assert "now runs: core.fsmonitor" in err
    assert "exec lines: touch /tmp/pwned" in err
    assert "aishell guard diff" in err
    store = guard.Store(proj)
    assert store.session_files() == []
    assert {f.path for f in store.pending()} == {f.path for f in new}
    diff = guard.diff(proj, [".git/config"])
    assert any(line.startswith("+\tfsmonitor = x") for line in diff), diff
    assert guard.diff(proj, [".envrc"])[-1] == "+echo hi"
    assert len(guard.acknowledge(proj)) == 3
    assert store.pending() == []
    assert list(store.objects.iterdir()) == []  # copies nothing refers to are removed


def test_settle_waits_for_running_sessions(
    proj: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    session = guard.begin(proj, host_uid=os.getuid(), detached=True)
    assert session is not None
    (Path(proj.root) / ".envrc").write_text("x\n")
    running = FakeEngine([(("ps",), _ps([session.id]))])
    assert guard.settle(proj, running) == []
    assert guard.settle(proj, None) == []  # the engine cannot tell: wait
    gone = FakeEngine([(("ps",), _ps([]))])
    assert [f.path for f in guard.settle(proj, gone)] == [".envrc"]
    assert guard.Store(proj).session_files() == []
    assert ".envrc" in capsys.readouterr().err


def _ps(sessions: list[str]) -> Any:
    from aishell.engine.client import Result

    lines = [json.dumps({"Labels": f"aishell.guard.session={s}", "State": "running"})
             for s in sessions]  # fmt: skip
    return Result(0, "\n".join(lines) + "\n", "")


def test_begin_warns_and_goes_on_when_it_cannot_write(
    proj: Project,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the home should be")
    monkeypatch.setenv("AISHELL_HOME", str(blocked))
    assert guard.begin(proj, host_uid=os.getuid()) is None
    assert "will not be reported" in capsys.readouterr().err


# ---------------------------------------------------------------- check, verify


def test_host_checks() -> None:
    empty = guard.Status((), sweep.SweepResult(), (), None, None)
    checks = check.host_checks(empty, "read-only")
    assert [c.status for c in checks] == ["ok", "ok", "ok"]
    warned = check.host_checks(empty, "writable")
    assert warned[0].status == "warn" and "writable" in warned[0].label
    finding = guard.Finding(".envrc", "new", "direnv runs it")
    art = sweep.Artifact("/p/sh2", "set-user-ID file owned by root", "f")
    repo = sweep.Repository("/p/sub/.git", ("core.fsmonitor",), "g")
    busy = guard.Status((finding,), sweep.SweepResult((art,), 3), (repo,), "redirected", "rm it")
    got = {c.label: c for c in check.host_checks(busy, "read-only")}
    assert got["The repository's git directory is redirected"].status == "fail"
    pending = got["1 change by sandboxes to files that run on this machine"]
    assert pending.status == "warn" and ".envrc" in pending.lines[0]
    assert got["1 other git repository in the project run programs"].status == "warn"
    arts = got["3 set-user-ID, device or root-owned files in the project or its writable mounts"]
    assert arts.lines == ("/p/sh2: set-user-ID file owned by root", "... and 2 more")
    data = check.host_json(busy, "read-only")
    assert data["redirect"] == "redirected" and data["pending"][0]["path"] == ".envrc"


def _facts(**values: list[str]) -> dict[str, list[str]]:
    return {k.replace("_", "-"): v for k, v in values.items()}


def test_verify_git_internals_verdicts() -> None:
    exp = verify.Expected(uid=1, gid=1, canaries=(), project_dir="/p", tools=())
    refused = _facts(git_probe=[f"{w} refused x" for w in verify.GIT_PROBES])
    assert verify.check_git_internals(refused, exp).status == verify.PASS
    assert verify.check_git_internals({"git": ["none"]}, exp).status == verify.SKIP
    broke = _facts(git_probe=[f"{w} {'written' if w == 'hooks' else 'refused'} x"
                              for w in verify.GIT_PROBES])  # fmt: skip
    result = verify.check_git_internals(broke, exp._replace(git_internals="writable"))
    assert result.status == verify.FAIL
    assert result.detail == "creating a hook worked (git_internals: writable is set)"
    assert verify.check_git_internals({}, exp).detail == verify.NO_RESULT


def test_verify_setuid_and_device_verdicts() -> None:
    exp = verify.Expected(uid=1, gid=1, canaries=(), project_dir="/p", tools=())
    good = {"setuid": ["chmod-u+s refused x", "install-4755 refused x"]}
    assert verify.check_setuid(good, exp, {"-suid": stat.S_IFREG | 0o755}).status == verify.PASS
    host = {"-suid": stat.S_IFREG | 0o4755}
    assert "mode 4755 appeared" in verify.check_setuid(good, exp, host).detail
    bad = {"setuid": ["chmod-u+s done"]}
    assert verify.check_setuid(bad, exp, {}).detail == "chmod-u+s worked"
    assert verify.check_devices({"device": ["refused x"]}, exp, {}).status == verify.PASS
    made = {"-dev": stat.S_IFCHR | 0o644}
    assert verify.check_devices({"device": ["refused x"]}, exp, made).status == verify.FAIL
    assert verify.check_devices({"device": ["created"]}, exp, {}).status == verify.FAIL


# ------------------------------------------------- the engine CLI as a child


def test_a_child_run_passes_signals_on_and_reports_signal_deaths() -> None:
    """A foreground run is a child now (so the guard can compare when it ends): aishell
    must end it the way an exec'd CLI would end, and report a signal death as 128+N."""
    import signal

    from aishell.engine.client import run_passing_signals

    def run(script: str) -> int:
        return run_passing_signals(lambda: subprocess.Popen(["/bin/sh", "-c", script]))

    before = signal.getsignal(signal.SIGTERM)  # (aishell's own, once cli.main ran)

    assert run("exit 3") == 3
    assert run("kill -TERM $$") == 128 + 15
    # The child has aishell sent a SIGTERM; aishell passes it on to the child.
    assert run("trap 'exit 7' TERM; kill -TERM $PPID; sleep 2 & wait; exit 1") == 7
    assert signal.getsignal(signal.SIGTERM) == before  # restored afterwards


def test_wall_covers_other_read_write_views_and_per_worktree_config(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "src" / "r")
    git(repo, "config", "extensions.worktreeConfig", "true")
    parent = Bind(str(tmp_path / "src"), "/alt")  # a configured mount showing the repo too
    read_only = Bind(str(tmp_path / "src"), "/ro", readonly=True)
    wall = gitwall.plan(str(repo), other_mounts=[parent, read_only])
    got = targets(wall)
    assert ("/alt/r/.git", False) in got and ("/alt/r/.git/config", True) in got
    assert ("/alt/r/.git/hooks", True) in got
    assert not [t for t, _ in got if t.startswith("/ro")]  # read-only already
    cw = str(repo / ".git" / "config.worktree")
    assert wall.created_files == (cw,) and (cw, True) in got
    gitwall.prepare(wall)
    assert Path(cw).read_text() == ""  # an empty config: valid, runs nothing


def test_a_hooks_path_or_included_file_in_the_project_is_watched(proj: Project) -> None:
    root = Path(proj.root)
    (root / ".githooks").mkdir()
    (root / "shared.gitconfig").write_text("[user]\n\tname = x\n")
    git(root, "config", "core.hooksPath", ".githooks")
    git(root, "config", "include.path", "../shared.gitconfig")
    gitdirs = guard.git_dirs(proj.root)
    extra = guard.config_targets(proj.root, gitdirs)
    assert extra == [(".githooks", guard.HOOKS_PATH_WHY), ("shared.gitconfig", guard.INCLUDED_WHY)]
    before = guard.collect(proj.root, gitdirs, None, extra)
    (root / ".githooks" / "pre-commit").write_text("#!/bin/sh\nid\n")
    (root / "shared.gitconfig").write_text("[core]\n\tfsmonitor = id\n")
    after = guard.collect(proj.root, gitdirs, None, extra)
    found = {f.path: f.why for f in guard.compare(before, after, gitdirs, extra)}
    assert found == {
        ".githooks/pre-commit": guard.HOOKS_PATH_WHY,
        "shared.gitconfig": guard.INCLUDED_WHY,
    }
