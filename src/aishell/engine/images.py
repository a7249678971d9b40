"""The image tiers: foundation, global base, project extension.

Each tier records in labels what it was built from (a content hash, and the
ID of the image it was built on), so a tier is rebuilt exactly when its
inputs change and never otherwise.

Images are shared by content, never by a mutable name. A launch runs an image
*ID*. Each aishell home (one `AISHELL_HOME` of one user) keeps the images it uses
alive with its own tags, its *holds*: `aishell-home-<homeid>:<role>` (role
`foundation`, `base`, `ext-<projecthash>`, `proxy`). A home only ever moves its
own holds, so it can never change or remove what another home runs; the engine
deletes an image only once its last tag is gone and no container uses it. Before
building, aishell looks for an image with the same content labels (built by
another home, or by an older aishell under the old shared `aishell:*` names) and
holds that one instead. `aishell images prune` collects images nothing holds.
"""

from __future__ import annotations

import json
import os
import re
import signal
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType, MappingProxyType
from typing import Any

from aishell import journal, output
from aishell.constants import (
    BASE_IMAGE,
    EXTENSION_ROLE_PREFIX,
    FOUNDATION_IMAGE,
    LABEL_KIND,
    LABEL_MANAGED,
)
from aishell.engine.client import Engine
from aishell.errors import AishellError, ConfigError, EngineError
from aishell.hashing import files_hash
from aishell.tuples import NamedTuple

DEFAULT_BASE_IMAGE = "debian:trixie-slim"
NODE_VERSION = "24.21.0"
NPM_VERSION = "11.21.2"

LABEL_FOUNDATION_HASH = "aishell.foundation.hash"
LABEL_TIER_HASH = "aishell.tier.hash"  # hash of a base/extension's own inputs
LABEL_TIER_PARENT = "aishell.tier.parent"  # image ID it was built on
LABEL_PROJECT = "aishell.project"

KIND_FOUNDATION = "foundation"
KIND_BASE = "base"
KIND_EXTENSION = "extension"

# -- holds: this home's tags ------------------------------------------------------

HOLD_PREFIX = "aishell-home-"
ROLE_FOUNDATION = "foundation"
ROLE_BASE = "base"
ROLE_PROXY = "proxy"
EXT_ROLE_PREFIX = EXTENSION_ROLE_PREFIX
# The names older aishell versions tagged (one per engine, shared by every home). Still
# recognised when looking for an image to reuse; never moved or removed.
LEGACY_REPO = "aishell"
_HOLD = r"^aishell-home-([0-9a-f]{12}):([a-z0-9][a-z0-9._-]*)$"


class Holds(NamedTuple):
    """The tags one aishell home keeps its images alive with."""

    home_id: str

    @property
    def repo(self) -> str:
        return f"{HOLD_PREFIX}{self.home_id}"

    def tag(self, role: str) -> str:
        return f"{self.repo}:{role}"

    @property
    def foundation(self) -> str:
        return self.tag(ROLE_FOUNDATION)

    @property
    def base(self) -> str:
        return self.tag(ROLE_BASE)

    @property
    def proxy(self) -> str:
        return self.tag(ROLE_PROXY)


def parse_hold(tag: str) -> tuple[str, str] | None:
    """(home id, role) of a hold tag (`aishell-home-<id>:<role>`); None for other tags."""
    match = re.match(_HOLD, _normalise_tag(tag))
    return (match.group(1), match.group(2)) if match else None


def aishell_tags(item: Mapping[str, Any] | None) -> list[str]:
    """The image's tags that aishell made: holds, or the legacy shared `aishell:*` names."""
    tags = [_normalise_tag(t) for t in (item or {}).get("RepoTags") or []]
    return [t for t in tags if parse_hold(t) or t.startswith(f"{LEGACY_REPO}:")]


def real_tags(item: Mapping[str, Any] | None) -> list[str]:
    """The image's tags, without the `<none>:<none>` placeholder some engines list."""
    tags = [_normalise_tag(t) for t in (item or {}).get("RepoTags") or []]
    return [t for t in tags if t and not t.startswith("<none>")]


# -- user Dockerfiles: FROM aishell:foundation / aishell:base ------------------------

