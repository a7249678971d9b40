"""Validation of docker_args and mounts (aishell.security.validate)."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from aishell.security import validate
from aishell.security.validate import (
    DANGEROUS_CAPABILITIES,
    Danger,
    check_docker_args,
    check_mounts,
    render,
)

HOME = "/home/u"


def flagged(tokens: list[str], *, home: str | None = HOME) -> list[str]:
    return [d.what for d in check_docker_args(tokens, home=home)]


def flagged_mounts(sources: list[str], *, home: str = HOME) -> list[str]:
    return [d.what for d in check_mounts([(s, "/mnt/x") for s in sources], home=home)]


# --------------------------------------------------------------------------------------
# docker_args: token lists -> flagged `what`
# --------------------------------------------------------------------------------------

DOCKER_ARGS_CASES: list[tuple[list[str], list[str]]] = [
    # --privileged
    (["--privileged"], ["--privileged"]),
    (["--privileged=true"], ["--privileged=true"]),
    (["--privileged=True"], ["--privileged=True"]),
    (["--privileged=1"], ["--privileged=1"]),
    (["--privileged=t"], ["--privileged=t"]),
    (["--privileged=yes"], ["--privileged=yes"]),  # docker rejects it; we err on warning
    (["--PRIVILEGED"], ["--PRIVILEGED"]),
    (["--rm", "--privileged", "-it"], ["--privileged"]),
    (["--privileged", "--privileged"], ["--privileged"]),  # reported once
    (["-it --privileged"], ["--privileged"]),  # list item with two words
    (["--privileged --cap-add SYS_ADMIN"], ["--privileged", "--cap-add SYS_ADMIN"]),
    # --use-api-socket (docker >= 28)
    (["--use-api-socket"], ["--use-api-socket"]),
    # --cap-add, every spelling
    (["--cap-add", "SYS_ADMIN"], ["--cap-add SYS_ADMIN"]),
    (["--cap-add=SYS_ADMIN"], ["--cap-add=SYS_ADMIN"]),
    (["--cap-add=sys_admin"], ["--cap-add=sys_admin"]),
    (["--cap-add=CAP_SYS_ADMIN"], ["--cap-add=CAP_SYS_ADMIN"]),
    (["--cap-add", "cap_sys_admin"], ["--cap-add cap_sys_admin"]),
    (["--cap-add", "Sys_Admin"], ["--cap-add Sys_Admin"]),
    (["--cap-add", " SYS_ADMIN "], ["--cap-add ' SYS_ADMIN '"]),
    (["--cap-add", "ALL"], ["--cap-add ALL"]),
    (["--cap-add=all"], ["--cap-add=all"]),
    (["--cap-add", "CHOWN,SYS_ADMIN"], ["--cap-add CHOWN,SYS_ADMIN"]),
    (["--cap-add=NET_ADMIN,SYS_PTRACE"], ["--cap-add=NET_ADMIN,SYS_PTRACE"]),
    (["--cap-add SYS_ADMIN"], ["--cap-add SYS_ADMIN"]),  # one list item, two words
    (["--cap-drop", "ALL", "--cap-add", "SYS_ADMIN"], ["--cap-add SYS_ADMIN"]),
    (["--Cap-Add", "SYS_ADMIN"], ["--Cap-Add SYS_ADMIN"]),
    # --security-opt
    (["--security-opt", "seccomp=unconfined"], ["--security-opt seccomp=unconfined"]),
    (["--security-opt=seccomp=unconfined"], ["--security-opt=seccomp=unconfined"]),
    (["--security-opt", "seccomp:unconfined"], ["--security-opt seccomp:unconfined"]),
    (["--security-opt", "SECCOMP=Unconfined"], ["--security-opt SECCOMP=Unconfined"]),
    (["--security-opt", "apparmor=unconfined"], ["--security-opt apparmor=unconfined"]),
    (["--security-opt=apparmor:unconfined"], ["--security-opt=apparmor:unconfined"]),
    (["--security-opt", "label=disable"], ["--security-opt label=disable"]),
    (["--security-opt", "label:disable"], ["--security-opt label:disable"]),
    (["--security-opt", "label=type:spc_t"], ["--security-opt label=type:spc_t"]),
    (["--security-opt", "label=type:unconfined_t"], ["--security-opt label=type:unconfined_t"]),
    (["--security-opt", "systempaths=unconfined"], ["--security-opt systempaths=unconfined"]),
    (["--security-opt", "unmask=ALL"], ["--security-opt unmask=ALL"]),
    (["--security-opt", "unmask=/proc/kcore"], ["--security-opt unmask=/proc/kcore"]),
    # namespaces shared with the host
    (["--network", "host"], ["--network host"]),
    (["--network=host"], ["--network=host"]),
    (["--net", "host"], ["--net host"]),
    (["--net=host"], ["--net=host"]),
    (["--network=HOST"], ["--network=HOST"]),
    (["--network", "name=host"], ["--network name=host"]),
    (["--network", "name=host,alias=x"], ["--network name=host,alias=x"]),
    (["--network", "ns:/proc/1/ns/net"], ["--network ns:/proc/1/ns/net"]),
    (["--pid", "host"], ["--pid host"]),
    (["--pid=host"], ["--pid=host"]),
    (["--pid=ns:/proc/1/ns/pid"], ["--pid=ns:/proc/1/ns/pid"]),
    (["--ipc", "host"], ["--ipc host"]),
    (["--ipc=host"], ["--ipc=host"]),
    (["--uts", "host"], ["--uts host"]),
    (["--uts=host"], ["--uts=host"]),
    (["--userns", "host"], ["--userns host"]),
    (["--userns=host"], ["--userns=host"]),
    (["--cgroupns", "host"], ["--cgroupns host"]),
    (["--cgroupns=host"], ["--cgroupns=host"]),
    # devices
    (["--device", "/dev/sda"], ["--device /dev/sda"]),
    (["--device=/dev/fuse"], ["--device=/dev/fuse"]),
    (["--device", "/dev/kvm:/dev/kvm:rwm"], ["--device /dev/kvm:/dev/kvm:rwm"]),
    (["--device-cgroup-rule", "c 1:3 mr"], ["--device-cgroup-rule 'c 1:3 mr'"]),
    (["--device-cgroup-rule=a *:* rwm"], ["--device-cgroup-rule=a *:* rwm"]),
    # engine sockets through -v / --volume
    (["-v", "/var/run/docker.sock:/var/run/docker.sock"],
     ["-v /var/run/docker.sock:/var/run/docker.sock"]),
    (["-v", "/run/docker.sock:/run/docker.sock:ro"], ["-v /run/docker.sock:/run/docker.sock:ro"]),
    (["--volume", "/var/run/docker.sock:/sock"], ["--volume /var/run/docker.sock:/sock"]),
    (["--volume=/var/run/docker.sock:/sock"], ["--volume=/var/run/docker.sock:/sock"]),
    (["-v=/var/run/docker.sock:/sock"], ["-v=/var/run/docker.sock:/sock"]),
    (["-v/var/run/docker.sock:/sock"], ["-v/var/run/docker.sock:/sock"]),
    (["-itv", "/var/run/docker.sock:/sock"], ["-itv /var/run/docker.sock:/sock"]),
    (["-v /var/run/docker.sock:/sock"], ["-v /var/run/docker.sock:/sock"]),
    (["-v", "/home/u/.docker/run/docker.sock:/s"], ["-v /home/u/.docker/run/docker.sock:/s"]),
    (["-v", "/tmp/x/docker.sock:/s"], ["-v /tmp/x/docker.sock:/s"]),
    (["-v", "/run/podman/podman.sock:/s"], ["-v /run/podman/podman.sock:/s"]),
    (["-v", "/run/user/1000/podman/podman.sock:/s"], ["-v /run/user/1000/podman/podman.sock:/s"]),
    (["-v", "/run/containerd/containerd.sock:/s"], ["-v /run/containerd/containerd.sock:/s"]),
    (["-v", "/opt/x/DOCKER.SOCK:/s"], ["-v /opt/x/DOCKER.SOCK:/s"]),
    (["-v", "/var/run:/hostrun"], ["-v /var/run:/hostrun"]),
    # target is the engine socket path in the container
    (["-v", "/tmp/proxy.sock:/var/run/docker.sock"], ["-v /tmp/proxy.sock:/var/run/docker.sock"]),
    (["-v", "sockvol:/run/docker.sock"], ["-v sockvol:/run/docker.sock"]),
    # engine sockets through --mount: src/source, any key order, quoting, key case
    (["--mount", "type=bind,src=/var/run/docker.sock,dst=/var/run/docker.sock"],
     ["--mount type=bind,src=/var/run/docker.sock,dst=/var/run/docker.sock"]),
    (["--mount", "type=bind,source=/var/run/docker.sock,target=/s"],
     ["--mount type=bind,source=/var/run/docker.sock,target=/s"]),
    (["--mount", "target=/s,source=/var/run/docker.sock,type=bind"],
     ["--mount target=/s,source=/var/run/docker.sock,type=bind"]),
    (["--mount=type=bind,src=/var/run/docker.sock,dst=/s"],
     ["--mount=type=bind,src=/var/run/docker.sock,dst=/s"]),
    (["--mount", 'type=bind,"src=/var/run/docker.sock",dst=/s'],
     ["--mount 'type=bind,\"src=/var/run/docker.sock\",dst=/s'"]),
    (["--mount", 'type=bind,src="/var/run/docker.sock",dst=/s'],
     ["--mount 'type=bind,src=\"/var/run/docker.sock\",dst=/s'"]),
    (["--mount", "type=bind,src='/var/run/docker.sock',dst=/s"],
     ["--mount 'type=bind,src='\"'\"'/var/run/docker.sock'\"'\"',dst=/s'"]),
    (["--mount", "Type=Bind,SRC=/var/run/docker.sock,DST=/s"],
     ["--mount Type=Bind,SRC=/var/run/docker.sock,DST=/s"]),
    (["--mount", "type=bind, src=/var/run/docker.sock, dst=/s"],
     ["--mount 'type=bind, src=/var/run/docker.sock, dst=/s'"]),
    (["--mount", "type=bind,src=/tmp/p.sock,dst=/var/run/docker.sock"],
     ["--mount type=bind,src=/tmp/p.sock,dst=/var/run/docker.sock"]),
    (["--mount", "type=bind,src=/tmp/p.sock,destination=/run/docker.sock,readonly"],
     ["--mount type=bind,src=/tmp/p.sock,destination=/run/docker.sock,readonly"]),
    # host paths through docker_args mounts: same rules as check_mounts
    (["-v", "/:/host"], ["-v /:/host"]),
    (["-v", "/:/host:ro"], ["-v /:/host:ro"]),
    (["-v", "//:/host"], ["-v //:/host"]),
    (["--mount", "type=bind,src=/,dst=/host"], ["--mount type=bind,src=/,dst=/host"]),
    (["--mount", "type=bind,source=/etc,target=/e,readonly"],
     ["--mount type=bind,source=/etc,target=/e,readonly"]),
    (["-v", "/etc:/e"], ["-v /etc:/e"]),
    (["-v", "/etc/passwd:/etc/passwd:ro"], ["-v /etc/passwd:/etc/passwd:ro"]),
    (["-v", "/etc/:/e"], ["-v /etc/:/e"]),
    (["-v", "/proc:/p"], ["-v /proc:/p"]),
    (["-v", "/sys/kernel:/k"], ["-v /sys/kernel:/k"]),
    (["-v", "/dev:/dev"], ["-v /dev:/dev"]),
    (["-v", "/boot:/b"], ["-v /boot:/b"]),
    (["-v", "/root:/r"], ["-v /root:/r"]),
    (["-v", "/var/lib/docker:/d"], ["-v /var/lib/docker:/d"]),
    (["-v", "/home/u:/h"], ["-v /home/u:/h"]),
    (["-v", "/home:/h"], ["-v /home:/h"]),
    (["-v", "/home/u/.ssh:/k:ro"], ["-v /home/u/.ssh:/k:ro"]),
    (["-v", "~/.ssh:/k"], ["-v ~/.ssh:/k"]),
    (["-v", "/home/u/.aws:/a"], ["-v /home/u/.aws:/a"]),
    (["-v", "/home/u/projects/../.aws:/a"], ["-v /home/u/projects/../.aws:/a"]),
    (["--mount", "type=bind,src=/home/u/.kube,dst=/k"],
     ["--mount type=bind,src=/home/u/.kube,dst=/k"]),
    # several at once, in order
    (["--privileged", "-v", "/:/host", "--network=host", "--device", "/dev/mem"],
     ["--privileged", "-v /:/host", "--network=host", "--device /dev/mem"]),
    # values of value-taking options are not options ...
    (["-e", "--privileged"], []),
    (["-e", "X=--privileged"], []),
    (["--env", "X=--privileged"], []),
    (["--env=X=--privileged"], []),
    (["-eX=--privileged"], []),
    (["-eX=1 --privileged"], []),  # one argv word: all of it is -e's value
    (["--label", "privileged=1"], []),
    (["--label", "--privileged"], []),
    (["-l", "--privileged"], []),
    (["--name", "--privileged"], []),
    (["--entrypoint", "--privileged"], []),
    (["-w", "--privileged"], []),
    (["-h", "--privileged"], []),
    (["-u", "--privileged"], []),
    (["--hostname", "--network=host"], []),
    (["--add-host", "--privileged"], []),
    (["--health-cmd", "--privileged"], []),
    (["--label", "--cap-add=SYS_ADMIN"], []),
    (["--annotation", "x=--privileged"], []),
    (["--log-opt", "tag=--device"], []),
    (["--tmpfs", "/run"], []),
    (["--tmpfs", "/var/run/docker.sock"], []),
    (["-e", "DOCKER_HOST=unix:///var/run/docker.sock"],
     ["-e DOCKER_HOST=unix:///var/run/docker.sock"]),  # hands the agent an engine
    # ... but a value-taking option is still read after a boolean one
    (["--rm", "--privileged"], ["--privileged"]),
    (["-it", "--privileged"], ["--privileged"]),
    (["--init", "--pid", "host"], ["--pid host"]),
]  # fmt: skip

CLEAN_DOCKER_ARGS: list[list[str]] = [
    [],
    ["--rm"],
    ["-it"],
    ["--privileged=false"],
    ["--privileged=False"],
    ["--privileged=0"],
    ["--privileged=f"],
    ["--use-api-socket=false"],
    ["--cap-drop", "ALL"],
    ["--cap-drop=ALL"],
    ["--cap-drop", "SYS_ADMIN"],
    ["--cap-add", "CHOWN"],
    ["--cap-add=chown"],
    ["--cap-add", "NET_BIND_SERVICE"],
    ["--cap-add", "MKNOD"],
    ["--cap-add", "NET_RAW"],
    ["--cap-add", "CHOWN,SETUID"],
    ["--cap-add", "SYS_ADMINX"],
    ["--cap-add", ""],
    ["--network", "bridge"],
    ["--network=none"],
    ["--network", "mynet"],
    ["--network", "hostnet"],
    ["--network", "name=mynet,alias=host"],
    ["--net=bridge"],
    ["--network-alias", "host"],
    ["--ipc", "private"],
    ["--ipc=shareable"],
    ["--uts", "private"],
    ["--userns", "keep-id"],
    ["--cgroupns", "private"],
    ["--security-opt", "no-new-privileges"],
    ["--security-opt=no-new-privileges:true"],
    ["--security-opt", "no-new-privileges=false"],  # the default: no weakening
    ["--security-opt", "label=level:s0:c100,c200"],
    ["--security-opt", "label=type:container_t"],
    ["--security-opt", "mask=/proc/acpi"],
    ["-e", "X=--privileged"],
    ["-e", "PRIVILEGED=1"],
    ["--env", "NETWORK=host"],
    ["--label", "privileged=1"],
    ["--label=network=host"],
    ["-v", "data:/data"],
    ["-v", "docker.sock:/data"],
    ["-v", "/data"],
    ["-v", "/var/run/docker.sock"],  # anonymous volume at that path: empty
    ["-v", "/home/u/projects/x:/work"],
    ["-v", "/etcetera:/e"],
    ["-v", "/home/u/.sshx:/k"],
    ["-v", "/home/u/.ssh-backup-notes:/k"],
    ["-v", "/home/u/.npm:/n"],
    ["-v", "/home/u/.cache/pip:/c"],
    ["-v", "/home/user2/projects:/p"],
    ["-v", "/opt/sdk:/opt/sdk:ro"],
    ["-v", "relative/path:/x"],
    ["--mount", "type=volume,src=data,dst=/data"],
    ["--mount", "type=tmpfs,dst=/run"],
    ["--mount", "type=bind,src=/home/u/projects,dst=/p"],
    ["--mount", "src=/home/u/src,dst=/home/u/src,type=bind,readonly"],
    ["--tmpfs", "/tmp:rw,size=1g"],
    ["-p", "127.0.0.1:8080:80"],
    ["--add-host", "host.docker.internal:host-gateway"],
    ["--sysctl", "net.ipv4.ip_forward=1"],
    ["--ulimit", "nofile=1024"],
    ["--memory", "4g", "--cpus=2"],
    ["--some-unknown-flag", "--another=1"],
    ["--", "--privileged-ish"],
    ["privileged"],
    ["-"],
    ["--"],
    ["-x"],
    ["--volume"],  # missing value
    ["--cap-add"],
    ["-v"],
]


@pytest.mark.parametrize(("tokens", "expected"), DOCKER_ARGS_CASES, ids=repr)
def test_docker_args_flagged(tokens: list[str], expected: list[str]) -> None:
    assert flagged(tokens) == expected


@pytest.mark.parametrize("tokens", CLEAN_DOCKER_ARGS, ids=repr)
def test_docker_args_clean(tokens: list[str]) -> None:
    assert check_docker_args(tokens, home=HOME) == []


def test_docker_args_source_and_why() -> None:
    (danger,) = check_docker_args(["--cap-add", "SYS_ADMIN"])
    assert danger.source == "docker_args"
    assert "SYS_ADMIN" in danger.why
    assert "\n" not in danger.why


def test_docker_args_without_home_still_checks_system_paths() -> None:
    assert flagged(["-v", "/:/host"], home=None) == ["-v /:/host"]
    assert flagged(["-v", "/var/run/docker.sock:/s"], home=None) == ["-v /var/run/docker.sock:/s"]
    # home-relative rules need the home directory
    assert flagged(["-v", "/home/u/.ssh:/k"], home=None) == []


def test_docker_args_home_relative_rules_follow_home() -> None:
    assert flagged(["-v", "/Users/me/.aws:/a"], home="/Users/me") == ["-v /Users/me/.aws:/a"]
    assert flagged(["-v", "/Users/me/.aws:/a"], home=HOME) == []


def test_docker_args_accepts_tuple() -> None:
    assert [d.what for d in check_docker_args(("--privileged",))] == ["--privileged"]


# Every dangerous capability, every spelling.

CAP_SPELLINGS: list[Callable[[str], list[str]]] = [
    lambda c: ["--cap-add", c],
    lambda c: ["--cap-add", c.lower()],
    lambda c: ["--cap-add", "CAP_" + c],
    lambda c: ["--cap-add", "cap_" + c.lower()],
    lambda c: [f"--cap-add={c}"],
    lambda c: [f"--cap-add={c.lower()}"],
    lambda c: [f"--cap-add=CAP_{c}"],
    lambda c: [f"--cap-add=CHOWN,{c}"],
    lambda c: [f"--cap-add {c}"],
]


@pytest.mark.parametrize("cap", sorted(DANGEROUS_CAPABILITIES))
@pytest.mark.parametrize("spelling", range(len(CAP_SPELLINGS)))
def test_every_dangerous_capability_every_spelling(cap: str, spelling: int) -> None:
    tokens = CAP_SPELLINGS[spelling](cap)
    dangers = check_docker_args(tokens)
    assert len(dangers) == 1
    assert dangers[0].what == " ".join(tokens)
    if cap != "ALL":
        assert cap in dangers[0].why


def test_dangerous_capability_set_is_the_documented_one() -> None:
    assert set(DANGEROUS_CAPABILITIES) == {
        "ALL", "SYS_ADMIN", "SYS_MODULE", "SYS_RAWIO", "SYS_PTRACE", "DAC_READ_SEARCH",
        "NET_ADMIN", "BPF", "PERFMON", "SYS_BOOT", "SYS_TIME", "SYSLOG", "MAC_ADMIN",
        "MAC_OVERRIDE", "AUDIT_CONTROL",
    }  # fmt: skip


@pytest.mark.parametrize(
    "cap",
    ["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
     "SETFCAP", "NET_BIND_SERVICE", "NET_RAW", "SYS_CHROOT", "MKNOD", "AUDIT_WRITE",
     "SYS_NICE", "SYS_RESOURCE", "IPC_LOCK", "LEASE", "WAKE_ALARM"],
)  # fmt: skip
def test_harmless_capabilities_not_flagged(cap: str) -> None:
    assert check_docker_args(["--cap-add", cap]) == []
    assert check_docker_args([f"--cap-add=cap_{cap.lower()}"]) == []


def test_several_dangerous_caps_in_one_option_is_one_warning() -> None:
    (danger,) = check_docker_args(["--cap-add", "SYS_ADMIN,NET_ADMIN,sys_admin"])
    assert "SYS_ADMIN, NET_ADMIN" in danger.why


# Every namespace option, every spelling.

NAMESPACE_OPTIONS = ["--network", "--net", "--pid", "--ipc", "--uts", "--userns", "--cgroupns"]


@pytest.mark.parametrize("option", NAMESPACE_OPTIONS)
@pytest.mark.parametrize("value", ["host", "HOST", "Host", "ns:/proc/1/ns/x"])
def test_namespace_host_every_spelling(option: str, value: str) -> None:
    assert flagged([option, value]) == [f"{option} {value}"]
    assert flagged([f"{option}={value}"]) == [f"{option}={value}"]
    assert flagged([f"{option} {value}"]) == [f"{option} {value}"]


@pytest.mark.parametrize("option", NAMESPACE_OPTIONS)
@pytest.mark.parametrize("value", ["private", "bridge", "none", "hosts", ""])
def test_namespace_other_values_clean(option: str, value: str) -> None:
    assert flagged([option, value]) == []
    assert flagged([f"{option}={value}"]) == []


# Option table: every value-taking option swallows its value.


@pytest.mark.parametrize("name", sorted(validate._LONG_WITH_VALUE))
def test_every_value_option_consumes_its_value(name: str) -> None:
    for tokens in (
        [f"--{name}", "--privileged"],
        [f"--{name}", "--cap-add=SYS_ADMIN"],
        [f"--{name}", "--network=host"],
    ):
        whats = flagged(tokens)
        assert tokens[1] not in whats
        assert len(whats) <= 1
        if whats:  # these flag the option itself, whatever its value
            assert whats == [" ".join(tokens)]
            assert name in {
                "device", "device-cgroup-rule", "volumes-from", "group-add", "cgroup-parent",
                "pod", "gpus", "runtime", "volume-driver", "env-file",
            }  # fmt: skip


@pytest.mark.parametrize("letter", sorted(validate._SHORT_WITH_VALUE))
def test_every_short_value_option_consumes_its_value(letter: str) -> None:
    assert flagged([f"-{letter}", "--privileged"]) == []
    assert flagged([f"-it{letter}", "--privileged"]) == []
    assert flagged([f"-{letter}=--privileged"]) == []
    assert flagged([f"-{letter}--privileged"]) == []
    assert flagged([f"-{letter}", "x", "--privileged"]) == ["--privileged"]


@pytest.mark.parametrize("name", sorted(validate._LONG_FLAGS - {"privileged", "use-api-socket"}))
def test_boolean_options_do_not_consume(name: str) -> None:
    assert flagged([f"--{name}", "--privileged"]) == ["--privileged"]
    assert flagged([f"--{name}=false", "--privileged"]) == ["--privileged"]


@pytest.mark.parametrize("letter", sorted(validate._SHORT_FLAGS))
def test_short_boolean_options_do_not_consume(letter: str) -> None:
    assert flagged([f"-{letter}", "--privileged"]) == ["--privileged"]


def test_option_tables_are_consistent() -> None:
    assert not validate._LONG_WITH_VALUE & validate._LONG_FLAGS
    assert set(validate._SHORT_WITH_VALUE.values()) <= validate._LONG_WITH_VALUE
    assert set(validate._SHORT_FLAGS.values()) <= validate._LONG_FLAGS
    assert not set(validate._SHORT_WITH_VALUE) & set(validate._SHORT_FLAGS)
    assert set(validate._ALIASES) <= validate._LONG_WITH_VALUE


def test_unknown_long_option_does_not_consume_next() -> None:
    assert flagged(["--made-up", "--privileged"]) == ["--privileged"]
    assert flagged(["--made-up=x", "--privileged"]) == ["--privileged"]


def test_positional_tokens_are_skipped_and_scanning_goes_on() -> None:
    assert flagged(["stray", "--privileged"]) == ["--privileged"]


@pytest.mark.parametrize("seed", range(20))
def test_never_raises_on_arbitrary_tokens(seed: int) -> None:
    rng = random.Random(seed)
    alphabet = [
        "-",
        "=",
        ",",
        ":",
        "/",
        '"',
        "'",
        " ",
        "v",
        "e",
        "a",
        "sock",
        "--mount",
        "--cap-add",
        "-v",
        "host",
        "docker.sock",
        "~",
        ".",
        "type=bind",
        "src=",
    ]
    tokens = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8)))
              for _ in range(rng.randint(0, 12))]  # fmt: skip
    for danger in check_docker_args(tokens, home=HOME):
        assert isinstance(danger, Danger)
        assert danger.what and danger.why and danger.source == "docker_args"


# --------------------------------------------------------------------------------------
# mounts
# --------------------------------------------------------------------------------------

FLAGGED_MOUNT_SOURCES = [
    "/",
    "//",
    "///",
    "/.",
    "/etc/..",
    "/etc",
    "/etc/",
    "//etc",
    "/etc//",
    "/etc/.",
    "/./etc",
    "/etc/passwd",
    "/etc/shadow",
    "/etc/ssh/ssh_host_rsa_key",
    "/ETC",
    "/boot",
    "/boot/grub",
    "/proc",
    "/proc/1/root",
    "/sys",
    "/sys/fs/cgroup",
    "/dev",
    "/dev/sda",
    "/root",
    "/root/.ssh",
    "/run",
    "/run/user/1000",
    "/var/run",
    "/var/run/secrets",
    "/var/lib/docker",
    "/var/lib/docker/volumes/x",
    "/var/lib/containers/storage",
    "/var",  # includes /var/run and the engine's storage
    "/var/lib",
    "/home/u",
    "/home/u/",
    "/home//u",
    "/home/u/projects/..",
    "~",
    "/home",  # parent of the home directory
    "/home/",
    "/home/u/.ssh",
    "/home/u/.ssh/",
    "/home/u/.ssh/id_ed25519",
    "/home/u/.ssh/config",
    "~/.ssh",
    "~/.ssh/id_rsa",
    "/home/u/projects/../.ssh",
    "/home/u/.SSH",
    "/home/u/.aws",
    "/home/u/.aws/credentials",
    "/home/u/.azure",
    "/home/u/.gnupg",
    "/home/u/.gnupg/private-keys-v1.d",
    "/home/u/.kube",
    "/home/u/.kube/config",
    "/home/u/.password-store",
    "/home/u/.docker",
    "/home/u/.docker/config.json",
    "/home/u/.config/gcloud",
    "/home/u/.config/gcloud/application_default_credentials.json",
    "/home/u/.config",  # includes ~/.config/gcloud and ~/.config/gh
    "/home/u/.netrc",
    "/home/u/.pypirc",
    "/home/u/.git-credentials",
    "/home/u/.config/gh",
    "/home/u/.npmrc",
    "/home/u/.cargo/credentials.toml",
    "/home/u/.cargo",  # includes the crates.io token
    "/home/u/.gem/credentials",
    "/home/u/.vault-token",
    "/home/u/.terraform.d/credentials.tfrc.json",
    "/home/u/.local/share/keyrings",
    "/home/u/.local",
    "/home/u/.colima",
    "/home/u/.colima/default/docker.sock",
    "/home/u/.orbstack/run/docker.sock",
    "/home/u/.rd/docker.sock",
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/run/podman/podman.sock",
    "/run/user/1000/podman/podman.sock",
    "/run/user/1000/docker.sock",
    "/run/containerd/containerd.sock",
    "/tmp/docker.sock",
    "/srv/x/podman.sock",
    "/srv/x/containerd.sock",
    "/srv/x/crio.sock",
    "/srv/x/buildkitd.sock",
]

CLEAN_MOUNT_SOURCES = [
    "/etcetera",
    "/etc-backup",
    "/etcd",
    "/bootstrap",
    "/procedures",
    "/system",
    "/devices",
    "/rootfs",
    "/running",
    "/var/runner",
    "/var/lib/dockerfiles",
    "/var/log/app",
    "/var/lib/postgresql",
    "/home/u/.sshx",
    "/home/u/.ssh.bak",
    "/home/u/ssh",
    "/home/u/.awsome",
    "/home/u/.kubex",
    "/home/u/.dockerignore",
    "/home/u/.docker-compose",
    "/home/u/.config/gcloudx",
    "/home/u/.config/nvim",
    "/home/u/.netrc.example",
    "/home/u/.npm",
    "/home/u/.cargo/registry",
    "/home/u/projects/x",
    "~/projects/x",
    "/home/u/projects/x/.ssh",  # a project's own .ssh is project data
    "/home/u/src/etc",
    "/home/user2",  # another user's home: not yours, not a parent of yours
    "/home/u2",
    "/tmp/docker.socket",
    "/tmp/docker.sock.d",
    "/srv/data",
    "/opt/sdk",
    "/mnt/usb",
    "/media/share",
    "data",  # not a host path
    "relative/dir",
]


@pytest.mark.parametrize("source", FLAGGED_MOUNT_SOURCES)
def test_mount_flagged(source: str) -> None:
    dangers = check_mounts([(source, "/mnt/x")], home=HOME)
    assert [d.what for d in dangers] == [source]
    assert dangers[0].source == "mounts"
    assert dangers[0].why
    # the same rule applies to mounts given through docker_args
    assert flagged(["-v", f"{source}:/mnt/x"]) == [f"-v {source}:/mnt/x"]


@pytest.mark.parametrize("source", CLEAN_MOUNT_SOURCES)
def test_mount_clean(source: str) -> None:
    assert check_mounts([(source, "/mnt/x")], home=HOME) == []
    assert flagged(["-v", f"{source}:/mnt/x"]) == []
    assert flagged(["--mount", f"type=bind,src={source},dst=/mnt/x"]) == []


@pytest.mark.parametrize(
    "target",
    ["/var/run/docker.sock", "/run/docker.sock", "/x/podman.sock", "/var/run//docker.sock"],
)
def test_mount_target_engine_socket(target: str) -> None:
    dangers = check_mounts([("/tmp/proxy.sock", target)], home=HOME)
    assert [d.what for d in dangers] == [f"/tmp/proxy.sock:{target}"]
    assert "socket" in dangers[0].why


def test_mount_target_not_socket_is_clean() -> None:
    assert check_mounts([("/tmp/data", "/var/run/data")], home=HOME) == []
    assert check_mounts([("/tmp/data", "")], home=HOME) == []


def test_mount_source_and_target_both_bad_is_one_warning() -> None:
    dangers = check_mounts([("/var/run/docker.sock", "/var/run/docker.sock")], home=HOME)
    assert [d.what for d in dangers] == ["/var/run/docker.sock"]


def test_mount_messages() -> None:
    def why(source: str) -> str:
        (danger,) = check_mounts([(source, "/x")], home=HOME)
        return danger.why

    assert "whole host filesystem" in why("/")
    assert "home directory" in why("/home/u")
    assert why("/home") == "includes your home directory (/home/u)"
    assert "SSH" in why("/home/u/.ssh")
    assert "AWS" in why("/home/u/.aws/credentials")
    assert "socket" in why("/var/run/docker.sock")  # the socket, not just /var/run
    assert "socket" in why("/home/u/.docker/run/docker.sock")
    assert why("/home/u/.config").startswith("includes ~/.config/")
    assert why("/var").startswith("includes /var/")
    assert "root user" in why("/root/.ssh")  # a system location, whoever's home it is
    assert why("/home/u/.local").startswith("includes ~/.local/")


def test_mounts_keep_order_and_dedupe() -> None:
    dangers = check_mounts(
        [("/etc", "/a"), ("/home/u/work", "/w"), ("/", "/h"), ("/etc", "/a")], home=HOME
    )
    assert [d.what for d in dangers] == ["/etc", "/"]


@pytest.mark.parametrize("home", ["/home/u", "/home/u/", "//home/u", "/home/./u"])
def test_home_spellings(home: str) -> None:
    assert flagged_mounts(["/home/u/.ssh", "/home/u", "/home", "/home/u/p"], home=home) == [
        "/home/u/.ssh",
        "/home/u",
        "/home",
    ]


def test_macos_home() -> None:
    home = "/Users/me"
    assert flagged_mounts(
        ["/Users", "/Users/me", "/Users/me/.aws", "/Users/me/Library/x", "/Users/you"], home=home
    ) == ["/Users", "/Users/me", "/Users/me/.aws"]


def test_home_is_root_directory() -> None:
    assert flagged_mounts(["/", "/.ssh", "/srv"], home="/") == ["/", "/.ssh"]


def test_root_home() -> None:
    assert flagged_mounts(["/root/.ssh", "/root/work", "/home"], home="/root") == [
        "/root/.ssh",
        "/root/work",
    ]


def test_empty_or_relative_home_disables_home_rules() -> None:
    assert flagged_mounts(["/home/u/.ssh", "/etc"], home="") == ["/etc"]
    assert flagged_mounts(["/home/u/.ssh", "/etc"], home="relative") == ["/etc"]


def test_check_mounts_empty() -> None:
    assert check_mounts([], home=HOME) == []


# --------------------------------------------------------------------------------------
# render
# --------------------------------------------------------------------------------------


def test_render_empty() -> None:
    assert render([]) == []


def test_render_lines() -> None:
    dangers = [
        Danger("--privileged", "full host access", "docker_args"),
        Danger("/etc", "host configuration", "mounts"),
    ]
    lines = render(dangers)
    assert lines[0] == "Security notice: options that weaken the sandbox"
    assert lines[1:3] == ["  - --privileged: full host access", "  - /etc: host configuration"]
    assert len(lines) == 4
    assert "advisory" in lines[-1]
    assert all("\n" not in line for line in lines)


def test_render_dedupes() -> None:
    d = Danger("--privileged", "x", "docker_args")
    assert len(render([d, d])) == 3


def test_render_real_findings() -> None:
    dangers = check_docker_args(["--privileged", "-v", "/:/h"], home=HOME) + check_mounts(
        [("/home/u/.ssh", "/k")], home=HOME
    )
    lines = render(dangers)
    assert [line.split(":")[0] for line in lines[1:-1]] == [
        "  - --privileged",
        "  - -v /",
        "  - /home/u/.ssh",
    ]


def test_danger_is_frozen() -> None:
    d = Danger("a", "b", "mounts")
    with pytest.raises(AttributeError):
        d.what = "c"  # type: ignore[misc]
