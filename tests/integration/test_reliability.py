"""Reliability on shared engines, against faults and hostile input (issue 15).

Each test plays what went wrong: a hung, garbled or failing engine CLI (fake engine
binaries, `testing/fake_engines.py`), a prune racing a launch, another aishell home
pruning, a launch started twice under one name, a damaged state file, a read-only
or full aishell home (a small tmpfs), an `update` killed mid-install. Then it does
what the host does next (the next aishell command, another home's launch) and
observes the host and the engine.

The engine is shared with other test runs: these tests damage, race and remove only
volumes of their own (`testing/volumes.clone_active_volume`), and clean up what they
made.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from testing import fake_engines
from testing import volumes as vols
from testing.runner import Aishell

NOT_ANSWERING = "did not answer within"


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("Error:")]


def assert_clean_error(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Exit status 1, exactly one `Error:` line (returned), no traceback, nothing
    'unexpected'; each of `needles` in that line."""
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "Traceback" not in out and "unexpected error" not in out, out
    [line] = error_lines(result.stderr)
    for needle in needles:
        assert needle in line, out
    return line


@pytest.fixture
def fake_dir(shared_root: Path) -> Iterator[Path]:
    """A directory for a fake engine binary that every test user can run."""
    path = shared_root / f"fake-engine-{os.urandom(4).hex()}"
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def home_of(root_user: Aishell, tmp_path: Path) -> Iterator[list[Aishell]]:
    """Sibling homes made by a test (their volumes of their own removed after)."""
    made: list[Aishell] = []
    yield made
    for ai in made:
        with contextlib.suppress(Exception):  # (the state may be what a test damaged)
            data = vols.state_of(ai)
            own = [v for v in data.get("volumes", {}) if re.search(r"-\d{8}t\d{6}-", v)]
            vols.remove(ai, *own)
        with contextlib.suppress(Exception):
            ai.engine_cli("volume", "rm", *[
                v for v in vols.names(ai) if v.startswith(f"aishell-hold-{vols.home_id(ai)}-")
            ])  # fmt: skip
        shutil.rmtree(ai.home, ignore_errors=True)


def new_home(base: Aishell, made: list[Aishell], name: str) -> Aishell:
    """A fresh aishell home for `base`'s user with `base`'s global config, set up with
    OpenCode (the foundation and the agents are those the session's homes share)."""
    home = base.home.parent / f"{base.home.name}-{name}-{os.urandom(3).hex()}"
    ai = Aishell(
        home=home,
        aishell_home=home / ".aishell",
        user=base.user,
        src=base.src,
        extra_env=dict(base.extra_env),
    )
    ai.write(ai.aishell_home / "config.yaml", (base.aishell_home / "config.yaml").read_text())
    made.append(ai)
    result = ai.run("setup", "--with-opencode", timeout=1500)
    assert result.returncode == 0, result.stderr
    return ai


# ------------------------------------------------------- a hung, garbled, failing engine

# Every command that talks to the engine; `check` and `info` report instead of failing.
ENGINE_COMMANDS = [
    ("exec", "true"),
    ("--detach", "--name", "bg", "shell"),
    ("ps",),
    ("setup", "--with-opencode"),
    ("update",),
    ("volumes", "list"),
    ("volumes", "prune", "--yes"),
    ("images", "list"),
]
# These report what they can and say what they could not (`check` fails: the engine
# check is critical).
REPORTING = [("check",), ("check", "--json"), ("info",), ("info", "--json"), ("worktrees",)]
MODES = {
    "hang": (fake_engines.HANG, NOT_ANSWERING),
    "garbage": (fake_engines.GARBAGE, ""),
    "fail": (fake_engines.FAIL, ""),
}


