# aishell verify: the in-sandbox half of `aishell verify`.
#
# Not baked into any image: aishell feeds this file to `bash -s -- ARGS...` on
# the container's stdin, so it always matches the aishell that judges it. It
# only gathers facts; the host decides what passes (src/aishell/commands/verify.py).
#
# Output protocol (stdout): one fact per line, `AISHELL-VERIFY <key> <value>`,
# the value on one line. Everything else on stdout is ignored.
#
# Arguments (KEY=VALUE, any order, repeatable where it makes sense):
#   canary=PATH          a path that must not exist in here (repeatable)
#   env-name=NAME        a variable set only in the engine CLI's environment
#   env-value=VALUE      its (random) value
#   project=DIR          the project root
#   probe=NAME           a file name to create in the project
#   tool=NAME:CMD:ARG    a tool that must run: `CMD ARG` exits 0 (repeatable)
#
# Everything lives in main(), run with stdin from /dev/null: bash reads this
# script from stdin, and a command reading stdin would eat the rest of it.

main() {
    set -u
    export LC_ALL=C

    local canaries=() tools=() env_name="" env_value="" project="" probe=""
    local arg
    for arg in "$@"; do
        case "$arg" in
            canary=*) canaries+=("${arg#canary=}") ;;
            env-name=*) env_name="${arg#env-name=}" ;;
            env-value=*) env_value="${arg#env-value=}" ;;
            project=*) project="${arg#project=}" ;;
            probe=*) probe="${arg#probe=}" ;;
            tool=*) tools+=("${arg#tool=}") ;;
        esac
    done

    # The agent has passwordless sudo inside the sandbox, so whatever root in
    # here can reach, the agent can reach: probe as root when we can.
    SUDO=()
    if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO=(sudo -n)
        fact sudo yes
    else
        fact sudo no
    fi

    fact uid "$(id -u)"
    fact gid "$(id -g)"

    # -- capabilities ------------------------------------------------------
    fact capeff "$(status_field CapEff /proc/self/status)"
    fact capbnd "$(status_field CapBnd /proc/self/status)"
    fact capamb "$(status_field CapAmb /proc/self/status)"
    fact init-capbnd "$(status_field CapBnd /proc/1/status)"
    if [ "${#SUDO[@]}" -gt 0 ]; then
        fact sudo-capeff "$("${SUDO[@]}" awk '$1 == "CapEff:" { print $2 }' /proc/self/status 2>/dev/null)"
    fi

    # -- PID 1 -------------------------------------------------------------
    fact init "$(cat /proc/1/comm 2>/dev/null || echo unknown)"

    # -- canaries ----------------------------------------------------------
    local path
    for path in "${canaries[@]}"; do
        if as_root test -e "$path" || as_root test -L "$path"; then
            if as_root cat -- "$path" >/dev/null 2>&1; then
                fact canary "readable $path"
            else
                fact canary "visible $path"
            fi
        else
            fact canary "absent $path"
        fi
    done

    # -- host environment --------------------------------------------------
    if [ -n "$env_name" ]; then
        local where=""
        if printenv "$env_name" >/dev/null 2>&1; then
            where="$where agent-name"
        fi
        if [ -n "$env_value" ] && env | grep -qF -- "$env_value"; then
            where="$where agent-value"
        fi
        # Every process's environment (PID 1 holds the container's own).
        if [ -n "$env_value" ] && as_root sh -c 'cat /proc/[0-9]*/environ 2>/dev/null' \
            | tr '\0' '\n' | grep -qF -- "$env_value"; then
            where="$where process"
        fi
        if [ -n "$where" ]; then
            fact env "present${where}"
        else
            fact env absent
        fi
    fi

    # -- project -----------------------------------------------------------
    if [ -n "$project" ] && [ -n "$probe" ]; then
        local target="$project/$probe" err
        if err="$( { printf 'written by aishell verify\n' > "$target"; } 2>&1 )"; then
            fact project "ok $(stat -c %u:%g -- "$target" 2>/dev/null)"
        else
            fact project "error ${err:-cannot write $target}"
        fi
    fi

    # -- host boundary: git internals, set-user-ID files, device nodes --------
    if [ -n "$project" ] && [ -n "$probe" ]; then
        probe_git "$project" "$probe"
        probe_setuid "$project" "$probe"
        probe_device "$project" "$probe"
    fi

    # -- engine sockets and ports -------------------------------------------
    probe_sockets
    probe_ports

    # -- tools -------------------------------------------------------------
    local spec name rest cmd version out rc first
    for spec in "${tools[@]}"; do
        name="${spec%%:*}"
        rest="${spec#*:}"
        cmd="${rest%%:*}"
        version="${rest#*:}"
        if ! command -v "$cmd" >/dev/null 2>&1; then
            fact tool "$name missing $cmd is not on PATH"
            continue
        fi
        # One retry: a CLI that fails once on a cold start is still present.
        first=""
        for _ in 1 2; do
            out="$(timeout 120 "$cmd" "$version" 2>&1)"
            rc=$?
            out="$(printf '%s\n' "$out" | grep -v '^[[:space:]]*$' | head -n 1 | cut -c 1-120)"
            [ "$rc" -eq 0 ] && break
            [ -z "$first" ] && first="exit $rc: $out"
            sleep 1
        done
        if [ "$rc" -eq 0 ] && [ -n "$first" ]; then
            fact tool "$name ok $out (first try failed: $first)"
        elif [ "$rc" -eq 0 ]; then
            fact tool "$name ok $out"
        else
            fact tool "$name failed exit $rc: $out"
        fi
    done

    fact done 1
}

