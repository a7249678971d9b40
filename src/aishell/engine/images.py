"""The image tiers: foundation, global base, project extension.

Each tier records in labels what it was built from (a content hash, and the
ID of the image it was built on), so a tier is rebuilt exactly when its
inputs change and never otherwise.
"""

from __future__ import annotations

import json
import os
import re
from collections import deque
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

from aishell import output
from aishell.constants import BASE_IMAGE, FOUNDATION_IMAGE, LABEL_KIND, LABEL_MANAGED
from aishell.engine.client import Engine
from aishell.errors import AishellError, ConfigError, EngineError
from aishell.hashing import files_hash

DEFAULT_BASE_IMAGE = "debian:trixie-slim"
NODE_VERSION = "24.21.0"
NPM_VERSION = "11.21.2"

LABEL_FOUNDATION_HASH = "aishell.foundation.hash"
LABEL_TIER_HASH = "aishell.tier.hash"  # hash of a base/extension's own inputs
LABEL_TIER_PARENT = "aishell.tier.parent"  # image ID it was built on
LABEL_PROJECT = "aishell.project"

TEMPLATE_FILES = (
    "Dockerfile",
    "entrypoint.sh",
    "aishell-run",
    "aishell-attach",
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
BOOKKEEPING_DIRS = frozenset({"cache", "logs", "locks"})
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
    try:
        items = json.loads(stdout) if stdout.strip() else []
    except json.JSONDecodeError:
        return {}
    found: dict[str, dict[str, Any]] = {}
    for item in items:
        tags = {_normalise_tag(t) for t in item.get("RepoTags") or []}
        for name in wanted:
            if _normalise_tag(name) in tags or item.get("Id") == name:
                found[name] = item
    return found


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


# -- building -----------------------------------------------------------------

# Docker's classic builder ("Step 3/12 : RUN"), BuildKit ("#5 [3/12] RUN"),
# Podman/Buildah ("STEP 3/12: RUN").
_STEP = re.compile(r"(?:^Step (\d+)/(\d+)\b|^#\d+ \[[^\]]*?(\d+)/(\d+)\]|^STEP (\d+)/(\d+):)")


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
) -> None:
    args = ["build", "-t", tag, "--label", f"{LABEL_MANAGED}=1"]
    for key, value in (labels or {}).items():
        args += ["--label", f"{key}={value}"]
    for key, value in (build_args or {}).items():
        args += ["--build-arg", f"{key}={value}"]
    if no_cache:
        args.append("--no-cache")
    if dockerfile is not None:
        args += ["-f", str(dockerfile)]
    args.append(str(context_dir))

    tail: deque[str] = deque(maxlen=60)
    env = dict(os.environ)
    with output.Progress(title, verbose=verbose) as progress:

        def on_line(line: str) -> None:
            tail.append(line)
            if verbose:
                output.raw_err(line)
                return
            match = _STEP.search(line)
            if match:
                done = match.group(1) or match.group(3) or match.group(5)
                total = match.group(2) or match.group(4) or match.group(6)
                progress.update(f"step {done}/{total}")

        try:
            status = engine.stream(args, on_line, env=env)
            if status != 0:
                raise EngineError(
                    f"building {tag} failed (exit {status})",
                    hint="see the build output above; fix the cause and run the command again",
                    details=None if verbose else "\n".join(tail),
                )
        except EngineError:
            raise


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

    tmp = Path(tempfile.mkdtemp(prefix="aishell-build-"))
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


# -- tiers ----------------------------------------------------------------------


def foundation_is_current(item: Mapping[str, Any] | None, context: BuildContext) -> bool:
    return bool(item) and labels_of(item).get(LABEL_FOUNDATION_HASH) == context.hash


def ensure_foundation(
    engine: Engine,
    context: BuildContext,
    *,
    force: bool = False,
    verbose: bool = False,
) -> bool:
    """Build `aishell:foundation` unless it is current. Returns True if it was built."""
    current = inspect_images(engine, [FOUNDATION_IMAGE]).get(FOUNDATION_IMAGE)
    if not force and foundation_is_current(current, context):
        output.info(f"Image {FOUNDATION_IMAGE} is up to date (use --force to rebuild)")
        return False
    base = context.build_args.get("BASE_IMAGE", DEFAULT_BASE_IMAGE)
    try:
        build_from_context(
            engine,
            context,
            tag=FOUNDATION_IMAGE,
            labels={LABEL_FOUNDATION_HASH: context.hash, LABEL_KIND: "foundation"},
            title=f"Building {FOUNDATION_IMAGE} (from {base})",
            verbose=verbose,
            no_cache=force,
        )
    except EngineError as exc:
        if exc.details and _looks_like_pull_failure(exc.details, base):
            raise EngineError(
                f"the base image {base} could not be pulled",
                hint="check your network or registry login, or set base_image in "
                "~/.aishell/config.yaml to an image you can pull",
                details=exc.details,
            ) from exc
        raise
    return True


