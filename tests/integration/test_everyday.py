"""Issue 13 against the real engine: the first minutes of a new user and the daily work
of a regular one. Every error the issue quotes is reproduced here and its new message
checked verbatim; terminals are driven through tmux as a person would."""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from testing.runner import Aishell, HostTmux, shell_line

REPO = Path(__file__).resolve().parents[2]
PROMPT = re.compile(r"^\[aishell\] \S+ [$#]", flags=re.M)


def docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=False)


def fresh_home(ai: Aishell, name: str, *, certs: bool = True) -> Aishell:
    """Another aishell home of the same user (nothing set up), with the suite's CA
    certificates unless `certs` is False."""
    # Beside `ai.home`, not inside it: its .aishell/ would make it a project of the other.
    home = ai.home.parent / f"{ai.home.name}-{name}-{os.urandom(3).hex()}"
    other = Aishell(
        home=home, aishell_home=home / ".aishell", user=ai.user, src=ai.src,
        extra_env=dict(ai.extra_env),
    )  # fmt: skip
    other.aishell_home.mkdir(parents=True)
    os.chmod(home, 0o755)
    config = (ai.aishell_home / "config.yaml").read_text() if certs else ""
    (other.aishell_home / "config.yaml").write_text(config)
    if ai.user:
        subprocess.run(["chown", "-R", f"{ai.uid}:{ai.gid}", str(home)], check=True)
    return other


def container_of(ai: Aishell, project: Path, name: str) -> str:
    """The engine's name of `name` in `project` (from `aishell ps --json`)."""
    rows = json.loads(ai.run("ps", "--json", cwd=project).stdout)
    return next(r["container"] for r in rows if r["name"] == name)


