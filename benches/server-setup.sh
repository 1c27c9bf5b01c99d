# Shared by the scripts that benchmark `pytune serve` (sourced, not run): the ports (`PORT`,
# `ADMIN_PORT`), the release binary, a work directory removed on exit together with the server
# (`server_pid`), and the labeled review they post, "$work/review.json".
# shellcheck shell=bash

# shellcheck disable=SC2034 # used by the scripts that source this file
port=${PORT:-18443}
# shellcheck disable=SC2034
admin_port=${ADMIN_PORT:-18080}

cargo build --release --quiet
work=$(mktemp -d)
server_pid=
cleanup() {
    [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

# The API server's Pod CREATE, labeled so pytune plans a full set of changes.
sed 's/"labels":{"app":"demo"}/"labels":{"app":"demo","pytune.io\/runtime":"python"}/' \
    tests/fixtures/apiserver-v1.36/pod-create-review.json > "$work/review.json"
