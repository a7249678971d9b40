"""The tests' fake engine (testing/fake_engine.py) behaves as the real client does."""

from __future__ import annotations

import pytest

from aishell.engine.client import Engine, Result
from aishell.errors import EngineError
from testing.fake_engine import Call, FakeEngine, fail, ok, streamed


def test_it_is_an_engine_with_the_real_attributes() -> None:
    engine = FakeEngine(binary="/opt/bin/podman", kind="podman", rootless=True)
    assert isinstance(engine, Engine)
    assert (engine.binary, engine.kind, engine.name) == ("/opt/bin/podman", "podman", "podman")
    assert engine.rootless is True
    assert engine.flavour.kind == "podman" and engine.flavour.rootless is True
    assert FakeEngine().name == "docker" and FakeEngine().kind == "docker"


def test_rules_answer_in_order_and_on_overrides() -> None:
    engine = FakeEngine([(("volume",), ok("first\n")), (("volume", "ls"), ok("never\n"))])
    assert engine.capture("volume", "ls").stdout == "first\n"
    engine.on(lambda call: call.args[-1] == "special", lambda call: ok(call.args[0]))
    assert engine.capture("volume", "special").stdout == "volume"
    assert engine.argvs() == [("volume", "ls"), ("volume", "special")]


def test_an_unexpected_call_fails_the_test_and_is_recorded() -> None:
    engine = FakeEngine([(("ps",), ok())])
    with pytest.raises(AssertionError, match="unexpected engine call: capture rm -f x"):
        engine.capture("rm", "-f", "x")
    assert engine.calls == [Call("capture", ("rm", "-f", "x"))]


def test_checked_raises_as_the_real_client_does() -> None:
    engine = FakeEngine([(("tag",), fail("Error response from daemon: No such image: a\n"))])
    with pytest.raises(EngineError) as info:
        engine.checked("tag", "a", "b", what="tagging b", hint="run setup")
    assert info.value.message == "tagging b failed: No such image: a"
    assert info.value.hint == "run setup"
    assert engine.calls == [Call("checked", ("tag", "a", "b"))]
    engine.on(("tag",), ok())
    assert engine.checked("tag", "a", "b", what="tagging b").ok
    engine.capture("tag", "c", "d", input="x", env={"A": "1"})
    assert engine.calls[-1] == Call("capture", ("tag", "c", "d"), "x", {"A": "1"})


@pytest.mark.parametrize("verb", ["capture", "checked", "capture_many", "inspect_many"])
def test_an_unreachable_engine_is_the_real_engine_error(verb: str) -> None:
    down = fail("Cannot connect to the Docker daemon at unix:///var/run/docker.sock.\n")
    engine = FakeEngine([((), down)])
    with pytest.raises(EngineError, match="the docker engine is not answering"):
        if verb == "capture":
            engine.capture("ps")
        elif verb == "checked":
            engine.checked("ps", what="listing")
        elif verb == "capture_many":
            engine.capture_many(["ps"])
        else:
            engine.inspect_many(("image", ["a"]))


def test_inspect_many_is_matched_as_the_cli_command() -> None:
    engine = FakeEngine([(("image", "inspect"), ok("[]\n")), (("volume",), fail("no\n"))])
    got = engine.inspect_many(("image", ["a", "b"]), ("volume", ["v"]))
    assert got == [Result(0, "[]\n", ""), Result(1, "", "no\n")]
    assert engine.calls[0] == Call("inspect_many", ("image", "inspect", "a", "b"))


def test_stream_call_and_exec(capsys: pytest.CaptureFixture[str]) -> None:
    engine = FakeEngine(
        [
            (("build",), streamed("step 1", "step 2", returncode=3)),
            (("attach",), Result(0, "out\n", "err\n")),
            (("run",), Result(7, "ran\n", "")),
        ]
    )
    lines: list[str] = []
    assert engine.stream(["build", "."], lines.append, stdin_text="FROM x\n") == 3
    assert lines == ["step 1", "step 2"]
    assert engine.calls[0] == Call("stream", ("build", "."), "FROM x\n", None)
    assert engine.call(["attach", "c"]) == 0
    with pytest.raises(SystemExit) as exited:
        engine.exec_(["run", "img"], env={"K": "v"})
    assert exited.value.code == 7
    assert engine.calls[-1] == Call("exec_", ("run", "img"), None, {"K": "v"})
    assert capsys.readouterr() == ("out\nran\n", "err\n")