def remove_containers(ai: Aishell, *projects: Path) -> None:
    for project in projects:
        listed = ai.run("ps", "--json", cwd=project)
        for row in json.loads(listed.stdout or "[]"):
            ai.engine_cli("rm", "-f", row["container"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------ ports


def test_a_port_conflict_shows_the_engines_cause_and_exec_runs_beside_published_ports(
    anyone: Aishell,
) -> None:
    port = free_port()
    config = f'ports: ["127.0.0.1:{port}:8000"]\n'
    first, second = anyone.new_project("ports-a"), anyone.new_project("ports-b")
    for project in (first, second):
        anyone.write(project / ".aishell" / "config.yaml", config)
    started = anyone.run("--detach", "--name", "web", "shell", cwd=first)
    assert started.returncode == 0, started.stderr
    try:
        # exec beside the running shell: no port of its own (it used to fail, rc 125)
        beside = anyone.run("exec", "echo", "beside", cwd=first)
        assert beside.returncode == 0, beside.stderr
        assert beside.stdout == "beside\n"
        clash = anyone.run("--detach", "--name", "web", "shell", cwd=second)
        assert clash.returncode == 1
        error = clash.stderr.strip().splitlines()[-1]
        assert re.fullmatch(
            r"Error: starting aishell-[0-9a-f]{8}-web failed: driver failed programming "
            r"external connectivity on endpoint \S+ \([0-9a-f]+\): Bind for "
            rf"127\.0\.0\.1:{port} failed: port is already allocated; free that port, or "
            r"change 'ports:' in your aishell config",
            error,
        ), clash.stderr
        assert "--help" not in error
    finally:
        remove_containers(anyone, first, second)


# ------------------------------------------------------------------ exec status


def test_exec_of_a_missing_command_exits_127_and_of_a_non_executable_126(
    anyone: Aishell, project: Path
) -> None:
    missing = anyone.run("exec", "no-such-command-x", "--flag", cwd=project)
    assert missing.returncode == 127
    assert missing.stderr.strip().splitlines()[-1] == (
        "aishell: no-such-command-x: command not found"
    )
    anyone.write(project / "notes.txt", "not a program\n")
    plain = anyone.run("exec", "./notes.txt", cwd=project)
    assert plain.returncode == 126
    assert plain.stderr.strip().splitlines()[-1] == "aishell: ./notes.txt: not executable"
    gone = anyone.run("exec", "./gone.sh", cwd=project)
    assert gone.returncode == 127
    assert anyone.run("exec", "sh", "-c", "exit 7", cwd=project).returncode == 7


# ------------------------------------------------------------------ engine choice


def test_an_unreachable_docker_host_is_named(anyone: Aishell, project: Path) -> None:
    where = f"unix://{project}/no-engine.sock"
    result = anyone.run("exec", "true", cwd=project, env={"DOCKER_HOST": where})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"Error: the docker engine at DOCKER_HOST={where} is not answering; start that "
        "engine or correct DOCKER_HOST; unset it to use the local engine; check with "
        "'docker info'"
    )
    assert "systemctl" not in result.stderr


@pytest.mark.targets("docker-user")
def test_without_the_docker_group_podman_is_chosen_out_loud(
    anyone: Aishell, project: Path, podman_engine: str
) -> None:
    """The user is not in the docker group (this run drops it): aishell says it uses
    Podman, why, and how to get Docker, instead of switching silently."""
    env = anyone.env({"XDG_RUNTIME_DIR": f"/run/user/{anyone.uid}"})
    env.pop("AISHELL_ENGINE", None)
    result = subprocess.run(
        anyone.command("check"),
        cwd=project, env=env, capture_output=True, text=True, timeout=300, check=False,
        stdin=subprocess.DEVNULL, user=anyone.uid, group=anyone.gid, extra_groups=[],
    )  # fmt: skip
    why = (
        "Docker's socket /var/run/docker.sock is not yours to use (you are not in the "
        "'docker' group)"
    )
    assert (
        f"Note: using Podman, not Docker: {why}; to use Docker, add yourself to the docker "
        "group ('sudo usermod -aG docker $USER', then log out and back in), or set "
        "'engine: podman' in ~/.aishell/config.yaml (or AISHELL_ENGINE=podman) to choose "
        "Podman and silence this note"
    ) in result.stderr
    assert f"Engine CLI found: {shutil.which('podman')} (auto-detected: {why}; using Podman)" in (
        result.stdout
    )


# ------------------------------------------------------------------ check


def test_check_with_a_broken_global_config_still_finds_the_engine(anyone: Aishell) -> None:
    home = fresh_home(anyone, "broken")
    cert = sorted(glob.glob("/usr/local/share/ca-certificates/**/*.crt", recursive=True))
    (home.aishell_home / "config.yaml").write_text(
        f"ca_certificates: {cert[0] if cert else '/x'}\n"
    )
    project = home.new_project()
    result = home.run("check", cwd=project)
    assert result.returncode == 1
    out = result.stdout
    assert "Engine CLI not found" not in out
    assert "The docker engine answers" in out
    assert "! Engine chosen without the global config" in out
    config_error = "ca_certificates: expected a list of PEM file paths, got string"
    assert out.count(config_error) == 1, out
    assert f"  ✗ Global config is invalid: {home.aishell_home / 'config.yaml'}" in out


# ------------------------------------------------------------------ TLS, npm


def test_a_tls_failure_during_the_build_names_ca_certificates(anyone: Aishell) -> None:
    """This machine's network inspects TLS, as a company proxy does: without the CA
    certificates the foundation build cannot download Node.js."""
    home = fresh_home(anyone, "no-ca", certs=False)
    result = home.run("setup", timeout=900)
    assert result.returncode == 1
    error = result.stderr.strip().splitlines()[-1]
    assert re.fullmatch(
        r"Error: building aishell-home-[0-9a-f]{12}:foundation failed: a TLS certificate "
        r"was not trusted \(curl: \(60\) SSL certificate problem: .+\); your network "
        r"inspects TLS \(e\.g\. a company proxy\): add its CA certificates to "
        r"~/\.aishell/config\.yaml, e\.g\. 'ca_certificates: "
        r"\[/usr/local/share/ca-certificates/corp-root\.crt\]' \(PEM files\), then run the "
        r"command again",
        error,
    ), result.stderr[-3000:]
    assert "see the build output above" not in error
    assert "could not be pulled" not in result.stderr
    assert not (home.aishell_home / "state.json").exists()


def test_a_version_npm_does_not_have(anyone: Aishell) -> None:
    home = fresh_home(anyone, "npm")
    result = home.run("setup", "--with-opencode=0.0.999", timeout=900)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: installing opencode-ai@0.0.999 failed: npm has no version 0.0.999 of "
        "opencode-ai; pick a published version (list them with 'aishell exec npm view "
        "opencode-ai versions'), or leave out '=0.0.999' for the latest"
    )
    assert "_logs" not in result.stderr and "complete log" not in result.stderr


