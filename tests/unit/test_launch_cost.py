"""The cheaper ways a launch does its work give the same answers as the plain ones:
tag matching by set, record dates by arithmetic, SHA-256 by size, the engine API's
answers passed on as text, and the images a launch inspects."""

from __future__ import annotations

import calendar
import hashlib
import itertools
import json
import os
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from aishell import hashing, paths, records
from aishell.engine import client, images
from aishell.launch.materialise import asked_images

# ---------------------------------------------------------------- tag matching

PARTS = ["", "localhost/", "localhost/localhost/", "registry:5000/", "a/"]
NAMES = ["x", "x:latest", "x:1", "x:latest:latest", "latest", "aishell-home-0:base"]
SPELLINGS = sorted({p + n for p, n in itertools.product(PARTS, NAMES)})


@pytest.mark.parametrize("wanted", SPELLINGS)
def test_tag_spellings_are_exactly_the_tags_that_normalise_alike(wanted: str) -> None:
    expected = {t for t in SPELLINGS if images._normalise_tag(t) == images._normalise_tag(wanted)}
    assert {t for t in SPELLINGS if t in images._tag_spellings(wanted)} == expected


def test_parse_image_inspect_matches_as_normalised_tags_do() -> None:
    items = [{"Id": f"sha256:{i}", "RepoTags": [tag]} for i, tag in enumerate(SPELLINGS)]
    found = images.parse_image_inspect(json.dumps(items), SPELLINGS)
    for wanted in SPELLINGS:
        norm = images._normalise_tag(wanted)
        last = max(i for i, tag in enumerate(SPELLINGS) if images._normalise_tag(tag) == norm)
        assert found[wanted] == items[last]


def test_parse_image_inspect_skips_tags_that_are_not_strings() -> None:
    item = {"Id": "sha256:1", "RepoTags": [["x"], {"a": 1}, None, 3, "x:1"]}
    assert images.parse_image_inspect(json.dumps([item]), ["x:1", "y"]) == {"x:1": item}
    odd = {"Id": "sha256:2", "RepoTags": "x:1"}
    assert images.parse_image_inspect(json.dumps([odd]), ["x:1"]) == {}


def test_a_shared_engine_s_thousands_of_tags() -> None:
    tags = [f"aishell-home-{i:012x}:foundation" for i in range(5000)]
    item = {"Id": "sha256:f", "RepoTags": [*tags, "aishell-home-me:base"]}
    wanted = ["aishell-home-me:foundation", "aishell-home-me:base"]
    assert images.parse_image_inspect(json.dumps([item]), wanted) == {"aishell-home-me:base": item}


# ---------------------------------------------------------------- record dates


@pytest.mark.parametrize("year", [1, 4, 100, 400, 1600, 1900, 1969, 1970, 2000, 2024, 2100, 9999])
def test_days_from_civil_is_timegm(year: int) -> None:
    for month, day in itertools.product(range(1, 13), range(1, 32)):
        got = records.days_from_civil(year, month, day) * 86400
        assert got == calendar.timegm((year, month, day, 0, 0, 0, 0, 0, 0)), (year, month, day)


def test_started_of_uses_it() -> None:
    assert records.started_of("20261201T134503Z-60513e") == calendar.timegm(
        (2026, 12, 1, 13, 45, 3, 0, 0, 0)
    )
    assert records.started_of("00000101T000000Z-000000") == -62167219200.0  # year 0
    assert records.started_of("20261301T000000Z-000000") is None
    assert records.started_of("20261201T134503Z-60513") is None


# ---------------------------------------------------------------- SHA-256


@pytest.mark.parametrize(
    "size", [0, 1, 64, hashing.BIG_INPUT - 1, hashing.BIG_INPUT, hashing.BIG_INPUT + 1, 1 << 21]
)
def test_sha256_hex_is_sha256_at_every_size(size: int) -> None:
    data = os.urandom(size)
    assert hashing.sha256_hex(data) == hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- the engine API


