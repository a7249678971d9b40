"""Pure parts of issue 15 (reliability): the state read by type and its repair
command, what prune keeps and why, the journal of what a process makes, what undo
removes, live containers, engine messages, timeouts, signals, OS errors."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from aishell import interrupts, journal, state
from aishell.commands import volumes as volumes_cmd
from aishell.engine import client, containers, volumes
from aishell.engine.client import Result, engine_cause
from aishell.errors import AishellError, EngineError, from_exception
from aishell.launch.run import name_taken
from testing.fake_engine import Call, FakeEngine, fail, ok

GOOD: dict[str, Any] = {
    "schema": 1,
    "tools": {"opencode": "latest", "claude": "2.0.22"},
    "gitleaks": True,
    "foundation_hash": "0123456789ab",
    "foundation_id": "sha256:ff",
    "build_time": "2026-01-01T00:00:00Z",
    "harness_volume": "aishell-harness-0123456789ab",
    "volumes": {
        "aishell-harness-0123456789ab": {
            "created_at": "t",
            "versions": {"opencode": "1.0.0"},
            "filled_at": "f",
            "instance": "00ff",
        }
    },
    "gitleaks_scans": {"/p": "2026-01-01T00:00:00Z"},
}


# ------------------------------------------------------------------ state, by type


def test_a_good_state_reads_as_it_is() -> None:
    parsed = state.parse(json.loads(json.dumps(GOOD)))
    assert parsed.dropped == []
    assert parsed.state.to_json() == GOOD


DAMAGE: list[tuple[str, dict[str, Any] | list[Any] | str, list[str], str]] = [
    # (id, data, fields named as dropped, the repair command)
    ("volume-number", {"harness_volume": 123}, ["harness_volume"], "--with-claude=2.0.22"),
    ("volume-name", {"harness_volume": "x; rm -rf /"}, ["harness_volume"], "--with-opencode"),
    ("volume-other-form", {"harness_volume": "aishell-harness-zz"}, ["harness_volume"], ""),
    ("unknown-agent", {"tools": {"nosuch": "latest", "opencode": "latest"}}, ["tools.nosuch"], ""),
    ("bad-pin", {"tools": {"opencode": "1.0; touch /x"}}, ["tools.opencode"], "--with-opencode"),
    ("pin-number", {"tools": {"opencode": 1}}, ["tools.opencode"], "--with-opencode"),
    ("tools-string", {"tools": "opencode"}, ["tools"], "--with-<agent>"),
    ("tools-list", {"tools": ["opencode"]}, ["tools"], "--with-<agent>"),
    ("gitleaks-string", {"gitleaks": "yes"}, ["gitleaks"], ""),
    ("hash-number", {"foundation_hash": 5}, ["foundation_hash"], ""),
    ("volumes-list", {"volumes": []}, ["volumes"], ""),
    ("record-string", {"volumes": {"v": "x"}}, ["volumes.v"], ""),
    ("record-types", {"volumes": {"v": {"created_at": 5}}}, ["volumes.v"], ""),
    (
        "record-versions",
        {"volumes": {"v": {"created_at": "t", "versions": [1]}}},
        ["volumes.v"],
        "",
    ),
    ("record-no-created", {"volumes": {"v": {}}}, ["volumes.v"], ""),
    ("scans-number", {"gitleaks_scans": 3}, ["gitleaks_scans"], ""),
    ("scan-value", {"gitleaks_scans": {"/p": 1}}, ["gitleaks_scans./p"], ""),
]


@pytest.mark.parametrize(("data", "fields", "command"), [d[1:] for d in DAMAGE],
                         ids=[d[0] for d in DAMAGE])  # fmt: skip
def test_damage_is_named_and_the_rest_is_kept(
    data: dict[str, Any], fields: list[str], command: str
) -> None:
    merged = {**GOOD, **data}
    parsed = state.parse(merged)
    assert [d.split(" ")[0] for d in parsed.dropped] == fields
    for key, value in GOOD.items():  # every undamaged field survives as it was
        if key not in data and key != "schema":
            assert parsed.state.to_json()[key] == value, key
    assert command in state.repair_command(parsed)


@pytest.mark.parametrize("text", ["", "{", "[]", "null", '"x"', "1e999", "[" * 100000])
def test_unreadable_json_is_damage_of_everything(home: Path, text: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "state.json").write_text(text)
    with pytest.raises(state.StateError) as info:
        state.load()
    assert "damaged" in info.value.message
    assert "aishell setup --with-<agent>" in (info.value.hint or "")
    assert state.load(repair=True) == state.State()


def test_the_error_names_the_exact_repair_command(home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "state.json").write_text(json.dumps({**GOOD, "harness_volume": 123}))
    with pytest.raises(state.StateError) as info:
        state.load()
    assert info.value.hint == (
        "run 'aishell setup --with-claude=2.0.22 --with-opencode --with-gitleaks' "
        "to rewrite it (it keeps what can be read)"
    )


def test_update_with_repair_rewrites_a_damaged_file(home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "state.json").write_text(json.dumps({**GOOD, "harness_volume": 123}))
    state.update(lambda s: None, repair=True)
    assert state.load() is not None


def test_saving_into_a_read_only_home_is_one_clear_error(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def read_only(*_a: object, **_k: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    import tempfile

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    for call in (lambda: state.save(state.State()), state.check_writable):
        with pytest.raises(AishellError) as info:
            call()
        assert "Read-only file system" in info.value.message
        assert "AISHELL_HOME" in (info.value.hint or "")


@pytest.fixture
def home() -> Path:
    return Path(os.environ["AISHELL_HOME"])


# ------------------------------------------------------------------ prune: keep or not

HERE = volumes.Owner("0123456789ab", 1000, "alice", "/home/alice/.aishell", "box")
THERE = volumes.Owner("ba9876543210", 1001, "bob", "/home/bob/.aishell", "box")


def row(**kw: Any) -> volumes_cmd.VolumeRow:
    defaults: dict[str, Any] = {
        "name": "aishell-harness-0123456789ab",
        "status": "orphaned",
        "size": None,
        "size_bytes": None,
        "harnesses": ["opencode"],
        "made_by": volumes_cmd.holder_of(HERE, HERE.home_id),
    }
    defaults.update(kw)
    return volumes_cmd.VolumeRow(**defaults)


def holder(owner: volumes.Owner) -> volumes_cmd.Holder:
    return volumes_cmd.holder_of(owner, HERE.home_id)


FRESH = "aishell-harness-0123456789ab-20260101t000000-abcd"
KEEP_CASES: list[tuple[str, dict[str, Any], bool, str | None]] = [
    ("orphan-made-here", {}, False, None),
    ("active", {"status": "active"}, False, ""),
    ("active-named", {"status": "active"}, True, "active"),
    ("in-use", {"in_use_by": ["c1"]}, False, "in use by container c1"),
    ("filling", {"filling": True}, False, "filling it"),
    ("held-elsewhere", {"held_by": [holder(THERE)]}, False, "held by another aishell home"),
    ("held-elsewhere-named", {"held_by": [holder(THERE)]}, True, "bob (uid 1001)"),
    ("held-here-only", {"held_by": [holder(HERE)]}, False, None),
    ("unlabelled", {"labelled": False, "made_by": None}, False, None),
    ("unlabelled-in-use", {"labelled": False, "in_use_by": ["c"]}, False, "in use"),
    ("legacy", {"made_by": None}, False, "made by an older aishell"),
    ("legacy-named", {"made_by": None}, True, None),
    ("legacy-held", {"made_by": None, "held_by": [holder(THERE)]}, True, "held by another"),
    ("legacy-update-recorded", {"made_by": None, "name": FRESH, "recorded": True}, False, None),
    ("legacy-update-unknown", {"made_by": None, "name": FRESH}, False, "older aishell"),
]


@pytest.mark.parametrize(("kw", "named", "reason"), [c[1:] for c in KEEP_CASES],
                         ids=[c[0] for c in KEEP_CASES])  # fmt: skip
def test_prune_keeps_what_anyone_may_use(
    kw: dict[str, Any], named: bool, reason: str | None
) -> None:
    got = volumes_cmd.keep_reason(row(**kw), named=named)
    if reason is None or reason == "":
        assert got == reason
    else:
        assert got is not None and reason in got


def test_holders_in_the_listing() -> None:
    r = row(held_by=[holder(HERE), holder(THERE), holder(THERE)])
    assert volumes_cmd.held_text(r) == "this home + 2 other homes"
    assert volumes_cmd.held_text(row()) == "-"
    data = r.to_json()
    assert data["held_by"][0] == {
        "user": "alice",
        "uid": 1000,
        "home": "/home/alice/.aishell",
        "this_home": True,
    }
    assert data["made_by"]["user"] == "alice" and data["labelled"] is True


def test_owner_labels_round_trip() -> None:
    assert volumes.owner_of(HERE.labels()) == HERE
    assert volumes.owner_of({}) is None
    assert volumes.owner_of({"aishell.home": "not-a-home-id"}) is None
    hold = volumes.hold_labels(HERE, "aishell-harness-0123456789ab")
    assert hold["aishell.kind"] == "hold" and hold["aishell.hold.volume"].endswith("789ab")
    assert volumes.hold_name(HERE.home_id, FRESH) == (
        "aishell-hold-0123456789ab-0123456789ab-20260101t000000-abcd"
    )


@pytest.mark.parametrize(
    ("record", "labels", "created", "ready"),
    [
        (
            state.VolumeRecord("t1", instance="aa"),
            {"aishell.kind": "harness", "aishell.volume.id": "aa"},
            "t9",
            True,
        ),
        (
            state.VolumeRecord("t1", instance="aa"),
            {"aishell.kind": "harness", "aishell.volume.id": "bb"},
            "t1",
            False,
        ),
        (state.VolumeRecord("t1"), {"aishell.kind": "harness"}, "t1", True),  # older aishell
        (state.VolumeRecord("t1"), {"aishell.kind": "harness"}, "t2", False),
        (state.VolumeRecord("t1"), {}, "t1", False),  # made by the engine, same second
        (state.VolumeRecord("t1", instance="aa"), {"aishell.kind": "harness"}, "t1", False),
        (None, {"aishell.kind": "harness"}, "t1", False),
    ],
)
def test_readiness_is_exact(
    record: state.VolumeRecord | None, labels: dict[str, str], created: str, ready: bool
) -> None:
    item = {"Name": "v", "CreatedAt": created, "Labels": labels}
    assert volumes.is_recorded_ready(record, item) is ready
    assert volumes.is_recorded_ready(record, None) is False


# ------------------------------------------------------------------------ the journal


def test_journal_add_done_replay(home: Path) -> None:
    book = journal.current()
    assert not (home / ".pending").exists()  # nothing made: nothing written
    book.add("hold", "h", engine="/usr/bin/docker")
    book.add("volume", "v", engine="/usr/bin/docker")
    book.add("volume", "v", engine="/usr/bin/docker")  # once
    book.done("hold", "h")
    text = book.path.read_text()
    assert journal.replay(text) == [journal.Entry("volume", "v", "/usr/bin/docker")]
    assert journal.replay(text + '{"add": "volume", "na') == journal.replay(text)  # torn line
    assert journal.replay('{"add": "network", "name": "x"}\n[1]\n') == []  # unknown kinds
    with pytest.raises(ValueError, match="unknown journal kind"):
        book.add("network", "n", engine="e")
    book.done("volume", "v")
    journal.close_current()
    assert not book.path.exists()  # nothing outstanding: removed


def test_an_outstanding_journal_stays_for_the_next_command(home: Path) -> None:
    book = journal.current()
    book.add("volume", "v", engine="e")
    journal.close_current()
    assert book.path.exists()
    with journal.abandoned() as found:
        assert [(a.path, a.entries) for a in found] == [
            (book.path, [journal.Entry("volume", "v", "e")])
        ]
    assert not book.path.exists()
    with journal.abandoned() as found:
        assert found == []


CHILD = textwrap.dedent(
    """
    import sys, time
    from aishell import journal
    book = journal.current()
    book.add("volume", "made-by-child", engine="e")
    print("ready", flush=True)
    time.sleep(600)
    """
)


def test_a_live_journal_is_never_collected_a_killed_ones_is(home: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "AISHELL_HOME": str(home)},
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        assert journal.has_pending()
        assert "made-by-child" in journal.in_progress()
        with journal.abandoned() as found:
            assert found == []  # its process holds the lock
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert "made-by-child" not in journal.in_progress()
    with journal.abandoned() as found:
        assert [e.name for a in found for e in a.entries] == ["made-by-child"]


# ---------------------------------------------------------------------------- undo


def undo_engine(holds: list[tuple[str, str, str]], made: set[str]) -> FakeEngine:
    """holds: (hold name, volume held, home id); made: volumes that exist."""

    def ls(call: Call) -> Result:
        return ok("".join(f"{n}\n" for n, _, _ in holds))

    def inspect(call: Call) -> Result:
        found = [
            {
                "Name": n,
                "Labels": {"aishell.kind": "hold", "aishell.hold.volume": v, "aishell.home": h},
            }
            for n, v, h in holds
            if n in call.args[2:]
        ]
        return Result(0 if found else 1, json.dumps(found), "")

    def rm(call: Call) -> Result:
        name = call.args[2]
        made.discard(name)
        holds[:] = [h for h in holds if h[0] != name]
        return ok(name)

    return FakeEngine(
        [
            (("volume", "ls"), ls),
            (("volume", "inspect"), inspect),
            (("volume", "rm"), rm),
            (("ps",), ok("")),
        ]
    )


def entries(*pairs: tuple[str, str]) -> list[journal.Entry]:
    return [journal.Entry(kind, name, "/usr/bin/docker") for kind, name in pairs]


def test_undo_removes_what_was_made_and_is_recorded_nowhere() -> None:
    holds = [("h-mine", "v", HERE.home_id)]
    made = {"v"}
    engine = undo_engine(holds, made)
    done = volumes.undo(
        engine, entries(("hold", "h-mine"), ("volume", "v"), ("container", "fill-v")),
        active="other", recorded=[],
    )  # fmt: skip
    assert sorted(done.removed) == ["h-mine", "v"]
    assert done.remaining == [] and made == set() and holds == []


@pytest.mark.parametrize(
    ("active", "recorded", "other_hold"),
    [("v", [], False), ("x", ["v"], False), ("x", [], True)],
    ids=["active", "recorded", "another-home-holds-it"],
)
def test_undo_keeps_what_the_state_or_another_home_needs(
    active: str, recorded: list[str], other_hold: bool
) -> None:
    holds = [("h-mine", "v", HERE.home_id)] + (
        [("h-theirs", "v", THERE.home_id)] if other_hold else []
    )
    made = {"v"}
    engine = undo_engine(holds, made)
    done = volumes.undo(
        engine, entries(("hold", "h-mine"), ("volume", "v")), active=active, recorded=recorded
    )
    assert "v" in made and "v" not in done.removed
    assert ("h-mine" in done.removed) is (active != "v")
    if other_hold:
        assert any(h[0] == "h-theirs" for h in holds)  # never another home's


def test_undo_removes_only_its_own_fill_container() -> None:
    engine = FakeEngine([(("ps",), ok("")), (("rm",), ok())])
    volumes.undo(engine, entries(("container", "aishell-fill-x")), active=None, recorded=[],
                 token="tok")  # fmt: skip
    [ps] = engine.argvs()
    assert "label=aishell.owner=tok" in ps and "name=^/?aishell\\-fill\\-x$" in ps


# ---------------------------------------------------------------- engine: messages


@pytest.mark.parametrize(
    ("state_", "created_ago", "ours", "live"),
    [
        ({"Running": True, "Status": "running"}, 999, True, True),
        ({"Paused": True, "Status": "paused"}, 999, True, True),
        ({"Status": "removing"}, 999, True, True),
        ({"Status": "created"}, 5, True, True),  # another aishell is starting it
        ({"Status": "created"}, 999, True, False),  # a failed start long ago
        ({"Status": "created"}, 5, False, False),  # not an aishell run's: replaced
        ({"Status": "created"}, 5, None, False),  # only the image's labels: replaced
        ({"Status": "exited"}, 5, True, False),
        ({"Status": "dead"}, 5, True, False),
    ],
)
def test_a_container_being_started_is_live(
    state_: dict[str, Any], created_ago: float, ours: bool | None, live: bool
) -> None:
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now - created_ago)) + ".123456789Z"
    labels = {"aishell.managed": "1", "aishell.name": "x"} if ours else {}
    if ours is None:  # `docker create` of aishell's image: its labels, no launch's
        labels = {"aishell.managed": "1", "aishell.kind": "foundation"}
    item = {"State": state_, "Created": stamp, "Config": {"Labels": labels}}
    assert containers.is_live(item, now=now) is live


def test_name_conflicts_and_the_engines_reason() -> None:
    docker = (
        'docker: Error response from daemon: Conflict. The container name "/aishell-x-y" is '
        'already in use by container "abc". You have to remove (or rename) that container.\n'
        "See 'docker run --help'.\n"
    )
    podman = 'Error: creating container storage: the container name "x" is already in use by y'
    assert name_taken(docker) and name_taken(podman)
    assert not name_taken("Error: no such image")
    assert engine_cause(docker).startswith("Conflict. The container name")
    assert engine_cause("See 'docker run --help'.\n") == ""


@pytest.mark.parametrize(
    ("rc", "says", "never"),
    [
        (137, "stopped from outside (SIGKILL, exit 137)", "network"),
        (143, "SIGTERM", "network"),
        (125, "could not start", "network"),
        (1, "the install failed (exit 1)", "stopped from outside"),
    ],
)
def test_a_killed_fill_is_not_blamed_on_the_network(rc: int, says: str, never: str) -> None:
    what, hint = volumes.failure_hint(rc, verbose=True)
    assert says in what and never not in what + hint


def test_the_fill_script_ends_with_its_aishell() -> None:
    script = volumes.FILL_SCRIPT
    assert "trap 'exit 143' TERM INT HUP" in script
    assert "cat <&3" in script and "kill -TERM 1" in script  # the stdin watchdog
    args = volumes.fill_args("v", {"opencode": "latest"}, "img", refill=False, owner=HERE,
                             token="tok")  # fmt: skip
    assert args[:3] == ["run", "--rm", "-i"]  # stdin attached: the watchdog's pipe
    assert "aishell.owner=tok" in args and "aishell.fill.volume=v" in args


@pytest.mark.parametrize(
    ("value", "seconds"), [(None, 60.0), ("", 60.0), ("2.5", 2.5), (" 7 ", 7.0)]
)
def test_engine_timeouts_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: str | None, seconds: float
) -> None:
    if value is None:
        monkeypatch.delenv(client.TIMEOUT_ENV, raising=False)
    else:
        monkeypatch.setenv(client.TIMEOUT_ENV, value)
    assert client.short_timeout() == seconds
    monkeypatch.delenv(client.LONG_TIMEOUT_ENV, raising=False)
    assert client.long_timeout() == 3600.0


@pytest.mark.parametrize("value", ["soon", "0", "-1", "nan", "inf", "1e12"])
def test_a_bad_engine_timeout_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(client.LONG_TIMEOUT_ENV, value)
    with pytest.raises(EngineError, match="is not a number of seconds"):
        client.long_timeout()


def test_a_timed_out_call_names_the_command_and_the_fix() -> None:
    exc = client.Engine("/usr/bin/docker", "docker").timed_out(("volume", "inspect", "x"), 3)
    assert exc.message == "the docker engine did not answer within 3s ('docker volume inspect')"
    assert "AISHELL_ENGINE_TIMEOUT" in (exc.hint or "")


# ------------------------------------------------------------------- signals, OSError


def test_sigterm_and_sighup_raise_terminated() -> None:
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        interrupts.install()
        for signum in (signal.SIGTERM, signal.SIGHUP):
            with pytest.raises(interrupts.Terminated) as info:
                os.kill(os.getpid(), signum)
                time.sleep(5)  # (interrupted by the signal at once)
            assert info.value.exit_code == 128 + signum
            assert isinstance(info.value, KeyboardInterrupt)  # Ctrl-C's clean-up runs too
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def test_an_ignored_sighup_stays_ignored() -> None:
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        interrupts.install()
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@pytest.mark.parametrize(
    ("exc", "message", "hint"),
    [
        (OSError(errno.EROFS, "Read-only file system", "/h/x"), "/h/x: Read-only", "read-only"),
        (OSError(errno.ENOSPC, "No space left on device", "/h"), "No space", "free some space"),
        (OSError(errno.EACCES, "Permission denied", "/h"), "Permission denied", "permissions"),
        (OSError(errno.EIO, "Input/output error"), "Input/output error", "--debug"),
        (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), "UTF-8", "--debug"),
    ],
)
def test_os_errors_become_one_clear_line(exc: OSError, message: str, hint: str) -> None:
    got = from_exception(exc)
    assert message in got.message and hint in (got.hint or "")


def test_cli_turns_an_unhandled_os_error_into_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from aishell import cli

    def broken(_rest: list[str]) -> int:
        raise OSError(errno.ENOSPC, "No space left on device", "/somewhere")

    monkeypatch.setattr(cli, "_target", lambda _entry: broken)
    assert cli.main(["ps"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: cannot access /somewhere: No space left on device; the disk")
    assert "unexpected" not in err and len(err.splitlines()) == 1


def test_fake_engine_refusals_are_real_errors() -> None:
    """(The unit tests' FakeEngine raises the client's own EngineError for an engine
    that is not answering: the fill's errors are the ones users see.)"""
    engine = FakeEngine([(("volume",), fail("Cannot connect to the Docker daemon"))])
    with pytest.raises(EngineError, match="not answering"):
        volumes.inspect_volume(engine, "v")
