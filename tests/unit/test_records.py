"""Session records, the git summary and the result envelope, `aishell run`'s command
line: the pure parts from git's own output, and the files on a temporary home."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from aishell import changes, records
from aishell.commands import run as run_cmd
from aishell.commands import sessions as sessions_cmd
from aishell.errors import UsageError
from aishell.harnesses import BY_NAME, HARNESS_NAMES
from aishell.launch import recording
from aishell.launch.assemble import headless_command
from aishell.launch.request import RunOptions
from testing.json_shapes import ENVELOPE_SHAPE, SESSIONS_SHAPE, assert_shape

# ------------------------------------------------------------------ git output


def test_parse_log_subjects_with_separators_and_unicode() -> None:
    out = "a" * 40 + "\x1fFix: the thing | with ; odd chars ✓\x1e\n" + "b" * 40 + "\x1f\x1e\n"
    assert changes.parse_log(out) == [
        changes.Commit("a" * 40, "Fix: the thing | with ; odd chars ✓"),
        changes.Commit("b" * 40, ""),
    ]
    assert changes.parse_log("") == []


def test_parse_numstat_binary_and_paths_with_tabs_and_newlines() -> None:
    out = "3\t1\tsrc/a.py\x00-\t-\timg.png\x000\t2\tweird\tname\nx\x00"
    assert changes.parse_numstat(out) == {
        "src/a.py": (3, 1),
        "img.png": (None, None),
        "weird\tname\nx": (0, 2),
    }


def test_parse_name_status_and_porcelain() -> None:
    out = "A\x00new.txt\x00M\x00mod.txt\x00D\x00gone.txt\x00T\x00link\x00"
    assert changes.parse_name_status(out) == {
        "new.txt": "added",
        "mod.txt": "modified",
        "gone.txt": "deleted",
        "link": "modified",
    }
    assert changes.parse_porcelain(" M a.txt\x00?? dir/b c\x00") == ["a.txt", "dir/b c"]


def test_parse_status_v2() -> None:
    sha = "6" * 40
    out = (
        f"# branch.oid {sha}\0# branch.head main\0"
        f"1 .M N... 100644 100644 100644 {'4' * 40} {'4' * 40} dir/a b.txt\0"
        f"u UU N... 100644 100644 100644 100644 {'1' * 40} {'2' * 40} {'3' * 40} conflict\0"
        "? new file\0"
    )
    assert changes.parse_status_v2(out) == (sha, ["dir/a b.txt", "conflict", "new file"])
    assert changes.parse_status_v2("# branch.oid (initial)\0# branch.head main\0") == (None, [])


def test_merge_counts_untracked_and_leaves_out_what_was_dirty_before() -> None:
    merged = changes.merge(
        {"a": "modified", "b": "deleted", "pre": "modified"},
        {"a": (2, 1), "b": (0, 4), "pre": (1, 0)},
        {"new.txt": 3, "bin": None},
        unchanged=["pre"],
    )
    assert merged == [
        changes.FileChange("a", "modified", 2, 1),
        changes.FileChange("b", "deleted", 0, 4),
        changes.FileChange("bin", "added", None, None),
        changes.FileChange("new.txt", "added", 3, 0),
    ]


def test_compare_listings() -> None:
    before = {"same": (1, 1), "changed": (1, 1), "gone": (2, 2)}
    after = {"same": (1, 1), "changed": (1, 5), "new": (3, 3)}
    assert changes.compare_listings(before, after, {"new": 7}) == [
        changes.FileChange("changed", "modified"),
        changes.FileChange("gone", "deleted"),
        changes.FileChange("new", "added", 7, 0),
    ]


@pytest.mark.parametrize(
    ("data", "lines"),
    [(b"", 0), (b"a", 1), (b"a\n", 1), (b"a\nb", 2), (b"a\0b\n", None)],
)
def test_count_lines(data: bytes, lines: int | None) -> None:
    assert changes.count_lines(data) == lines


def test_summary_truncates() -> None:
    many = [changes.FileChange(f"f{i}", "added", 1, 0) for i in range(changes.MAX_FILES + 5)]
    summary = changes.summary_json("git", files=many)
    assert len(summary["files"]) == changes.MAX_FILES and summary["truncated"] is True


def _git(repo: Path, *args: str) -> None:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(repo),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@x",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@x",
    }
    subprocess.run(["git", "-C", str(repo), *args], check=True, env=env, capture_output=True)


def test_before_and_after_on_a_real_repository(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "keep.txt").write_text("1\n2\n")
    (repo / "gone.txt").write_text("x\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "initial")
    (repo / "dirty.txt").write_text("uncommitted before the session\n")
    start = changes.before(str(repo))
    assert start["source"] == "git" and start["head"] and "dirty.txt" in start["dirty"]
    # the session: a commit, a modification, a deletion, a new untracked file
    (repo / "keep.txt").write_text("1\n2\n3\n")
    (repo / "gone.txt").unlink()
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "session commit")
    (repo / "loose.txt").write_text("a\nb\n")
    # A repository-configured diff program is never run by the summary.
    _git(repo, "config", "diff.external", f"sh -c 'touch {tmp_path}/RAN'")
    summary = changes.after(str(repo), json.loads(json.dumps(start)))
    assert not (tmp_path / "RAN").exists()
    assert [c["subject"] for c in summary["commits"]] == ["session commit"]
    assert {f["path"]: (f["change"], f["lines_added"], f["lines_deleted"])
            for f in summary["files"]} == {
        "keep.txt": ("modified", 1, 0),
        "gone.txt": ("deleted", 0, 1),
        "loose.txt": ("added", 2, 0),
    }  # fmt: skip
    assert summary["error"] is None and summary["branch"] in ("master", "main")


def test_a_project_in_a_subdirectory_of_its_repository(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    (repo / "sub").mkdir(parents=True)
    _git(repo, "init", "-q")
    (repo / "top.txt").write_text("top\n")
    (repo / "sub" / "a.txt").write_text("a\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "initial")
    (repo / "sub" / "dirty.txt").write_text("before\n")
    start = changes.before(str(repo / "sub"))
    assert list(start["dirty"]) == ["dirty.txt"]
    (repo / "sub" / "a.txt").write_text("a\nb\n")
    (repo / "sub" / "new.txt").write_text("n\n")
    (repo / "top.txt").write_text("outside the project\n")
    summary = changes.after(str(repo / "sub"), json.loads(json.dumps(start)))
    assert [(f["path"], f["change"]) for f in summary["files"]] == [
        ("a.txt", "modified"),
        ("new.txt", "added"),
    ]


def test_before_and_after_without_git(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("a\n")
    (tmp_path / "b").write_text("b\n")
    start = changes.before(str(tmp_path))
    assert start["source"] == "listing"
    (tmp_path / "b").unlink()
    (tmp_path / "c").write_text("1\n2\n")
    os.utime(tmp_path / "a", ns=(1, 1))
    summary = changes.after(str(tmp_path), json.loads(json.dumps(start)))
    assert summary["source"] == "listing"
    assert [(f["path"], f["change"], f["lines_added"]) for f in summary["files"]] == [
        ("a", "modified", None),
        ("b", "deleted", None),
        ("c", "added", 2),
    ]


# ------------------------------------------------------------------ envelope


def _finished(**over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "20261201T101010Z-abcdef",
        "kind": "run",
        "agent": "claude",
        "agent_version": "2.1.332",
        "project": "/p",
        "worktree": "/p.worktrees/b",
        "started": "2026-12-01T10:10:10Z",
        "ended": "2026-12-01T10:11:10Z",
        "duration_seconds": 60.0,
        "exit_status": 0,
        "ended_by": "exit",
        "changes": changes.summary_json(
            "git",
            branch="b",
            commits=[changes.Commit("c" * 40, "did it")],
            files=[changes.FileChange("x", "added", 1, 0)],
        ),
        "network": {"policy": "allowlist", "denied_requests": 3, "session": "s"},
        "notices": [{"path": ".envrc", "change": "new"}],
        "record": "/h/.aishell/sessions/k/20261201T101010Z-abcdef",
    }
    data.update(over)
    return data


def test_envelope_from_a_finished_record() -> None:
    env = recording.envelope(_finished())
    assert env == {
        "version": 1,
        "session": "20261201T101010Z-abcdef",
        "agent": {"name": "claude", "version": "2.1.332"},
        "project": "/p",
        "worktree": "/p.worktrees/b",
        "branch": "b",
        "started": "2026-12-01T10:10:10Z",
        "ended": "2026-12-01T10:11:10Z",
        "duration_seconds": 60.0,
        "exit_status": 0,
        "ended_by": "exit",
        "ok": True,
        "commits": [{"id": "c" * 40, "subject": "did it"}],
        "files": [{"path": "x", "change": "added", "lines_added": 1, "lines_deleted": 0}],
        "changes_source": "git",
        "changes_truncated": False,
        "network": {"policy": "allowlist", "denied_requests": 3},
        "notices": [{"path": ".envrc", "change": "new"}],
        "record": "/h/.aishell/sessions/k/20261201T101010Z-abcdef",
    }
    json.dumps(env)
    assert_shape(env, ENVELOPE_SHAPE)


def test_envelope_of_a_failure_and_of_a_record_without_changes() -> None:
    env = recording.envelope(_finished(exit_status=124, ended_by="timeout", changes=None))
    assert env["ok"] is False and env["exit_status"] == 124 and env["ended_by"] == "timeout"
    assert env["files"] == [] and env["commits"] == [] and env["changes_source"] == "none"


def test_count_denied() -> None:
    log = (
        "2026-12-01T10:33:44+0000 INFO s session opened: project /p container c\n"
        "2026-12-01T10:33:44+0000 ALLOW s TCP_TUNNEL/200 CONNECT a:443 sni=a\n"
        "2026-12-01T10:33:44+0000 DENY s TCP_DENIED/403 GET http://b/ sni=-\n"
        "2026-12-01T10:33:44+0000 DENY s NONE_NONE/200 CONNECT c:443 sni=d\n"
        "garbage DENY\n"
    )
    assert records.count_denied(log) == 2


# ------------------------------------------------------------------ prompt quoting


@pytest.mark.parametrize("agent", HARNESS_NAMES)
@pytest.mark.parametrize(
    "prompt",
    ["plain", "-starts with a dash", "--help", "a; rm -rf / $(x) `y` 'q\" \n\tz", "{prompt}"],
)
def test_the_prompt_is_one_argument_untouched(agent: str, prompt: str) -> None:
    tool = BY_NAME[agent]
    argv = headless_command(tool, prompt, tool.autonomy_args, ())
    assert argv[0] == tool.command
    assert sum(prompt in a for a in argv) == 1
    (element,) = [a for a in argv if prompt in a]
    assert element in (prompt, f"--prompt={prompt}")
    if element == prompt and agent != "pi":
        assert argv[argv.index(prompt) - 1] == "--"  # never read as an option


def test_headless_command_lines() -> None:
    def line(agent: str, autonomy: tuple[str, ...] | None = None) -> tuple[str, ...]:
        tool = BY_NAME[agent]
        return headless_command(
            tool, "P", tool.autonomy_args if autonomy is None else autonomy, ("--x",)
        )

    assert line("claude") == ("claude", "--dangerously-skip-permissions", "--x", "-p", "--", "P")
    assert line("opencode") == ("opencode", "run", "--auto", "--x", "--", "P")
    assert line("codex") == (
        "codex", "-c", "check_for_update_on_startup=false", "exec",
        "--dangerously-bypass-approvals-and-sandbox", "--x", "--skip-git-repo-check", "--", "P",
    )  # fmt: skip
    assert line("gemini") == ("gemini", "--yolo", "--skip-trust", "--x", "--prompt=P")
    assert line("pi") == ("pi", "--approve", "--x", "-p", "P")
    assert line("claude", ()) == ("claude", "--x", "-p", "--", "P")


def test_run_command_line() -> None:
    req, _ = run_cmd.parse(
        ["--json", "--timeout", "2m", "claude", "fix", "the", "bug"], RunOptions()
    )
    assert req.kind == "run" and req.harness == "claude" and req.json is True
    assert req.prompt == "fix the bug" and req.timeout == 120
    assert req.name is not None and req.name.startswith("claude-run-")
    req, opts = run_cmd.parse(
        ["--worktree=b", "--name=n", "--unsafe", "codex", "--", "-x"], RunOptions()
    )
    assert opts.worktree == "b" and req.name == "n" and req.unsafe and req.prompt == "-x"
    req, opts = run_cmd.parse(["--worktree", "pi", "go"], RunOptions(unsafe=True))
    assert opts.worktree == "" and req.unsafe
    for bad in (
        [],
        ["--json"],
        ["nosuch", "x"],
        ["claude", ""],
        ["--timeout", "0", "claude", "x"],
        ["--timeout", "soon", "claude", "x"],
        ["--detach", "claude", "x"],
        ["--bogus", "claude", "x"],
        ["claude", "a\0b"],
        ["claude", "x" * (run_cmd.MAX_PROMPT + 1)],
    ):
        with pytest.raises(UsageError):
            run_cmd.parse(bad, RunOptions())
    with pytest.raises(UsageError):
        run_cmd.parse(["claude", "x"], RunOptions(detach=True))


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("1.5m", 90), ("2h", 7200), ("1d", 86400)]
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert run_cmd.parse_duration(text) == seconds


def test_prompt_from_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    class Stdin(io.TextIOWrapper):
        def isatty(self) -> bool:
            return False

    raw = io.BytesIO("a long\nprompt ✓\n".encode())
    monkeypatch.setattr("sys.stdin", Stdin(raw))
    assert run_cmd.prompt_of(["-"]) == "a long\nprompt ✓\n"
    raw.seek(0)
    assert run_cmd.prompt_of([]) == "a long\nprompt ✓\n"


# ------------------------------------------------------------------ records and pruning


DAY = 86400.0


def test_to_prune_by_age_and_count_never_a_live_one() -> None:
    now = 100 * DAY
    entries = [
        records.Entry("new", now - 1, False),
        records.Entry("live-old", now - 90 * DAY, True),
        records.Entry("old", now - 31 * DAY, False),
        records.Entry("mid1", now - 2 * DAY, False),
        records.Entry("mid2", now - 3 * DAY, False),
        records.Entry("mid3", now - 4 * DAY, False),
    ]
    assert sorted(records.to_prune(entries, now=now, keep_days=30, keep=100)) == ["old"]
    assert sorted(records.to_prune(entries, now=now, keep_days=30, keep=2)) == [
        "mid2", "mid3", "old",
    ]  # fmt: skip
    assert records.to_prune(entries, now=now, keep_days=1000, keep=1000) == []


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AISHELL_HOME", str(tmp_path / "ah"))
    return tmp_path / "ah"


def _stamp(ts: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(ts)) + "-" + os.urandom(3).hex()


def test_prune_on_disk_keeps_a_running_session(home: Path) -> None:
    now = time.time()
    old_done = records.begin("k", {"kind": "exec"}, session_id=_stamp(now - 40 * DAY))
    old_live = records.begin("k", {"kind": "run"}, session_id=_stamp(now - 50 * DAY))
    fresh = records.begin("k", {"kind": "shell"}, session_id=_stamp(now - 10))
    assert old_done and old_live and fresh
    records.end(old_done, status=0, ended_by="exit")
    records.end(fresh, status=0, ended_by="exit")
    # old_live is still "running" with this process's pid: never pruned
    removed = records.prune("k", keep_days=30, keep=100)
    assert removed == [old_done.id]
    assert not old_done.dir.exists() and old_live.dir.exists() and fresh.dir.exists()
    # a finished record is read-only on disk, and still removable by pruning
    assert (fresh.dir / records.RECORD).stat().st_mode & 0o777 == 0o400
    assert records.prune("k", keep_days=30, keep=1) == []  # the newest, and the live one
    records.end(old_live, status=1, ended_by="exit")
    assert records.prune("k", keep_days=30, keep=1) == [old_live.id]
    assert (home / "sessions").stat().st_mode & 0o777 == 0o700


def test_the_age_rule_runs_at_most_once_an_hour_the_count_rule_always(home: Path) -> None:
    now = time.time()
    first = records.begin("k", {"kind": "exec"}, session_id=_stamp(now - 10))
    assert first
    records.end(first, status=0, ended_by="exit")
    assert records.prune("k", keep_days=30, keep=100, now=now) == []  # (stamps)
    # 31 days later by the clock, but the stamp is fresh: not yet
    late = now + 31 * DAY
    os.utime(home / "sessions" / "k" / records.PRUNED_STAMP, (now, now))
    assert records.prune("k", keep_days=30, keep=100, now=now + 60) == []
    assert first.dir.exists()
    os.utime(home / "sessions" / "k" / records.PRUNED_STAMP, (now - 7200, now - 7200))
    assert records.prune("k", keep_days=30, keep=100, now=late) == [first.id]
    # the count rule does not wait for the stamp
    a = records.begin("k", {"kind": "exec"}, session_id=_stamp(now - 20))
    b = records.begin("k", {"kind": "exec"}, session_id=_stamp(now - 10))
    assert a and b
    records.end(a, status=0, ended_by="exit")
    records.end(b, status=0, ended_by="exit")
    assert records.prune("k", keep_days=30, keep=1, now=now) == [a.id]


@pytest.mark.parametrize(
    ("sid", "expected"),
    [
        ("20261201T120000Z-abcdef", 1796126400.0),
        ("19700101T000000Z-000000", 0.0),
        ("20261301T120000Z-abcdef", None),  # month 13
        ("20261200T120000Z-abcdef", None),  # day 0
        ("20261201T250000Z-abcdef", None),  # hour 25
        ("20261201T120000-abcdef", None),  # no Z
        ("x", None),
    ],
)
def test_started_of(sid: str, expected: float | None) -> None:
    assert records.started_of(sid) == expected


def test_listing_newest_first_lost_sessions_and_find(home: Path) -> None:
    now = time.time()
    a = records.begin("k1", {"kind": "run"}, session_id=_stamp(now - 100))
    b = records.begin("k2", {"kind": "exec"}, session_id=_stamp(now - 50))
    assert a and b
    records.end(a, status=0, ended_by="exit")
    b.data["pid"] = 999_999_999  # its aishell is gone: shown as lost
    b.save()
    every = records.listing(None)
    assert [d["id"] for d in every] == [b.id, a.id]
    assert every[0]["state"] == "ended" and every[0]["ended_by"] == "lost"
    assert [d["id"] for d in records.listing("k1")] == [a.id]
    a_data = records.load(a.dir)
    assert a_data is not None
    a_data.update(project="/p", started="2026-12-01T10:10:10Z")
    assert_shape({"version": 1, "sessions": [sessions_cmd.shown(a_data)]}, SESSIONS_SHAPE)
    assert records.find(a.id[-6:], "k1") == [a.dir]
    assert records.find(a.id[:-7], "k2") == [a.dir]  # another project's, by its start
    assert records.find("../x", None) == [] and records.find("", None) == []


def test_detached_markers(home: Path) -> None:
    rec = records.begin("k", {"kind": "shell"})
    assert rec is not None
    records.mark(rec, "detached")
    assert [r.id for r in records.detached_records("k")] == [rec.id]
    records.end(rec, status=None, ended_by="background")
    records.unmark(rec)
    assert records.detached_records("k") == []


def test_record_begin_failure_is_a_warning(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home.mkdir(parents=True)
    (home / "sessions").write_text("not a directory")
    assert records.begin("k", {}) is None
    assert "this session is not recorded" in capsys.readouterr().err


def test_logs_shows_control_characters_visibly() -> None:
    assert sessions_cmd.clean("ok\tline\n\x1b]0;t\x07\x1b[2J\x9b") == (
        "ok\tline\n\\x1b]0;t\\x07\\x1b[2J\\x9b"
    )


def test_output_log_stops_at_its_limit(tmp_path: Path) -> None:
    from aishell.launch.headless import OutputLog

    log = OutputLog(tmp_path / "out.log", limit=10)
    log.write(b"12345")
    log.write(b"67890abc")
    log.write(b"more")
    log.close()
    assert log.truncated
    assert (tmp_path / "out.log").read_bytes() == (
        b"1234567890\n[aishell: output beyond 10 bytes not recorded]\n"
    )
    quiet = OutputLog(None)
    quiet.write(b"x")  # no record: nothing written, no error
    quiet.close()
    assert not quiet.truncated


def test_the_summary_reads_only_regular_files(tmp_path: Path) -> None:
    """What the agent leaves in the project cannot hang or flood the summary: a FIFO
    (an open would block), a link to /dev/zero (a read would never end)."""
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "zero").symlink_to("/dev/zero")
    (tmp_path / "big").write_bytes(b"x\n" * (changes.MAX_COUNTED // 2 + 1))
    (tmp_path / "ok").write_text("1\n2\n")
    assert changes.read_regular(str(tmp_path / "fifo")) is None
    assert changes.read_regular(str(tmp_path / "zero")) is None
    assert changes.read_regular(str(tmp_path / "ok")) == b"1\n2\n"
    assert len(changes.read_regular(str(tmp_path / "big")) or b"") == changes.MAX_COUNTED + 1
    start = {"source": "listing", "files": {}, "truncated": False}
    summary = changes.after(str(tmp_path), start)
    lines = {f["path"]: f["lines_added"] for f in summary["files"]}
    assert lines == {"big": None, "fifo": None, "ok": 2, "zero": None}


def test_recorded_command_lines_hide_secret_values() -> None:
    argv = [
        "env", "GITHUB_TOKEN=ghp_abc", "MODE=fast", "mytool", "--api-key", "k123",
        "--password=hunter2", "--verbose", "-p", "--", "use sk-ant-api03-abcdefghijklmnop here",
        "AKIAABCDEFGHIJKLMNOP", "plain text",
    ]  # fmt: skip
    assert records.redact_args(argv) == [
        "env", "GITHUB_TOKEN=<redacted>", "MODE=fast", "mytool", "--api-key", "<redacted>",
        "--password=<redacted>", "--verbose", "-p", "--", "use <redacted> here",
        "<redacted>", "plain text",
    ]  # fmt: skip
    # the prompt of a run stays readable
    assert records.redact_args(["claude", "-p", "--", "fix the auth bug"]) == [
        "claude", "-p", "--", "fix the auth bug",
    ]  # fmt: skip


def test_the_envelope_starts_on_a_line_of_its_own(capsys: pytest.CaptureFixture[str]) -> None:
    recording.print_envelope(_finished(), new_line=True)
    out = capsys.readouterr().out
    assert out.startswith("\n{\n") and out.endswith("}\n")
    assert json.loads(out)["session"] == "20261201T101010Z-abcdef"
