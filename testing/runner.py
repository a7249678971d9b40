"""Run the aishell CLI as a real process, as root or as a non-root user."""

from __future__ import annotations

import itertools
import os
import pwd
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

NON_ROOT_USER = "aishell-it"
_counter = itertools.count()


def ensure_non_root_user() -> int:
    """Create the non-root test user (docker group member) if needed; return its UID."""
    try:
        entry = pwd.getpwnam(NON_ROOT_USER)
    except KeyError:
        # Parallel test workers may race here: whoever loses finds the user made.
        subprocess.run(
            ["useradd", "-m", "-s", "/bin/bash", NON_ROOT_USER], check=False, capture_output=True
        )
        entry = pwd.getpwnam(NON_ROOT_USER)
    subprocess.run(["groupadd", "-f", "docker"], check=True)
    subprocess.run(["usermod", "-aG", "docker", NON_ROOT_USER], check=True)
    for sock in ("/var/run/docker.sock", "/run/docker.sock"):
        if os.path.exists(sock):
            subprocess.run(["chgrp", "docker", sock], check=False)
            subprocess.run(["chmod", "g+rw", sock], check=False)
    os.chmod(entry.pw_dir, 0o755)
    return entry.pw_uid


CACHE_REPO = "aishell-it-cache"  # images kept between test runs (see release_holds)


class DropTo(TypedDict, total=False):
    """The `subprocess` arguments that run a child as another user."""

    user: int
    group: int
    extra_groups: list[int]


CREATED: list[Aishell] = []  # every home this process made: released when the tests end


