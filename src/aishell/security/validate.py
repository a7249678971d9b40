"""Validation of `docker_args` and mounts: options that weaken the sandbox.

Pure functions, no I/O. The findings are advisory: the caller prints them (see
`render`) before every launch and in `aishell check`; they never stop a run, and
`--unsafe` does not silence them. See docs/validation.md for the full list and
the reasoning behind it.

`docker_args` are parsed as tokens, the way the docker (and podman) CLI parses
them: every spelling of an option is recognised (`--opt value`, `--opt=value`,
short forms and bundles such as `-itv SRC:DST`), and the value of an option that
takes one is never mistaken for an option (`-e X=--privileged` is an environment
variable, not `--privileged`).

Host paths are judged by what they are, not by how they are spelled: the caller
resolves them (`realpath`: symlinks followed, `~` and `..` normalised; that is I/O,
see `security/hostpaths.py`) and passes the results in as `real`; a path is flagged
when its spelling or its real path is dangerous. `host_paths` lists the paths a
config names, for the caller to resolve.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping, Sequence

from aishell.tuples import NamedTuple

__all__ = [
    "DANGEROUS_CAPABILITIES",
    "ENGINE_ENDPOINT_VARIABLES",
    "Danger",
    "check_docker_args",
    "check_env",
    "check_mounts",
    "check_project_root",
    "host_paths",
    "leaves_project",
    "render",
]

SOURCE_DOCKER_ARGS = "docker_args"
SOURCE_MOUNTS = "mounts"
SOURCE_ENV = "env"
SOURCE_PROJECT = "project"

#: Variables that point a container engine client at an engine: set inside the
#: sandbox, they hand the agent whatever engine they name.
ENGINE_ENDPOINT_VARIABLES = frozenset({"DOCKER_HOST", "CONTAINER_HOST"})

RENDER_HEADER = "Security notice: options that weaken the sandbox"
RENDER_FOOTER = (
    "These warnings are advisory: aishell starts the container anyway."
    " Remove the options unless you need them."
)


class Danger(NamedTuple):
    """One option or mount that weakens the sandbox."""

    what: str  # the offending option or path as the user wrote it
    why: str  # one line: what the agent gains
    source: str  # "docker_args" or "mounts"


# --------------------------------------------------------------------------------------
# Capabilities
# --------------------------------------------------------------------------------------

#: Capabilities whose addition is flagged, with the reason. The set holds the capabilities
#: that enable a known container escape, act on the host kernel or on non-namespaced host
#: state, or defeat aishell's own network policy. Capabilities in Docker's default set
#: (CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID, SETPCAP, SETFCAP,
#: NET_BIND_SERVICE, NET_RAW, SYS_CHROOT, MKNOD, AUDIT_WRITE) are not flagged: adding
#: them changes nothing under Docker, and MKNOD's device nodes stay unusable behind the
#: device cgroup.
DANGEROUS_CAPABILITIES: dict[str, str] = {
    "ALL": "grants every Linux capability, nearly the same as --privileged",
    "SYS_ADMIN": "allows mount() and many other root-only operations:"
    " the classic container-escape capability",
    "SYS_MODULE": "allows loading kernel modules: full control of the host kernel",
    "SYS_RAWIO": "allows raw I/O port and memory access on the host",
    "SYS_PTRACE": "allows tracing and reading the memory of other processes"
    " (host processes too, with --pid host)",
    "DAC_READ_SEARCH": "allows open_by_handle_at(), which the 'shocker' escape uses"
    " to read any host file",
    "NET_ADMIN": "allows reconfiguring the container's network (routes, firewall),"
    " so network restrictions can be undone",
    "BPF": "allows loading eBPF programs, which can read kernel memory",
    "PERFMON": "allows system-wide performance monitoring and eBPF tracing of the host",
    "SYS_BOOT": "allows reboot() and kexec_load(), which act on the host kernel",
    "SYS_TIME": "allows changing the host's clock (time is not namespaced)",
    "SYSLOG": "allows reading the host kernel log, which leaks kernel addresses",
    "MAC_ADMIN": "allows changing the host's mandatory access control (AppArmor/SELinux) policy",
    "MAC_OVERRIDE": "allows overriding the host's mandatory access control policy",
    "AUDIT_CONTROL": "allows changing the host's kernel audit rules (audit is not namespaced)",
}


def _normalise_capability(name: str) -> str:
    cap = name.strip().upper()
    if cap.startswith("CAP_"):
        cap = cap[4:]
    return cap


# --------------------------------------------------------------------------------------
# The docker/podman `run` option table
# --------------------------------------------------------------------------------------

#: Long options that take a value (docker run, plus podman run's own). Anything not in
#: this table and not in `_LONG_FLAGS` is unknown: it does not consume the next token.
_LONG_WITH_VALUE: frozenset[str] = frozenset(
    {
        # docker run
        "add-host", "annotation", "attach", "blkio-weight", "blkio-weight-device",
        "cap-add", "cap-drop", "cgroup-parent", "cgroupns", "cidfile", "cpu-count",
        "cpu-percent", "cpu-period", "cpu-quota", "cpu-rt-period", "cpu-rt-runtime",
        "cpu-shares", "cpus", "cpuset-cpus", "cpuset-mems", "detach-keys", "device",
        "device-cgroup-rule", "device-read-bps", "device-read-iops", "device-write-bps",
        "device-write-iops", "dns", "dns-opt", "dns-option", "dns-search", "domainname",
        "entrypoint", "env", "env-file", "expose", "gpus", "group-add", "health-cmd",
        "health-interval", "health-retries", "health-start-interval",
        "health-start-period", "health-timeout", "hostname", "io-maxbandwidth",
        "io-maxiops", "ip", "ip6", "ipc", "isolation", "kernel-memory", "label",
        "label-file", "link", "link-local-ip", "log-driver", "log-opt", "mac-address",
        "memory", "memory-reservation", "memory-swap", "memory-swappiness", "mount",
        "name", "net", "net-alias", "network", "network-alias", "oom-score-adj", "pid",
        "pids-limit", "platform", "publish", "pull", "restart", "runtime",
        "security-opt", "shm-size", "stop-signal", "stop-timeout", "storage-opt",
        "sysctl", "tmpfs", "ulimit", "user", "userns", "uts", "volume", "volume-driver",
        "volumes-from", "workdir",
        # podman run
        "arch", "authfile", "cert-dir", "cgroup-conf", "cgroups", "chrootdirs",
        "conmon-pidfile", "creds", "decryption-key", "env-merge", "gidmap", "group-entry",
        "health-log-destination", "health-max-log-count", "health-max-log-size",
        "health-on-failure", "health-startup-cmd", "health-startup-interval",
        "health-startup-retries", "health-startup-success", "health-startup-timeout",
        "hostuser", "image-volume", "init-path", "os", "passwd-entry", "personality",
        "pidfile", "pod", "pod-id-file", "preserve-fd", "preserve-fds", "rdt-class",
        "requires", "retry", "retry-delay", "sdnotify", "seccomp-policy", "secret",
        "shm-size-systemd", "subgidname", "subuidname", "systemd", "timeout", "tz",
        "uidmap", "umask", "unsetenv", "variant",
    }
)  # fmt: skip

#: Long boolean options (`--opt` or `--opt=true|false`; never consume the next token).
_LONG_FLAGS: frozenset[str] = frozenset(
    {
        "detach", "disable-content-trust", "help", "init", "interactive",
        "no-healthcheck", "oom-kill-disable", "privileged", "publish-all", "quiet",
        "read-only", "rm", "sig-proxy", "tty", "use-api-socket",
        # podman run
        "env-host", "http-proxy", "no-hosts", "passwd", "read-only-tmpfs", "replace",
        "rmi", "tls-verify",
    }
)  # fmt: skip

#: Short options: those that take a value, and boolean ones (which can be bundled: -it).
_SHORT_WITH_VALUE: dict[str, str] = {
    "a": "attach",
    "c": "cpu-shares",
    "e": "env",
    "h": "hostname",
    "l": "label",
    "m": "memory",
    "p": "publish",
    "u": "user",
    "v": "volume",
    "w": "workdir",
}
_SHORT_FLAGS: dict[str, str] = {
    "d": "detach",
    "i": "interactive",
    "t": "tty",
    "P": "publish-all",
    "q": "quiet",
}

_ALIASES: dict[str, str] = {"net": "network", "net-alias": "network-alias"}

# Go's strconv.ParseBool: anything else is rejected by docker; we treat it as true.
_FALSE_WORDS = frozenset({"0", "f", "false"})


class _Option(NamedTuple):
    name: str  # canonical long name, e.g. "volume"
    value: str  # "true" for a bare boolean flag
    written: str  # as the user wrote it, e.g. "-v /:/host" or "--cap-add=SYS_ADMIN"


def _join(option: str, value: str) -> str:
    """`option value` as the user would type it: the value quoted only when it has to be."""
    if value and not any(ch.isspace() or ch in "\"'" for ch in value):
        return f"{option} {value}"
    import shlex  # (lazy: only a message with such a value needs it)

    return f"{option} {shlex.quote(value)}"


def _split_glued_short(token: str) -> list[str] | None:
    """Split a list item such as "-v /:/host" or "-it --privileged" into two words.

    Only when the first word does not take the rest of the item as its value: for
    docker, "-eX=1 --privileged" is one word, the value of -e, and stays so.
    """
    words = token.split(maxsplit=1)
    if len(words) < 2:
        return None
    letters = words[0][1:]
    if not letters or not all(c in _SHORT_FLAGS for c in letters[:-1]):
        return None
    if letters[-1] not in _SHORT_FLAGS and letters[-1] not in _SHORT_WITH_VALUE:
        return None
    return words


def _parse_options(tokens: Sequence[str]) -> list[_Option]:
    """Split `tokens` into options as `docker run` would. Positional tokens are skipped."""
    work = list(tokens)
    options: list[_Option] = []
    i = 0
    while i < len(work):
        token = work[i]
        i += 1
        if token.startswith("--") and len(token) > 2:
            name_part, eq, inline = token[2:].partition("=")
            if any(ch.isspace() for ch in name_part):
                # A list item such as "--cap-add SYS_ADMIN" (docker would reject it as
                # one argv word, but the intent is plain): read it as two words.
                work[i - 1 : i] = token.split(maxsplit=1)
                i -= 1
                continue
            name = name_part.lower()
            name = _ALIASES.get(name, name)
            if name in _LONG_WITH_VALUE:
                if eq:
                    options.append(_Option(name, inline, token))
                elif i < len(work):
                    value = work[i]
                    i += 1
                    options.append(_Option(name, value, _join(token, value)))
            elif name in _LONG_FLAGS:
                options.append(_Option(name, inline if eq else "true", token))
            # unknown long option: ignored, and it does not consume the next token
        elif token.startswith("-") and len(token) > 1 and not token.startswith("--"):
            glued = _split_glued_short(token)
            if glued:
                work[i - 1 : i] = glued
                i -= 1
                continue
            # A bundle of short options (pflag semantics): -it, -itv SRC:DST, -v=SRC:DST,
            # -vSRC:DST. The first value-taking letter takes the rest of the word as its
            # value, or else the next token.
            for pos in range(1, len(token)):
                letter = token[pos]
                if letter in _SHORT_FLAGS:
                    options.append(_Option(_SHORT_FLAGS[letter], "true", token))
                    continue
                if letter in _SHORT_WITH_VALUE:
                    rest = token[pos + 1 :]
                    if rest:
                        value = rest[1:] if rest.startswith("=") else rest
                        options.append(_Option(_SHORT_WITH_VALUE[letter], value, token))
                    elif i < len(work):
                        value = work[i]
                        i += 1
                        written = _join(token, value)
                        options.append(_Option(_SHORT_WITH_VALUE[letter], value, written))
                break  # a value-taking or unknown letter ends the bundle
        # positional tokens (and a bare "-" or "--") are skipped; scanning goes on, which
        # errs on the side of warning for a config docker would not accept anyway
    return options


# --------------------------------------------------------------------------------------
# Host paths
# --------------------------------------------------------------------------------------

_ENGINE_SOCKETS = frozenset(
    {"docker.sock", "podman.sock", "containerd.sock", "crio.sock", "buildkitd.sock"}
)
_SOCKET_WHY = (
    "the container engine's API socket: whoever can reach it controls every container"
    " and, through them, the host"
)
_SOCKET_TARGET_WHY = (
    "is mounted at the container engine's socket path inside the container:"
    " whoever can reach it controls the engine"
)

#: Host system locations. `/` is flagged only as itself (everything is inside it).
_SYSTEM_PATHS: tuple[tuple[str, str], ...] = (
    ("/etc", "host system configuration (user database, password hashes, sudoers)"),
    ("/boot", "the host's kernel and boot loader"),
    ("/proc", "host process information and kernel settings"),
    ("/sys", "host kernel and device interfaces"),
    ("/dev", "host devices"),
    ("/root", "the home directory of the host's root user"),
    ("/run", "host runtime state and sockets (the Docker and Podman sockets among them)"),
    ("/var/run", "host runtime state and sockets (the Docker socket among them)"),
    ("/var/lib/docker", "the container engine's storage: every image and container"),
    ("/var/lib/containers", "the container engine's storage: every image and container"),
    ("/var/lib/containerd", "the container engine's storage: every image and container"),
)
_ROOT_WHY = "the whole host filesystem"

#: Shared host locations flagged only as themselves (or a directory holding them):
#: a directory of your own inside /tmp is not the whole of /tmp.
_SHARED_PATHS: tuple[tuple[str, str], ...] = (
    (
        "/tmp",
        "the host's shared temporary directory: sockets of X11, SSH agents and tmux"
        " servers (commands on the host), other users' files",
    ),
    ("/var/tmp", "the host's shared temporary directory"),
    ("/dev/shm", "the host's shared memory"),
)

#: Locations inside the home directory (relative to it).
_HOME_PATHS: tuple[tuple[str, str], ...] = (
    (".ssh", "SSH private keys"),
    (".aws", "AWS credentials"),
    (".azure", "Azure credentials"),
    (".config/gcloud", "Google Cloud credentials"),
    (".kube", "Kubernetes credentials"),
    (".gnupg", "GPG private keys"),
    (".password-store", "the pass password store"),
    (".docker", "Docker registry credentials and, with Docker Desktop, the Docker socket"),
    (".netrc", "passwords for remote hosts (curl, git, ftp)"),
    (".pypirc", "PyPI upload credentials"),
    (".git-credentials", "stored git passwords and tokens"),
    (".config/gh", "the GitHub CLI token"),
    (".npmrc", "npm registry tokens"),
    (".cargo/credentials", "the crates.io token"),
    (".cargo/credentials.toml", "the crates.io token"),
    (".gem/credentials", "the RubyGems API key"),
    (".vault-token", "the HashiCorp Vault token"),
    (".terraform.d/credentials.tfrc.json", "Terraform Cloud tokens"),
    (".local/share/keyrings", "the desktop keyring with saved passwords"),
    (".colima", "Colima's VM and Docker socket"),
    (".orbstack", "OrbStack's Docker socket"),
    (".rd", "Rancher Desktop's Docker socket"),
    (".lima", "Lima's VMs and their sockets"),
    # Files that run on the host later: whatever the agent writes there runs as you.
    *(
        (name, "a shell start-up file: what is written there runs in your next shell")
        for name in (
            ".bashrc", ".bash_profile", ".bash_login", ".bash_logout", ".profile",
            ".zshrc", ".zprofile", ".zshenv", ".zlogin", ".zlogout", ".cshrc",
            ".tcshrc", ".kshrc", ".mkshrc", ".xprofile", ".xsession", ".xinitrc",
            ".pam_environment", ".config/fish", ".config/environment.d",
        )
    ),
    (".local/bin", "programs on your PATH: what is written there runs instead of them"),
    ("bin", "programs on your PATH: what is written there runs instead of them"),
    (".config/autostart", "programs your desktop starts when you log in"),
    (".config/systemd", "your systemd user services, started on the host"),
    (".gitconfig", "your git config: hooks and helpers it names run on the host"),
    (".config/git", "your git config: hooks and helpers it names run on the host"),
    (".Xauthority", "the key to your X display (keystrokes, screen)"),
    # The agents' own config on the host: what the agent writes there (hooks, plugins,
    # MCP servers) runs when you start that agent outside aishell.
    (".claude", "Claude Code's config on the host: hooks and MCP servers written there"
     " run when you use Claude Code outside aishell"),
    (".claude.json", "Claude Code's config on the host (MCP servers, login)"),
    (".codex", "Codex's config on the host: notify commands and MCP servers written"
     " there run when you use Codex outside aishell"),
    (".gemini", "Gemini CLI's config on the host: MCP servers and extensions written"
     " there run when you use it outside aishell"),
    (".config/opencode", "OpenCode's config on the host: plugins written there run when"
     " you use OpenCode outside aishell"),
    (".local/share/opencode", "OpenCode's data on the host (logins, downloaded programs)"),
    (".pi", "Pi's config on the host: extensions and key commands run when you use Pi"),
)  # fmt: skip
_HOME_WHY = "your home directory: SSH keys, cloud credentials, shell start-up files"
_AISHELL_HOME_WHY = (
    "aishell's own home: its approvals of project configs, the agents' logins and"
    " per-project config (the agent could approve its own config)"
)


class _PathRule(NamedTuple):
    key: str  # normalised, case-folded absolute path
    label: str  # how it is shown: "/etc" or "~/.ssh"
    why: str


def _normalise(path: str) -> str:
    """Lexical normalisation: `//`, trailing `/`, `.` and `..` (symlinks are not resolved)."""
    norm = posixpath.normpath(path)
    if norm.startswith("//"):  # POSIX keeps a leading "//"; Linux and macOS do not care
        norm = "/" + norm.lstrip("/")
    return norm


def _key(path: str) -> str:
    # Case-folded: macOS's default filesystem ignores case (~/.SSH is ~/.ssh there).
    return _normalise(path).casefold()


def _within(path: str, base: str) -> bool:
    """`path` is `base` or below it, by whole path segments (both normalised)."""
    if base == "/":
        return path.startswith("/")
    return path == base or path.startswith(base + "/")


class _HostPaths:
    """The host-path rules, bound to one home directory (and its real path, when the
    home is reached through a symlink) and to aishell's own home."""

    def __init__(
        self,
        home: str | None,
        *,
        real_home: str | None = None,
        aishell_home: str | None = None,
    ) -> None:
        rules = [_PathRule(_key(p), p, why) for p, why in _SYSTEM_PATHS]
        self.home: str | None = None
        self.homes: tuple[str, ...] = ()
        if home and home.startswith("/"):
            self.home = _normalise(home)
            homes = [self.home]
            if real_home and real_home.startswith("/") and _normalise(real_home) != self.home:
                homes.append(_normalise(real_home))
            self.homes = tuple(homes)
            for base in self.homes:
                for rel, why in _HOME_PATHS:
                    rules.append(_PathRule(_key(base + "/" + rel), "~/" + rel, why))
        if aishell_home and aishell_home.startswith("/"):
            label = _normalise(aishell_home)
            if self.home and _within(label, self.home):
                label = "~" + label[len(self.home) :]
            rules.append(_PathRule(_key(aishell_home), label, _AISHELL_HOME_WHY))
        # Most specific first, so /var/run/x reports /var/run, not a broader rule.
        self.rules: tuple[_PathRule, ...] = tuple(
            sorted(rules, key=lambda r: len(r.key), reverse=True)
        )

    def host_path(self, source: str) -> str | None:
        """The absolute host path `source` names, or None (named volume, relative path)."""
        if self.home is not None and (source == "~" or source.startswith("~/")):
            source = self.home + source[1:]
        return source if source.startswith("/") else None

    def check_source(self, source: str) -> str | None:
        """Why mounting host path `source` weakens the sandbox, or None."""
        path = self.host_path(source)
        if path is None:
            return None
        key = _key(path)
        if key == "/":
            return f"exposes {_ROOT_WHY}"
        for shared, why in _SHARED_PATHS:
            if key == shared:
                return f"exposes {why}"
        if posixpath.basename(key) in _ENGINE_SOCKETS:
            return f"exposes {_SOCKET_WHY}"
        for rule in self.rules:  # the path is, or is inside, a sensitive location
            if _within(key, rule.key):
                return f"exposes {rule.why}"
        for home in self.homes:
            home_key = home.casefold()
            if key == home_key:
                return f"exposes {_HOME_WHY}"
            if _within(home_key, key):
                return f"includes your home directory ({self.home})"
        for rule in reversed(self.rules):  # the path contains a sensitive location
            if _within(rule.key, key):
                return f"includes {rule.label} ({rule.why})"
        for shared, why in _SHARED_PATHS:
            if _within(shared, key):
                return f"includes {shared} ({why})"
        return None

    def check_mount(self, source: str, target: str | None) -> str | None:
        why = self.check_source(source)
        if why is None and target and _is_socket_path(target):
            why = _SOCKET_TARGET_WHY
        return why