class FakeAPI:
    """A unix-socket HTTP server answering GETs from a table (path -> (status, body))."""

    def __init__(self, sock_path: Path, table: dict[str, tuple[int, bytes]]) -> None:
        self.table = table
        self.asked: list[str] = []
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(sock_path))
        self.server.listen(8)
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                request = b""
                while b"\r\n\r\n" not in request:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    request += chunk
                path = request.split(b" ")[1].decode()
                self.asked.append(path)
                status, body = self.table.get(path, (404, b'{"message":"no such"}\n'))
                conn.sendall(
                    f"HTTP/1.0 {status} X\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
                )

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def api(tmp_path: Path) -> Any:
    made: list[FakeAPI] = []

    def start(table: dict[str, tuple[int, bytes]]) -> tuple[str, FakeAPI]:
        sock = tmp_path / "docker.sock"
        made.append(FakeAPI(sock, table))
        return str(sock), made[-1]

    yield start
    for server in made:
        server.close()


def test_api_inspect_answers_as_the_cli_prints(api: Any) -> None:
    image = {"Id": "sha256:f", "RepoTags": ["a:1"], "Config": {"Labels": {"k": "v"}}}
    volume = {"Name": "v", "Labels": None}
    sock, server = api(
        {
            "/images/a:1/json": (200, json.dumps(image).encode() + b"\n"),
            "/volumes/v": (200, json.dumps(volume).encode() + b"\n"),
        }
    )
    got = client._api_inspect(
        sock, [("image", ["a:1", "b:2"]), ("volume", ["v"]), ("container", ["c"])], timeout=5
    )
    assert [r.returncode for r in got] == [1, 0, 1]
    assert json.loads(got[0].stdout) == [image]
    assert got[0].stderr == "Error: No such image: b:2\n"
    assert json.loads(got[1].stdout) == [volume] and got[1].stderr == ""
    assert got[2].stdout == "[]\n" and got[2].stderr == "Error: No such container: c\n"
    assert server.asked == [
        "/images/a:1/json",
        "/images/b:2/json",
        "/volumes/v",
        "/containers/c/json",
    ]
    assert images.parse_image_inspect(got[0].stdout, ["a:1"]) == {"a:1": image}


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'"text"', b"{"])
def test_api_inspect_refuses_what_is_not_an_object(api: Any, body: bytes) -> None:
    """(inspect_many then asks the CLI, which explains what is wrong.)"""
    sock, _ = api({"/images/a/json": (200, body)})
    with pytest.raises(ValueError):
        client._api_inspect(sock, [("image", ["a"])], timeout=5)


def test_api_inspect_refuses_another_status(api: Any) -> None:
    sock, _ = api({"/images/a/json": (500, b'{"message":"boom"}')})
    with pytest.raises(OSError, match="500"):
        client._api_inspect(sock, [("image", ["a"])], timeout=5)


# ---------------------------------------------------------------- what a launch inspects


class _Project:
    extension_role = "ext-1234"


class _Resolved:
    def __init__(self, dockerfile: Path | None) -> None:
        self.project = _Project()
        self.project_dockerfile = dockerfile


@pytest.mark.parametrize(
    ("global_dockerfile", "project_dockerfile", "expected"),
    [
        (False, False, ["foundation"]),
        (True, False, ["foundation", "base"]),
        (False, True, ["foundation", "ext-1234"]),
        (True, True, ["foundation", "base", "ext-1234"]),
    ],
)
def test_asked_images(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    global_dockerfile: bool,
    project_dockerfile: bool,
    expected: list[str],
) -> None:
    monkeypatch.setenv("AISHELL_HOME", str(tmp_path / "home"))
    if global_dockerfile:
        paths.global_dockerfile().parent.mkdir(parents=True, exist_ok=True)
        paths.global_dockerfile().write_text("FROM aishell:foundation\n")
    holds = images.Holds("0123456789ab")
    r = _Resolved(tmp_path / "Dockerfile" if project_dockerfile else None)
    got = asked_images(holds, r)  # type: ignore[arg-type]
    assert got == [holds.tag(role) for role in expected]


def test_the_base_answers_from_the_foundation_s_inspection() -> None:
    """Without a global Dockerfile only the foundation is inspected: the base hold is
    found among its tags (and is missing when it tags another image, so it is moved)."""
    holds = images.Holds("0123456789ab")
    wanted = [holds.foundation, holds.base]
    same = {"Id": "sha256:f", "RepoTags": [holds.foundation, holds.base]}
    assert images.parse_image_inspect(json.dumps([same]), wanted) == {
        holds.foundation: same,
        holds.base: same,
    }
    apart = {"Id": "sha256:f", "RepoTags": [holds.foundation]}
    assert images.parse_image_inspect(json.dumps([apart]), wanted) == {holds.foundation: apart}
