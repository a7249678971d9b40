"""Pure parts of the harness volume (`engine.volumes`) and image tiers (`engine.images`)."""

from __future__ import annotations

import itertools
import json
import re
import shutil
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from aishell.constants import HARNESS_VOLUME_PREFIX, LABEL_KIND, LABEL_MANAGED
from aishell.engine import images, volumes
from aishell.engine.client import Result
from aishell.errors import ConfigError
from aishell.harnesses import BY_NAME, TOOL_NAMES
from aishell.hashing import selection_hash
from testing.fake_engine import Call, FakeEngine, ok, streamed

# ---------------------------------------------------------------- volume names

SELECTIONS = [
    {"claude": "latest"},
    {"claude": "2.0.22"},
    {"claude": "latest", "codex": "latest"},
    {"opencode": "1.0.0-beta.1", "gemini": "latest", "pi": "latest"},
    dict.fromkeys(TOOL_NAMES, "latest"),
]


@pytest.mark.parametrize("selection", SELECTIONS, ids=str)
def test_volume_name(selection: dict[str, str]) -> None:
    name = volumes.volume_name(selection)
    assert name == HARNESS_VOLUME_PREFIX + selection_hash(selection)
    assert re.fullmatch(r"aishell-harness-[0-9a-f]{12}", name)
    for perm in itertools.permutations(selection.items()):
        assert volumes.volume_name(dict(perm)) == name


def test_volume_names_differ_per_selection() -> None:
    names = {volumes.volume_name(s) for s in SELECTIONS}
    assert len(names) == len(SELECTIONS)


# --------------------------------------------------------------- package specs

KNOWN_PACKAGES = {
    "claude": "@anthropic-ai/claude-code",
    "opencode": "opencode-ai",
    "codex": "@openai/codex",
    "gemini": "@google/gemini-cli",
    "openspec": "@fission-ai/openspec",
}


@pytest.mark.parametrize("tool", TOOL_NAMES)
@pytest.mark.parametrize("pin", ["latest", "1.2.3", "1.0.0-beta.1+b"])
def test_package_spec_per_tool(tool: str, pin: str) -> None:
    assert volumes.package_specs({tool: pin}) == [f"{BY_NAME[tool].package}@{pin}"]


@pytest.mark.parametrize(("tool", "package"), sorted(KNOWN_PACKAGES.items()))
def test_package_names_are_the_registry_ones(tool: str, package: str) -> None:
    assert BY_NAME[tool].package == package


def test_pi_package_is_scoped_pi_coding_agent() -> None:
    assert re.fullmatch(r"@[a-z0-9-]+/pi-coding-agent", BY_NAME["pi"].package)


def test_package_specs_sorted_by_tool() -> None:
    sel = {"pi": "latest", "claude": "1.0.0", "codex": "latest"}
    assert volumes.package_specs(sel) == [
        "@anthropic-ai/claude-code@1.0.0",
        "@openai/codex@latest",
        f"{BY_NAME['pi'].package}@latest",
    ]


def test_package_specs_empty() -> None:
    assert volumes.package_specs({}) == []


# --------------------------------------------------------------- volume labels


@pytest.mark.parametrize(
    ("selection", "harnesses", "pins"),
    [
        ({"claude": "latest"}, "claude", "claude=latest"),
        (
            {"codex": "1.2.3", "claude": "latest"},
            "claude,codex",
            "claude=latest,codex=1.2.3",
        ),
        (
            {"pi": "latest", "openspec": "0.1.0", "gemini": "2.0.0-rc.1"},
            "gemini,openspec,pi",
            "gemini=2.0.0-rc.1,openspec=0.1.0,pi=latest",
        ),
    ],
)
def test_volume_labels(selection: dict[str, str], harnesses: str, pins: str) -> None:
    assert volumes.volume_labels(selection) == {
        LABEL_MANAGED: "1",
        LABEL_KIND: "harness",
        volumes.LABEL_HARNESS_HASH: selection_hash(selection),
        volumes.LABEL_HARNESSES: harnesses,
        volumes.LABEL_PINS: pins,
    }


def test_volume_label_hash_matches_volume_name() -> None:
    sel = {"claude": "latest", "codex": "1.2.3"}
    labels = volumes.volume_labels(sel)
    assert volumes.volume_name(sel) == HARNESS_VOLUME_PREFIX + labels[volumes.LABEL_HARNESS_HASH]


