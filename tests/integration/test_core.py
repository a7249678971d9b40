"""The core sandbox, end to end on a real engine, as root and as a non-root user
(the tests marked with the "podman" target also on rootful and rootless Podman)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import subprocess
import time
from pathlib import Path

import pytest

from testing.runner import Aishell
from testing.volumes import clone_active_volume
from testing.volumes import remove as remove_volumes


def docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=False)


@pytest.mark.targets("docker", "podman")
def test_real_agent_from_npm_runs(anyone: Aishell, project: Path) -> None:
    result = anyone.run("exec", "opencode", "--version", cwd=project)
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"\d+\.\d+\.\d+\s*", result.stdout), result.stdout


@pytest.mark.targets("docker", "podman")
def test_runs_as_the_host_user_at_the_host_path(anyone: Aishell, project: Path) -> None:
    """UID/GID inside = the host user's; files made in the project belong to them
    (rootless Podman: keep-id maps the UID 1:1)."""
    sub = project / "sub" / "dir"
    sub.mkdir(parents=True)
    os.chown(project / "sub", anyone.uid, anyone.gid)
    os.chown(sub, anyone.uid, anyone.gid)
    result = anyone.run(
        "exec", "sh", "-c", 'id -u; id -g; pwd; echo "$HOME"; touch made-here', cwd=sub
    )
    assert result.returncode == 0, result.stderr
    uid, gid, pwd, home = result.stdout.split("\n")[:4]
    assert (int(uid), int(gid)) == (anyone.uid, anyone.gid)
    assert pwd == str(sub)
    assert home == str(anyone.home)
    made = (sub / "made-here").stat()
    assert (made.st_uid, made.st_gid) == (anyone.uid, anyone.gid)


@pytest.mark.targets("docker", "podman")
def test_home_is_writable_and_sudo_works(anyone: Aishell, project: Path) -> None:
    result = anyone.run(
        "exec",
        "sh",
        "-c",
        'mkdir -p "$HOME/.config/newtool" && touch "$HOME/.config/newtool/x" && sudo -n id -u',
        cwd=project,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0"


@pytest.mark.targets("docker", "podman")
def test_git_identity_and_safe_directory(anyone: Aishell, project: Path) -> None:
    subprocess.run(
        [
            "git",
            "-c",
            "safe.directory=*",
            "-C",
            str(project),
            "config",
            "user.name",
            "Ada Lovelace",
        ],
        check=True,
    )
    subprocess.run(
        [
            "git",
            "-c",
            "safe.directory=*",
            "-C",
            str(project),
            "config",
            "user.email",
            "ada@example.org",
        ],
        check=True,
    )
    result = anyone.run(
        "exec",
        "sh",
        "-c",
        'echo "$GIT_AUTHOR_NAME <$GIT_AUTHOR_EMAIL>"; git status --short >/dev/null && echo ok',
        cwd=project,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["Ada Lovelace <ada@example.org>", "ok"]


@pytest.mark.targets("docker", "podman")
def test_exit_status_and_pipes(anyone: Aishell, project: Path) -> None:
    assert anyone.run("exec", "sh", "-c", "exit 7", cwd=project).returncode == 7
    piped = anyone.run("exec", "cat", cwd=project, input="hi\n")
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout == "hi\n"


def _all_cmdlines() -> list[str]:
    lines = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            with contextlib.suppress(OSError):
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                lines.append(cmdline.replace(b"\0", b" ").decode(errors="replace"))
    return lines


@pytest.mark.targets("docker", "podman")
def test_secrets_reach_the_container_but_no_argv(anyone: Aishell, project: Path) -> None:
    """Every host process's argv, read from the start of the launch until the sandbox
    has printed its marker and while it then waits (running) for the test's release
    file, names neither secret. No fixed window: the container says when it runs."""
    passthrough = "pass-" + os.urandom(6).hex()
    literal = "lit-" + os.urandom(6).hex()
    anyone.write(
        project / ".aishell" / "config.yaml",
        f"env:\n  MY_TOKEN:\n  LITERAL_TOKEN: {literal}\n",
    )
    release = project / f"release-{os.urandom(3).hex()}"
    script = (
        f'echo "READY $MY_TOKEN $LITERAL_TOKEN"; until [ -e {release.name} ]; do sleep 0.1; done'
    )
    proc = anyone.popen("exec", "sh", "-c", script, cwd=project, env={"MY_TOKEN": passthrough})
    assert proc.stdout is not None
    seen: list[str] = []
    marker = ""
    deadline = time.monotonic() + 300
    try:
        while not marker:
            assert proc.poll() is None, proc.communicate(timeout=60)
            assert time.monotonic() < deadline, "the sandbox never printed its marker"
            seen += _all_cmdlines()
            if select.select([proc.stdout], [], [], 0.05)[0]:
                marker = proc.stdout.readline()
        for _ in range(5):  # the container waits for the release file: it still runs
            seen += _all_cmdlines()
        assert proc.poll() is None, "the sandbox ended before the release file"
    finally:
        release.touch()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert marker.split() == ["READY", passthrough, literal]
    assert any("run --rm --init" in line for line in seen), "never saw the engine's argv"
    assert not [line for line in seen if passthrough in line or literal in line]


def test_pre_start_runs_as_the_user_and_logs(anyone: Aishell, project: Path) -> None:
    anyone.write(
        project / ".aishell" / "config.yaml",
        "pre_start:\n  - echo started-$(id -u)\n  - touch /tmp/pre-start-marker\n",
    )
    name = "pre" + os.urandom(3).hex()
    result = anyone.run("--detach", "--name", name, "shell", cwd=project)
    assert result.returncode == 0, result.stderr
    container = re.search(r"(aishell-[0-9a-f]{8}-" + name + ")", result.stderr)
    assert container, result.stderr
    full = container.group(1)
    try:
        for _ in range(100):
            probe = anyone.engine_cli(
                "exec", full, "sh", "-c", "test -f /tmp/pre-start.done && cat /tmp/pre-start.log"
            )
            if probe.returncode == 0:
                break
            time.sleep(0.1)
        assert probe.stdout.strip() == f"started-{anyone.uid}"
        owner = anyone.engine_cli("exec", full, "stat", "-c", "%u", "/tmp/pre-start-marker")
        assert owner.stdout.strip() == str(anyone.uid)
    finally:
        anyone.engine_cli("rm", "-f", full)


@pytest.mark.targets("docker-root", "podman")
def test_project_extension_builds_once_and_on_change(anyone: Aishell) -> None:
    ai = anyone
    project = ai.new_project("ext")
    dockerfile = project / ".aishell" / "Dockerfile"
    # Content no other home built yet (an image with the same inputs would be reused).
    unique = f"# {os.urandom(4).hex()}\n"
    ai.write(dockerfile, unique + "FROM aishell:base\nRUN echo one > /etc/ext-marker\n")
    first = ai.run("exec", "cat", "/etc/ext-marker", cwd=project)
    assert first.returncode == 0, first.stderr
    assert first.stdout == "one\n"
    assert "Building project image" in first.stderr
    again = ai.run("exec", "cat", "/etc/ext-marker", cwd=project)
    assert again.stdout == "one\n"
    assert "Building project image" not in again.stderr
    ai.write(dockerfile, unique + "FROM aishell:base\nRUN echo two > /etc/ext-marker\n")
    changed = ai.run("exec", "cat", "/etc/ext-marker", cwd=project)
    assert changed.stdout == "two\n", changed.stderr
    assert "Building project image" in changed.stderr


def test_second_project_same_selection_installs_nothing(anyone: Aishell) -> None:
    state = json.loads((anyone.aishell_home / "state.json").read_text())
    volume = state["harness_volume"]
    history = anyone.engine_cli(
        "run",
        "--rm",
        "--entrypoint",
        "cat",
        "-v",
        f"{volume}:/tools",
        anyone.hold("foundation"),
        "/tools/.aishell-fill-history",
    ).stdout
    for name in ("one", "two"):
        result = anyone.run("exec", "true", cwd=anyone.new_project(name))
        assert result.returncode == 0, result.stderr
        assert "Installing" not in result.stderr
    after = anyone.engine_cli(
        "run",
        "--rm",
        "--entrypoint",
        "cat",
        "-v",
        f"{volume}:/tools",
        anyone.hold("foundation"),
        "/tools/.aishell-fill-history",
    ).stdout
    assert after == history


def test_concurrent_first_launches_fill_the_volume_once(root_user: Aishell, tmp_path: Path) -> None:
    """Two launches that both find the volume missing: one installs, the other waits."""
    ai = root_user.sibling(tmp_path / "home")
    version = json.loads((root_user.aishell_home / "state.json").read_text())
    pinned = version["volumes"][version["harness_volume"]]["versions"]["opencode"]
    setup = ai.run("setup", f"--with-opencode={pinned}", timeout=900)
    assert setup.returncode == 0, setup.stderr
    volume = json.loads((ai.aishell_home / "state.json").read_text())["harness_volume"]
    assert docker("volume", "rm", volume).returncode == 0
    project = ai.new_project("race")
    procs = [ai.popen("exec", "opencode", "--version", cwd=project) for _ in range(2)]
    outs = [p.communicate(timeout=900) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert [o[0].strip() for o in outs] == [pinned, pinned]
    installs = sum("Installed OpenCode" in err for _, err in outs)
    assert installs == 1, outs
    history = docker(
        "run",
        "--rm",
        "--entrypoint",
        "cat",
        "-v",
        f"{volume}:/tools",
        ai.hold("foundation"),
        "/tools/.aishell-fill-history",
    ).stdout
    assert len(history.splitlines()) == 1


def test_half_filled_volume_is_refilled(root_user: Aishell, tmp_path: Path) -> None:
    ai = root_user.sibling(tmp_path / "home")
    assert ai.run("setup", "--with-opencode", timeout=900).returncode == 0
    # A volume of this home's own: the shared one serves every other test meanwhile.
    volume = clone_active_volume(ai)
    state_path = ai.aishell_home / "state.json"
    try:
        # Simulate an interrupted fill: marker gone, and aishell has no record of it.
        docker(
            "run",
            "--rm",
            "--entrypoint",
            "rm",
            "-v",
            f"{volume}:/tools",
            ai.hold("foundation"),
            "-rf",
            "/tools/.aishell-ready.json",
            "/tools/npm/bin",
        )
        data = json.loads(state_path.read_text())
        data["volumes"] = {}
        state_path.write_text(json.dumps(data))
        result = ai.run("exec", "opencode", "--version", cwd=ai.new_project("half"), timeout=900)
        assert result.returncode == 0, result.stderr
        assert "Installed OpenCode" in result.stderr
    finally:
        remove_volumes(ai, volume)


def _project_containers(project: Path) -> set[str]:
    label = f"label=aishell.project={os.path.realpath(project)}"
    return set(docker("ps", "-aq", "--filter", label).stdout.split())


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("mounts: [1]\n", "mounts[0]"),
        ("mountz: []\n", "did you mean"),
        ("ports: ['99999:1']\n", "ports"),
        ("env: [1, 2\n", "Invalid YAML"),
        ("base_image: debian\n", "global"),
    ],
)
def test_bad_config_is_one_error_line_and_no_container(
    root_user: Aishell, config: str, message: str
) -> None:
    project = root_user.new_project("bad")
    root_user.write(project / ".aishell" / "config.yaml", config)
    since = str(int(time.time()) - 1)
    result = root_user.run("exec", "true", cwd=project)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    assert message in errors[0]
    assert "Traceback" not in result.stderr
    assert _project_containers(project) == set()
    created = docker(
        "events",
        "--since",
        since,
        "--until",
        str(int(time.time()) + 1),
        "--filter",
        "event=create",
        "--filter",
        f"label=aishell.project={os.path.realpath(project)}",
    )
    assert created.returncode == 0, created.stderr
    assert created.stdout == "", "a container was created despite the bad config"


def test_missing_setup_and_missing_harness(root_user: Aishell, tmp_path: Path) -> None:
    empty = Aishell(home=tmp_path, aishell_home=tmp_path / "empty", user=None, src=root_user.src)
    result = empty.run("exec", "true", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().startswith("Error: no setup found; run 'aishell setup")
    project = root_user.new_project("nh")
    missing = root_user.run("claude", "--version", cwd=project)
    assert missing.returncode == 1
    assert "Claude Code is not installed" in missing.stderr
    assert "--with-claude --with-opencode" in missing.stderr


def test_missing_engine_cli_is_a_clear_error(root_user: Aishell) -> None:
    project = root_user.new_project("noengine")
    result = root_user.run("exec", "true", cwd=project, env={"AISHELL_ENGINE": "no-such-engine"})
    assert result.returncode == 1
    assert "Error: AISHELL_ENGINE='no-such-engine' was not found" in result.stderr


def test_engine_not_answering_is_a_clear_error(root_user: Aishell) -> None:
    project = root_user.new_project("nodaemon")
    result = root_user.run(
        "exec", "true", cwd=project, env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    )
    assert result.returncode == 1
    assert (
        "the docker engine at DOCKER_HOST=unix:///nonexistent/docker.sock is not answering"
    ) in result.stderr
    assert "Traceback" not in result.stderr


SHARED_GID_USER = "aishell-it-users"


def test_host_gid_that_already_exists_in_the_image(user: Aishell, shared_root_src: Path) -> None:
    """A host user whose primary group (here `users`, GID 100) already exists in the image."""
    import grp
    import pwd
    import shutil

    gid = grp.getgrnam("users").gr_gid
    try:
        pwd.getpwnam(SHARED_GID_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "-m", "-g", "users", "-G", "docker", SHARED_GID_USER],
            check=False,
            capture_output=True,
        )
    entry = pwd.getpwnam(SHARED_GID_USER)
    home = Path(entry.pw_dir) / f"it-{os.getpid()}"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    ai = Aishell(
        home=home, aishell_home=home / ".aishell", user=SHARED_GID_USER, src=shared_root_src
    )
    ai.aishell_home.mkdir()
    (ai.aishell_home / "config.yaml").write_text((user.aishell_home / "config.yaml").read_text())
    subprocess.run(["chown", "-R", f"{entry.pw_uid}:{gid}", str(Path(entry.pw_dir))], check=True)
    os.chmod(entry.pw_dir, 0o755)
    assert ai.run("setup", "--with-opencode", timeout=900).returncode == 0
    project = ai.new_project("gid")
    result = ai.run("exec", "sh", "-c", "id -u; id -g; id -gn; touch by-agent", cwd=project)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(entry.pw_uid), str(gid), "users"]
    made = (project / "by-agent").stat()
    assert (made.st_uid, made.st_gid) == (entry.pw_uid, gid)


def test_dangerous_options_are_warned_even_with_unsafe(root_user: Aishell) -> None:
    project = root_user.new_project("danger")
    root_user.write(
        project / ".aishell" / "config.yaml",
        "docker_args: --cap-add SYS_ADMIN\nmounts: ['~/.ssh:/keys:ro']\n",
    )
    (root_user.home / ".ssh").mkdir(exist_ok=True)
    result = root_user.run("--unsafe", "shell", cwd=project)  # bash reads EOF and exits
    assert result.returncode == 0, result.stderr
    assert "Security notice" in result.stderr
    assert "--cap-add SYS_ADMIN" in result.stderr
    assert ".ssh" in result.stderr
