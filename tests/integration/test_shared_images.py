"""Images shared by content, on a real engine (issue "Reliability").

Any number of aishell homes (one AISHELL_HOME of one user each), with any settings,
on one engine: each launch runs its own home's images, nothing is rebuilt or removed
under anyone, `aishell images prune` only takes what nothing holds, and builds that
fail or are interrupted leave no container and no image behind.

The engine is shared with other test runs: these tests only ever remove images,
tags and containers they made (`images prune` is always given the IDs to consider).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from testing.runner import Aishell

BASE_IMAGE = "debian:trixie-slim"


def docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=False)


def json_of(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)


def image_id(ref: str) -> str:
    return docker("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()


def short(ident: str) -> str:
    return ident.removeprefix("sha256:")[:12]


def new_home(base: Aishell, name: str, extra_config: str = "") -> Aishell:
    """A fresh aishell home for `base`'s user, with `base`'s global config (+ extra).
    Next to `base`'s home, not inside it: a directory holding `.aishell/` is a project."""
    home = base.home.parent / f"{base.home.name}-{name}-{os.urandom(3).hex()}"
    ai = Aishell(
        home=home,
        aishell_home=home / ".aishell",
        user=base.user,
        src=base.src,
        extra_env=dict(base.extra_env),
    )
    config = (base.aishell_home / "config.yaml").read_text() + extra_config
    ai.write(ai.aishell_home / "config.yaml", config)
    return ai


@pytest.fixture
def homes() -> Iterator[Callable[..., Aishell]]:
    """Make fresh homes; afterwards their image tags are removed (`release=True`, for
    homes whose images no other home shares: with their build layers)."""
    made: list[tuple[Aishell, bool]] = []

    def make(base: Aishell, name: str, extra_config: str = "", release: bool = False) -> Aishell:
        ai = new_home(base, name, extra_config)
        made.append((ai, release))
        return ai

    yield make
    for ai, release in made:
        ai.release_holds(prune=release)
        shutil.rmtree(ai.home, ignore_errors=True)


@pytest.fixture
def unique_bases() -> Iterator[tuple[str, str]]:
    """Two names of the Debian base image that no other home uses, so that a home
    configured with one of them (`base_image`) has a foundation of its own. Building
    it takes seconds: every step but the labels comes from the build cache."""
    stem = f"aishell-it-base-{os.urandom(4).hex()}"
    names = (f"{stem}:a", f"{stem}:b")
    for name in names:
        assert docker("tag", BASE_IMAGE, name).returncode == 0
    yield names
    docker("rmi", "--no-prune", *names)


def info(ai: Aishell, project: Path | None = None) -> dict[str, Any]:
    data: dict[str, Any] = json_of(ai.run("info", "--json", cwd=project or ai.home))
    return data


# -- two homes, different settings, one engine ------------------------------------------


class Pair:
    """A root home with gitleaks and a non-root user's home without, both set up."""

    def __init__(self, gl: Aishell, plain: Aishell, plain_setup: str) -> None:
        self.gl = gl
        self.plain = plain
        self.plain_setup = plain_setup  # stderr of the plain home's first setup
        self.gl_project = gl.new_project("gl")
        self.plain_project = plain.new_project("plain")


@pytest.fixture(scope="module")
def pair(root_user: Aishell, user: Aishell) -> Iterator[Pair]:
    gl = new_home(root_user, "gitleaks")
    plain = new_home(user, "plain")
    try:
        first = gl.run("setup", "--with-opencode", "--with-gitleaks", timeout=1800)
        assert first.returncode == 0, first.stderr
        second = plain.run("setup", "--with-opencode", timeout=1800)
        assert second.returncode == 0, second.stderr
        yield Pair(gl, plain, second.stderr)
    finally:
        for ai in (gl, plain):
            ai.release_holds(prune=False)  # keep the build cache for the next run
            shutil.rmtree(ai.home, ignore_errors=True)