def _is_socket_path(path: str) -> bool:
    return posixpath.basename(_key(path)) in _ENGINE_SOCKETS


# --------------------------------------------------------------------------------------
# docker_args
# --------------------------------------------------------------------------------------

_NAMESPACE_HOST_WHY: dict[str, str] = {
    "network": "shares the host's network: services on the host's localhost become"
    " reachable and network restrictions no longer apply",
    "pid": "shares the host's process table: host processes can be seen and signalled",
    "ipc": "shares the host's IPC namespace (shared memory, semaphores, message queues)",
    "uts": "shares the host's hostname and domain name",
    "userns": "turns off user-namespace remapping: container users are host users",
    "cgroupns": "shares the host's cgroup namespace: the host's cgroup tree becomes visible",
}
_NAMESPACE_PATH_WHY = "joins an existing namespace by path, which can be the host's"
_NAMESPACE_CONTAINER_WHY: dict[str, str] = {
    "network": "joins another container's network: its localhost services and its network"
    " policy (another project's sandbox, or the egress proxy) become the agent's",
    "pid": "joins another container's processes: through /proc/<pid>/root the agent reads"
    " and writes that container's files (another project's sandbox and its mounts)",
    "ipc": "joins another container's shared memory and message queues",
    "uts": "joins another container's hostname",
    "userns": "joins another container's user namespace",
    "cgroupns": "joins another container's cgroup namespace",
}
_VOLUMES_FROM_WHY = (
    "mounts every volume and bind mount of another container (another project's"
    " sandbox, with its agent logins and mounts)"
)
_GROUP_ADD_WHY = (
    "adds the container user to a host group: files and sockets of that group (the"
    " docker group's engine socket, for one) become the agent's"
)
_ENDPOINT_WHY = (
    "points container tools inside the sandbox at a container engine: whoever can reach"
    " an engine controls every container and, through them, the host"
)
_RUNTIME_WHY = "runs the container with another OCI runtime, which may not isolate it"
_SYSCTL_WHY = (
    "sets a kernel.* sysctl: some are not namespaced and act on the host kernel"
    " (the CVE-2022-0811 class)"
)
_CGROUP_PARENT_WHY = "places the container in another cgroup, outside the engine's limits"
_POD_WHY = "joins a pod: its namespaces are shared with the pod's other containers"
_GPUS_WHY = "gives the container access to host GPUs (host devices)"
_VOLUME_DRIVER_WHY = "uses a volume plugin, which mounts whatever it is told on the host"
_VOLUME_OPT_WHY = (
    "gives the volume driver mount options: with `o=bind` and `device=PATH` it binds any"
    " host path, with `type=nfs` it mounts remote shares"
)
_PROPAGATION_WHY = (
    "shares mount events with the host (bind-propagation): mounts made in one appear in the other"
)
_KEEP_GROUPS_WHY = "keeps your supplementary groups in the container (their files and sockets)"
_ENV_FILE_WHY = (
    "reads environment variables from a file outside the project: its secrets reach the agent"
)
#: Runtimes known to isolate at least as well as the default ones.
_SAFE_RUNTIMES = frozenset(
    {"runc", "crun", "runsc", "kata", "kata-runtime", "io.containerd.runc.v2"}
)

