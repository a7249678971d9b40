"""The one pure function that turns a launch into `docker run` arguments.

No I/O and no environment reads happen here: everything comes in through
`RunSpec` (what to start) and `HostFacts` (who is starting it). Secret values
never appear in the returned argv: variables whose value is ours to set are
passed as `-e NAME` with the value in `RunArgs.env`, the environment of the
engine CLI process; host variables are passed by name only.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, Literal

from aishell.constants import LABEL_MANAGED
from aishell.tuples import NamedTuple

# Variables that steer the engine CLI itself: setting them in its environment
# would change which engine it talks to or how. They are never secrets, so
# when a config sets one, it goes into argv as NAME=value instead.
ENGINE_CLI_VARIABLES: Final = frozenset(
    {
        "PATH",
        "HOME",
        "DOCKER_HOST",
        "DOCKER_CONFIG",
        "DOCKER_CONTEXT",
        "DOCKER_TLS_VERIFY",
        "DOCKER_CERT_PATH",
        "DOCKER_API_VERSION",
        "DOCKER_CONTENT_TRUST",
        "DOCKER_CONTENT_TRUST_SERVER",
        "DOCKER_DEFAULT_PLATFORM",
        "DOCKER_HIDE_LEGACY_COMMANDS",
        "BUILDKIT_PROGRESS",
        "DOCKER_BUILDKIT",
        "CONTAINER_HOST",
        "CONTAINERS_CONF",
        "CONTAINERS_STORAGE_CONF",
        "CONTAINERS_REGISTRIES_CONF",
        "XDG_RUNTIME_DIR",
        "TMPDIR",
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
    }
)

Mode = Literal["interactive", "exec", "detach"]


class Flavour(NamedTuple):
    """How the engine in use speaks: every Docker/Podman difference in `run` argv
    is decided here, from these facts (gathered by `client.Engine.flavour`)."""

    kind: str = "docker"  # "docker" or "podman"
    rootless: bool = False  # rootless Podman: map the host UID 1:1 (keep-id)
    selinux: bool = False  # SELinux enforcing: relabel bind mounts (shared)


DOCKER: Final = Flavour()


class HostFacts(NamedTuple):
    uid: int
    gid: int
    user: str
    home: str
    cwd: str
    stdin_tty: bool
    stdout_tty: bool
    term: str | None = None
    colorterm: str | None = None
    git_name: str | None = None
    git_email: str | None = None
    env: Mapping[str, str] = MappingProxyType({})

    @property
    def tty(self) -> bool:
        return self.stdin_tty and self.stdout_tty


class Bind(NamedTuple):
    source: str
    target: str
    readonly: bool = False


class RunSpec(NamedTuple):
    image: str
    command: tuple[str, ...]
    project_dir: str
    workdir: str
    mode: Mode = "exec"
    name: str | None = None
    labels: tuple[tuple[str, str], ...] = ()
    harness_volume: str | None = None
    binds: tuple[Bind, ...] = ()
    fixed_env: tuple[tuple[str, str], ...] = ()  # non-secret values set by aishell
    env: tuple[tuple[str, str | None], ...] = ()  # config/API keys: None = pass the host's
    ports: tuple[str, ...] = ()
    docker_args: tuple[str, ...] = ()
    pre_start: str | None = None
    tmux: bool = False
    network: str | None = None  # --network (policy none/allowlist); None: the default
    dns: str | None = None  # allowlist: a DNS server that answers nothing outside
    flavour: Flavour = DOCKER  # the engine that will run it (Docker/Podman differences)
    # Host-boundary hardening (security/hardening.py): a seccomp profile file that
    # replaces the engine's default, and capabilities taken away from container root.
    seccomp_profile: str | None = None
    cap_drop: tuple[str, ...] = ()


class RunArgs(NamedTuple):
    argv: tuple[str, ...]  # arguments after the engine binary
    env: dict[str, str]  # to add to the engine CLI's environment


def _csv_field(text: str) -> str:
    """Quote one `--mount` field the way the engine's CSV parser expects."""
    if any(ch in text for ch in ',"\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def mount_arg(bind: Bind, flavour: Flavour = DOCKER) -> str:
    fields = ["type=bind", f"source={bind.source}", f"target={bind.target}"]
    if bind.readonly:
        # Podman (4.x) knows only `ro` for volumes; it means the same for binds.
        fields.append("ro" if flavour.kind == "podman" else "readonly")
    if flavour.selinux and flavour.kind == "podman":
        # shared, not private: several containers use one project (and config dirs)
        fields.append("relabel=shared")
    return ",".join(_csv_field(f) for f in fields)


def bind_args(bind: Bind, flavour: Flavour = DOCKER) -> list[str]:
    """The argv for one bind mount. Docker's `--mount` cannot relabel for SELinux:
    there, `-v SRC:DST:z` is used when the paths allow it (no ':' or ',')."""
    if (
        flavour.selinux
        and flavour.kind != "podman"
        and not any(c in bind.source + bind.target for c in ":,")
    ):
        return ["-v", f"{bind.source}:{bind.target}:{'ro,' if bind.readonly else ''}z"]
    return ["--mount", mount_arg(bind, flavour)]


def engine_args(flavour: Flavour) -> list[str]:
    """Options the engine needs so that the entrypoint starts as container root and
    the host user's UID/GID are the same inside (files in the project are theirs)."""
    if flavour.kind == "podman" and flavour.rootless:
        # keep-id maps the host UID/GID to themselves; root inside is a subordinate
        # UID. The entrypoint must still start as root, then gosu drops to the UID.
        return ["--userns=keep-id", "--user", "0:0"]
    return []


def build_run_args(spec: RunSpec, host: HostFacts) -> RunArgs:
    flavour = spec.flavour
    argv: list[str] = ["run", "--rm", "--init", *engine_args(flavour)]
    child_env: dict[str, str] = {}
    if spec.seccomp_profile:
        argv += ["--security-opt", f"seccomp={spec.seccomp_profile}"]
    for cap in spec.cap_drop:
        argv += ["--cap-drop", cap]

    if spec.mode == "detach":
        # A terminal and an open stdin keep an interactive agent or shell alive
        # in the background until someone attaches.
        argv += ["--detach", "-it"]
    elif host.tty:
        argv.append("-it")
    else:
        argv.append("-i")

    if spec.name:
        argv += ["--name", spec.name]
    for key, value in ((LABEL_MANAGED, "1"), *spec.labels):
        argv += ["--label", f"{key}={value}"]

    argv += bind_args(Bind(spec.project_dir, spec.project_dir), flavour)
    argv += ["-w", spec.workdir]

    fixed: list[tuple[str, str]] = [
        ("LOCAL_UID", str(host.uid)),
        ("LOCAL_GID", str(host.gid)),
        ("LOCAL_HOME", host.home),
        ("LOCAL_USER", host.user),
        ("AISHELL_PROJECT", spec.project_dir),
        ("TERM", host.term or "xterm-256color"),
        ("COLORTERM", host.colorterm or "truecolor"),
    ]
    if host.git_name:
        fixed += [("GIT_AUTHOR_NAME", host.git_name), ("GIT_COMMITTER_NAME", host.git_name)]
    if host.git_email:
        fixed += [("GIT_AUTHOR_EMAIL", host.git_email), ("GIT_COMMITTER_EMAIL", host.git_email)]
    if spec.tmux:
        fixed.append(("AISHELL_TMUX", "1"))
    fixed += list(spec.fixed_env)
    for key, value in fixed:
        argv += ["-e", f"{key}={value}"]

    if spec.harness_volume:
        ro = "ro" if flavour.kind == "podman" else "readonly"
        argv += ["--mount", f"type=volume,source={spec.harness_volume},target=/tools,{ro}"]
    for bind in spec.binds:
        argv += bind_args(bind, flavour)

    for name, maybe in spec.env:
        if maybe is None:
            if name in host.env:
                argv += ["-e", name]
        elif name in ENGINE_CLI_VARIABLES:
            argv += ["-e", f"{name}={maybe}"]
        else:
            argv += ["-e", name]
            child_env[name] = maybe

    for port in spec.ports:
        argv += ["-p", port]

    if spec.network:
        argv += ["--network", spec.network]
    if spec.dns:
        argv += ["--dns", spec.dns, "--dns-opt", "timeout:1", "--dns-opt", "attempts:1"]
        argv += ["--sysctl", "net.ipv6.conf.all.disable_ipv6=1"]

    if spec.pre_start:
        argv += ["-e", "AISHELL_PRE_START"]
        child_env["AISHELL_PRE_START"] = spec.pre_start

    argv += list(spec.docker_args)
    argv.append(spec.image)
    argv += list(spec.command)
    return RunArgs(argv=tuple(argv), env=child_env)