def test_homes_with_different_settings_launch_alternately(pair: Pair, user: Aishell) -> None:
    """The attack of the issue: setting up and launching in one home never rebuilds,
    stales or strips the other's images."""
    gl, plain = pair.gl, pair.plain
    # The plain home has the settings of the session's own non-root home: it shares that
    # home's foundation instead of rebuilding it (and so replacing the gitleaks one).
    assert "Building" not in pair.plain_setup, pair.plain_setup
    assert info(plain)["images"]["foundation"]["id"] == info(user)["images"]["foundation"]["id"]

    ids: dict[str, set[str]] = {"gl": set(), "plain": set()}
    for _ in range(2):
        for name, ai, project in (
            ("gl", gl, pair.gl_project),
            ("plain", plain, pair.plain_project),
        ):
            ran = ai.run("exec", "true", cwd=project)
            assert ran.returncode == 0, ran.stderr
            assert "out of date" not in ran.stderr, ran.stderr
            assert "Building" not in ran.stderr, ran.stderr
            data = info(ai, project)
            assert data["images"]["foundation"]["current"] is True
            assert data["images"]["foundation"]["held"] is True
            ids[name].add(data["images"]["foundation"]["id"])
            report = json_of(ai.run("check", "--json", cwd=project))
            labels = [c["label"] for c in report["checks"] if c["status"] != "ok"]
            assert not [label for label in labels if "image" in label.lower()], labels

        scan = gl.run("gitleaks", "version", cwd=pair.gl_project)
        assert scan.returncode == 0, scan.stdout + scan.stderr
        missing = plain.run("exec", "gitleaks", "version", cwd=pair.plain_project)
        assert missing.returncode != 0, missing.stdout

        # Setting either home up again builds nothing and changes nothing for the other.
        again = plain.run("setup", "--with-opencode", timeout=900)
        assert again.returncode == 0, again.stderr
        assert "Building" not in again.stderr, again.stderr
        again = gl.run("setup", "--with-opencode", "--with-gitleaks", timeout=900)
        assert again.returncode == 0, again.stderr
        assert "Building" not in again.stderr, again.stderr

    assert len(ids["gl"]) == 1 and len(ids["plain"]) == 1, ids
    assert ids["gl"] != ids["plain"]
    # Each home holds its images with its own tags, and launches run them by ID.
    assert image_id(gl.hold("foundation")) in ids["gl"]
    assert image_id(plain.hold("foundation")) in ids["plain"]


def test_project_images_build_on_each_homes_own_base(pair: Pair) -> None:
    """`FROM aishell:base` in a project Dockerfile means this home's base."""
    gl, plain = pair.gl, pair.plain
    dockerfile = "FROM aishell:base\nRUN touch /ext-marker\n"
    for ai, project in ((gl, pair.gl_project), (plain, pair.plain_project)):
        ai.write(project / ".aishell" / "Dockerfile", dockerfile)
    for _ in range(2):
        ran = gl.run(
            "exec", "sh", "-c", "test -f /ext-marker && gitleaks version", cwd=pair.gl_project
        )
        assert ran.returncode == 0, ran.stdout + ran.stderr
        ran = plain.run(
            "exec",
            "sh",
            "-c",
            "test -f /ext-marker && ! command -v gitleaks",
            cwd=pair.plain_project,
        )
        assert ran.returncode == 0, ran.stdout + ran.stderr
    again = gl.run("exec", "true", cwd=pair.gl_project)
    assert "Building" not in again.stderr, again.stderr
    ext = info(gl, pair.gl_project)["images"]["extension"]
    assert ext["held"] is True and ext["current"] is True
    assert ext["tag"] == gl.hold(ext["tag"].rsplit(":", 1)[1])


