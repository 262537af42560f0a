#!/usr/bin/env bash
# Runs the curl tour (tests/curl/tour.sh) against the processes `make run` starts: the Auth0
# emulator (emulator/tenant.json), the echo upstream and Envoy with envoy/render.py's config,
# on free loopback ports. Stops them on every exit, and shows their logs when the tour fails.
#
#   tests/curl/local.sh ENVOY_BIN EMULATOR_BIN WASM_PATH [--hold]
set -euo pipefail

[[ $# -ge 3 ]] || { sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
envoy=$1 emulator=$2 wasm=$3
hold=${4:-}
repo=$(cd "$(dirname "$0")/../.." && pwd)
READY_SECONDS=${READY_SECONDS:-30}

dir=$(mktemp -d)
pids=()
stop() {
    local status=$?
    if ((${#pids[@]})); then
        kill "${pids[@]}" 2>/dev/null || true
        wait "${pids[@]}" 2>/dev/null || true
    fi
    if ((status != 0)); then
        for log in "$dir"/*.log; do
            [[ -s $log ]] && { echo "--- $(basename "$log") (last 30 lines)"; tail -n 30 "$log"; }
        done >&2
    fi
    rm -rf "$dir"
    exit "$status"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Four loopback ports the kernel hands out, released just before the processes bind them.
read -r listen admin auth0 upstream < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
')

python3 "$repo/envoy/render.py" ${hold:+"$hold"} "$listen" "$admin" "$auth0" "$upstream" "$wasm" >"$dir/envoy.yaml"
"$emulator" serve --port "$auth0" --tenant "$repo/emulator/tenant.json" \
    --key-file "$dir/emulator-key.pem" >"$dir/emulator.log" 2>&1 &
pids+=($!)
"$emulator" echo --port "$upstream" >"$dir/echo.log" 2>&1 &
pids+=($!)

deadline=$((SECONDS + READY_SECONDS))
# wait_for URL WHAT: polls URL until it answers, while every process started is still running.
wait_for() {
    until curl -sf --max-time 1 -o /dev/null "$1"; do
        for pid in "${pids[@]}"; do
            kill -0 "$pid" 2>/dev/null || { echo "local.sh: a process exited before $2 was ready" >&2; exit 1; }
        done
        ((SECONDS < deadline)) || { echo "local.sh: $2 not ready within ${READY_SECONDS}s" >&2; exit 1; }
        sleep 0.1
    done
}
# Envoy starts last, so the filter's first JWKS fetch finds the emulator.
wait_for "http://127.0.0.1:$auth0/.well-known/jwks.json" "the emulator"
wait_for "http://127.0.0.1:$upstream/__echo/received" "the echo upstream"
"$envoy" -c "$dir/envoy.yaml" --concurrency 2 --disable-hot-restart -l warning \
    --component-log-level wasm:info >"$dir/envoy.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$admin/ready" Envoy

"$repo/tests/curl/tour.sh" "http://127.0.0.1:$listen" "http://127.0.0.1:$admin"