# ------------------------------------------------------------------ first run


def test_first_run_without_a_terminal_installs_only_when_asked(anyone: Aishell) -> None:
    home = fresh_home(anyone, "first")
    project = home.new_project()
    refused = home.run("opencode", "--version", cwd=project)
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "Error: no setup found; run 'aishell setup --with-opencode', or 'aishell "
        "--install opencode' to install it and start"
    )
    started = home.run("--install", "opencode", "--version", cwd=project, timeout=900)
    assert started.returncode == 0, started.stderr
    assert re.fullmatch(r"\d+\.\d+\.\d+\n", started.stdout), started.stdout
    assert (
        "No setup found: installing OpenCode now (as 'aishell setup --with-opencode' would; "
        "the first time this builds the sandbox image, about a minute)"
    ) in started.stderr
    assert "Installed OpenCode; starting it." in started.stderr
    # Next time nothing is installed; a shell works too.
    again = home.run("exec", "opencode", "--version", cwd=project)
    assert again.returncode == 0 and "installing" not in again.stderr


def test_first_run_on_a_terminal_installs_and_starts_the_agent(
    anyone: Aishell, host_tmux: HostTmux
) -> None:
    home = fresh_home(anyone, "first-tty")
    project = home.new_project()
    host_tmux.start("f", shell_line(home, "opencode", "--version", cwd=project))
    screen = host_tmux.wait_for("f", lambda s: "HOST-RC=" in s, timeout=900)
    assert "HOST-RC=0" in screen, screen
    assert "No setup found: installing OpenCode now" in screen, screen
    # The install's progress (on a shared engine the volume may be filled already, or
    # being filled by another aishell right now: this one waits for it and says so).
    progress = r"Installing OpenCode|OpenCode: (already installed|installed by another|waited)"
    assert re.search(progress, screen), screen
    assert re.search(r"^\d+\.\d+\.\d+$", screen, flags=re.M), screen
    # The setup saved is the one that was installed.
    st = json.loads((home.aishell_home / "state.json").read_text())
    assert st["tools"] == {"opencode": "latest"}


# ------------------------------------------------------------------ terminals


def test_the_last_screen_and_the_exit_status_stay_visible(
    anyone: Aishell, project: Path, host_tmux: HostTmux
) -> None:
    host_tmux.start("l", shell_line(anyone, "--unsafe", "shell", cwd=project))
    host_tmux.wait_for("l", lambda s: PROMPT.search(s) is not None)
    host_tmux.keys("l", "echo LAST-WORDS-$((6*7)); exit 4", "Enter")
    screen = host_tmux.wait_for("l", lambda s: "HOST-RC=" in s)
    assert "LAST-WORDS-42" in screen, screen
    assert "[aishell] bash exited with status 4" in screen
    assert "HOST-RC=4" in screen
    # What stays on the terminal after tmux's "[exited]" is the last screen and the status.
    assert screen.rfind("LAST-WORDS-42") > screen.rfind("[exited]")


def test_an_agent_that_fails_at_once_leaves_its_words(
    anyone: Aishell, project: Path, host_tmux: HostTmux
) -> None:
    """Like Claude's 'Unable to connect to Anthropic services' at once: the agent's
    message must still be on the screen after it exited (it was a bare '[exited]')."""
    line = shell_line(anyone, "--unsafe", "opencode", "no-such-dir-x", cwd=project)
    host_tmux.start("o", line)
    screen = host_tmux.wait_for("o", lambda s: "HOST-RC=" in s)
    rc = int(re.search(r"HOST-RC=(\d+)", screen).group(1))  # type: ignore[union-attr]
    assert f"Failed to change directory to {project}/no-such-dir-x" in screen, screen
    assert f"[aishell] opencode exited with status {rc}" in screen, screen


