"""`aishell update`: fresh volume names, the version summary, and the switch logic
(with the engine replaced by a fake: unit tests never start the engine)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from aishell import journal, paths, state
from aishell.commands import update
from aishell.constants import HARNESS_VOLUME_PREFIX
from aishell.engine import volumes
from aishell.engine.client import Result
from aishell.errors import AishellError, EngineError
from aishell.hashing import selection_hash
from testing.fake_engine import Call, FakeEngine, fail, ok, streamed

SEL = {"opencode": "latest"}
BASE = volumes.volume_name(SEL)
# What engines accept as a volume name.
ENGINE_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")

# ------------------------------------------------------------- fresh volume names


def test_fresh_volume_name_shape() -> None:
    name = volumes.fresh_volume_name(SEL, stamp="20260716t101530", token="a1b2")
    assert name == f"{BASE}-20260716t101530-a1b2"
    assert ENGINE_NAME.fullmatch(name)
    assert name.startswith(HARNESS_VOLUME_PREFIX)


@pytest.mark.parametrize(
    ("stamp", "token"),
    [
        ("2026-07-16", "a1b2"),
        ("20260716t101530", "A1B2"),
        ("20260716t101530", "a1b"),
        ("20260716t101530", "a1b2/"),
        ("", ""),
    ],
)
def test_fresh_volume_name_rejects_bad_parts(stamp: str, token: str) -> None:
    with pytest.raises(ValueError):
        volumes.fresh_volume_name(SEL, stamp=stamp, token=token)


def test_new_stamp_and_token_make_valid_distinct_names() -> None:
    names = set()
    for _ in range(20):
        stamp, token = volumes.new_stamp_and_token()
        names.add(volumes.fresh_volume_name(SEL, stamp=stamp, token=token))
    assert len(names) > 1  # the random token tells updates in the same second apart
    for name in names:
        assert name != BASE and ENGINE_NAME.fullmatch(name)


@pytest.mark.parametrize(
    "selection", [{"claude": "latest"}, {"claude": "2.0.22", "opencode": "latest"}], ids=str
)
def test_fresh_volume_keeps_the_selection_hash(selection: dict[str, str]) -> None:
    fresh = volumes.fresh_volume_name(selection, stamp="20260101t000000", token="0000")
    assert volumes.selection_hash_of(fresh) == selection_hash(selection)
    assert volumes.selection_hash_of(volumes.volume_name(selection)) == selection_hash(selection)
    # the label that marks the volume's selection is the same for both forms
    assert volumes.volume_labels(selection)[volumes.LABEL_HARNESS_HASH] == selection_hash(selection)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "other-volume",
        "aishell-harness-",
        "aishell-harness-xyz",
        "aishell-harness-0123456789ab-x",
        "aishell-harness-0123456789ab-20260101t000000",
        "aishell-harness-0123456789AB",
    ],
)
def test_selection_hash_of_foreign_names(name: str) -> None:
    assert volumes.selection_hash_of(name) is None


def test_volume_for_keeps_an_updated_volume_of_the_same_selection() -> None:
    fresh = volumes.fresh_volume_name(SEL, stamp="20260101t000000", token="beef")

    def saved(current: str) -> state.State:
        return state.State(tools=dict(SEL), harness_volume=current)

    assert volumes.volume_for(SEL, saved(fresh)) == fresh
    assert volumes.volume_for(SEL, saved(BASE)) == BASE
    assert volumes.volume_for(SEL, None) == BASE
    assert volumes.volume_for(SEL, saved("")) == BASE
    other = volumes.fresh_volume_name({"claude": "latest"}, stamp="20260101t000000", token="beef")
    assert volumes.volume_for(SEL, saved(other)) == BASE  # selection changed: setup's volume


def test_setup_after_an_update_and_a_change_never_goes_back_to_the_older_volume() -> None:
    """setup (BASE) -> update (fresh) -> setup with another selection -> setup with the
    first selection again: the update's volume, not BASE with its older agents."""
    fresh = volumes.fresh_volume_name(SEL, stamp="20260101t000000", token="beef")
    newer = volumes.fresh_volume_name(SEL, stamp="20260202t000000", token="cafe")
    other = volumes.volume_name({"claude": "latest"})
    saved = state.State(
        tools={"claude": "latest"},
        harness_volume=other,
        volumes={
            BASE: state.VolumeRecord("t0", {"opencode": "1.0.0"}, "2026-01-01T00:00:00Z"),
            newer: state.VolumeRecord("t2", {"opencode": "1.2.0"}, "2026-02-02T00:00:00Z"),
            fresh: state.VolumeRecord("t1", {"opencode": "1.1.0"}, "2026-01-01T00:10:00Z"),
            other: state.VolumeRecord("t3", {"claude": "2.0.0"}, "2026-03-01T00:00:00Z"),
        },
    )
    assert volumes.volume_for(SEL, saved) == newer


