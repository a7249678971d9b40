"""One stand-in for `aishell.engine.client.Engine` at the process boundary.

`FakeEngine` is an `Engine` (same attributes: `binary`, `kind`, `name`, `flavour`,
`rootless`) whose verbs never spawn anything. Each verb records a `Call` and answers
from a small table of rules that the test sets up:

    engine = FakeEngine([
        (("volume", "inspect"), fail("Error: No such volume: v\n")),  # argv prefix -> Result
        (lambda call: call.verb == "stream", streamed("line 1", "line 2")),  # predicate
        (("ps",), lambda call: ok(f"{call.args[-1]}\n")),  # callable: computes the Result
    ])

Rules are tried in order and the first that matches answers; `engine.on(match, answer)`
puts a rule in front, so a test can override what its fixture set up. A call no rule
matches fails the test (AssertionError). What the real client does with an answer, the
fake does too: a failed result whose stderr says the engine is unreachable raises the
real `EngineError` (`Engine.raise_if_unreachable`), and `checked` is the real
`Engine.checked`, so its error messages cannot drift from the client's.

How each verb uses the answer (always an `aishell.engine.client.Result`):
- `capture`, `checked`, `capture_many`, `inspect_many`: the result itself
  (`inspect_many` is matched as the argv `<kind> inspect <names...>`);
- `stream`: every line of stdout, then of stderr, goes to `on_line`; returns the code;
- `call`: stdout/stderr are written to ours; returns the code;
- `exec_`: like `call`, then raises `SystemExit(code)` (the process "was replaced").
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import NamedTuple, NoReturn, TypeAlias

from aishell.engine.client import Engine, Result

__all__ = ["Answer", "Call", "FakeEngine", "Match", "Rule", "fail", "ok", "streamed"]


class Call(NamedTuple):
    """One engine call as the code under test made it."""

    verb: str  # "capture", "checked", "capture_many", "inspect_many", "stream", "call", "exec_"
    args: tuple[str, ...]  # the argv after the engine binary
    input: str | None = None  # stdin text (`capture`/`checked` input, `stream` stdin_text)
    env: dict[str, str] | None = None  # None: the engine would inherit our environment


Match: TypeAlias = tuple[str, ...] | Callable[[Call], bool]
Answer: TypeAlias = Result | Callable[[Call], Result]
Rule: TypeAlias = tuple[Match, Answer]


def ok(stdout: str = "") -> Result:
    return Result(0, stdout, "")


def fail(stderr: str, returncode: int = 1, stdout: str = "") -> Result:
    return Result(returncode, stdout, stderr)


def streamed(*lines: str, returncode: int = 0) -> Result:
    """The answer for a `stream` call that prints `lines`."""
    return Result(returncode, "".join(f"{line}\n" for line in lines), "")


def _matches(match: Match, call: Call) -> bool:
    if isinstance(match, tuple):
        return call.args[: len(match)] == match
    return match(call)


def _env(env: Mapping[str, str] | None) -> dict[str, str] | None:
    return None if env is None else dict(env)


class FakeEngine(Engine):
    """An `Engine` that answers from rules and records every call in `calls`."""

    rules: list[Rule]
    calls: list[Call]
    _rootless: bool | None
    _verb: str

    def __new__(
        cls,
        rules: Iterable[Rule] = (),
        *,
        binary: str = "/usr/bin/docker",
        kind: str = "docker",
        rootless: bool | None = None,
    ) -> FakeEngine:
        self = super().__new__(cls, binary, kind)
        self.rules = list(rules)
        self.calls = []
        self._rootless = rootless  # None: decided as the real client decides
        self._verb = "capture"
        return self

    @property
    def rootless(self) -> bool:
        return super().rootless if self._rootless is None else self._rootless

    # -- setting up and reading back ----------------------------------------------

    def on(self, match: Match, answer: Answer) -> FakeEngine:
        """Answer calls that `match` with `answer`, before every rule set up so far."""
        self.rules.insert(0, (match, answer))
        return self

    def argvs(self, verb: str | None = None) -> list[tuple[str, ...]]:
        """The argv of every call so far (only `verb`'s, if given), in order."""
        return [c.args for c in self.calls if verb is None or c.verb == verb]

    def _answer(self, call: Call) -> Result:
        self.calls.append(call)
        for match, answer in self.rules:
            if _matches(match, call):
                return answer(call) if callable(answer) else answer
        raise AssertionError(f"unexpected engine call: {call.verb} {' '.join(call.args)}")

    def _raise_if_unreachable(self, results: Iterable[Result]) -> None:
        for result in results:
            if not result.ok:
                self.raise_if_unreachable(result.stderr)

    # -- the verbs ------------------------------------------------------------------

    def capture(
        self,
        *args: str,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Result:
        result = self._answer(Call(self._verb, args, input, _env(env)))
        self._raise_if_unreachable([result])
        return result

    def checked(
        self,
        *args: str,
        what: str,
        hint: str | None = None,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Result:
        # The real `checked` (it calls our `capture`, which records the call as "checked").
        self._verb = "checked"
        try:
            return super().checked(
                *args, what=what, hint=hint, input=input, env=env, timeout=timeout
            )
        finally:
            self._verb = "capture"

    def capture_many(self, *commands: Sequence[str], timeout: float | None = None) -> list[Result]:
        results = [self._answer(Call("capture_many", tuple(args))) for args in commands]
        self._raise_if_unreachable(results)
        return results

    def inspect_many(self, *queries: tuple[str, Sequence[str]]) -> list[Result]:
        results = [
            self._answer(Call("inspect_many", (kind, "inspect", *names))) for kind, names in queries
        ]
        self._raise_if_unreachable(results)
        return results

    def stream(
        self,
        args: Sequence[str],
        on_line: Callable[[str], None],
        *,
        env: Mapping[str, str] | None = None,
        stdin_text: str | None = None,
        hold_stdin: bool = False,
        timeout: float | None = None,
    ) -> int:
        result = self._answer(Call("stream", tuple(args), stdin_text, _env(env)))
        for line in (result.stdout + result.stderr).splitlines():
            on_line(line)
        return result.returncode

    def call(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> int:
        return self._print(self._answer(Call("call", tuple(argv), None, _env(env))))

    def exec_(self, argv: Sequence[str], *, env: Mapping[str, str]) -> NoReturn:
        raise SystemExit(self._print(self._answer(Call("exec_", tuple(argv), None, dict(env)))))

    @staticmethod
    def _print(result: Result) -> int:
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
        return result.returncode