def test_inside_the_users_own_tmux_detach_keeps_their_session(
    anyone: Aishell, project: Path
) -> None:
    """A person whose terminal runs tmux (prefix Ctrl-b) starts an agent: the status
    line says to press Ctrl-b Ctrl-b d, and that detaches the agent, not them."""
    name = "nest" + os.urandom(2).hex()
    outer = HostTmux(f"aishell-it-outer-{os.urandom(3).hex()}")
    person = HostTmux(f"aishell-it-person-{os.urandom(3).hex()}")
    try:
        # The agent runs in a pane of the user's tmux ("outer", TMUX set there)...
        tmux_env = {"TMUX": f"/tmp/tmux-{os.getuid()}/{outer.socket},1,0"}
        outer.start(
            "work",
            shell_line(anyone, "--unsafe", "--name", name, "shell", cwd=project, env=tmux_env),
        )
        # ...and the person's terminal is a client of that tmux.
        person.start("term", f"TMUX= tmux -L {outer.socket} attach -t work")
        screen = person.wait_for("term", lambda s: PROMPT.search(s) is not None)
        assert "detach: Ctrl-b Ctrl-b d" in screen, screen
        person.keys("term", "C-b", "C-b", "d")
        screen = person.wait_for("term", lambda s: "Detached from" in s)
        assert f"Detached from {name}; it keeps running." in screen
        assert "[detached (from session work)]" not in screen  # their own session stays
        assert outer.tmux("has-session", "-t", "work").returncode == 0
    finally:
        person.kill()
        outer.kill()
        rows = json.loads(anyone.run("ps", "--json", cwd=project).stdout)
        for row in rows:
            anyone.engine_cli("rm", "-f", row["container"])


def test_sensitive_findings_wait_until_read_then_only_when_they_change(
    anyone: Aishell, project: Path, host_tmux: HostTmux
) -> None:
    anyone.write(project / ".env", "API_TOKEN=x\n")
    # (each run its own --name: the previous container may take a moment to go)
    host_tmux.start("s", shell_line(anyone, "--name", "s1", "shell", cwd=project))
    screen = host_tmux.wait_for("s", lambda s: "Press Enter to start" in s)
    assert ".env - Environment configuration file" in screen
    time.sleep(1)  # it waits: no agent/shell screen covers the findings
    assert PROMPT.search(host_tmux.screen("s")) is None
    host_tmux.keys("s", "Enter")
    host_tmux.wait_for("s", lambda s: PROMPT.search(s) is not None)
    host_tmux.keys("s", "exit 0", "Enter")
    host_tmux.wait_for("s", lambda s: "HOST-RC=0" in s)
    # Read already: the next start does not wait.
    host_tmux.start("t", shell_line(anyone, "--name", "s2", "shell", cwd=project))
    screen = host_tmux.wait_for("t", lambda s: PROMPT.search(s) is not None)
    assert "Press Enter" not in screen
    host_tmux.keys("t", "exit 0", "Enter")
    host_tmux.wait_for("t", lambda s: "HOST-RC=0" in s)
    # A new finding: it waits again.
    anyone.write(project / ".env.local", "B=y\n")
    host_tmux.start("u", shell_line(anyone, "--name", "s3", "shell", cwd=project))
    host_tmux.wait_for("u", lambda s: "Press Enter to start" in s)
    host_tmux.keys("u", "C-c")
    host_tmux.wait_for("u", lambda s: "HOST-RC=130" in s)


# ------------------------------------------------------------------ sessions