def test_fill_container_names_follow_the_volume() -> None:
    fresh = volumes.fresh_volume_name(SEL, stamp="20260101t000000", token="beef")
    assert volumes.fill_container_name(BASE) == "aishell-fill-" + selection_hash(SEL)
    assert volumes.fill_container_name(fresh) == (
        "aishell-fill-" + selection_hash(SEL) + "-20260101t000000-beef"
    )
    assert volumes.fill_container_name(fresh) != volumes.fill_container_name(BASE)


# ------------------------------------------------------------------ version summary


@pytest.mark.parametrize(
    ("old", "new", "line"),
    [
        ("1.18.33", "1.18.33", "OpenCode 1.18.33 \u2192 1.18.33 (unchanged)"),
        ("1.18.30", "1.18.33", "OpenCode 1.18.30 \u2192 1.18.33"),
        ("2.0.0", "1.9.9", "OpenCode 2.0.0 \u2192 1.9.9"),
        (None, "1.18.33", "OpenCode 1.18.33 (previous version unknown)"),
        ("1.0.0", None, "OpenCode 1.0.0 \u2192 ? (the install did not report a version)"),
    ],
)
def test_version_change(old: str | None, new: str | None, line: str) -> None:
    assert update.version_change("OpenCode", old, new) == line


def test_version_changes_in_tool_order() -> None:
    selection = {"opencode": "latest", "claude": "2.0.1", "openspec": "latest"}
    lines = update.version_changes(
        selection,
        {"claude": "2.0.1", "opencode": "1.0.0", "gemini": "9.9.9"},
        {"claude": "2.0.1", "opencode": "1.1.0", "openspec": "0.5.0"},
    )
    assert lines == [
        "Claude Code 2.0.1 \u2192 2.0.1 (unchanged)",
        "OpenCode 1.0.0 \u2192 1.1.0",
        "OpenSpec 0.5.0 (previous version unknown)",
    ]


def test_describe_selection() -> None:
    assert update.describe_selection({"opencode": "latest", "claude": "2.0.1"}) == (
        "Claude Code 2.0.1, OpenCode latest"
    )


def test_old_volume_notice() -> None:
    idle = update.old_volume_notice("old-v", "new-v", [])
    assert idle == [
        "New launches use new-v.",
        "The previous volume old-v stays until: aishell volumes prune",
    ]
    busy = update.old_volume_notice("old-v", "new-v", ["aishell-1234abcd-shell", "c2"])
    assert busy[0] == "New launches use new-v."
    assert "old-v" in busy[1] and "aishell-1234abcd-shell, c2" in busy[1]
    assert "keep working" in busy[1]
    assert "aishell volumes prune" in busy[2]


# ------------------------------------------------------------------ saved selection


def test_saved_selection_accepts_pins_and_latest() -> None:
    assert update.saved_selection({"claude": "latest", "codex": "1.2.3-beta.1"}) == {
        "claude": "latest",
        "codex": "1.2.3-beta.1",
    }


@pytest.mark.parametrize(
    ("tools", "message"),
    [
        ({"nosuchagent": "latest"}, "unknown agent 'nosuchagent'"),
        ({"claude": "1.0; rm -rf /"}, "shell metacharacters"),
        ({"claude": "one"}, "expected X.Y.Z"),
    ],
)
def test_saved_selection_rejects_edited_state(tools: dict[str, str], message: str) -> None:
    with pytest.raises(AishellError) as info:
        update.saved_selection(tools)
    assert message in info.value.message
    assert "aishell setup" in (info.value.hint or "")


# ------------------------------------------------------ the command, on a fake engine


