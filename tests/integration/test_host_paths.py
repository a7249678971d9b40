"""Mounts judged by what a path really is, options in every spelling, launches in
`$HOME`, and the credential files detection now finds: against a real engine, as
root and as a non-root user, the agent playing its part from inside a sandbox."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from testing.runner import Aishell, HostTmux, shell_line


def secret_ssh(ai: Aishell) -> str:
    marker = "PRIVATE-" + os.urandom(4).hex()
    ai.write(ai.home / ".ssh" / "id_test", marker + "\n")
    return marker


def one_error(stderr: str) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, stderr
    return errors[0]


def check_json(ai: Aishell, project: Path) -> dict[str, object]:
    result = ai.run("check", "--json", cwd=project)
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def warned(report: dict[str, object]) -> list[str]:
    return [
        f"{c['label']} {c.get('detail', '')}"
        for c in report["checks"]  # type: ignore[attr-defined]
        if c["status"] == "warn"
    ]


@pytest.mark.targets("docker", "podman")
def test_a_symlink_planted_in_the_project_cannot_redirect_a_mount(
    anyone: Aishell, project: Path
) -> None:
    """An approved config mounts the project's `data/`; the agent replaces `data`
    with a symlink to ~/.ssh. The next launch does not mount ~/.ssh: without a
    terminal it is refused (with --unsafe, it goes on, warned); `check` warns."""
    marker = secret_ssh(anyone)
    (project / "data").mkdir()
    if anyone.user:
        os.chown(project / "data", anyone.uid, anyone.gid)
    anyone.write(project / ".aishell" / "config.yaml", "mounts:\n  - ./data:/data\n")
    first = anyone.run("exec", "ls", "/data", cwd=project)
    assert first.returncode == 0, first.stderr
    planted = anyone.run("exec", "sh", "-c", 'rmdir data && ln -s "$HOME/.ssh" data', cwd=project)
    assert planted.returncode == 0, planted.stderr
    result = anyone.run("exec", "cat", "/data/id_test", cwd=project)
    assert marker not in result.stdout
    assert result.returncode == 1
    assert "symlink inside the project" in one_error(result.stderr)
    assert any(".ssh" in w and "symlink" in w for w in warned(check_json(anyone, project)))


def test_a_mount_through_a_symlink_to_a_credential_dir_is_warned(
    anyone: Aishell, project: Path
) -> None:
    secret_ssh(anyone)
    link = anyone.home / f"keys-{os.urandom(3).hex()}"
    os.symlink(anyone.home / ".ssh", link)
    anyone.write(project / ".aishell" / "config.yaml", f"mounts:\n  - {link}:/k:ro\n")
    result = anyone.run("exec", "true", cwd=project)
    assert result.returncode == 0, result.stderr
    assert f"is a symlink to {anyone.home / '.ssh'}" in result.stderr
    assert "SSH private keys" in result.stderr
    assert any("symlink" in w for w in warned(check_json(anyone, project)))


@pytest.mark.parametrize(
    ("what", "config"),
    [
        ("aishell's own home", "mounts: ['~/.aishell:/a']"),
        ("shell start-up file", "mounts: ['~/.bashrc:/b']"),
        ("programs on your PATH", "mounts: ['~/.local/bin:/l']"),
        ("shared temporary directory", "mounts: ['/tmp:/t']"),
        ("another container", "docker_args: [--volumes-from, some-container]"),
        ("AWS credentials", "docker_args: [--env-file, ~/.aws/env]"),
        ("outside the project", "docker_args: [--env-file, /srv/env.list]"),
        ("/proc/<pid>/root", "docker_args: [--pid=container:x]"),
        ("another container's network", "docker_args: [--network, 'container:x']"),
        ("custom one", "docker_args: [--security-opt, 'seccomp=/tmp/allow-all.json']"),
        ("volume driver", "docker_args: [--mount, 'type=volume,dst=/k,"
         "volume-opt=o=bind,volume-opt=device=~/.ssh']"),
        ("host group", "docker_args: [--group-add, docker]"),
        ("container engine", "docker_args: [-e, 'DOCKER_HOST=tcp://127.0.0.1:2375']"),
        ("container engine", "env: {DOCKER_HOST: 'unix:///run/docker.sock'}"),
        ("OCI runtime", "docker_args: [--runtime=nvidia]"),
        ("kernel.*", "docker_args: [--sysctl, 'kernel.core_pattern=|/x']"),
        ("another cgroup", "docker_args: '--cgroup-parent /'"),
    ],
)  # fmt: skip
def test_options_and_mounts_are_warned_in_check(
    anyone: Aishell, project: Path, what: str, config: str
) -> None:
    anyone.write(project / ".aishell" / "config.yaml", config + "\n")
    report = check_json(anyone, project)
    assert any(what in w for w in warned(report)), warned(report)


def test_a_launch_in_home_is_refused_without_a_terminal(anyone: Aishell) -> None:
    """No git repository above $HOME: the project would be the whole home, .ssh and
    .aishell included. Refused without a terminal; --unsafe goes on, warned;
    `check` warns. With --unsafe, aishell's own home is hidden inside."""
    marker = secret_ssh(anyone)
    home = anyone.home
    result = anyone.run("exec", "cat", str(home / ".ssh" / "id_test"), cwd=home)
    assert result.returncode == 1
    assert marker not in result.stdout
    assert "your home directory" in one_error(result.stderr)
    assert any(
        "the project directory exposes your home" in w for w in warned(check_json(anyone, home))
    )
    unsafe = anyone.run(
        "--unsafe", "exec", "sh", "-c", f'ls -A "{anyone.aishell_home}" | wc -l', cwd=home
    )
    assert unsafe.returncode == 0, unsafe.stderr
    assert "--unsafe" in unsafe.stderr
    assert unsafe.stdout.strip() == "0"  # the approvals and logins are out of reach


def test_a_launch_in_home_asks_on_a_terminal(anyone: Aishell, host_tmux: HostTmux) -> None:
    host_tmux.start("h", shell_line(anyone, "exec", "echo", "RAN-IN-HOME", cwd=anyone.home))
    screen = host_tmux.wait_for("h", lambda s: "Go on anyway?" in s)
    assert "your home directory" in screen
    host_tmux.keys("h", "n", "Enter")
    screen = host_tmux.wait_for("h", lambda s: "HOST-RC=" in s)
    assert "Aborted." in screen and "HOST-RC=1" in screen
    assert "RAN-IN-HOME" not in screen.split("Go on anyway?")[1]


CREDENTIALS = {
    ".aws/credentials": "[default]\naws_secret_access_key = x\n",
    ".git-credentials": "https://u:token@example.com\n",
    ".config/gcloud/credentials.db": "sqlite",
    ".config/gcloud/legacy_credentials/me@example.com/adc.json": "{}",
    ".config/gh/hosts.yml": "github.com:\n  oauth_token: gho_x\n",
    "ci/.docker/config.json": '{"auths": {"r": {"auth": "dTpw"}}}',
    "deploy/my-project-123-0a1b2c3d4e5f.json": '{"type": "service_account", "private_key": "k"}',
}


def test_check_reports_the_credentials_detection_missed(anyone: Aishell, project: Path) -> None:
    for rel, text in CREDENTIALS.items():
        anyone.write(project / rel, text)
    report = check_json(anyone, project)
    found = {f["path"] for f in report["sensitive_files"]["findings"]}  # type: ignore[index]
    assert set(CREDENTIALS) <= found, found
    assert report["sensitive_files"]["high"] >= len(CREDENTIALS)  # type: ignore[index]