def test_stop_and_ps_all(anyone: Aishell) -> None:
    home = fresh_home(anyone, "sessions")
    first = home.run("--install", "exec", "true", cwd=home.new_project("setup"), timeout=900)
    assert first.returncode == 0, first.stderr
    one, two = home.new_project("one"), home.new_project("two")
    for project in (one, two):
        started = home.run("--detach", "--name", "job", "shell", cwd=project)
        assert started.returncode == 0, started.stderr
        assert "  Stop:   aishell stop job" in started.stderr
    try:
        rows = json.loads(home.run("ps", "--all", "--json", cwd=one).stdout)
        assert sorted(r["project"] for r in rows) == sorted([str(one), str(two)])
        text = home.run("ps", "--all", cwd=one).stdout
        assert "PROJECT" in text and str(two) in text
        # Other homes' containers are not "all" of this one's.
        assert all(r["project"] in (str(one), str(two)) for r in rows)

        wrong = home.run("stop", "nope", cwd=one)
        assert wrong.returncode == 1
        assert wrong.stderr.strip() == (
            "Error: nothing named 'nope' runs in this project; see what runs with "
            "'aishell ps' (other projects: 'aishell ps --all')"
        )
        stopped = home.run("stop", "job", cwd=one)
        assert stopped.returncode == 0, stopped.stderr
        assert re.search(r"Stopped job \(aishell-[0-9a-f]{8}-job\)", stopped.stderr)
        assert json.loads(home.run("ps", "--json", cwd=one).stdout) == []
        assert len(json.loads(home.run("ps", "--json", cwd=two).stdout)) == 1
        everything = home.run("stop", "--all", "--everywhere", cwd=one)
        assert everything.returncode == 0, everything.stderr
        assert json.loads(home.run("ps", "--all", "--json", cwd=one).stdout) == []
    finally:
        for project in (one, two):
            for row in json.loads(home.run("ps", "--json", cwd=project).stdout or "[]"):
                home.engine_cli("rm", "-f", row["container"])


def test_config_json_says_where_each_value_came_from(anyone: Aishell, project: Path) -> None:
    home = fresh_home(anyone, "config")
    (home.aishell_home / "config.yaml").write_text(
        (home.aishell_home / "config.yaml").read_text() + "env:\n  FROM_GLOBAL: one\n"
    )
    home.write(project / ".aishell" / "config.yaml", "tmux: false\nenv:\n  FROM_PROJECT:\n")
    result = home.run("config", "--json", cwd=project)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    keys = data["keys"]
    global_file = str(home.aishell_home / "config.yaml")
    project_file = str(project / ".aishell" / "config.yaml")
    assert keys["tmux"] == {"value": False, "origins": [{"file": project_file, "line": 1}]}
    env = {o["key"]: o for o in keys["env"]["origins"]}
    assert env["FROM_PROJECT"] == {"file": project_file, "line": 3, "key": "FROM_PROJECT"}
    assert env["FROM_GLOBAL"]["file"] == global_file
    assert keys["detection.enabled"] == {"value": True, "origin": "default"}
    text = home.run("config", cwd=project).stdout
    assert "tmux: false  (" in text and ".aishell/config.yaml:1)" in text
    home.write(project / ".aishell" / "config.yaml", "tmux: maybe\n")
    bad = home.run("config", cwd=project)
    assert bad.returncode == 1 and "tmux" in bad.stderr


# ------------------------------------------------------------------ completion


def test_completion_scripts_load_and_complete_running_sessions(
    anyone: Aishell, project: Path
) -> None:
    name = "cpl" + os.urandom(2).hex()
    started = anyone.run("--detach", "--name", name, "shell", cwd=project)
    assert started.returncode == 0, started.stderr
    env = anyone.env()
    aishell = " ".join(anyone.command())
    try:
        bash = subprocess.run(
            ["bash", "-c", f"""
                aishell() {{ {aishell} "$@"; }}
                source <(aishell completion bash) || exit 9
                COMP_WORDS=(aishell at); COMP_CWORD=1; _aishell; echo "1:${{COMPREPLY[*]}}"
                COMP_WORDS=(aishell attach ""); COMP_CWORD=2; _aishell; echo "2:${{COMPREPLY[*]}}"
                COMP_WORDS=(aishell --unsafe cod); COMP_CWORD=2; _aishell
                echo "3:${{COMPREPLY[*]}}"
            """],
            cwd=project, env=env, capture_output=True, text=True, check=False,
            **anyone.process_kwargs(),  # type: ignore[arg-type]
        )  # fmt: skip
        assert bash.returncode == 0, bash.stderr
        assert "1:attach" in bash.stdout
        assert re.search(rf"^2:.*\b{name}\b", bash.stdout, flags=re.M), bash.stdout
        assert "3:codex" in bash.stdout
        zsh = subprocess.run(
            ["zsh", "-fc", "autoload -U compinit && compinit -u && "
             f'eval "$({aishell} completion zsh)" && whence -w _aishell'],
            cwd=project, env=env, capture_output=True, text=True, check=False,
            **anyone.process_kwargs(),  # type: ignore[arg-type]
        )  # fmt: skip
        assert zsh.returncode == 0 and "_aishell: function" in zsh.stdout, zsh.stderr
        fish = subprocess.run(
            ["fish", "--no-config", "-c", f"""
                function aishell; {aishell} $argv; end
                aishell completion fish | source
                complete -C 'aishell at'
                complete -C 'aishell attach '
            """],
            cwd=project, env=env, capture_output=True, text=True, check=False,
            **anyone.process_kwargs(),  # type: ignore[arg-type]
        )  # fmt: skip
        assert fish.returncode == 0, fish.stderr
        assert re.search(r"^attach\b", fish.stdout, flags=re.M), fish.stdout
        assert re.search(rf"^{name}\b", fish.stdout, flags=re.M), fish.stdout
    finally:
        anyone.engine_cli("rm", "-f", container_of(anyone, project, name))


