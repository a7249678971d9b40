"""Bad values in every config validator end in a ConfigError naming the key and the value
(never a bare ValueError or OverflowError), and `netpolicy.merge_allow` is linear."""

from __future__ import annotations

import contextlib
import random
from pathlib import Path
from typing import Any

import pytest

from aishell import netpolicy
from aishell.config import TOP_LEVEL_KEYS, Expansion, normalize, parse_config_text
from aishell.config.checks import MAX_DAYS, MAX_SESSION_RECORDS
from aishell.errors import ConfigError
from aishell.records import Entry, to_prune

EXP = Expansion(home="/home/u", uid=1000, gid=1000, user="u")
PATH = "/p/.aishell/config.yaml"


def load(text: str, scope: str = "global") -> Any:
    raw = parse_config_text(text, path=PATH, scope=scope)  # type: ignore[arg-type]
    return normalize(raw, path=PATH, scope=scope, base_dir=Path("/p"), expansion=EXP)  # type: ignore[arg-type]


def error(text: str | dict[str, Any], scope: str = "global") -> str:
    with pytest.raises(ConfigError) as info:
        if isinstance(text, str):
            load(text, scope)
        else:
            normalize(text, path=PATH, scope=scope, base_dir=Path("/p"), expansion=EXP)  # type: ignore[arg-type]
    return str(info.value) + " | " + (info.value.hint or "")


# -- netpolicy.parse_host / host_problem ---------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "example.com:99999999999",
        "example.com:65536",
        "example.com:0",
        "example.com:00000",
        "example.com:" + "9" * 5000,  # int() of it would raise (Python's 4,300-digit limit)
        "example.com:" + "0" * 5000 + "1" * 6,
        "*.example.com:" + "9" * 20,
    ],
)
def test_a_port_out_of_range_is_a_problem_not_an_exception(text: str) -> None:
    assert netpolicy.parse_host(text) is None
    problem = netpolicy.host_problem(text)
    assert problem is not None
    assert problem.endswith(": port outside 1-65535")
    assert len(problem) < 120  # names the entry, cut: it must not fill the screen
    assert text[:20] in problem


@pytest.mark.parametrize(
    ("text", "port"),
    [("a.org:1", 1), ("a.org:65535", 65535), ("a.org:0443", 443), ("a.org:" + "0" * 50 + "80", 80)],
)
def test_ports_in_range(text: str, port: int) -> None:
    pattern = netpolicy.parse_host(text)
    assert pattern is not None and pattern.port == port


@pytest.mark.parametrize(
    "text",
    ["a.org:\u0661\u0662", "a.org:\uff18\uff10", "a.org:8\u0660", "a.org:80\n:1", "a.org:+80"],
)
def test_only_ascii_digits_are_a_port(text: str) -> None:
    """`\\d` matched Arabic-Indic and full-width digits: `a.org:١٢` became port 12."""
    assert netpolicy.parse_host(text) is None
    assert netpolicy.host_problem(text) is not None


def test_a_top_level_wildcard_says_why() -> None:
    assert "not a top-level domain" in (netpolicy.host_problem("*.com") or "")


# -- the config keys that take numbers ------------------------------------------------


@pytest.mark.parametrize(
    ("key", "cap"),
    [
        ("sessions_keep_days", MAX_DAYS),
        ("gitleaks_freshness_threshold", MAX_DAYS),
        ("sessions_keep", MAX_SESSION_RECORDS),
    ],
)
def test_whole_numbers_have_a_range(key: str, cap: int) -> None:
    assert getattr(load(f"{key}: {cap}\n"), key) == cap
    assert getattr(load(f"{key}: 1\n"), key) == 1
    for bad in (cap + 1, 0, -1, 10**40, -(10**40), 10**4299):
        message = error(f"{key}: {bad}\n")
        assert f"{PATH}:1: {key}: must be from 1 to {cap}" in message
        assert len(message) < 300, message  # not a 4,300-digit echo
    assert "got 36501" in error(f"sessions_keep_days: {MAX_DAYS + 1}\n")
    assert "got a number of about 41 digits" in error(f"{key}: {10**40}\n")
    assert "got a negative number of about 41 digits" in error(f"{key}: {-(10**40)}\n")


