#!/bin/sh
# Writes the allowlist given by aishell (AISHELL_PROXY_FILTER: one regex per line,
# AISHELL_PROXY_PORTS: CONNECT ports separated by spaces) and runs tinyproxy.
set -eu
mkdir -p /run/aishell-proxy
if [ -n "${AISHELL_PROXY_FILTER:-}" ]; then
    printf '%s\n' "$AISHELL_PROXY_FILTER" > /run/aishell-proxy/filter
else
    echo '^aishell-deny-all\.invalid$' > /run/aishell-proxy/filter  # an empty allowlist
fi
cp /etc/aishell-proxy/tinyproxy.conf /run/aishell-proxy/tinyproxy.conf
for port in ${AISHELL_PROXY_PORTS:-443}; do
    echo "ConnectPort $port" >> /run/aishell-proxy/tinyproxy.conf
done
echo "NOTICE    aishell session ${AISHELL_SESSION:-?} allowlist: $(echo "${AISHELL_PROXY_ALLOW:-}" | tr '\n' ' ')" >> /log/decisions.log
exec tinyproxy -d -c /run/aishell-proxy/tinyproxy.conf
