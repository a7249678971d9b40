"""The egress proxy that enforces `network: {mode: allowlist}` (see `aishell.netpolicy`).

Per allowlist session:
- an internal engine network `aishell-net-<session>` (no route out);
- a proxy container `aishell-proxy-<session>` (Debian's tinyproxy, an image built
  from the configured base image, held by this home as `aishell-home-<id>:proxy`
  and run by ID, like the other tiers: see `engine.images`) on the default bridge for
  egress and on the internal network under the alias `aishell-proxy`; it admits
  only the allowlisted hosts (HTTP by URL, HTTPS by `CONNECT host:port`) and logs
  every decision to `~/.aishell/logs/network/<session>/decisions.log`, which is
  mounted into the proxy only;
- the agent container on the internal network only, with the proxy variables set,
  a DNS server that answers nothing outside and IPv6 disabled. Without the proxy
  there is no route: it fails closed.

`egress()` is the one way to run a session under a plan: it sets the proxy up, and
takes it down when the session ends (unless the caller says the agent still runs).
Those of detached sessions are collected by `collect_orphans` once their agent
container is gone.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from aishell import paths
from aishell.constants import LABEL_KIND, LABEL_MANAGED
from aishell.engine import images
from aishell.netpolicy import LABEL_SESSION, PROXY_ALIAS, Plan, Policy, proxy_settings

if TYPE_CHECKING:
    from collections.abc import Iterator

    from aishell.engine.client import Engine

LABEL_CREATED = "aishell.created"
LABEL_PROXY_HASH = "aishell.proxy.hash"
KIND_PROXY = "proxy"
KIND_EGRESS_NET = "egress"
ORPHAN_GRACE_SECONDS = 120
# For tests only: comma-separated engine networks the proxy joins as well (where the
# test servers `allowed.test` / `denied.test` live).
EXTRA_NETWORKS_ENV = "AISHELL_PROXY_EXTRA_NETWORKS"

PROXY_TEMPLATE_FILES = ("Dockerfile", "tinyproxy.conf", "denied.html", "start.sh")


def proxy_run_args(
    plan: Plan, *, image: str, log_dir: str, uid: int, gid: int, created: int
) -> list[str]:
    argv = [
        "run", "--detach", "--rm", "--init",
        "--name", plan.proxy_name,
        "--label", f"{LABEL_MANAGED}=1",
        "--label", f"{LABEL_KIND}={KIND_PROXY}",
        "--label", f"{LABEL_SESSION}={plan.session}",
        "--label", f"{LABEL_CREATED}={created}",
        "--user", f"{uid}:{gid}",
        "--read-only",
        "--tmpfs", "/run/aishell-proxy:rw,mode=1777,size=1m",
        "--cap-drop", "ALL",
        "--security-opt", "no-new-privileges",
        "--mount", f"type=bind,source={log_dir},target=/log",
        "-e", f"AISHELL_SESSION={plan.session}",
    ]  # fmt: skip
    for key, value in proxy_settings(plan.policy).items():
        argv += ["-e", f"{key}={value}"]
    argv.append(image)
    return argv


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
            title="Building the egress proxy image (tinyproxy)",
            verbose=verbose,
        )
        found = images.require(images.inspect_images(engine, [tag]).get(tag), tag)
    return images.image_id(found)


# -- session lifecycle ----------------------------------------------------------


def log_dir_for(session: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return paths.logs_dir() / "network" / f"{stamp}-{session}"


def start(
    engine: Engine,
    plan: Plan,
    *,
    base_image: str | None,
    uid: int,
    gid: int,
    verbose: bool = False,
) -> Path:
    """Create the internal network and start the proxy; returns the log directory.
    On any failure everything made so far is removed and an error raised: the agent
    is never started without its proxy."""
    collect_orphans(engine)
    image = ensure_proxy_image(engine, base_image, verbose=verbose)
    log_dir = log_dir_for(plan.session or "")
    log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    (log_dir / "decisions.log").touch(mode=0o600)
    created = int(time.time())
    try:
        engine.checked(
            "network", "create", "--internal",
            "--label", f"{LABEL_MANAGED}=1",
            "--label", f"{LABEL_KIND}={KIND_EGRESS_NET}",
            "--label", f"{LABEL_SESSION}={plan.session}",
            "--label", f"{LABEL_CREATED}={created}",
            str(plan.network),
            what=f"creating the network {plan.network}",
        )  # fmt: skip
        engine.checked(
            *proxy_run_args(
                plan, image=image, log_dir=str(log_dir), uid=uid, gid=gid, created=created
            ),
            what="starting the egress proxy",
        )
        engine.checked(
            "network",
            "connect",
            "--alias",
            PROXY_ALIAS,
            str(plan.network),
            plan.proxy_name,
            what="connecting the egress proxy",
            hint=f"the proxy may have failed to start; see {log_dir / 'decisions.log'}",
        )
        for extra in filter(None, os.environ.get(EXTRA_NETWORKS_ENV, "").split(",")):
            engine.checked(
                "network",
                "connect",
                extra.strip(),
                plan.proxy_name,
                what=f"connecting the egress proxy to {extra}",
            )
    except BaseException:
        stop(engine, plan)
        raise
    return log_dir


def stop(engine: Engine, plan: Plan) -> None:
    """Remove the session's proxy and network (quietly; repeated calls are harmless)."""
    engine.capture("rm", "-f", plan.proxy_name)
    for _ in range(20):
        result = engine.capture("network", "rm", str(plan.network))
        low = result.stderr.lower()
        if result.ok or "no such network" in low or "not found" in low:
            return
        time.sleep(0.25)