fact() {
    local key="$1"
    shift
    printf 'AISHELL-VERIFY %s %s\n' "$key" "$(printf '%s' "$*" | tr '\n\r\t' '   ')"
}

as_root() {
    "${SUDO[@]}" "$@"
}

status_field() {
    awk -v key="$1:" '$1 == key { print $2 }' "$2" 2>/dev/null
}

# Try what a hostile agent would: change the repository's config, hooks and info,
# move .git away. Each must fail (as root too). What did work is undone at once.
probe_git() {
    local project="$1" probe="$2" common err
    if ! common="$(cd "$project" 2>/dev/null && git rev-parse --path-format=absolute \
            --git-common-dir 2>/dev/null)" || [ "$(git -C "$project" rev-parse \
            --show-toplevel 2>/dev/null)" != "$(cd "$project" && pwd -P)" ]; then
        fact git none
        return
    fi
    if err="$(git -C "$project" config --local aishell.verify "$probe" 2>&1)"; then
        git -C "$project" config --local --unset aishell.verify >/dev/null 2>&1
        fact git-probe "config written"
    else
        fact git-probe "config refused ${err}"
    fi
    if err="$(as_root sh -c ': >> "$1"' _ "$common/config" 2>&1)"; then
        fact git-probe "config-file written"
    else
        fact git-probe "config-file refused ${err}"
    fi
    local name
    for name in hooks info; do
        if err="$(as_root sh -c ': > "$1"' _ "$common/$name/$probe" 2>&1)"; then
            as_root rm -f "$common/$name/$probe"
            fact git-probe "$name written"
        else
            fact git-probe "$name refused ${err}"
        fi
    done
    if err="$(as_root mv "$project/.git" "$project/.git-$probe" 2>&1)"; then
        as_root mv "$project/.git-$probe" "$project/.git"
        fact git-probe "rename written"
    else
        fact git-probe "rename refused ${err}"
    fi
}

# A set-user-ID root file in the project would be host root's on a rootful engine.
probe_setuid() {
    local project="$1" probe="$2" err base
    base="$project/$probe"
    if ! as_root cp /bin/true "$base-suid" 2>/dev/null; then
        fact setuid "copy failed"
        return
    fi
    local how
    for how in u+s g+s; do
        if err="$(as_root chmod "$how" "$base-suid" 2>&1)"; then
            fact setuid "chmod-$how done"
        else
            fact setuid "chmod-$how refused ${err}"
        fi
    done
    if err="$(as_root install -m 4755 /bin/true "$base-suid2" 2>&1)"; then
        fact setuid "install-4755 done"
    else
        fact setuid "install-4755 refused ${err}"
    fi
    if cp /bin/true "$base-usuid" 2>/dev/null && err="$(chmod u+s "$base-usuid" 2>&1)"; then
        fact setuid "user-chmod-u+s done"
    else
        fact setuid "user-chmod-u+s refused ${err}"
    fi
    # File capabilities (what setcap does: the security.capability attribute, here
    # cap_net_raw+ep), with perl's syscall() since setcap is not in the image.
    if ! command -v perl >/dev/null 2>&1; then
        fact setuid "file-caps unavailable perl is missing"
    elif err="$(as_root perl -e '
            my %nr = (x86_64 => 188, aarch64 => 5);
            my ($arch) = `uname -m` =~ /(\S+)/;
            my ($path, $name) = ($ARGV[0], "security.capability");
            my $value = "\x01\x00\x00\x02\x00\x20" . ("\x00" x 14);
            exit 2 unless $nr{$arch};
            syscall($nr{$arch}, $path, $name, $value, 20, 0) == 0 or die "$!\n";' \
            "$base-suid" 2>&1)"; then
        fact setuid "file-caps done"
    else
        fact setuid "file-caps refused ${err}"
    fi
}