@pytest.mark.parametrize("mode", sorted(MODES))
def test_a_broken_engine_binary_gives_one_clean_error(
    anyone: Aishell, fake_dir: Path, mode: str
) -> None:
    """The engine CLI hangs (aishell waited forever; a detached launch even printed
    "Started"), prints bytes that are not UTF-8 ("unexpected error: UnicodeDecodeError"),
    or fails: every command ends with one clean error (the subprocess timeout bounds
    how long that may take)."""
    body, needle = MODES[mode]
    fake = fake_engines.write_engine(fake_dir, body)
    env = {
        "AISHELL_ENGINE": str(fake),
        "AISHELL_ENGINE_TIMEOUT": "3",
        "DOCKER_HOST": "tcp://127.0.0.1:9",  # no API socket: the CLI is all there is
    }
    project = anyone.new_project("broken")
    for args in ENGINE_COMMANDS:
        result = anyone.run(*args, cwd=project, env=env, timeout=120)
        assert_clean_error(result, needle)
        assert "Started" not in result.stderr, (args, result.stderr)
    for args in REPORTING:
        result = anyone.run(*args, cwd=project, env=env, timeout=120)
        out = result.stdout + result.stderr
        assert result.returncode in (0, 1), out
        assert "Traceback" not in out and "unexpected error" not in out, out
        if args[0] == "check":
            assert result.returncode == 1, out  # the engine check is critical
        if mode == "hang":
            assert NOT_ANSWERING in out, out


