#!/bin/bash
# aishell egress proxy supervisor: one container per aishell home, serving every
# allowlist session of that home.
#
# /egress (the host's ~/.aishell/egress) holds, per session <id>:
#   sessions/<id>/policy   written by aishell on the host (never mounted into a sandbox)
#   sockets/<id>/          mounted read-only into that session's sandbox only; here
#                          this script creates proxy.sock (to Squid) and alive.sock
# A new session is noticed through inotify (no engine call on the launch path): its
# policy is copied to /run/aishell-proxy, a loopback source address of its own is
# allotted (Squid's policy helper and the log splitter know the session by it), and
# socat listens on its two sockets. The sandbox's entrypoint holds a connection to
# alive.sock for as long as the sandbox lives; when it closes (the sandbox ended,
# also a detached one) or the session directory is removed, the session is torn
# down. If Squid stops, the whole container stops: no proxy, no way out.
set -euo pipefail

run=/run/aishell-proxy
conf=/etc/aishell-proxy/squid.conf
accept_timeout=${AISHELL_PROXY_ACCEPT_TIMEOUT:-300}
umask 022
mkdir -p "$run/policy" "$run/session" "$run/active" "$run/squid"
chmod 1777 "$run/squid"
mkdir -p /egress/sessions /egress/sockets

# What goes wrong is said on stderr and in /egress/proxy.log (aishell quotes it when the
# proxy does not start; the container is removed when it stops).
note() { printf 'aishell-egress: %s\n' "$*" | tee -a /egress/proxy.log >&2; }

# The host's addresses (given by aishell), the gateways of this container's networks
# and its own addresses: Squid refuses them as destinations (squid.conf).
{
    for addr in ${AISHELL_PROXY_HOST_ADDRESSES:-}; do echo "$addr"; done
    awk 'NR > 1 && $3 != "00000000" { print $3 }' /proc/net/route | while read -r hex; do
        printf '%d.%d.%d.%d\n' "0x${hex:6:2}" "0x${hex:4:2}" "0x${hex:2:2}" "0x${hex:0:2}"
    done
    awk '/32 host LOCAL/ { print prev } { prev = $2 }' /proc/net/fib_trie
} | grep -E '^[0-9a-fA-F.:]+$' | grep -vE '^127\.' | sort -u > "$run/host-addresses" || true
[ -s "$run/host-addresses" ] || echo 0.0.0.0 > "$run/host-addresses"

# A throwaway certificate for the ssl-bump port (Squid wants one; it never bumps).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
    -subj /CN=aishell-egress-never-presented -keyout "$run/key.pem" -out "$run/cert.pem" \
    >/dev/null 2>&1
cat "$run/cert.pem" "$run/key.pem" > "$run/throwaway.pem"
chmod 0644 "$run/throwaway.pem"
rm -f "$run/key.pem" "$run/cert.pem"

# Squid's access log goes through a FIFO to the splitter (running as this script's
# user, which owns the host's log directory; Squid itself may run as nobody).
mkfifo -m 0666 "$run/log.fifo"
/etc/aishell-proxy/log-splitter "$run/log.fifo" &

# Squid refuses to run as root: as (namespace) root, run it as nobody.
as_squid=()
if [ "$(id -u)" = 0 ]; then
    as_squid=(setpriv --reuid=65534 --regid=65534 --clear-groups --)
fi
if ! "${as_squid[@]}" squid -k parse -f "$conf" >"$run/parse.log" 2>&1; then
    note "the Squid configuration is invalid:"
    grep -iE 'fatal|error' "$run/parse.log" | tee -a /egress/proxy.log >&2 || true
    exit 78
fi
"${as_squid[@]}" squid -N -f "$conf" 2> >(grep --line-buffered -E 'FATAL|ERROR' \
    | tee -a /egress/proxy.log >&2) &
squid_pid=$!

listening() { awk '$2 == "0100007F:0C38" && $4 == "0A" { found = 1 } END { exit !found }' /proc/net/tcp; }
for _ in $(seq 1 200); do
    listening && break
    kill -0 "$squid_pid" 2>/dev/null || break
    sleep 0.05
done
if ! listening; then
    note "Squid did not start (its messages are above)"
    exit 69
fi

# Every session gets a loopback source address never used before by this proxy (Squid's
# helper answers, cached per address, can never pass to another session).
counter=0
next_address() {  # sets $address (no subshell: the counter must survive)
    counter=$((counter + 1))
    address="127.$((1 + counter / 65025)).$(((counter / 255) % 255)).$((counter % 255 + 1))"
}