_PRIVILEGED_WHY = (
    "gives the container every capability and every host device, without seccomp or"
    " AppArmor: an agent can take over the host"
)
_API_SOCKET_WHY = "mounts the Docker API socket (and registry credentials) into the container"
_DEVICE_WHY = "gives the container direct access to a host device"
_DEVICE_RULE_WHY = "lets the container use host devices matching the rule"

_UNMASK_WHY = "unmasks /proc and /sys paths that hide host kernel information and controls"


def _security_opt_why(value: str) -> str | None:
    """Why a `--security-opt` value weakens the sandbox, or None."""
    key, eq, rest = value.partition("=")
    if not eq:  # legacy "key:value" spelling, still accepted by docker
        key, _, rest = value.partition(":")
    key = key.strip().lower()
    rest = rest.strip().lower()
    if key == "seccomp" and rest == "unconfined":
        return "turns off the seccomp filter: every system call reaches the host kernel"
    if key == "seccomp" and rest:
        return (
            "replaces the seccomp profile (the engine's default, or aishell's own) with a"
            " custom one, which may allow any system call"
        )
    if key == "apparmor" and rest == "unconfined":
        return "turns off the AppArmor profile that confines the container"
    if key == "apparmor" and rest:
        return "replaces the AppArmor profile that confines the container with another one"
    if key == "label":
        if rest == "disable":
            return "turns off SELinux separation for the container"
        if rest in {"type:spc_t", "type:unconfined_t"}:
            return "runs the container under an unconfined SELinux type"
    if key == "systempaths" and rest == "unconfined":
        return _UNMASK_WHY
    if key == "unmask" and rest:  # podman
        return _UNMASK_WHY
    return None