class Egress:
    """A running egress setup: set `keep` when the agent outlives this process
    (detached), so its proxy stays until `collect_orphans` finds it ended."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
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
) -> Iterator[Egress | None]:
    """Run a session under `plan`: for an allowlist session, the proxy and internal
    network exist inside the block and are removed after it (unless `keep` was set).
    Open and `none` sessions need nothing: yields None."""
    if plan is None or not plan.session:
        yield None
        return
    start(engine, plan, base_image=base_image, uid=uid, gid=gid, verbose=verbose)
    setup = Egress(plan)
    try:
        yield setup
    finally:
        if not setup.keep:
            stop(engine, plan)


def collect_orphans(engine: Engine, *, now: float | None = None) -> list[str]:
    """Remove proxies and networks of sessions whose agent container is gone (detached
    sessions that ended). Sessions younger than the grace period are left alone (their
    agent may be starting). Returns the sessions removed."""
    nets = engine.capture(
        "network", "ls", "--filter", f"label={LABEL_KIND}={KIND_EGRESS_NET}",
        "--format", '{{.Name}}\t{{.Label "' + LABEL_SESSION + '"}}\t{{.Label "'
        + LABEL_CREATED + '"}}',
    )  # fmt: skip
    if not nets.ok or not nets.stdout.strip():
        return []
    conts = engine.capture(
        "ps", "-a", "--filter", f"label={LABEL_SESSION}",
        "--format", '{{.Label "' + LABEL_SESSION + '"}}\t{{.Label "' + LABEL_KIND + '"}}',
    )  # fmt: skip
    if not conts.ok:
        return []
    live = set()
    for line in conts.stdout.splitlines():
        session, _, kind = line.partition("\t")
        if kind != KIND_PROXY:
            live.add(session)
    current = time.time() if now is None else now
    try:  # for tests: AISHELL_NETWORK_ORPHAN_GRACE (seconds)
        grace = int(os.environ.get("AISHELL_NETWORK_ORPHAN_GRACE", ORPHAN_GRACE_SECONDS))
    except ValueError:
        grace = ORPHAN_GRACE_SECONDS
    removed = []
    for line in nets.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) != 3:
            continue
        name, session, created = parts
        try:
            age = current - int(created)
        except ValueError:
            age = ORPHAN_GRACE_SECONDS + 1
        if session and session not in live and age > grace:
            stop(engine, Plan(Policy("allowlist"), session=session, network=name))
            removed.append(session)
    return removed
