#!/usr/bin/env bash
# Load benchmark of `pytune serve` over TLS on loopback: HTTP/1.1 keep-alive with wrk (what a cluster's
# API server uses), then HTTP/2 with h2load. Reports requests/s, latency percentiles, the server's CPU
# time per review, its peak RSS, and how long it takes to become ready.
#
#   benches/load.sh                 # 16 connections, 20 s each
#   CONNECTIONS=32 DURATION=30 benches/load.sh
#
# Needs wrk and h2load (Debian: apt-get install wrk nghttp2-client). Not part of the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

connections=${CONNECTIONS:-16}
duration=${DURATION:-20}
threads=${THREADS:-2}
for tool in wrk h2load curl; do
    command -v "$tool" >/dev/null || { echo "load.sh: $tool is missing (apt-get install wrk nghttp2-client curl)" >&2; exit 1; }
done
# shellcheck source=benches/server-setup.sh
source benches/server-setup.sh

start_ns=$(date +%s%N)
# JSON logs, as the chart configures: one line per review, to a file.
./target/release/pytune serve --self-signed "$work/certs" --kubernetes-version 1.33 \
    --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$admin_port" --log-format json \
    > "$work/serve.out" 2> "$work/serve.log" &
server_pid=$!
until curl -fs "http://127.0.0.1:$admin_port/readyz" >/dev/null 2>&1; do
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/serve.log" >&2; exit 1; }
    sleep 0.005
done
ready_ms=$(( ($(date +%s%N) - start_ns) / 1000000 ))
# The serving certificate is generated on first start; a second start reuses it (the usual case).
echo "ready after ${ready_ms} ms (first start, including certificate generation)"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$server_pid/stat"; }
ticks_per_s=$(getconf CLK_TCK)

cat > "$work/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("$work/review.json", "rb")
wrk.body = f:read("*a")
f:close()
LUA

report_cpu() {
    local label=$1 before=$2 requests=$3
    local after; after=$(cpu_ticks)
    awk -v t=$((after - before)) -v hz="$ticks_per_s" -v n="$requests" -v l="$label" \
        'BEGIN { if (n > 0) printf "%s: server CPU %.1f µs per review (%d reviews)\n", l, t / hz * 1e6 / n, n }'
}

echo
echo "== HTTP/1.1 keep-alive, $connections connections, ${duration}s (wrk)"
before=$(cpu_ticks)
wrk -t "$threads" -c "$connections" -d "${duration}s" --latency -s "$work/post.lua" \
    "https://127.0.0.1:$port/mutate?timeout=5s" | tee "$work/wrk.txt"
requests=$(awk '/requests in/ {print $1}' "$work/wrk.txt")
report_cpu "HTTP/1.1" "$before" "$requests"

echo
echo "== HTTP/2, $connections connections, ${duration}s (h2load)"
before=$(cpu_ticks)
h2load -c "$connections" -m 1 -D "$duration" -d "$work/review.json" \
    -H 'Content-Type: application/json' "https://127.0.0.1:$port/mutate?timeout=5s" | tee "$work/h2load.txt"
requests=$(awk '/^requests:/ {print $8}' "$work/h2load.txt")
report_cpu "HTTP/2" "$before" "$requests"

echo
awk '/VmHWM/ {printf "server peak RSS: %.1f MiB\n", $2 / 1024}' "/proc/$server_pid/status"