# -------------------------------------------------------- parse_volume_inspect


@pytest.mark.parametrize(
    ("stdout", "expected"),
    [
        ('[{"Name": "v", "CreatedAt": "t"}]', {"Name": "v", "CreatedAt": "t"}),
        ('[{"Name": "a"}, {"Name": "b"}]', {"Name": "a"}),
        ("[]", None),
        ("", None),
        ("null", None),
        ("Error: no such volume", None),
        ("[{", None),
    ],
)
def test_parse_volume_inspect(stdout: str, expected: dict[str, Any] | None) -> None:
    assert volumes.parse_volume_inspect(stdout) == expected


@pytest.mark.parametrize(
    ("item", "expected"),
    [(None, ""), ({}, ""), ({"CreatedAt": "t"}, "t"), ({"CreatedAt": 5}, "5")],
)
def test_created_at(item: dict[str, Any] | None, expected: str) -> None:
    assert volumes.created_at(item) == expected


# ---------------------------------------------------------------- FILL_SCRIPT


def test_fill_script_is_a_constant_without_placeholders() -> None:
    script = volumes.FILL_SCRIPT
    for tool in BY_NAME.values():
        assert tool.package not in script
    assert "%s" not in script and "{tool" not in script and "{spec}" not in script
    assert '"$@"' in script
    # the install line takes the specs from the positional arguments
    assert re.search(r"npm install[^\n]*\\\n[^\n]*\"\$@\"", script)
    assert "eval" not in script


def fill_engine(marker: dict[str, Any]) -> FakeEngine:
    """The engine calls `volumes.fill` makes: the hold and the volume are created (and
    then inspected), the fill run streams its status lines and the marker."""
    made: dict[str, dict[str, str]] = {}

    def create(call: Call) -> Result:
        args = list(call.args[2:])
        labels = dict(a.split("=", 1) for a in args[1:-1:2])
        made[args[-1]] = labels
        return ok(args[-1] + "\n")

    def inspect(call: Call) -> Result:
        found = [
            {"Name": n, "Labels": made[n], "CreatedAt": "t"} for n in call.args[2:] if n in made
        ]
        return Result(0 if len(found) == len(call.args[2:]) else 1, json.dumps(found), "")

    return FakeEngine(
        [
            (("volume", "create"), create),
            (("volume", "inspect"), inspect),
            (
                ("run",),
                streamed(
                    "AISHELL-STATUS installing",
                    "added 3 packages",
                    "AISHELL-STATUS installed",
                    "AISHELL-MARKER " + json.dumps(marker),
                ),
            ),
        ]
    )