def engine_with(volumes_: dict[str, str], running: dict[str, list[str]]) -> FakeEngine:
    """Answers the few engine calls `update` makes itself (everything else is patched):
    volumes (name -> CreatedAt) and, per volume, the containers running with it."""

    def inspect(call: Call) -> Result:
        name = call.args[2]
        if name in volumes_:
            return ok(json.dumps([{"Name": name, "CreatedAt": volumes_[name]}]))
        return Result(1, "[]\n", f"Error response from daemon: get {name}: no such volume\n")

    def rm(call: Call) -> Result:
        volumes_.pop(call.args[2], None)
        return ok(call.args[2] + "\n")

    def ps(call: Call) -> Result:
        args = call.args
        volume = args[args.index("--filter") + 1].removeprefix("volume=")
        return ok("".join(f"{n}\n" for n in running.get(volume, [])))

    return FakeEngine(
        [
            (("volume", "inspect"), inspect),
            (("volume", "rm"), rm),
            (("volume", "ls"), ok()),  # no holds
            (("rm", "-f"), lambda call: fail(f"Error: No such container: {call.args[2]}\n")),
            (("ps",), ps),
        ]
    )


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A saved setup with a filled volume, and the engine-facing parts replaced."""
    from aishell.commands import setup
    from aishell.engine import choice

    state.save(
        state.State(
            tools=dict(SEL),
            foundation_hash="oldhash",
            build_time="2026-01-01T00:00:00Z",
            harness_volume=BASE,
            volumes={
                BASE: state.VolumeRecord(
                    "2026-01-01T00:00:00Z", {"opencode": "1.0.0"}, "2026-01-01T00:00:05Z"
                )
            },
        )
    )
    on_engine = {BASE: "2026-01-01T00:00:00Z"}  # volume name -> CreatedAt
    running: dict[str, list[str]] = {}
    engine = engine_with(on_engine, running)
    seen: dict[str, Any] = {
        "engine": engine,
        "volumes": on_engine,
        "running": running,
        "builds": [],
        "fills": [],
    }

    def build_images(_engine: object, _cfg: object, **kw: Any) -> setup.Foundation:
        seen["builds"].append(kw)
        return setup.Foundation("newhash", "sha256:new")

    def fill(_engine: object, **kw: Any) -> volumes.FillResult:
        # As the real fill: what it makes is in the journal, and removed if it fails.
        seen["fills"].append(kw)
        journal.current().add("volume", kw["volume"], engine=engine.binary)
        on_engine[kw["volume"]] = "2026-07-16T10:00:00Z"
        if "fail" in seen:
            on_engine.pop(kw["volume"])
            raise seen["fail"]
        if "during_fill" in seen:
            seen["during_fill"]()
        return volumes.FillResult(
            True,
            {"opencode": "1.1.0"},
            "2026-07-16T10:00:09Z",
            instance="0123456789abcdef",
            created_at="2026-07-16T10:00:00Z",
        )

    monkeypatch.setattr(choice, "get_engine", lambda *_a: engine)
    monkeypatch.setattr(setup, "global_config", lambda: object())
    monkeypatch.setattr(setup, "check_engine", lambda _e: None)
    monkeypatch.setattr(setup, "build_images", build_images)
    monkeypatch.setattr(volumes, "fill", fill)
    # The registry's latest versions: unknown unless a test says (then all is reinstalled).
    monkeypatch.setattr(volumes, "latest_versions", lambda *_a: seen.get("latest"))
    return seen


FRESH = re.compile(re.escape(BASE) + r"-[0-9]{8}t[0-9]{6}-[0-9a-f]{4}")


def test_update_switches_to_a_fresh_volume(
    env: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert update.main([]) == 0
    st = state.load()
    assert st is not None
    new = st.harness_volume
    assert FRESH.fullmatch(new)
    assert st.volumes[new] == state.VolumeRecord(
        "2026-07-16T10:00:00Z",
        {"opencode": "1.1.0"},
        "2026-07-16T10:00:09Z",
        instance="0123456789abcdef",
    )
    assert st.volumes[BASE].versions == {"opencode": "1.0.0"}  # kept for `volumes list`
    assert st.foundation_hash == "newhash"
    assert st.tools == SEL
    [fill] = env["fills"]
    assert fill["volume"] == new and fill["selection"] == SEL and fill["refill"] is False
    assert env["builds"] == [{"gitleaks": False, "force": False, "verbose": False}]
    assert BASE in env["volumes"]  # the old volume is never removed by update
    err = capsys.readouterr().err
    assert "OpenCode 1.0.0 \u2192 1.1.0" in err
    assert f"New launches use {new}." in err
    assert f"The previous volume {BASE} stays until: aishell volumes prune" in err


def test_update_force_and_verbose_reach_the_build(env: dict[str, Any]) -> None:
    assert update.main(["--force", "-v"]) == 0
    assert env["builds"] == [{"gitleaks": False, "force": True, "verbose": True}]
    assert env["fills"][0]["verbose"] is True


def test_update_mentions_running_containers(
    env: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    env["running"][BASE] = ["aishell-0123abcd-shell"]
    assert update.main([]) == 0
    err = capsys.readouterr().err
    assert f"Still running with the previous volume {BASE}: aishell-0123abcd-shell" in err


def test_failed_update_changes_nothing(
    env: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    before = paths.state_file().read_bytes()
    env["fail"] = EngineError(
        "installing opencode-ai@latest into v failed (exit 1)",
        hint="check the package versions",
        details="npm error 404",
    )
    with pytest.raises(AishellError) as info:
        update.main([])
    assert paths.state_file().read_bytes() == before
    new = env["fills"][0]["volume"]
    assert new not in env["volumes"]  # the fresh volume was removed again
    assert set(env["volumes"]) == {BASE}
    exc = info.value
    assert "failed (exit 1)" in exc.message
    assert f"nothing changed: {BASE} stays in use" in exc.message
    assert exc.details == "npm error 404"
    assert exc.hint == "check the package versions"
    capsys.readouterr()


def test_interrupted_update_removes_the_fresh_volume(env: dict[str, Any]) -> None:
    before = paths.state_file().read_bytes()
    env["fail"] = KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt):
        update.main([])
    assert paths.state_file().read_bytes() == before
    assert set(env["volumes"]) == {BASE}


def test_setup_changed_during_update(env: dict[str, Any]) -> None:
    def concurrent_setup() -> None:
        state.update(lambda s: setattr(s, "tools", {"claude": "latest"}))

    env["during_fill"] = concurrent_setup
    with pytest.raises(AishellError) as info:
        update.main([])
    assert "changed while updating" in info.value.message
    st = state.load()
    assert st is not None and st.harness_volume == BASE
    assert set(env["volumes"]) == {BASE}


def test_no_setup(env: dict[str, Any]) -> None:
    paths.state_file().unlink()
    with pytest.raises(AishellError) as info:
        update.main([])
    assert info.value.message == "no setup found"
    assert "aishell setup" in (info.value.hint or "")
    assert env["builds"] == []


def test_no_agents_selected(env: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    state.update(lambda s: setattr(s, "tools", {}))
    assert update.main(["--force"]) == 0
    assert env["builds"] == [{"gitleaks": False, "force": True, "verbose": False}]
    assert env["fills"] == []
    assert "No agents selected; nothing to update." in capsys.readouterr().err
    st = state.load()
    assert st is not None and st.foundation_hash == "newhash"


def test_gitleaks_setting_is_kept(env: dict[str, Any]) -> None:
    state.update(lambda s: setattr(s, "gitleaks", True))
    assert update.main([]) == 0
    assert env["builds"][0]["gitleaks"] is True
    st = state.load()
    assert st is not None and st.gitleaks is True


def test_unknown_option_is_a_usage_error() -> None:
    from aishell.errors import UsageError

    with pytest.raises(UsageError):
        update.main(["--with-claude"])


# ------------------------------------------------- a failed fill, as the user sees it


def failing_fill_engine() -> FakeEngine:
    return FakeEngine(
        [
            (("volume", "inspect"), fail("Error: no such volume\n")),
            (("volume", "create"), ok()),
            (("volume", "ls"), ok()),
            (("volume", "rm"), ok()),
            (("ps",), ok()),
            (
                ("run",),
                streamed(
                    "AISHELL-STATUS installing",
                    "npm error code ETARGET",
                    "npm error notarget No matching version found for opencode-ai@0.0.0-nope.",
                    returncode=1,
                ),
            ),
        ]
    )


@pytest.mark.parametrize("verbose", [False, True])
def test_failed_fill_ends_its_progress_as_failed(
    verbose: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(EngineError) as info:
        volumes.fill(
            failing_fill_engine(),
            volume="v",
            selection={"opencode": "0.0.0-nope"},
            image="img",
            verbose=verbose,
        )
    err = capsys.readouterr().err
    assert "Installing OpenCode: failed" in err
    assert "done" not in err
    assert info.value.message == (
        "installing opencode-ai@0.0.0-nope failed: npm has no version 0.0.0-nope of opencode-ai"
    )
    if verbose:  # the output was streamed already: not repeated
        assert info.value.details is None
        assert "npm error code ETARGET" in err
    else:
        assert info.value.details is not None
        assert "npm error code ETARGET" in info.value.details
        assert "npm view opencode-ai versions" in (info.value.hint or "")
