"""`aishell run`, session records and the real Claude Code doing real work.

No model API is reachable here: testing/model_server.py plays the model (the Anthropic
Messages API, streamed, as Claude Code calls it) and scripts the exchange: a `Bash`
tool call that changes the project, then a final answer. The agent is the real
`@anthropic-ai/claude-code` from the harness volume, inside the real sandbox; each
identity (root, the non-root user) gets a home set up `--with-claude` once, beside its
usual one (same images; the harness volume is shared by the selection).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testing.json_shapes import ENVELOPE_SHAPE, SESSIONS_SHAPE, assert_shape
from testing.model_server import (
    Bash,
    Fail,
    ModelNetwork,
    Scripted,
    Text,
    bridge_gateway,
    start_model_network,
    stop_model_network,
)
from testing.runner import Aishell, HostTmux, shell_line

PROMPT = re.compile(r"^\[aishell\] \S+ [$#]", flags=re.M)
DUMMY_KEY = "sk-ant-dummy-for-the-scripted-model"
_HOMES: dict[str, Aishell] = {}


@pytest.fixture
def claude(anyone: Aishell) -> Aishell:
    """`anyone`'s sibling home set up with Claude Code, passing the model's address."""
    key = str(anyone.home)
    if key not in _HOMES:
        ai = anyone.sibling(anyone.home / "claude-home")
        config = ai.aishell_home / "config.yaml"
        config.write_text(
            config.read_text()
            + "env:\n  ANTHROPIC_BASE_URL:\n  CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1'\n"
        )
        if ai.user:
            subprocess.run(["chown", "-R", f"{ai.uid}:{ai.gid}", str(ai.home)], check=True)
        result = ai.run("setup", "--with-claude", "--with-opencode", timeout=1500)
        assert result.returncode == 0, result.stderr
        _HOMES[key] = ai
    return _HOMES[key]


@pytest.fixture
def model() -> Iterator[list[Scripted]]:
    """Scripted servers started by the test (stopped after it)."""
    servers: list[Scripted] = []
    yield servers
    for server in servers:
        server.stop()


def serve(servers: list[Scripted], *script: Any, path: str = "") -> tuple[Scripted, dict[str, str]]:
    """A scripted server, and the environment that points the agents at it (OpenCode's
    Anthropic provider wants the `/v1` in its base URL, Claude Code not)."""
    server = Scripted(script).start()
    servers.append(server)
    env = {
        "ANTHROPIC_API_KEY": DUMMY_KEY,
        "ANTHROPIC_BASE_URL": f"http://{bridge_gateway()}:{server.port}{path}",
    }
    return server, env


def git(ai: Aishell, repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(ai.home)},
        check=False,
        **ai.process_kwargs(),  # type: ignore[arg-type]
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def make_repo(ai: Aishell, name: str = "run") -> Path:
    repo = ai.new_project(name)
    (repo / "README").write_text("before\n")
    (repo / "old.txt").write_text("one\ntwo\n")
    if ai.user:
        subprocess.run(["chown", "-R", f"{ai.uid}:{ai.gid}", str(repo)], check=True)
    git(ai, repo, "config", "user.name", "Ada Lovelace")
    git(ai, repo, "config", "user.email", "ada@example.org")
    git(ai, repo, "add", ".")
    git(ai, repo, "commit", "-qm", "initial")
    return repo


def envelope(stdout: str) -> dict[str, Any]:
    """The JSON document stdout ends with."""
    start = stdout.rfind("\n{\n") + 1 if not stdout.startswith("{\n") else 0
    data = json.loads(stdout[start:])
    assert isinstance(data, dict)
    assert_shape(data, ENVELOPE_SHAPE)  # as docs/json-output.md documents it
    return data


def files_of(env: dict[str, Any]) -> dict[str, tuple[str, int | None, int | None]]:
    return {f["path"]: (f["change"], f["lines_added"], f["lines_deleted"]) for f in env["files"]}


SCRIPTED_CHANGE = (
    "printf 'hello\\nworld\\n' > made.txt && rm old.txt && echo after >> README && "
    "git add -A && git commit -qm 'scripted: made.txt' && echo loose > untracked.txt && "
    "echo 'echo hi' > .envrc && id -u"
)


def test_run_makes_the_scripted_change_and_reports_it(
    claude: Aishell, model: list[Scripted]
) -> None:
    ai = claude
    repo = make_repo(ai)
    server, env = serve(model, Bash(SCRIPTED_CHANGE), Text("Done: DONE-MARK"))
    token = "ghp_" + "a1" * 18  # a secret in the prompt: the agent gets it, the record not
    prompt = f"Create made.txt; don't `run` $(anything) 'odd' \"quotes\"\n-and a dash {token}"
    result = ai.run("run", "--json", "claude", prompt, cwd=repo, env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    # The agent's output is streamed to stdout, and the envelope comes last.
    assert result.stdout.index("DONE-MARK") < result.stdout.rindex('"session"')
    got = envelope(result.stdout)
    # The change is on the host, owned by the user.
    made = repo / "made.txt"
    assert made.read_text() == "hello\nworld\n"
    assert made.stat().st_uid == ai.uid
    assert not (repo / "old.txt").exists()
    # The model was sent the prompt as one argument, untouched, and the tool's result.
    first = server.main_requests()[0]
    assert prompt in json.dumps(first["messages"], ensure_ascii=False).encode().decode(
        "unicode_escape"
    ) or prompt in _texts(first)
    assert str(ai.uid) in " ".join(r for req in server.main_requests()[1:] for r in _results(req))
    # The envelope: session, agent, the commit, the files with line counts, exit 0.
    assert got["version"] == 1
    assert got["agent"]["name"] == "claude" and got["agent"]["version"]
    assert got["project"] == str(repo)
    assert got["exit_status"] == 0 and got["ok"] is True and got["ended_by"] == "exit"
    assert [c["subject"] for c in got["commits"]] == ["scripted: made.txt"]
    assert got["commits"][0]["id"] == git(ai, repo, "rev-parse", "HEAD").strip()
    assert files_of(got) == {
        "README": ("modified", 1, 0),
        "made.txt": ("added", 2, 0),
        "old.txt": ("deleted", 0, 2),
        "untracked.txt": ("added", 1, 0),
        ".envrc": ("added", 1, 0),
    }
    assert got["network"] == {"policy": "open", "denied_requests": 0}
    # The post-session security notice (direnv runs .envrc on this machine).
    assert [(n["path"], n["change"]) for n in got["notices"]] == [(".envrc", "new")]
    assert got["duration_seconds"] >= 0 and got["started"] <= got["ended"]
    # The record: on the host under ~/.aishell/sessions, with the agent's whole output.
    record = Path(got["record"])
    assert record.parent.parent == ai.aishell_home / "sessions"
    assert record.name == got["session"]
    assert "DONE-MARK" in (record / "output.log").read_text()
    data = json.loads((record / "record.json").read_text())
    assert data["state"] == "ended" and data["kind"] == "run"
    assert DUMMY_KEY not in (record / "record.json").read_text()  # names, never values
    assert token not in (record / "record.json").read_text()
    assert "<redacted>" in " ".join(data["command"])
    assert "ANTHROPIC_API_KEY" in data["env"]
    assert data["image"].startswith("sha256:") and data["harness_volume"]
    assert record.stat().st_uid == ai.uid
    # `aishell sessions` and `aishell logs`.
    listed = ai.run("sessions", "--json", cwd=repo)
    assert listed.returncode == 0, listed.stderr
    assert_shape(json.loads(listed.stdout), SESSIONS_SHAPE)
    sessions = json.loads(listed.stdout)["sessions"]
    assert sessions[0]["session"] == got["session"]
    assert sessions[0]["commits"] == 1 and sessions[0]["files_changed"] == 5
    assert sessions[0]["notices"] == 1
    logs = ai.run("logs", got["session"][-6:], cwd=repo)
    assert logs.returncode == 0, logs.stderr
    assert "DONE-MARK" in logs.stdout and "--- network decisions ---" in logs.stdout

    # A long prompt from stdin.
    server2, env2 = serve(model, Text("STDIN-OK"))
    long_prompt = "line of a long task\n" * 2000
    piped = ai.run("run", "claude", "-", cwd=repo, env=env2, input=long_prompt, timeout=600)
    assert piped.returncode == 0, piped.stderr
    assert "STDIN-OK" in piped.stdout
    assert "line of a long task" in _texts(server2.main_requests()[0])


def test_opencode_run_makes_the_scripted_change(claude: Aishell, model: list[Scripted]) -> None:
    """OpenCode driven the same way (its Anthropic provider takes ANTHROPIC_BASE_URL)."""
    ai = claude
    repo = make_repo(ai, "oc")
    script = "echo opencode > oc.txt && git add oc.txt && git commit -qm 'opencode commit'"
    server, env = serve(model, Bash(script), Text("OC-DONE"), path="/v1")
    result = ai.run("run", "--json", "opencode", "-make oc.txt", cwd=repo, env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    got = envelope(result.stdout)
    assert "OC-DONE" in result.stdout
    assert (repo / "oc.txt").stat().st_uid == ai.uid
    assert got["agent"]["name"] == "opencode" and got["exit_status"] == 0
    assert [c["subject"] for c in got["commits"]] == ["opencode commit"]
    assert files_of(got) == {"oc.txt": ("added", 1, 0)}
    assert "-make oc.txt" in _texts(server.main_requests()[0])


def test_what_the_agent_leaves_cannot_hang_the_summary(
    claude: Aishell, model: list[Scripted]
) -> None:
    """The agent leaves a FIFO (opening it would block), links to /dev/zero (reading it
    never ends) and to a host file it cannot read: aishell's summary on the host reads
    none of them, and the run ends with its envelope."""
    ai = claude
    repo = make_repo(ai, "trap")
    script = (
        "mkfifo trap.fifo && ln -s /dev/zero zero && ln -s /etc/shadow shadow && "
        "mkfifo dirty.fifo 2>/dev/null; rm -f old.txt && mkfifo old.txt && echo planted"
    )
    _, env = serve(model, Bash(script), Text("TRAP-DONE"))
    result = ai.run("run", "--json", "claude", "leave traps", cwd=repo, env=env, timeout=180)
    assert result.returncode == 0, result.stderr
    got = envelope(result.stdout)
    files = files_of(got)
    assert files["zero"] == ("added", None, 0) or files["zero"][1] is None
    assert files["shadow"][1] is None
    assert files["old.txt"][0] in ("modified", "deleted")  # a FIFO where a file was


def _texts(request: dict[str, Any]) -> str:
    out = []
    for message in request.get("messages") or []:
        content = message.get("content")
        if isinstance(content, str):
            out.append(content)
        elif isinstance(content, list):
            out += [str(b.get("text", "")) for b in content if isinstance(b, dict)]
    return "\n".join(out)


def _results(request: dict[str, Any]) -> list[str]:
    from testing.model_server import tool_results

    return tool_results(request)


def test_failures_time_limit_and_refusals(claude: Aishell, model: list[Scripted]) -> None:
    ai = claude
    repo = make_repo(ai, "fail")
    # The model answers with an error: the agent fails, and so does aishell run.
    _, env = serve(model, Fail(400, "scripted failure"))
    failed = ai.run("run", "--json", "claude", "do it", cwd=repo, env=env, timeout=600)
    assert failed.returncode != 0, failed.stdout
    got = envelope(failed.stdout)
    assert got["exit_status"] == failed.returncode and got["ok"] is False
    assert got["ended_by"] == "exit" and got["files"] == [] and got["commits"] == []
    assert "scripted failure" in failed.stdout

    # The time limit: the agent's command would run ten minutes.
    _, env = serve(model, Bash("echo started > slow.txt; sleep 600"), Text("never"))
    slow = ai.run("run", "--json", "--timeout", "8s", "claude", "wait", cwd=repo, env=env)
    assert slow.returncode == 124, slow.stderr
    got = envelope(slow.stdout)
    assert got["exit_status"] == 124 and got["ended_by"] == "timeout"
    left = ai.engine_cli("ps", "-aq", "--filter", f"label=aishell.record={got['session']}")
    assert left.stdout.strip() == ""  # the container was stopped (and removed)
    assert (repo / "slow.txt").read_text() == "started\n"

    # No question without a terminal: a project config not approved refuses the run.
    untrusted = make_repo(ai, "untrusted")
    ai.write(untrusted / ".aishell" / "config.yaml", "network: none\n", trust=False)
    unapproved = ai.run("run", "claude", "hello", cwd=untrusted, env=env)
    assert unapproved.returncode != 0
    assert "aishell trust" in unapproved.stderr

    # No question without a terminal: a high-severity sensitive file refuses the run
    # (before anything starts) unless --unsafe; nothing is recorded for it.
    key = repo / "id_rsa"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n")
    if ai.user:
        subprocess.run(["chown", f"{ai.uid}:{ai.gid}", str(key)], check=True)
    before = len(json.loads(ai.run("sessions", "--json", cwd=repo).stdout)["sessions"])
    refused = ai.run("run", "claude", "hello", cwd=repo, env=env)
    assert refused.returncode != 0
    assert [line for line in refused.stderr.splitlines() if line.startswith("Error:")]
    assert "--unsafe" in refused.stderr
    after = len(json.loads(ai.run("sessions", "--json", cwd=repo).stdout)["sessions"])
    assert after == before
    _, env = serve(model, Text("UNSAFE-OK"))
    allowed = ai.run("--unsafe", "run", "claude", "hello", cwd=repo, env=env, timeout=600)
    assert allowed.returncode == 0, allowed.stderr
    assert "UNSAFE-OK" in allowed.stdout
    # Usage errors are one line each.
    for bad in (["run"], ["run", "nosuchagent", "x"], ["run", "--timeout", "soon", "claude", "x"]):
        wrong = ai.run(*bad, cwd=repo)
        assert wrong.returncode == 2, bad
        assert len([x for x in wrong.stderr.splitlines() if x.startswith("Error:")]) == 1


@pytest.fixture(scope="module")
def model_net(root_user: Aishell) -> Iterator[tuple[Scripted, ModelNetwork]]:
    server = Scripted(
        [
            Bash(
                "curl -s -m 5 http://denied.test/x; curl -s -m 5 https://example.com/ ;"
                " echo through > net.txt"
            ),
            Text("NET-DONE"),
        ]
    ).start()
    up = start_model_network(root_user.hold("foundation"), server.port)
    yield server, up
    stop_model_network(up)
    server.stop()


def test_run_under_an_allowlist(claude: Aishell, model_net: tuple[Scripted, ModelNetwork]) -> None:
    ai = claude
    _server, up = model_net
    repo = make_repo(ai, "net")
    ai.write(
        repo / ".aishell" / "config.yaml", "network:\n  mode: allowlist\n  allow: [model.test]\n"
    )
    env = {**up.env, "ANTHROPIC_API_KEY": DUMMY_KEY, "ANTHROPIC_BASE_URL": "http://model.test"}
    result = ai.run("run", "--json", "claude", "through the proxy", cwd=repo, env=env)
    assert result.returncode == 0, result.stderr
    got = envelope(result.stdout)
    assert "NET-DONE" in result.stdout
    assert (repo / "net.txt").read_text() == "through\n"
    assert got["network"]["policy"] == "allowlist"
    assert got["network"]["denied_requests"] >= 2  # denied.test and example.com
    record = Path(got["record"])
    log = (record / "network.log").read_text()
    assert "ALLOW" in log and "model.test" in log and "DENY" in log
    logs = ai.run("logs", got["session"], cwd=repo)
    assert logs.stdout.index("--- network decisions ---") < logs.stdout.index("DENY")


def test_three_runs_at_once_on_their_own_worktrees(claude: Aishell, model: list[Scripted]) -> None:
    ai = claude
    repo = make_repo(ai, "par")
    script = (
        'echo "$PWD" > where.txt && git add where.txt && '
        'git commit -qm "scripted in $(git symbolic-ref --short HEAD)" && ls'
    )
    _, env = serve(model, Bash(script), Text("PAR-DONE"))
    branches = ["task-a", "task-b", "task-c"]
    procs = {
        b: ai.popen(f"--worktree={b}", "run", "--json", "claude", f"task {b}", cwd=repo, env=env)
        for b in branches
    }
    results = {}
    for b, proc in procs.items():
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        results[b] = envelope(out)
    ids = set()
    for b in branches:
        tree = repo.parent / f"{repo.name}.worktrees" / b
        got = results[b]
        ids.add(got["session"])
        assert got["branch"] == b and got["worktree"] == str(tree)
        assert [c["subject"] for c in got["commits"]] == [f"scripted in {b}"]
        assert git(ai, repo, "log", "-1", "--format=%s", b).strip() == f"scripted in {b}"
        # each worked in its own checkout only
        assert (tree / "where.txt").read_text().strip() == str(tree)
        assert files_of(got) == {"where.txt": ("added", 1, 0)}
    assert not (repo / "where.txt").exists()
    assert git(ai, repo, "log", "-1", "--format=%s").strip() == "initial"
    # `aishell sessions` in the repository lists the runs of its worktrees.
    listed = json.loads(ai.run("sessions", "--json", cwd=repo).stdout)["sessions"]
    assert ids <= {s["session"] for s in listed}
    inside = repo.parent / f"{repo.name}.worktrees" / "task-b"
    from_tree = json.loads(ai.run("sessions", "--json", cwd=inside).stdout)["sessions"]
    assert ids <= {s["session"] for s in from_tree}  # the repository's, from a worktree
    every = json.loads(ai.run("sessions", "--all", "--json", cwd=ai.home).stdout)["sessions"]
    assert ids <= {s["session"] for s in every}


def _digests(directory: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.iterdir())
        if p.is_file()
    }


TAMPER = r"""
found=$(find / -xdev \( -name record.json -o -name output.log -o -name network.log \) \
  -not -path '/proc/*' 2>/dev/null | grep -v node_modules | head -20)
