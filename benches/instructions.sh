#!/usr/bin/env bash
# Instructions per review of the admission layer (decode → engine → encode) on each benchmark body,
# counted by callgrind: the difference between 110 and 10 reviews, divided by 100, so start-up
# (embedded policy, allocator) cancels out. Needs valgrind (Debian: apt-get install valgrind).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "instructions.sh: valgrind is missing (apt-get install valgrind)" >&2; exit 1; }

cargo build --release --quiet --bench instructions
binary=$(find target/release/deps -maxdepth 1 -type f -executable -name 'instructions-*' -printf '%T@ %p\n' \
    | sort -rn | head -1 | cut -d' ' -f2)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

count() {
    valgrind --tool=callgrind --callgrind-out-file="$out/cg" "$binary" "$@" 2>&1 \
        | awk '/Collected :/ {print $NF}'
}
for body in labeled labeled-generatename labeled-dryrun web-service large unlabeled; do
    few=$(count 10 "$body")
    many=$(count 110 "$body")
    printf '%-22s %8d instructions per review\n' "$body" $(( (many - few) / 100 ))
done
# The floor: serde_json only scanning the body, building nothing.
for body in labeled web-service large; do
    few=$(count 10 "$body" scan)
    many=$(count 110 "$body" scan)
    printf '%-22s %8d instructions to scan the body\n' "$body" $(( (many - few) / 100 ))
done
