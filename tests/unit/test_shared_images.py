"""Images shared by content (engine.images: holds, reuse, FROM substitution, build
hygiene) and `aishell images` (the prune selection, the JSON shapes), without an engine."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from aishell import paths, state
from aishell.commands import images as images_cmd
from aishell.engine import images
from aishell.errors import AishellError, EngineError
from aishell.hashing import short_hash

# ------------------------------------------------------------- FROM substitution

NAMES = {"aishell:base": "sha256:bbb", "aishell:foundation": "sha256:fff"}


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("FROM aishell:base\n", "FROM sha256:bbb\n"),
        ("FROM aishell:foundation\n", "FROM sha256:fff\n"),
        ("from aishell:base\n", "from sha256:bbb\n"),
        ("From aishell:base\n", "From sha256:bbb\n"),
        ("FROM --platform=linux/amd64 aishell:base\n", "FROM --platform=linux/amd64 sha256:bbb\n"),
        ("FROM aishell:base AS build\n", "FROM sha256:bbb AS build\n"),
        ("FROM aishell:base as build\n", "FROM sha256:bbb as build\n"),
        ("  FROM\taishell:base  AS x\n", "  FROM\tsha256:bbb  AS x\n"),
        ("FROM localhost/aishell:base\n", "FROM sha256:bbb\n"),
        ("FROM aishell:base\r\n", "FROM sha256:bbb\r\n"),
        ("FROM aishell:base", "FROM sha256:bbb"),  # no newline at the end
        ("FROM debian:trixie-slim\n", "FROM debian:trixie-slim\n"),
        ("FROM aishell:ext-0123456789ab\n", "FROM aishell:ext-0123456789ab\n"),
        ("FROM myaishell:base\n", "FROM myaishell:base\n"),
        ("FROM aishell:basement\n", "FROM aishell:basement\n"),
        ("# FROM aishell:base\n", "# FROM aishell:base\n"),
        ("RUN echo FROM aishell:base\n", "RUN echo FROM aishell:base\n"),
        ("COPY --from=aishell:foundation /etc/x /x\n", "COPY --from=sha256:fff /etc/x /x\n"),
        ("COPY --chown=1 --from=aishell:base /a /b\n", "COPY --chown=1 --from=sha256:bbb /a /b\n"),
        ("COPY --from=build /a /b\n", "COPY --from=build /a /b\n"),
        ("RUN --from=aishell:base true\n", "RUN --from=aishell:base true\n"),
    ],
)
def test_substitute_parents_line(line: str, expected: str) -> None:
    assert images.substitute_parents(line, NAMES) == expected


def test_substitute_parents_multi_stage() -> None:
    text = (
        "# syntax hints and comments stay: FROM aishell:base\n"
        "FROM golang:1.22 AS build\n"
        "RUN go build -o /app .\n"
        "\n"
        "FROM aishell:base\n"
        "COPY --from=build /app /usr/local/bin/app\n"
        "FROM aishell:base AS final\n"
    )
    assert images.substitute_parents(text, NAMES) == (
        "# syntax hints and comments stay: FROM aishell:base\n"
        "FROM golang:1.22 AS build\n"
        "RUN go build -o /app .\n"
        "\n"
        "FROM sha256:bbb\n"
        "COPY --from=build /app /usr/local/bin/app\n"
        "FROM sha256:bbb AS final\n"
    )


def test_substitute_parents_without_names_changes_nothing() -> None:
    text = "FROM aishell:base\nRUN true\n"
    assert images.substitute_parents(text, {}) == text


def test_parent_names() -> None:
    assert images.parent_names("F", "B") == {"aishell:foundation": "F", "aishell:base": "B"}


# ------------------------------------------------------------------ home and holds


def test_home_id_is_uid_and_real_path(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    env = {"AISHELL_HOME": str(real)}
    home = paths.home_id(env, uid=1000)
    assert re.fullmatch(r"[0-9a-f]{12}", home)
    assert home == short_hash(f"1000:{os.path.realpath(real)}", 12)
    assert paths.home_id({"AISHELL_HOME": str(tmp_path / "link")}, uid=1000) == home
    assert paths.home_id(env, uid=1001) != home  # another user, same directory
    assert paths.home_id({"AISHELL_HOME": str(tmp_path / "other")}, uid=1000) != home
    assert paths.home_id(env) == paths.home_id(env, uid=os.getuid())


def test_home_id_default_home(tmp_path: Path) -> None:
    default = paths.home_id({"HOME": str(tmp_path)}, uid=0)
    assert default == paths.home_id({"AISHELL_HOME": str(tmp_path / ".aishell")}, uid=0)


def test_hold_tags() -> None:
    holds = images.Holds("0123456789ab")
    assert holds.repo == "aishell-home-0123456789ab"
    assert holds.foundation == "aishell-home-0123456789ab:foundation"
    assert holds.base == "aishell-home-0123456789ab:base"
    assert holds.proxy == "aishell-home-0123456789ab:proxy"
    assert holds.tag("ext-abcdefabcdef") == "aishell-home-0123456789ab:ext-abcdefabcdef"


@pytest.mark.parametrize(
    ("tag", "parsed"),
    [
        ("aishell-home-0123456789ab:foundation", ("0123456789ab", "foundation")),
        ("localhost/aishell-home-0123456789ab:ext-abc", ("0123456789ab", "ext-abc")),
        ("aishell-home-0123456789ab:proxy", ("0123456789ab", "proxy")),
        ("aishell:foundation", None),
        ("aishell-home-short:foundation", None),
        ("aishell-home-0123456789ab", None),  # no tag: :latest is not a role we make
        ("evil/aishell-home-0123456789ab:base", None),
    ],
)
def test_parse_hold(tag: str, parsed: tuple[str, str] | None) -> None:
    result = images.parse_hold(tag)
    if tag == "aishell-home-0123456789ab":
        assert result == ("0123456789ab", "latest")  # as the engine would name it
    else:
        assert result == parsed


@pytest.mark.parametrize(
    ("tags", "ours"),
    [
        (None, []),
        ([], []),
        (["<none>:<none>"], []),
        (["myimage:1"], []),
        (["aishell:foundation"], ["aishell:foundation"]),
        (["localhost/aishell:base"], ["aishell:base"]),
        (["aishell-home-0123456789ab:base", "me:x"], ["aishell-home-0123456789ab:base"]),
    ],
)
def test_aishell_tags(tags: list[str] | None, ours: list[str]) -> None:
    assert images.aishell_tags({"RepoTags": tags}) == ours


def test_real_tags_drop_placeholders() -> None:
    assert images.real_tags({"RepoTags": ["<none>:<none>", "localhost/x:1"]}) == ["x:1"]


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [("sha256:ab", "ab", True), ("ab", "sha256:ab", True), ("ab", "ac", False), ("", "", False)],
)
def test_same_id(a: str, b: str, same: bool) -> None:
    assert images.same_id(a, b) is same


def test_parse_image_inspect_by_podman_id() -> None:
    item = {"Id": "90d", "RepoTags": []}
    assert images.parse_image_inspect(json.dumps([item]), ["sha256:90d"]) == {"sha256:90d": item}


# ---------------------------------------------------------------- a fake engine


class Fake:
    """An engine that answers from a table of images; records every call."""

    kind = "docker"
    name = "docker"
    binary = "/usr/bin/docker"

    def __init__(self, items: Sequence[dict[str, Any]] = (), build: list[str] | None = None):
        self.items = [dict(i) for i in items]
        self.calls: list[tuple[str, ...]] = []
        self.build_output = build or ["Step 1/2 : FROM x", " ---> 1111aaaa2222", "Successfully"]
        self.build_status = 0
        self.built_labels: dict[str, str] = {}

    def _find(self, ref: str) -> dict[str, Any] | None:
        for item in self.items:
            tags = [images._normalise_tag(t) for t in item.get("RepoTags") or []]
            if images._normalise_tag(ref) in tags or images.same_id(item["Id"], ref):
                return item
        return None

    def capture(self, *args: str, **_kw: object) -> Any:
        self.calls.append(args)
        ok = SimpleNamespace(ok=True, returncode=0, stderr="")
        if args[:2] == ("image", "inspect"):
            refs = [a for a in args[2:] if not a.startswith("--") and "{{" not in a]
            found = [i for r in refs if (i := self._find(r))]
            if "--format" in args:
                return SimpleNamespace(
                    ok=len(found) == len(refs),
                    returncode=0,
                    stderr="",
                    stdout="\n".join(i["Id"] for i in found),
                )
            return SimpleNamespace(
                ok=len(found) == len(refs), returncode=0, stderr="", stdout=json.dumps(found)
            )
        if args[:2] == ("image", "ls"):
            key, _, value = args[args.index("--filter") + 1].removeprefix("label=").partition("=")
            ids = [i["Id"] for i in self.items if images.labels_of(i).get(key) == value]
            return SimpleNamespace(ok=True, returncode=0, stderr="", stdout="\n".join(ids))
        if args[0] == "tag":
            item = self._find(args[1])
            if item is None:
                return SimpleNamespace(ok=False, returncode=1, stderr="No such image", stdout="")
            for other in self.items:
                other["RepoTags"] = [t for t in other.get("RepoTags") or [] if t != args[2]]
            item.setdefault("RepoTags", []).append(args[2])
            ok.stdout = ""
            return ok
        if args[0] == "rmi":
            ok.stdout = ""
            return ok
        raise AssertionError(f"unexpected call {args}")

    def checked(self, *args: str, what: str, **_kw: object) -> Any:
        return self.capture(*args)

    def stream(self, args: Sequence[str], on_line: Callable[[str], None], **_kw: object) -> int:
        self.calls.append(tuple(args))
        for line in self.build_output:
            on_line(line)
        if self.build_status == 0:
            tag = args[args.index("-t") + 1]
            labels = dict(
                a.split("=", 1)
                for a, flag in zip(args[1:], args, strict=False)
                if flag == "--label"
            )
            for other in self.items:
                other["RepoTags"] = [t for t in other.get("RepoTags") or [] if t != tag]
            self.items.append(
                {
                    "Id": f"sha256:built{len(self.items)}",
                    "RepoTags": [tag],
                    "Created": "2026-12-31T00:00:00Z",
                    "Config": {"Labels": labels},
                }
            )
        return self.build_status

    def verbs(self, verb: str) -> list[tuple[str, ...]]:
        return [c for c in self.calls if c[0] == verb or c[:2] == tuple(verb.split())]


HOLDS = images.Holds("0123456789ab")
OTHER = images.Holds("ba9876543210")


def foundation_item(ident: str, content: str, *tags: str, created: str = "2026-01-01") -> Any:
    return {
        "Id": ident,
        "RepoTags": list(tags),
        "Created": created,
        "Config": {"Labels": images.foundation_labels(content) | {"aishell.managed": "1"}},
    }


@pytest.fixture
def context() -> images.BuildContext:
    return images.foundation_context(base_image=None, with_gitleaks=False)


# ------------------------------------------------------------- foundation reuse


def test_held_current_foundation_is_used_as_is(
    context: images.BuildContext, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = Fake([foundation_item("sha256:f1", context.hash, HOLDS.foundation)])
    got = images.ensure_foundation(engine, context, holds=HOLDS)  # type: ignore[arg-type]
    assert got["Id"] == "sha256:f1"
    assert not engine.verbs("build") and not engine.verbs("tag")
    assert "up to date" in capsys.readouterr().err


def test_another_homes_foundation_with_the_same_inputs_is_held_not_rebuilt(
    context: images.BuildContext, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = Fake(
        [
            foundation_item("sha256:old", context.hash, OTHER.foundation, created="2026-01-01"),
            foundation_item("sha256:new", context.hash, "aishell:foundation", created="2026-02-01"),
            foundation_item("sha256:gl", "otherhash", OTHER.base),
        ]
    )
    got = images.ensure_foundation(engine, context, holds=HOLDS)  # type: ignore[arg-type]
    assert got["Id"] == "sha256:new"  # the newest of those with the labels
    assert engine.verbs("tag") == [("tag", "sha256:new", HOLDS.foundation)]
    assert not engine.verbs("build")
    assert OTHER.foundation in engine._find("sha256:old")["RepoTags"]  # type: ignore[index]
    assert "Using the existing foundation image" in capsys.readouterr().err


@pytest.mark.parametrize(
    "candidate",
    [
        pytest.param(foundation_item("sha256:c", "H"), id="untagged-intermediate"),
        pytest.param(foundation_item("sha256:c", "H", "mine:latest"), id="users-own-image"),
        pytest.param(
            {"Id": "sha256:c", "RepoTags": [OTHER.foundation], "Config": {"Labels": {}}},
            id="no-labels",
        ),
    ],
)
def test_only_images_aishell_tagged_with_all_labels_are_reused(
    candidate: dict[str, Any], context: images.BuildContext, capsys: pytest.CaptureFixture[str]
) -> None:
    if candidate["Config"]["Labels"]:
        candidate["Config"]["Labels"] = images.foundation_labels(context.hash)
    engine = Fake([candidate])
    images.ensure_foundation(engine, context, holds=HOLDS)  # type: ignore[arg-type]
    [build] = engine.verbs("build")
    assert build[build.index("-t") + 1] == HOLDS.foundation
    capsys.readouterr()


def test_a_foundation_with_other_inputs_is_rebuilt_under_this_homes_hold(
    context: images.BuildContext, capsys: pytest.CaptureFixture[str]
) -> None:
    theirs = foundation_item("sha256:gl", "gitleaks-hash", OTHER.foundation, "aishell:foundation")
    engine = Fake([theirs, foundation_item("sha256:mine-old", "stale", HOLDS.foundation)])
    got = images.ensure_foundation(engine, context, holds=HOLDS)  # type: ignore[arg-type]
    [build] = engine.verbs("build")
    assert build[build.index("-t") + 1] == HOLDS.foundation
    assert {"--rm", "--force-rm"} <= set(build)
    assert got["RepoTags"] == [HOLDS.foundation]
    # nobody else's tag moved
    assert engine._find("sha256:gl")["RepoTags"] == [OTHER.foundation, "aishell:foundation"]  # type: ignore[index]
    capsys.readouterr()


def test_force_always_builds(
    context: images.BuildContext, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = Fake([foundation_item("sha256:f1", context.hash, HOLDS.foundation)])
    images.ensure_foundation(engine, context, holds=HOLDS, force=True)  # type: ignore[arg-type]
    [build] = engine.verbs("build")
    assert "--no-cache" in build
    capsys.readouterr()


def test_locate_foundation_order() -> None:
    engine = Fake(
        [
            foundation_item("sha256:saved", "old", OTHER.foundation),
            foundation_item("sha256:byhash", "old", "aishell:foundation", created="2027"),
        ]
    )
    # nothing with the current inputs: the recorded ID wins, then the recorded hash
    found = images.locate_foundation(
        engine,  # type: ignore[arg-type]
        expected_hash="now",
        saved_hash="old",
        saved_id="sha256:saved",
    )
    assert found is not None and found["Id"] == "sha256:saved"
    found = images.locate_foundation(engine, expected_hash="now", saved_hash="old")  # type: ignore[arg-type]
    assert found is not None and found["Id"] == "sha256:byhash"
    assert images.locate_foundation(engine, expected_hash="now") is None  # type: ignore[arg-type]


def test_launch_adopts_the_foundation_of_a_home_set_up_by_older_aishell(
    context: images.BuildContext,
) -> None:
    from aishell.launch.materialise import adopt_foundation

    state.save(state.State(foundation_hash=context.hash))  # old state: no foundation_id
    engine = Fake([foundation_item("sha256:legacy", context.hash, "aishell:foundation")])
    got = adopt_foundation(engine, HOLDS, context.hash, state.load() or state.State())  # type: ignore[arg-type]
    assert got["Id"] == "sha256:legacy"
    assert engine.verbs("tag") == [("tag", "sha256:legacy", HOLDS.foundation)]
    saved = state.load()
    assert saved is not None and saved.foundation_id == "sha256:legacy"
    assert "aishell:foundation" in engine._find("sha256:legacy")["RepoTags"]  # type: ignore[index]


def test_launch_without_any_foundation_says_run_setup(context: images.BuildContext) -> None:
    from aishell.launch.materialise import adopt_foundation

    with pytest.raises(AishellError, match=HOLDS.foundation) as info:
        adopt_foundation(Fake(), HOLDS, context.hash, state.State())  # type: ignore[arg-type]
    assert "run 'aishell setup'" in (info.value.hint or "")


# ---------------------------------------------------------------------- tiers


def test_tier_reuses_an_image_with_the_same_content_and_parent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "Dockerfile").write_text("FROM aishell:base\nRUN true\n")
    tier = images.extension_tier("ext-abc", "/p", tmp_path / "Dockerfile")
    ctx = tier.context().hash
    labels = tier.identity(ctx, "sha256:base") | {"aishell.managed": "1"}
    other = {"Id": "sha256:e", "RepoTags": [OTHER.tag("ext-xyz")], "Config": {"Labels": labels}}
    engine = Fake([other])
    got = tier.ensure(
        engine,  # type: ignore[arg-type]
        holds=HOLDS,
        item=None,
        parent_id="sha256:base",
        parents=images.parent_names("sha256:f", "sha256:base"),
    )
    assert got is not None and got["Id"] == "sha256:e"
    assert engine.verbs("tag") == [("tag", "sha256:e", HOLDS.tag("ext-abc"))]
    assert not engine.verbs("build")
    capsys.readouterr()


def test_tier_build_rewrites_from_lines_into_a_temporary_dockerfile(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "Dockerfile").write_text("FROM aishell:base AS x\nCOPY f /f\n")
    tier = images.extension_tier("ext-abc", "/p", tmp_path / "Dockerfile")
    engine = Fake()
    seen: dict[str, str] = {}
    real_stream = engine.stream

    def stream(args: Sequence[str], on_line: Callable[[str], None], **kw: object) -> int:
        seen["dockerfile"] = Path(args[args.index("-f") + 1]).read_text()
        seen["path"] = args[args.index("-f") + 1]
        seen["context"] = args[-1]
        return real_stream(args, on_line, **kw)

    monkeypatch.setattr(engine, "stream", stream)
    got = tier.ensure(
        engine,  # type: ignore[arg-type]
        holds=HOLDS,
        item=None,
        parent_id="sha256:b",
        parents=images.parent_names("sha256:f", "sha256:b"),
    )
    assert seen["dockerfile"] == "FROM sha256:b AS x\nCOPY f /f\n"
    assert seen["context"] == str(tmp_path)  # the build context stays the user's directory
    assert not os.path.exists(seen["path"])  # the rewritten copy is gone
    assert (tmp_path / "Dockerfile").read_text() == "FROM aishell:base AS x\nCOPY f /f\n"
    assert got is not None and got["RepoTags"] == [HOLDS.tag("ext-abc")]
    labels = images.labels_of(got)
    assert labels[images.LABEL_TIER_PARENT] == "sha256:b"
    assert labels[images.LABEL_KIND] == "extension"
    capsys.readouterr()


def test_base_without_a_global_dockerfile_is_the_foundation(tmp_path: Path) -> None:
    foundation = foundation_item("sha256:f", "h", HOLDS.foundation)
    engine = Fake([foundation])
    got = images.ensure_base(
        engine,  # type: ignore[arg-type]
        holds=HOLDS,
        dockerfile=tmp_path / "Dockerfile",
        foundation=foundation,
        base_item=None,
    )
    assert got is foundation
    assert engine.verbs("tag") == [("tag", "sha256:f", HOLDS.base)]


# -------------------------------------------------------------- build hygiene

DOCKER_BUILD = [
    "Sending build context to Docker daemon  2.048kB",
    "Step 1/5 : FROM sha256:c1c7fc2a72b0",
    " ---> c1c7fc2a72b0",
    "Step 2/5 : LABEL x=1",
    " ---> Using cache",
    " ---> 6170bbb10863",
    "Step 3/5 : RUN echo hi > /x",
    " ---> Running in 37eb04d0f0c0",
    "Removing intermediate container 37eb04d0f0c0",
    " ---> 5f2f7472609b",
    "Step 4/5 : ENV A=1",
    " ---> Running in 0e1d",
    " ---> 7a7a7a7a7a7a",
    "Step 5/5 : RUN false",
    " ---> Running in d04702178f4c",
]
PODMAN_BUILD = [
    "STEP 1/4: FROM sha256:d8639eb5c87ef78018c6a97746e1e6e2c138febf38c8bf59179daba39153b2b8",
    "STEP 2/4: LABEL x.exp=1",
    "--> Using cache bb3d8c014fe48d3ef5af48fa10ba29265a5f60d2865c4acdd6f239fca3697d66",
    "--> bb3d8c014fe",
    "STEP 3/4: RUN echo hi > /x",
    "--> b3f15960b9b",
    "STEP 4/4: RUN echo more > /y",
    "COMMIT exp:a",
    "--> 4632f055001",
]


@pytest.mark.parametrize(
    ("lines", "created"),
    [
        (DOCKER_BUILD, ["5f2f7472609b", "7a7a7a7a7a7a"]),
        (PODMAN_BUILD, ["b3f15960b9b", "4632f055001"]),
        (["#5 [3/12] RUN x", "#8 writing image sha256:abc done"], []),  # BuildKit
    ],
    ids=["docker", "podman", "buildkit"],
)
def test_build_log_finds_the_images_the_build_made(lines: list[str], created: list[str]) -> None:
    log = images.BuildLog()
    for line in lines:
        log.feed(line)
    assert log.created == created


def test_failed_build_removes_what_it_made(capsys: pytest.CaptureFixture[str]) -> None:
    engine = Fake(build=DOCKER_BUILD)
    engine.build_status = 1
    with pytest.raises(EngineError, match="failed"):
        images.build_image(engine, tag="t", context_dir=Path("/x"), title="t")  # type: ignore[arg-type]
    [build] = engine.verbs("build")
    assert build[:3] == ("build", "--rm", "--force-rm")
    assert engine.verbs("rmi")[0] == ("rmi", "--no-prune", "7a7a7a7a7a7a", "5f2f7472609b")
    capsys.readouterr()


def test_interrupted_build_removes_what_it_made(capsys: pytest.CaptureFixture[str]) -> None:
    engine = Fake(build=DOCKER_BUILD[:10])

    def interrupted(args: Sequence[str], on_line: Callable[[str], None], **_kw: object) -> int:
        engine.calls.append(tuple(args))
        for line in DOCKER_BUILD[:10]:
            on_line(line)
        raise KeyboardInterrupt

    engine.stream = interrupted  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        images.build_image(engine, tag="t", context_dir=Path("/x"), title="t")  # type: ignore[arg-type]
    assert engine.verbs("rmi")[0] == ("rmi", "--no-prune", "5f2f7472609b")
    capsys.readouterr()


def test_sigterm_during_a_build_is_an_interrupt() -> None:
    import signal

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), images._terminate_as_interrupt():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises before (or while) this sleeps
    assert signal.getsignal(signal.SIGTERM) is before


# ----------------------------------------------------------- aishell images: pure


def row(ident: str, *tags: str, containers: Sequence[str] = (), kind: str = "foundation") -> Any:
    item = {
        "Id": ident,
        "RepoTags": list(tags),
        "Size": 400_000_000,
        "Created": "2026-12-01T09:00:00Z",
        "Config": {"Labels": {"aishell.kind": kind}},
    }
    [built] = images_cmd.build_rows(
        [item], containers={ident: list(containers)}, home_id=HOLDS.home_id
    )
    return built


@pytest.mark.parametrize(
    ("image", "reason"),
    [
        (row("sha256:a"), None),
        (row("sha256:b", "<none>:<none>"), None),
        (row("sha256:c", HOLDS.foundation, HOLDS.base), "held by this home (base, foundation)"),
        (row("sha256:d", OTHER.foundation), "held by 1 other aishell home"),
        (
            row("sha256:e", OTHER.foundation, images.Holds("aaaaaaaaaaaa").base),
            "held by 2 other aishell homes",
        ),
        (row("sha256:f", "aishell:foundation"), "tagged aishell:foundation"),
        (row("sha256:g", "mine:1"), "tagged mine:1"),
        (row("sha256:h", containers=["aishell-1-shell"]), "used by container aishell-1-shell"),
        (
            row("sha256:i", OTHER.base, containers=["x", "y"]),
            "held by 1 other aishell home; used by containers x, y",
        ),
    ],
)
def test_keep_reason(image: images_cmd.ImageRow, reason: str | None) -> None:
    assert images_cmd.keep_reason(image) == reason
    assert image.prunable is (reason is None)


def test_plan_prune_removes_only_untagged_unused_images() -> None:
    rows = [
        row("sha256:mine", HOLDS.foundation),
        row("sha256:theirs", OTHER.foundation),
        row("sha256:superseded"),
        row("sha256:running", containers=["c1"]),
        row("sha256:legacy", "aishell:base"),
        row("sha256:leftover", kind="base"),
    ]
    plan = images_cmd.plan_prune(rows)
    assert [r.id for r in plan.remove] == ["sha256:superseded", "sha256:leftover"]
    assert [k["id"] for k in plan.kept] == [
        "sha256:mine",
        "sha256:theirs",
        "sha256:running",
        "sha256:legacy",
    ]
    only = images_cmd.plan_prune(rows, ["theirs", "sha256:super"])
    assert [r.id for r in only.remove] == ["sha256:superseded"]
    assert only.kept == [{"id": "sha256:theirs", "reason": "held by 1 other aishell home"}]
    with pytest.raises(AishellError, match="no aishell image with ID nothere"):
        images_cmd.plan_prune(rows, ["nothere"])


def test_build_rows_order_and_podman_ids() -> None:
    items = [
        {"Id": "aaa", "RepoTags": [OTHER.base], "Created": "2026-12-02"},
        {"Id": "bbb", "RepoTags": [], "Created": "2026-12-03"},
        {"Id": "ccc", "RepoTags": ["localhost/" + HOLDS.proxy], "Created": "2026-12-01"},
    ]
    rows = images_cmd.build_rows(items, containers={"sha256:bbb": ["c"]}, home_id=HOLDS.home_id)
    assert [r.id for r in rows] == ["ccc", "bbb", "aaa"]  # this home's first, then newest
    assert rows[0].holds == [images_cmd.Hold(HOLDS.home_id, "proxy", True)]
    assert rows[1].containers == ["c"]


IMAGE_ROW_SHAPE = {
    "id": str,
    "kind": (str, type(None)),
    "size_bytes": (int, type(None)),
    "created": (str, type(None)),
    "tags": list,
    "holds": list,
    "this_home": bool,
    "containers": list,
    "prunable": bool,
}


def test_json_shapes() -> None:
    data = row("sha256:c", HOLDS.foundation, OTHER.foundation, containers=["x"]).to_json()
    assert set(data) == set(IMAGE_ROW_SHAPE)
    for key, kind in IMAGE_ROW_SHAPE.items():
        assert isinstance(data[key], kind), key
    assert data["holds"] == [
        {"home": HOLDS.home_id, "role": "foundation", "this_home": True},
        {"home": OTHER.home_id, "role": "foundation", "this_home": False},
    ]
    assert data["this_home"] is True and data["prunable"] is False
    pruned = images_cmd.prune_json([row("sha256:a")], [{"id": "sha256:b", "reason": "r"}])
    assert pruned == {
        "removed": [{"id": "sha256:a", "kind": "foundation", "size_bytes": 400_000_000}],
        "kept": [{"id": "sha256:b", "reason": "r"}],
    }


def test_render_list() -> None:
    lines = images_cmd.render_list(
        [row("sha256:" + "c" * 64, HOLDS.foundation, "aishell:foundation"), row("sha256:d")]
    )
    assert lines[0].split() == ["ID", "KIND", "SIZE", "CREATED", "HELD", "BY", "USED", "BY"]
    assert "this home (foundation), aishell:foundation" in lines[1]
    assert lines[1].startswith("c" * 12)
    assert "- (prunable)" in lines[2]


# --------------------------------------------------------- aishell images: command


class ListingEngine(Fake):
    def __init__(self, items: Sequence[dict[str, Any]], containers: dict[str, str]) -> None:
        super().__init__(items)
        self.containers = containers  # container name -> image ID
        self.removed: list[str] = []

    def capture(self, *args: str, **kw: object) -> Any:
        if args[:2] == ("image", "ls"):
            self.calls.append(args)
            ids = [i["Id"] for i in self.items if images.labels_of(i).get("aishell.managed")]
            return SimpleNamespace(ok=True, returncode=0, stderr="", stdout="\n".join(ids))
        if args[0] == "ps":
            self.calls.append(args)
            return SimpleNamespace(
                ok=True, returncode=0, stderr="", stdout="\n".join(self.containers)
            )
        if args[:2] == ("container", "inspect"):
            self.calls.append(args)
            lines = [f"{json.dumps(self.containers[n])}\t{json.dumps('/' + n)}" for n in args[4:]]
            return SimpleNamespace(ok=True, returncode=0, stderr="", stdout="\n".join(lines))
        if args[0] == "rmi":
            self.calls.append(args)
            self.removed.append(args[1])
            self.items = [i for i in self.items if i["Id"] != args[1]]
            return SimpleNamespace(ok=True, returncode=0, stderr="", stdout="")
        return super().capture(*args, **kw)


def managed(ident: str, *tags: str) -> dict[str, Any]:
    return {
        "Id": ident,
        "RepoTags": list(tags),
        "Size": 1000,
        "Created": "2026-12-01T00:00:00Z",
        "Config": {"Labels": {"aishell.managed": "1", "aishell.kind": "foundation"}},
    }


@pytest.fixture
def listing(monkeypatch: pytest.MonkeyPatch) -> ListingEngine:
    from aishell.engine import choice

    engine = ListingEngine(
        [
            managed("sha256:mine", HOLDS.foundation),
            managed("sha256:theirs", OTHER.foundation),
            managed("sha256:old"),
            managed("sha256:used"),
        ],
        {"aishell-x-shell": "sha256:used"},
    )
    monkeypatch.setattr(choice, "get_engine", lambda *_a: engine)
    monkeypatch.setattr(paths, "home_id", lambda *_a, **_k: HOLDS.home_id)
    return engine


def test_images_prune_needs_yes_without_a_terminal(
    listing: ListingEngine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", SimpleNamespace(isatty=lambda: False))
    with pytest.raises(AishellError, match="without confirmation"):
        images_cmd.main(["prune"])
    assert listing.removed == []
    capsys.readouterr()


def test_images_prune_asks_on_a_terminal(
    listing: ListingEngine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from aishell import output
    from aishell.errors import Aborted

    monkeypatch.setattr("sys.stdin", SimpleNamespace(isatty=lambda: True))
    monkeypatch.setattr(output, "ask_yes_no", lambda _q: False)
    with pytest.raises(Aborted) as info:
        images_cmd.main(["prune"])
    assert listing.removed == []
    assert info.value.message == "Aborted. No image was removed."  # as the README says
    monkeypatch.setattr(output, "ask_yes_no", lambda _q: True)
    assert images_cmd.main(["prune"]) == 0
    assert listing.removed == ["sha256:old"]
    capsys.readouterr()


def test_images_prune_yes_json(listing: ListingEngine, capsys: pytest.CaptureFixture[str]) -> None:
    assert images_cmd.main(["prune", "--yes", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in data["removed"]] == ["sha256:old"]
    assert {k["id"]: k["reason"] for k in data["kept"]} == {
        "sha256:mine": "held by this home (foundation)",
        "sha256:theirs": "held by 1 other aishell home",
        "sha256:used": "used by container aishell-x-shell",
    }
    assert listing.removed == ["sha256:old"]


def test_images_prune_rechecks_tags_before_removing(
    listing: ListingEngine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = images_cmd.collect(listing, HOLDS.home_id)  # type: ignore[arg-type]
    listing._find("sha256:old")["RepoTags"] = [OTHER.foundation]  # type: ignore[index]
    removed, kept = images_cmd.remove_images(listing, [r for r in rows if r.prunable])  # type: ignore[arg-type]
    assert removed == [] and listing.removed == []
    assert kept[0]["reason"].startswith("tagged meanwhile")
    capsys.readouterr()


def test_images_list(listing: ListingEngine, capsys: pytest.CaptureFixture[str]) -> None:
    assert images_cmd.main(["list", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data[0]["id"] == "sha256:mine"
    assert {r["id"]: r["prunable"] for r in data} == {
        "sha256:mine": False,
        "sha256:theirs": False,
        "sha256:old": True,
        "sha256:used": False,
    }
    assert images_cmd.main([]) == 0
    out = capsys.readouterr()
    assert "this home (foundation)" in out.out
    assert "aishell images prune" in out.err


@pytest.mark.parametrize("argv", [["bogus"], ["list", "abc"], ["--nope"]])
def test_images_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    from aishell import cli

    assert cli.main(["images", *argv]) == 2
    assert capsys.readouterr().err.startswith("Error:")


def test_messages_show_a_few_tags_and_how_many_more() -> None:
    from aishell.engine.images import tags_shown

    assert tags_shown([]) == "no tag"
    assert tags_shown(["a:x"]) == "a:x"
    assert tags_shown(["a:x", "b:x"]) == "a:x, b:x"
    many = [f"aishell-home-{i:012x}:base" for i in range(300)]
    shown = tags_shown(many)
    assert shown == f"{many[0]}, {many[1]} and 298 more"
