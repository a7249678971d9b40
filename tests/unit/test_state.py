"""`~/.aishell/state.json`: loading, atomic saving, locking, relocation."""

from __future__ import annotations

import fcntl
import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from aishell import paths, state
from aishell.errors import AishellError
from aishell.state import SCHEMA, State, VolumeRecord


@pytest.fixture
def home() -> Path:
    """The AISHELL_HOME the autouse fixture in tests/conftest.py set."""
    return Path(os.environ["AISHELL_HOME"])


def full_state() -> State:
    return State(
        tools={"claude": "latest", "codex": "1.2.3"},
        gitleaks=True,
        foundation_hash="0123456789ab",
        build_time="2026-01-02T03:04:05Z",
        harness_volume="aishell-harness-abcdefabcdef",
        volumes={
            "aishell-harness-abcdefabcdef": VolumeRecord(
                created_at="2026-01-02T03:04:05Z",
                versions={"claude": "2.0.22", "codex": "1.2.3"},
                filled_at="2026-01-02T03:05:00Z",
            ),
            "aishell-harness-000000000000": VolumeRecord(created_at="x"),
        },
        gitleaks_scans={"/home/alice/proj": "2026-01-01T00:00:00Z"},
    )


# ------------------------------------------------------------------ relocation


def test_aishell_home_is_relocated_for_tests(home: Path) -> None:
    assert paths.aishell_home() == home
    assert paths.state_file() == home / "state.json"
    assert not str(home).startswith(str(Path.home() / ".aishell"))


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"HOME": "/home/alice"}, "/home/alice/.aishell/state.json"),
        ({"HOME": "/home/alice", "AISHELL_HOME": ""}, "/home/alice/.aishell/state.json"),
        ({"HOME": "/home/alice", "AISHELL_HOME": "/srv/ai"}, "/srv/ai/state.json"),
        ({"HOME": "/home/alice", "AISHELL_HOME": "~/alt"}, None),  # expanduser: checked below
    ],
)
def test_state_file_location(environ: dict[str, str], expected: str | None) -> None:
    got = paths.state_file(environ)
    if expected is not None:
        assert got == Path(expected)
    else:
        assert got == Path("~/alt").expanduser() / "state.json"


def test_environ_argument_relocates_load_and_save(tmp_path: Path, home: Path) -> None:
    other = tmp_path / "other-home"
    environ = {"AISHELL_HOME": str(other), "HOME": str(tmp_path)}
    state.save(full_state(), environ)
    assert (other / "state.json").is_file()
    assert not (home / "state.json").exists()
    assert state.load(environ) == full_state()
    assert state.load() is None


