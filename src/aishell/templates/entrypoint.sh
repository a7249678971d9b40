#!/bin/bash
# aishell entrypoint. Runs as root: makes an account with the host user's
# UID/GID and home path, starts pre_start in the background as that user, then
# hands over to the command with gosu (so the command never runs as root unless
# the host user is root).
set -eu

uid="${LOCAL_UID:-1000}"
gid="${LOCAL_GID:-1000}"
home="${LOCAL_HOME:-/home/developer}"
want="${LOCAL_USER:-developer}"

# The agents' volume is mounted at /tools once aishell filled it. An engine makes a
# missing volume on the spot, empty, when a container mounts it (e.g. after a prune
# removed it while this sandbox was starting): never run on that.
if mountpoint -q /tools && [ ! -f /tools/.aishell-ready.json ]; then
    echo "aishell: the agent volume mounted at /tools is empty or unfinished (it was removed" \
        "while this sandbox started, e.g. by a prune); run the command again and aishell" \
        "installs the agents again" >&2
    exit 125
fi

# /tmp survives a stop/start of the same container: clear old sentinels.
rm -f /tmp/aishell.ready /tmp/pre-start.done /tmp/pre-start.failed /tmp/pre-start.log

if ! getent group "$gid" >/dev/null; then
    gname="$want"
    getent group "$gname" >/dev/null 2>&1 && gname="aishell$gid"
    groupadd -g "$gid" "$gname" 2>/dev/null || groupadd -o -g "$gid" "aishell$gid"
fi

if entry="$(getent passwd "$uid")"; then
    user="${entry%%:*}"
    old_home="$(printf '%s' "$entry" | cut -d: -f6)"
    if [ "$old_home" != "$home" ]; then
        # (usermod refuses while the account runs processes, as root always does)
        awk -F: -v OFS=: -v u="$uid" -v h="$home" '$3 == u { $6 = h } 1' /etc/passwd \
            > /etc/passwd.aishell && cat /etc/passwd.aishell > /etc/passwd && rm -f /etc/passwd.aishell
    fi
else
    user="$want"
    if ! [[ "$user" =~ ^[a-z_][a-z0-9_-]{0,30}$ ]] || getent passwd "$user" >/dev/null; then
        user="developer"
        getent passwd "$user" >/dev/null && user="aishell$uid"
    fi
    useradd -o -u "$uid" -g "$gid" -d "$home" -M -s /bin/bash -c "aishell user" "$user"
fi

# The home directory exists at the host's path. Directories the engine created
# there to hold mounts belong to root: hand them to the user, never touching a
# mount point (those are host directories).
mkdir -p "$home"
if [ "$uid" != 0 ]; then
    mountpoint -q "$home" || chown "$uid:$gid" "$home"
    find "$home" -xdev -mindepth 1 -maxdepth 4 -type d -uid 0 -print0 2>/dev/null \
        | while IFS= read -r -d '' dir; do
            mountpoint -q "$dir" || chown "$uid:$gid" "$dir" 2>/dev/null || true
        done
fi

printf '%s ALL=(ALL) NOPASSWD:ALL\n' "$user" > /etc/sudoers.d/aishell
chmod 0440 /etc/sudoers.d/aishell

if [ -n "${AISHELL_PROJECT:-}" ]; then
    git config --system --add safe.directory "$AISHELL_PROJECT"
fi

export PATH="$home/.local/bin:$PATH"
if [ -n "${TERM:-}" ] && ! infocmp "$TERM" >/dev/null 2>&1; then
    export TERM=xterm-256color
fi

# network: allowlist — the container has no network but loopback; its one way out
# is the session's unix socket to the egress proxy (mounted read-only). Relay
# 127.0.0.1:3128 (HTTP(S)_PROXY) to it, and hold the keep-alive connection whose end
# tells the proxy this session is over. Killing either changes nothing the policy allows.
if [ -n "${AISHELL_EGRESS:-}" ]; then
    /usr/local/bin/aishell-egress-relay "$AISHELL_EGRESS" || true
fi
# Without a network (none, allowlist) the engine maps no address to the hostname; sudo
# would complain on every call.
name="$(cat /proc/sys/kernel/hostname)"
if ! grep -qw -- "$name" /etc/hosts 2>/dev/null; then
    printf '127.0.1.1\t%s\n' "$name" >> /etc/hosts 2>/dev/null || true
fi

if [ -n "${AISHELL_PRE_START:-}" ]; then
    : > /tmp/pre-start.log
    chown "$uid:$gid" /tmp/pre-start.log
    # Double fork: the runner is reparented to init, which reaps it.
    (
        (
            set +e
            gosu "$uid:$gid" sh -c "$AISHELL_PRE_START" </dev/null >/tmp/pre-start.log 2>&1
            rc=$?
            if [ "$rc" -eq 0 ]; then
                touch /tmp/pre-start.done
            else
                echo "$rc" > /tmp/pre-start.failed
            fi
        ) &
    )
fi
unset AISHELL_PRE_START LOCAL_UID LOCAL_GID LOCAL_USER

touch /tmp/aishell.ready

if [ "${AISHELL_TMUX:-}" = 1 ]; then
    unset AISHELL_TMUX
    rm -f /tmp/aishell.exit /tmp/aishell.exit.tmp /tmp/aishell.screen /tmp/aishell.what
    # The agent runs as the only window of tmux session "main", as the user.
    # Detaching leaves it running; when it exits, the session ends, and so does
    # this script (the container's main process) with the agent's status.
    gosu "$uid:$gid" tmux -u new-session -d -s main -x "${AISHELL_COLUMNS:-200}" \
        -y "${AISHELL_LINES:-50}" -- /usr/local/bin/aishell-run "$@"
    # Wait without polling (an idle sandbox costs no CPU): `tmux wait-for` blocks
    # until aishell-run signals the channel as the agent exits, or until the tmux
    # server goes away, however that happens (an exiting server wakes its waiters).
    while [ ! -f /tmp/aishell.exit ]; do
        if ! gosu "$uid:$gid" tmux wait-for aishell-exit 2>/dev/null; then
            # No server any more (the check below ends the loop); never spin on errors.
            gosu "$uid:$gid" tmux has-session -t main 2>/dev/null && sleep 1
        fi
        if [ ! -f /tmp/aishell.exit ] && ! gosu "$uid:$gid" tmux has-session -t main 2>/dev/null; then
            echo 1 > /tmp/aishell.exit
        fi
    done
    # Give attached clients a moment to read the status before the container goes,
    # and the engine a moment to record their exec's exit code (podman looks it up
    # in its database afterwards, and fails if the container is already removed).
    for _ in $(seq 1 30); do
        pgrep -f aishell-attach >/dev/null 2>&1 || break
        sleep 0.1
    done
    sleep 0.5
    exit "$(cat /tmp/aishell.exit)"
fi
# A command that cannot run exits as a shell would (127 not found, 126 not runnable),
# not with gosu's 1: the README promises 125-127 when the command could not start.
case "${1:-}" in
    */*) if [ ! -e "$1" ]; then echo "aishell: $1: no such file" >&2; exit 127; fi
         if [ -d "$1" ] || [ ! -x "$1" ]; then echo "aishell: $1: not executable" >&2; exit 126; fi ;;
    ?*) if ! type -P -- "$1" >/dev/null; then echo "aishell: $1: command not found" >&2; exit 127; fi ;;
esac
exec gosu "$uid:$gid" "$@"