def test_prune_never_takes_another_homes_images(pair: Pair) -> None:
    gl, plain = pair.gl, pair.plain
    ran = gl.run("exec", "true", cwd=pair.gl_project)  # right after the other home's launch
    assert ran.returncode == 0, ran.stderr
    stack = info(gl, pair.gl_project)["images"]
    theirs = [stack[tier]["id"] for tier in ("foundation", "base") if stack[tier]["id"]]
    if stack["extension"]["id"]:
        theirs.append(stack["extension"]["id"])

    listing = json_of(plain.run("images", "list", "--json"))
    rows = {row["id"]: row for row in listing}
    gl_home = gl.hold("x").split(":")[0].removeprefix("aishell-home-")
    for ident in theirs:
        assert ident in rows, sorted(rows)
        assert rows[ident]["prunable"] is False
        assert any(h["home"] == gl_home and not h["this_home"] for h in rows[ident]["holds"])
    mine = image_id(plain.hold("foundation"))
    assert rows[mine]["this_home"] is True

    pruned = plain.run("images", "prune", "--yes", *theirs, mine)
    assert pruned.returncode == 0, pruned.stderr
    assert "Removed" not in pruned.stdout, pruned.stdout
    for ident in theirs:
        assert f"Kept {short(ident)} (" in pruned.stdout
        assert image_id(ident), f"{ident} was removed"
    assert f"Kept {short(mine)} (held by this home" in pruned.stdout
    data = json_of(plain.run("images", "prune", "--json", "--yes", *theirs))
    assert data["removed"] == [] and {k["id"] for k in data["kept"]} == set(theirs)

    after = gl.run("gitleaks", "version", cwd=pair.gl_project)
    assert after.returncode == 0, after.stderr
    assert "Building" not in after.stderr


def test_prune_with_nothing_to_remove_asks_nothing(pair: Pair) -> None:
    plain = pair.plain
    mine = image_id(plain.hold("foundation"))
    nothing = plain.run("images", "prune", mine)  # nothing to remove: nothing to ask
    assert nothing.returncode == 0, nothing.stderr
    bogus = plain.run("images", "prune", "--yes", "0123456789abcdef")
    assert bogus.returncode == 1 and "no aishell image with ID" in bogus.stderr


# -- a home's own old images ---------------------------------------------------------------


def test_prune_removes_a_homes_superseded_foundation(
    root_user: Aishell, homes: Callable[..., Aishell], unique_bases: tuple[str, str]
) -> None:
    ai = homes(root_user, "superseded", f"base_image: {unique_bases[0]}\n", release=True)
    setup = ai.run("setup", timeout=1800)
    assert setup.returncode == 0, setup.stderr
    old = image_id(ai.hold("foundation"))
    assert old
    config = ai.aishell_home / "config.yaml"
    ai.write(config, config.read_text().replace(unique_bases[0], unique_bases[1]))
    updated = ai.run("update", timeout=1800)
    assert updated.returncode == 0, updated.stderr
    assert "Building the foundation image" in updated.stderr
    new = image_id(ai.hold("foundation"))
    assert new and new != old
    assert image_id(ai.hold("base")) == new

    rows = {row["id"]: row for row in json_of(ai.run("images", "list", "--json"))}
    assert rows[old]["prunable"] is True and rows[old]["holds"] == []
    assert rows[new]["this_home"] is True and rows[new]["prunable"] is False

    pruned = ai.run("images", "prune", "--yes", old, new)
    assert pruned.returncode == 0, pruned.stderr
    assert f"Removed {short(old)} (foundation" in pruned.stdout, pruned.stdout
    assert f"Kept {short(new)} (held by this home (base, foundation))" in pruned.stdout
    assert not image_id(old)
    ran = ai.run("exec", "true", cwd=ai.new_project("prune"))  # a project, not $HOME
    assert ran.returncode == 0, ran.stderr
    assert "Building" not in ran.stderr and "out of date" not in ran.stderr