@pytest.mark.parametrize(
    "key", ["sessions_keep_days", "gitleaks_freshness_threshold", "sessions_keep"]
)
def test_a_huge_int_from_a_plain_mapping_is_a_config_error(key: str) -> None:
    """`normalize` takes plain mappings too: a number str() cannot print (more than
    4,300 digits) is still one clean error."""
    assert "must be from 1 to" in error({key: 10**5000})


def test_the_largest_keep_days_still_prunes() -> None:
    """`now - keep_days * 86400` was an OverflowError at launch for a huge value."""
    now = 2_000_000_000.0
    old = Entry("old", now - 2 * MAX_DAYS * 86400, live=False)
    assert to_prune([old], now=now, keep_days=MAX_DAYS, keep=MAX_SESSION_RECORDS) == ["old"]


# -- ports ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec", ["\u0661:80", "80:\u0668\u0660", "\u0661.2.3.4:1:1", "\uff18\uff10:80"]
)
def test_only_ascii_digits_in_ports(spec: str) -> None:
    assert "invalid port mapping" in error({"ports": [spec]})


def test_a_huge_port_error_is_short() -> None:
    message = error(f'ports: ["{"9" * 5000}:80"]\n')
    assert "ports[0]: invalid port mapping '99999" in message
    assert "(5000 digits) outside 1-65535" in message
    assert len(message) < 400, len(message)


# -- mounts: null and empty source and target ----------------------------------------


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ("{source: /x, target: ~}", "mounts[0].target: expected a string, got null (YAML reads"),
        ("{source: /x, target: null}", "mounts[0].target: expected a string, got null"),
        ("{source: /x, target: }", "mounts[0].target: expected a string, got null"),
        ("{source: /x, target: ''}", "mounts[0]: mount target '' is not an absolute path"),
        ("{source: /x, target: ' '}", "mounts[0]: mount target ' ' is not an absolute path"),
        ("{source: ~, target: /y}", "mounts[0].source: expected a string, got null (YAML reads"),
        ("{source: , target: /y}", "mounts[0].source: expected a string, got null"),
        ("{source: '', target: /y}", "mounts[0]: empty mount source"),
        ("{source: ' '}", "mounts[0]: empty mount source"),
        ("{target: /y}", "mounts[0]: missing 'source'"),
        ("'/x:'", "mounts[0]: empty mount target in '/x:'"),
        ("':/y'", "mounts[0]: empty mount source"),
        ("~", "mounts[0]: expected a string or a mapping, got null (YAML reads"),
    ],
)
def test_null_and_empty_mount_paths_are_errors(item: str, expected: str) -> None:
    assert expected in error(f"mounts:\n  - {item}\n", "project")


def test_a_target_left_out_is_the_source_path() -> None:
    mount = load("mounts:\n  - {source: ~/data}\n", "project").mounts[0]
    assert (mount.source, mount.target) == ("/home/u/data", "/home/u/data")
    quoted = load('mounts:\n  - {source: /x, target: "~"}\n', "project").mounts[0]
    assert quoted.target == "/home/u"  # quoted, ~ is the home directory


# -- every key, hostile values: a ConfigError or a value, nothing else ------------------

HOSTILE = [
    "~", "''", "' '", "0", "-1", "1e400", ".inf", ".nan", "9" * 400, "[]", "{}", "[~]",
    "[1]", "[[1]]", "[{}]", "[{a: 1}]", "true", "!!binary aGVsbG8=", "2024-01-01",
    "'x:y:z'", "['', '']", "['::']", "[':']", "['\u0661:2']", "[{source: ~}]",
    "[{source: /x, target: ~}]", "[{source: /x, readonly: ~}]", "{A: [1]}", "{'': 1}",
    "{1: 2}", "['65536:1']", "['1-2:1-3']", "['[zz]:1:1']",
    "{mode: allowlist, allow: ['a:1\u0662']}",
    "{mode: allowlist, allow: [~]}", "{allow: ['a.org:" + "9" * 300 + "']}", "{presets: [~]}",
    "{claude: ~}", "{claude: [~]}", "{claude: 'a \"b'}", "{enabled: ~}",
    "{custom_patterns: {'': high}}", "{custom_patterns: {'*.x': ~}}",
    "{allowlist: [{path: ~, reason: x}]}", "{allowlist: [~]}", "['\u2028']",
]  # fmt: skip