# The names a user's Dockerfile may build on (README): replaced by image IDs at build
# time, in FROM lines and in COPY --from=.
# (Patterns as text: `re` compiles and caches them on first use, off the launch path.)
_FROM_LINE = r"(?is)^(?P<lead>[ \t]*FROM[ \t]+(?:--[^\s]+[ \t]+)*)(?P<image>[^\s]+)(?P<rest>.*)$"
_COPY_LINE = r"(?i)^[ \t]*COPY[ \t]"
_COPY_FROM = r"(?i)(?P<lead>[ \t]--from=)(?P<image>[^\s]+)"


def _lookup(name: str, names: Mapping[str, str]) -> str | None:
    return names.get(name) or names.get(name.removeprefix("localhost/"))


def substitute_parents(text: str, names: Mapping[str, str]) -> str:
    """`text` (a Dockerfile) with the image names in `names` replaced by their values in
    FROM lines and `COPY --from=`. Comments, other images and stage names stay as they are."""
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        match = re.match(_FROM_LINE, line)
        if match:
            new = _lookup(match.group("image"), names)
            if new:
                lines[i] = match.group("lead") + new + match.group("rest")
            continue
        if re.match(_COPY_LINE, line):

            def repl(m: re.Match[str]) -> str:
                new = _lookup(m.group("image"), names)
                return m.group("lead") + new if new else m.group(0)

            lines[i] = re.sub(_COPY_FROM, repl, line)
    return "".join(lines)


TEMPLATE_FILES = (
    "Dockerfile",
    "entrypoint.sh",
    "aishell-run",
    "aishell-attach",
    "aishell-egress-relay",
    "bashrc",
    "profile.sh",
    "tmux.conf",
)
_CERTS_README = b"Extra CA certificates added by aishell (config key ca_certificates).\n"


class BuildContext(NamedTuple):
    files: dict[str, bytes]
    build_args: Mapping[str, str] = MappingProxyType({})

    @property
    def hash(self) -> str:
        return files_hash(self.files.items(), self.build_args)

    def write(self, directory: Path) -> None:
        for name, content in self.files.items():
            target = directory / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)


def _read_cert(path: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"ca_certificates: cannot read {path}: {exc.strerror}",
            hint="fix the path in ~/.aishell/config.yaml",
        ) from exc
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise ConfigError(
            f"ca_certificates: {path} holds no PEM certificate",
            hint="list PEM files (-----BEGIN CERTIFICATE-----) in ~/.aishell/config.yaml",
        )
    return data if data.endswith(b"\n") else data + b"\n"


def foundation_context(
    *, base_image: str | None, with_gitleaks: bool, ca_certificates: Iterable[str] = ()
) -> BuildContext:
    pkg = Path(__file__).resolve().parent.parent / "templates"
    files = {name: (pkg / name).read_bytes() for name in TEMPLATE_FILES}
    files["certs/README"] = _CERTS_README
    for index, cert in enumerate(ca_certificates):
        files[f"certs/aishell-{index:02d}.crt"] = _read_cert(cert)
    args = {
        "BASE_IMAGE": base_image or DEFAULT_BASE_IMAGE,
        "NODE_VERSION": NODE_VERSION,
        "NPM_VERSION": NPM_VERSION,
        "WITH_GITLEAKS": "true" if with_gitleaks else "false",
    }
    return BuildContext(files=files, build_args=args)


# aishell's own files in ~/.aishell, never part of an image's inputs.
BOOKKEEPING_DIRS = frozenset({"cache", "logs", "locks", "egress"})
BOOKKEEPING_PREFIXES = (".state.",)


def directory_context(directory: Path, *, exclude: Iterable[str] = ()) -> BuildContext:
    """All files of a (small) directory, for hashing a base or extension tier."""
    skip = set(exclude)
    files: dict[str, bytes] = {}
    for dirpath, dirnames, filenames in os.walk(directory):
        if Path(dirpath) == directory:
            dirnames[:] = [d for d in dirnames if d not in BOOKKEEPING_DIRS]
        dirnames.sort()
        for name in filenames:
            if name.startswith(BOOKKEEPING_PREFIXES):
                continue
            full = Path(dirpath) / name
            rel = full.relative_to(directory).as_posix()
            if rel in skip:
                continue
            try:
                if full.is_symlink():  # never followed: a link to a FIFO would hang here
                    files[rel] = b"symlink:" + os.fsencode(os.readlink(full))
                elif full.is_file():
                    files[rel] = full.read_bytes()
            except OSError:
                continue
    return BuildContext(files=files)