class HungSocket:
    """A unix socket that accepts connections and never answers (a hung daemon)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        os.chmod(path, 0o777)
        self.server.listen(16)
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self.server.accept()
                self.held.append(conn)

    def close(self) -> None:
        self.server.close()
        for conn in self.held:
            conn.close()


def test_a_hung_engine_api_socket_is_a_clean_error(anyone: Aishell, fake_dir: Path) -> None:
    """Launches ask the engine's API socket directly: a daemon that accepts and never
    answers there is one clean error too, not a wait for ever."""
    fake = fake_engines.write_engine(fake_dir, fake_engines.HANG)
    hung = HungSocket(fake_dir / "engine.sock")
    try:
        env = {
            "AISHELL_ENGINE": str(fake),
            "AISHELL_ENGINE_TIMEOUT": "3",
            "DOCKER_HOST": f"unix://{hung.path}",
        }
        result = anyone.run("exec", "true", cwd=anyone.new_project("hung"), env=env, timeout=120)
        assert_clean_error(result, NOT_ANSWERING)
    finally:
        hung.close()


def test_a_bad_timeout_setting_is_a_clean_error(root_user: Aishell) -> None:
    result = root_user.run("ps", env={"AISHELL_ENGINE_TIMEOUT": "soon"})
    assert_clean_error(result, "AISHELL_ENGINE_TIMEOUT", "not a number of seconds")


def test_a_detached_launch_reports_only_what_it_saw_start(anyone: Aishell, fake_dir: Path) -> None:
    """The engine says yes to `run` but starts nothing (or hangs on it): never
    "Started ... in the background."."""
    project = anyone.new_project("liar")
    liar = fake_engines.wrapper(fake_dir, on_run="echo 0123456789abcdef; exit 0\n")
    result = anyone.run(
        "--detach", "--name", "liar", "shell", cwd=project, env={"AISHELL_ENGINE": str(liar)}
    )
    assert_clean_error(result, "ended right after it started")
    assert "Started" not in result.stderr

    stuck = fake_engines.wrapper(fake_dir / "stuck", on_run="exec sleep 3600\n")
    env = {"AISHELL_ENGINE": str(stuck), "AISHELL_ENGINE_TIMEOUT": "5"}
    result = anyone.run("--detach", "--name", "stuck", "shell", cwd=project, env=env, timeout=120)
    assert_clean_error(result, NOT_ANSWERING)
    assert "Started" not in result.stderr


def test_racing_the_same_name_one_wins_the_others_say_so(anyone: Aishell, fake_dir: Path) -> None:
    """Several launches of one --name at once: one container; every other launch says
    the name is taken, not "See 'docker run --help'". (The engine CLI makes the
    launches meet at `run`, after each found no container of that name.)"""
    project = anyone.new_project("race-name")
    name = "dup" + os.urandom(3).hex()
    count = 4
    barrier = fake_dir / "barrier"
    barrier.mkdir(parents=True)
    os.chmod(barrier, 0o777)
    meet = fake_engines.wrapper(
        fake_dir,
        f'touch {barrier}/$$; i=0\nwhile [ "$(ls {barrier} | wc -l)" -lt {count} ] && '
        f"[ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done",
    )
    env = {"AISHELL_ENGINE": str(meet)}
    procs = [
        anyone.popen("--detach", "--name", name, "shell", cwd=project, env=env)
        for _ in range(count)
    ]
    try:
        outs = [p.communicate(timeout=300) for p in procs]
        assert len(list(barrier.iterdir())) == count  # all four did reach `run`
        codes = [p.returncode for p in procs]
        assert codes.count(0) == 1, outs
        for proc, (_, err) in zip(procs, outs, strict=True):
            if proc.returncode == 0:
                assert "Started" in err
                continue
            assert proc.returncode == 1, err
            assert "--help" not in err and "Traceback" not in err, err
            [line] = error_lines(err)
            assert "already running or being started" in line, err
        listed = anyone.engine_cli("ps", "-a", "--format", "{{.Names}}").stdout.split()
        assert len([n for n in listed if n.endswith(f"-{name}")]) == 1
    finally:
        for n in anyone.engine_cli("ps", "-aq", "--filter", f"name={name}").stdout.split():
            anyone.engine_cli("rm", "-f", n)


# ------------------------------------------------------------------ volumes and prune

READY = "test -f /tools/.aishell-ready.json && opencode --version"


@pytest.fixture
def own_volume(anyone: Aishell, home_of: list[Aishell]) -> Iterator[tuple[Aishell, str]]:
    """A fresh home of `anyone`'s user whose active harness volume is its own (a copy
    of the shared one): the test may remove or race it."""
    ai = new_home(anyone, home_of, "own")
    volume = vols.clone_active_volume(ai)
    yield ai, volume
    vols.remove(ai, volume)


@pytest.mark.targets("docker", "podman")
def test_a_prune_racing_a_launch_never_starts_an_empty_tools(
    own_volume: tuple[Aishell, str], fake_dir: Path
) -> None:
    """The volume goes (as an engine-wide prune took it) between aishell's checks and the
    engine's `run`, which then makes it again, empty and unlabelled. The sandbox used to
    start with an empty /tools; `volumes list` said the active volume "does not exist".
    Now the sandbox refuses to start, `volumes list` shows the volume as unlabelled,
    and the next launch replaces it and installs the agents again."""
    ai, volume = own_volume
    kind = ai.extra_env.get("AISHELL_ENGINE", "docker")
    real = fake_engines.real_engine(kind)
    racing = fake_engines.wrapper(
        fake_dir,
        # only the sandbox's own run (the fill's run is labelled aishell.kind=fill)
        f'case " $* " in *aishell.kind=exec*) {real} volume rm {volume} >/dev/null;; esac',
        kind=kind,
    )
    project = ai.new_project("race")
    result = ai.run("exec", "sh", "-c", f"echo RAN; {READY}", cwd=project,
                    env={"AISHELL_ENGINE": str(racing)})  # fmt: skip
    assert result.returncode == 125, result.stdout + result.stderr
    assert "RAN" not in result.stdout
    assert "/tools is empty or unfinished" in result.stderr
    assert vols.labels(ai, volume) == {}  # the engine made it again, without labels

    listed = json.loads(ai.run("volumes", "list", "--json", cwd=project).stdout)
    [row] = [v for v in listed if v["name"] == volume]
    assert row["status"] == "active" and row["labelled"] is False
    text = ai.run("volumes", "list", cwd=project)
    assert "does not exist" not in text.stderr
    assert f"{volume} has no aishell labels" in text.stderr

    repaired = ai.run("exec", "sh", "-c", READY, cwd=project, timeout=1500)
    assert repaired.returncode == 0, repaired.stderr
    assert re.fullmatch(r"\d+\.\d+\.\d+\s*", repaired.stdout), repaired.stdout
    assert f"Removed {volume}" in repaired.stderr and "Installed OpenCode" in repaired.stderr
    assert (vols.labels(ai, volume) or {}).get("aishell.kind") == "harness"


@pytest.mark.targets("docker")
def test_another_homes_prune_leaves_my_active_volume(
    own_volume: tuple[Aishell, str], anyone: Aishell
) -> None:
    """`volumes prune` was engine-wide: it removed every harness volume not mounted at
    that moment, other homes' and users' active ones included. Home A's volume is its
    own; home B (root, or another user) prunes, named and unnamed, also while A
    launches again and again: A's volume stays, and B says who holds it."""
    a, volume = own_volume
    project = a.new_project("held")
    first = a.run("exec", "sh", "-c", READY, cwd=project)
    assert first.returncode == 0, first.stderr
    b = anyone
    for user in (b, a.sibling(a.home.parent / f"{a.home.name}-b")):
        named = user.run("volumes", "prune", "--yes", "--json", volume)
        data = json.loads(named.stdout)
        assert data["removed"] == [], named.stderr
        [skip] = data["skipped"]
        assert "held by another aishell home" in skip["reason"]
        assert os.path.realpath(a.aishell_home) in skip["reason"]
        listed = json.loads(user.run("volumes", "list", "--json").stdout)
        [row] = [v for v in listed if v["name"] == volume]
        assert row["held_by"] and not row["held_by"][0]["this_home"]
        if user is not b:
            shutil.rmtree(user.home, ignore_errors=True)

    stop = threading.Event()
    pruned: list[subprocess.CompletedProcess[str]] = []

    def prune_again_and_again() -> None:
        while not stop.is_set():
            pruned.append(b.run("volumes", "prune", "--yes", "--json"))

    pruner = threading.Thread(target=prune_again_and_again)
    pruner.start()
    try:
        for _ in range(4):
            again = a.run("exec", "sh", "-c", READY, cwd=project)
            assert again.returncode == 0, again.stderr
            assert "Installed" not in again.stderr  # nothing was taken from under A
    finally:
        stop.set()
        pruner.join()
    for result in pruned:
        assert result.returncode == 0, result.stderr
        assert volume not in json.loads(result.stdout)["removed"]
    assert (vols.labels(a, volume) or {}).get("aishell.kind") == "harness"