@dataclass
class Aishell:
    home: Path
    aishell_home: Path
    user: str | None  # None: the current user (root in CI)
    src: Path
    # e.g. AISHELL_ENGINE=podman and CONTAINERS_CONF: added to every run's environment
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def uid(self) -> int:
        return pwd.getpwnam(self.user).pw_uid if self.user else os.getuid()

    @property
    def gid(self) -> int:
        return pwd.getpwnam(self.user).pw_gid if self.user else os.getgid()

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "AISHELL_HOME": str(self.aishell_home),
            "USER": self.user or "root",
            "PYTHONPATH": str(self.src),
            "LANG": "C.UTF-8",
            "CI": "1",
            # A home's egress proxy stops after this long without a session (test
            # homes outlive their tests).
            "AISHELL_PROXY_IDLE": "120",
        }
        env.update(self.extra_env)
        if extra:
            env.update(extra)
        return env

    def command(self, *args: str) -> list[str]:
        python = sys.executable if self.user is None else "/usr/bin/python3"
        return [python, "-m", "aishell", *args]

    def process_kwargs(self) -> DropTo:
        """Drop to the non-root user in the child (no runuser/env: nothing leaks into argv)."""
        if self.user is None:
            return {}
        import grp

        groups = [g.gr_gid for g in grp.getgrall() if self.user in g.gr_mem]
        return {"user": self.uid, "group": self.gid, "extra_groups": groups}

    def run(
        self,
        *args: str,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        input: str | None = None,
        timeout: float = 600,
    ) -> subprocess.CompletedProcess[str]:
        full_env = self.env(env)
        return subprocess.run(
            self.command(*args),
            cwd=cwd or self.home,
            env=full_env,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=None if input is not None else subprocess.DEVNULL,
            check=False,
            **self.process_kwargs(),
        )

    def popen(
        self, *args: str, cwd: Path, env: dict[str, str] | None = None
    ) -> subprocess.Popen[str]:
        full_env = self.env(env)
        return subprocess.Popen(
            self.command(*args),
            cwd=cwd,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            **self.process_kwargs(),
        )

    def engine_cli(
        self, *args: str, timeout: float = 120, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run the engine CLI aishell uses (AISHELL_ENGINE, else docker) as this user,
        with this user's environment (rootless podman: their own storage)."""
        binary = self.extra_env.get("AISHELL_ENGINE", "docker")
        return subprocess.run(
            [binary, *args],
            cwd="/",
            env=self.env(),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=None if input is not None else subprocess.DEVNULL,
            **self.process_kwargs(),
        )

    def hold(self, role: str = "foundation") -> str:
        """This home's tag for one of its images (`aishell-home-<homeid>:<role>`, role
        foundation, base, ext-<projecthash>, proxy): homeid is a hash of the UID and
        the real path of the aishell home."""
        import hashlib

        real = os.path.realpath(self.aishell_home)
        home_id = hashlib.sha256(f"{self.uid}:{real}".encode()).hexdigest()[:12]
        return f"aishell-home-{home_id}:{role}"

    def __post_init__(self) -> None:
        CREATED.append(self)

    def release_holds(self, *, prune: bool = True, keep: bool = False) -> None:
        """Remove this home's image tags (what deleting the home leaves behind): an
        image no other tag holds is then deleted by the engine. For tests that make
        images no other home shares (`prune`: with their build cache). `keep`: first
        tag each image `aishell-it-cache:<id>`, so that the next test run finds it
        (one tag per image, however many homes held it)."""
        repo = self.hold("").rstrip(":")
        listed = self.engine_cli(
            "image", "ls", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}",
            "--filter", f"reference={repo}",
        )  # fmt: skip
        pairs = [line.split() for line in listed.stdout.splitlines() if len(line.split()) == 2]
        tags = [t for t, _ in pairs if t.removeprefix("localhost/").startswith(repo)]
        if keep:
            for image in sorted({i for t, i in pairs if t in tags}):
                self.engine_cli("tag", image, f"{CACHE_REPO}:{image.removeprefix('sha256:')[:12]}")
        if tags:
            self.engine_cli("rmi", *([] if prune else ["--no-prune"]), *tags)

    def sibling(self, home: Path) -> Aishell:
        """Another aishell home for the same user, with the same global config."""
        other = Aishell(
            home=home,
            aishell_home=home / ".aishell",
            user=self.user,
            src=self.src,
            extra_env=dict(self.extra_env),
        )
        other.aishell_home.mkdir(parents=True)
        (other.aishell_home / "config.yaml").write_text(
            (self.aishell_home / "config.yaml").read_text()
        )
        return other

    def new_project(self, name: str = "proj") -> Path:
        path = self.home / "projects" / f"{name}-{next(_counter)}"
        path.mkdir(parents=True)
        subprocess.run(["git", "init", "-q", str(path)], check=True)
        if self.user:
            subprocess.run(
                ["chown", "-R", f"{self.uid}:{self.gid}", str(self.home / "projects")], check=True
            )
        return path

    def write(self, path: Path, text: str, *, trust: bool = True) -> None:
        """Write a file as this user. A file in a project's aishell config directory
        (`.aishell/`, `.sandbox/`) is then approved as the user would approve it
        (`aishell trust --yes`; see `trust`), unless `trust=False` (a test that plays
        the agent, or checks what an unapproved config does)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if self.user:
            subprocess.run(["chown", "-R", f"{self.uid}:{self.gid}", str(self.home)], check=True)
        root = self.config_project(path)
        if trust and root is not None:
            # A config that does not load is not approved: the test expects its error.
            self.run("trust", "--yes", cwd=root)

    def config_project(self, path: Path) -> Path | None:
        """The project whose aishell config directory holds `path`, if any."""
        for parent in path.parents:
            if parent.name in (".aishell", ".sandbox") and parent != self.aishell_home:
                return parent.parent
        return None

    def trust(self, project: Path) -> subprocess.CompletedProcess[str]:
        """Approve the project's aishell config as its user: `aishell trust --yes` (the
        one way; there is no variable that skips the check, see docs/trust.md)."""
        result = self.run("trust", "--yes", cwd=project)
        assert result.returncode == 0, result.stderr
        return result


def shell_line(ai: Aishell, *args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    """A shell command line that runs aishell as `ai`'s user in `cwd` (for a tmux pane).
    The environment is passed explicitly: only use it with values that are not secrets."""
    import shlex

    full = ai.env(env)
    full.pop("CI", None)  # a person at a terminal
    full["TERM"] = "xterm-256color"
    inner = " ".join(
        [
            "cd",
            shlex.quote(str(cwd)),
            "&&",
            "env",
            "-i",
            *[shlex.quote(f"{k}={v}") for k, v in full.items()],
            *[shlex.quote(a) for a in ai.command(*args)],
        ]
    )
    if ai.user is None:
        return inner
    return f"runuser -u {ai.user} -- sh -c {shlex.quote(inner)}"


class HostTmux:
    """A private host tmux server: panes a test can type into and read, like a person."""

    def __init__(self, name: str) -> None:
        self.socket = name

    def tmux(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=False
        )

    def start(self, session: str, command: str) -> None:
        # The pane survives the command so the final output and status can be read.
        line = f"{command}; echo HOST-RC=$?; sleep 3600"
        result = self.tmux("new-session", "-d", "-s", session, "-x", "150", "-y", "40", line)
        assert result.returncode == 0, result.stderr

    def keys(self, session: str, *keys: str) -> None:
        self.tmux("send-keys", "-t", session, *keys)

    def screen(self, session: str) -> str:
        return self.tmux("capture-pane", "-p", "-J", "-S", "-200", "-t", session).stdout

    def wait_for(
        self, session: str, predicate: Callable[[str], object], timeout: float = 60
    ) -> str:
        import time

        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.screen(session)
            if predicate(text):
                return text
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting; the screen shows:\n{text}")

    def kill(self) -> None:
        self.tmux("kill-server")