# ------------------------------------------------------------------ setup, update


def test_setup_names_what_it_disables_and_update_keeps_an_unchanged_volume(
    anyone: Aishell,
) -> None:
    home = fresh_home(anyone, "update")
    assert home.run("setup", "--with-opencode", timeout=900).returncode == 0
    before = json.loads((home.aishell_home / "state.json").read_text())["harness_volume"]
    updated = home.run("update", timeout=900)
    assert updated.returncode == 0, updated.stderr
    if "Reinstalling only what changed: OpenCode" in updated.stderr:
        # (the shared volume held an older OpenCode than the registry's latest)
        before = json.loads((home.aishell_home / "state.json").read_text())["harness_volume"]
        updated = home.run("update", timeout=900)
        assert updated.returncode == 0, updated.stderr
    assert re.search(
        r"Already up to date:\n  OpenCode (\S+) \u2192 \1 \(unchanged\)", updated.stderr
    ), updated.stderr
    assert f"Launches keep using {before}." in updated.stderr
    assert json.loads((home.aishell_home / "state.json").read_text())["harness_volume"] == before
    dropped = home.run("setup", timeout=900)
    assert dropped.returncode == 0, dropped.stderr
    assert (
        "Disabled (not named in this setup): OpenCode; to keep it, add --with-opencode"
    ) in dropped.stderr


# ------------------------------------------------------------------ agents