@pytest.mark.parametrize("key", TOP_LEVEL_KEYS)
@pytest.mark.parametrize("scope", ["global", "project"])
def test_hostile_values_never_raise_anything_but_config_error(key: str, scope: str) -> None:
    for value in HOSTILE:
        with contextlib.suppress(ConfigError):
            load(f"{key}: {value}\n", scope)


# -- merge_allow ----------------------------------------------------------------------


def _reference(global_allow: list[str], project_allow: list[str]) -> tuple[str, ...]:
    """The definition: project entries that some global entry covers, in order."""
    ceiling = [p for p in map(netpolicy.parse_host, global_allow) if p is not None]
    kept = []
    for text in project_allow:
        pattern = netpolicy.parse_host(text)
        if pattern is not None and any(g.covers(pattern) for g in ceiling):
            kept.append(text)
    return tuple(kept)


@pytest.mark.parametrize(
    ("global_allow", "project_allow", "kept"),
    [
        (["a.org"], ["a.org", "b.org", "a.org:8443"], ("a.org",)),
        (["*.a.org"], ["x.a.org", "a.org", "y.x.a.org", "*.x.a.org", "*.a.org"],
         ("x.a.org", "y.x.a.org", "*.x.a.org", "*.a.org")),
        (["*.a.org:8443"], ["x.a.org", "x.a.org:8443"], ("x.a.org:8443",)),
        (["a.org"], ["*.a.org"], ()),  # a host does not cover its subdomains
        (["x.a.org"], ["a.org"], ()),
        (["*.b.a.org"], ["b.a.org", "c.b.a.org", "xb.a.org"], ("c.b.a.org",)),
        (["a.org", "bad pattern"], ["a.org", "also bad", "a.org"], ("a.org", "a.org")),
        ([], ["a.org"], ()),
        (["*.org"], ["a.org"], ()),  # `*.org` is no pattern at all
    ],
)  # fmt: skip
def test_merge_allow(global_allow: list[str], project_allow: list[str], kept: tuple) -> None:
    assert netpolicy.merge_allow(global_allow, project_allow) == kept
    assert _reference(global_allow, project_allow) == kept


def test_an_equal_wildcard_covers_itself() -> None:
    """`*.a.org` admits exactly what `*.a.org` admits: a project may keep it (it was
    dropped, leaving the project with none of the hosts it named)."""
    wild = netpolicy.parse_host("*.a.org")
    assert wild is not None and wild.covers(wild)


def test_merge_allow_matches_the_definition_on_random_lists() -> None:
    rng = random.Random(7)
    names = ["a.org", "b.a.org", "c.b.a.org", "x.org", "b.org"]

    def entry() -> str:
        text = ("*." if rng.random() < 0.4 else "") + rng.choice(names)
        return text + (rng.choice([":443", ":8443"]) if rng.random() < 0.3 else "")

    for _ in range(300):
        g = [entry() for _ in range(rng.randint(0, 6))]
        p = [entry() for _ in range(rng.randint(0, 8))]
        assert netpolicy.merge_allow(g, p) == _reference(g, p), (g, p)


# -- the README lists the limits the code enforces --------------------------------------


def test_the_readme_lists_every_config_limit() -> None:
    from aishell.config import checks, loader

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    limits = readme[readme.index("**Limits**") :].split("\n\n", 2)[1]
    for name, (cap, _) in checks.LIMITS.items():
        assert f"`{name.removesuffix('.*')}` {cap:,}" in limits, name
    assert loader.MAX_FILE_BYTES == 1 << 20 and "1 MiB" in limits
    assert f"{checks._MAX_HOST_CHARS} characters" in limits
    for number in (
        loader.MAX_DEPTH,
        loader.MAX_NODES,
        loader.MAX_NUMBER_CHARS,
        checks.MAX_SPLIT_CHARS,
        checks.MAX_DAYS,
        checks.MAX_SESSION_RECORDS,
    ):
        assert f"{number:,}" in limits, number