def _looks_like_pull_failure(text: str, base: str) -> bool:
    low = text.lower()
    return (
        base.split(":")[0] in low
        and any(
            marker in low
            for marker in (
                "pull access denied",
                "not found",
                "manifest unknown",
                "dial tcp",
                "no such host",
                "failed to resolve",
                "connection refused",
            )
        )
        and "step 2/" not in low
    )


def image_id(item: Mapping[str, Any] | None) -> str:
    return str(item.get("Id", "")) if item else ""


class Tier(NamedTuple):
    """A base or extension tier: a Dockerfile in a directory, built on a parent image."""

    tag: str
    directory: Path
    dockerfile: Path
    parent_tag: str
    title: str
    extra_labels: tuple[tuple[str, str], ...] = ()

    def context(self) -> BuildContext:
        return directory_context(self.directory, exclude=("config.yaml", "state.json"))

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
        item: Mapping[str, Any] | None,
        parent_id: str,
        verbose: bool = False,
        force: bool = False,
    ) -> bool:
        ctx_hash = self.context().hash
        if not force and self.is_current(item, parent_id, ctx_hash):
            return False
        build_image(
            engine,
            tag=self.tag,
            context_dir=self.directory,
            dockerfile=self.dockerfile,
            labels={
                LABEL_TIER_HASH: ctx_hash,
                LABEL_TIER_PARENT: parent_id,
                **dict(self.extra_labels),
            },
            title=self.title,
            verbose=verbose,
            no_cache=force,
        )
        return True


def base_tier(dockerfile: Path) -> Tier:
    """`aishell:base` built from the global Dockerfile (`~/.aishell/Dockerfile`)."""
    return Tier(
        tag=BASE_IMAGE,
        directory=dockerfile.parent,
        dockerfile=dockerfile,
        parent_tag=FOUNDATION_IMAGE,
        title=f"Building {BASE_IMAGE} from {dockerfile}",
        extra_labels=((LABEL_KIND, "base"),),
    )


def extension_tier(tag: str, canonical_project: str, dockerfile: Path) -> Tier:
    """A project's `aishell:ext-<hash>` built from its `.aishell/Dockerfile`."""
    return Tier(
        tag=tag,
        directory=dockerfile.parent,
        dockerfile=dockerfile,
        parent_tag=BASE_IMAGE,
        title=f"Building project image {tag}",
        extra_labels=((LABEL_KIND, "extension"), (LABEL_PROJECT, canonical_project)),
    )


def ensure_base(
    engine: Engine,
    *,
    dockerfile: Path,
    foundation_id: str,
    base_item: Mapping[str, Any] | None,
    verbose: bool = False,
    force: bool = False,
) -> Mapping[str, Any] | None:
    """Make `aishell:base` current: built from `dockerfile` when it exists, else another
    name for the foundation. Returns the base image's inspect data (None if unknown)."""
    if dockerfile.is_file():
        tier = base_tier(dockerfile)
        if tier.ensure(
            engine, item=base_item, parent_id=foundation_id, verbose=verbose, force=force
        ):
            return inspect_images(engine, [BASE_IMAGE]).get(BASE_IMAGE)
        return base_item
    if image_id(base_item) != foundation_id:
        ensure_base_alias(engine, foundation_id, None)
        return inspect_images(engine, [FOUNDATION_IMAGE]).get(FOUNDATION_IMAGE)
    return base_item


def ensure_base_alias(
    engine: Engine, foundation_id: str, base_item: Mapping[str, Any] | None
) -> None:
    """Without a global Dockerfile, `aishell:base` is another name for the foundation."""
    if image_id(base_item) == foundation_id:
        return
    engine.checked("tag", FOUNDATION_IMAGE, BASE_IMAGE, what=f"tagging {BASE_IMAGE}")


def require(item: Mapping[str, Any] | None, tag: str) -> Mapping[str, Any]:
    if not item:
        raise AishellError(
            f"the image {tag} does not exist",
            hint="run 'aishell setup' (add --with-<agent> for each agent you want)",
        )
    return item