# For setup, a selection no other test uses at the same time (each fills a volume of
# its own name, and tests on one engine run in parallel): candidates per signal and
# user, disjoint; the first whose volume does not exist yet (none is left behind).
_EXTRA = ("openspec", "pi", "gemini", "codex", "claude")
_COMBOS = [(a,) for a in _EXTRA] + [
    (a, b) for i, a in enumerate(_EXTRA) for b in _EXTRA[i + 1 :]
]  # 15 selections
_KEYS = [
    (sig, root) for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT) for root in (True, False)
]


def stopped_command(command: str, sig: signal.Signals, ai: Aishell) -> tuple[str, ...]:
    if command == "update":
        return ("update",)
    from aishell.engine.volumes import volume_name

    index = _KEYS.index((sig, ai.user is None))
    existing = vols.names(ai)
    for extra in _COMBOS[index :: len(_KEYS)]:
        selection = dict.fromkeys(("opencode", *extra), "latest")
        if volume_name(selection) not in existing:
            return ("setup", *(f"--with-{tool}" for tool in sorted(selection)))
    raise AssertionError("every candidate selection already has a volume on this engine")


@pytest.mark.targets("docker", "podman")
@pytest.mark.parametrize("command", ["setup", "update"])
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_a_command_stopped_mid_fill_leaves_nothing(
    anyone: Aishell, home_of: list[Aishell], sig: signal.Signals, command: str
) -> None:
    """An update (or setup) interrupted while it installs used to leave its fill
    container running and the half-made volume behind (~760 MB each). Now its fill
    container ends with it (even on SIGKILL), and what it made is gone: at once for
    SIGINT/SIGTERM, after the next aishell command for SIGKILL."""
    ai = new_home(anyone, home_of, "kill")
    if command == "update":
        vols.pretend_a_release(ai)  # (an update with nothing new fills nothing)
    before = vols.names(ai)
    proc = ai.popen(*stopped_command(command, sig, ai), cwd=ai.home)
    fill = _wait_for_fill(ai, proc)
    os.kill(proc.pid, sig)
    _, err = proc.communicate(timeout=300)
    assert "Traceback" not in err, err
    if sig != signal.SIGKILL:
        assert proc.returncode == 128 + sig, err
    # The fill container ends by itself: its aishell is gone (SIGKILL) or removed it.
    _wait_until(lambda: fill not in _containers(ai), f"{fill} still exists")
    if sig == signal.SIGKILL:
        assert vols.pending(ai), "the killed update left no journal"
        nxt = ai.run("volumes", "list", cwd=ai.home)
        assert nxt.returncode == 0, nxt.stderr
        assert "Removed what an interrupted aishell left" in nxt.stderr
    made = vols.of_home(ai, vols.names(ai) - before)
    assert made == set(), made
    assert vols.pending(ai) == []
    assert fill not in _containers(ai)