# -- inspection ---------------------------------------------------------------


def inspect_images(engine: Engine, names: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Inspect several images in one call; missing ones are simply absent."""
    wanted = list(dict.fromkeys(names))
    if not wanted:
        return {}
    result = engine.capture("image", "inspect", *wanted)
    return parse_image_inspect(result.stdout, wanted)


def parse_image_inspect(stdout: str, wanted: list[str]) -> dict[str, dict[str, Any]]:
    """The inspected images by the wanted name (a tag or an ID) each answers to; a name
    may be answered by an image inspected under another (a second tag of it)."""
    found: dict[str, dict[str, Any]] = {}
    spellings = {name: _tag_spellings(name) for name in wanted}
    for item in parse_inspect_list(stdout):
        tags = item.get("RepoTags")
        tags = [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []
        for name in wanted:
            # (set.isdisjoint: an image on a shared engine can carry thousands of tags)
            if not spellings[name].isdisjoint(tags) or same_id(str(item.get("Id", "")), name):
                found[name] = item
    return found


def _tag_spellings(name: str) -> frozenset[str]:
    """Every tag `_normalise_tag` turns into the same tag as `name`."""
    tag = _normalise_tag(name)
    short = tag.removesuffix(":latest")  # (the candidates: filtered below)
    forms = (tag, f"localhost/{tag}", short, f"localhost/{short}")
    return frozenset(form for form in forms if _normalise_tag(form) == tag)


def parse_inspect_list(stdout: str) -> list[dict[str, Any]]:
    """The objects of an `inspect` answer (a JSON array); [] for anything else."""
    try:
        items = json.loads(stdout) if stdout.strip() else []
    except json.JSONDecodeError:
        return []
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def same_id(a: str, b: str) -> bool:
    """Image IDs equal, with or without `sha256:` (Podman inspects without it)."""
    a, b = a.removeprefix("sha256:"), b.removeprefix("sha256:")
    return bool(a) and a == b


def _normalise_tag(tag: str) -> str:
    tag = tag.removeprefix("localhost/")  # podman names local images localhost/<name>
    if ":" not in tag.rsplit("/", 1)[-1]:
        tag += ":latest"
    return tag


def labels_of(item: Mapping[str, Any] | None) -> dict[str, str]:
    if not item:
        return {}
    config = item.get("Config") or {}
    return dict(config.get("Labels") or {})


def image_id(item: Mapping[str, Any] | None) -> str:
    """The image's ID as its engine writes it (Docker `sha256:<hex>`, Podman `<hex>`);
    either engine's CLI takes it wherever an image name goes."""
    return str(item.get("Id", "")) if item else ""


def short_id(ident: str) -> str:
    return ident.removeprefix("sha256:")[:12]


# -- reuse: an image with the same content labels -------------------------------------


def find_built(engine: Engine, labels: Mapping[str, str]) -> dict[str, Any] | None:
    """The newest image that carries all of `labels` and a tag aishell made (a hold or
    a legacy `aishell:*` name), or None. Two engine calls; only where a build would
    otherwise be needed.

    The tag requirement keeps out what merely inherited the labels: intermediate
    images of a build on top of an aishell image, or images users built FROM one."""
    key, value = next(iter(labels.items()))
    # One label filter: Podman ORs repeated label filters; the rest is checked below.
    listed = engine.capture("image", "ls", "-q", "--no-trunc", "--filter", f"label={key}={value}")
    ids = list(dict.fromkeys(listed.stdout.split())) if listed.ok else []
    if not ids:
        return None
    items = parse_inspect_list(engine.capture("image", "inspect", *ids).stdout)
    matching = [
        item
        for item in items
        if all(labels_of(item).get(k) == v for k, v in labels.items()) and aishell_tags(item)
    ]
    return max(matching, key=lambda item: str(item.get("Created", ""))) if matching else None


def tags_shown(tags: Sequence[str], most: int = 2) -> str:
    """Tags for a message: on a shared engine an image may have hundreds (one hold per
    home), so the first few and how many more."""
    if not tags:
        return "no tag"
    more = len(tags) - most
    return ", ".join(tags[:most]) + (f" and {more} more" if more > 0 else "")


def hold(engine: Engine, item: Mapping[str, Any], tag: str) -> bool:
    """Point this home's hold `tag` at the image `item`. False if the image is gone."""
    result = engine.capture("tag", image_id(item), tag)
    return result.ok


def adopt(
    engine: Engine, labels: Mapping[str, str], tag: str, *, what: str
) -> dict[str, Any] | None:
    """Hold an existing image with these content labels as `tag` (instead of building)."""
    found = find_built(engine, labels)
    if found is None or not hold(engine, found, tag):
        return None
    output.info(
        f"Using the existing {what} {short_id(image_id(found))} "
        f"(same inputs; {tags_shown(aishell_tags(found))})"
    )
    return found


# -- listing (images list / prune) ------------------------------------------------


def list_managed(engine: Engine) -> list[dict[str, Any]]:
    """Inspect data of every aishell-labelled image the engine lists (tagged ones, and
    untagged ones without children; intermediate build images stay hidden)."""
    listed = engine.checked(
        "image", "ls", "-q", "--no-trunc", "--filter", f"label={LABEL_MANAGED}=1",
        what="listing images",
    )  # fmt: skip
    ids = list(dict.fromkeys(listed.stdout.split()))
    if not ids:
        return []
    return parse_inspect_list(engine.capture("image", "inspect", *ids).stdout)


def containers_by_image(engine: Engine) -> dict[str, list[str]]:
    """Image ID -> names of the containers (running or stopped, aishell's or not) made
    from it."""
    listed = engine.checked("ps", "-a", "-q", "--no-trunc", what="listing containers")
    ids = list(dict.fromkeys(listed.stdout.split()))
    if not ids:
        return {}
    result = engine.capture(
        "container", "inspect", "--format", "{{json .Image}}\t{{json .Name}}", *ids
    )
    users: dict[str, list[str]] = {}
    for line in result.stdout.splitlines():
        image, _, name = line.partition("\t")
        try:
            image_ref, name_text = json.loads(image), json.loads(name)
        except json.JSONDecodeError:
            continue
        if isinstance(image_ref, str) and isinstance(name_text, str):
            key = image_ref.removeprefix("sha256:")
            users.setdefault(key, []).append(name_text.lstrip("/"))
    return users


# -- building -----------------------------------------------------------------

# Docker's classic builder ("Step 3/12 : RUN"), BuildKit ("#5 [3/12] RUN"),
# Podman/Buildah ("STEP 3/12: RUN").
_STEP = r"(?:^Step (\d+)/(\d+)\b|^#\d+ \[[^\]]*?(\d+)/(\d+)\]|^STEP (\d+)/(\d+):)"
# The image a step committed: " ---> 1a2b3c4d5e6f" (Docker), "--> 1a2b3c4d5e6" (Podman).
_COMMITTED = r"^\s*-{2,3}> ([0-9a-f]{11,64})\s*$"
_CACHED = r"^\s*-{2,3}> Using cache\b"
_FROM_STEP = r"(?i):\s*FROM\s"


class BuildLog:
    """Reads a build's output for the images the build itself committed (cache hits and
    the FROM image are not its own), so a failed or interrupted build can remove them."""

    def __init__(self) -> None:
        self.created: list[str] = []
        self._skip_next = False

    def feed(self, line: str) -> None:
        if re.search(_STEP, line):
            self._skip_next = bool(re.search(_FROM_STEP, line))  # Docker prints the FROM image
            return
        if re.match(_CACHED, line):
            self._skip_next = True
            return
        match = re.match(_COMMITTED, line)
        if match:
            if not self._skip_next:
                self.created.append(match.group(1))
            self._skip_next = False


def _raise_interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """Inside: SIGTERM raises KeyboardInterrupt, so an interrupted build is cleaned up."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


_STILL_BUSY = ("running container", "in use", "being used")


def discard_partial(
    engine: Engine, created: Iterable[str], *, since: float = 0.0, wait: float = 10.0
) -> list[str]:
    """Remove the images a failed or interrupted build committed (last first, nothing
    else: `--no-prune`). An image that has since got a tag or a child (another build
    reused it) stays. Returns the IDs still present.

    Podman (4.x) leaves the build's working containers behind when it is killed: those
    based on this build's own images are removed; others made since `since` (based on
    the FROM image or a cached step, which another build could be using) are named in
    a hint, never removed."""
    import time

    remaining = list(reversed(list(dict.fromkeys(created))))
    if engine.kind == "podman":
        _discard_working_containers(engine, remaining, since=since)
    deadline = time.monotonic() + wait
    while remaining:
        result = engine.capture("rmi", "--no-prune", *remaining)
        still = engine.capture("image", "inspect", "--format", "{{.Id}}", *remaining)
        present = {i.removeprefix("sha256:") for i in still.stdout.split()}
        remaining = [i for i in remaining if any(p.startswith(i) for p in present)]
        busy = any(marker in result.stderr.lower() for marker in _STILL_BUSY)
        if not remaining or not busy or time.monotonic() > deadline:
            break
        time.sleep(0.25)  # the engine is still removing the interrupted step's container
    return remaining


def _discard_working_containers(engine: Engine, created: Sequence[str], *, since: float) -> None:
    listed = engine.capture("ps", "-a", "--external", "--format", "json")
    ours: list[str] = []
    maybe: list[str] = []
    for item in parse_inspect_list(listed.stdout if listed.ok else ""):
        if str(item.get("State", "")).lower() != "storage":
            continue  # a real container, not a build's working container
        image = str(item.get("ImageID", ""))
        names = item.get("Names") or [str(item.get("Id", ""))[:12]]
        if image and any(image.startswith(i) for i in created):
            ours.append(str(item.get("Id")))
        elif isinstance(item.get("Created"), int | float) and item["Created"] >= since - 1:
            maybe.extend(str(n) for n in names)
    if ours:
        engine.capture("rm", "-f", *ours)
    if maybe:
        output.info(
            "Podman may have left working containers of the interrupted build: "
            f"{', '.join(maybe)}; once no other build runs, remove them with "
            f"'{engine.name} rm -f {' '.join(maybe)}'"
        )


def build_image(
    engine: Engine,
    *,
    tag: str,
    context_dir: Path,
    dockerfile: Path | None = None,
    build_args: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    title: str,
    verbose: bool = False,
    no_cache: bool = False,
    network: str | None = None,
) -> None:
    """Build and tag `tag`. Intermediate containers are always removed (`--force-rm`); a
    failed or interrupted build (Ctrl-C, SIGTERM) also removes the images it committed.
    `network="none"`: the build's RUN steps get no network (see `build_network`)."""
    args = ["build", "--rm", "--force-rm", "-t", tag, "--label", f"{LABEL_MANAGED}=1"]
    if network:
        args += ["--network", network]
    for key, value in (labels or {}).items():
        args += ["--label", f"{key}={value}"]
    for key, value in (build_args or {}).items():
        args += ["--build-arg", f"{key}={value}"]
    if no_cache:
        args.append("--no-cache")
    if dockerfile is not None:
        args += ["-f", str(dockerfile)]
    args.append(str(context_dir))

    import time

    tail: deque[str] = deque(maxlen=60)
    log = BuildLog()
    started = time.time()
    env = dict(os.environ)
    step: list[str] = []  # the last step header: the step that failed, if one did
    with output.Progress(title, verbose=verbose) as progress:
        book = journal.current()

        from aishell import diagnose  # (lazy: builds only)

        def on_line(line: str) -> None:
            tail.append(diagnose.plain(line))
            before = len(log.created)
            log.feed(line)
            for made in log.created[before:]:  # so a killed aishell's next command removes it
                book.try_add("image", made, engine=engine.binary)
            match = re.search(_STEP, line)
            if match:
                step[:] = [line]
            if verbose:
                output.raw_err(line)
                return
            if match:
                done = match.group(1) or match.group(3) or match.group(5)
                total = match.group(2) or match.group(4) or match.group(6)
                progress.update(f"step {done}/{total}")

        try:
            with _terminate_as_interrupt():
                status = engine.stream(args, on_line, env=env)
            if status != 0:
                raise build_failure(
                    tag, status, step[0] if step else None, list(tail), verbose, network=network
                )
        except BaseException:
            with _terminate_as_interrupt():
                discard_partial(engine, log.created, since=started)
            raise
        finally:
            for made in log.created:  # tagged now, or removed: nothing left to collect
                book.done("image", made)


