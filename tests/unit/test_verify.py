"""`aishell verify`: the fact protocol, the verdicts, the bait, and the command's flow
with a fake engine (the real engine runs in tests/integration/test_verify.py)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aishell.commands import verify
from aishell.commands.verify import (
    DEFAULT_CAPS,
    FAIL,
    NO_RESULT,
    PASS,
    SKIP,
    Canary,
    Check,
    Expected,
    ToolSpec,
)
from aishell.engine.client import Result
from aishell.engine.run_args import Bind
from aishell.errors import AishellError
from testing.fake_engine import Call, FakeEngine

UID, GID = 1000, 1000
HOME_CANARY = "/home/u/.aishell-verify-abc/canary"
TMP_CANARY = "/tmp/.aishell-verify-def/canary"
OPENCODE = ToolSpec("opencode", "OpenCode", "opencode", "--version")


def expected(**kw: Any) -> Expected:
    base: dict[str, Any] = {
        "uid": UID,
        "gid": GID,
        "canaries": (Canary(HOME_CANARY, (HOME_CANARY,)), Canary(TMP_CANARY, (TMP_CANARY,))),
        "project_dir": "/home/u/proj",
        "tools": (OPENCODE,),
        "env_name": "AISHELL_VERIFY_CANARY_X",
    }
    base.update(kw)
    return Expected(**base)


GOOD_NON_ROOT = f"""\
AISHELL-VERIFY sudo yes
AISHELL-VERIFY uid {UID}
AISHELL-VERIFY gid {GID}
AISHELL-VERIFY capeff 0000000000000000
AISHELL-VERIFY capbnd 00000000a80425fb
AISHELL-VERIFY capamb 0000000000000000
AISHELL-VERIFY init-capbnd 00000000a80425fb
AISHELL-VERIFY sudo-capeff 00000000a80425fb
AISHELL-VERIFY init docker-init
AISHELL-VERIFY canary absent {HOME_CANARY}
AISHELL-VERIFY canary absent {TMP_CANARY}
AISHELL-VERIFY env absent
AISHELL-VERIFY project ok {UID}:{GID}
AISHELL-VERIFY git-probe config refused error: could not write config file .git/config
AISHELL-VERIFY git-probe config-file refused sh: 1: cannot create .git/config: Read-only file system
AISHELL-VERIFY git-probe hooks refused sh: 1: cannot create .git/hooks/x: Read-only file system
AISHELL-VERIFY git-probe info refused sh: 1: cannot create .git/info/x: Read-only file system
AISHELL-VERIFY git-probe rename refused mv: cannot move '.git': Device or resource busy
AISHELL-VERIFY setuid chmod-u+s refused chmod: Operation not permitted
AISHELL-VERIFY setuid chmod-g+s refused chmod: Operation not permitted
AISHELL-VERIFY setuid install-4755 refused install: Operation not permitted
AISHELL-VERIFY setuid user-chmod-u+s refused chmod: Operation not permitted
AISHELL-VERIFY device refused mknod: Operation not permitted
AISHELL-VERIFY sockets-searched 30 mounts
AISHELL-VERIFY port closed 172.17.0.1:2375
AISHELL-VERIFY port closed 172.17.0.1:2376
AISHELL-VERIFY tool opencode ok 1.2.3
AISHELL-VERIFY done 1
"""

GOOD_ROOT = (
    GOOD_NON_ROOT.replace(f"uid {UID}", "uid 0")
    .replace(f"gid {GID}", "gid 0")
    .replace("capeff 0000000000000000", "capeff 00000000a80425fb")
    .replace(f"project ok {UID}:{GID}", "project ok 0:0")
    .replace("AISHELL-VERIFY sudo yes\n", "AISHELL-VERIFY sudo no\n")
    .replace("AISHELL-VERIFY sudo-capeff 00000000a80425fb\n", "")
)


def facts(text: str = GOOD_NON_ROOT, *, drop: tuple[str, ...] = (), add: str = "") -> Any:
    kept = [
        line
        for line in text.splitlines()
        if not any(line.startswith(f"AISHELL-VERIFY {k} ") for k in drop)
    ]
    return verify.parse_facts("\n".join(kept) + "\n" + add)


def by_id(checks: list[Check]) -> dict[str, Check]:
    return {c.id: c for c in checks}


def run_eval(
    fs: Any, exp: Expected | None = None, owner: tuple[int, int] | None = (UID, GID)
) -> dict[str, Check]:
    return by_id(verify.evaluate(fs, exp or expected(), host_owner=owner))


# ------------------------------------------------------------------ protocol


def test_parse_facts_keeps_only_protocol_lines_in_order() -> None:
    text = (
        "some tool noise\n"
        "AISHELL-VERIFY uid 1000\r\n"
        "AISHELL-VERIFY canary absent /a b/c\n"
        "AISHELL-VERIFY canary readable /d\n"
        "AISHELL-VERIFYX uid 5\n"
        "  AISHELL-VERIFY uid 6\n"
        "AISHELL-VERIFY env\n"
        "AISHELL-VERIFY \n"
    )
    assert verify.parse_facts(text) == {
        "uid": ["1000"],
        "canary": ["absent /a b/c", "readable /d"],
        "env": [""],
    }


def test_parse_facts_of_nothing_is_empty() -> None:
    assert verify.parse_facts("") == {}
    assert verify.parse_facts("docker: Error response from daemon\n") == {}


# ------------------------------------------------------------------ capabilities


def test_default_capability_mask_is_dockers() -> None:
    assert DEFAULT_CAPS == 0x00000000A80425FB
    assert verify.cap_names(DEFAULT_CAPS) == sorted(
        verify.DEFAULT_CAPS_NAMES, key=verify.CAP_NAMES.index
    )


def test_cap_names_decodes_bits() -> None:
    assert verify.cap_names(0) == []
    assert verify.cap_names(1 << 21) == ["sys_admin"]
    assert verify.cap_names((1 << 12) | (1 << 19) | 1) == ["chown", "net_admin", "sys_ptrace"]
    assert verify.cap_names(1 << 40) == ["checkpoint_restore"]
    assert verify.cap_names(1 << 50) == ["cap_50"]
    assert verify.cap_names(0x000001FFFFFFFFFF)[-1] == "checkpoint_restore"


def test_parse_mask() -> None:
    assert verify.parse_mask("00000000a80425fb") == DEFAULT_CAPS
    assert verify.parse_mask("000001ffffffffff") == (1 << 41) - 1
    assert verify.parse_mask("") is None
    assert verify.parse_mask(None) is None
    assert verify.parse_mask("zz") is None


def test_describe_caps() -> None:
    assert verify.describe_caps(0) == "none"
    assert verify.describe_caps(DEFAULT_CAPS) == "the default set"
    assert verify.describe_caps(0b11) == "chown, dac_override"


def test_extra_capabilities_fail_by_name() -> None:
    fs = facts(
        drop=("capbnd", "init-capbnd"),
        add="AISHELL-VERIFY capbnd 00000000a82425fb\nAISHELL-VERIFY init-capbnd 000001ffffffffff\n",
    )
    check = run_eval(fs)["capabilities"]
    assert check.status == FAIL
    assert "the agent's bounding set adds sys_admin" in check.detail
    assert "PID 1's bounding set adds" in check.detail
    assert "sys_module" in check.detail and "checkpoint_restore" in check.detail
    assert "chown" not in check.detail  # default capabilities are never listed as extra


def test_non_root_agent_with_effective_capabilities_fails() -> None:
    fs = facts(drop=("capeff",), add="AISHELL-VERIFY capeff 0000000000000001\n")
    check = run_eval(fs)["capabilities"]
    assert check.status == FAIL
    assert "non-root user but holds chown" in check.detail


def test_root_with_the_default_set_passes() -> None:
    check = run_eval(verify.parse_facts(GOOD_ROOT), expected(uid=0, gid=0), (0, 0))["capabilities"]
    assert check.status == PASS
    assert check.detail == "effective: the default set; bounding: the default set"


def test_podman_smaller_default_set_passes() -> None:
    podman = verify.caps_mask(
        ["chown", "dac_override", "fowner", "fsetid", "kill", "net_bind_service", "setfcap",
         "setgid", "setpcap", "setuid", "sys_chroot"]
    )  # fmt: skip
    fs = facts(
        drop=("capbnd", "init-capbnd", "sudo-capeff"),
        add=f"AISHELL-VERIFY capbnd {podman:016x}\nAISHELL-VERIFY init-capbnd {podman:016x}\n",
    )
    assert run_eval(fs)["capabilities"].status == PASS


# ------------------------------------------------------------------ verdicts


def test_a_good_non_root_sandbox_passes_everything() -> None:
    checks = verify.evaluate(facts(), expected(), host_owner=(UID, GID))
    assert [c.id for c in checks] == [
        "user", "not-root", "canary", "socket", "capabilities", "env", "project",
        "git-internals", "setuid", "devices", "init", "tool-opencode",
    ]  # fmt: skip
    assert {c.status for c in checks} == {PASS}, checks
    assert verify.passed(checks)


def test_root_host_user_skips_not_root_and_passes() -> None:
    checks = by_id(
        verify.evaluate(verify.parse_facts(GOOD_ROOT), expected(uid=0, gid=0), host_owner=(0, 0))
    )
    assert checks["not-root"].status == SKIP
    assert "host user is root" in checks["not-root"].detail
    assert checks["user"].status == PASS
    assert verify.passed(list(checks.values()))


def test_wrong_uid_fails_user_and_root_fails_not_root() -> None:
    fs = facts(drop=("uid", "gid"), add="AISHELL-VERIFY uid 0\nAISHELL-VERIFY gid 0\n")
    checks = run_eval(fs)
    assert checks["user"].status == FAIL
    assert "runs as uid 0, gid 0; the host user is 1000:1000" in checks["user"].detail
    assert checks["not-root"].status == FAIL


def test_readable_canary_fails_and_names_the_mount() -> None:
    home = Canary(HOME_CANARY, (HOME_CANARY,), via="/home/u")
    fs = facts(
        drop=("canary",),
        add=f"AISHELL-VERIFY canary readable {HOME_CANARY}\n"
        f"AISHELL-VERIFY canary absent {TMP_CANARY}\n",
    )
    check = run_eval(fs, expected(canaries=(home, Canary(TMP_CANARY, (TMP_CANARY,)))))["canary"]
    assert check.status == FAIL
    assert check.detail == f"{HOME_CANARY} is readable inside, through the configured mount /home/u"


def test_canary_visible_at_a_mapped_path_fails() -> None:
    mapped = "/mnt/home/.aishell-verify-abc/canary"
    canary = Canary(HOME_CANARY, (HOME_CANARY, mapped), via="/home/u")
    fs = facts(
        drop=("canary",),
        add=f"AISHELL-VERIFY canary absent {HOME_CANARY}\nAISHELL-VERIFY canary visible {mapped}\n",
    )
    check = run_eval(fs, expected(canaries=(canary,)))["canary"]
    assert check.status == FAIL
    assert f"{HOME_CANARY} (as {mapped}) is visible inside" in check.detail


def test_no_canary_place_is_a_skip() -> None:
    assert run_eval(facts(), expected(canaries=()))["canary"].status == SKIP


def test_reachable_engine_socket_fails() -> None:
    fs = facts(
        add="AISHELL-VERIFY socket api /run/docker.sock\n"
        "AISHELL-VERIFY socket other /tmp/tmux-1000/default\n"
    )
    check = run_eval(fs)["socket"]
    assert check.status == FAIL
    assert check.detail == "/run/docker.sock answers the engine API"


def test_engine_named_socket_fails_even_when_it_does_not_answer() -> None:
    fs = facts(add="AISHELL-VERIFY socket named /run/user/1000/podman/podman.sock\n")
    check = run_eval(fs)["socket"]
    assert check.status == FAIL
    assert "podman.sock is an engine socket" in check.detail


def test_tcp_engine_api_fails_and_open_port_is_noted() -> None:
    fs = facts(drop=("port",), add="AISHELL-VERIFY port api 172.17.0.1:2375\n")
    assert run_eval(fs)["socket"].status == FAIL
    fs = facts(drop=("port",), add="AISHELL-VERIFY port open 172.17.0.1:2376\n")
    check = run_eval(fs)["socket"]
    assert check.status == PASS
    assert "2376 is open but did not answer" in check.detail


def test_leaked_env_canary_fails() -> None:
    fs = facts(drop=("env",), add="AISHELL-VERIFY env present agent-name process\n")
    check = run_eval(fs)["env"]
    assert check.status == FAIL
    assert check.detail == (
        "AISHELL_VERIFY_CANARY_X reached the agent's environment, a process environment"
    )


def test_project_checks() -> None:
    fs = facts(drop=("project",), add="AISHELL-VERIFY project error Permission denied\n")
    check = run_eval(fs)["project"]
    assert (check.status, check.detail) == (
        FAIL,
        "cannot create a file in /home/u/proj: Permission denied",
    )
    assert run_eval(facts(), owner=(0, 0))["project"].detail == (
        "a file created inside belongs to 0:0 on the host, not 1000:1000"
    )
    assert "not in /home/u/proj on the host" in run_eval(facts(), owner=None)["project"].detail


def test_pid1_must_be_an_init() -> None:
    for name in ("docker-init", "tini", "catatonit"):
        fs = facts(drop=("init",), add=f"AISHELL-VERIFY init {name}\n")
        assert run_eval(fs)["init"].status == PASS
    fs = facts(drop=("init",), add="AISHELL-VERIFY init bash\n")
    assert run_eval(fs)["init"].status == FAIL


def test_tools() -> None:
    two = expected(tools=(OPENCODE, ToolSpec("gitleaks", "Gitleaks", "gitleaks", "version")))
    fs = facts(add="AISHELL-VERIFY tool gitleaks failed exit 127: not found\n")
    checks = run_eval(fs, two)
    assert checks["tool-opencode"] == Check(
        "tool-opencode", "OpenCode is present and runs", PASS, "1.2.3"
    )
    assert checks["tool-gitleaks"].status == FAIL
    assert checks["tool-gitleaks"].detail == "'gitleaks version' exit 127: not found"
    fs = facts(drop=("tool",), add="AISHELL-VERIFY tool opencode missing opencode is not on PATH\n")
    assert run_eval(fs)["tool-opencode"].detail == "'opencode' is not on PATH"
    none = run_eval(facts(), expected(tools=()))
    assert none["tools"].status == SKIP
    assert "tool-opencode" not in none


def test_missing_facts_fail_every_check_that_needs_them() -> None:
    checks = verify.evaluate({"sudo": ["yes"]}, expected(), host_owner=None)
    statuses = {c.id: c.status for c in checks}
    assert statuses == {
        "user": FAIL, "not-root": FAIL, "canary": FAIL, "socket": FAIL, "capabilities": FAIL,
        "env": FAIL, "project": FAIL, "git-internals": FAIL, "setuid": FAIL, "devices": FAIL,
        "init": FAIL, "tool-opencode": FAIL,
    }  # fmt: skip
    assert all(c.detail == NO_RESULT for c in checks)


# ------------------------------------------------------------------ rendering


def test_render_text_lines_and_summary() -> None:
    checks = [
        Check("a", "Alpha", PASS, "fine"),
        Check("b", "Beta", FAIL, "broken"),
        Check("c", "Gamma", SKIP, "n/a"),
        Check("d", "Delta", PASS),
    ]
    assert verify.render_text(checks) == [
        "✓ Alpha (fine)",
        "✗ Beta: broken",
        "- Gamma: skipped (n/a)",
        "✓ Delta",
        "1 of 4 checks failed, 1 skipped.",
    ]
    assert verify.render_text(checks, utf8=False)[:2] == ["+ Alpha (fine)", "x Beta: broken"]
    assert verify.render_text([checks[0], checks[2]])[-1] == "All 1 checks passed, 1 skipped."
    colored = verify.render_text(checks, color=True)
    assert colored[0] == "\033[32m✓\033[0m Alpha (fine)"


def test_json_shape() -> None:
    checks = verify.evaluate(facts(), expected(), host_owner=(UID, GID))
    data = json.loads(json.dumps(verify.report_json(checks)))
    assert list(data) == ["passed", "checks"]
    assert data["passed"] is True
    for item in data["checks"]:
        assert list(item) == ["id", "label", "status", "detail"]
        assert item["status"] in verify.STATUSES
        assert all(isinstance(item[k], str) for k in item)
    failed = verify.report_json([Check("x", "X", FAIL, "d")])
    assert failed == {"passed": False, "checks": [
        {"id": "x", "label": "X", "status": "fail", "detail": "d"}]}  # fmt: skip


# ------------------------------------------------------------------ bait


def test_canary_parents_skip_the_project_and_duplicates(tmp_path: Path) -> None:
    home = tmp_path / "home"
    proj = home / "proj"
    tmp = tmp_path / "tmp"
    for d in (proj, tmp):
        d.mkdir(parents=True)
    (tmp_path / "link").symlink_to(home)
    assert verify.canary_parents([str(home), str(tmp)], [str(proj)]) == [str(home), str(tmp)]
    assert verify.canary_parents([str(home), str(tmp_path / "link")], [str(proj)]) == [str(home)]
    # The project is the home directory (or holds it): the home is mounted on purpose.
    assert verify.canary_parents([str(home), str(tmp)], [str(home)]) == [str(tmp)]
    assert verify.canary_parents([str(home), str(tmp)], [str(tmp_path)]) == []
    assert verify.canary_parents([str(tmp_path / "missing"), ""], []) == []


def test_probes_for_maps_through_binds() -> None:
    binds = [
        Bind("/home/u/proj", "/home/u/proj"),
        Bind("/home/u", "/mnt/home", readonly=True),
        Bind("/home", "/home"),
    ]
    probes, via = verify.probes_for("/home/u/.x/canary", binds)
    assert probes == ("/home/u/.x/canary", "/mnt/home/.x/canary")
    assert via == "/home/u"
    assert verify.probes_for("/tmp/.x/canary", binds) == (("/tmp/.x/canary",), None)


def test_plant_and_remove_canaries(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    canaries = verify.plant_canaries(
        [str(a), str(b), str(tmp_path / "missing")], [Bind(str(b), "/elsewhere")]
    )
    assert len(canaries) == 2
    first, second = canaries
    assert Path(first.path).read_text().startswith("aishell verify canary ")
    assert Path(first.path).parent.parent == a
    assert oct(Path(first.path).parent.stat().st_mode & 0o777) == "0o700"
    assert first.via is None
    assert second.via == str(b)
    assert second.probes[1].startswith("/elsewhere/.aishell-verify-")
    verify.remove_canaries(canaries)
    assert list(a.iterdir()) == [] and list(b.iterdir()) == []


def test_script_args() -> None:
    canary = Canary("/h/c", ("/h/c", "/m/c"))
    args = verify.script_args(expected(canaries=(canary,)), env_value="v", probe_name=".p")
    assert args == (
        "canary=/h/c", "canary=/m/c", "env-name=AISHELL_VERIFY_CANARY_X", "env-value=v",
        "project=/home/u/proj", "probe=.p", "tool=opencode:opencode:--version",
    )  # fmt: skip


def test_tool_specs() -> None:
    from aishell.state import State

    assert verify.tool_specs(None) == ()
    specs = verify.tool_specs(State(tools={"openspec": "latest", "claude": "1.0.0"}, gitleaks=True))
    assert [(s.name, s.command, s.version_arg) for s in specs] == [
        ("claude", "claude", "--version"),
        ("openspec", "openspec", "--version"),
        ("gitleaks", "gitleaks", "version"),
    ]


def test_the_script_is_valid_bash_and_never_baked_into_an_image() -> None:
    from aishell.engine import images

    text = verify.script_text()
    subprocess.run(["bash", "-n"], input=text, text=True, check=True)
    # bash reads it from stdin: everything runs inside main() with stdin closed.
    assert text.rstrip().endswith('main "$@" </dev/null')
    assert "verify.sh" not in images.TEMPLATE_FILES


# ------------------------------------------------------------------ the command, faked engine


def sandbox(behave: str = "good") -> Callable[[Call], Result]:
    """The verification run: `good`, `leaky` (the canaries are readable) or `broken`."""

    def answer(call: Call) -> Result:
        args = call.args
        if behave == "broken":
            return Result(125, "", "docker: invalid reference format.\n")
        i = args.index("bash")
        assert args[i : i + 3] == ("bash", "-s", "--")
        opts = dict(
            a.split("=", 1) for a in args[i + 3 :] if not a.startswith(("canary=", "tool="))
        )
        canaries = [a.split("=", 1)[1] for a in args[i + 3 :] if a.startswith("canary=")]
        probe = os.path.join(opts["project"], opts["probe"])
        Path(probe).write_text("x")
        uid, gid = os.getuid(), os.getgid()
        lines = [f"uid {uid}", f"gid {gid}", "capeff 0000000000000000", "capbnd 00000000a80425fb",
                 "capamb 0000000000000000", "init-capbnd 00000000a80425fb", "init docker-init",
                 "env absent", f"project ok {uid}:{gid}", "sockets-searched 3 mounts",
                 "tool opencode ok 1.2.3"]  # fmt: skip
        if uid == 0:
            lines[2] = "capeff 00000000a80425fb"
        # The host-boundary probes: a copy in the project that chmod could not change.
        Path(probe + "-suid").write_text("x")
        lines += [f"git-probe {w} refused x" for w in verify.GIT_PROBES]
        lines += ["setuid chmod-u+s refused x", "setuid chmod-g+s refused x",
                  "setuid install-4755 refused x", "setuid user-chmod-u+s refused x",
                  "device refused x"]  # fmt: skip
        if behave == "holes":
            os.chmod(probe + "-suid", 0o4755)
            lines[-5] = "setuid chmod-u+s done"
        state = "readable" if behave == "leaky" else "absent"
        lines += [f"canary {state} {c}" for c in canaries]
        return Result(0, "".join(f"AISHELL-VERIFY {line}\n" for line in lines), "")

    return answer


@pytest.fixture
def fake_launch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    from aishell import launch, state
    from aishell.config import Config
    from aishell.engine.run_args import HostFacts, RunSpec, build_run_args
    from aishell.project import Project

    home = tmp_path / "home"
    proj = home / "proj"
    tmp = tmp_path / "tmp"
    proj.mkdir(parents=True)
    tmp.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(tmp))
    host = HostFacts(uid=os.getuid(), gid=os.getgid(), user="u", home=str(home), cwd=str(proj),
                     stdin_tty=True, stdout_tty=True)  # fmt: skip
    spec = RunSpec(image="aishell:base", command=("true",), project_dir=str(proj),
                   workdir=str(proj))  # fmt: skip
    engine = FakeEngine([(("run",), sandbox())])

    def prepare(req: Any) -> Any:
        assert req.kind == "exec"
        return launch.Prepared(engine=engine, project=Project(str(proj), str(proj), "abcd1234"),
                               config=Config(), host=host, spec=spec,
                               run_args=build_run_args(spec, host), container=None)  # fmt: skip

    monkeypatch.setattr(launch, "prepare", prepare)
    monkeypatch.setattr(state, "load", lambda *a, **k: state.State(tools={"opencode": "latest"}))
    return engine, home, proj, tmp


def _leftovers(*dirs: Path) -> list[str]:
    return [p.name for d in dirs for p in d.iterdir() if ".aishell-verify-" in p.name]


def test_main_passes_and_cleans_up(fake_launch: Any, capsys: pytest.CaptureFixture[str]) -> None:
    engine, home, proj, tmp = fake_launch
    assert verify.main([]) == 0
    out, err = capsys.readouterr()
    assert "Verifying the sandbox of" in err
    assert out.splitlines()[-1].startswith("All ")
    (call,) = engine.calls
    args = call.args
    assert "-i" in args and "-it" not in args  # never a terminal: output is captured
    assert call.input == verify.script_text()
    canary_vars = [k for k in call.env or {} if k.startswith("AISHELL_VERIFY_CANARY_")]
    assert len(canary_vars) == 1
    name = canary_vars[0]
    value = (call.env or {})[name]
    assert f"env-name={name}" in args
    assert not [a for a in args if a == f"-e{name}" or a.startswith(f"{name}=")]
    assert f"-e {name}" not in " ".join(args)
    assert value not in " ".join(a for a in args if not a.startswith("env-value="))
    canaries = [a.split("=", 1)[1] for a in args if a.startswith("canary=")]
    assert len(canaries) == 2
    assert {str(Path(c).parent.parent) for c in canaries} == {str(home), str(tmp)}
    assert _leftovers(home, tmp, proj) == []


def test_main_json_and_failure_exit(fake_launch: Any, capsys: pytest.CaptureFixture[str]) -> None:
    engine, home, proj, tmp = fake_launch
    engine.on(("run",), sandbox("leaky"))
    assert verify.main(["--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["passed"] is False
    statuses = {c["id"]: c["status"] for c in data["checks"]}
    assert statuses["canary"] == FAIL
    assert statuses["project"] == PASS
    assert _leftovers(home, tmp, proj) == []


def test_main_fails_on_a_setuid_file_and_removes_it(
    fake_launch: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    engine, home, proj, tmp = fake_launch
    engine.on(("run",), sandbox("holes"))
    assert verify.main(["--json"]) == 1
    statuses = {
        c["id"]: (c["status"], c["detail"]) for c in json.loads(capsys.readouterr().out)["checks"]
    }
    assert statuses["setuid"][0] == FAIL
    assert "chmod-u+s worked" in statuses["setuid"][1]
    assert "a file with mode 4755 appeared on the host" in statuses["setuid"][1]
    assert statuses["git-internals"][0] == PASS
    assert _leftovers(home, tmp, proj) == []


def test_main_when_the_sandbox_does_not_start(fake_launch: Any) -> None:
    engine, home, proj, tmp = fake_launch
    engine.on(("run",), sandbox("broken"))
    with pytest.raises(AishellError) as info:
        verify.main([])
    assert "did not run (exit 125)" in info.value.message
    assert "invalid reference format" in (info.value.details or "")
    assert _leftovers(home, tmp, proj) == []


def test_usage_errors() -> None:
    from aishell.errors import UsageError

    with pytest.raises(UsageError):
        verify.main(["--bogus"])
