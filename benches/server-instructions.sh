#!/usr/bin/env bash
# User-space instructions the server spends per review, counted by callgrind: `pytune serve` answers
# 200 and then 1200 labeled fixtures over HTTP/1.1 keep-alive with TLS (h2load --h1, 4 connections),
# and the difference divided by 1000 cancels start-up and connection set-up. Deterministic where
# wall-clock figures on shared machines are not; it does not count the kernel's share.
# Needs valgrind, h2load and curl (Debian: apt-get install valgrind nghttp2-client curl).
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in valgrind h2load curl; do
    command -v "$tool" >/dev/null || { echo "server-instructions.sh: $tool is missing" >&2; exit 1; }
done
# shellcheck source=benches/server-setup.sh
source benches/server-setup.sh

# Instructions for a run of `requests` reviews, from start to SIGTERM.
count() {
    local requests=$1
    valgrind --tool=callgrind --callgrind-out-file="$work/cg.$requests" \
        ./target/release/pytune serve --self-signed "$work/certs" --kubernetes-version 1.33 \
        --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$admin_port" --log-format json \
        > /dev/null 2> "$work/valgrind.$requests" &
    server_pid=$!
    until curl -fs "http://127.0.0.1:$admin_port/readyz" >/dev/null 2>&1; do
        kill -0 "$server_pid" 2>/dev/null || { cat "$work/valgrind.$requests" >&2; exit 1; }
        sleep 0.2
    done
    h2load --h1 -n "$requests" -c 4 -d "$work/review.json" -H 'Content-Type: application/json' \
        "https://127.0.0.1:$port/mutate?timeout=5s" > "$work/h2load.$requests"
    grep -q "$requests succeeded" "$work/h2load.$requests" \
        || { cat "$work/h2load.$requests" >&2; exit 1; }
    kill -TERM "$server_pid"
    wait "$server_pid" || true
    server_pid=
    awk '/Collected :/ {print $NF}' "$work/valgrind.$requests"
}

count 10 > /dev/null # generates the serving certificate, so both counted runs reuse it
few=$(count 200)
many=$(count 1200)
echo "server: $(( (many - few) / 1000 )) user-space instructions per review (HTTP/1.1, TLS, JSON logs)"