echo "FOUND[$found]"
mark=$(printf 'tam%s' pered)  # (the record of the command must not hold the word)
for f in $found; do echo "$mark" > "$f" 2>/dev/null && echo "WROTE $f"; done
for d in "{record}" "{sessions}" "$HOME/.aishell/sessions" "{home}/.aishell/sessions"; do
  mkdir -p "$d" 2>/dev/null && echo "$mark" > "$d/record.json" 2>/dev/null && echo "PLANTED $d"
done
sudo -n sh -c "echo $mark > {record}/record.json" 2>/dev/null && echo SUDO
"""


def test_records_are_out_of_every_sandbox(claude: Aishell, model: list[Scripted]) -> None:
    """The agent of the recorded session itself, and a later sandbox, try to reach the
    records (any file of that name anywhere they can see, the record's host path,
    the sessions directory, sudo) and to hide control sequences in the output."""
    ai = claude
    repo = make_repo(ai, "rec")
    # A first run, recorded.
    _, env = serve(model, Bash("echo first > first.txt"), Text("FIRST-DONE"))
    first = envelope(ai.run("run", "--json", "claude", "first", cwd=repo, env=env).stdout)
    record = Path(first["record"])
    kept = _digests(record)
    sessions = ai.aishell_home / "sessions"
    attack = TAMPER.format(record=record, sessions=sessions, home=ai.home)
    # The agent of a second run tries, during its own session...
    server, env = serve(model, Bash(attack), Text("SECOND-DONE ESC\x1b]0;owned\x07\x1b[2J-END"))
    second = ai.run("run", "--json", "claude", "second", cwd=repo, env=env, timeout=600)
    assert second.returncode == 0, second.stderr
    got = envelope(second.stdout)
    seen = " ".join(r for req in server.main_requests() for r in _results(req))
    assert "FOUND[]" in seen, seen  # no record file anywhere the agent can see
    # ...and a later sandbox (exec) tries again.
    later = ai.run("exec", "sh", "-c", attack, cwd=repo)
    assert later.returncode == 0, later.stderr
    assert "FOUND[]" in later.stdout, later.stdout
    # (What they "planted" went to the container's own filesystem, gone with it.)
    # Observed on the host: both records as aishell wrote them, nothing else there.
    assert _digests(record) == kept
    assert sorted(p.name for p in record.iterdir()) == sorted(kept)
    assert not (sessions / "record.json").exists()
    assert not list(sessions.glob("*/record.json"))
    for path in sessions.rglob("*"):  # (other tests' records are in this home too)
        assert not path.is_file() or b"tampered" not in path.read_bytes(), path
    assert json.loads((record / "record.json").read_text())["id"] == first["session"]
    second_record = Path(got["record"])
    data = json.loads((second_record / "record.json").read_text())
    assert data["exit_status"] == 0 and data["state"] == "ended"
    assert "tampered" not in (second_record / "record.json").read_text()
    # Finished records are read-only on the host, too.
    assert all((record / n).stat().st_mode & 0o777 == 0o400 for n in kept)
    assert (sessions.stat().st_mode & 0o777) == 0o700
    # The exec run is recorded too (lighter: no git summary).
    listed = json.loads(ai.run("sessions", "--json", cwd=repo).stdout)["sessions"]
    assert listed[0]["kind"] == "exec" and listed[0]["exit_status"] == 0
    assert {first["session"], got["session"]} <= {s["session"] for s in listed}
    # The output the agent wrote (control sequences that would retitle and clear a
    # terminal), shown on a terminal, cannot drive the terminal; kept as it was.
    assert "ESC\x1b]0;owned\x07" in (second_record / "output.log").read_text()
    shown = subprocess.run(
        ["script", "-qec", " ".join(ai.command("logs", got["session"])), "/dev/null"],
        cwd=repo, env=ai.env(), capture_output=True, text=True, check=False,
        **ai.process_kwargs(),  # type: ignore[arg-type]
    )  # fmt: skip
    assert "ESC\\x1b]0;owned\\x07\\x1b[2J-END" in shown.stdout, shown.stdout
    assert "\x1b]0;owned" not in shown.stdout


def _sessions(ai: Aishell, project: Path) -> list[dict[str, Any]]:
    listed = ai.run("sessions", "--json", cwd=project)
    assert listed.returncode == 0, listed.stderr
    result: list[dict[str, Any]] = json.loads(listed.stdout)["sessions"]
    return result


def test_interactive_and_detached_sessions_are_recorded(
    anyone: Aishell, project: Path, host_tmux: HostTmux
) -> None:
    """An interactive shell (through tmux, as a person runs it) and a detached one get
    the same record: how they ended and what they changed."""
    name = "r" + os.urandom(3).hex()
    host_tmux.start("a", shell_line(anyone, "--unsafe", "--name", name, "shell", cwd=project))
    host_tmux.wait_for("a", lambda s: PROMPT.search(s) is not None)
    host_tmux.keys("a", "printf 'a\\nb\\n' > typed.txt; exit 3", "Enter")
    screen = host_tmux.wait_for("a", lambda s: "HOST-RC=" in s)
    assert "HOST-RC=3" in screen
    shell = _sessions(anyone, project)[0]
    assert shell["kind"] == "shell" and shell["container"].endswith(name)
    assert shell["state"] == "ended" and shell["exit_status"] == 3
    assert shell["ended_by"] == "exit" and shell["files_changed"] == 1
    data = json.loads((Path(shell["record"]) / "record.json").read_text())
    assert data["changes"]["files"] == [
        {"path": "typed.txt", "change": "added", "lines_added": 2, "lines_deleted": 0}
    ]
    # Detached: recorded as running in the background, concluded by a later launch
    # once its container is gone.
    name = name + "-bg"
    started = anyone.run("--detach", "--unsafe", "--name", name, "shell", cwd=project)
    assert started.returncode == 0, started.stderr
    detached = _sessions(anyone, project)[0]
    assert detached["state"] == "detached" and detached["ended"] is None
    stopped = anyone.run("stop", name, cwd=project)
    assert stopped.returncode == 0, stopped.stderr
    assert anyone.run("exec", "true", cwd=project).returncode == 0
    listed = {s["session"]: s for s in _sessions(anyone, project)}
    concluded = listed[detached["session"]]
    assert concluded["state"] == "ended" and concluded["ended_by"] == "background"
    assert concluded["ended"] is not None


def test_records_of_a_home_inside_the_project_are_out_of_reach(anyone: Aishell) -> None:
    """The aishell home (records and all) inside the project the sandbox mounts (refused
    without a terminal unless --unsafe, which the user gives here): a later sandbox of
    that project tries to rewrite, remove and replace the records."""
    project = anyone.new_project("inner")
    inner = Aishell(
        home=anyone.home,
        aishell_home=project / "ah",
        user=anyone.user,
        src=anyone.src,
        extra_env=dict(anyone.extra_env),
    )
    inner.aishell_home.mkdir()
    (inner.aishell_home / "config.yaml").write_text(
        (anyone.aishell_home / "config.yaml").read_text()
    )
    if inner.user:
        subprocess.run(["chown", "-R", f"{inner.uid}:{inner.gid}", str(project)], check=True)
    assert inner.run("setup", timeout=1500).returncode == 0  # (the image only: reused)
    first = inner.run("--unsafe", "exec", "sh", "-c", "echo FIRST", cwd=project)
    assert first.returncode == 0, first.stderr
    (recorded,) = [  # (and the prune stamp, `.pruned`)
        p for p in (inner.aishell_home / "sessions").glob("*/*") if not p.name.startswith(".")
    ]
    kept = _digests(recorded)
    ah = inner.aishell_home
    attack = (
        f"ls -A {ah}; echo LISTED; mark=$(printf 'tam%s' pered); "
        f"for f in {recorded}/*; do echo $mark > $f; done 2>/dev/null; "
        f"rm -rf {ah}/sessions 2>/dev/null; mkdir -p {recorded} 2>/dev/null && "
        f"echo $mark > {recorded}/record.json 2>/dev/null; "
        f"sudo -n rm -rf {ah}/sessions 2>/dev/null; true"
    )
    later = inner.run("--unsafe", "exec", "sh", "-c", attack, cwd=project)
    assert later.returncode == 0, later.stderr
    assert later.stdout.startswith("LISTED"), later.stdout  # an empty directory inside
    assert _digests(recorded) == kept
    listed = json.loads(inner.run("sessions", "--json", cwd=project).stdout)["sessions"]
    assert recorded.name in {s["session"] for s in listed}
    for path in (ah / "sessions").rglob("*"):
        assert not path.is_file() or b"tampered" not in path.read_bytes(), path
