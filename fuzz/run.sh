#!/usr/bin/env bash
# Runs every fuzz target for FUZZ_SECONDS each, one after the other, and prints a summary of
# executions per target (also written to target/fuzz-summary.txt). Exits non-zero when any
# target crashed, panicked, timed out or failed to run; the crashing input is kept under
# fuzz/artifacts/<target>/. Called by `make fuzz`.
set -uo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
SECONDS_PER_TARGET=${FUZZ_SECONDS:-30}
SANITIZER=${FUZZ_SANITIZER:-address}
TARGETS=${FUZZ_TARGETS:-$(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^auth0-filter-fuzz$')}
LOGS=$ROOT/target/fuzz-logs
SUMMARY=$ROOT/target/fuzz-summary.txt
mkdir -p "$LOGS"

# cargo-fuzz passes nightly-only flags (-Zsanitizer, -Cpasses=sancov-module, …); stable
# rustc accepts them with RUSTC_BOOTSTRAP=1. -O: optimised, with debug assertions and
# overflow checks kept (cargo-fuzz's default for fuzzing builds).
export RUSTC_BOOTSTRAP=1
FUZZ_FLAGS=(--sanitizer "$SANITIZER" -O)

echo "building fuzz targets (sanitizer: $SANITIZER)"
(cd fuzz && cargo fuzz build "${FUZZ_FLAGS[@]}") || exit 1

failed=0
rows=()
for target in $TARGETS; do
    corpus=$ROOT/target/fuzz-corpus/$target
    mkdir -p "$corpus"
    log=$LOGS/$target.log
    echo "fuzzing $target for ${SECONDS_PER_TARGET}s (log: $log)"
    # The first corpus directory receives new inputs; the committed seeds are only read.
    (cd fuzz && cargo fuzz run "${FUZZ_FLAGS[@]}" "$target" "$corpus" "$ROOT/fuzz/corpus/$target" -- \
        -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 -max_len=8192 -timeout=10) \
        >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    units=$(find "$corpus" -type f | wc -l)
    if [ "$rc" -eq 0 ]; then
        status=ok
    else
        status="FAILED (exit $rc)"
        failed=1
        grep -m1 -E 'panicked at|ERROR: libFuzzer|SUMMARY:|Test unit written' "$log" | sed 's/^/    /'
        grep -E 'Test unit written' "$log" | sed 's/^/    /'
    fi
    rows+=("$(printf '%-18s %14s %10s %8s  %s' "$target" "${execs:-?}" "${speed:-?}" "$units" "$status")")
done

{
    echo "fuzz summary: ${SECONDS_PER_TARGET}s per target, sanitizer $SANITIZER"
    printf '%-18s %14s %10s %8s  %s\n' target executions exec/s corpus status
    printf '%s\n' "${rows[@]}"
} | tee "$SUMMARY"
exit "$failed"
