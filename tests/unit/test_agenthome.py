"""The agents' config in a sandbox (`aishell.agenthome`): the plan (pure) and what
`prepare` makes of it on the host, including what an agent left there."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from aishell import agenthome
from aishell.engine.run_args import Bind
from aishell.harnesses import BY_NAME, LOGIN_STORE_MOUNT, TOOL_NAMES, TOOLS

HOME = "/home/u"
AISHELL = "/home/u/.aishell"


def plan(tools: list[str], **kw: object) -> agenthome.Plan:
    return agenthome.plan(tools, project_key="k" * 16, home=HOME, aishell_home=AISHELL, **kw)  # type: ignore[arg-type]


# ------------------------------------------------------------------ the data


def test_every_tool_has_per_project_config_and_logins_inside_it() -> None:
    for tool in TOOLS:
        assert tool.config_dirs, tool.name
        for login in tool.logins:
            assert any(login.rel.startswith(d + "/") for d in tool.config_dirs), login
            assert login.via in ("bind", "link")
            assert login.via == "link" or login.seed is not None  # a bind needs a file
        if not tool.share_logins:
            assert tool.login_risk, f"{tool.name}: say why its login is not shared"
        for rel, keys in tool.seed_keys:
            assert rel in tool.config_files and keys


def test_logins_that_can_run_something_are_not_shared_by_default() -> None:
    assert {t.name for t in TOOLS if t.logins and not t.share_logins} == {"opencode", "pi"}


# ------------------------------------------------------------------ plan


def test_plan_mounts_the_projects_copy_at_the_usual_paths() -> None:
    p = plan(["claude"])
    root = f"{AISHELL}/projects/{'k' * 16}/home"
    store = f"{AISHELL}/agents/claude/store"
    assert p.binds(f"{AISHELL}/agents") == [
        Bind(f"{root}/.claude", f"{HOME}/.claude"),
        Bind(f"{root}/.claude.json", f"{HOME}/.claude.json"),
        Bind(f"{store}/.claude/.credentials.json", f"{HOME}/.claude/.credentials.json"),
    ]
    assert all(not b.source.startswith(f"{HOME}/.claude") for b in p.binds("/x"))


def test_plan_never_mounts_the_hosts_own_config() -> None:
    p = plan(sorted(TOOL_NAMES))
    for bind in p.binds(f"{AISHELL}/agents"):
        assert bind.source.startswith(AISHELL + "/") or bind.readonly, bind


def test_plan_link_logins_mount_the_store() -> None:
    p = plan(["codex"])
    assert Bind(f"{AISHELL}/agents/codex/store", f"{LOGIN_STORE_MOUNT}/codex") in p.binds(
        f"{AISHELL}/agents"
    )
    assert p.logins == (agenthome.LoginPlan("codex", ".codex/auth.json", "link", True, None),)


@pytest.mark.parametrize(
    ("share", "expected"),
    [({}, False), ({"opencode": True}, True), ({"opencode": False}, False)],
)
def test_share_logins_opt_in(share: dict[str, bool], expected: bool) -> None:
    p = plan(["opencode"], share=share)
    assert [lg.shared for lg in p.logins] == [expected]
    assert (p.stores == ("opencode",)) is expected


def test_share_logins_opt_out() -> None:
    p = plan(["claude"], share={"claude": False})
    assert not p.logins[0].shared
    assert not any(".credentials.json" in b.source for b in p.binds("/a"))


def test_from_host_only_inside_enabled_config_and_never_a_login() -> None:
    p = plan(
        ["claude"],
        from_host=[
            f"{HOME}/.claude/CLAUDE.md",
            f"{HOME}/.claude/commands",
            f"{HOME}/.claude/",  # the whole dir would be the host's: no
            f"{HOME}/.codex/config.toml",  # codex is not enabled
            f"{HOME}/.claude/.credentials.json",  # the login is the store's
            f"{HOME}/.ssh/id_rsa",
        ],
    )
    assert p.from_host == (f"{HOME}/.claude/CLAUDE.md", f"{HOME}/.claude/commands")
    assert Bind(f"{HOME}/.claude/CLAUDE.md", f"{HOME}/.claude/CLAUDE.md", readonly=True) in p.binds(
        "/a"
    )


def test_each_project_has_its_own_copy() -> None:
    a = agenthome.plan(["opencode"], project_key="a" * 16, home=HOME, aishell_home=AISHELL)
    b = agenthome.plan(["opencode"], project_key="b" * 16, home=HOME, aishell_home=AISHELL)
    assert {x.source for x in a.binds("/s")}.isdisjoint({x.source for x in b.binds("/s")})


# ------------------------------------------------------------------ prepare


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    return h


def real_plan(home: Path, tools: list[str], key: str = "p" * 16, **kw: object) -> agenthome.Plan:
    return agenthome.plan(
        tools,
        project_key=key,
        home=str(home),
        aishell_home=str(home / ".aishell"),
        **kw,  # type: ignore[arg-type]
    )


def agents(home: Path) -> str:
    return str(home / ".aishell" / "agents")


def test_prepare_makes_every_path_of_the_right_kind(home: Path) -> None:
    p = real_plan(home, sorted(TOOL_NAMES))
    binds = agenthome.prepare(p, agents_dir=agents(home))
    for bind in binds:
        assert os.path.exists(bind.source), bind
    for item in p.config:
        path = Path(p.source(item.rel))
        assert path.is_dir() if item.kind == "dir" else path.is_file()
    assert not (home / ".claude").exists()  # nothing made in the host's own config


def test_prepare_is_idempotent(home: Path) -> None:
    p = real_plan(home, sorted(TOOL_NAMES))
    assert agenthome.prepare(p, agents_dir=agents(home)) == agenthome.prepare(
        p, agents_dir=agents(home)
    )


def test_new_claude_json_keeps_only_the_seed_keys(home: Path) -> None:
    (home / ".claude.json").write_text(
        json.dumps(
            {
                "hasCompletedOnboarding": True,
                "oauthAccount": {"emailAddress": "a@b"},
                "mcpServers": {"evil": {"command": "sh"}},
                "projects": {"/x": {"mcpServers": {}}},
            }
        )
    )
    p = real_plan(home, ["claude"])
    agenthome.prepare(p, agents_dir=agents(home))
    seeded = json.loads(Path(p.source(".claude.json")).read_text())
    assert seeded == {"hasCompletedOnboarding": True, "oauthAccount": {"emailAddress": "a@b"}}


def test_an_existing_copy_is_never_overwritten(home: Path) -> None:
    p = real_plan(home, ["claude"])
    agenthome.prepare(p, agents_dir=agents(home))
    Path(p.source(".claude.json")).write_text('{"mine": 1}')
    agenthome.prepare(p, agents_dir=agents(home))
    assert Path(p.source(".claude.json")).read_text() == '{"mine": 1}'


def test_migration_copies_the_host_login_once(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (home / ".codex").mkdir()
    (home / ".codex" / "auth.json").write_text('{"tokens": "host"}')
    p = real_plan(home, ["codex"])
    agenthome.prepare(p, agents_dir=agents(home))
    store = Path(agents(home)) / "codex" / "store" / ".codex" / "auth.json"
    assert store.read_text() == '{"tokens": "host"}'
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    assert "copied your login (~/.codex/auth.json)" in capsys.readouterr().err
    # a refresh inside a sandbox writes the store; the host's copy never overwrites it
    store.write_text('{"tokens": "refreshed"}')
    (home / ".codex" / "auth.json").write_text('{"tokens": "host2"}')
    agenthome.prepare(real_plan(home, ["codex"], key="q" * 16), agents_dir=agents(home))
    assert store.read_text() == '{"tokens": "refreshed"}'
    assert capsys.readouterr().err == ""  # said once


def test_link_login_points_into_the_mounted_store(home: Path) -> None:
    p = real_plan(home, ["codex"])
    agenthome.prepare(p, agents_dir=agents(home))
    link = Path(p.source(".codex/auth.json"))
    assert link.is_symlink()
    assert os.readlink(link) == f"{LOGIN_STORE_MOUNT}/codex/.codex/auth.json"


def test_bind_login_gets_its_seed_and_a_mount_point(home: Path) -> None:
    p = real_plan(home, ["claude"])
    agenthome.prepare(p, agents_dir=agents(home))
    store = Path(agents(home)) / "claude" / "store" / ".claude" / ".credentials.json"
    assert store.read_text() == "{}\n"
    point = Path(p.source(".claude/.credentials.json"))
    assert point.is_file() and not point.is_symlink()


def test_a_login_that_is_not_shared_starts_from_the_hosts(home: Path) -> None:
    (home / ".pi" / "agent").mkdir(parents=True)
    (home / ".pi" / "agent" / "auth.json").write_text('{"anthropic": {"type": "api_key"}}')
    p = real_plan(home, ["pi"])
    agenthome.prepare(p, agents_dir=agents(home))
    own = Path(p.source(".pi/agent/auth.json"))
    assert not own.is_symlink()
    assert own.read_text() == '{"anthropic": {"type": "api_key"}}'
    assert not (Path(agents(home)) / "pi" / "store").exists()


def test_what_an_agent_planted_below_a_mount_is_never_followed(home: Path, tmp_path: Path) -> None:
    """`.pi` is the agent's to write: it made `.pi/agent` a symlink to a directory
    of the host's. aishell replaces the link and writes nothing through it."""
    victim = tmp_path / "victim"
    victim.mkdir()
    p = real_plan(home, ["pi", "codex"])
    agenthome.prepare(p, agents_dir=agents(home))
    agent_dir = Path(p.source(".pi/agent"))
    for child in agent_dir.iterdir():
        child.unlink()
    agent_dir.rmdir()
    agent_dir.symlink_to(victim)
    codex_login = Path(p.source(".codex/auth.json"))
    codex_login.unlink()
    codex_login.symlink_to(victim / "planted")  # a link of its own where ours was
    (home / ".pi" / "agent").mkdir(parents=True)
    (home / ".pi" / "agent" / "auth.json").write_text("{}")
    agenthome.prepare(p, agents_dir=agents(home))
    assert list(victim.iterdir()) == []
    assert agent_dir.is_dir() and not agent_dir.is_symlink()
    assert os.readlink(codex_login) == f"{LOGIN_STORE_MOUNT}/codex/.codex/auth.json"