def _containers(ai: Aishell) -> list[str]:
    return ai.engine_cli("ps", "-a", "--format", "{{.Names}}").stdout.split()


def _wait_until(condition: object, message: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, message
        time.sleep(0.2)


def _wait_for_fill(ai: Aishell, proc: subprocess.Popen[str]) -> str:
    """The name of the fill container `proc` (an `aishell update`) runs, once it runs."""
    found: list[str] = []

    def running() -> bool:
        assert proc.poll() is None, proc.communicate()
        listed = ai.engine_cli(
            "ps", "--filter", "label=aishell.kind=fill",
            "--filter", f"label=aishell.home={vols.home_id(ai)}", "--format", "{{.Names}}",
        ).stdout.split()  # fmt: skip
        found.extend(listed)
        return bool(listed)

    _wait_until(running, "the update never started its fill", timeout=600)
    return found[0]


def test_a_fill_killed_from_outside_is_not_blamed_on_the_network(
    anyone: Aishell, home_of: list[Aishell]
) -> None:
    ai = new_home(anyone, home_of, "oom")
    vols.pretend_a_release(ai)  # (an update with nothing new fills nothing)
    proc = ai.popen("update", cwd=ai.home)
    fill = _wait_for_fill(ai, proc)
    assert ai.engine_cli("kill", fill).returncode == 0  # SIGKILL, as the OOM killer does
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err
    [line] = error_lines(err)
    assert "stopped from outside (SIGKILL, exit 137)" in line, err
    assert "package versions" not in line and "network" not in line, err
    assert "nothing changed" in line


def test_a_waiting_launch_does_not_claim_the_install(
    own_volume: tuple[Aishell, str],
) -> None:
    """Two launches find the volume unfilled: one installs; the other waits and used to
    print "Installing OpenCode: done" as if it had."""
    ai, volume = own_volume
    data = vols.state_of(ai)
    data["volumes"].pop(volume)  # not recorded as filled: both launches fill
    vols.write_state(ai, data)
    wiped = ai.engine_cli(
        "run", "--rm", "--label", "aishell.test=1", "--entrypoint", "rm", "-v",
        f"{volume}:/tools", ai.hold("foundation"), "-f", "/tools/.aishell-ready.json",
    )  # fmt: skip
    assert wiped.returncode == 0, wiped.stderr
    project = ai.new_project("wait")
    procs = [ai.popen("exec", "sh", "-c", READY, cwd=project) for _ in range(2)]
    outs = [p.communicate(timeout=1500) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    installer = [err for _, err in outs if "Installed OpenCode" in err]
    waiter = [err for _, err in outs if "Installed OpenCode" not in err]
    assert len(installer) == 1 and len(waiter) == 1, outs
    assert "Installing OpenCode: done" not in waiter[0], waiter[0]
    assert "installed by another aishell" in waiter[0] or "already installed" in waiter[0]


# ------------------------------------------------------ the aishell home: damage, space


def _mount_tmpfs(path: Path, size: str, owner: Aishell) -> None:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
                   check=True)  # fmt: skip
    os.chown(path, owner.uid, owner.gid)


def _remount(path: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(path)], check=True)


