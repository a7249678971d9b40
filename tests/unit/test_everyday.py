"""Issue 13, the pure parts: error messages that point at the fix, setup's changes,
update reinstalling only what changed, stop/ps --all, config rendering, completion,
the sensitive-file pause, engine choice reasons."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from aishell import cli, diagnose, session, state
from aishell.commands import config as config_cmd
from aishell.commands import setup, stop, update
from aishell.completion import ARGUMENTS, SESSIONS, arguments, commands
from aishell.engine import choice, client, images, volumes
from aishell.errors import AishellError, EngineError, UsageError
from aishell.launch.request import LaunchRequest
from aishell.launch.resolve import NotInstalled, require_setup
from aishell.launch.run import start_failure
from aishell.security import report
from aishell.security.rules import Severity
from aishell.security.scan import Finding, ScanResult

# ---------------------------------------------------------------- port conflicts

DOCKER_PORT_CONFLICT = (
    "docker: Error response from daemon: driver failed programming external connectivity "
    "on endpoint aishell-1a2b3c4d-claude (5bf4372): Bind for 127.0.0.1:39517 failed: "
    "port is already allocated\n\nRun 'docker run --help' for more information\n"
)


def test_port_conflict_shows_the_engines_cause_not_its_usage_tip() -> None:
    exc = start_failure("aishell-1a2b3c4d-claude", DOCKER_PORT_CONFLICT, 125)
    assert exc.message == (
        "starting aishell-1a2b3c4d-claude failed: driver failed programming external "
        "connectivity on endpoint aishell-1a2b3c4d-claude (5bf4372): Bind for "
        "127.0.0.1:39517 failed: port is already allocated"
    )
    assert "Run 'docker run --help'" not in exc.message
    assert exc.hint == "free that port, or change 'ports:' in your aishell config"


@pytest.mark.parametrize(
    ("stderr", "cause"),
    [
        ("docker: Error response from daemon: boom.\nSee 'docker run --help'.\n", "boom."),
        ("Error: crun: executable file not found\n", "crun: executable file not found"),
        ("Run 'docker run --help' for more information\n", ""),
        ("", ""),
    ],
)
def test_engine_cause(stderr: str, cause: str) -> None:
    assert client.engine_cause(stderr) == cause


# ---------------------------------------------------------------- TLS and npm

CURL_TLS = [
    "Step 9/20 : RUN set -eu; case ...",
    " ---> Running in 3f1e2d",
    # (split by colour codes where the builder's output arrived in two pieces)
    "\x1b[91mc\x1b[0m\x1b[91murl: (60) SSL certificate problem: "
    "unable to get local issuer certificate",
    "More details here: https://curl.se/docs/sslcerts.html",
    "The command '/bin/sh -c set -eu;' returned a non-zero code: 60",
]


def test_a_tls_failure_in_a_build_names_ca_certificates() -> None:
    exc = images.build_failure("aishell-home-x:foundation", 60, CURL_TLS[0], CURL_TLS, False)
    assert exc.message == (
        "building aishell-home-x:foundation failed: a TLS certificate was not trusted "
        "(curl: (60) SSL certificate problem: unable to get local issuer certificate)"
    )
    assert exc.hint == (
        "your network inspects TLS (e.g. a company proxy): add its CA certificates to "
        "~/.aishell/config.yaml, e.g. 'ca_certificates: "
        "[/usr/local/share/ca-certificates/corp-root.crt]' (PEM files), then run the "
        "command again"
    )
    assert "see the build output above" not in exc.hint


@pytest.mark.parametrize(
    "line",
    [
        "npm error code SELF_SIGNED_CERT_IN_CHAIN",
        "npm error request to https://registry.npmjs.org/x failed, reason: unable to get "
        "local issuer certificate",
        "Certificate verification failed: The certificate is NOT trusted. The certificate "
        "issuer is unknown.",
        "ssl.SSLCertVerificationError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed",
        "x509: certificate signed by unknown authority",
    ],
)
def test_tls_failures_are_recognised(line: str) -> None:
    found = diagnose.tls_failure(["something", line])
    assert found is not None and "ca_certificates" in found.hint


def test_a_plain_build_failure_names_its_step() -> None:
    step = "Step 5/20 : RUN make"
    exc = images.build_failure("t", 2, step, ["make: *** [all] Error 2"], False)
    assert exc.message == "building t failed (exit 2) at Step 5/20 : RUN make"


NPM_ETARGET = [
    "AISHELL-STATUS installing",
    "npm error code ETARGET",
    "npm error notarget No matching version found for @anthropic-ai/claude-code@9.9.9.",
    "npm error notarget In most cases you or one of your dependencies are requesting",
    "npm error notarget a package version that doesn't exist.",
    "npm error A complete log of this run can be found in: "
    "/root/.npm/_logs/2026-12-01T10_00_00_000Z-debug-0.log",
]


def test_a_missing_npm_version_says_so_and_not_where_a_removed_container_logged() -> None:
    exc = volumes.install_failure(["@anthropic-ai/claude-code@9.9.9"], "v", 1, NPM_ETARGET, False)
    assert exc.message == (
        "installing @anthropic-ai/claude-code@9.9.9 failed: npm has no version 9.9.9 of "
        "@anthropic-ai/claude-code"
    )
    assert exc.hint == (
        "pick a published version (list them with 'aishell exec npm view "
        "@anthropic-ai/claude-code versions'), or leave out '=9.9.9' for the latest"
    )
    assert exc.details is not None
    assert "_logs" not in exc.details and "complete log" not in exc.details


def test_an_unknown_npm_package() -> None:
    lines = [
        "npm error code E404",
        "npm error 404 Not Found - GET https://registry.npmjs.org/nope-x - Not found",
        "npm error 404  'nope-x@latest' is not in this registry.",
    ]
    found = diagnose.npm_failure(lines)
    assert found is not None and found.cause == "npm has no package nope-x"


# ------------------------------------------------------------ pull failures


def long_run_failure() -> list[str]:
    """A RUN step with long output that mentions debian and 'not found' (the old
    heuristic called this a pull failure once 'Step 2/' had scrolled out of the tail)."""
    lines = [f"Get:{i} http://deb.debian.org/debian trixie/main pkg{i} [1 kB]" for i in range(80)]
    lines += ["E: Unable to locate package not-a-package", "sh: 1: thing: not found"]
    return lines[-60:]


def test_a_failing_run_step_is_not_a_pull_failure() -> None:
    assert not diagnose.pull_failure("Step 3/20 : RUN set -eux; apt-get ...", long_run_failure())


@pytest.mark.parametrize(
    "line",
    [
        "pull access denied for debian, repository does not exist or may require 'docker login'",
        "Error response from daemon: manifest for debian:nope not found: manifest unknown",
        "dial tcp: lookup registry-1.docker.io: no such host",
    ],
)
def test_a_from_step_that_cannot_pull_is_a_pull_failure(line: str) -> None:
    assert diagnose.pull_failure("Step 2/20 : FROM ${BASE_IMAGE}", ["Step 2/20 : FROM x", line])
    assert diagnose.pull_failure(None, [line])


def test_a_run_step_failure_in_the_foundation_is_reported_as_the_step(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def failing_build(*_a: Any, **_k: Any) -> None:
        raise images.BuildFailed(
            "building t failed (exit 100) at Step 3/20 : RUN apt-get",
            step="Step 3/20 : RUN apt-get",
            hint="see the build output above; fix the cause and run the command again",
            details="\n".join(long_run_failure()),
        )

    monkeypatch.setattr(images, "build_from_context", failing_build)
    monkeypatch.setattr(images, "inspect_images", lambda *_a: {})
    monkeypatch.setattr(images, "adopt", lambda *_a, **_k: None)
    context = images.BuildContext(files={}, build_args={"BASE_IMAGE": "debian:trixie-slim"})
    with pytest.raises(EngineError) as info:
        images.ensure_foundation(object(), context, holds=images.Holds("0" * 12))  # type: ignore[arg-type]
    assert "could not be pulled" not in info.value.message
    assert info.value.message == "building t failed (exit 100) at Step 3/20 : RUN apt-get"


# ------------------------------------------------------------ engine choice


def test_docker_host_is_named_when_its_engine_does_not_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.9.9.9:2375")
    engine = client.Engine("/usr/bin/docker", "docker")
    with pytest.raises(EngineError) as info:
        engine.raise_if_unreachable(
            "Cannot connect to the Docker daemon at tcp://10.9.9.9:2375. "
            "Is the docker daemon running?\n"
        )
    assert info.value.message == (
        "the docker engine at DOCKER_HOST=tcp://10.9.9.9:2375 is not answering"
    )
    assert info.value.hint == (
        "start that engine or correct DOCKER_HOST; unset it to use the local engine; "
        "check with 'docker info'"
    )
    assert "systemctl" not in (info.value.hint or "")


def test_no_permission_gives_the_docker_group_fix() -> None:
    engine = client.Engine("/usr/bin/docker", "docker")
    with pytest.raises(EngineError) as info:
        engine.raise_if_unreachable(
            "permission denied while trying to connect to the Docker daemon socket at "
            "unix:///var/run/docker.sock"
        )
    assert "sudo usermod -aG docker $USER" in (info.value.hint or "")


def test_falling_back_to_podman_is_never_silent(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AISHELL_ENGINE", raising=False)
    monkeypatch.setattr(choice, "_which", lambda name: f"/usr/bin/{name}")
    why = (
        "Docker's socket /var/run/docker.sock is not yours to use "
        "(you are not in the 'docker' group)"
    )
    monkeypatch.setattr(choice, "_docker_answers_cheaply", lambda: (False, why))
    engine = choice._detect()
    assert engine.kind == "podman"
    err = capsys.readouterr().err
    assert err == (
        f"Note: using Podman, not Docker: {why}; to use Docker, add yourself to the docker "
        "group ('sudo usermod -aG docker $USER', then log out and back in), or set "
        "'engine: podman' in ~/.aishell/config.yaml (or AISHELL_ENGINE=podman) to choose "
        "Podman and silence this note\n"
    )
    assert choice.reason() == f"auto-detected: {why}; using Podman"


def test_the_socket_without_permission_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("DOCKER_HOST", "DOCKER_CONTEXT", "XDG_RUNTIME_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    sock = tmp_path / "docker.sock"
    sock.write_text("")
    monkeypatch.setattr(choice, "_SOCKETS", (str(sock),))
    monkeypatch.setattr(choice.os, "access", lambda *_a: False)
    answers, why = choice._docker_answers_cheaply()
    assert not answers
    assert why == f"Docker's socket {sock} is not yours to use (you are not in the 'docker' group)"


# ------------------------------------------------------------ cli


def test_an_unknown_option_before_the_command_does_not_claim_it_was_after() -> None:
    with pytest.raises(UsageError) as info:
        cli.parse_global(["--quiet", "ps"])
    assert info.value.message == "unknown option '--quiet'"
    assert info.value.hint == (
        "aishell's own options (before the command) are --name, --detach, --unsafe, "
        "--install, --worktree, --debug; see 'aishell --help'"
    )
    assert "go before the command" not in (info.value.hint or "")


def test_a_command_option_given_first_says_where_it_goes() -> None:
    with pytest.raises(UsageError) as info:
        cli.parse_global(["--json", "ps"])
    assert (
        info.value.hint
        == "--json is an option of a command: put it after the command, 'aishell ps' --json"
    )


def test_stop_is_a_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert "stop" in cli.COMMANDS and "config" in cli.COMMANDS and "completion" in cli.COMMANDS
    assert "did you mean" not in cli.help_text()
    assert cli.main(["stop"]) == 2
    assert "name the containers to stop, or give --all" in capsys.readouterr().err


def test_install_is_a_run_option() -> None:
    opts, command, rest = cli.parse_global(["--install", "claude", "--x"])
    assert opts.install and command == "claude" and rest == ["--x"]
    with pytest.raises(UsageError):
        cli._run(opts._replace(), "ps", [])


# ------------------------------------------------------------ stop and ps --all


def item(name: str, short: str | None, state_: str = "running") -> dict[str, Any]:
    labels = f"aishell.project.hash=abc,aishell.name={short}" if short else ""
    return {"Names": name, "State": state_, "Labels": labels}


def test_stop_picks_this_projects_names_or_full_container_names() -> None:
    here = stop.running(
        [item("aishell-abc-claude", "claude"), item("aishell-abc-x", "x", "exited")]
    )
    assert here == {"aishell-abc-claude": "claude"}
    everywhere = {**here, "aishell-def-pi": "pi"}
    assert stop.pick(["claude", "aishell-def-pi", "nope"], here, everywhere) == (
        ["aishell-abc-claude", "aishell-def-pi"],
        ["nope"],
    )


# ------------------------------------------------------------ setup and update


def test_setup_names_what_it_disables() -> None:
    assert setup.changes({"claude": "latest", "pi": "1.0.0"}, {"opencode": "latest"}) == [
        "Disabled (not named in this setup): Claude Code, Pi coding agent; to keep them, "
        "add --with-claude --with-pi"
    ]
    assert setup.changes({"claude": "latest"}, {"claude": "2.0.0"}) == [
        "Claude Code: latest \u2192 2.0.0"
    ]
    assert setup.changes({}, {"claude": "latest"}) == []


def test_update_changes_only_what_differs() -> None:
    sel = {"claude": "latest", "opencode": "latest", "pi": "1.0.0"}
    installed = {"claude": "2.0.0", "opencode": "1.1.0", "pi": "1.0.0"}
    assert update.changed_tools(sel, installed, {**installed, "opencode": "1.2.0"}) == ["opencode"]
    assert update.changed_tools(sel, installed, installed) == []
    assert update.changed_tools(sel, installed, None) == ["claude", "opencode", "pi"]


@pytest.fixture
def saved(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """update.main with the engine-facing parts replaced; a volume with opencode 1.0.0."""
    from aishell.engine.client import Result
    from testing.fake_engine import FakeEngine, fail, ok

    base = volumes.volume_name({"opencode": "latest"})
    state.save(
        state.State(
            tools={"opencode": "latest"},
            foundation_hash="h",
            foundation_id="sha256:f",
            harness_volume=base,
            volumes={base: state.VolumeRecord("c", {"opencode": "1.0.0"}, "2026-01-01T00:00:00Z")},
        )
    )
    seen: dict[str, Any] = {"fills": [], "base": base}

    def inspect(name: str) -> Result:
        if name == base or seen["fills"]:
            return ok(json.dumps([{"Name": base, "CreatedAt": "c2"}]))
        return fail(f"Error: no such volume {name}\n")

    engine = FakeEngine(
        [
            (("volume", "inspect"), lambda call: inspect(call.args[-1])),
            (("ps",), ok("")),
            (("volume", "rm"), ok("")),
            (("rm", "-f"), ok("")),
        ]
    )

    def fill(_engine: object, **kw: Any) -> volumes.FillResult:
        seen["fills"].append(kw)
        return volumes.FillResult(True, {"opencode": "1.2.0"}, "2026-02-01T00:00:00Z")

    monkeypatch.setattr(choice, "get_engine", lambda *_a: engine)
    monkeypatch.setattr(setup, "global_config", lambda: object())
    monkeypatch.setattr(setup, "check_engine", lambda _e: None)
    monkeypatch.setattr(setup, "build_images", lambda *_a, **_k: setup.Foundation("h", "sha256:f"))
    monkeypatch.setattr(volumes, "fill", fill)
    monkeypatch.setattr(volumes, "latest_versions", lambda *_a: seen["latest"])
    return seen


def test_update_with_nothing_new_keeps_the_volume(
    saved: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    saved["latest"] = {"opencode": "1.0.0"}
    assert update.main([]) == 0
    assert saved["fills"] == []
    st = state.load()
    assert st is not None and st.harness_volume == saved["base"]
    err = capsys.readouterr().err
    assert "Already up to date:\n  OpenCode 1.0.0 \u2192 1.0.0 (unchanged)" in err


def test_update_installs_only_what_changed_on_a_copy_of_the_volume(
    saved: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    saved["latest"] = {"opencode": "1.2.0"}
    assert update.main([]) == 0
    (fill,) = saved["fills"]
    assert fill["seed"] == saved["base"] and fill["only"] == {"opencode": "1.2.0"}
    st = state.load()
    assert st is not None and st.harness_volume != saved["base"]
    assert "Reinstalling only what changed: OpenCode 1.2.0" in capsys.readouterr().err


def test_fill_from_a_seed_installs_only_the_changed_specs() -> None:
    sel = {"claude": "latest", "opencode": "latest"}
    owner = volumes.Owner.current()
    run = volumes.fill_args("new", sel, "img", refill=False, owner=owner, token="t",
                            seed="old", only={"opencode": "1.2.0"})  # fmt: skip
    assert "type=volume,source=old,target=/seed,readonly" in run
    assert "AISHELL_PACKAGES=@anthropic-ai/claude-code opencode-ai" in run
    assert run[run.index("aishell-fill") + 1 :] == ["opencode-ai@1.2.0"]
    podman = volumes.fill_args("new", sel, "img", refill=False, owner=owner, token="t",
                               seed="old", only={"opencode": "1.2.0"}, podman=True)  # fmt: skip
    assert "type=volume,source=old,target=/seed,ro" in podman  # (Podman 4 knows only `ro`)
    plain = volumes.fill_args("new", sel, "img", refill=False, owner=owner, token="t")
    options = plain[: plain.index("img")]  # (the script itself mentions /seed)
    assert not any("/seed" in a or "AISHELL_PACKAGES" in a for a in options)
    assert plain[plain.index("aishell-fill") + 1 :] == [
        "@anthropic-ai/claude-code@latest",
        "opencode-ai@latest",
    ]


# ------------------------------------------------------------ first run


def test_first_run_of_a_missing_agent_knows_what_to_install() -> None:
    st = state.State(tools={"opencode": "1.2.3"}, gitleaks=True)
    with pytest.raises(NotInstalled) as info:
        require_setup(LaunchRequest(kind="harness", harness="claude"), st)
    assert info.value.selection == {"opencode": "1.2.3", "claude": "latest"}
    assert info.value.gitleaks is True
    assert info.value.message == "Claude Code is not installed"
    assert info.value.hint == (
        "run 'aishell setup --with-claude --with-opencode=1.2.3 --with-gitleaks', or "
        "'aishell --install claude' to install it and start"
    )


def test_first_run_without_any_setup() -> None:
    with pytest.raises(NotInstalled) as info:
        require_setup(LaunchRequest(kind="harness", harness="pi"), None)
    assert info.value.selection == {"pi": "latest"}
    assert str(info.value) == "no setup found"
    with pytest.raises(NotInstalled) as shell:
        require_setup(LaunchRequest(kind="shell"), None)
    assert shell.value.selection == {} and "'aishell --install shell'" in (shell.value.hint or "")


def test_without_a_terminal_or_install_the_first_run_only_explains(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from aishell.commands import sandbox

    monkeypatch.setattr(sandbox.output, "interactive_terminal", lambda: False)
    missing = NotInstalled(
        "no setup found", hint="h", selection={"claude": "latest"}, gitleaks=False, what="x"
    )
    with pytest.raises(AishellError) as info:
        sandbox.install_missing(missing, explicit=False)
    assert info.value is missing


# ------------------------------------------------------------ config


def test_config_text_names_file_and_line() -> None:
    keys = {
        "mounts": {
            "value": [{"source": "/a", "target": "/b", "readonly": True, "origin": "x"}],
            "origins": [{"file": "/home/u/.aishell/config.yaml", "line": 3}],
        },
        "env": {
            "value": {"A": "1", "B": None},
            "origins": [
                {"file": "/home/u/.aishell/config.yaml", "line": 5, "key": "A"},
                {"file": "/p/.aishell/config.yaml", "line": 2, "key": "B"},
            ],
        },
        "tmux": {"value": False, "origins": [{"file": "/p/.aishell/config.yaml", "line": 7}]},
        "engine": {"value": None, "origin": "default"},
    }
    assert config_cmd.render(keys, home="/home/u") == [
        "mounts:",
        "  - /a:/b:ro  (~/.aishell/config.yaml:3)",
        "env:",
        '  A: "1"  (~/.aishell/config.yaml:5)',
        "  B: null  (/p/.aishell/config.yaml:2)",
        "tmux: false  (/p/.aishell/config.yaml:7)",
        "Defaults (no file sets them):",
        "  engine: null",
    ]


# ------------------------------------------------------------ completion


def test_completion_covers_every_command_and_agent() -> None:
    words = commands()
    for name in [*cli.COMMANDS, *cli.AGENTS]:
        assert name in words
    assert SESSIONS in arguments("attach") and SESSIONS in arguments("stop")
    assert set(ARGUMENTS) <= set(cli.COMMANDS)


# ------------------------------------------------------------ sensitive files


def result(*findings: Finding) -> ScanResult:
    return ScanResult(findings=findings, notes=(), files_scanned=10)


MEDIUM = Finding("env-file", Severity.MEDIUM, "environment file", ".env")


def test_findings_pause_once_until_they_change(tmp_path: Path) -> None:
    seen = tmp_path / "seen"
    asked: list[str] = []
    report.hold_for_reading(result(MEDIUM), seen=seen, wait=asked.append)
    assert asked == [report.PAUSE_PROMPT]
    report.hold_for_reading(result(MEDIUM), seen=seen, wait=asked.append)
    assert len(asked) == 1  # the same findings: read already
    other = MEDIUM._replace(path=".env.local")
    report.hold_for_reading(result(MEDIUM, other), seen=seen, wait=asked.append)
    assert len(asked) == 2
    report.hold_for_reading(result(), seen=tmp_path / "none", wait=asked.append)
    high = Finding("ssh-key", Severity.HIGH, "key", "id_rsa")
    report.hold_for_reading(result(high), seen=tmp_path / "high", wait=asked.append)
    assert len(asked) == 2  # nothing to read, or asked y/N already


# ------------------------------------------------------------ nested tmux


def test_detach_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    assert session.detach_keys({}) == "Ctrl-b d"
    monkeypatch.setattr(session, "_outer_prefix", lambda: "C-b")
    assert session.detach_keys({"TMUX": "/tmp/t,1,0"}) == "Ctrl-b Ctrl-b d"
    monkeypatch.setattr(session, "_outer_prefix", lambda: "C-a")
    assert session.detach_keys({"TMUX": "/tmp/t,1,0"}) == "Ctrl-b d"
    monkeypatch.setattr(session, "_outer_prefix", lambda: None)
    assert session.detach_keys({"TMUX": "/tmp/t,1,0"}) == "Ctrl-b Ctrl-b d"