def test_env_var_relocation(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    target = tmp_path / "relocated"
    monkeypatch.setenv("AISHELL_HOME", str(target))
    state.save(State(tools={"pi": "latest"}))
    assert json.loads((target / "state.json").read_text())["tools"] == {"pi": "latest"}


# ------------------------------------------------------------------- load/save


def test_load_missing_is_none(home: Path) -> None:
    assert not home.exists()
    assert state.load() is None
    assert not home.exists()  # loading creates nothing


def test_load_missing_file_in_existing_home_is_none(home: Path) -> None:
    home.mkdir(parents=True)
    assert state.load() is None


@pytest.mark.parametrize(
    "value",
    [
        State(),
        State(tools={"claude": "latest"}),
        State(gitleaks=True, foundation_hash="abc"),
        full_state(),
        State(tools={"claude": "1.0.0-beta.1+build"}, gitleaks_scans={"/p with space": "t"}),
    ],
    ids=["empty", "one-tool", "gitleaks", "full", "odd-values"],
)
def test_round_trip(home: Path, value: State) -> None:
    state.save(value)
    assert state.load() == value


def test_saved_file_is_json_with_schema(home: Path) -> None:
    state.save(full_state())
    data = json.loads((home / "state.json").read_text())
    assert data["schema"] == SCHEMA
    assert data["tools"] == {"claude": "latest", "codex": "1.2.3"}
    assert data["volumes"]["aishell-harness-abcdefabcdef"]["versions"]["claude"] == "2.0.22"
    assert (home / "state.json").read_text().endswith("\n")


def test_save_creates_missing_home(home: Path) -> None:
    assert not home.exists()
    state.save(State())
    assert (home / "state.json").is_file()


def test_save_overwrites(home: Path) -> None:
    state.save(full_state())
    state.save(State(tools={"pi": "latest"}))
    assert state.load() == State(tools={"pi": "latest"})


def test_atomic_save_leaves_no_temp_files(home: Path) -> None:
    for i in range(5):
        state.save(State(build_time=str(i)))
    assert sorted(p.name for p in home.iterdir()) == ["state.json"]


def test_failed_save_keeps_old_file_and_leaves_no_temp(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state.save(full_state())
    before = (home / "state.json").read_bytes()

    def broken_dump(*_a: object, **_k: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(state.json, "dump", broken_dump)
    with pytest.raises(AishellError, match="No space"):
        state.save(State())
    assert (home / "state.json").read_bytes() == before
    assert sorted(p.name for p in home.iterdir()) == ["state.json"]


def test_interrupted_save_leaves_no_temp(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*_a: object, **_k: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(state.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        state.save(State())
    assert list(home.iterdir()) == []


def test_load_ignores_unknown_keys_and_missing_keys(home: Path) -> None:
    home.mkdir(parents=True)
    (home / "state.json").write_text(json.dumps({"schema": 99, "future": [1], "gitleaks": True}))
    assert state.load() == State(gitleaks=True)


def test_wrong_scalar_types_are_damage_not_coerced(home: Path) -> None:
    home.mkdir(parents=True)
    (home / "state.json").write_text(
        json.dumps({"tools": {"claude": 1}, "gitleaks": 1, "foundation_hash": 5})
    )
    with pytest.raises(state.StateError) as info:
        state.load()
    for field in ("tools.claude", "gitleaks", "foundation_hash"):
        assert field in info.value.message
    repaired = state.load(repair=True)
    assert repaired == State()


# --------------------------------------------------------------- damaged files


@pytest.mark.parametrize(
    "content",
    [
        "",
        "{",
        "not json",
        '{"tools": {"claude": "latest"},}',
        "\x00\x01",
        "[]",
        '"string"',
        "42",
        "null",
        '{"tools": 5}',
        '{"tools": "abc"}',
        '{"tools": null}',
        '{"volumes": {"v": {"bogus": 1}}}',
        '{"volumes": {"v": "x"}}',
        '{"volumes": [1]}',
        '{"volumes": {"v": {}}}',
        '{"gitleaks_scans": 3}',
    ],
)
def test_damaged_state_is_a_clear_error(home: Path, content: str) -> None:
    home.mkdir(parents=True)
    (home / "state.json").write_text(content)
    with pytest.raises(AishellError) as info:
        state.load()
    assert str(home / "state.json") in info.value.message
    assert info.value.hint
    assert "aishell setup" in info.value.hint
    assert info.value.exit_code == 1


def test_unreadable_state_is_a_clear_error(home: Path) -> None:
    (home / "state.json").mkdir(parents=True)  # a directory where the file should be
    with pytest.raises(AishellError, match="cannot read"):
        state.load()


def test_update_on_damaged_state_raises_and_keeps_file(home: Path) -> None:
    home.mkdir(parents=True)
    (home / "state.json").write_text("{broken")
    with pytest.raises(AishellError):
        state.update(lambda s: None)
    assert (home / "state.json").read_text() == "{broken"


# --------------------------------------------------------------------- update


def test_update_creates_state_when_missing(home: Path) -> None:
    def mutate(current: State) -> None:
        assert current == State()
        current.tools["claude"] = "latest"

    result = state.update(mutate)
    assert result == State(tools={"claude": "latest"})
    assert state.load() == result


def test_update_reads_modifies_writes(home: Path) -> None:
    state.save(full_state())

    def mutate(current: State) -> None:
        assert current == full_state()
        current.gitleaks_scans["/other"] = "2026-02-02T00:00:00Z"
        del current.volumes["aishell-harness-000000000000"]

    result = state.update(mutate)
    expected = full_state()
    expected.gitleaks_scans["/other"] = "2026-02-02T00:00:00Z"
    del expected.volumes["aishell-harness-000000000000"]
    assert result == expected
    assert state.load() == expected


def test_update_does_not_save_when_mutate_fails(home: Path) -> None:
    state.save(full_state())

    def mutate(current: State) -> None:
        current.tools.clear()
        raise RuntimeError("halfway")

    with pytest.raises(RuntimeError):
        state.update(mutate)
    assert state.load() == full_state()


def _lock_is_held(home: Path) -> bool:
    with open(home / ".state.lock", "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
        return False


def test_update_holds_the_lock_during_mutate(home: Path) -> None:
    seen: list[bool] = []
    state.update(lambda _s: seen.append(_lock_is_held(home)))
    assert seen == [True]
    assert not _lock_is_held(home)


def test_lock_released_after_failed_mutate(home: Path) -> None:
    def mutate(_s: State) -> None:
        raise ValueError("x")

    with pytest.raises(ValueError):
        state.update(mutate)
    assert not _lock_is_held(home)


def test_locked_context_manager(home: Path) -> None:
    with state.locked():
        assert _lock_is_held(home)
    assert not _lock_is_held(home)


def test_concurrent_updates_lose_nothing(home: Path) -> None:
    workers = 16
    start = threading.Barrier(workers)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            start.wait()

            def mutate(current: State, i: int = i) -> None:
                seen = dict(current.gitleaks_scans)
                threading.Event().wait(0.002)  # widen the race window
                current.gitleaks_scans = {**seen, f"/p/{i:02d}": str(i)}

            state.update(mutate)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    loaded = state.load()
    assert loaded is not None
    assert loaded.gitleaks_scans == {f"/p/{i:02d}": str(i) for i in range(workers)}
    assert sorted(p.name for p in home.iterdir()) == [".state.lock", "state.json"]


@pytest.mark.parametrize(
    "record", [VolumeRecord(created_at="t"), VolumeRecord("t", {"a": "1"}, "f")]
)
def test_volume_record_round_trip(home: Path, record: VolumeRecord) -> None:
    state.save(State(volumes={"v": record}))
    loaded = state.load()
    assert loaded is not None
    assert loaded.volumes == {"v": record}


def test_to_json_is_plain_data() -> None:
    data: dict[str, Any] = full_state().to_json()
    assert json.loads(json.dumps(data)) == data
    assert State.from_json(data, path=Path("/x")) == full_state()