def _fill_up(path: Path) -> None:
    """Fill the file system of `path` to the last byte."""
    for name, chunk in (("filler", 4096), ("filler-tail", 1)):
        with contextlib.suppress(OSError), open(path / name, "wb", buffering=0) as fh:
            while True:
                fh.write(b"\0" * chunk)


@pytest.fixture
def tmpfs_home(anyone: Aishell, shared_root: Path) -> Iterator[Aishell]:
    """A fresh aishell home of `anyone`'s user on a small tmpfs of its own (1 MiB),
    holding the session's global config."""
    home = shared_root / f"tmpfs-home-{os.urandom(4).hex()}"
    home.mkdir()
    os.chown(home, anyone.uid, anyone.gid)
    ai = Aishell(
        home=home,
        aishell_home=home / ".aishell",
        user=anyone.user,
        src=anyone.src,
        extra_env=dict(anyone.extra_env),
    )
    _mount_tmpfs(ai.aishell_home, "1m", ai)
    ai.write(ai.aishell_home / "config.yaml", (anyone.aishell_home / "config.yaml").read_text())
    yield ai
    with contextlib.suppress(Exception):
        data = vols.state_of(ai)
        vols.remove(ai, *[v for v in data.get("volumes", {}) if re.search(r"-\d{8}t", v)])
    ai.engine_cli("volume", "rm", *[
        v for v in vols.names(ai) if v.startswith(f"aishell-hold-{vols.home_id(ai)}-")
    ])  # fmt: skip
    ai.release_holds(prune=False)
    subprocess.run(["umount", str(ai.aishell_home)], check=False)
    shutil.rmtree(home, ignore_errors=True)


def _traces(ai: Aishell) -> dict[str, list[str]]:
    """What this home has on the engine: image tags, holds, fill containers."""
    home = vols.home_id(ai)
    tags = ai.engine_cli(
        "image", "ls", "--format", "{{.Repository}}:{{.Tag}}",
        "--filter", f"reference=aishell-home-{home}",
    ).stdout.split()  # fmt: skip
    return {
        "tags": [t for t in tags if f"aishell-home-{home}" in t],
        "holds": sorted(v for v in vols.names(ai) if v.startswith(f"aishell-hold-{home}-")),
        "fills": ai.engine_cli(
            "ps", "-a", "--filter", f"label=aishell.home={home}", "--format", "{{.Names}}"
        ).stdout.split(),
    }


@pytest.mark.parametrize("problem", ["read-only", "full"])
def test_setup_in_a_read_only_or_full_home_says_so_and_makes_nothing(
    tmpfs_home: Aishell, problem: str
) -> None:
    """Setup filled the volume, then failed to save its state: "unexpected error", and
    the volume stayed. Now it fails first, with the real cause, and makes nothing."""
    ai = tmpfs_home
    before = vols.names(ai)
    if problem == "read-only":
        _remount(ai.aishell_home, "ro")
    else:
        _fill_up(ai.aishell_home)
    result = ai.run("setup", "--with-opencode", "--with-openspec", timeout=900)
    cause = "Read-only file system" if problem == "read-only" else "No space left on device"
    assert_clean_error(result, cause, str(ai.aishell_home))
    traces = _traces(ai)
    assert traces == {"tags": [], "holds": [], "fills": []}, traces
    assert vols.of_home(ai, vols.names(ai) - before) == set()
    assert not (ai.aishell_home / "state.json").exists()


def test_a_read_only_home_still_runs_what_it_set_up(tmpfs_home: Aishell) -> None:
    ai = tmpfs_home
    assert ai.run("setup", "--with-opencode", timeout=900).returncode == 0
    project = ai.new_project("ro")
    _remount(ai.aishell_home, "ro")
    ran = ai.run("exec", "sh", "-c", READY, cwd=project)
    assert ran.returncode == 0, ran.stderr
    again = ai.run("setup", "--with-opencode", timeout=900)
    assert_clean_error(again, "Read-only file system")


