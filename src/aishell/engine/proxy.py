"""The egress proxy that enforces `network: {mode: allowlist}` (see `aishell.netpolicy`).

One long-lived proxy container per aishell home, `aishell-egress-<homeid>` (Debian's
Squid with peek-and-splice, socat and inotify-tools; an image built from the
configured base image, held by this home as `aishell-home-<id>:proxy` and run by ID,
like the other tiers: see `engine.images`), serves every allowlist session of the
home. It is started by the first allowlist launch and reused by the later ones.

Per session `<id>`, aishell writes on the host, under `~/.aishell/egress/`:
- `sessions/<id>/policy`: the session's allowlist (the proxy has this directory
  mounted; no sandbox ever has it);
- `sockets/<id>/`: an empty directory, mounted read-only into that session's sandbox
  only, in which the proxy (noticing the new session through inotify: no engine call
  on the launch path) creates `proxy.sock` (to Squid, from a loopback source address
  of the session's own, by which Squid's policy helper finds the session's policy)
  and `alive.sock` (held by the sandbox's entrypoint for as long as the sandbox lives:
  its end tears the session down, also for detached sessions).

The sandbox itself runs with `--network none`: its only way out is that socket. Every
decision goes to `~/.aishell/logs/network/<id>/decisions.log` (mounted into the proxy
only). `egress()` is the one way to run a session under a plan.
"""

from __future__ import annotations

import contextlib
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aishell import netpolicy, paths
from aishell.constants import LABEL_KIND, LABEL_MANAGED
from aishell.engine import images
from aishell.engine.run_args import Bind, bind_args
from aishell.errors import AishellError, EngineError
from aishell.tuples import NamedTuple

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from aishell.engine.client import Engine
    from aishell.netpolicy import Plan

LABEL_PROXY_HASH = "aishell.proxy.hash"
LABEL_HOME = "aishell.home"
LABEL_EXTRA = "aishell.proxy.extra"
KIND_PROXY = "proxy"
# For tests only: comma-separated engine networks the proxy joins as well (where the
# test servers `allowed.test` / `denied.test` live).
EXTRA_NETWORKS_ENV = "AISHELL_PROXY_EXTRA_NETWORKS"
READY_TIMEOUT = 90.0  # seconds for a new proxy container to answer
# Seconds without a session after which the proxy stops by itself (default 1800).
IDLE_ENV = "AISHELL_PROXY_IDLE"

PROXY_TEMPLATE_FILES = (
    "Dockerfile",
    "squid.conf",
    "egress.sh",
    "policy-helper",
    "log-splitter",
    "ERR_AISHELL_DENIED",
)


# -- where things are -------------------------------------------------------------


def egress_dir() -> Path:
    return paths.egress_dir()


def log_dir_for(session: str) -> Path:
    return paths.logs_dir() / "network" / session


def container_name(home_id: str) -> str:
    return f"aishell-egress-{home_id}"


