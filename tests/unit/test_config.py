"""Configuration: parsing, validation, normalisation, expansion and merging."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, get_args

import pytest

from aishell.config import (
    GLOBAL_ONLY_KEYS,
    KEYS,
    PROJECT_ONLY_KEYS,
    TOP_LEVEL_KEYS,
    AllowEntry,
    Config,
    ConfigReport,
    CustomPattern,
    DetectionConfig,
    EnvEntry,
    Expansion,
    FileConfig,
    FileReport,
    Mount,
    Scope,
    expand_vars,
    find_project_config_dir,
    inspect_config,
    load_config,
    merge,
    normalize,
    origins,
    parse_config_text,
)
from aishell.config.schema import KeyScope, MergeRule
from aishell.errors import ConfigError
from testing.privileges import permissions_enforced

HOME = "/home/alice"
EXP = Expansion(home=HOME, uid=1234, gid=5678, user="alice")
PROJECT = "/proj"
PPATH = "/proj/.aishell/config.yaml"
GPATH = "/home/alice/.aishell/config.yaml"


def norm(text: str, scope: Scope = "project") -> FileConfig:
    path = PPATH if scope == "project" else GPATH
    base = PROJECT if scope == "project" else HOME
    raw = parse_config_text(text, path=path, scope=scope)
    return normalize(
        raw,
        path=path,
        scope=scope,
        base_dir=Path(base),
        expansion=EXP,
        global_path=GPATH,
    )


def cfg(global_text: str | None = None, project_text: str | None = None) -> Config:
    g = norm(global_text, "global") if global_text is not None else None
    p = norm(project_text, "project") if project_text is not None else None
    return merge(g, p)


def error(text: str, scope: Scope = "project") -> ConfigError:
    with pytest.raises(ConfigError) as info:
        norm(text, scope)
    return info.value


def message(text: str, scope: Scope = "project") -> str:
    return error(text, scope).message


# ------------------------------------------------------------------ expansion


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("~", HOME),
        ("~/x", f"{HOME}/x"),
        ("~alice/x", "~alice/x"),
        ("a/~/b", "a/~/b"),
        ("$HOME", HOME),
        ("$HOME/x", f"{HOME}/x"),
        ("${HOME}/x", f"{HOME}/x"),
        ("${HOME}x", f"{HOME}x"),
        ("$UID", "1234"),
        ("${UID}", "1234"),
        ("$GID", "5678"),
        ("${GID}", "5678"),
        ("$USER", "alice"),
        ("${USER}", "alice"),
        ("/data/$USER/$UID-$GID", "/data/alice/1234-5678"),
        ("$HOME$USER", f"{HOME}alice"),
        ("$HOMEX", "$HOMEX"),
        ("$HOME_DIR", "$HOME_DIR"),
        ("$USER1", "$USER1"),
        ("$OTHER", "$OTHER"),
        ("${OTHER}", "${OTHER}"),
        ("$home", "$home"),
        ("no vars", "no vars"),
        ("", ""),
    ],
)
def test_expand_vars(text: str, expected: str) -> None:
    assert expand_vars(text, EXP) == expected


def test_expansion_from_host_reads_environment() -> None:
    exp = Expansion.from_host({"HOME": "/h", "USER": "bob"})
    assert (exp.home, exp.user) == ("/h", "bob")
    assert exp.uid == os.getuid()
    assert exp.gid == os.getgid()
    assert Expansion.from_host({"HOME": "/h", "USERNAME": "carol"}).user == "carol"
    assert Expansion.from_host({"HOME": "/h"}).user


# --------------------------------------------------------------- files, YAML


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n", "---\n"])
def test_empty_file_is_empty_mapping(text: str) -> None:
    assert parse_config_text(text, path=PPATH, scope="project") == {}
    assert cfg(text, text) == Config(sources=(GPATH, PPATH))


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("mounts: [\n", f"Invalid YAML in {PPATH} line 2"),
        ("a: b: c\n", f"Invalid YAML in {PPATH} line 1"),
        ("x: 1\ny:\n\t- 2\n", f"Invalid YAML in {PPATH} line 3"),
        ("tmux: !custom yes\n", f"Invalid YAML in {PPATH} line 1"),
        ("tmux: !!python/name:os.system x\n", "Invalid YAML"),
        ("mounts: !custom [a]\n", "unsupported tag"),
        ("a: 1\n---\nb: 2\n", "expected a single document"),
        ("x: &a [*a]\n", "recursive alias"),
        ("? [a, b]\n: 1\n", "keys must be plain strings"),
    ],
)
def test_invalid_yaml(text: str, fragment: str) -> None:
    err = error(text)
    assert fragment in err.message
    assert err.hint is not None and PPATH in err.hint


@pytest.mark.parametrize(
    ("text", "got"),
    [("- a\n- b\n", "list"), ("just a string\n", "string"), ("42\n", "int")],
)
def test_top_level_must_be_mapping(text: str, got: str) -> None:
    msg = message(text)
    assert msg.startswith(f"{PPATH}:1: ")
    assert f"the top level must be a mapping of keys, got {got}" in msg


def test_duplicate_keys_are_errors() -> None:
    msg = message("mounts: [/a]\ntmux: true\nmounts: [/b]\n")
    assert msg == f"{PPATH}:3: mounts: duplicate key (first on line 1); one would be ignored"
    msg = message("env:\n  A: 1\n  A: 2\n")
    assert msg.startswith(f"{PPATH}:3: env.A: duplicate key")


def test_merge_keys_and_anchors_work() -> None:
    text = (
        "detection:\n"
        "  custom_patterns:\n"
        "    base: &p {severity: high, description: d}\n"
        "    '*.x':\n"
        "      <<: *p\n"
        "      severity: low\n"
        "    '*.y': *p\n"
    )
    patterns = {p.glob: p for p in norm(text).custom_patterns}
    assert patterns["*.x"] == CustomPattern("*.x", "low", "d")
    assert patterns["*.y"] == CustomPattern("*.y", "high", "d")


def test_keys_are_source_text_not_yaml_booleans() -> None:
    raw = parse_config_text("env:\n  ON: 1\n  yes: 2\n  null: 3\n", path=PPATH, scope="project")
    assert list(raw["env"]) == ["ON", "yes", "null"]


def test_raw_config_remembers_lines() -> None:
    raw: Any = parse_config_text(
        "# c\ntmux: true\nmounts:\n  - /a\n  - /b\n", path=PPATH, scope="project"
    )
    assert raw.lines[("tmux",)] == 2
    assert raw.lines[("mounts", 1)] == 5
    assert raw.key_lines[("mounts",)] == 3


# ---------------------------------------------------------------- top-level keys


@pytest.mark.parametrize(
    ("text", "scope", "expected"),
    [
        (
            "mount: []\n",
            "project",
            f"{PPATH}:1: mount: unknown key 'mount' (did you mean 'mounts'?)",
        ),
        (
            "tmux: true\nenvs: {}\n",
            "project",
            f"{PPATH}:2: envs: unknown key 'envs' (did you mean 'env'?)",
        ),
        (
            "docker_arg: x\n",
            "global",
            f"{GPATH}:1: docker_arg: unknown key 'docker_arg' (did you mean 'docker_args'?)",
        ),
        (
            "prestart: x\n",
            "project",
            f"{PPATH}:1: prestart: unknown key 'prestart' (did you mean 'pre_start'?)",
        ),
        ("zzz: 1\n", "project", f"{PPATH}:1: zzz: unknown key 'zzz'"),
    ],
)
def test_unknown_top_level_key(text: str, scope: Scope, expected: str) -> None:
    err = error(text, scope)
    assert err.message == expected
    assert err.hint is not None and "mounts" in err.hint


@pytest.mark.parametrize("key", sorted(GLOBAL_ONLY_KEYS))
def test_global_only_key_in_project_file(key: str) -> None:
    value = "[/a.pem]" if key == "ca_certificates" else "debian:trixie"
    msg = message(f"tmux: true\n{key}: {value}\n")
    assert msg.startswith(f"{PPATH}:2: {key}: ")
    assert "global-only" in msg and GPATH in msg


@pytest.mark.parametrize(("value", "expected"), [("global", "global"), ("none", "none")])
def test_extends_values(value: str, expected: str) -> None:
    assert norm(f"extends: {value}\n").extends == expected


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("nothing", "expected 'global' or 'none', got 'nothing'"),
        ("None", "got 'None'"),
        ("", "got null"),
        ("true", "got bool"),
        ("[none]", "got list"),
    ],
)
def test_extends_invalid(value: str, fragment: str) -> None:
    msg = message(f"extends: {value}\n")
    assert msg.startswith(f"{PPATH}:1: extends: ")
    assert fragment in msg


def test_extends_in_global_file_is_an_error() -> None:
    msg = message("extends: none\n", "global")
    assert msg.startswith(f"{GPATH}:1: extends: ")
    assert "project config" in msg


def test_extends_none_ignores_inheritable_global_keys() -> None:
    g = (
        "mounts: [/g]\nenv: {G: 1}\nports: ['1:1']\ndocker_args: --g\npre_start: g\n"
        "harness_args: {claude: [--g]}\n"
        "detection: {enabled: false, allowlist: [{path: g, reason: r}],"
        " custom_patterns: {g: high}}\ngitleaks_freshness_check: false\n"
        "gitleaks_freshness_threshold: 3\ntmux: false\nbase_image: img:1\n"
        "ca_certificates: [/c.pem]\n"
    )
    merged = cfg(g, "extends: none\nmounts: [/p]\n")
    assert merged == Config(
        mounts=(Mount("/p", "/p", False, PPATH),),
        base_image="img:1",
        ca_certificates=("/c.pem",),
        sources=(GPATH, PPATH),
    )
    inherited = cfg(g, "extends: global\nmounts: [/p]\n")
    assert [m.source for m in inherited.mounts] == ["/g", "/p"]
    assert inherited.tmux is False


# --------------------------------------------------------------------- mounts


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ("/data", ("/data", "/data", False)),
        ("/data:/mnt", ("/data", "/mnt", False)),
        ("/data:/mnt:ro", ("/data", "/mnt", True)),
        ("/data:/mnt:rw", ("/data", "/mnt", False)),
        ("~", (HOME, HOME, False)),
        ("~/.gitconfig:~/.gitconfig:ro", (f"{HOME}/.gitconfig", f"{HOME}/.gitconfig", True)),
        ("$HOME/x:/y", (f"{HOME}/x", "/y", False)),
        ("${HOME}/x:${HOME}/y", (f"{HOME}/x", f"{HOME}/y", False)),
        ("/d/$USER/$UID/$GID", ("/d/alice/1234/5678", "/d/alice/1234/5678", False)),
        ("/d/$OTHER", ("/d/$OTHER", "/d/$OTHER", False)),
        ("/d/$HOMEX", ("/d/$HOMEX", "/d/$HOMEX", False)),
        ("rel/dir", ("/proj/rel/dir", "/proj/rel/dir", False)),
        ("./a/../b:/t", ("/proj/b", "/t", False)),
        ("/data/:/mnt/", ("/data", "/mnt", False)),
        ("/a//b/./c:/t//u", ("/a/b/c", "/t/u", False)),
        ({"source": "/a"}, ("/a", "/a", False)),
        ({"source": "~/a", "target": "/b", "readonly": True}, (f"{HOME}/a", "/b", True)),
        (
            {"source": "rel", "target": "$HOME/c", "readonly": False},
            ("/proj/rel", f"{HOME}/c", False),
        ),
        ({"source": "/with:colon"}, ("/with:colon", "/with:colon", False)),
    ],
)
def test_mount_shapes(item: Any, expected: tuple[str, str, bool]) -> None:
    raw = {"mounts": [item]}
    fc = normalize(raw, path=PPATH, scope="project", base_dir=Path(PROJECT), expansion=EXP)
    assert fc.mounts == (Mount(*expected, origin=PPATH),)


def test_mount_yaml_forms_and_origin() -> None:
    text = "mounts:\n  - ~/src\n  - source: ~/data\n    target: /data\n    readonly: true\n"
    assert norm(text).mounts == (
        Mount(f"{HOME}/src", f"{HOME}/src", False, PPATH),
        Mount(f"{HOME}/data", "/data", True, PPATH),
    )


def test_relative_global_mount_is_relative_to_home() -> None:
    assert norm("mounts: [notes]\n", "global").mounts == (
        Mount(f"{HOME}/notes", f"{HOME}/notes", False, GPATH),
    )


def test_mount_existence_not_checked() -> None:
    assert norm("mounts: [/definitely/not/here]\n").mounts[0].source == "/definitely/not/here"


@pytest.mark.parametrize("value", ["", "~", "[]"])
def test_mounts_empty(value: str) -> None:
    assert norm(f"mounts: {value}\n").mounts == ()


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ("42", "mounts[0]: expected a string or a mapping, got int"),
        ("true", "mounts[0]: expected a string or a mapping, got bool"),
        ("[/a]", "mounts[0]: expected a string or a mapping, got list"),
        ("'/a:/b:rx'", "mounts[0]: unknown mount option 'rx' in '/a:/b:rx' (use ro or rw)"),
        ("'/a:/b:ro:x'", "mounts[0]: too many ':' in mount '/a:/b:ro:x'"),
        ("'/a:rel'", "mounts[0]: mount target 'rel' is not an absolute path"),
        ("'/a:ro'", "mounts[0]: mount target 'ro' is not an absolute path"),
        ("'/a:~other/x'", "mount target '~other/x' is not an absolute path"),
        ("'/a::ro'", "mounts[0]: empty mount target in '/a::ro'"),
        ("''", "mounts[0]: empty mount source"),
        ("':/b'", "mounts[0]: empty mount source"),
        ("{target: /b}", "mounts[0]: missing 'source'"),
        ("{source: /a, target: rel}", "mount target 'rel' is not an absolute path"),
        ("{source: 1}", "mounts[0].source: expected a string, got int"),
        ("{source: /a, target: 2}", "mounts[0].target: expected a string, got int"),
        ("{source: /a, readonly: 'yes'}", "mounts[0].readonly: expected true or false, got string"),
        ("{source: /a, readonly: 1}", "mounts[0].readonly: expected true or false, got int"),
        ("{source: /a, ro: true}", "mounts[0].ro: unknown key 'ro'"),
        ("{source: /a, tagret: /b}", "unknown key 'tagret' (did you mean 'target'?)"),
        ("{source: '   '}", "mounts[0]: empty mount source"),
    ],
)
def test_mount_errors(item: str, expected: str) -> None:
    msg = message(f"tmux: true\nmounts:\n  - /ok\n  - {item}\n".replace("[0]", "[1]"))
    assert msg.startswith(f"{PPATH}:4: ")
    assert expected.replace("[0]", "[1]") in msg


@pytest.mark.parametrize(("value", "got"), [("/a", "string"), ("{a: b}", "mapping"), ("5", "int")])
def test_mounts_must_be_a_list(value: str, got: str) -> None:
    assert (
        message(f"mounts: {value}\n") == f"{PPATH}:1: mounts: expected a list of mounts, got {got}"
    )


def test_mounts_merge_concatenates_global_then_project() -> None:
    merged = cfg("mounts: [/g1, /g2]\n", "mounts: [/p1]\n")
    assert [(m.source, m.origin) for m in merged.mounts] == [
        ("/g1", GPATH),
        ("/g2", GPATH),
        ("/p1", PPATH),
    ]
    assert [m.source for m in cfg("mounts: [/g]\n", "tmux: true\n").mounts] == ["/g"]
    assert [m.source for m in cfg("tmux: true\n", "mounts: [/p]\n").mounts] == ["/p"]
    assert [m.source for m in cfg("mounts: [/g]\n", "mounts: []\n").mounts] == ["/g"]
    dup = cfg("mounts: [/x]\n", "mounts: [/x]\n")
    assert len(dup.mounts) == 2  # duplicates are not hidden


# ------------------------------------------------------------------------ env


@pytest.mark.parametrize(
    ("yaml_value", "expected"),
    [
        ("bar", "bar"),
        ("", None),
        ("~", None),
        ("null", None),
        ("''", ""),
        ("1", "1"),
        ("1.10", "1.10"),
        ("0777", "0777"),
        ("1e3", "1e3"),
        ("true", "true"),
        ("false", "false"),
        ("yes", "yes"),
        ("off", "off"),
        ("True", "True"),
        ("2024-01-01", "2024-01-01"),
        ("'quoted true'", "quoted true"),
        ('"$HOME/x"', f"{HOME}/x"),
        ("${USER}-$UID-$GID", "alice-1234-5678"),
        ("~/bin", f"{HOME}/bin"),
        ("$OTHER", "$OTHER"),
        ("$HOMEX", "$HOMEX"),
        ("a=b", "a=b"),
    ],
)
def test_env_map_values(yaml_value: str, expected: str | None) -> None:
    assert norm(f"env:\n  FOO: {yaml_value}\n").env == (EnvEntry("FOO", expected),)


def test_env_map_from_python_values() -> None:
    raw = {"env": {"A": True, "B": False, "C": 2, "D": 1.5, "E": None, "F": "$USER"}}
    fc = normalize(raw, path=PPATH, scope="project", base_dir=Path(PROJECT), expansion=EXP)
    assert fc.env == (
        EnvEntry("A", "true"),
        EnvEntry("B", "false"),
        EnvEntry("C", "2"),
        EnvEntry("D", "1.5"),
        EnvEntry("E", None),
        EnvEntry("F", "alice"),
    )


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ("FOO=bar", EnvEntry("FOO", "bar")),
        ("FOO", EnvEntry("FOO", None)),
        ("FOO=", EnvEntry("FOO", "")),
        ("FOO=a=b", EnvEntry("FOO", "a=b")),
        ("FOO=$USER", EnvEntry("FOO", "alice")),
        ("FOO=~/x", EnvEntry("FOO", f"{HOME}/x")),
        ("_X1=1", EnvEntry("_X1", "1")),
    ],
)
def test_env_list_items(item: str, expected: EnvEntry) -> None:
    assert norm(f"env:\n  - '{item}'\n").env == (expected,)


@pytest.mark.parametrize("value", ["", "{}", "[]"])
def test_env_empty(value: str) -> None:
    assert norm(f"env: {value}\n").env == ()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("env: 5\n", f"{PPATH}:1: env: expected a mapping or a list, got int"),
        ("env: x\n", f"{PPATH}:1: env: expected a mapping or a list, got string"),
        ("env:\n  1FOO: x\n", f"{PPATH}:2: env['1FOO']: invalid variable name '1FOO'"),
        ("env:\n  A-B: x\n", f"{PPATH}:2: env.A-B: invalid variable name 'A-B'"),
        ("env:\n  'A B': x\n", f"{PPATH}:2: env['A B']: invalid variable name 'A B'"),
        ("env:\n  FOO: [1]\n", f"{PPATH}:2: env.FOO: expected a string, number or bool"),
        ("env:\n  FOO: {a: 1}\n", "got mapping"),
        ("env:\n  - A=1\n  - A=2\n", f"{PPATH}:3: env[1]: 'A' is set twice"),
        ("env:\n  - A\n  - 1\n", f"{PPATH}:3: env[1]: expected a string KEY=value or KEY, got int"),
        ("env:\n  - BAD-NAME=1\n", f"{PPATH}:2: env[0]: invalid variable name 'BAD-NAME'"),
        ("env:\n  - =x\n", "invalid variable name ''"),
        ("env:\n  - {A: 1}\n", "env[0]: expected a string KEY=value or KEY, got mapping"),
    ],
)
def test_env_errors(text: str, expected: str) -> None:
    assert expected in message(text)


def test_env_merge_project_wins_order_global_first() -> None:
    merged = cfg("env:\n  A: g\n  B: g\n  C:\n", "env:\n  - B=p\n  - D\n  - C=p\n")
    assert merged.env == (
        EnvEntry("A", "g"),
        EnvEntry("B", "p"),
        EnvEntry("C", "p"),
        EnvEntry("D", None),
    )


def test_env_merge_list_global_map_project_and_null_overrides() -> None:
    merged = cfg("env: [A=1, B=2]\n", "env:\n  A:\n  E: 5\n")
    assert merged.env == (EnvEntry("A", None), EnvEntry("B", "2"), EnvEntry("E", "5"))
    assert cfg("env: [A=1]\n", "tmux: true\n").env == (EnvEntry("A", "1"),)
    assert cfg("tmux: true\n", "env: [A=1]\n").env == (EnvEntry("A", "1"),)


# ---------------------------------------------------------------------- ports


@pytest.mark.parametrize(
    "spec",
    [
        "8080:80",
        "1:65535",
        "65535:1",
        "127.0.0.1:8080:80",
        "0.0.0.0:3000:3000",
        "8080:80/tcp",
        "8080:80/udp",
        "5000:5000/sctp",
        "[::1]:8080:80",
        "[2001:db8::1]:53:53/udp",
        "8000-8010:9000-9010",
        "127.0.0.1:8000-8001:8000-8001/tcp",
    ],
)
def test_valid_ports(spec: str) -> None:
    assert norm(f'ports:\n  - "{spec}"\n').ports == (spec,)


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("80", "is not [IP:]HOST:CONTAINER[/PROTO]"),
        ("a:b", "is not [IP:]HOST:CONTAINER"),
        (":80", "is not [IP:]HOST:CONTAINER"),
        ("8080:80/http", "unknown protocol 'http'"),
        ("8080:80/TCP", "unknown protocol 'TCP'"),
        ("0:80", "port 0 outside 1-65535"),
        ("8080:70000", "port 70000 outside 1-65535"),
        ("256.0.0.1:80:80", "invalid IPv4 address 256.0.0.1"),
        ("1.2.3:80:80", "invalid IPv4 address 1.2.3"),
        ("[zz]:80:80", "invalid IPv6 address [zz]"),
        ("::1:80:80", "is not [IP:]HOST:CONTAINER"),
        ("8000-8010:80", "ranges of different lengths"),
        ("8000-8010:9000-9001", "ranges of different lengths"),
        ("8010-8000:8010-8000", "decreasing range 8010-8000"),
        ("localhost:80:80", "is not [IP:]HOST:CONTAINER"),
    ],
)
def test_invalid_ports(spec: str, fragment: str) -> None:
    err = error(f'tmux: true\nports:\n  - "{spec}"\n')
    assert err.message.startswith(f"{PPATH}:3: ports[0]: invalid port mapping '{spec}': ")
    assert fragment in err.message
    assert err.hint is not None and "8080:80" in err.hint


@pytest.mark.parametrize(
    ("item", "shown"), [("8080", "8080"), ("3000:30", "3000:30"), ("80.5", "80.5")]
)
def test_unquoted_numeric_ports_say_to_quote(item: str, shown: str) -> None:
    err = error(f"ports:\n  - {item}\n")
    assert err.message.startswith(f"{PPATH}:2: ports[0]: port mapping {shown} must be a quoted")
    assert err.hint == f'write it as "{shown}"'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ports: '8080:80'\n", f"{PPATH}:1: ports: expected a list of port mappings, got string"),
        ("ports: {a: 1}\n", "ports: expected a list of port mappings, got mapping"),
        ("ports: [true]\n", "ports[0]: expected a string, got bool"),
        ("ports: [[1]]\n", "ports[0]: expected a string, got list"),
    ],
)
def test_ports_shape_errors(text: str, expected: str) -> None:
    assert expected in message(text)


def test_ports_merge_concatenates() -> None:
    assert cfg("ports: ['1:1']\n", "ports: ['2:2']\n").ports == ("1:1", "2:2")
    assert cfg("ports: ['1:1']\n", "tmux: true\n").ports == ("1:1",)
    assert cfg(None, "ports: ['2:2']\n").ports == ("2:2",)
    assert norm("ports:\n").ports == ()


# ---------------------------------------------------------------- docker_args


@pytest.mark.parametrize(
    ("value", "tokens"),
    [
        ("--cpus 2 --memory=4g", ("--cpus", "2", "--memory=4g")),
        ("\"--label 'a b' -e X\"", ("--label", "a b", "-e", "X")),
        ("'--env \"X=$HOME\"'", ("--env", f"X={HOME}")),
        ("'-v ~/x:/x'", ("-v", f"{HOME}/x:/x")),
        ("'--label u=$USER-$OTHER'", ("--label", "u=alice-$OTHER")),
        ("''", ()),
        ("", ()),
        ("[--cpus, '2']", ("--cpus", "2")),
        ("['--label a b']", ("--label a b",)),
        ("['--env=H=${HOME}', '$UID:$GID']", (f"--env=H={HOME}", "1234:5678")),
        ("[]", ()),
    ],
)
def test_docker_args_shapes(value: str, tokens: tuple[str, ...]) -> None:
    assert norm(f"docker_args: {value}\n").docker_args == tokens


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ('"--label \'unclosed"', "docker_args: cannot split"),
        ("[--cpus, 2]", "docker_args[1]: expected a string, got int"),
        ("[--x, [a]]", "docker_args[1]: expected a string, got list"),
        ("{a: 1}", "docker_args: expected a string or a list of strings, got mapping"),
        ("5", "docker_args: expected a string or a list of strings, got int"),
        ("true", "got bool"),
        ("['']", "docker_args[0]: empty argument"),
    ],
)
def test_docker_args_errors(value: str, fragment: str) -> None:
    msg = message(f"tmux: true\ndocker_args: {value}\n")
    assert msg.startswith(f"{PPATH}:2: docker_args")
    assert fragment in msg


def test_docker_args_int_hint_says_quote() -> None:
    assert error("docker_args: [--cpus, 2]\n").hint == "quote it"


@pytest.mark.parametrize(
    ("g", "p", "expected"),
    [
        ("--cpus 2", "[--memory, 4g]", ("--cpus", "2", "--memory", "4g")),
        ("[--cpus, '2']", "--memory 4g", ("--cpus", "2", "--memory", "4g")),
        ("--a b", "--c d", ("--a", "b", "--c", "d")),
        ("--a b", None, ("--a", "b")),
        (None, "--c d", ("--c", "d")),
    ],
)
def test_docker_args_merge_stays_tokens(
    g: str | None, p: str | None, expected: tuple[str, ...]
) -> None:
    gt = f"docker_args: {g}\n" if g is not None else "tmux: true\n"
    pt = f"docker_args: {p}\n" if p is not None else "tmux: true\n"
    assert cfg(gt, pt).docker_args == expected


# ------------------------------------------------------------------ pre_start


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("npm install", "npm install"),
        ("'  npm ci  '", "npm ci"),
        ("|\n  make dev\n", "make dev"),
        ("[a, b]", "a && b"),
        ("['a', '  ', 'b ', '']", "a && b"),
        ("['cd x && make']", "cd x && make"),
        ("[]", None),
        ("['', ' ']", None),
        ("''", None),
        ("", None),
    ],
)
def test_pre_start_shapes(value: str, expected: str | None) -> None:
    fc = norm(f"pre_start: {value}\n")
    assert fc.pre_start == expected
    assert "pre_start" in fc.keys


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("5", f"{PPATH}:1: pre_start: expected a string or a list of strings, got int"),
        ("{a: b}", "pre_start: expected a string or a list of strings, got mapping"),
        ("[a, 1]", f"{PPATH}:1: pre_start[1]: expected a string, got int"),
        ("[a, ~]", "pre_start[1]: expected a string, got null"),
    ],
)
def test_pre_start_errors(value: str, expected: str) -> None:
    assert expected in message(f"pre_start: {value}\n")


@pytest.mark.parametrize(
    ("g", "p", "expected"),
    [
        ("pre_start: g", "tmux: true", "g"),
        ("tmux: true", "pre_start: p", "p"),
        ("pre_start: g", "pre_start: p", "p"),
        ("pre_start: g", "pre_start:", None),
        ("pre_start: g", "pre_start: null", None),
        ("pre_start: g", "pre_start: []", None),
        ("pre_start: [a, b]", "pre_start: [c]", "c"),
        ("pre_start: g", "extends: none", None),
        ("tmux: true", "tmux: true", None),
    ],
)
def test_pre_start_merge(g: str, p: str, expected: str | None) -> None:
    assert cfg(g + "\n", p + "\n").pre_start == expected


def test_pre_start_absent_project_file() -> None:
    assert cfg("pre_start: g\n", None).pre_start == "g"


# --------------------------------------------------------------- harness_args


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("{claude: [--model, opus]}", {"claude": ("--model", "opus")}),
        ("{claude: \"--model opus --x 'a b'\"}", {"claude": ("--model", "opus", "--x", "a b")}),
        ("{codex: ['--x y']}", {"codex": ("--x y",)}),
        ("{claude: null}", {"claude": ()}),
        ("{claude: []}", {"claude": ()}),
        (
            "{claude: a, opencode: b, codex: c, gemini: d, pi: e}",
            {"claude": ("a",), "opencode": ("b",), "codex": ("c",), "gemini": ("d",), "pi": ("e",)},
        ),
        ("{}", {}),
        ("", {}),
    ],
)
def test_harness_args_shapes(value: str, expected: dict[str, tuple[str, ...]]) -> None:
    assert dict(cfg(None, f"harness_args: {value}\n").harness_args) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "harness_args:\n  claud: [x]\n",
            f"{PPATH}:2: harness_args.claud: unknown harness 'claud' (did you mean 'claude'?)",
        ),
        (
            "harness_args:\n  openspec: [x]\n",
            f"{PPATH}:2: harness_args.openspec: unknown harness 'openspec'",
        ),
        ("harness_args: [claude]\n", f"{PPATH}:1: harness_args: expected a mapping, got list"),
        ("harness_args: x\n", "harness_args: expected a mapping, got string"),
        (
            "harness_args:\n  claude: 5\n",
            f"{PPATH}:2: harness_args.claude: expected a string or a list of strings, got int",
        ),
        (
            "harness_args:\n  claude: [--a, 1]\n",
            f"{PPATH}:2: harness_args.claude[1]: expected a string, got int",
        ),
        ('harness_args:\n  claude: "\'oops"\n', "harness_args.claude: cannot split"),
    ],
)
def test_harness_args_errors(text: str, expected: str) -> None:
    assert expected in message(text)


def test_harness_args_merge_per_harness() -> None:
    merged = cfg(
        "harness_args:\n  claude: [--g]\n  codex: --c\n",
        "harness_args:\n  claude: --p1 --p2\n  gemini: [--x]\n",
    )
    assert dict(merged.harness_args) == {
        "claude": ("--g", "--p1", "--p2"),
        "codex": ("--c",),
        "gemini": ("--x",),
    }
    assert list(merged.harness_args) == ["claude", "codex", "gemini"]
    assert merged.args_for("claude") == ("--g", "--p1", "--p2")
    assert merged.args_for("pi") == ()
    assert dict(cfg("harness_args: {pi: [a]}\n", None).harness_args) == {"pi": ("a",)}


def test_harness_args_are_read_only() -> None:
    merged = cfg(None, "harness_args: {claude: [a]}\n")
    with pytest.raises(TypeError):
        merged.harness_args["claude"] = ("b",)  # type: ignore[index]
    assert dict(Config().harness_args) == {}


# ------------------------------------------------------------------ detection


def test_detection_full_shape() -> None:
    text = (
        "detection:\n"
        "  enabled: false\n"
        "  custom_patterns:\n"
        "    '*.pem': high\n"
        "    '**/*.secret': HIGH\n"
        "    'creds.*': {severity: Low, description: My creds}\n"
        "    'a.txt': {}\n"
        "    'b.txt': {description: Only text}\n"
        "    'c.txt': {severity: medium, description: null}\n"
        "  allowlist:\n"
        "    - {path: test/fixtures/key.pem, reason: fake key}\n"
        "    - path: '**/*.sample'\n"
        "      reason: samples\n"
    )
    merged = cfg(None, text)
    assert merged.detection == DetectionConfig(
        enabled=False,
        custom_patterns=(
            CustomPattern("*.pem", "high", "Custom pattern match"),
            CustomPattern("**/*.secret", "high", "Custom pattern match"),
            CustomPattern("creds.*", "low", "My creds"),
            CustomPattern("a.txt", "medium", "Custom pattern match"),
            CustomPattern("b.txt", "medium", "Only text"),
            CustomPattern("c.txt", "medium", "Custom pattern match"),
        ),
        allowlist=(
            AllowEntry("test/fixtures/key.pem", "fake key"),
            AllowEntry("**/*.sample", "samples"),
        ),
    )


@pytest.mark.parametrize("value", ["", "{}", "{custom_patterns: null, allowlist: null}"])
def test_detection_defaults(value: str) -> None:
    assert cfg(None, f"detection: {value}\n").detection == DetectionConfig()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("detection: true\n", f"{PPATH}:1: detection: expected a mapping, got bool"),
        (
            "detection:\n  enable: false\n",
            f"{PPATH}:2: detection.enable: unknown key 'enable' (did you mean 'enabled'?)",
        ),
        (
            "detection:\n  enabled: 'false'\n",
            f"{PPATH}:2: detection.enabled: expected true or false, got string",
        ),
        ("detection:\n  enabled:\n", "detection.enabled: expected true or false, got null"),
        (
            "detection:\n  custom_patterns: ['*.pem']\n",
            f"{PPATH}:2: detection.custom_patterns: expected a mapping, got list",
        ),
        (
            "detection:\n  custom_patterns:\n    '*.pem': critical\n",
            f"{PPATH}:3: detection.custom_patterns['*.pem']: "
            "unknown severity 'critical' (use high, medium or low)",
        ),
        (
            "detection:\n  custom_patterns:\n    '*.pem': 3\n",
            "detection.custom_patterns['*.pem']: "
            "expected a severity (high, medium, low) or {severity, description}, got int",
        ),
        ("detection:\n  custom_patterns:\n    '*.pem':\n", "got null"),
        (
            "detection:\n  custom_patterns:\n    x: {severity: 1}\n",
            f"{PPATH}:3: detection.custom_patterns.x.severity: "
            "expected high, medium or low, got int",
        ),
        (
            "detection:\n  custom_patterns:\n    x: {severity: bad}\n",
            "detection.custom_patterns.x.severity: unknown severity 'bad'",
        ),
        (
            "detection:\n  custom_patterns:\n    x: {severity: high, desc: d}\n",
            "detection.custom_patterns.x.desc: unknown key 'desc' (did you mean 'description'?)",
        ),
        (
            "detection:\n  custom_patterns:\n    x: {description: 5}\n",
            "detection.custom_patterns.x.description: expected a string, got int",
        ),
        ("detection:\n  custom_patterns:\n    '': high\n", "empty glob"),
        (
            "detection:\n  allowlist: {a: b}\n",
            f"{PPATH}:2: detection.allowlist: expected a list of {{path, reason}}, got mapping",
        ),
        (
            "detection:\n  allowlist: [x]\n",
            "detection.allowlist[0]: expected a mapping, got string",
        ),
        (
            "detection:\n  allowlist:\n    - path: a\n",
            f"{PPATH}:3: detection.allowlist[0]: missing 'reason'",
        ),
        ("detection:\n  allowlist:\n    - reason: r\n", "detection.allowlist[0]: missing 'path'"),
        (
            "detection:\n  allowlist:\n    - {path: a, reason: ''}\n",
            "detection.allowlist[0].reason: empty reason",
        ),
        (
            "detection:\n  allowlist:\n    - {path: 1, reason: r}\n",
            "detection.allowlist[0].path: expected a string, got int",
        ),
        (
            "detection:\n  allowlist:\n    - {path: a, reason: b, note: c}\n",
            "detection.allowlist[0].note: unknown key 'note'",
        ),
    ],
)
def test_detection_errors(text: str, expected: str) -> None:
    assert expected in message(text)


def test_detection_misplaced_top_level_key_hint() -> None:
    err = error("detection:\n  gitleaks_freshness_check: false\n")
    assert err.message.startswith(f"{PPATH}:2: detection.gitleaks_freshness_check: unknown key")
    assert err.hint is not None and "top-level key" in err.hint


@pytest.mark.parametrize(
    ("g", "p", "expected"),
    [
        ("true", "false", False),
        ("false", "true", True),
        ("false", None, False),
        (None, "false", False),
        (None, None, True),
    ],
)
def test_detection_enabled_merge(g: str | None, p: str | None, expected: bool) -> None:
    gt = f"detection:\n  enabled: {g}\n" if g is not None else "detection: {}\n"
    pt = f"detection:\n  enabled: {p}\n" if p is not None else "detection:\n  allowlist: []\n"
    assert cfg(gt, pt).detection.enabled is expected


def test_detection_patterns_and_allowlist_merge() -> None:
    merged = cfg(
        "detection:\n  custom_patterns: {a: high, b: low}\n  allowlist: [{path: g, reason: r}]\n",
        "detection:\n  custom_patterns: {b: {severity: high, description: p}, c: medium}\n"
        "  allowlist: [{path: p, reason: r}]\n",
    ).detection
    assert merged.custom_patterns == (
        CustomPattern("a", "high", "Custom pattern match"),
        CustomPattern("b", "high", "p"),
        CustomPattern("c", "medium", "Custom pattern match"),
    )
    assert merged.allowlist == (AllowEntry("g", "r"), AllowEntry("p", "r"))


# ----------------------------------------------------- bools and the threshold


@pytest.mark.parametrize("key", ["gitleaks_freshness_check", "tmux"])
@pytest.mark.parametrize("value", [True, False])
def test_bool_keys_accept_bools(key: str, value: bool) -> None:
    merged = cfg(None, f"{key}: {str(value).lower()}\n")
    assert getattr(merged, key) is value


@pytest.mark.parametrize("key", ["gitleaks_freshness_check", "tmux"])
@pytest.mark.parametrize(
    ("value", "got"),
    [("'false'", "string"), ('"true"', "string"), ("0", "int"), ("", "null"), ("[true]", "list")],
)
def test_bool_keys_reject_non_bools(key: str, value: str, got: str) -> None:
    err = error(
        f"tmux: true\n{key}: {value}\n" if key != "tmux" else f"env: {{}}\n{key}: {value}\n"
    )
    assert err.message == f"{PPATH}:2: {key}: expected true or false, got {got}"
    if got == "string":
        assert err.hint is not None and "without quotes" in err.hint


@pytest.mark.parametrize("key", ["gitleaks_freshness_check", "tmux"])
@pytest.mark.parametrize(
    ("g", "p", "expected"),
    [
        ("true", "false", False),
        ("false", "true", True),
        ("false", None, False),
        (None, "false", False),
        (None, None, True),
    ],
)
def test_bool_keys_merge(key: str, g: str | None, p: str | None, expected: bool) -> None:
    gt = f"{key}: {g}\n" if g is not None else ""
    pt = f"{key}: {p}\n" if p is not None else ""
    assert getattr(cfg(gt, pt), key) is expected


@pytest.mark.parametrize("value", [1, 7, 14, 365])
def test_threshold_accepts_positive_ints(value: int) -> None:
    assert (
        cfg(None, f"gitleaks_freshness_threshold: {value}\n").gitleaks_freshness_threshold == value
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", "gitleaks_freshness_threshold: must be from 1 to 36500 (days; 36500 is 100 years)"),
        ("-3", "must be from 1 to 36500 (days; 36500 is 100 years), got -3"),
        ("true", "gitleaks_freshness_threshold: expected a whole number of days, got bool"),
        ("'7'", "expected a whole number of days, got string"),
        ("1.5", "expected a whole number of days, got float"),
        ("", "expected a whole number of days, got null"),
    ],
)
def test_threshold_errors(value: str, expected: str) -> None:
    msg = message(f"tmux: true\ngitleaks_freshness_threshold: {value}\n")
    assert msg.startswith(f"{PPATH}:2: ")
    assert expected in msg


@pytest.mark.parametrize(
    ("g", "p", "expected"),
    [(3, None, 3), (None, 14, 14), (3, 14, 14), (None, None, 7)],
)
def test_threshold_merge_never_dropped(g: int | None, p: int | None, expected: int) -> None:
    gt = f"gitleaks_freshness_threshold: {g}\n" if g is not None else ""
    pt = f"gitleaks_freshness_threshold: {p}\n" if p is not None else ""
    assert cfg(gt, pt).gitleaks_freshness_threshold == expected


# ----------------------------------------------------------- global-only keys


@pytest.mark.parametrize(
    "value", ["debian:trixie-slim", "registry.example.com/mirror/debian:trixie", "img@sha256:abc"]
)
def test_base_image(value: str) -> None:
    assert cfg(f"base_image: {value}\n", "tmux: true\n").base_image == value


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("''", "base_image: invalid image reference ''"),
        ("'a b'", "invalid image reference 'a b'"),
        ("5", "base_image: expected an image reference, got int"),
        ("[a]", "got list"),
    ],
)
def test_base_image_errors(value: str, fragment: str) -> None:
    msg = message(f"base_image: {value}\n", "global")
    assert msg.startswith(f"{GPATH}:1: ")
    assert fragment in msg


def test_base_image_null_is_unset() -> None:
    assert cfg("base_image:\n").base_image is None


def test_ca_certificates() -> None:
    merged = cfg(
        "ca_certificates:\n  - ~/certs/ca.pem\n  - rel.pem\n  - /etc/x.pem\n  - $HOME/y.pem\n"
    )
    assert merged.ca_certificates == (
        f"{HOME}/certs/ca.pem",
        f"{HOME}/rel.pem",
        "/etc/x.pem",
        f"{HOME}/y.pem",
    )
    assert cfg("ca_certificates: []\n").ca_certificates == ()
    assert cfg("ca_certificates:\n").ca_certificates == ()


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("/a.pem", "ca_certificates: expected a list of PEM file paths, got string"),
        ("[1]", "ca_certificates[0]: expected a string, got int"),
        ("['']", "ca_certificates[0]: empty path"),
    ],
)
def test_ca_certificates_errors(value: str, fragment: str) -> None:
    msg = message(f"ca_certificates: {value}\n", "global")
    assert msg.startswith(f"{GPATH}:1: ")
    assert fragment in msg


# ----------------------------------------------------- no key is ever dropped

PROJECT_KEY_SAMPLES: dict[str, str] = {
    "extends": "extends: none\n",
    "mounts": "mounts: [/p]\n",
    "env": "env: {P: x}\n",
    "ports": "ports: ['2:2']\n",
    "docker_args": "docker_args: --p\n",
    "pre_start": "pre_start:\n",
    "harness_args": "harness_args: {claude: [--p]}\n",
    "detection": "detection: {enabled: true}\n",
    "gitleaks_freshness_check": "gitleaks_freshness_check: true\n",
    "gitleaks_freshness_threshold": "gitleaks_freshness_threshold: 30\n",
    "tmux": "tmux: true\n",
    "network": "network: none\n",
    "git_internals": "git_internals: writable\n",
}

GLOBAL_SAMPLE = (
    "mounts: [/g]\nenv: {G: x}\nports: ['1:1']\ndocker_args: --g\npre_start: g\n"
    "harness_args: {claude: [--g]}\ndetection: {enabled: false}\n"
    "gitleaks_freshness_check: false\ngitleaks_freshness_threshold: 3\ntmux: false\n"
)


def test_samples_cover_every_project_key() -> None:
    assert set(PROJECT_KEY_SAMPLES) == set(TOP_LEVEL_KEYS) - GLOBAL_ONLY_KEYS


@pytest.mark.parametrize("key", sorted(PROJECT_KEY_SAMPLES))
def test_every_project_key_reaches_the_merged_result(key: str) -> None:
    alone = cfg(GLOBAL_SAMPLE, "")
    merged = cfg(GLOBAL_SAMPLE, PROJECT_KEY_SAMPLES[key])
    assert merged != alone


# ------------------------------------------------------------ lines and paths


@pytest.mark.parametrize(
    ("text", "prefix"),
    [
        ("tmux: true\n\n# c\nports:\n  - '1:1'\n  - 'x'\n", f"{PPATH}:6: ports[1]: "),
        ("env:\n  A: 1\n  B: [x]\n", f"{PPATH}:3: env.B: "),
        (
            "mounts:\n  - /a\n  - source: /b\n    readonly: maybe\n",
            f"{PPATH}:4: mounts[1].readonly: ",
        ),
        ("mounts:\n  - /a\n  - target: /b\n", f"{PPATH}:3: mounts[1]: "),
        (
            "detection:\n  custom_patterns:\n    '*.k':\n      severity: x\n",
            f"{PPATH}:4: detection.custom_patterns['*.k'].severity: ",
        ),
    ],
)
def test_error_line_numbers(text: str, prefix: str) -> None:
    assert message(text).startswith(prefix)


def test_plain_mapping_errors_name_file_and_key_without_line() -> None:
    with pytest.raises(ConfigError) as info:
        normalize(
            {"tmux": "no"}, path=PPATH, scope="project", base_dir=Path(PROJECT), expansion=EXP
        )
    assert info.value.message == f"{PPATH}: tmux: expected true or false, got string"


# ------------------------------------------------------------------- merge()


def test_merge_nothing_is_defaults() -> None:
    assert merge(None, None) == Config()
    assert Config().detection == DetectionConfig(enabled=True)
    assert Config().gitleaks_freshness_threshold == 7


def test_merge_is_pure() -> None:
    g = norm("env: {A: 1}\nharness_args: {claude: [a]}\n", "global")
    p = norm("env: {A: 2}\nharness_args: {claude: [b]}\n")
    first = merge(g, p)
    second = merge(g, p)
    assert first == second
    assert g.env == (EnvEntry("A", "1"),)
    assert g.harness_args == (("claude", ("a",)),)


def test_sources() -> None:
    assert cfg("", None).sources == (GPATH,)
    assert cfg(None, "").sources == (PPATH,)
    assert cfg("", "").sources == (GPATH, PPATH)
    assert cfg("", "extends: none\n").sources == (GPATH, PPATH)


# -------------------------------------------------------------------- loading


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    (h / ".aishell").mkdir(parents=True)
    return h


@pytest.fixture
def project(tmp_path: Path) -> Path:
    p = tmp_path / "proj"
    p.mkdir()
    return p


def _exp(home: Path) -> Expansion:
    return Expansion(home=str(home), uid=1, gid=2, user="u")


def _load(home: Path, project: Path | None) -> Config:
    return load_config(aishell_home=home / ".aishell", project_root=project, expansion=_exp(home))


def test_load_nothing(home: Path, project: Path) -> None:
    assert _load(home, project) == Config()
    assert _load(home, None) == Config()


def test_load_global_only(home: Path, project: Path) -> None:
    (home / ".aishell" / "config.yaml").write_text("mounts: [notes]\ntmux: false\n")
    merged = _load(home, project)
    gpath = str(home / ".aishell" / "config.yaml")
    assert merged.mounts == (Mount(str(home / "notes"), str(home / "notes"), False, gpath),)
    assert merged.tmux is False
    assert merged.sources == (gpath,)


@pytest.mark.parametrize("dirname", [".aishell", ".sandbox"])
def test_load_project(home: Path, project: Path, dirname: str) -> None:
    (home / ".aishell" / "config.yaml").write_text("mounts: [/g]\n")
    (project / dirname).mkdir()
    ppath = project / dirname / "config.yaml"
    ppath.write_text("mounts: [data, '~/x:/y:ro']\n")
    merged = _load(home, project)
    assert [(m.source, m.target, m.readonly, m.origin) for m in merged.mounts] == [
        ("/g", "/g", False, str(home / ".aishell" / "config.yaml")),
        (str(project / "data"), str(project / "data"), False, str(ppath)),
        (str(home / "x"), "/y", True, str(ppath)),
    ]
    assert merged.sources[-1] == str(ppath)


def test_project_dir_without_config_file(home: Path, project: Path) -> None:
    (project / ".aishell").mkdir()
    (home / ".aishell" / "config.yaml").write_text("tmux: false\n")
    assert _load(home, project).tmux is False


def test_both_project_dirs_is_an_error(home: Path, project: Path) -> None:
    (project / ".aishell").mkdir()
    (project / ".sandbox").mkdir()
    with pytest.raises(ConfigError) as info:
        _load(home, project)
    assert ".aishell/" in info.value.message and ".sandbox/" in info.value.message
    assert "remove" in info.value.message
    assert str(project) in info.value.message


def test_find_project_config_dir(project: Path) -> None:
    assert find_project_config_dir(project) is None
    (project / ".sandbox").mkdir()
    assert find_project_config_dir(project) == project / ".sandbox"
    (project / ".aishell").write_text("a file, not a directory")
    assert find_project_config_dir(project) == project / ".sandbox"


def test_project_rooted_at_home_does_not_reuse_global_dir(home: Path) -> None:
    (home / ".aishell" / "config.yaml").write_text("tmux: false\n")
    assert find_project_config_dir(home, aishell_home=home / ".aishell") is None
    merged = _load(home, home)
    assert merged.sources == (str(home / ".aishell" / "config.yaml"),)
    (home / ".sandbox").mkdir()
    assert find_project_config_dir(home, aishell_home=home / ".aishell") == home / ".sandbox"


def test_global_only_key_in_project_names_global_path(home: Path, project: Path) -> None:
    (project / ".aishell").mkdir()
    (project / ".aishell" / "config.yaml").write_text("base_image: x:1\n")
    with pytest.raises(ConfigError) as info:
        _load(home, project)
    assert str(home / ".aishell" / "config.yaml") in info.value.message
    assert str(project / ".aishell" / "config.yaml") + ":1: base_image" in info.value.message


def test_invalid_yaml_in_file_names_the_file(home: Path, project: Path) -> None:
    (project / ".aishell").mkdir()
    path = project / ".aishell" / "config.yaml"
    path.write_text("tmux: true\nmounts: [\n")
    with pytest.raises(ConfigError) as info:
        _load(home, project)
    assert info.value.message.startswith(f"Invalid YAML in {path} line 3")


def test_invalid_global_file_is_an_error_even_with_extends_none(home: Path, project: Path) -> None:
    (home / ".aishell" / "config.yaml").write_text("tmux: maybe\n")
    (project / ".aishell").mkdir()
    (project / ".aishell" / "config.yaml").write_text("extends: none\n")
    with pytest.raises(ConfigError, match=r"config\.yaml:1: tmux"):
        _load(home, project)


def test_unreadable_file(home: Path, project: Path) -> None:
    (home / ".aishell" / "config.yaml").mkdir()
    with pytest.raises(ConfigError) as info:
        _load(home, project)
    assert info.value.message.startswith(f"Cannot read {home / '.aishell' / 'config.yaml'}")


@permissions_enforced
def test_permission_denied(home: Path, project: Path) -> None:
    path = home / ".aishell" / "config.yaml"
    path.write_text("tmux: true\n")
    path.chmod(0)
    try:
        with pytest.raises(ConfigError, match="Cannot read"):
            _load(home, project)
    finally:
        path.chmod(0o600)


def test_non_utf8_file(home: Path, project: Path) -> None:
    (home / ".aishell" / "config.yaml").write_bytes(b"tmux: \xff\xfe\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        _load(home, project)


def test_importing_config_does_not_import_yaml() -> None:
    code = "import sys, aishell.config; assert 'yaml' not in sys.modules, 'yaml imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------ the key table


def test_key_table_matches_the_records() -> None:
    """Adding a key means one `KEYS` entry plus its `FileConfig` and `Config` fields."""
    names = [k.name for k in KEYS]
    assert len(set(names)) == len(names)
    assert tuple(names) == TOP_LEVEL_KEYS
    assert FileConfig._fields == ("path", "scope", "keys", *names, "lines")
    merged = [k for k in KEYS if k.merge != "selects-layers"]
    assert set(Config._fields) - {"sources"} == {k.name for k in merged}
    for key in KEYS:
        assert key.scope in get_args(KeyScope), key.name
        assert key.merge in get_args(MergeRule), key.name
        assert (key.scope == "global-only") == (key.merge == "global-only"), key.name
        assert bool(key.parts) == (key.merge == "per-part"), key.name
        assert callable(key.normalise), key.name
    for key in merged:
        assert Config._field_defaults[key.name] == key.default, key.name
    for key in (k for k in KEYS if k.parts):
        record = type(key.default)
        assert tuple(p.name for p in key.parts) == record._fields
        assert (
            tuple(p.name for p in key.parts) == type(FileConfig._field_defaults[key.name])._fields
        )
        for part in key.parts:
            assert record._field_defaults[part.name] == part.default, (key.name, part.name)
            assert part.merge in get_args(MergeRule)
    assert {k.name for k in KEYS if k.scope == "global-only"} == GLOBAL_ONLY_KEYS
    assert {k.name for k in KEYS if k.scope == "project-only"} == PROJECT_ONLY_KEYS


def test_an_unset_key_merges_to_its_table_default() -> None:
    empty = merge(norm("", "global"), norm(""))
    for key in KEYS:
        if key.merge != "selects-layers":
            assert getattr(empty, key.name) == key.default, key.name


# ---------------------------------------------------------- inspect_config


def _inspect(home: Path, project: Path) -> ConfigReport:
    return inspect_config(
        aishell_home=home / ".aishell", project_root=project, expansion=_exp(home)
    )


def test_inspect_nothing(home: Path, project: Path) -> None:
    report = _inspect(home, project)
    assert report == ConfigReport(
        files=(
            FileReport("global", str(home / ".aishell" / "config.yaml"), False),
            FileReport("project", str(project / ".aishell" / "config.yaml"), False),
        ),
        config=Config(),
        error=None,
        project_config_dir=None,
    )


@pytest.mark.parametrize("dirname", [".aishell", ".sandbox"])
def test_inspect_valid_files_merge_like_load_config(
    home: Path, project: Path, dirname: str
) -> None:
    (home / ".aishell" / "config.yaml").write_text("mounts: [/g]\ntmux: false\n")
    (project / dirname).mkdir()
    (project / dirname / "config.yaml").write_text("mounts: [/p]\n")
    report = _inspect(home, project)
    assert report.error is None
    assert report.config == _load(home, project)
    assert report.project_config_dir == project / dirname
    assert [(f.scope, f.path, f.exists, f.error) for f in report.files] == [
        ("global", str(home / ".aishell" / "config.yaml"), True, None),
        ("project", str(project / dirname / "config.yaml"), True, None),
    ]
    global_part = report.part("global")
    assert global_part is not None and global_part.tmux is False
    assert report.part("project") is not None


def test_inspect_reports_each_error_and_the_first(home: Path, project: Path) -> None:
    gpath = home / ".aishell" / "config.yaml"
    gpath.write_text("tmux: maybe\n")
    (project / ".aishell").mkdir()
    ppath = project / ".aishell" / "config.yaml"
    ppath.write_text("mounts: [\n")
    report = _inspect(home, project)
    assert report.config is None
    g, p = report.files
    assert g.error == f"{gpath}:1: tmux: expected true or false, got string"
    assert p.error is not None and p.error.startswith(f"Invalid YAML in {ppath} line 2: ")
    assert p.error.endswith(f"; fix the YAML syntax in {ppath}")
    assert (g.exists, p.exists, g.config, p.config) == (True, True, None, None)
    assert report.error == g.error
    assert report.part("global") is None


def test_inspect_project_error_only(home: Path, project: Path) -> None:
    (project / ".aishell").mkdir()
    (project / ".aishell" / "config.yaml").write_text("base_image: x\n")
    report = _inspect(home, project)
    assert report.files[0].error is None and report.files[0].exists is False
    assert report.error == report.files[1].error
    assert report.error is not None and "global-only" in report.error
    assert report.config is None


def test_inspect_both_project_dirs(home: Path, project: Path) -> None:
    (home / ".aishell" / "config.yaml").write_text("tmux: false\n")
    (project / ".aishell").mkdir()
    (project / ".sandbox").mkdir()
    report = _inspect(home, project)
    assert report.error is not None and report.error.startswith(
        "Found both .aishell/ and .sandbox/"
    )
    assert report.config is None and report.project_config_dir is None
    assert [(f.scope, f.exists, f.error) for f in report.files] == [
        ("global", True, None),
        ("project", False, None),
    ]
    assert report.files[1].path == str(project / ".aishell" / "config.yaml")


def test_inspect_writes_no_cache_unless_asked(home: Path, project: Path) -> None:
    (home / ".aishell" / "config.yaml").write_text("tmux: false\n")
    _inspect(home, project)
    assert not (home / ".aishell" / "cache").exists()
    cache = home / ".aishell" / "cache" / "config"
    inspect_config(
        aishell_home=home / ".aishell", project_root=project, expansion=_exp(home), cache_dir=cache
    )
    assert list(cache.iterdir())


# ------------------------------------------------- a bare ~ where a path goes

TILDE = ' (YAML reads a bare ~ as null: quote it, "~")'
STRING = "expected a string, got null"
STRING_OR_MAP = "expected a string or a mapping, got null"


@pytest.mark.parametrize(
    ("text", "scope", "expected"),
    [
        ("mounts: [~]\n", "project", f"{PPATH}:1: mounts[0]: {STRING_OR_MAP}"),
        ("mounts:\n  - /a\n  - ~\n", "project", f"{PPATH}:3: mounts[1]: {STRING_OR_MAP}"),
        ("mounts:\n  - source: ~\n", "project", f"{PPATH}:2: mounts[0].source: {STRING}"),
        ("mounts: [{source: null}]\n", "project", f"{PPATH}:1: mounts[0].source: {STRING}"),
        ("ca_certificates: [~]\n", "global", f"{GPATH}:1: ca_certificates[0]: {STRING}"),
        (
            "detection:\n  allowlist: [{path: ~, reason: r}]\n",
            "project",
            f"{PPATH}:2: detection.allowlist[0].path: {STRING}",
        ),
    ],
)
def test_null_where_a_path_goes_explains_the_bare_tilde(
    text: str, scope: Scope, expected: str
) -> None:
    assert message(text, scope) == expected + TILDE


def test_quoted_tilde_mount_is_the_home() -> None:
    assert norm("mounts: ['~']\n").mounts == (Mount(HOME, HOME, False, PPATH),)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mounts: [1]\n", "mounts[0]: expected a string or a mapping, got int"),
        ("pre_start: [a, ~]\n", "pre_start[1]: expected a string, got null"),
        (
            "detection:\n  allowlist: [{path: p, reason: ~}]\n",
            "reason: expected a string, got null",
        ),
    ],
)
def test_no_tilde_hint_where_no_path_goes(text: str, expected: str) -> None:
    msg = message(text)
    assert msg.endswith(expected)


def test_bare_tilde_mount_message_exactly() -> None:
    assert message("mounts: [~]\n") == (
        f"{PPATH}:1: mounts[0]: expected a string or a mapping, got null (YAML reads a bare ~ "
        'as null: quote it, "~")'
    )


def test_merge_key_precedence_follows_the_yaml_spec() -> None:
    """Own keys win over merged ones; earlier merged mappings over later ones (PyYAML
    6.0.4 lets the later one win unless the key strings happen to be one object)."""
    text = (
        "detection:\n"
        "  custom_patterns:\n"
        "    a: &p {severity: high, description: first}\n"
        "    b: &q {severity: low, description: second}\n"
        "    c: {<<: [*p, *q]}\n"
        "    d: {<<: [*q, *p], severity: medium}\n"
        "    e: {<<: *p, description: own}\n"
    )
    patterns = {p.glob: p for p in norm(text).custom_patterns}
    assert patterns["c"] == CustomPattern("c", "high", "first")
    assert patterns["d"] == CustomPattern("d", "medium", "second")
    assert patterns["e"] == CustomPattern("e", "high", "own")


def test_merge_key_errors() -> None:
    assert message("env: {<<: [1]}\n") == (
        f"Invalid YAML in {PPATH} line 1: expected a mapping for merging, but found scalar"
    )
    assert message("env: {<<: {A: 1, A: 2}}\n") == (
        f"{PPATH}:1: env.A: duplicate key (first on line 1); one would be ignored"
    )


# ------------------------------------------------------------------ origins

ORIGIN_GLOBAL = (
    "mounts: [/g1, /g2]\n"  # 1
    "env:\n"  # 2
    "  A: g\n"  # 3
    "  B: g\n"  # 4
    "tmux: false\n"  # 5
    "harness_args:\n"  # 6
    "  claude: [--g]\n"  # 7
    "base_image: img:1\n"  # 8
    "gitleaks_freshness_threshold: 3\n"  # 9
)
ORIGIN_PROJECT = (
    "mounts:\n"  # 1
    "  - /p1\n"  # 2
    "env:\n"  # 3
    "  - B=p\n"  # 4
    "  - C\n"  # 5
    "docker_args: --x --y\n"  # 6
    "harness_args:\n"  # 7
    "  claude: --p\n"  # 8
    "detection:\n"  # 9
    "  enabled: false\n"  # 10
)


def _at(path: str, line: int, key: str | None = None) -> dict[str, Any]:
    return {"file": path, "line": line} if key is None else {"file": path, "line": line, "key": key}


def _mount(source: str, origin: str) -> dict[str, Any]:
    return {"source": source, "target": source, "readonly": False, "origin": origin}


def test_origins_of_a_global_and_project_pair() -> None:
    result = origins(norm(ORIGIN_GLOBAL, "global"), norm(ORIGIN_PROJECT))
    assert result == {
        "extends": {"value": "global", "origin": "default"},
        "mounts": {
            "value": [_mount("/g1", GPATH), _mount("/g2", GPATH), _mount("/p1", PPATH)],
            "origins": [_at(GPATH, 1), _at(GPATH, 1), _at(PPATH, 2)],
        },
        "env": {
            "value": {"A": "g", "B": "p", "C": None},
            "origins": [_at(GPATH, 3, "A"), _at(PPATH, 4, "B"), _at(PPATH, 5, "C")],
        },
        "ports": {"value": [], "origin": "default"},
        "docker_args": {"value": ["--x", "--y"], "origins": [_at(PPATH, 6), _at(PPATH, 6)]},
        "pre_start": {"value": None, "origin": "default"},
        "harness_args": {
            "value": {"claude": ["--g", "--p"]},
            "origins": [_at(GPATH, 7, "claude"), _at(PPATH, 8, "claude")],
        },
        "detection.enabled": {"value": False, "origins": [_at(PPATH, 10)]},
        "detection.custom_patterns": {"value": {}, "origin": "default"},
        "detection.allowlist": {"value": [], "origin": "default"},
        "gitleaks_freshness_check": {"value": True, "origin": "default"},
        "gitleaks_freshness_threshold": {"value": 3, "origins": [_at(GPATH, 9)]},
        "tmux": {"value": False, "origins": [_at(GPATH, 5)]},
        "base_image": {"value": "img:1", "origins": [_at(GPATH, 8)]},
        "ca_certificates": {"value": [], "origin": "default"},
        "network": {"value": {"mode": "open", "allow": [], "presets": []}, "origin": "default"},
        "engine": {"value": None, "origin": "default"},
        "git_internals": {"value": "read-only", "origin": "default"},
        "share_logins": {"value": [], "origin": "default"},
        "share_from_host": {"value": [], "origin": "default"},
        "sessions_keep_days": {"value": 30, "origin": "default"},
        "sessions_keep": {"value": 100, "origin": "default"},
    }
    json.dumps(result)  # JSON-able as it is


def test_origins_with_extends_none() -> None:
    project = "extends: none\nmounts: [/p1]\nnetwork: none\n"
    result = origins(norm(ORIGIN_GLOBAL, "global"), norm(project))
    assert result["extends"] == {"value": "none", "origins": [_at(PPATH, 1)]}
    assert result["mounts"] == {"value": [_mount("/p1", PPATH)], "origins": [_at(PPATH, 2)]}
    assert result["env"] == {"value": {}, "origin": "default"}
    assert result["tmux"] == {"value": True, "origin": "default"}
    assert result["gitleaks_freshness_threshold"] == {"value": 7, "origin": "default"}
    assert result["base_image"] == {"value": "img:1", "origins": [_at(GPATH, 8)]}  # global-only
    assert result["network"] == {
        "value": {"mode": "none", "allow": [], "presets": []},
        "origins": [_at(PPATH, 3)],
    }


def test_origins_of_map_entries_and_nested_parts() -> None:
    g = norm(
        "detection:\n  custom_patterns: {a: high, b: low}\n"
        "  allowlist:\n    - {path: g, reason: r}\n"
        "network: {mode: allowlist, allow: [a.org, b.org]}\n",
        "global",
    )
    p = norm(
        "detection:\n  custom_patterns:\n    b: {severity: high, description: p}\n"
        "  allowlist: [{path: p, reason: r}]\n"
        "network:\n  allow: [a.org]\n"
        "pre_start:\n",
    )
    result = origins(g, p)
    assert result["detection.custom_patterns"] == {
        "value": {
            "a": {"severity": "high", "description": "Custom pattern match"},
            "b": {"severity": "high", "description": "p"},
        },
        "origins": [_at(GPATH, 2, "a"), _at(PPATH, 3, "b")],
    }
    assert result["detection.allowlist"] == {
        "value": [{"path": "g", "reason": "r"}, {"path": "p", "reason": "r"}],
        "origins": [_at(GPATH, 4), _at(PPATH, 4)],
    }
    assert result["detection.enabled"] == {"value": True, "origin": "default"}
    assert result["network"] == {
        "value": {"mode": "allowlist", "allow": ["a.org"], "presets": []},
        "origins": [_at(GPATH, 5), _at(PPATH, 5)],
    }
    assert result["pre_start"] == {"value": None, "origins": [_at(PPATH, 7)]}  # set, to null


def test_origins_values_are_what_merge_gives() -> None:
    g, p = norm(ORIGIN_GLOBAL, "global"), norm(ORIGIN_PROJECT)
    merged, result = merge(g, p), origins(g, p)
    assert result["docker_args"]["value"] == list(merged.docker_args)
    assert result["env"]["value"] == {e.name: e.value for e in merged.env}
    assert result["harness_args"]["value"] == {k: list(v) for k, v in merged.harness_args.items()}
    assert result["detection.enabled"]["value"] is merged.detection.enabled
    assert origins(None, None) == origins(norm("", "global"), norm(""))


def test_origins_without_lines() -> None:
    fc = normalize(
        {"tmux": False}, path=PPATH, scope="project", base_dir=Path(PROJECT), expansion=EXP
    )
    assert origins(None, fc)["tmux"] == {"value": False, "origins": [{"file": PPATH, "line": None}]}


def test_inspect_without_a_project(home: Path) -> None:
    (home / ".aishell" / "config.yaml").write_text("tmux: false\n")
    report = inspect_config(aishell_home=home / ".aishell", project_root=None, expansion=_exp(home))
    assert [f.scope for f in report.files] == ["global"]
    assert report.config == _load(home, None)
    assert report.part("project") is None
