"""`aishell verify [--json]`: start a sandbox for this project and test its walls.

The sandbox is started through the real launch pipeline (`launch.prepare`), so it
has exactly the image, mounts, environment and `docker_args` an `aishell exec`
would get. Inside it, `templates/verify.sh` (fed on stdin, never baked into an
image) gathers facts and prints them as `AISHELL-VERIFY <key> <value>` lines;
this module plants the host-side bait beforehand (canary files, an environment
variable only the engine CLI sees), judges the facts afterwards, and cleans up.

Judging is pure (`evaluate`), so every verdict is unit-tested without an engine.
What each check proves, and what it does not, is in docs/verify.md.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aishell import launch, output, state
from aishell import report_json as rj
from aishell.commands._args import parser
from aishell.constants import EXIT_ERROR, EXIT_OK
from aishell.engine import proxy
from aishell.engine.run_args import Bind, build_run_args
from aishell.errors import AishellError
from aishell.harnesses import BY_NAME
from aishell.launch.request import LaunchRequest
from aishell.tuples import NamedTuple

if TYPE_CHECKING:
    from aishell.state import State

PREFIX = "AISHELL-VERIFY"
PASS, FAIL, SKIP = "pass", "fail", "skip"
STATUSES = (PASS, FAIL, SKIP)
MARKS_UTF8 = {PASS: "✓", FAIL: "✗", SKIP: "-"}
MARKS_ASCII = {PASS: "+", FAIL: "x", SKIP: "-"}
_COLORS = {PASS: "32", FAIL: "31", SKIP: "33"}
NO_RESULT = "no result: the check script inside the sandbox stopped before this check"
RUN_TIMEOUT = 900.0

# Linux capability numbers (include/uapi/linux/capability.h).
CAP_NAMES: tuple[str, ...] = (
    "chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill", "setgid",
    "setuid", "setpcap", "linux_immutable", "net_bind_service", "net_broadcast",
    "net_admin", "net_raw", "ipc_lock", "ipc_owner", "sys_module", "sys_rawio",
    "sys_chroot", "sys_ptrace", "sys_pacct", "sys_admin", "sys_boot", "sys_nice",
    "sys_resource", "sys_time", "sys_tty_config", "mknod", "lease", "audit_write",
    "audit_control", "setfcap", "mac_override", "mac_admin", "syslog", "wake_alarm",
    "block_suspend", "audit_read", "perfmon", "bpf", "checkpoint_restore",
)  # fmt: skip
# Docker's default set (Podman's default is a subset of it).
DEFAULT_CAPS_NAMES: tuple[str, ...] = (
    "chown", "dac_override", "fowner", "fsetid", "kill", "setgid", "setuid", "setpcap",
    "net_bind_service", "net_raw", "sys_chroot", "mknod", "audit_write", "setfcap",
)  # fmt: skip
# podman --init copies catatonit in as podman-init.
INIT_NAMES = frozenset(
    {"docker-init", "podman-init", "tini", "tini-static", "catatonit", "dumb-init"}
)
SOCKET_NAMES = ("docker", "podman", "containerd", "crio", "buildkitd")


def caps_mask(names: Iterable[str]) -> int:
    mask = 0
    for name in names:
        mask |= 1 << CAP_NAMES.index(name)
    return mask


DEFAULT_CAPS = caps_mask(DEFAULT_CAPS_NAMES)  # 0xa80425fb


def cap_names(mask: int) -> list[str]:
    """The capability names of the bits set in `mask` (unknown bits as `cap_<n>`)."""
    names = []
    bit = 0
    while mask >> bit:
        if mask >> bit & 1:
            names.append(CAP_NAMES[bit] if bit < len(CAP_NAMES) else f"cap_{bit}")
        bit += 1
    return names


def describe_caps(mask: int) -> str:
    if mask == 0:
        return "none"
    if mask == DEFAULT_CAPS:
        return "the default set"
    names = cap_names(mask)
    return ", ".join(names) if len(names) <= 4 else f"{len(names)} of the default set"


def parse_mask(text: str | None) -> int | None:
    """A `/proc/*/status` capability field (hex), or None when absent or malformed."""
    if not text:
        return None
    try:
        return int(text.strip(), 16)
    except ValueError:
        return None


# ------------------------------------------------------------------ the protocol


def parse_facts(text: str) -> dict[str, list[str]]:
    """`AISHELL-VERIFY <key> <value>` lines -> {key: [values in order]}; other lines ignored."""
    facts: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.rstrip("\r")
        if not line.startswith(PREFIX + " "):
            continue
        key, _, value = line[len(PREFIX) + 1 :].partition(" ")
        if key:
            facts.setdefault(key, []).append(value)
    return facts


def _first(facts: Mapping[str, Sequence[str]], key: str) -> str | None:
    values = facts.get(key)
    return values[0] if values else None


def _split(value: str) -> tuple[str, str]:
    head, _, rest = value.partition(" ")
    return head, rest


# ------------------------------------------------------------------ the checks


class Check(NamedTuple):
    id: str
    label: str
    status: str  # pass | fail | skip
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "label": self.label, "status": self.status, "detail": self.detail}


class Canary(NamedTuple):
    path: str  # on the host
    probes: tuple[str, ...]  # paths to look for inside (the host path, plus mount-mapped ones)
    via: str | None = None  # the configured mount source that covers it, if any


class ToolSpec(NamedTuple):
    name: str
    label: str
    command: str
    version_arg: str


class Expected(NamedTuple):
    uid: int
    gid: int
    canaries: tuple[Canary, ...]
    project_dir: str
    tools: tuple[ToolSpec, ...]
    env_name: str = ""
    git_internals: str = "read-only"  # the config key (writable: the git check fails)


def check_user(facts: Mapping[str, Sequence[str]], exp: Expected) -> Check:
    label = "Runs as the host user's UID/GID"
    uid, gid = _first(facts, "uid"), _first(facts, "gid")
    if uid is None or gid is None:
        return Check("user", label, FAIL, NO_RESULT)
    if (uid, gid) == (str(exp.uid), str(exp.gid)):
        return Check("user", label, PASS, f"uid {uid}, gid {gid}")
    return Check(
        "user", label, FAIL, f"runs as uid {uid}, gid {gid}; the host user is {exp.uid}:{exp.gid}"
    )


def check_not_root(facts: Mapping[str, Sequence[str]], exp: Expected) -> Check:
    label = "The agent does not run as root"
    uid = _first(facts, "uid")
    if exp.uid == 0:
        return Check(
            "not-root", label, SKIP, "the host user is root, so the agent runs as root too"
        )
    if uid is None:
        return Check("not-root", label, FAIL, NO_RESULT)
    if uid == "0":
        return Check("not-root", label, FAIL, "the agent runs as root (uid 0)")
    return Check("not-root", label, PASS, f"uid {uid}")


def check_canary(facts: Mapping[str, Sequence[str]], exp: Expected) -> Check:
    label = "A host directory that is not mounted is out of reach"
    if not exp.canaries:
        return Check("canary", label, SKIP, "no place outside the project to put a canary file")
    states: dict[str, str] = {}
    for value in facts.get("canary", ()):
        state, path = _split(value)
        states[path] = state
    problems: list[str] = []
    for canary in exp.canaries:
        for probe in canary.probes:
            found = states.get(probe)
            if found is None:
                return Check("canary", label, FAIL, NO_RESULT)
            if found != "absent":
                where = probe if probe == canary.path else f"{canary.path} (as {probe})"
                reason = "readable" if found == "readable" else "visible"
                via = f", through the configured mount {canary.via}" if canary.via else ""
                problems.append(f"{where} is {reason} inside{via}")
    if problems:
        return Check("canary", label, FAIL, "; ".join(problems))
    parents = ", ".join(os.path.dirname(os.path.dirname(c.path)) for c in exp.canaries)
    return Check("canary", label, PASS, f"canary files planted under {parents} not found inside")


def check_socket(facts: Mapping[str, Sequence[str]], exp: Expected) -> Check:
    label = "No Docker or Podman API is reachable"
    if _first(facts, "sockets-searched") is None:
        return Check("socket", label, FAIL, NO_RESULT)
    problems: list[str] = []
    notes: list[str] = []
    for value in facts.get("socket", ()):
        kind, path = _split(value)
        if kind == "api":
            problems.append(f"{path} answers the engine API")
        elif kind == "named":
            problems.append(f"{path} is an engine socket")
    for value in facts.get("port", ()):
        state, target = _split(value)
        if state == "api":
            problems.append(f"tcp {target} answers the engine API")
        elif state == "open":
            notes.append(f"tcp {target} is open but did not answer the API without credentials")
    if problems:
        return Check("socket", label, FAIL, "; ".join(problems))
    searched = _first(facts, "sockets-searched") or ""
    probed = [_split(v)[1] for v in facts.get("port", ())]
    detail = f"searched the image and {searched}" if searched else "searched the image"
    if probed:
        detail += f"; probed tcp {', '.join(probed)}"
    if notes:
        detail += "; " + "; ".join(notes)
    return Check("socket", label, PASS, detail)


def check_capabilities(facts: Mapping[str, Sequence[str]], exp: Expected) -> Check:
    label = "Capabilities are within the engine's default set"
    fields = {
        "the agent's effective set": parse_mask(_first(facts, "capeff")),
        "the agent's bounding set": parse_mask(_first(facts, "capbnd")),
        "the agent's ambient set": parse_mask(_first(facts, "capamb")),
        "PID 1's bounding set": parse_mask(_first(facts, "init-capbnd")),
    }
    if _first(facts, "sudo-capeff") is not None:
        fields["root's effective set (via sudo)"] = parse_mask(_first(facts, "sudo-capeff"))
    if any(mask is None for mask in fields.values()):
        return Check("capabilities", label, FAIL, NO_RESULT)
    problems: list[str] = []
    for what, mask in fields.items():
        assert mask is not None
        extra = mask & ~DEFAULT_CAPS
        if extra:
            problems.append(f"{what} adds {', '.join(cap_names(extra))}")
    capeff = fields["the agent's effective set"] or 0
    if exp.uid != 0 and capeff:
        problems.append(
            f"the agent runs as a non-root user but holds {', '.join(cap_names(capeff))}"
        )
    if problems:
        return Check("capabilities", label, FAIL, "; ".join(problems))
    bounding = fields["PID 1's bounding set"] or 0
    detail = f"effective: {describe_caps(capeff)}; bounding: {describe_caps(bounding)}"
    return Check("capabilities", label, PASS, detail)


def check_env(facts: Mapping[str, Sequence[str]], exp: Expected) -> Check:
    label = "Host environment variables that were not configured are absent"
    value = _first(facts, "env")
    if value is None:
        return Check("env", label, FAIL, NO_RESULT)
    state, where = _split(value)
    if state == "absent":
        return Check("env", label, PASS, f"{exp.env_name}, set only for the engine CLI, is absent")
    places = {
        "agent-name": "the agent's environment",
        "agent-value": "the agent's environment (by value)",
        "process": "a process environment",
    }
    found = ", ".join(places.get(w, w) for w in where.split())
    return Check("env", label, FAIL, f"{exp.env_name} reached {found or 'the sandbox'}")


def check_project(
    facts: Mapping[str, Sequence[str]],
    exp: Expected,
    host_owner: tuple[int, int] | None,
) -> Check:
    label = "The project is writable and new files belong to the host user"
    value = _first(facts, "project")
    if value is None:
        return Check("project", label, FAIL, NO_RESULT)
    state, rest = _split(value)
    if state != "ok":
        return Check("project", label, FAIL, f"cannot create a file in {exp.project_dir}: {rest}")
    if host_owner is None:
        return Check(
            "project",
            label,
            FAIL,
            f"a file created inside is not in {exp.project_dir} on the host "
            "(the project is not the host directory)",
        )
    if host_owner != (exp.uid, exp.gid):
        uid, gid = host_owner
        return Check(
            "project",
            label,
            FAIL,
            f"a file created inside belongs to {uid}:{gid} on the host, not {exp.uid}:{exp.gid}",
        )
    return Check("project", label, PASS, f"new files belong to {exp.uid}:{exp.gid}")


GIT_PROBES = {
    "config": "git config --local",
    "config-file": "writing .git/config",
    "hooks": "creating a hook",
    "info": "writing .git/info",
    "rename": "moving .git away",
}


def check_git_internals(facts: Mapping[str, Sequence[str]], exp: Expected) -> Check:
    label = "Git config, hooks and info are read-only and .git cannot be moved"
    if _first(facts, "git") == "none":
        return Check("git-internals", label, SKIP, "the project is not a git repository")
    results = {}
    for value in facts.get("git-probe", ()):
        what, rest = _split(value)
        results[what] = _split(rest)[0]
    if set(results) != set(GIT_PROBES):
        return Check("git-internals", label, FAIL, NO_RESULT)
    worked = [GIT_PROBES[w] for w in GIT_PROBES if results[w] != "refused"]
    if worked:
        why = " (git_internals: writable is set)" if exp.git_internals == "writable" else ""
        return Check("git-internals", label, FAIL, f"{', '.join(worked)} worked{why}")
    return Check("git-internals", label, PASS, "all refused, also as root")


SETUID_PROBES = ("-suid", "-suid2", "-usuid")  # files the probes make in the project
DEVICE_PROBE = "-dev"
CAPABILITY_PROBE = "caps"  # host_files key: 1 when the -suid probe has file capabilities


def check_setuid(
    facts: Mapping[str, Sequence[str]], exp: Expected, host_files: Mapping[str, int | None]
) -> Check:
    label = "No set-user-ID, set-group-ID or file-capability file can be made in the project"
    values = list(facts.get("setuid", ()))
    if not values:
        return Check("setuid", label, FAIL, NO_RESULT)
    if values == ["copy failed"]:
        return Check("setuid", label, FAIL, "could not copy a program into the project to try")
    problems = [f"{_split(v)[0]} worked" for v in values if _split(_split(v)[1])[0] == "done"]
    for suffix in SETUID_PROBES:
        mode = host_files.get(suffix)
        if mode is not None and mode & (stat.S_ISUID | stat.S_ISGID):
            problems.append(f"a file with mode {stat.S_IMODE(mode):o} appeared on the host")
    if host_files.get(CAPABILITY_PROBE):
        problems.append("a file with file capabilities appeared on the host")
    if problems:
        return Check("setuid", label, FAIL, "; ".join(dict.fromkeys(problems)))
    detail = "chmod u+s/g+s, install -m 4755 and setting file capabilities refused, also as root"
    if any(v.startswith("file-caps unavailable") for v in values):
        detail = "chmod u+s/g+s and install -m 4755 refused, also as root (no perl to try file capabilities)"  # noqa: E501
    return Check("setuid", label, PASS, detail)


def check_devices(
    facts: Mapping[str, Sequence[str]], exp: Expected, host_files: Mapping[str, int | None]
) -> Check:
    label = "No device node can be made in the project"
    value = _first(facts, "device")
    if value is None:
        return Check("devices", label, FAIL, NO_RESULT)
    mode = host_files.get(DEVICE_PROBE)
    if mode is not None and (stat.S_ISCHR(mode) or stat.S_ISBLK(mode)):
        return Check("devices", label, FAIL, "a device node made inside appeared on the host")
    if _split(value)[0] != "refused":
        return Check("devices", label, FAIL, "mknod of a character device worked")
    return Check("devices", label, PASS, "mknod refused, also as root")


def check_init(facts: Mapping[str, Sequence[str]], exp: Expected) -> Check:
    label = "PID 1 is the init"
    comm = _first(facts, "init")
    if comm is None:
        return Check("init", label, FAIL, NO_RESULT)
    if comm in INIT_NAMES:
        return Check("init", label, PASS, comm)
    return Check(
        "init", label, FAIL, f"PID 1 is {comm!r}, not an init (zombies pile up, signals get lost)"
    )


def check_tools(facts: Mapping[str, Sequence[str]], exp: Expected) -> list[Check]:
    if not exp.tools:
        return [Check("tools", "Harness tools are present", SKIP, "no agents selected")]
    results: dict[str, tuple[str, str]] = {}
    for value in facts.get("tool", ()):
        name, rest = _split(value)
        results[name] = _split(rest)
    checks = []
    for tool in exp.tools:
        cid, label = f"tool-{tool.name}", f"{tool.label} is present and runs"
        result = results.get(tool.name)
        if result is None:
            checks.append(Check(cid, label, FAIL, NO_RESULT))
        elif result[0] == "ok":
            checks.append(Check(cid, label, PASS, result[1]))
        elif result[0] == "missing":
            checks.append(Check(cid, label, FAIL, f"'{tool.command}' is not on PATH"))
        else:
            checks.append(
                Check(cid, label, FAIL, f"'{tool.command} {tool.version_arg}' {result[1]}")
            )
    return checks


def evaluate(
    facts: Mapping[str, Sequence[str]],
    exp: Expected,
    *,
    host_owner: tuple[int, int] | None,
    host_files: Mapping[str, int | None] | None = None,
) -> list[Check]:
    """The verdicts, in the documented order. `host_files`: the mode (`st_mode`) on the
    host of each probe file (by suffix), None where it does not exist."""
    files = host_files or {}
    return [
        check_user(facts, exp),
        check_not_root(facts, exp),
        check_canary(facts, exp),
        check_socket(facts, exp),
        check_capabilities(facts, exp),
        check_env(facts, exp),
        check_project(facts, exp, host_owner),
        check_git_internals(facts, exp),
        check_setuid(facts, exp, files),
        check_devices(facts, exp, files),
        check_init(facts, exp),
        *check_tools(facts, exp),
    ]


def passed(checks: Sequence[Check]) -> bool:
    return not any(c.status == FAIL for c in checks)


def report_json(checks: Sequence[Check]) -> dict[str, Any]:
    return {"passed": passed(checks), "checks": [c.to_json() for c in checks]}


def render_text(checks: Sequence[Check], *, utf8: bool = True, color: bool = False) -> list[str]:
    marks = MARKS_UTF8 if utf8 else MARKS_ASCII

    def mark(status: str) -> str:
        return f"\033[{_COLORS[status]}m{marks[status]}\033[0m" if color else marks[status]

    lines = []
    for c in checks:
        if c.status == PASS:
            lines.append(f"{mark(PASS)} {c.label}" + (f" ({c.detail})" if c.detail else ""))
        elif c.status == FAIL:
            lines.append(f"{mark(FAIL)} {c.label}: {c.detail}")
        else:
            lines.append(f"{mark(SKIP)} {c.label}: skipped ({c.detail})")
    failed = sum(c.status == FAIL for c in checks)
    skipped = sum(c.status == SKIP for c in checks)
    note = f", {skipped} skipped" if skipped else ""
    if failed:
        lines.append(f"{failed} of {len(checks)} checks failed{note}.")
    else:
        lines.append(f"All {len(checks) - skipped} checks passed{note}.")
    return lines


# ------------------------------------------------------------------ host-side bait


def is_within(path: str, root: str) -> bool:
    path, root = os.path.normpath(path), os.path.normpath(root)
    return path == root or path.startswith(root.rstrip("/") + "/")


def canary_parents(candidates: Sequence[str], project_dirs: Sequence[str]) -> list[str]:
    """Directories to plant canaries in: existing, distinct, none inside the project
    (the project is mounted on purpose)."""
    chosen: list[str] = []
    seen: set[str] = set()
    for candidate in candidates:
        if not candidate or not os.path.isdir(candidate):
            continue
        real = os.path.realpath(candidate)
        if real in seen or any(
            is_within(real, os.path.realpath(p)) or is_within(candidate, p) for p in project_dirs
        ):
            continue
        seen.add(real)
        chosen.append(candidate)
    return chosen


def probes_for(path: str, binds: Sequence[Bind]) -> tuple[tuple[str, ...], str | None]:
    """Where a host path would show up inside: its own path, plus its path under the
    target of every bind whose source holds it. Also the first such source."""
    probes = [path]
    via: str | None = None
    real = os.path.realpath(path)
    for bind in binds:
        source = os.path.realpath(bind.source)
        if not is_within(real, source):
            continue
        via = via or bind.source
        rel = os.path.relpath(real, source)
        mapped = bind.target if rel == "." else os.path.join(bind.target, rel)
        if mapped not in probes:
            probes.append(mapped)
    return tuple(probes), via


def plant_canaries(parents: Sequence[str], binds: Sequence[Bind]) -> list[Canary]:
    canaries = []
    for parent in parents:
        try:
            directory = tempfile.mkdtemp(prefix=".aishell-verify-", dir=parent)
        except OSError:
            continue
        path = os.path.join(directory, "canary")
        try:
            with open(path, "w") as fh:
                fh.write(f"aishell verify canary {secrets.token_hex(16)}\n")
        except OSError:
            shutil.rmtree(directory, ignore_errors=True)
            continue
        probes, via = probes_for(path, binds)
        canaries.append(Canary(path, probes, via))
    return canaries


def remove_canaries(canaries: Sequence[Canary]) -> None:
    for canary in canaries:
        shutil.rmtree(os.path.dirname(canary.path), ignore_errors=True)


def tool_specs(st: State | None) -> tuple[ToolSpec, ...]:
    if st is None:
        return ()
    specs = [
        ToolSpec(name, BY_NAME[name].label, BY_NAME[name].command, "--version")
        for name in sorted(st.tools)
        if name in BY_NAME
    ]
    if st.gitleaks:
        specs.append(ToolSpec("gitleaks", "Gitleaks", "gitleaks", "version"))
    return tuple(specs)


def script_args(exp: Expected, *, env_value: str, probe_name: str) -> tuple[str, ...]:
    args = [f"canary={p}" for c in exp.canaries for p in c.probes]
    args += [
        f"env-name={exp.env_name}",
        f"env-value={env_value}",
        f"project={exp.project_dir}",
        f"probe={probe_name}",
    ]
    args += [f"tool={t.name}:{t.command}:{t.version_arg}" for t in exp.tools]
    return tuple(args)


def script_text() -> str:
    return (Path(__file__).resolve().parent.parent / "templates" / "verify.sh").read_text()


def _owner(path: str) -> tuple[int, int] | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st.st_uid, st.st_gid


PROBE_SUFFIXES = (*SETUID_PROBES, DEVICE_PROBE)


def _capabilities(path: str) -> int | None:
    try:
        return 1 if os.getxattr(path, "security.capability", follow_symlinks=False) else None
    except OSError:
        return None


def _mode(path: str) -> int | None:
    try:
        return os.lstat(path).st_mode
    except OSError:
        return None


def remove_probe_files(probe_path: str) -> None:
    """The files the host-boundary probes made in the project (root's, when sudo worked:
    the project directory is the user's, so they can be removed)."""
    for suffix in PROBE_SUFFIXES:
        try:
            os.unlink(probe_path + suffix)
        except FileNotFoundError:
            pass
        except OSError as exc:
            output.warn(f"could not remove {probe_path + suffix}: {exc.strerror}")
    moved = os.path.join(os.path.dirname(probe_path), ".git-" + os.path.basename(probe_path))
    if os.path.lexists(moved):
        output.warn(f"the probe moved .git to {moved} and could not move it back: do it by hand")


# ------------------------------------------------------------------ the command


def run_checks() -> list[Check]:
    prep = launch.prepare(LaunchRequest(kind="exec", args=("true",)))
    spec, host = prep.spec, prep.host
    token = secrets.token_hex(8)
    env_name = f"AISHELL_VERIFY_CANARY_{token.upper()}"
    env_value = secrets.token_hex(16)
    probe_name = f".aishell-verify-{token}"
    probe_path = os.path.join(spec.project_dir, probe_name)
    binds = (Bind(spec.project_dir, spec.project_dir), *spec.binds)
    project_dirs = [spec.project_dir, prep.project.canonical]

    canaries: list[Canary] = []
    try:
        parents = canary_parents([host.home, tempfile.gettempdir()], project_dirs)
        canaries = plant_canaries(parents, binds)
        exp = Expected(
            uid=host.uid,
            gid=host.gid,
            canaries=tuple(canaries),
            project_dir=spec.project_dir,
            tools=tool_specs(state.load()),
            env_name=env_name,
            git_internals=prep.config.git_internals,
        )
        command = (
            "bash",
            "-s",
            "--",
            *script_args(exp, env_value=env_value, probe_name=probe_name),
        )
        # Output is captured and the script comes on stdin: never a terminal.
        run = build_run_args(
            spec._replace(command=command),
            host._replace(stdin_tty=False, stdout_tty=False),
        )
        output.info(f"Verifying the sandbox of {prep.project.root} ({spec.image})...")
        # Under an allowlist policy the session's proxy and network exist around the run.
        with proxy.egress(
            prep.engine,
            prep.egress,
            base_image=prep.config.base_image,
            uid=host.uid,
            gid=host.gid,
            project=prep.project.root,
            container="verify",
        ):
            result = prep.engine.capture(
                *run.argv,
                input=script_text(),
                env={**os.environ, **run.env, env_name: env_value},
                timeout=RUN_TIMEOUT,
            )
        facts = parse_facts(result.stdout)
        if not facts:
            raise AishellError(
                f"the verification sandbox did not run (exit {result.returncode})",
                hint="check the output above; 'aishell check' diagnoses the setup",
                details=(result.stderr.strip() or result.stdout.strip()) or None,
            )
        host_owner = _owner(probe_path)
        host_files = {suffix: _mode(probe_path + suffix) for suffix in PROBE_SUFFIXES}
        host_files[CAPABILITY_PROBE] = _capabilities(probe_path + SETUID_PROBES[0])
    finally:
        remove_probe_files(probe_path)
        remove_canaries(canaries)
        try:
            os.unlink(probe_path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            output.warn(f"could not remove {probe_path}: {exc.strerror}")
    return evaluate(facts, exp, host_owner=host_owner, host_files=host_files)


def main(argv: list[str]) -> int:
    p = parser(
        "aishell verify",
        "Start a sandbox for this project and check, from inside, that its walls hold: "
        "host user, no root, unmounted host files out of reach, no engine socket, "
        "default capabilities, no leaked host environment, project ownership, git "
        "internals read-only, no set-user-ID files or device nodes, init, agents present. "
        "Exit status 1 if any check fails.",
    )
    p.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    args = p.parse_args(argv)

    checks = run_checks()
    if args.json:
        rj.emit(report_json(checks))
    else:
        color = output.style("x", "1", sys.stdout) != "x"
        for line in render_text(checks, utf8=rj.stdout_is_utf8(), color=color):
            output.out(line)
    return EXIT_OK if passed(checks) else EXIT_ERROR
