#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ with Clang, ASan and UBSan in
# build/fuzz and runs each for SECONDS_PER_TARGET (default 12, about a minute
# in all). Prints each target's executions, exec/s and coverage; exits 1 when a
# target crashed (the input is left under build/fuzz/crashes/), 2 on misuse.
# docs/testing.md#fuzzing explains the targets and what to do with a crash.
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET]
#   FXD_FUZZ_TARGETS="fuzz_decoder fuzz_udp" limits the run to some targets.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-12}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
    echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET]" >&2
    exit 2
fi
read -r -a targets <<<"${FXD_FUZZ_TARGETS:-fuzz_decoder fuzz_header fuzz_names fuzz_config fuzz_udp fuzz_proxy}"
build=build/fuzz

export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true
compiler=()
[ -f "$build/CMakeCache.txt" ] || compiler=(-DCMAKE_CXX_COMPILER=clang++) # set once: changing it resets the cache
cmake -S . -B "$build" -G Ninja "${compiler[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DFXD_FUZZ=ON -DFXD_SANITIZE=ON -DFXD_BUILD_TESTS=OFF -DCMAKE_CXX_COMPILER_LAUNCHER=ccache >/dev/null
cmake --build "$build" -j2 --target "${targets[@]}"

mkdir -p "$build/crashes" "$build/logs"
failed=()
printf '%-13s %12s %9s %8s %8s  %s\n' target execs exec/s cov ft result
for t in "${targets[@]}"; do
    # A working corpus: the committed seeds plus whatever earlier runs found.
    work="$build/corpus-work/$t"
    mkdir -p "$work"
    cp -n fuzz/corpus/"$t"/* "$work"/ 2>/dev/null || true
    log="$build/logs/$t.log"
    status=0
    nice -n 10 "$build/fuzz/$t" "$work" "fuzz/regressions/$t" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$build/crashes/$t-" >"$log" 2>&1 || status=$?

    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    last=$(grep -E '^#[0-9]+[[:space:]].*cov: [0-9]+ ft: [0-9]+' "$log" | tail -n 1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    if [ "$status" -eq 0 ]; then
        result=ok
    else
        result="CRASHED (exit $status, log $log)"
        failed+=("$t")
    fi
    printf '%-13s %12s %9s %8s %8s  %s\n' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "$result"
done

if [ "${#failed[@]}" -ne 0 ]; then
    echo
    for t in "${failed[@]}"; do
        echo "=== $t: end of $build/logs/$t.log"
        grep -v -E '^#[0-9]+[[:space:]]' "$build/logs/$t.log" | tail -n 40
    done
    echo
    echo "crash inputs:"
    ls -l "$build"/crashes/
    exit 1
fi