def test_a_file_where_the_link_was_is_adopted_when_newer(home: Path) -> None:
    p = real_plan(home, ["codex"])
    agenthome.prepare(p, agents_dir=agents(home))
    link = Path(p.source(".codex/auth.json"))
    link.unlink()
    link.write_text('{"tokens": "written by rename"}')
    agenthome.prepare(p, agents_dir=agents(home))
    store = Path(agents(home)) / "codex" / "store" / ".codex" / "auth.json"
    assert store.read_text() == '{"tokens": "written by rename"}'
    assert link.is_symlink()


def test_seed_content() -> None:
    assert agenthome.seed_content("claude", ".claude.json", None) == b"{}\n"
    assert agenthome.seed_content("claude", ".claude.json", b"not json") == b"{}\n"
    assert agenthome.seed_content("claude", ".claude.json", b"[1]") == b"{}\n"
    assert json.loads(agenthome.seed_content("claude", ".claude.json", b'{"theme": "dark"}')) == {
        "theme": "dark"
    }
    assert agenthome.seed_content("opencode", ".x.json", b'{"theme": "dark"}') == b"{}\n"


def test_the_tool_table_is_what_plan_reads() -> None:
    p = plan(["gemini"])
    assert [lg.rel for lg in p.logins] == [lg.rel for lg in BY_NAME["gemini"].logins]


def test_no_variable_from_the_host_moves_an_agents_config() -> None:
    """A host variable that relocates an agent's config would take it off the project's
    copy (CLAUDE_CONFIG_DIR, CODEX_HOME, PI_CODING_AGENT_DIR, XDG_*): never passed."""
    relocating = {"CLAUDE_CONFIG_DIR", "CODEX_HOME", "PI_CODING_AGENT_DIR", "OPENCODE_CONFIG_DIR"}
    for tool in TOOLS:
        assert not relocating & set(tool.api_keys), tool.name
        assert not [k for k in tool.api_keys if k.startswith("XDG_")], tool.name
