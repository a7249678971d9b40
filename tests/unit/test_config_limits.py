"""Hostile or runaway config files: each ends in one clean `ConfigError`, quickly.

The limits (see `aishell.config.loader` and `aishell.config.checks.LIMITS`): regular
files only, at most 1 MiB, at most 32 levels of nesting, at most 50,000 values once
aliases and merge keys are expanded, numbers of at most 4,300 characters, no NUL
characters, and a cap on the entries of every list or map key.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from aishell.config import Expansion, FileConfig, Scope, load_file, merge, parse_config_text
from aishell.config.checks import LIMITS
from aishell.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable

EXP = Expansion(home="/home/alice", uid=1234, gid=5678, user="alice")
CASE_SECONDS = 1.0  # "ends within a second", generously measured per case


def load(path: Path, scope: Scope = "project") -> object:
    return load_file(
        path,
        scope=scope,
        base_dir=Path("/proj"),
        expansion=EXP,
        global_path="/home/alice/.aishell/config.yaml",
    )


def write(tmp_path: Path, content: str | bytes) -> Path:
    path = tmp_path / "config.yaml"
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def fails(path: Path, scope: Scope = "project") -> ConfigError:
    """Loading `path` raises exactly one ConfigError (nothing else) within a second."""
    start = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        load(path, scope)
    elapsed = time.perf_counter() - start
    assert type(info.value) is ConfigError
    assert elapsed < CASE_SECONDS, f"took {elapsed:.2f}s"
    assert info.value.message and "\n" not in info.value.message
    return info.value


# ------------------------------------------------------------- the samples


def alias_bomb(levels: int = 9) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "env:\n" + "".join(f"  {line}\n" for line in lines)


def merge_key_bomb(levels: int = 20) -> str:
    lines = ["m0: &m0 {k0: 1, k1: 2, k2: 3}"]
    for i in range(1, levels):
        lines.append(f"m{i}: &m{i} {{<<: [" + ", ".join([f"*m{i - 1}"] * 9) + f"], n{i}: 1}}")
    return "detection:\n  custom_patterns:\n" + "".join(f"    {line}\n" for line in lines)


def alias_chain(length: int = 2000) -> str:
    """Each anchor nests the previous one: deep through aliases, not in the text."""
    lines = ["  c0: &c0 [x]"]
    lines += [f"  c{i}: &c{i} [*c{i - 1}]" for i in range(1, length)]
    return "env:\n" + "\n".join(lines) + "\n"


def over(name: str) -> str:
    """YAML with one entry more than `LIMITS[name]` allows."""
    return sized(name, LIMITS[name].cap + 1)


def sized(name: str, n: int) -> str:
    if name == "mounts":
        return "mounts:\n" + "".join(f"  - /m{i}\n" for i in range(n))
    if name == "env":
        return "env:\n" + "".join(f"  V{i}: x\n" for i in range(n))
    if name == "ports":
        return "ports:\n" + "".join(f"  - '{i + 1}:80'\n" for i in range(n))
    if name == "docker_args":
        return "docker_args:\n" + "".join(f"  - --a{i}\n" for i in range(n))
    if name == "pre_start":
        return "pre_start:\n" + "".join(f"  - echo {i}\n" for i in range(n))
    if name == "harness_args.*":
        return "harness_args:\n  claude:\n" + "".join(f"    - --a{i}\n" for i in range(n))
    if name == "detection.custom_patterns":
        return "detection:\n  custom_patterns:\n" + "".join(f"    p{i}: high\n" for i in range(n))
    if name == "detection.allowlist":
        body = "".join(f"    - {{path: p{i}, reason: r}}\n" for i in range(n))
        return "detection:\n  allowlist:\n" + body
    if name == "ca_certificates":
        return "ca_certificates:\n" + "".join(f"  - /c{i}.pem\n" for i in range(n))
    if name == "network.allow":
        body = "".join(f"    - h{i}.example.com\n" for i in range(n))
        return "network:\n  mode: allowlist\n  allow:\n" + body
    if name == "network.presets":
        return "network:\n  presets:\n" + "    - npm\n" * n
    if name == "share_from_host":
        return "share_from_host:\n" + "".join(f"  - ~/.claude/f{i}\n" for i in range(n))
    raise AssertionError(name)


def scope_of(text: str) -> Scope:
    """Where the sample goes: global-only keys in a global file, unless it says otherwise."""
    if text.startswith("# global\n"):
        return "global"
    if text.startswith("# project\n"):
        return "project"
    global_only = ("base_image", "ca_certificates", "engine", "share_logins", "share_from_host")
    return "global" if text.startswith(global_only) else "project"


SAMPLES = {
    "null": "~",
    "bool": "true",
    "int": "3",
    "float": "1.5",
    "string": "bogus",
    "list": "[7]",
    "mapping": "{x: 1}",
}
ALLOWED = {  # the sample types each key accepts (a string sample "bogus" is never valid
    "extends": set(),  # for extends, network or engine)
    "mounts": {"null", "list"},
    "env": {"null", "mapping", "list"},
    "ports": {"null", "list"},
    "docker_args": {"null", "string", "list"},
    "pre_start": {"null", "string", "list"},
    "harness_args": {"null", "mapping"},
    "detection": {"null", "mapping"},
    "gitleaks_freshness_check": {"bool"},
    "gitleaks_freshness_threshold": {"int"},
    "tmux": {"bool"},
    "base_image": {"null", "string"},
    "ca_certificates": {"null", "list"},
    "network": {"null", "mapping"},
    "engine": {"null"},
    "share_logins": {"null"},  # a mapping of agent names; {x: 1} names none
    "share_from_host": {"null"},  # a list of paths under the home; [7] is none
}
WRONG_TYPES = [
    (f"{key}: {kind}", f"{key}: {SAMPLES[kind]}\n")
    for key, allowed in ALLOWED.items()
    for kind in SAMPLES
    if kind not in allowed
]

TEXTS: list[tuple[str, str | bytes]] = [
    ("alias bomb", alias_bomb()),
    ("alias bomb under a list key", "mounts:\n" + alias_bomb().split("\n", 1)[1]),
    ("merge-key bomb", merge_key_bomb()),
    ("alias chain 2000 deep", alias_chain()),
    ("10,000 nested flow lists", "mounts: " + "[" * 10_000 + "]" * 10_000 + "\n"),
    ("40 nested block lists", "mounts:\n" + "- " * 40 + "x\n"),
    ("100 nested mappings", "env:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 101))),
    ("a flat list of 260,000 items", "mounts:\n" + "- a\n" * 260_000),
    ("5,000-digit int", "gitleaks_freshness_threshold: " + "9" * 5000 + "\n"),
    ("5,000-digit int in env", "env:\n  A: " + "1" * 5000 + "\n"),
    ("5,000-digit float", "tmux: 1." + "5" * 5000 + "\n"),
    ("1 MiB sexagesimal int", "env:\n  A: 1" + ":59" * 300_000 + "\n"),
    ("5,000-digit port", "ports: ['" + "1" * 5000 + ":80']\n"),
    ("5,000-digit host port", "network:\n  allow: ['a.org:" + "1" * 5000 + "']\n"),
    ("invalid date", "env:\n  A: 2024-13-45\n"),
    ("!!bool x", "tmux: !!bool maybe\n"),
    ("!!int x", "gitleaks_freshness_threshold: !!int seven\n"),
    ("!!float x", "env:\n  A: !!float x\n"),
    ("!!timestamp x", "env:\n  A: !!timestamp x\n"),
    ("!!binary x", "env:\n  A: !!binary '%'\n"),
    ("!!set", "env: !!set {a, b}\n"),
    ("!!omap", "mounts: !!omap [a: 1]\n"),
    ("!!python/object", "tmux: !!python/object:os.system x\n"),
    ("NUL byte in the file", b"tmux: true\x00\n"),
    ("NUL in an env value", 'env:\n  A: "a\\0b"\n'),
    ("NUL in a mount", 'mounts: ["/a\\x00b"]\n'),
    ("NUL in a key", '"tm\\0ux": true\n'),
    ("NUL in an env name", 'env:\n  "A\\u0000": x\n'),
    ("NUL in docker_args", 'docker_args: "--x \\0"\n'),
    ("non-UTF-8", b"tmux: \xff\xfe\n"),
    ("UTF-16", "tmux: true\n".encode("utf-16")),
    ("a 1 MB docker_args token", "docker_args: " + "a" * 1_000_000 + "\n"),
    ("an unclosed 40 KiB docker_args quote", "docker_args: \"'" + "a" * 40_000 + '"\n'),
    ("harness_args string of 40 KiB", "harness_args:\n  claude: " + "a" * 40_000 + "\n"),
    ("more than 1 MiB", "tmux: true\n" + "#" * (1 << 20) + "\n"),
    ("top level is a list", "- a\n"),
    ("two documents", "tmux: true\n---\ntmux: false\n"),
    ("recursive alias", "mounts: &a [*a]\n"),
    ("recursive merge", "env: &e {<<: *e, A: 1}\n"),
    ("undefined alias", "mounts: [*nope]\n"),
    ("unknown key", "mount: []\n"),
    ("duplicate key", "tmux: true\ntmux: false\n"),
    ("duplicate key inside a merge", "env: {<<: {A: 1, A: 2}}\n"),
    ("bad merge value", "env: {<<: 1}\n"),
    ("tab indentation", "env:\n\tA: 1\n"),
    ("global-only key in a project file", "# project\nbase_image: x\n"),
    ("extends in a global file", "# global\nextends: none\n"),
    *((f"{name} over its cap", over(name)) for name in LIMITS),
    ("env list over its cap", "env:\n" + "".join(f"  - V{i}=x\n" for i in range(1001))),
    (
        "docker_args string over its cap",
        "docker_args: '" + " ".join(f"--a{i}" for i in range(501)) + "'\n",
    ),
    *WRONG_TYPES,
]


def _special_files() -> list[tuple[str, Callable[[Path], Path]]]:
    def fifo(tmp: Path) -> Path:
        os.mkfifo(tmp / "config.yaml")
        return tmp / "config.yaml"

    def link_to(target: str) -> Callable[[Path], Path]:
        def make(tmp: Path) -> Path:
            (tmp / "config.yaml").symlink_to(target)
            return tmp / "config.yaml"

        return make

    def directory(tmp: Path) -> Path:
        (tmp / "config.yaml").mkdir()
        return tmp / "config.yaml"

    def link_to_fifo(tmp: Path) -> Path:
        os.mkfifo(tmp / "pipe")
        (tmp / "config.yaml").symlink_to(tmp / "pipe")
        return tmp / "config.yaml"

    def symlink_loop(tmp: Path) -> Path:
        (tmp / "config.yaml").symlink_to(tmp / "config.yaml")
        return tmp / "config.yaml"

    return [
        ("FIFO", fifo),
        ("symlink to /dev/zero", link_to("/dev/zero")),
        ("symlink to /dev/urandom", link_to("/dev/urandom")),
        ("symlink to /dev/null", link_to("/dev/null")),
        ("symlink to a FIFO", link_to_fifo),
        ("directory instead of a file", directory),
        ("symlink loop", symlink_loop),
    ]


SPECIAL = _special_files()


def test_the_fuzz_table_is_large() -> None:
    assert len(TEXTS) + len(SPECIAL) >= 60
    assert len(WRONG_TYPES) >= 60


@pytest.mark.parametrize(("name", "text"), TEXTS, ids=[name for name, _ in TEXTS])
def test_malformed_config_is_one_clean_error(tmp_path: Path, name: str, text: str | bytes) -> None:
    shown = text if isinstance(text, str) else ""
    fails(write(tmp_path, text), scope_of(shown))


@pytest.mark.parametrize(("name", "make"), SPECIAL, ids=[name for name, _ in SPECIAL])
def test_not_a_regular_file_is_one_clean_error(
    tmp_path: Path, name: str, make: Callable[[Path], Path]
) -> None:
    path = make(tmp_path)
    err = fails(path)
    assert err.message.startswith(f"Cannot read {path}: ")


# ------------------------------------------------------- exact messages


def test_fifo_message(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    os.mkfifo(path)
    err = fails(path)
    assert err.message == f"Cannot read {path}: it is a FIFO (named pipe), not a regular file"
    assert err.hint == "a config file must be a regular file (or a symlink to one)"


def test_device_message(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.symlink_to("/dev/zero")
    assert fails(path).message == (
        f"Cannot read {path}: it is a character device, not a regular file"
    )


def test_directory_message_is_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.mkdir()
    err = fails(path)
    assert err.message == f"Cannot read {path}: Is a directory"
    assert err.hint == "check that it is a readable file"


def test_size_cap(tmp_path: Path) -> None:
    path = write(tmp_path, "tmux: true\n" + "#" * (1 << 20))
    err = fails(path)
    assert err.message == f"Cannot read {path}: it is larger than 1 MiB ({(1 << 20) + 11} bytes)"
    assert err.hint is not None and "right file" in err.hint


def test_a_file_of_exactly_1_mib_is_read(tmp_path: Path) -> None:
    text = "tmux: false\n"
    path = write(tmp_path, text + "#" * ((1 << 20) - len(text)))
    assert path.stat().st_size == 1 << 20
    part = load(path)
    assert isinstance(part, FileConfig) and part.tmux is False


def test_alias_bomb_message(tmp_path: Path) -> None:
    path = write(tmp_path, alias_bomb())
    err = fails(path)
    assert err.message.startswith(f"Invalid YAML in {path} line ")
    assert err.message.endswith(
        ": more than 50000 values once aliases (*name) and merge keys (<<) are expanded"
    )


def test_many_written_values_message(tmp_path: Path) -> None:
    path = write(tmp_path, "mounts:\n" + "- a\n" * 60_000)
    err = fails(path)
    assert err.message == (
        f"Invalid YAML in {path} line 49999: more than 50000 values once aliases (*name) "
        "and merge keys (<<) are expanded"
    )


def test_depth_message(tmp_path: Path) -> None:
    path = write(tmp_path, "mounts:\n" + "- " * 40 + "x\n")
    assert fails(path).message == f"Invalid YAML in {path} line 2: nested more than 32 levels deep"


def test_depth_through_aliases_message(tmp_path: Path) -> None:
    path = write(tmp_path, alias_chain(40))
    assert fails(path).message.endswith(": nested more than 32 levels deep")


def test_long_number_message(tmp_path: Path) -> None:
    path = write(tmp_path, "tmux: true\ngitleaks_freshness_threshold: " + "9" * 5000 + "\n")
    err = fails(path)
    assert err.message == (
        f"{path}:2: gitleaks_freshness_threshold: a number of 5000 characters is too long "
        "(at most 4300)"
    )
    assert err.hint == "quote it if it is text"


def test_invalid_date_message(tmp_path: Path) -> None:
    path = write(tmp_path, "env:\n  BUILD: 2024-13-45\n")
    err = fails(path)
    assert err.message == (
        f"{path}:2: env.BUILD: '2024-13-45' is not a valid date (month must be in 1..12)"
    )
    assert err.hint == "quote it if it is text"


def test_bad_explicit_tag_message(tmp_path: Path) -> None:
    path = write(tmp_path, "tmux: !!bool maybe\n")
    assert fails(path).message == f"{path}:1: tmux: 'maybe' is not a valid boolean"


def test_long_port_message(tmp_path: Path) -> None:
    path = write(tmp_path, "ports: ['" + "1" * 5000 + ":80']\n")
    assert "has port 1111111111… (5000 digits) outside 1-65535" in fails(path).message


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('env:\n  A: "a\\0b"\n', "2: env.A"),
        ('mounts:\n  - "/a\\x00b"\n', "2: mounts[0]"),
        ('"tm\\0ux": true\n', "1: ['tm\\x00ux']"),
        ('docker_args: [--x, "\\0"]\n', "1: docker_args[1]"),
    ],
)
def test_nul_message(tmp_path: Path, text: str, where: str) -> None:
    path = write(tmp_path, text)
    err = fails(path)
    assert err.message == (
        f"{path}:{where}: contains a NUL character (\\0), which cannot be passed to a program"
    )


@pytest.mark.parametrize("name", sorted(LIMITS))
def test_cap_message_names_key_cap_and_line(tmp_path: Path, name: str) -> None:
    text = over(name)
    path = write(tmp_path, text)
    err = fails(path, scope_of(text))
    limit = LIMITS[name]
    key = name.replace("*", "claude")
    last = key.rsplit(".", 1)[-1] + ":"
    line = next(i for i, t in enumerate(text.splitlines(), 1) if t.strip().startswith(last))
    assert err.message == f"{path}:{line}: {key}: more than {limit.cap} {limit.noun}"
    assert err.hint == f"{key} may hold at most {limit.cap}"


@pytest.mark.parametrize("name", sorted(LIMITS))
def test_exactly_the_cap_is_fine(tmp_path: Path, name: str) -> None:
    text = sized(name, LIMITS[name].cap)
    start = time.perf_counter()
    assert load(write(tmp_path, text), scope_of(text)) is not None
    assert time.perf_counter() - start < CASE_SECONDS


def test_split_string_cap(tmp_path: Path) -> None:
    path = write(tmp_path, "docker_args: " + "a" * 40_000 + "\n")
    assert fails(path).message == (
        f"{path}:1: docker_args: a string of more than 32768 characters to split"
    )


def at_every_cap(scope: Scope) -> str:
    cap = {name: limit.cap for name, limit in LIMITS.items()}
    top = ("mounts", "env", "ports", "docker_args", "pre_start", "harness_args.*")
    text = "".join(sized(name, cap[name]) for name in top)
    text += "detection:\n"
    for name in ("detection.custom_patterns", "detection.allowlist"):
        text += sized(name, cap[name]).split("\n", 1)[1]
    text += sized("network.allow", cap["network.allow"])
    text += sized("network.presets", cap["network.presets"]).split("\n", 1)[1]
    if scope == "global":
        text += sized("ca_certificates", cap["ca_certificates"])
    return text


def test_every_cap_at_once_normalises_and_merges_quickly(tmp_path: Path) -> None:
    """Normalisation and merging stay linear: two files at every cap are quick."""
    (tmp_path / "g").mkdir()
    (tmp_path / "p").mkdir()
    start = time.perf_counter()
    g = load(write(tmp_path / "g", at_every_cap("global")), "global")
    p = load(write(tmp_path / "p", at_every_cap("project")), "project")
    assert isinstance(g, FileConfig) and isinstance(p, FileConfig)
    merged = merge(g, p)
    assert time.perf_counter() - start < CASE_SECONDS
    assert len(merged.mounts) == 2 * LIMITS["mounts"].cap
    assert len(merged.env) == LIMITS["env"].cap
    assert len(merged.docker_args) == 2 * LIMITS["docker_args"].cap
    assert len(merged.detection.allowlist) == 2 * LIMITS["detection.allowlist"].cap
    assert len(merged.args_for("claude")) == 2 * LIMITS["harness_args.*"].cap
    assert len(merged.network.allow) == LIMITS["network.allow"].cap


def test_32_levels_are_allowed(tmp_path: Path) -> None:
    err = fails(write(tmp_path, "mounts:\n" + "- " * 31 + "x\n"))
    assert err.message.endswith("mounts[0]: expected a string or a mapping, got list")


def test_50000_values_are_allowed(tmp_path: Path) -> None:
    text = "mounts:\n" + "- a\n" * 49_997  # + the mapping, its key and the list
    raw = parse_config_text(text, path="x", scope="project")
    assert len(raw["mounts"]) == 49_997


def test_crlf_line_ends_read_as_before(tmp_path: Path) -> None:
    path = write(tmp_path, "tmux: false\r\nmounts:\r\n  - /a\r\n  - 5\r\n")
    assert fails(path).message == (f"{path}:4: mounts[1]: expected a string or a mapping, got int")
    path.write_bytes(b"tmux: false\r\npre_start: |\r\n  a\r\n  b\r\n")
    part = load(path)
    assert isinstance(part, FileConfig) and part.pre_start == "a\nb"
