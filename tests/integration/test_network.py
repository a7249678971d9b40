"""Network egress policy on a real engine, with local test servers only.

The test servers run as containers on a separate engine network under the names
`allowed.test` and `denied.test` (testing/egress.py); the proxy joins that network
through the test-only hook AISHELL_PROXY_EXTRA_NETWORKS. Nothing here contacts an
address outside this machine. The attacks of issue 12 are in test_egress.py.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from testing.egress import Upstream, docker, egress_container, start_upstream, stop_upstream
from testing.runner import Aishell


@pytest.fixture(scope="module")
def upstream(root_user: Aishell, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    up = start_upstream(root_user.hold("foundation"), "net", tmp_path_factory.mktemp("up"))
    yield up
    stop_upstream(up)


def allowlist_project(ai: Aishell, allow: str = "[allowed.test]") -> Path:
    project = ai.new_project("net")
    text = f"network:\n  mode: allowlist\n  allow: {allow}\n"
    ai.write(project / ".aishell" / "config.yaml", text)
    return project


PROBE = r"""
echo "ENV $HTTPS_PROXY $http_proxy"
echo "HTTP $(curl -sS -m 10 http://allowed.test/ 2>&1)"
W="-o /dev/null -w %{http_connect}"
echo "CONNECT $(curl -sS -m 10 -p $W https://allowed.test/ 2>/dev/null)"
echo "DENIED $(curl -sS -m 10 http://denied.test/x 2>&1 | head -1)"
echo "DENIEDCONNECT $(curl -sS -m 10 -p $W https://denied.test/ 2>/dev/null)"
curl -sS -m 5 --noproxy '*' "http://$SRV_IP/" >/dev/null 2>&1; echo "DIRECT $?"
env -u http_proxy -u HTTP_PROXY curl -sS -m 5 http://allowed.test/ >/dev/null 2>&1
echo "NOPROXY $?"
getent hosts example.com >/dev/null 2>&1; echo "DNS $?"
echo "V6 $(grep -vc ' lo$' /proc/net/if_inet6 2>/dev/null)"
curl -sS -m 5 --noproxy '*' -6 'http://[2001:db8::1]/' >/dev/null 2>&1; echo "V6CURL $?"
echo "LOGS $(ls -d "$HOME/.aishell/logs" 2>/dev/null || echo absent)"
exit 5
"""


def parse(stdout: str) -> dict[str, str]:
    out = {}
    for line in stdout.splitlines():
        key, _, rest = line.partition(" ")
        out[key] = rest
    return out


def test_allowlist_enforced_outside_the_agent(anyone: Aishell, upstream: Upstream) -> None:
    ai = anyone
    project = allowlist_project(ai)
    result = ai.run(
        "exec", "env", f"SRV_IP={upstream.ip}", "sh", "-c", PROBE,
        cwd=project, env=upstream.env, timeout=600,
    )  # fmt: skip
    assert result.returncode == 5, result.stderr  # the command's own status
    got = parse(result.stdout)
    assert got["ENV"] == "http://127.0.0.1:3128 http://127.0.0.1:3128"
    assert got["HTTP"] == "hello from allowed.test over HTTP/1.1", result.stdout
    assert got["CONNECT"] == "200", result.stdout
    assert "blocked by the network allowlist: http://denied.test/x" in got["DENIED"]
    assert got["DENIEDCONNECT"] == "000"  # refused before any answer (never a bumped page)
    assert got["DIRECT"] != "0"
    assert got["NOPROXY"] != "0"
    assert got["DNS"] != "0"
    assert got["V6"] == "0"
    assert got["V6CURL"] != "0"
    assert got["LOGS"] == "absent"
    # The decision log on the host names the allowed and the denied request.
    logs = sorted(
        (ai.aishell_home / "logs" / "network").glob("*/decisions.log"),
        key=lambda p: p.stat().st_mtime,
    )
    text = logs[-1].read_text()
    session = logs[-1].parent.name
    # No network is made for a session (the sandbox has none; the proxy has its own).
    label = f"label=aishell.session={session}"
    assert anyone.engine_cli("network", "ls", "-q", "--filter", label).stdout == ""
    assert f"INFO {session} session opened: project {project}" in text
    assert f"INFO {session} allow: " in text and "allowed.test" in text
    assert f"ALLOW {session} TCP_MISS/200 GET http://allowed.test/ " in text
    assert f"DENY {session} TCP_DENIED/403 GET http://denied.test/x " in text
    assert "CONNECT denied.test:443 sni=- tls=terminate policy=not-allowlisted" in text
    assert logs[-1].stat().st_uid == ai.uid


def test_denied_log_not_writable_from_inside(root_user: Aishell, upstream: Upstream) -> None:
    project = allowlist_project(root_user)
    log_root = root_user.aishell_home / "logs"
    result = root_user.run(
        "exec", "sh", "-c",
        f"mkdir -p {log_root}/network/x 2>/dev/null && echo planted > {log_root}/network/x/f; "
        f"sudo -n sh -c 'echo planted > {log_root}/network/y' 2>/dev/null; true",
        cwd=project, env=upstream.env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert not (log_root / "network" / "x").exists()
    assert not (log_root / "network" / "y").exists()


def test_proxy_killed_means_no_network(root_user: Aishell, upstream: Upstream) -> None:
    project = allowlist_project(root_user)
    script = (
        "echo FIRST $(curl -sS -m 10 http://allowed.test/ 2>&1 | cut -d' ' -f1-3); "
        "while [ ! -e go ]; do sleep 0.2; done; "
        "curl -sS -m 5 http://allowed.test/ >/dev/null 2>&1; echo AFTER $?; "
        f"curl -sS -m 5 --noproxy '*' http://{upstream.ip}/ >/dev/null 2>&1; echo DIRECT $?"
    )
    proc = root_user.popen("exec", "sh", "-c", script, cwd=project, env=upstream.env)
    try:
        session = ""
        deadline = time.monotonic() + 120
        while not session and time.monotonic() < deadline:
            for line in docker(
                "ps", "--filter", f"label=aishell.project={project}",
                "--format", '{{.Label "aishell.session"}}',
            ).stdout.split():  # fmt: skip
                session = line
            time.sleep(0.3)
        assert session, "the agent container did not start"
        assert docker("kill", egress_container(root_user)).returncode == 0
        (project / "go").touch()
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    got = parse(out)
    assert got["FIRST"] == "hello from allowed.test", (out, err)
    assert got["AFTER"] != "0"
    assert got["DIRECT"] != "0"
    # The next launch starts the proxy again; the policy holds as before.
    again = root_user.run(
        "exec", "sh", "-c", "curl -sS -m 10 http://allowed.test/; "
        "curl -sS -m 10 -o /dev/null -w %{http_code} http://denied.test/",
        cwd=project, env=upstream.env,
    )  # fmt: skip
    assert again.stdout == "hello from allowed.test over HTTP/1.1\n403", again.stderr


def test_mode_none_has_only_loopback(root_user: Aishell) -> None:
    project = root_user.new_project("none")
    root_user.write(project / ".aishell" / "config.yaml", "network:\n  mode: none\n")
    result = root_user.run(
        "exec", "sh", "-c", "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '", cwd=project
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["lo"]


def test_project_cannot_loosen_global_none(root_user: Aishell, tmp_path: Path) -> None:
    home = tmp_path / "ah"
    home.mkdir()
    src = root_user.aishell_home
    for name in ("state.json", "config.yaml"):
        if (src / name).exists():
            (home / name).write_text((src / name).read_text())
    with (home / "config.yaml").open("a") as fh:
        fh.write("network: none\n")
    project = root_user.new_project("loosen")
    root_user.write(project / ".aishell" / "config.yaml", "network:\n  mode: open\n")
    env = {"AISHELL_HOME": str(home)}
    approved = root_user.run("trust", "--yes", cwd=project, env=env)  # approvals are per home
    assert approved.returncode == 0, approved.stderr
    result = root_user.run(
        "exec", "sh", "-c", "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '",
        cwd=project, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["lo"]
    info = root_user.run("info", "--json", cwd=project, env=env)
    assert json.loads(info.stdout)["network"]["mode"] == "none"


def test_mode_open_unchanged(root_user: Aishell) -> None:
    project = root_user.new_project("open")
    result = root_user.run(
        "exec", "sh", "-c",
        'tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " "; echo "P=${HTTPS_PROXY:-unset}"',
        cwd=project,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "eth0" in result.stdout.split()
    assert "P=unset" in result.stdout


def test_check_info_show_policy(root_user: Aishell) -> None:
    project = allowlist_project(root_user, '["allowed.test", "*.example.org:8443"]')
    check = root_user.run("check", cwd=project)
    assert "network policy: allowlist" in check.stdout + check.stderr
    info = root_user.run("info", "--json", cwd=project)
    data = json.loads(info.stdout)["network"]
    assert data["mode"] == "allowlist"
    assert "allowed.test" in data["allow"] and "*.example.org:8443" in data["allow"]
    assert "opencode" in data["presets"]  # the enabled agent's own hosts
    text = root_user.run("info", cwd=project).stdout
    assert "allowed.test" in text


def test_detached_session_ps(root_user: Aishell, upstream: Upstream) -> None:
    project = allowlist_project(root_user)
    started = root_user.run("--detach", "--name", "netd", "shell", cwd=project, env=upstream.env)
    assert started.returncode == 0, started.stderr
    container = json.loads(root_user.run("ps", "--json", cwd=project).stdout)
    row = next(r for r in container if r["name"] == "netd")
    assert row["network"] == "allowlist"
    name = row["container"]
    try:
        inside = docker("exec", name, "curl", "-sS", "-m", "10", "http://allowed.test/")
        assert inside.stdout.strip() == "hello from allowed.test over HTTP/1.1", inside.stderr
        text = root_user.run("ps", cwd=project).stdout
        assert "allowlist" in text
    finally:
        docker("rm", "-f", name)


def test_invalid_network_config_is_reported(root_user: Aishell) -> None:
    project = root_user.new_project("bad")
    root_user.write(
        project / ".aishell" / "config.yaml",
        "network:\n  mode: allowlist\n  allow: ['http://x.org']\n",
    )
    result = root_user.run("exec", "true", cwd=project)
    assert result.returncode != 0
    assert "config.yaml:3: network.allow[0]: invalid host pattern" in result.stderr


def test_egress_state_that_cannot_be_made_stops_the_launch(
    root_user: Aishell, tmp_path: Path
) -> None:
    """Fail closed: when the proxy's directory cannot be made, one Error line and no
    sandbox."""
    home = tmp_path / "ah"
    home.mkdir()
    for name in ("state.json", "config.yaml"):
        (home / name).write_text((root_user.aishell_home / name).read_text())
    (home / "egress").write_text("not a directory\n")
    project = allowlist_project(root_user)
    env = {"AISHELL_HOME": str(home)}
    approved = root_user.run("trust", "--yes", cwd=project, env=env)  # (approvals are per home)
    assert approved.returncode == 0, approved.stderr
    result = root_user.run("exec", "true", cwd=project, env=env)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "egress" in errors[0], result.stderr
    assert "Traceback" not in result.stderr
    label = f"label=aishell.project={project}"
    assert docker("ps", "-aq", "--filter", label).stdout.split() == []