log_line() {  # session, text: a line of the session's decision log
    printf '%s INFO %s %s\n' "$(date +%Y-%m-%dT%H:%M:%S%z)" "$1" "$2" >> "/logs/$1/decisions.log" 2>/dev/null || true
}

register() {
    local id=$1 addr relay keep
    [[ "$id" =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ ]] || return 0
    [ -e "$run/active/$id" ] && return 0
    [ -f "/egress/sessions/$id/policy" ] && [ -d "/egress/sockets/$id" ] || return 0
    next_address
    addr=$address
    grep -E '^allow [A-Za-z0-9*.:-]+$' "/egress/sessions/$id/policy" > "$run/policy/$addr" || true
    echo "$id" > "$run/session/$addr"
    mkdir -p "/logs/$id"
    socat "UNIX-LISTEN:/egress/sockets/$id/proxy.sock,fork,unlink-early,mode=0600" \
        "TCP4:127.0.0.1:3128,bind=$addr" 2>/dev/null &
    relay=$!
    (
        socat -u "UNIX-LISTEN:/egress/sockets/$id/alive.sock,unlink-early,mode=0600,accept-timeout=$accept_timeout" \
            OPEN:/dev/null 2>/dev/null || true
        kill "$relay" 2>/dev/null || true
        rm -f "$run/policy/$addr" "$run/active/$id"
        log_line "$id" "session ended (the sandbox closed its keep-alive connection, or the session was removed)"
        rm -rf "/egress/sessions/$id" "/egress/sockets/$id"
    ) &
    keep=$!
    echo "$addr $relay $keep" > "$run/active/$id"
    log_line "$id" "session registered: relay from $addr"
}

unregister() {
    local id=$1 addr relay keep
    [ -f "$run/active/$id" ] || return 0
    read -r addr relay keep < "$run/active/$id" || return 0
    # Ending the keep-alive listener runs the session's teardown.
    pkill_children "$keep"
}

pkill_children() {  # the keep-alive socat is the only child of the teardown subshell
    local parent=$1 pid
    for pid in /proc/[0-9]*; do
        pid=${pid#/proc/}
        if [ "$(awk '{ print $4 }' "/proc/$pid/stat" 2>/dev/null)" = "$parent" ]; then
            kill "$pid" 2>/dev/null || true
        fi
    done
}

events() {
    local event name
    exec 3< <(exec inotifywait -m -e moved_to -e create -e delete -e moved_from \
        --format '%e %f' /egress/sessions 2>&1)
    while read -r event name <&3; do
        [ "$event" = "Watches" ] && break  # "Watches established."
    done
    for dir in /egress/sessions/*/; do
        [ -d "$dir" ] && register "$(basename "$dir")"
    done
    basename "$(cat /proc/sys/kernel/hostname)" > /egress/.ready.tmp
    mv -f /egress/.ready.tmp /egress/ready
    while read -r event name <&3; do
        case "$name" in .*) continue ;; esac
        case "$event" in
            *MOVED_TO* | *CREATE*) register "$name" ;;
            *DELETE* | *MOVED_FROM*) unregister "$name" ;;
        esac
    done
}
events &
events_pid=$!

# The proxy ends by itself when its aishell home is gone (its `ready` file with it), or
# after AISHELL_PROXY_IDLE seconds (default 30 minutes) without a session; the next
# allowlist launch starts it again.
idle_limit=${AISHELL_PROXY_IDLE:-1800}
(
    idle=0
    while sleep 5; do
        [ -e /egress/ready ] || { note "the aishell home is gone; stopping"; break; }
        if [ -n "$(ls -A "$run/active" 2>/dev/null)" ]; then idle=0; else idle=$((idle + 5)); fi
        [ "$idle" -lt "$idle_limit" ] || { note "no session for ${idle_limit}s; stopping"; break; }
    done
) &
watch_pid=$!

trap 'kill "$squid_pid" "$events_pid" "$watch_pid" 2>/dev/null; exit 0' TERM INT
wait -n "$squid_pid" "$events_pid" "$watch_pid" || true
if kill -0 "$squid_pid" 2>/dev/null && kill -0 "$events_pid" 2>/dev/null; then
    kill "$squid_pid" "$events_pid" 2>/dev/null || true
    exit 0  # home gone, or idle
fi
note "Squid or the session watcher stopped; the proxy stops (sessions have no way out)"
kill "$squid_pid" "$events_pid" "$watch_pid" 2>/dev/null || true
exit 70
