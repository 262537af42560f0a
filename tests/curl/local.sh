#!/usr/bin/env bash
# Runs the curl tour (tests/curl/tour.sh) against the processes `make run` starts: the Auth0
# emulator (emulator/tenant.json), the echo upstream and Envoy with the filter, started by
# `auth0-stack up` (the launcher the integration tests use) on free loopback ports. It stops
# them when the tour ends, and the logs are shown when the tour fails.
#
#   tests/curl/local.sh ENVOY_BIN EMULATOR_BIN WASM_PATH [--hold]
#
# The launcher is $AUTH0_STACK_BIN when set, else built with cargo.
set -euo pipefail

[[ $# -ge 3 ]] || { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
envoy=$1 emulator=$2 wasm=$3
hold=${4:-}
repo=$(cd "$(dirname "$0")/../.." && pwd)

stack=${AUTH0_STACK_BIN:-}
if [[ -z $stack ]]; then
    (cd "$repo" && cargo build -q -p auth0-filter-tests --bin auth0-stack)
    stack=$repo/target/debug/auth0-stack
fi

dir=$(mktemp -d)
show_logs() {
    local status=$?
    if ((status != 0)); then
        for log in "$dir"/*.log; do
            [[ -s $log ]] && { echo "--- $(basename "$log") (last 30 lines)"; tail -n 30 "$log"; }
        done >&2
    fi
    rm -rf "$dir"
    exit "$status"
}
trap show_logs EXIT

# The tour runs once everything is ready, with the ports in its environment; auth0-stack
# stops everything when it ends (or on INT/TERM) and exits with the tour's status.
"$stack" up --dir "$dir" --envoy "$envoy" --emulator "$emulator" --wasm "$wasm" \
    ${hold:+--body hold} --component-log-level wasm:info \
    -- bash -c '"$0" "http://127.0.0.1:$LISTEN_PORT" "http://127.0.0.1:$ADMIN_PORT"' \
    "$repo/tests/curl/tour.sh"
