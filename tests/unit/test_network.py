"""The network policy: host patterns, merging, run arguments (pure parts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from aishell import config as c
from aishell import netpolicy as network
from aishell.engine import proxy
from aishell.engine.run_args import HostFacts, RunSpec, build_run_args
from aishell.errors import ConfigError

E = c.Expansion(home="/h", uid=1000, gid=1000, user="u")


def part(text: str, scope: c.Scope = "project") -> c.FileConfig:
    raw = c.parse_config_text(text, path="x.yaml", scope=scope)
    return c.normalize(raw, path="x.yaml", scope=scope, base_dir=Path("/p"), expansion=E)


@pytest.mark.parametrize(
    ("text", "ok"),
    [("api.example.com", True), ("*.example.com", True), ("a.org:8443", True),
     ("localhost", True), ("*.com", False), ("http://x.org", False), ("a.org:0", False),
     ("a.org:70000", False), ("a..org", False), ("a.org/path", False), ("", False)],
)  # fmt: skip
def test_host_patterns(text: str, ok: bool) -> None:
    assert (network.host_problem(text) is None) is ok


def test_covers() -> None:
    wild = network.parse_host("*.example.com")
    assert wild and wild.covers(network.parse_host("a.example.com"))  # type: ignore[arg-type]
    assert not wild.covers(network.parse_host("example.com"))  # type: ignore[arg-type]
    assert not wild.covers(network.parse_host("a.example.com:8443"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("global_", "project", "mode", "allow"),
    [
        ("", "network: none\n", "none", ()),
        ("network: none\n", "network: {mode: open}\n", "none", ()),
        ("network: {mode: allowlist, allow: [a.org]}\n", "network: open\n", "allowlist",
         ("a.org",)),
        ("network: {mode: allowlist, allow: ['*.a.org']}\n",
         "network: {mode: allowlist, allow: [x.a.org, b.org]}\n", "allowlist", ("x.a.org",)),
        ("", "network: {mode: allowlist, allow: [b.org]}\n", "allowlist", ("b.org",)),
    ],
)  # fmt: skip
def test_project_only_tightens(global_: str, project: str, mode: str, allow: tuple) -> None:
    merged = c.merge(part(global_, "global") if global_ else None, part(project))
    assert merged.network.mode == mode
    assert merged.network.allow == allow


def test_extends_none_keeps_global_network() -> None:
    merged = c.merge(part("network: none\n", "global"), part("extends: none\n"))
    assert merged.network.mode == "none"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("network:\n  mode: alowlist\n", "x.yaml:2: network.mode: unknown mode 'alowlist'"),
        ("network:\n  allow:\n    - 'http://x'\n", "x.yaml:3: network.allow[0]: invalid host"),
        ("network:\n  presets: [npn]\n", "network.presets[0]: unknown preset 'npn'"),
        ("network:\n  bogus: 1\n", "network.bogus: unknown key"),
        ("network: [1]\n", "network: expected a mapping"),
    ],
)
def test_invalid_network_config(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        part(text)
    assert message in str(exc.value)


def test_effective_policy_adds_harness_presets() -> None:
    cfg = c.Config(network=c.NetworkConfig("allowlist", ("b.org",), ("npm",)))
    policy = network.effective_policy(cfg.network, ["claude"])
    hosts = [str(p) for p in policy.allow]
    assert "api.anthropic.com" in hosts and "registry.npmjs.org" in hosts and "b.org" in hosts
    assert policy.presets == ("claude", "npm")
    assert network.effective_policy(c.Config().network, ["claude"]).mode == "open"


def test_plan_and_run_args() -> None:
    host = HostFacts(uid=1, gid=1, user="u", home="/h", cwd="/p", stdin_tty=False,
                     stdout_tty=False)  # fmt: skip
    spec = RunSpec(image="i", command=("true",), project_dir="/p", workdir="/p")
    open_argv = build_run_args(spec, host).argv
    assert "--network" not in open_argv

    none = network.plan(c.NetworkConfig("none"), [])
    argv = build_run_args(spec._replace(network=none.network), host).argv
    assert argv[argv.index("--network") + 1] == "none"

    plan = network.plan(c.NetworkConfig("allowlist", ("a.org",)), [])
    assert plan.network == "none"  # the agent's only way out is its socket (test_egress.py)
    env = dict(plan.env)
    assert env["https_proxy"] == env["HTTP_PROXY"] == "http://127.0.0.1:3128"
    with pytest.raises(ConfigError):
        network.plan(c.NetworkConfig("none"), [], ("--network=host",))


def test_proxy_files_are_not_foundation_inputs() -> None:
    from aishell.engine import images

    assert not set(images.TEMPLATE_FILES) & {f"proxy/{n}" for n in proxy.PROXY_TEMPLATE_FILES}
    assert "proxy" not in images.TEMPLATE_FILES


def test_launch_path_stays_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, aishell.launch, aishell.config, aishell.engine.run_args; "
        "print('aishell.engine.proxy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