class BuildFailed(EngineError):
    """A build that failed; `step` is the header of the step that failed (None: before
    the first step)."""

    def __init__(
        self, message: str, *, step: str | None, hint: str | None, details: str | None
    ) -> None:
        super().__init__(message, hint=hint, details=details)
        self.step = step


def build_failure(
    tag: str,
    status: int,
    step: str | None,
    tail: list[str],
    verbose: bool,
    *,
    network: str | None = None,
) -> BuildFailed:
    """The error for a failed build: the cause when the output names one (an untrusted
    TLS certificate: the fix is ca_certificates), else the step that failed (and, for a
    build without network, that it had none)."""
    from aishell import diagnose  # (lazy: only a failed build reads its output)

    details = None if verbose else "\n".join(tail)
    tls = diagnose.tls_failure(tail)
    if tls is not None:
        return BuildFailed(
            f"building {tag} failed: {tls.cause}", step=step, hint=tls.hint, details=details
        )
    where = f" at {step.strip()}" if step else ""
    hint = "see the build output above; fix the cause and run the command again"
    if network == "none":
        hint = (
            "the build ran without network: under `network: none` or `allowlist` "
            "your Dockerfiles are built with --network none (docs/network.md); "
            "see the build output above"
        )
    return BuildFailed(
        f"building {tag} failed (exit {status}){where}", step=step, hint=hint, details=details
    )