def test_prune_in_a_full_home_removes_nothing_it_cannot_record(tmpfs_home: Aishell) -> None:
    """`volumes prune` removed the volume, then died writing the state file ("unexpected
    error"). Now it checks first and removes nothing."""
    ai = tmpfs_home
    assert ai.run("setup", "--with-opencode", timeout=900).returncode == 0
    shared = vols.state_of(ai)["harness_volume"]
    orphan = vols.clone_active_volume(ai)  # recorded in this home's state...
    data = vols.state_of(ai)
    data["harness_volume"] = shared  # ...and no longer the one it uses
    vols.write_state(ai, data)
    _fill_up(ai.aishell_home)
    result = ai.run("volumes", "prune", "--yes", orphan)
    assert_clean_error(result, "No space left on device")
    assert vols.labels(ai, orphan) is not None  # still there, still recorded
    for name in ("filler", "filler-tail"):
        (ai.aishell_home / name).unlink()
    done = ai.run("volumes", "prune", "--yes", orphan)
    assert done.returncode == 0, done.stderr
    assert f"Removed {orphan}" in done.stdout
    assert vols.labels(ai, orphan) is None
    assert orphan not in vols.state_of(ai)["volumes"]


def _damage(good: dict[str, object], variant: str) -> str:
    tools = dict(good["tools"])  # type: ignore[call-overload]
    variants: dict[str, object] = {
        "harness-volume-number": {**good, "harness_volume": 123},
        "unknown-agent": {**good, "tools": {**tools, "nosuchagent": "latest"}},
        "bad-pin": {**good, "tools": {"opencode": "1.0; touch /tmp/pwned"}},
        "tools-string": {**good, "tools": "opencode"},
        "volumes-list": {**good, "volumes": []},
        "record-types": {**good, "volumes": {str(good["harness_volume"]): {"created_at": 5}}},
        "gitleaks-string": {**good, "gitleaks": "yes"},
        "top-level-array": [good],
    }
    if variant == "not-json":
        return '{"tools": {"opencode": "latest"},'
    if variant == "empty":
        return ""
    return json.dumps(variants[variant])


DAMAGE = [
    "not-json", "empty", "harness-volume-number", "unknown-agent", "bad-pin",
    "tools-string", "volumes-list", "record-types", "gitleaks-string", "top-level-array",
]  # fmt: skip


@pytest.mark.parametrize("variant", DAMAGE)
def test_a_damaged_state_is_repaired_by_the_command_the_error_names(
    anyone: Aishell, home_of: list[Aishell], variant: str
) -> None:
    """Every state error said "run 'aishell setup' again to rewrite it", but setup failed
    with the same error and left the file; wrong types were accepted (a volume named
    123 was made and filled); an unknown agent gave "unexpected error: KeyError"."""
    ai = new_home(anyone, home_of, "state")
    good = vols.state_of(ai)
    ai.write(ai.aishell_home / "state.json", _damage(good, variant))
    project = ai.new_project("damaged")
    broken = ai.run("exec", "true", cwd=project)
    line = assert_clean_error(broken, "state file", "damaged")
    found = re.search(r"run '(aishell [^']+)'", line)
    assert found, line
    command = found.group(1).replace("--with-<agent> ...", "--with-opencode").split()[1:]
    repaired = ai.run(*command, cwd=project, timeout=1500)
    assert repaired.returncode == 0, repaired.stderr
    assert "Traceback" not in repaired.stderr
    ran = ai.run("exec", "sh", "-c", READY, cwd=project)
    assert ran.returncode == 0, ran.stderr
    fixed = vols.state_of(ai)
    assert fixed["tools"] == {"opencode": "latest"}
    assert isinstance(fixed["harness_volume"], str) and fixed["harness_volume"]
    assert "123" not in vols.names(ai)


def test_update_repairs_a_damaged_state_too(anyone: Aishell, home_of: list[Aishell]) -> None:
    ai = new_home(anyone, home_of, "upd-state")
    good = vols.state_of(ai)
    ai.write(ai.aishell_home / "state.json", _damage(good, "harness-volume-number"))
    result = ai.run("update", timeout=1500)
    assert result.returncode == 0, result.stderr
    assert "damaged; 'aishell update' rewrites it without: harness_volume" in result.stderr
    # Nothing new was released: the volume setup filled stays, and the state names it.
    assert vols.state_of(ai)["harness_volume"] == good["harness_volume"]
    assert "123" not in vols.names(ai)