def extra_networks(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    env = os.environ if environ is None else environ
    names = (n.strip() for n in env.get(EXTRA_NETWORKS_ENV, "").split(","))
    return tuple(sorted({n for n in names if n}))


# -- the proxy image ------------------------------------------------------------


def proxy_context(base_image: str | None) -> images.BuildContext:
    pkg = Path(__file__).resolve().parent.parent / "templates" / "proxy"
    files = {name: (pkg / name).read_bytes() for name in PROXY_TEMPLATE_FILES}
    return images.BuildContext(
        files=files, build_args={"BASE_IMAGE": base_image or images.DEFAULT_BASE_IMAGE}
    )


def ensure_proxy_image(engine: Engine, base_image: str | None, *, verbose: bool = False) -> str:
    """This home's proxy image, held as `aishell-home-<id>:proxy`: the held one when its
    inputs are unchanged, else one with the same inputs on the engine, else a new build.
    Returns its image ID."""
    tag = images.Holds(paths.home_id()).proxy
    context = proxy_context(base_image)
    item = images.inspect_images(engine, [tag]).get(tag)
    labels = {LABEL_PROXY_HASH: context.hash, LABEL_KIND: KIND_PROXY}
    if item and images.labels_of(item).get(LABEL_PROXY_HASH) == context.hash:
        return images.image_id(item)
    found = images.adopt(engine, labels, tag, what="egress proxy image")
    if found is None:
        images.build_from_context(
            engine,
            context,
            tag=tag,
            labels=labels,
            title="Building the egress proxy image (Squid)",
            verbose=verbose,
        )
        found = images.require(images.inspect_images(engine, [tag]).get(tag), tag)
    return images.image_id(found)


# -- the proxy container ------------------------------------------------------------


def host_addresses(
    fib_trie: str = "/proc/net/fib_trie", if_inet6: str = "/proc/net/if_inet6"
) -> list[str]:
    """This host's own IPv4 and IPv6 addresses (every interface, bridges included, not
    loopback): the proxy refuses them as destinations, so an allowlisted name that
    resolves to this host still does not reach it."""
    found: set[str] = set()
    with contextlib.suppress(OSError):
        previous = ""
        for line in Path(fib_trie).read_text().splitlines():
            if "/32 host LOCAL" in line and previous:
                found.add(previous)
            parts = line.split()
            previous = parts[-1] if len(parts) >= 2 and parts[0].endswith("--") else ""
    with contextlib.suppress(OSError):
        for line in Path(if_inet6).read_text().splitlines():
            raw = line.split()[0] if line.split() else ""
            if len(raw) == 32:
                found.add(":".join(raw[i : i + 4] for i in range(0, 32, 4)))
    return sorted(a for a in found if not a.startswith("127.") and a != "0000:" * 7 + "0001")


class ProxyUser(NamedTuple):
    """Who the proxy runs as: the host user's own UID (files it writes are theirs), or
    (namespace) root with only the capabilities to start Squid as nobody."""

    args: tuple[str, ...]
    tmpfs: str  # options of its private /run/aishell-proxy


def proxy_user(engine: Engine, uid: int, gid: int) -> ProxyUser:
    drop = ("--cap-drop", "ALL")
    as_root = (*drop, "--cap-add", "SETUID", "--cap-add", "SETGID", "--cap-add", "KILL")
    tmpfs = "rw,size=16m,mode=0755"
    if engine.rootless:
        return ProxyUser(as_root, tmpfs)  # root in the user namespace: the host user
    if uid == 0:
        return ProxyUser(("--user", "0:0", *as_root), tmpfs)
    return ProxyUser(
        ("--user", f"{uid}:{gid}", *drop), f"rw,size=16m,mode=0700,uid={uid},gid={gid}"
    )


def proxy_create_args(
    engine: Engine,
    *,
    name: str,
    image: str,
    home_id: str,
    content_hash: str,
    extras: tuple[str, ...],
    uid: int,
    gid: int,
    egress: str,
    logs: str,
    host_addrs: list[str],
) -> list[str]:
    flavour = engine.flavour
    user = proxy_user(engine, uid, gid)
    argv = [
        "create", "--init", "--rm",
        "--name", name,
        "--label", f"{LABEL_MANAGED}=1",
        "--label", f"{LABEL_KIND}={KIND_PROXY}",
        "--label", f"{LABEL_HOME}={home_id}",
        "--label", f"{LABEL_PROXY_HASH}={content_hash}",
        "--label", f"{LABEL_EXTRA}={','.join(extras)}",
        *user.args,
        "--read-only",
        "--tmpfs", f"/run/aishell-proxy:{user.tmpfs}",
        "--security-opt", "no-new-privileges",
        "--pids-limit", "4096",
        *bind_args(Bind(egress, "/egress"), flavour),
        *bind_args(Bind(logs, "/logs"), flavour),
        "-e", f"AISHELL_PROXY_HOST_ADDRESSES={' '.join(host_addrs)}",
    ]  # fmt: skip
    idle = os.environ.get(IDLE_ENV, "")
    if idle.isdigit():
        argv += ["-e", f"AISHELL_PROXY_IDLE={idle}"]
    argv.append(image)
    return argv


def _inspect(engine: Engine, name: str) -> dict[str, Any] | None:
    result = engine.inspect_many(("container", [name]))[0]
    items = images.parse_inspect_list(result.stdout) if result.ok else []
    return items[0] if items else None


def _is_current(item: Mapping[str, Any] | None, content_hash: str, extras: tuple[str, ...]) -> bool:
    if not item or not (item.get("State") or {}).get("Running"):
        return False
    labels = (item.get("Config") or {}).get("Labels") or {}
    return bool(
        labels.get(LABEL_PROXY_HASH) == content_hash
        and labels.get(LABEL_EXTRA, "") == ",".join(extras)
    )


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    import fcntl

    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_proxy(
    engine: Engine, *, base_image: str | None, uid: int, gid: int, verbose: bool = False
) -> None:
    """This home's egress proxy, running and current. The usual case costs one
    inspection; otherwise (first allowlist launch, proxy gone or stopped, aishell
    upgraded) it is (re)started, and an error is raised unless it answers."""
    home = paths.home_id()
    name = container_name(home)
    context_hash = proxy_context(base_image).hash
    extras = extra_networks()
    if _is_current(_inspect(engine, name), context_hash, extras):
        return
    root = egress_dir()
    logs = paths.logs_dir() / "network"
    try:
        for sub in ("sessions", "sockets"):
            (root / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(root, 0o700)
        logs.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise AishellError(
            f"cannot prepare {exc.filename or root}: {exc.strerror}",
            hint=f"{root} and {logs} must be directories you own; the sandbox was not started",
        ) from exc
    with _locked(root / ".lock"):
        if _is_current(_inspect(engine, name), context_hash, extras):
            return  # another launch started it meanwhile
        image = ensure_proxy_image(engine, base_image, verbose=verbose)
        engine.capture("rm", "-f", name)
        for stale in ("ready", "proxy.log"):
            with contextlib.suppress(FileNotFoundError):
                (root / stale).unlink()
        created = engine.checked(
            *proxy_create_args(
                engine,
                name=name,
                image=image,
                home_id=home,
                content_hash=context_hash,
                extras=extras,
                uid=uid,
                gid=gid,
                egress=str(root),
                logs=str(logs),
                host_addrs=host_addresses(),
            ),
            what="creating the egress proxy",
        )
        ident = created.stdout.strip()
        for network in extras:
            engine.checked(
                "network",
                "connect",
                network,
                name,
                what=f"connecting the egress proxy to {network}",
            )
        engine.checked("start", name, what="starting the egress proxy")
        _wait_ready(engine, name, ident, root)


def _wait_ready(engine: Engine, name: str, ident: str, root: Path) -> None:
    """Wait until the new proxy says it serves sessions (it writes its hostname, the
    container's short ID, into `ready`); fail with its own words (`proxy.log`) if it
    stops."""
    marker = root / "ready"
    deadline = time.monotonic() + READY_TIMEOUT
    checks = 0
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if ident.startswith(marker.read_text().strip() or "-"):
                return
        checks += 1
        if checks % 20 == 0:
            item = _inspect(engine, name)
            if not item or not (item.get("State") or {}).get("Running"):
                break
        time.sleep(0.05)
    try:
        lines = [line for line in (root / "proxy.log").read_text().splitlines() if line.strip()]
    except OSError:
        lines = []
    said = [line for line in lines if "aishell-egress:" in line or "FATAL" in line] or lines[-5:]
    raise EngineError(
        "the egress proxy did not start: "
        + (said[-1].split("aishell-egress: ", 1)[-1] if said else "it did not answer"),
        hint=f"see {root / 'proxy.log'}; the sandbox was not started (no network "
        "without the proxy)",
        details="\n".join(said) or None,
    )


# -- sessions -------------------------------------------------------------------


def _stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def open_session(plan: Plan, *, project: str, container: str) -> Path:
    """Register the session with the proxy (files only: the proxy notices them) and
    start its decision log; returns the log file."""
    session = plan.session or ""
    root = egress_dir()
    sockets = Path(plan.socket_dir or root / "sockets" / session)
    sockets.mkdir(mode=0o700, parents=False, exist_ok=False)
    log = log_dir_for(session) / "decisions.log"
    log.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    allow = ", ".join(str(p) for p in plan.policy.allow) or "(nothing)"
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as fh:
        fh.write(
            f"{_stamp()} INFO {session} session opened: project {project} container "
            f"{container}\n{_stamp()} INFO {session} allow: {allow}\n"
        )
    staging = root / "sessions" / f".new-{session}"
    staging.mkdir(mode=0o700)
    (staging / "policy").write_text(
        netpolicy.policy_file(plan.policy, session=session, project=project, container=container)
    )
    os.rename(staging, root / "sessions" / session)
    return log


def close_session(plan: Plan) -> None:
    """End the session (the proxy notices its directory is gone and tears it down)."""
    import shutil

    session = plan.session or ""
    root = egress_dir()
    shutil.rmtree(root / "sessions" / session, ignore_errors=True)


class Egress:
    """A running egress session: set `keep` when the agent outlives this process
    (detached); its session then ends with its sandbox."""

    def __init__(self, plan: Plan, log: Path) -> None:
        self.plan = plan
        self.log = log
        self.keep = False


@contextmanager
def egress(
    engine: Engine,
    plan: Plan | None,
    *,
    base_image: str | None,
    uid: int,
    gid: int,
    verbose: bool = False,
    project: str = "-",
    container: str = "-",
) -> Iterator[Egress | None]:
    """Run a session under `plan`: for an allowlist session, this home's proxy runs and
    the session is registered inside the block, and removed after it (unless `keep`
    was set; a process that replaces itself with the engine CLI never gets here: the
    sandbox's end closes the session). Open and `none` sessions need nothing."""
    if plan is None or not plan.session:
        yield None
        return
    ensure_proxy(engine, base_image=base_image, uid=uid, gid=gid, verbose=verbose)
    try:
        log = open_session(plan, project=project, container=container)
    except OSError as exc:
        raise AishellError(
            f"cannot register the session with the egress proxy: {exc.strerror} ({exc.filename})",
            hint=f"{egress_dir()} must be a directory you own; the sandbox was not started",
        ) from exc
    setup = Egress(plan, log)
    try:
        yield setup
    finally:
        if not setup.keep:
            close_session(plan)


def describe_proxy(engine: Engine) -> str:
    """One line about this home's proxy, for `aishell check`."""
    item = _inspect(engine, container_name(paths.home_id()))
    if item is None:
        return "not running (started by the first allowlist launch)"
    state = (item.get("State") or {}).get("Status") or "unknown"
    return f"{container_name(paths.home_id())} {state}"
