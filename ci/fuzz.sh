#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz) with clang, ASan and UBSan in build-fuzz/, and runs
# each for FUZZ_SECONDS (default 30) on a copy of its seed corpus (tests/fuzz/corpus/<target>).
# Prints each target's executions and new coverage; a crash, leak, sanitizer report or timeout
# fails the script and leaves the input in build-fuzz/artifacts/. perf/fuzz-long runs the same
# for longer and keeps what the fuzzer found.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${FUZZ_BUILD_DIR:-$here/build-fuzz}
seconds=${FUZZ_SECONDS:-30}
keep=${FUZZ_KEEP_CORPUS:-0}
targets=(request_decode_fuzz record_batch_fuzz legacy_message_fuzz sasl_fuzz config_fuzz)

if ! command -v clang++ >/dev/null; then
    echo "ci/fuzz.sh: clang++ is missing (ci/install-deps.sh installs clang)" >&2
    exit 1
fi
cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DSLUICE_FUZZ=ON \
    -DSLUICE_TESTS=OFF -DSLUICE_BENCH=OFF -DSLUICE_WERROR=OFF -DSLUICE_DPDK=OFF >/dev/null
cmake --build "$build" --target fuzz_targets -j "${JOBS:-$(nproc)}"

mkdir -p "$build/artifacts"
failed=0
for t in "${targets[@]}"; do
    corpus="$build/corpus/$t"
    if [[ "$keep" != 1 ]]; then rm -rf "$corpus"; fi
    mkdir -p "$corpus"
    log="$build/$t.log"
    rc=0
    # New inputs go to $corpus; the checked-in seeds are read only.
    "$build/tests/fuzz/$t" "$corpus" "$here/tests/fuzz/corpus/$t" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 -artifact_prefix="$build/artifacts/$t-" >"$log" 2>&1 || rc=$?
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo "?")
    if ((rc != 0)); then
        echo "fuzz: $t FAILED after $execs executions (exit $rc); log: $log" >&2
        grep -m5 -E 'ERROR|SUMMARY|runtime error|Test unit written' "$log" >&2 || tail -20 "$log" >&2
        failed=1
    else
        echo "fuzz: $t ok, $execs executions in ${seconds}s, coverage $cov edges, no crash"
    fi
done
exit $failed