def build_from_context(
    engine: Engine,
    context: BuildContext,
    *,
    tag: str,
    labels: Mapping[str, str],
    title: str,
    verbose: bool,
    no_cache: bool = False,
) -> None:
    import shutil
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix=BUILD_DIR_PREFIX))
    journal.current().try_add("directory", str(tmp), engine=engine.binary)
    try:
        context.write(tmp)
        build_image(
            engine,
            tag=tag,
            context_dir=tmp,
            build_args=context.build_args,
            labels=labels,
            title=title,
            verbose=verbose,
            no_cache=no_cache,
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        journal.current().done("directory", str(tmp))


BUILD_DIR_PREFIX = "aishell-build-"


def remove_build_dir(path: str) -> bool:
    """Remove a build's temporary context directory that a killed aishell left (only
    a directory of that name right in the temporary directory). True when gone."""
    import shutil
    import tempfile

    where = Path(path)
    if where.parent != Path(tempfile.gettempdir()) or not where.name.startswith(BUILD_DIR_PREFIX):
        return False
    shutil.rmtree(where, ignore_errors=True)
    return not where.exists()


# -- tiers ----------------------------------------------------------------------


def foundation_is_current(item: Mapping[str, Any] | None, context: BuildContext) -> bool:
    return bool(item) and labels_of(item).get(LABEL_FOUNDATION_HASH) == context.hash


def foundation_labels(content_hash: str) -> dict[str, str]:
    """What identifies a foundation image built from inputs with this hash."""
    return {LABEL_FOUNDATION_HASH: content_hash, LABEL_KIND: KIND_FOUNDATION}


def ensure_foundation(
    engine: Engine,
    context: BuildContext,
    *,
    holds: Holds,
    force: bool = False,
    verbose: bool = False,
) -> dict[str, Any]:
    """Make this home hold a foundation built from `context`: the one it holds when
    current, else an existing one with the same inputs, else a new build (always a new
    build with `force`). Returns the image's inspect data."""
    tag = holds.foundation
    current = inspect_images(engine, [tag]).get(tag)
    if not force and foundation_is_current(current, context):
        assert current is not None
        output.info(
            f"The foundation image {short_id(image_id(current))} ({tag}) is up to date "
            "(use --force to rebuild)"
        )
        return current
    wanted = foundation_labels(context.hash)
    if not force:
        found = adopt(engine, wanted, tag, what="foundation image")
        if found is not None:
            _let_go(current, found)
            return found
    base = context.build_args.get("BASE_IMAGE", DEFAULT_BASE_IMAGE)
    try:
        build_from_context(
            engine,
            context,
            tag=tag,
            labels=wanted,
            title=f"Building the foundation image {tag} (from {base})",
            verbose=verbose,
            no_cache=force,
        )
    except BuildFailed as exc:
        from aishell import diagnose  # (lazy: only a failed build reads its output)

        if exc.details and diagnose.pull_failure(exc.step, exc.details.splitlines()):
            raise EngineError(
                f"the base image {base} could not be pulled",
                hint="check your network or registry login, or set base_image in "
                "~/.aishell/config.yaml to an image you can pull",
                details=exc.details,
            ) from exc
        raise
    built = require(inspect_images(engine, [tag]).get(tag), tag)
    _let_go(current, built)
    return built


def _let_go(previous: Mapping[str, Any] | None, now: Mapping[str, Any]) -> None:
    if previous and not same_id(image_id(previous), image_id(now)):
        output.info(
            f"This home no longer holds its previous foundation image "
            f"{short_id(image_id(previous))}; 'aishell images prune' removes it once "
            "nothing else holds or uses it"
        )


def locate_foundation(
    engine: Engine, *, expected_hash: str, saved_hash: str = "", saved_id: str = ""
) -> dict[str, Any] | None:
    """Read-only: the foundation this home should hold when its hold tag is missing (a
    home set up by an older aishell, or a hold removed by hand): one built from the
    current inputs, else the one the saved setup recorded (by ID, then by hash)."""
    found = find_built(engine, foundation_labels(expected_hash))
    if found is None and saved_id:
        found = inspect_images(engine, [saved_id]).get(saved_id)
    if found is None and saved_hash and saved_hash != expected_hash:
        found = find_built(engine, foundation_labels(saved_hash))
    return found


class Tier(NamedTuple):
    """A base or extension tier: a Dockerfile in a directory, built on a parent image."""

    role: str  # the hold role: "base" or "ext-<hash>"
    kind: str  # the aishell.kind label: "base" or "extension"
    directory: Path
    dockerfile: Path
    title: str
    extra_labels: tuple[tuple[str, str], ...] = ()

    def context(self) -> BuildContext:
        return directory_context(self.directory, exclude=("config.yaml", "state.json"))

    def identity(self, ctx_hash: str, parent_id: str) -> dict[str, str]:
        """The labels that say what the image was built from (looked up for reuse)."""
        return {LABEL_TIER_HASH: ctx_hash, LABEL_TIER_PARENT: parent_id, LABEL_KIND: self.kind}

    def is_current(self, item: Mapping[str, Any] | None, parent_id: str, ctx_hash: str) -> bool:
        labels = labels_of(item)
        return (
            bool(item)
            and labels.get(LABEL_TIER_HASH) == ctx_hash
            and labels.get(LABEL_TIER_PARENT) == parent_id
        )

    def ensure(
        self,
        engine: Engine,
        *,
        holds: Holds,
        item: Mapping[str, Any] | None,
        parent_id: str,
        parents: Mapping[str, str],
        verbose: bool = False,
        force: bool = False,
        network: str | None = None,
    ) -> Mapping[str, Any] | None:
        """Make this home hold a current image of the tier: the held one when current,
        else one with the same labels already on the engine, else a new build (its FROM
        lines naming `parents` keys built on their IDs). Returns its inspect data."""
        tag = holds.tag(self.role)
        ctx_hash = self.context().hash
        if not force and self.is_current(item, parent_id, ctx_hash):
            return item
        identity = self.identity(ctx_hash, parent_id)
        if not force:
            found = adopt(engine, identity, tag, what=f"{self.kind} image")
            if found is not None:
                return found
        build_tier(
            engine,
            tag=tag,
            directory=self.directory,
            dockerfile=self.dockerfile,
            parents=parents,
            labels={**identity, **dict(self.extra_labels)},
            title=self.title,
            verbose=verbose,
            no_cache=force,
            network=network,
        )
        return inspect_images(engine, [tag]).get(tag)


def build_tier(
    engine: Engine,
    *,
    tag: str,
    directory: Path,
    dockerfile: Path,
    parents: Mapping[str, str],
    labels: Mapping[str, str],
    title: str,
    verbose: bool,
    no_cache: bool,
    network: str | None = None,
) -> None:
    """Build the user's Dockerfile with `aishell:foundation` / `aishell:base` in its FROM
    lines replaced by the parents' IDs (a rewritten copy passed with `-f`; the build
    context stays the user's directory)."""
    import tempfile

    try:
        text = dockerfile.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError as exc:
        raise AishellError(f"cannot read {dockerfile}: {exc.strerror}") from exc
    fd, name = tempfile.mkstemp(prefix="aishell-Dockerfile-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as fh:
            fh.write(substitute_parents(text, parents))
        build_image(
            engine,
            tag=tag,
            context_dir=directory,
            dockerfile=Path(name),
            labels=labels,
            title=title,
            verbose=verbose,
            no_cache=no_cache,
            network=network,
        )
    finally:
        os.unlink(name)


def base_tier(dockerfile: Path) -> Tier:
    """The global base built from `~/.aishell/Dockerfile` (FROM aishell:foundation)."""
    return Tier(
        role=ROLE_BASE,
        kind=KIND_BASE,
        directory=dockerfile.parent,
        dockerfile=dockerfile,
        title=f"Building the base image from {dockerfile}",
    )


def extension_tier(
    role: str, canonical_project: str, dockerfile: Path, *, shown: Path | None = None
) -> Tier:
    """A project's extension built from its `.aishell/Dockerfile` (FROM aishell:base).
    `shown`: the path to name in the progress line (the launch builds from the copy
    of `.aishell/` the user approved, see `trust`)."""
    return Tier(
        role=role,
        kind=KIND_EXTENSION,
        directory=dockerfile.parent,
        dockerfile=dockerfile,
        title=f"Building project image from {shown or dockerfile}",
        extra_labels=((LABEL_PROJECT, canonical_project),),
    )


def ensure_base(
    engine: Engine,
    *,
    holds: Holds,
    dockerfile: Path,
    foundation: Mapping[str, Any],
    base_item: Mapping[str, Any] | None,
    verbose: bool = False,
    force: bool = False,
    network: str | None = None,
) -> Mapping[str, Any] | None:
    """Make this home's base current: built from `dockerfile` when it exists, else the
    foundation itself (the base hold is then another tag of it). Returns the base
    image's inspect data (None if unknown)."""
    foundation_id = image_id(foundation)
    if dockerfile.is_file():
        return base_tier(dockerfile).ensure(
            engine,
            holds=holds,
            item=base_item,
            parent_id=foundation_id,
            parents={FOUNDATION_IMAGE: foundation_id},
            verbose=verbose,
            force=force,
            network=network,
        )
    if image_id(base_item) != foundation_id:
        engine.checked("tag", foundation_id, holds.base, what=f"tagging {holds.base}")
    return foundation


def require(item: Mapping[str, Any] | None, tag: str) -> dict[str, Any]:
    if not item:
        raise AishellError(
            f"the image {tag} does not exist",
            hint="run 'aishell setup' (add --with-<agent> for each agent you want)",
        )
    return dict(item)


def parent_names(foundation_id: str, base_id: str) -> dict[str, str]:
    """What `FROM aishell:foundation` / `FROM aishell:base` mean for this home."""
    return {FOUNDATION_IMAGE: foundation_id, BASE_IMAGE: base_id}


def build_network(mode: str) -> str | None:
    """The `--network` of builds of the user's Dockerfiles (global base, project
    extension) under a network policy mode: none for `none` and `allowlist` (the
    classic builder's RUN steps cannot reach the egress proxy's unix socket, and a
    build network would reach the host), the engine's default for `open`."""
    return None if mode == "open" else "none"