@pytest.fixture
def all_agents(anyone: Aishell) -> Aishell:
    home = fresh_home(anyone, "agents")
    result = home.run(
        "setup", "--with-claude", "--with-opencode", "--with-codex", "--with-gemini",
        "--with-pi", timeout=1800,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return home


# What each agent draws first here (no model can be reached, nobody is logged in).
FIRST_SCREEN = {
    "claude": "Welcome to Claude Code",
    "opencode": "Ask anything",
    "codex": "Welcome to Codex",
    "gemini": "How would you like to authenticate",
    "pi": "/login",
}
AUTONOMY = {
    "claude": "--dangerously-skip-permissions",
    "opencode": "--auto",
    "codex": "--dangerously-bypass-approvals-and-sandbox",
    "gemini": "--yolo --skip-trust",
    "pi": "--approve",
}


def processes(ai: Aishell, project: Path, name: str, timeout: float = 120) -> str:
    """The process list (`ps -eo args`) of container `name` once its agent runs (polled:
    an agent that cannot reach its service may exit within a second)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = docker("ps", "-q", "--filter", f"label=aishell.name={name}").stdout.split()
        for container in listed:
            procs = docker("exec", container, "ps", "-eo", "args").stdout
            if "aishell-run" in procs:
                return procs
        time.sleep(0.1)
    raise AssertionError(f"{name} never ran its agent")


def test_every_agent_starts_at_full_autonomy(all_agents: Aishell, host_tmux: HostTmux) -> None:
    project = all_agents.new_project()
    for agent, text in FIRST_SCREEN.items():
        name = f"auto-{agent}-{os.urandom(2).hex()}"
        line = shell_line(all_agents, "--unsafe", "--name", name, agent, cwd=project)
        host_tmux.start(agent, line)
        try:
            procs = processes(all_agents, project, name)
            # The agent's argv (aishell-run execs exactly it) carries its autonomy flag.
            runs = [p for p in procs.splitlines() if f"/aishell-run {agent} " in p]
            assert runs and all(AUTONOMY[agent] in p for p in runs), procs
            screen = host_tmux.wait_for(agent, lambda s, t=text: t in s, timeout=180)
            assert text in screen
        finally:
            remove_containers(all_agents, project)
    env = all_agents.run("exec", "sh", "-c", "echo $NO_BROWSER", cwd=project)
    assert env.stdout.strip() == "true"  # Gemini's login prints a URL and takes the code


def test_opting_out_of_autonomy(all_agents: Aishell, host_tmux: HostTmux) -> None:
    project = all_agents.new_project()
    host_tmux.start(
        "x",
        shell_line(all_agents, "--unsafe", "--name", "manual", "codex", cwd=project,
                   env={"AISHELL_SKIP_PERMISSIONS": "false"}),
    )  # fmt: skip
    try:
        procs = processes(all_agents, project, "manual")
        assert "aishell-run codex" in procs and "--dangerously-bypass" not in procs
        # Approvals are back; Codex's own sandbox, which cannot work here, stays off.
        assert "--sandbox danger-full-access" in procs
        host_tmux.wait_for("x", lambda s: "Welcome to Codex" in s, timeout=180)
    finally:
        remove_containers(all_agents, project)


def test_codexs_own_sandbox_cannot_work_in_the_container(all_agents: Aishell) -> None:
    """Why aishell turns it off: bubblewrap finds no namespaces it may create."""
    project = all_agents.new_project()
    result = all_agents.run("exec", "codex", "sandbox", "linux", "--", "true", cwd=project)
    assert result.returncode != 0
    assert "No permissions to create a new namespace" in result.stderr


def test_opencode_state_persists(all_agents: Aishell) -> None:
    project = all_agents.new_project()
    result = all_agents.run(
        "exec", "sh", "-c", "echo kept > ~/.local/state/opencode/probe", cwd=project
    )
    assert result.returncode == 0, result.stderr
    # Kept on the host in the project's copy of OpenCode's config (docs/agents.md), never
    # in the host's own ~/.local/state/opencode.
    info = json.loads(all_agents.run("info", "--json", cwd=project).stdout)
    [state_dir] = [
        p["source"]
        for p in info["harnesses"]["opencode"]["config_paths"]
        if p["path"] == str(all_agents.home / ".local/state/opencode")
    ]
    assert (Path(state_dir) / "probe").read_text() == "kept\n"
    assert not (all_agents.home / ".local/state/opencode/probe").exists()
    again = all_agents.run(
        "exec",
        "cat",
        "/dev/null",
        str(all_agents.home) + "/.local/state/opencode/probe",
        cwd=project,
    )
    assert again.returncode == 0 and again.stdout == "kept\n", again.stderr


# ------------------------------------------------------------------ image


def test_the_foundation_has_python_fd_and_make_and_fits_its_budget(
    anyone: Aishell, project: Path
) -> None:
    result = anyone.run(
        "exec", "sh", "-c",
        "python3 -m venv /tmp/v && /tmp/v/bin/pip --version && fd --version && make --version",
        cwd=project,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "pip " in result.stdout and "GNU Make" in result.stdout
    size = int(anyone.engine_cli("image", "inspect", "--format", "{{.Size}}", anyone.hold()).stdout)
    assert size <= 430_000_000, f"the foundation image is {size / 1e6:.1f} MB"


# ------------------------------------------------------------------ README


def test_the_readme_quick_start_works_for_a_fresh_user(engine: str) -> None:
    if os.getuid() != 0:
        pytest.fail("the quick-start check creates a user: run the suite as root")
    result = subprocess.run(
        [str(REPO / "scripts" / "check-quickstart")],
        capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    assert "OK: a fresh user got from the README to Claude Code's screen" in result.stderr