def test_a_home_set_up_by_an_older_aishell_keeps_working(
    root_user: Aishell, homes: Callable[..., Aishell], unique_bases: tuple[str, str]
) -> None:
    """Older aishell tagged the shared `aishell:foundation` / `aishell:base` and saved no
    image ID: such a home adopts the image with its inputs, and the old tag stays."""
    ai = homes(root_user, "legacy", f"base_image: {unique_bases[0]}\n", release=True)
    setup = ai.run("setup", timeout=1800)
    assert setup.returncode == 0, setup.stderr
    built = image_id(ai.hold("foundation"))
    legacy = f"aishell:it-legacy-{os.urandom(4).hex()}"  # stands in for aishell:foundation
    assert docker("tag", built, legacy).returncode == 0
    try:
        assert docker("rmi", ai.hold("foundation"), ai.hold("base")).returncode == 0
        state_path = ai.aishell_home / "state.json"
        data = json.loads(state_path.read_text())
        del data["foundation_id"]
        ai.write(state_path, json.dumps(data))

        report = json_of(ai.run("check", "--json"))
        assert report["passed"] is True, report
        assert any(
            c["label"] == "Foundation image is not held by this home yet" for c in report["checks"]
        ), report["checks"]
        ran = ai.run("exec", "true", cwd=ai.new_project("legacy"))  # a project, not $HOME
        assert ran.returncode == 0, ran.stderr
        assert "Building" not in ran.stderr and "out of date" not in ran.stderr, ran.stderr
        assert image_id(ai.hold("foundation")) == built
        assert image_id(ai.hold("base")) == built
        assert json.loads(state_path.read_text())["foundation_id"] == built
        assert image_id(legacy) == built  # the old shared name is never moved or removed
    finally:
        docker("rmi", "--no-prune", legacy)


# -- build hygiene -------------------------------------------------------------------------


def marked_dockerfile(mark: str, last: str) -> str:
    """A project Dockerfile whose every image and container carries a label of its own."""
    return f"FROM aishell:base\nLABEL aishell.test.build={mark}\nRUN echo one > /one\n{last}\n"


def leftovers(mark: str, cli: Callable[..., subprocess.CompletedProcess[str]] = docker) -> Any:
    label = f"label=aishell.test.build={mark}"
    containers = cli("ps", "-aq", "--filter", label).stdout.split()
    images = cli("images", "-aq", "--filter", label).stdout.split()
    return {"containers": containers, "images": images}


NOTHING = {"containers": [], "images": []}


def test_a_failed_build_leaves_no_container_and_no_image(anyone: Aishell) -> None:
    project = anyone.new_project("failbuild")
    mark = os.urandom(4).hex()
    anyone.write(project / ".aishell" / "Dockerfile", marked_dockerfile(mark, "RUN exit 3"))
    result = anyone.run("exec", "true", cwd=project)
    assert result.returncode == 1, result.stderr
    assert "Error: building" in result.stderr
    assert leftovers(mark, anyone.engine_cli) == NOTHING


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_build_leaves_nothing(anyone: Aishell, sig: signal.Signals) -> None:
    project = anyone.new_project("interrupted")
    mark = os.urandom(4).hex()
    anyone.write(project / ".aishell" / "Dockerfile", marked_dockerfile(mark, "RUN sleep 300"))
    proc = anyone.popen("exec", "true", cwd=project)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            running = anyone.engine_cli(
                "ps",
                "--no-trunc",
                "--filter",
                f"label=aishell.test.build={mark}",
                "--format",
                "{{.Command}}",
            )
            if "sleep 300" in running.stdout:
                break
            time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    after = anyone.run("info", cwd=project)  # the next command
    assert leftovers(mark, anyone.engine_cli) == NOTHING
    assert proc.returncode == 130, err
    assert after.returncode == 0, after.stderr


@pytest.fixture(params=["root", "user"])
def pm(request: pytest.FixtureRequest) -> Aishell:
    """Rootful Podman as root, rootless Podman as the non-root user."""
    return request.getfixturevalue("podman_root" if request.param == "root" else "podman_user")


def test_a_failed_build_leaves_nothing_on_podman(pm: Aishell) -> None:
    project = pm.new_project("pmfail")
    mark = os.urandom(4).hex()
    pm.write(project / ".aishell" / "Dockerfile", marked_dockerfile(mark, "RUN exit 3"))
    result = pm.run("exec", "true", cwd=project)
    assert result.returncode == 1, result.stderr
    assert leftovers(mark, pm.engine_cli) == NOTHING
    ran = pm.run("info", "--json", cwd=project)
    stack = json_of(ran)["images"]
    assert stack["foundation"]["tag"] == pm.hold("foundation")
    assert stack["foundation"]["held"] is True