probe_device() {
    local project="$1" probe="$2" err
    if err="$(as_root mknod "$project/$probe-dev" c 1 3 2>&1)"; then
        fact device "created"
    else
        fact device "refused ${err}"
    fi
}

# Unix sockets anywhere a process in here could open one: the image's own
# filesystem, and every mount (a mounted socket is a mount point itself; a
# mounted directory is searched a few levels deep).
probe_sockets() {
    local mounts=() mp
    while IFS= read -r mp; do
        mounts+=("$mp")
    done < <(awk '{ print $5 }' /proc/self/mountinfo 2>/dev/null \
        | sed -e 's/\\040/ /g' -e 's/\\011/\t/g' -e 's/\\012/\n/g' -e 's/\\134/\\/g' | sort -u)

    local found=()
    for mp in "${mounts[@]}"; do
        case "$mp" in
            /proc | /proc/* | /sys | /sys/* | /dev | /dev/*) continue ;;
        esac
        if as_root test -S "$mp"; then
            found+=("$mp")
        elif [ "$mp" = / ]; then
            while IFS= read -r path; do found+=("$path"); done < <(
                as_root timeout 60 find / -xdev -type s -print 2>/dev/null)
        elif as_root test -d "$mp"; then
            while IFS= read -r path; do found+=("$path"); done < <(
                as_root timeout 60 find "$mp" -xdev -maxdepth 4 -type s -print 2>/dev/null)
        fi
    done
    local host="${DOCKER_HOST:-}${CONTAINER_HOST:-}"
    case "$host" in
        unix://*) found+=("${host#unix://}") ;;
    esac

    local path seen="" kind answer
    for path in "${found[@]}"; do
        case "$seen" in *"|$path|"*) continue ;; esac
        seen="$seen|$path|"
        kind=other
        case "${path##*/}" in
            docker.sock | docker*.sock | podman.sock | podman*.sock | containerd.sock \
                | containerd*.sock | crio.sock | buildkitd.sock)
                kind=named
                ;;
        esac
        if command -v curl >/dev/null 2>&1; then
            answer="$(as_root curl -s --max-time 3 --unix-socket "$path" http://localhost/_ping 2>/dev/null)"
            [ "$answer" = OK ] && kind=api
        fi
        fact socket "$kind $path"
    done
    fact sockets-searched "${#mounts[@]} mounts"
}

# The engine's TCP API on the default gateway (the host, on the default
# bridge network), host.docker.internal if it resolves, and $DOCKER_HOST.
probe_ports() {
    local targets=() gw hex
    hex="$(awk '$2 == "00000000" { print $3; exit }' /proc/net/route 2>/dev/null)"
    if [ -n "$hex" ] && [ "${#hex}" -eq 8 ]; then
        gw="$(printf '%d.%d.%d.%d' "0x${hex:6:2}" "0x${hex:4:2}" "0x${hex:2:2}" "0x${hex:0:2}")"
        targets+=("$gw:2375" "$gw:2376")
    fi
    local hdi
    hdi="$(getent hosts host.docker.internal 2>/dev/null | awk '{ print $1; exit }')"
    if [ -n "$hdi" ]; then
        targets+=("$hdi:2375" "$hdi:2376")
    fi
    local host="${DOCKER_HOST:-}${CONTAINER_HOST:-}"
    case "$host" in
        tcp://*)
            host="${host#tcp://}"
            host="${host%%/*}"
            targets+=("$host")
            ;;
    esac

    local target h p answer
    for target in "${targets[@]}"; do
        h="${target%:*}"
        p="${target##*:}"
        if timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$h" "$p" 2>/dev/null; then
            answer=""
            if command -v curl >/dev/null 2>&1; then
                answer="$(curl -s --max-time 3 "http://$h:$p/_ping" 2>/dev/null)"
                if [ "$answer" != OK ]; then
                    answer="$(curl -sk --max-time 3 "https://$h:$p/_ping" 2>/dev/null)"
                fi
            fi
            if [ "$answer" = OK ]; then
                fact port "api $target"
            else
                fact port "open $target"
            fi
        else
            fact port "closed $target"
        fi
    done
}

main "$@" </dev/null