def _namespace_why(name: str, value: str) -> str | None:
    mode = value.strip().lower()
    if name == "network" and "=" in mode:  # docker >= 25: --network name=host,alias=x
        fields = _csv_fields(value)
        mode = next((v.strip().lower() for k, v in fields if k == "name" and v is not None), "")
    if mode == "host":
        return _NAMESPACE_HOST_WHY[name]
    if mode.startswith("ns:"):  # podman: join the namespace at a path, e.g. /proc/1/ns/net
        return _NAMESPACE_PATH_WHY
    if mode.startswith("container:"):
        return _NAMESPACE_CONTAINER_WHY.get(name, "joins another container's namespace")
    return None


def _strip_quotes(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _csv_fields(value: str) -> list[tuple[str, str | None]]:
    """`k=v,k2=v2,flag` (docker reads it as one CSV record) as (lower-case key, value)."""
    import csv  # (lazy: only `--mount`-style values need it)

    try:
        row = next(csv.reader([value], skipinitialspace=True), [])
    except csv.Error:
        row = value.split(",")
    fields: list[tuple[str, str | None]] = []
    for field in row:
        k, eq, v = _strip_quotes(field).partition("=")
        fields.append((k.strip().lower(), _strip_quotes(v) if eq else None))
    return fields


def _volume_spec(value: str) -> tuple[str | None, str | None]:
    """(source, target) of `-v SRC:DST[:MODE]`; a lone `DST` is an anonymous volume."""
    parts = value.split(":")
    if len(parts) < 2:
        return None, value
    return parts[0], parts[1]


def _mount_spec(value: str) -> tuple[str | None, str | None]:
    """(source, target) of `--mount type=bind,source=SRC,target=DST,...`."""
    source: str | None = None
    target: str | None = None
    for key, val in _csv_fields(value):
        if key in {"source", "src"}:
            source = val
        elif key in {"target", "destination", "dst"}:
            target = val
    return source, target


def _volume_opts(value: str) -> list[tuple[str, str]]:
    """The `volume-opt=KEY=VALUE` fields of a `--mount` (KEY lower-case)."""
    opts = []
    for key, val in _csv_fields(value):
        if key in {"volume-opt", "volume-opts"} and val is not None:
            k, _, v = val.partition("=")
            opts.append((k.strip().lower(), v.strip()))
    return opts


def _env_name(value: str) -> str:
    return value.partition("=")[0].strip()


class _Judge:
    """The path rules plus what the caller resolved: real paths, the project."""

    def __init__(
        self,
        paths: _HostPaths,
        real: Mapping[str, str] | None = None,
        project: Sequence[str] = (),
    ) -> None:
        self.paths = paths
        self.real = real or {}
        self.project = tuple(_normalise(p) for p in project if p.startswith("/"))

    def absolute(self, source: str) -> str | None:
        return self.paths.host_path(source)

    def check_source(self, source: str) -> str | None:
        """Why mounting `source` weakens the sandbox: by its spelling, else by its real path."""
        why = self.paths.check_source(source)
        if why is not None:
            return why
        path = self.absolute(source)
        real = self.real.get(path) if path else None
        if path and real and _normalise(real) != _normalise(path):
            why = self.paths.check_source(real)
            if why is not None:
                return f"is a symlink to {real}: {why}"
        return None

    def check_mount(self, source: str, target: str | None) -> str | None:
        why = self.check_source(source)
        if why is None and target and _is_socket_path(target):
            why = _SOCKET_TARGET_WHY
        return why

    def outside_project(self, path: str) -> bool:
        absolute = self.absolute(path)
        if absolute is None:
            return False  # relative: the engine reads it from the current directory
        candidates = [_normalise(absolute)]
        real = self.real.get(absolute)
        if real:
            candidates.append(_normalise(real))
        return any(not any(_within(c, p) for p in self.project) for c in candidates)


def _option_dangers(option: _Option, judge: _Judge) -> Iterable[str]:
    """The reasons (zero or more) why one parsed option weakens the sandbox."""
    name, value = option.name, option.value
    if name == "privileged" or name == "use-api-socket":
        if value.strip().lower() not in _FALSE_WORDS:
            yield _PRIVILEGED_WHY if name == "privileged" else _API_SOCKET_WHY
    elif name == "cap-add":
        caps = [_normalise_capability(c) for c in value.split(",")]
        bad = [c for c in dict.fromkeys(caps) if c in DANGEROUS_CAPABILITIES]
        if len(bad) == 1:
            yield f"adds {bad[0]}, which {DANGEROUS_CAPABILITIES[bad[0]]}"
        elif bad:
            yield (
                f"adds {', '.join(bad)}: capabilities that make a container escape"
                " or host interference easier"
            )
    elif name == "security-opt":
        why = _security_opt_why(value)
        if why:
            yield why
    elif name in _NAMESPACE_HOST_WHY:
        why = _namespace_why(name, value)
        if why:
            yield why
    elif name == "device":
        yield _DEVICE_WHY
    elif name == "device-cgroup-rule":
        yield _DEVICE_RULE_WHY
    elif name == "volume":
        source, target = _volume_spec(value)
        why = judge.check_mount(source, target) if source else None
        if why:
            yield why
    elif name == "mount":
        yield from _mount_dangers(value, judge)
    elif name == "volumes-from":
        yield _VOLUMES_FROM_WHY
    elif name == "group-add":
        yield _KEEP_GROUPS_WHY if value.strip().lower() == "keep-groups" else _GROUP_ADD_WHY
    elif name == "env":
        if _env_name(value) in ENGINE_ENDPOINT_VARIABLES:
            yield _ENDPOINT_WHY
    elif name == "env-file":
        why = judge.check_source(value)
        if why:
            yield why
        elif judge.outside_project(value):
            yield _ENV_FILE_WHY
    else:
        yield from _other_dangers(name, value)


def _mount_dangers(value: str, judge: _Judge) -> Iterable[str]:
    source, target = _mount_spec(value)
    opts = _volume_opts(value)
    if opts:
        yield _VOLUME_OPT_WHY
    device = next((v for k, v in opts if k == "device"), None)
    for path in (source, device):
        why = judge.check_mount(path, target) if path else None
        if why:
            yield why
    propagation = dict(_csv_fields(value)).get("bind-propagation") or ""
    if propagation.strip().lower() in {"shared", "rshared"}:
        yield _PROPAGATION_WHY


def _other_dangers(name: str, value: str) -> Iterable[str]:
    word = value.strip().lower()
    if name == "runtime" and word not in _SAFE_RUNTIMES:
        yield _RUNTIME_WHY
    elif name == "sysctl" and word.startswith("kernel."):
        yield _SYSCTL_WHY
    elif name == "cgroup-parent":
        yield _CGROUP_PARENT_WHY
    elif name == "pod":
        yield _POD_WHY
    elif name == "gpus":
        yield _GPUS_WHY
    elif name == "volume-driver" and word not in {"", "local"}:
        yield _VOLUME_DRIVER_WHY
    elif name == "annotation":
        key, _, flag = value.partition("=")
        if key.strip() == "run.oci.keep_original_groups" and flag.strip() not in _FALSE_WORDS:
            yield _KEEP_GROUPS_WHY


def check_docker_args(
    tokens: Sequence[str],
    *,
    home: str | None = None,
    real: Mapping[str, str] | None = None,
    real_home: str | None = None,
    aishell_home: str | None = None,
    project: Sequence[str] = (),
) -> list[Danger]:
    """Options in `tokens` (the `docker_args` words) that weaken the sandbox.

    `home` is the host home directory; pass it so that `-v`/`--mount` sources are
    checked with the home-relative rules of `check_mounts` too (`-v ~/.ssh:/k`).
    Without it only the system-wide path rules apply. `real` maps host paths (as
    `host_paths` lists them) to their real paths; `project` is the project root (its
    spelling and real path): an `--env-file` outside it is flagged.
    """
    paths = _HostPaths(home, real_home=real_home, aishell_home=aishell_home)
    judge = _Judge(paths, real, project)
    dangers: list[Danger] = []
    for option in _parse_options(tokens):
        for why in _option_dangers(option, judge):
            dangers.append(Danger(option.written, why, SOURCE_DOCKER_ARGS))
    return _dedupe(dangers)


def check_mounts(
    mounts: Sequence[tuple[str, str]],
    *,
    home: str,
    real: Mapping[str, str] | None = None,
    real_home: str | None = None,
    aishell_home: str | None = None,
) -> list[Danger]:
    """Configured mounts, as (host source, container target), that expose sensitive host paths.

    Sources are expected to be absolute host paths already (`~` is expanded with `home`
    if it is still there); anything else is not a host path and is not judged. With
    `real` (source -> real path), a source that is a symlink to a sensitive path is
    flagged too.
    """
    judge = _Judge(_HostPaths(home, real_home=real_home, aishell_home=aishell_home), real)
    dangers: list[Danger] = []
    for source, target in mounts:
        why = judge.check_source(source)
        if why is not None:
            dangers.append(Danger(source, why, SOURCE_MOUNTS))
        elif target and _is_socket_path(target):
            dangers.append(Danger(f"{source}:{target}", _SOCKET_TARGET_WHY, SOURCE_MOUNTS))
    return _dedupe(dangers)


def check_env(names: Iterable[str]) -> list[Danger]:
    """Configured `env` names that hand the agent a container engine."""
    return [
        Danger(name, _ENDPOINT_WHY, SOURCE_ENV)
        for name in dict.fromkeys(names)
        if name in ENGINE_ENDPOINT_VARIABLES
    ]


def check_project_root(
    root: str,
    *,
    home: str,
    real_root: str | None = None,
    real_home: str | None = None,
    aishell_home: str | None = None,
) -> list[Danger]:
    """The project root itself (mounted read-write): the home directory, a directory
    holding it, or a sensitive location (a launch in `$HOME` with no git repository
    above mounts the whole home, `.ssh` and `~/.aishell` included)."""
    paths = _HostPaths(home, real_home=real_home, aishell_home=aishell_home)
    for path in dict.fromkeys(p for p in (root, real_root) if p):
        why = paths.check_source(path)
        if why is not None:
            shown = root if path == root else f"{root} (really {path})"
            return [Danger(shown, f"the project directory {why}", SOURCE_PROJECT)]
    return []


def host_paths(
    tokens: Sequence[str], mount_sources: Iterable[str] = (), *, home: str | None = None
) -> list[str]:
    """The absolute host paths a config names (mount sources, `-v`/`--mount` sources
    and `device=` options, `--env-file`): what the caller resolves for `real`."""
    paths = _HostPaths(home)
    found: list[str] = [p for p in mount_sources if p.startswith("/")]
    for option in _parse_options(tokens):
        candidates: list[str | None] = []
        if option.name == "volume":
            candidates.append(_volume_spec(option.value)[0])
        elif option.name == "mount":
            candidates.append(_mount_spec(option.value)[0])
            candidates += [v for k, v in _volume_opts(option.value) if k == "device"]
        elif option.name == "env-file":
            candidates.append(option.value)
        for candidate in candidates:
            absolute = paths.host_path(candidate) if candidate else None
            if absolute:
                found.append(_normalise(absolute))
    return list(dict.fromkeys(found))


def leaves_project(source: str, real: str, *, root: str, real_root: str) -> bool:
    """A mount source inside the project (by its spelling) whose real path is outside
    it: a symlink in the project, which whoever writes the project (the agent) can
    point anywhere, decides what gets mounted."""
    src, dst = _normalise(source), _normalise(real)
    inside = _within(src, _normalise(root)) or _within(src, _normalise(real_root))
    return inside and not _within(dst, _normalise(real_root))


def _dedupe(dangers: Iterable[Danger]) -> list[Danger]:
    return list(dict.fromkeys(dangers))


def render(dangers: Sequence[Danger]) -> list[str]:
    """Terminal lines for `dangers` (none when there are none): header, items, footer."""
    if not dangers:
        return []
    lines = [RENDER_HEADER]
    lines.extend(f"  - {d.what}: {d.why}" for d in _dedupe(dangers))
    lines.append(RENDER_FOOTER)
    return lines