# ------------------------------------------------------------------ project discovery


def test_aishell_home_elsewhere_never_makes_home_the_project(
    anyone: Aishell, home_of: list[Aishell]
) -> None:
    """With AISHELL_HOME elsewhere, `~/.aishell` counted as a project's `.aishell/`: a repo
    under the home resolved to $HOME, mounted read-write (its `.ssh` readable from
    inside), and with global keys in `~/.aishell/config.yaml` every launch failed."""
    home = anyone.home.parent / f"{anyone.home.name}-elsewhere-{os.urandom(3).hex()}"
    ai = Aishell(
        home=home,
        aishell_home=home / "tools" / "aishell-home",
        user=anyone.user,
        src=anyone.src,
        extra_env=dict(anyone.extra_env),
    )
    home_of.append(ai)
    config = (anyone.aishell_home / "config.yaml").read_text()
    ai.write(ai.aishell_home / "config.yaml", config)
    assert ai.run("setup", "--with-opencode", timeout=1500).returncode == 0
    canary = f"CANARY-{os.urandom(6).hex()}"
    ai.write(home / ".ssh" / "id_rsa", canary + "\n")
    repo = home / "src" / "repo"
    ai.write(repo / "sub" / "file.txt", "x\n")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    if ai.user:
        subprocess.run(["chown", "-R", f"{ai.uid}:{ai.gid}", str(home)], check=True)
    probe = f"pwd; cat {home}/.ssh/id_rsa 2>/dev/null || echo NO-KEY"
    for global_keys in (False, True):  # ~/.aishell as an old default home leaves it
        ai.write(home / ".aishell" / "config.yaml", config if global_keys else "")
        result = ai.run("exec", "sh", "-c", probe, cwd=repo / "sub")
        assert result.returncode == 0, result.stderr
        assert canary not in result.stdout
        assert result.stdout.split() == [str(repo / "sub"), "NO-KEY"]
        info = json.loads(ai.run("info", "--json", cwd=repo / "sub").stdout)
        assert info["project"]["root"] == str(repo), info["project"]


def test_a_build_killed_mid_step_leaves_nothing(anyone: Aishell) -> None:
    """A launch SIGKILLed while its project image builds: the build used to go on
    without it (a silent step keeps the engine CLI alive) and leave the images of the
    steps it had committed, untagged. Now the build stops with it, and the next
    command removes those images."""
    project = anyone.new_project("killed-build")
    anyone.write(
        project / ".aishell" / "Dockerfile",
        f"FROM aishell:base\nRUN echo {os.urandom(6).hex()} > /one\nRUN echo two > /two\n"
        "RUN sleep 600\n",
    )
    proc = anyone.popen("exec", "true", cwd=project)
    committed: list[str] = []

    def two_steps_committed() -> bool:
        assert proc.poll() is None, proc.communicate()
        committed[:] = [
            json.loads(line)["name"]
            for path in vols.pending(anyone)
            for line in path.read_text().splitlines()
            if '"add": "image"' in line
        ]
        return len(committed) >= 2 and any(
            "sleep 600" in c
            for c in anyone.engine_cli(
                "ps", "--no-trunc", "--format", "{{.Command}}"
            ).stdout.splitlines()
        )

    _wait_until(two_steps_committed, "the build never reached its last step", timeout=600)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)

    def build_stopped() -> bool:
        listed = anyone.engine_cli("ps", "--no-trunc", "--format", "{{.Command}}").stdout
        return "sleep 600" not in listed

    _wait_until(build_stopped, "the build went on after aishell was killed")
    nxt = anyone.run("ps", cwd=project)
    assert nxt.returncode == 0, nxt.stderr
    assert "Removed what an interrupted aishell left" in nxt.stderr
    for image in committed:
        assert anyone.engine_cli("image", "inspect", image).returncode != 0, image
    assert vols.pending(anyone) == []