@pytest.mark.parametrize(
    "selection",
    [
        {"claude": "latest"},
        {"claude": "1.2.3", "codex": "latest"},
        {"gemini": "latest", "openspec": "0.1.0", "pi": "latest"},
        # pins are validated earlier; even so, they stay single argv words
        {"claude": "$(touch /tmp/pwned)"},
        {"codex": "1; rm -rf /"},
    ],
    ids=str,
)
def test_fill_passes_specs_as_positional_args(
    selection: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    packages = {BY_NAME[t].package: "9.9.9" for t in selection}
    engine = fill_engine({"packages": packages, "filled_at": "2026-01-01T00:00:00Z"})
    volume = volumes.volume_name(selection)
    result = volumes.fill(
        engine,
        volume=volume,
        selection=selection,
        image="aishell:foundation",
    )

    kinds = [c[0] for c in engine.calls]
    assert kinds == ["capture", "checked", "checked", "stream", "capture"]
    hold = engine.calls[1][1]
    assert hold[:2] == ("volume", "create") and hold[-1].startswith(volumes.HOLD_PREFIX)
    create = engine.calls[2][1]
    assert create[:2] == ("volume", "create") and create[-1] == volume
    run = list(engine.calls[3][1])
    at = run.index("-c")
    assert run[at - 1] == "aishell:foundation"
    assert run[at + 1] is volumes.FILL_SCRIPT or run[at + 1] == volumes.FILL_SCRIPT
    assert run[at + 2] == "aishell-fill"  # $0
    assert run[at + 3 :] == volumes.package_specs(selection)
    for spec in volumes.package_specs(selection):
        assert not any(spec in arg for arg in run[: at + 2])
    assert "--entrypoint" in run and run[run.index("--entrypoint") + 1] == "/bin/sh"
    assert f"type=volume,source={volume},target=/tools" in run
    assert result.installed is True
    assert result.versions == dict.fromkeys(selection, "9.9.9")
    assert result.filled_at == "2026-01-01T00:00:00Z"
    capsys.readouterr()


@pytest.mark.parametrize(
    ("refill", "flag"), [(False, "AISHELL_REFILL=0"), (True, "AISHELL_REFILL=1")]
)
def test_fill_refill_flag(refill: bool, flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    sel = {"claude": "latest"}
    engine = fill_engine({"packages": {"@anthropic-ai/claude-code": "1.0.0"}})
    volumes.fill(engine, volume="v", selection=sel, image="img", refill=refill)
    [run] = engine.argvs("stream")
    assert flag in run
    capsys.readouterr()


# ==================================================================== images


SHIPPED_TEMPLATES = resources.files("aishell") / "templates"


@pytest.fixture
def templates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the shipped templates that foundation_context reads instead.

    foundation_context finds the templates either through importlib.resources
    or relative to images.py; both are redirected to the copy.
    """
    pkg = tmp_path / "pkg"
    target = pkg / "templates"
    target.mkdir(parents=True)
    for name in images.TEMPLATE_FILES:
        (target / name).write_bytes((SHIPPED_TEMPLATES / name).read_bytes())
    (pkg / "engine").mkdir()
    monkeypatch.setattr(images, "resources", SimpleNamespace(files=lambda _pkg: pkg), raising=False)
    monkeypatch.setattr(images, "__file__", str(pkg / "engine" / "images.py"))
    return target


PEM = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def cert(tmp_path: Path, name: str, content: bytes = PEM) -> str:
    path = tmp_path / name
    path.write_bytes(content)
    return str(path)


def test_foundation_context_contents() -> None:
    ctx = images.foundation_context(base_image=None, with_gitleaks=False)
    assert set(ctx.files) == {*images.TEMPLATE_FILES, "certs/README"}
    assert ctx.build_args == {
        "BASE_IMAGE": images.DEFAULT_BASE_IMAGE,
        "NODE_VERSION": images.NODE_VERSION,
        "NPM_VERSION": images.NPM_VERSION,
        "WITH_GITLEAKS": "false",
    }
    assert re.fullmatch(r"[0-9a-f]{12}", ctx.hash)


def test_foundation_hash_stable() -> None:
    a = images.foundation_context(base_image=None, with_gitleaks=False)
    b = images.foundation_context(base_image=None, with_gitleaks=False)
    assert a.hash == b.hash
    # the default base image spelled out is the same input
    c = images.foundation_context(base_image=images.DEFAULT_BASE_IMAGE, with_gitleaks=False)
    assert c.hash == a.hash


def test_foundation_context_reads_the_shipped_templates() -> None:
    ctx = images.foundation_context(base_image=None, with_gitleaks=False)
    for name in images.TEMPLATE_FILES:
        assert ctx.files[name] == (SHIPPED_TEMPLATES / name).read_bytes()


def test_foundation_hash_stable_with_copied_templates(templates: Path) -> None:
    copied = images.foundation_context(base_image=None, with_gitleaks=False)
    for name in images.TEMPLATE_FILES:
        assert copied.files[name] == (SHIPPED_TEMPLATES / name).read_bytes()
    (templates / "bashrc").write_bytes((templates / "bashrc").read_bytes() + b"#\n")
    assert images.foundation_context(base_image=None, with_gitleaks=False).hash != copied.hash
    (templates / "bashrc").write_bytes((SHIPPED_TEMPLATES / "bashrc").read_bytes())
    assert images.foundation_context(base_image=None, with_gitleaks=False).hash == copied.hash


@pytest.mark.parametrize("name", images.TEMPLATE_FILES)
@pytest.mark.parametrize("change", ["append", "whitespace", "empty"])
def test_foundation_hash_changes_with_any_template(templates: Path, name: str, change: str) -> None:
    before = images.foundation_context(base_image=None, with_gitleaks=False).hash
    path = templates / name
    data = path.read_bytes()
    path.write_bytes({"append": data + b"# x\n", "whitespace": data + b" ", "empty": b""}[change])
    after = images.foundation_context(base_image=None, with_gitleaks=False).hash
    assert after != before


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ({"base_image": None, "with_gitleaks": False}, {"base_image": None, "with_gitleaks": True}),
        (
            {"base_image": None, "with_gitleaks": False},
            {"base_image": "mirror.corp/debian:trixie-slim", "with_gitleaks": False},
        ),
        (
            {"base_image": "debian:trixie-slim", "with_gitleaks": False},
            {"base_image": "debian:trixie", "with_gitleaks": False},
        ),
    ],
)
def test_foundation_hash_changes_with_build_args(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert images.foundation_context(**a).hash != images.foundation_context(**b).hash


def test_foundation_gitleaks_build_arg() -> None:
    ctx = images.foundation_context(base_image=None, with_gitleaks=True)
    assert ctx.build_args["WITH_GITLEAKS"] == "true"


def test_foundation_hash_changes_with_ca_certificates(tmp_path: Path) -> None:
    none = images.foundation_context(base_image=None, with_gitleaks=False).hash
    one_path = cert(tmp_path, "a.pem")
    one = images.foundation_context(
        base_image=None, with_gitleaks=False, ca_certificates=[one_path]
    )
    assert one.hash != none
    assert one.files["certs/aishell-00.crt"] == PEM
    # same certificate again: same hash (stable)
    again = images.foundation_context(
        base_image=None, with_gitleaks=False, ca_certificates=[one_path]
    )
    assert again.hash == one.hash
    # content change
    Path(one_path).write_bytes(PEM.replace(b"MIIB", b"MIIC"))
    changed = images.foundation_context(
        base_image=None, with_gitleaks=False, ca_certificates=[one_path]
    )
    assert changed.hash != one.hash
    # a second certificate
    two = images.foundation_context(
        base_image=None,
        with_gitleaks=False,
        ca_certificates=[one_path, cert(tmp_path, "b.pem", PEM + PEM)],
    )
    assert two.hash not in {none, one.hash, changed.hash}
    assert set(two.files) >= {"certs/aishell-00.crt", "certs/aishell-01.crt"}


def test_ca_certificate_gets_a_trailing_newline(tmp_path: Path) -> None:
    path = cert(tmp_path, "a.pem", PEM.rstrip(b"\n"))
    ctx = images.foundation_context(base_image=None, with_gitleaks=False, ca_certificates=[path])
    assert ctx.files["certs/aishell-00.crt"] == PEM


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"hello\n",
        b"-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n",
        b"0\x82\x03\x1e0\x82\x02\x06",  # DER
        b"-----BEGIN CERTIFICATE REQUEST-----\n",
    ],
)
def test_non_pem_ca_certificate_is_a_config_error(tmp_path: Path, content: bytes) -> None:
    path = cert(tmp_path, "bad.crt", content)
    with pytest.raises(ConfigError) as info:
        images.foundation_context(base_image=None, with_gitleaks=False, ca_certificates=[path])
    assert path in info.value.message
    assert "PEM" in info.value.message
    assert info.value.hint


def test_missing_ca_certificate_is_a_config_error(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.pem")
    with pytest.raises(ConfigError, match="cannot read"):
        images.foundation_context(base_image=None, with_gitleaks=False, ca_certificates=[missing])


def test_build_context_write(tmp_path: Path) -> None:
    ctx = images.foundation_context(base_image=None, with_gitleaks=False)
    ctx.write(tmp_path / "out")
    for name, content in ctx.files.items():
        assert (tmp_path / "out" / name).read_bytes() == content


# -------------------------------------------------------- parse_image_inspect

FOUNDATION = {"Id": "sha256:f00", "RepoTags": ["aishell:foundation"]}
BASE = {"Id": "sha256:ba5e", "RepoTags": ["aishell:base", "aishell:foundation-old"]}
PODMAN = {"Id": "sha256:90d", "RepoTags": ["localhost/aishell:foundation"]}
LATEST = {"Id": "sha256:1a7", "RepoTags": ["myimage:latest"]}
PODMAN_LATEST = {"Id": "sha256:1a8", "RepoTags": ["localhost/myimage:latest"]}
REGISTRY_TAG = "registry.local:5000/team/img:1"
REGISTRY = {"Id": "sha256:9e9", "RepoTags": [REGISTRY_TAG]}
UNTAGGED = {"Id": "sha256:0", "RepoTags": None}


@pytest.mark.parametrize(
    ("items", "wanted", "expected"),
    [
        ([FOUNDATION], ["aishell:foundation"], {"aishell:foundation": FOUNDATION}),
        (
            [FOUNDATION, BASE],
            ["aishell:foundation", "aishell:base", "aishell:ext-0"],
            {"aishell:foundation": FOUNDATION, "aishell:base": BASE},
        ),
        ([PODMAN], ["aishell:foundation"], {"aishell:foundation": PODMAN}),
        ([PODMAN], ["localhost/aishell:foundation"], {"localhost/aishell:foundation": PODMAN}),
        ([LATEST], ["myimage"], {"myimage": LATEST}),
        ([LATEST], ["myimage:latest"], {"myimage:latest": LATEST}),
        ([PODMAN_LATEST], ["myimage"], {"myimage": PODMAN_LATEST}),
        ([LATEST], ["myimage:1"], {}),
        ([REGISTRY], [REGISTRY_TAG], {REGISTRY_TAG: REGISTRY}),
        ([REGISTRY], ["registry.local:5000/team/img"], {}),
        ([UNTAGGED], ["sha256:0"], {"sha256:0": UNTAGGED}),
        ([UNTAGGED], ["aishell:foundation"], {}),
        ([BASE], ["aishell:foundation"], {}),  # a tag prefix is not a match
        ([], ["aishell:foundation"], {}),
    ],
)
def test_parse_image_inspect(
    items: list[dict[str, Any]], wanted: list[str], expected: dict[str, Any]
) -> None:
    assert images.parse_image_inspect(json.dumps(items), wanted) == expected


@pytest.mark.parametrize("stdout", ["", "   \n", "not json", "[{", "Error: No such image"])
def test_parse_image_inspect_garbage(stdout: str) -> None:
    assert images.parse_image_inspect(stdout, ["aishell:foundation"]) == {}


@pytest.mark.parametrize(
    ("item", "labels", "image_id"),
    [
        (None, {}, ""),
        ({}, {}, ""),
        ({"Id": "x"}, {}, "x"),
        ({"Id": "x", "Config": None}, {}, "x"),
        ({"Id": "x", "Config": {"Labels": None}}, {}, "x"),
        ({"Id": "x", "Config": {"Labels": {"a": "b"}}}, {"a": "b"}, "x"),
    ],
)
def test_labels_and_id(item: dict[str, Any] | None, labels: dict[str, str], image_id: str) -> None:
    assert images.labels_of(item) == labels
    assert images.image_id(item) == image_id


@pytest.mark.parametrize(
    ("label", "current"),
    [(None, False), ("wrong", False), ("HASH", True)],
)
def test_foundation_is_current(label: str | None, current: bool) -> None:
    ctx = images.foundation_context(base_image=None, with_gitleaks=False)
    labels = {}
    if label is not None:
        labels[images.LABEL_FOUNDATION_HASH] = ctx.hash if label == "HASH" else label
    item = {"Id": "x", "Config": {"Labels": labels}}
    assert images.foundation_is_current(item, ctx) is current
    assert images.foundation_is_current(None, ctx) is False


# ---------------------------------------------------------------------- tiers


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def tier(directory: Path) -> images.Tier:
    return images.Tier(
        role="base",
        kind="base",
        directory=directory,
        dockerfile=directory / "Dockerfile",
        title="t",
    )


def image_with(tier_hash: str | None, parent: str | None) -> dict[str, Any]:
    labels = {}
    if tier_hash is not None:
        labels[images.LABEL_TIER_HASH] = tier_hash
    if parent is not None:
        labels[images.LABEL_TIER_PARENT] = parent
    return {"Id": "sha256:me", "Config": {"Labels": labels}}


@pytest.mark.parametrize(
    ("item", "current"),
    [
        pytest.param(None, False, id="missing"),
        pytest.param({}, False, id="empty-inspect"),
        pytest.param(image_with(None, None), False, id="no-labels"),
        pytest.param(image_with("other", "sha256:parent"), False, id="hash-mismatch"),
        pytest.param(image_with("HASH", "sha256:old-parent"), False, id="parent-mismatch"),
        pytest.param(image_with("other", "sha256:old-parent"), False, id="both-mismatch"),
        pytest.param(image_with("HASH", None), False, id="parent-label-missing"),
        pytest.param(image_with(None, "sha256:parent"), False, id="hash-label-missing"),
        pytest.param(image_with("HASH", "sha256:parent"), True, id="current"),
    ],
)
def test_tier_is_current(tmp_path: Path, item: dict[str, Any] | None, current: bool) -> None:
    t = tier(tmp_path)
    ctx_hash = "0123456789ab"
    if item:
        labels = item["Config"]["Labels"]
        if labels.get(images.LABEL_TIER_HASH) == "HASH":
            labels[images.LABEL_TIER_HASH] = ctx_hash
    assert t.is_current(item, "sha256:parent", ctx_hash) is current


def test_tier_context_excludes_config_and_state(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM aishell:foundation\n")
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "tool.sh").write_text("echo\n")
    t = tier(tmp_path)
    before = t.context()
    assert set(before.files) == {"Dockerfile", "files/tool.sh"}
    (tmp_path / "config.yaml").write_text("mounts: []\n")
    (tmp_path / "state.json").write_text("{}")
    after = t.context()
    assert set(after.files) == {"Dockerfile", "files/tool.sh"}
    assert after.hash == before.hash
    (tmp_path / "config.yaml").write_text("mounts: [/x]\n")
    assert t.context().hash == before.hash


@pytest.mark.parametrize(
    "change",
    [
        lambda d: (d / "Dockerfile").write_text("FROM aishell:foundation\nRUN true\n"),
        lambda d: (d / "files" / "tool.sh").write_text("echo changed\n"),
        lambda d: (d / "files" / "new.txt").write_text(""),
        lambda d: (d / "files" / "tool.sh").rename(d / "files" / "renamed.sh"),
        lambda d: (d / "files" / "tool.sh").unlink(),
        lambda d: _write(d / "sub" / "config.yaml", "x"),
    ],
    ids=["dockerfile", "content", "added", "renamed", "removed", "nested-config-yaml-counts"],
)
def test_tier_context_hash_follows_build_files(
    tmp_path: Path, change: Callable[[Path], Any]
) -> None:
    (tmp_path / "Dockerfile").write_text("FROM aishell:foundation\n")
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "tool.sh").write_text("echo\n")
    before = tier(tmp_path).context().hash
    change(tmp_path)
    assert tier(tmp_path).context().hash != before


@pytest.mark.parametrize("exclude", [(), ("a",), ("a", "d/b")])
def test_directory_context_exclude(tmp_path: Path, exclude: tuple[str, ...]) -> None:
    (tmp_path / "a").write_text("1")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "b").write_text("2")
    (tmp_path / "d" / "a").write_text("3")  # only the top-level "a" matches "a"
    ctx = images.directory_context(tmp_path, exclude=exclude)
    assert set(ctx.files) == {"a", "d/b", "d/a"} - set(exclude)
    assert ctx.build_args == {}


def test_directory_context_of_copy_has_same_hash(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "x").mkdir(parents=True)
    (src / "Dockerfile").write_text("FROM a\n")
    (src / "x" / "y").write_bytes(b"\x00\x01")
    shutil.copytree(src, tmp_path / "dst")
    assert images.directory_context(src).hash == images.directory_context(tmp_path / "dst").hash


@pytest.mark.parametrize("bookkeeping", [".state.lock", ".state.abc123.tmp"])
def test_global_home_bookkeeping_files_do_not_change_the_base_tier(
    tmp_path: Path, bookkeeping: str
) -> None:
    (tmp_path / "Dockerfile").write_text("FROM aishell:foundation\nRUN apt-get install -y jq\n")
    (tmp_path / "config.yaml").write_text("mounts: []\n")
    (tmp_path / "state.json").write_text("{}")
    before = tier(tmp_path).context().hash
    (tmp_path / bookkeeping).write_text("")
    assert tier(tmp_path).context().hash == before
