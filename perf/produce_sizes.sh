#!/usr/bin/env bash
# Produce throughput by record size and acks (perf/README.md, "Produce by record size"):
# 1 KiB, 100 KB and 1 MB records, acks=1 and acks=all, against one Sluice broker on a free port
# with a fresh data directory, each run beside the page-cache write reference (dd writing 1 GiB
# to a new file, no fsync: what a produce with sluice.fsync unset pays on this machine). Every
# run must finish with zero produce errors: under load a partition makes requests wait, it
# never refuses them (issue #15). Kills only the broker it started and removes its directory.
#
# usage: perf/produce_sizes.sh [BUILD_DIR]      (default: build)
# env:   DURATION=5 (seconds per run)  ROUNDS=3  DATA_PARENT=/var/tmp  PRODUCERS=2  PARTITIONS=2
#        IN_FLIGHT=8
set -euo pipefail

build=${1:-build}
sluice=$build/tools/sluice
duration=${DURATION:-5}
rounds=${ROUNDS:-3}
producers=${PRODUCERS:-2}
partitions=${PARTITIONS:-2}
in_flight=${IN_FLIGHT:-8}
data_parent=${DATA_PARENT:-/var/tmp}

[[ -x $sluice ]] || { echo "no sluice binary at $sluice (build the 'sluice' target)" >&2; exit 2; }

dir=$(mktemp -d "$data_parent/sluice-produce-sizes-XXXXXX")
broker_pid=""
cleanup() {
    if [[ -n $broker_pid ]]; then
        kill -TERM "$broker_pid" 2>/dev/null || true
        wait "$broker_pid" 2>/dev/null || true
    fi
    rm -rf "$dir"
}
trap cleanup EXIT INT TERM

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
bootstrap=127.0.0.1:$port
# Retention keeps the data directory bounded across the runs (1 GiB per partition).
"$sluice" serve --listeners=PLAINTEXT://127.0.0.1:$port --log.dirs="$dir/data" \
    --log.retention.bytes=1073741824 --log.segment.bytes=268435456 \
    --log.retention.check.interval.ms=1000 >>"$dir/broker.log" 2>&1 &
broker_pid=$!
for _ in $(seq 100); do
    "$sluice" topic list --bootstrap-server "$bootstrap" --request-timeout-ms 1000 \
        >/dev/null 2>&1 && break
    kill -0 "$broker_pid" 2>/dev/null || { cat "$dir/broker.log" >&2; exit 1; }
    sleep 0.1
done

pagecache_reference() {  # name
    local t0 t1
    t0=$(date +%s.%N)
    dd if=/dev/zero of="$dir/dd" bs=1M count=1024 status=none
    t1=$(date +%s.%N)
    rm -f "$dir/dd"
    python3 -c "import json,sys; print(json.dumps({'mib_per_s': 1024 / (float(sys.argv[2]) - float(sys.argv[1]))}))" "$t0" "$t1" >"$dir/$1.json"
}

sizes=(1024 100000 1000000)
for r in $(seq "$rounds"); do
    for size in "${sizes[@]}"; do
        batch=$((size > 65536 ? size + 1024 : 65536))
        for acks in 1 all; do
            echo "== round $r/$rounds: produce ${size}-byte records, acks=$acks (${duration}s), then the page-cache reference" >&2
            "$sluice" bench --bootstrap-server "$bootstrap" --quiet --mode produce \
                --topic "size-$size-$acks" --partitions "$partitions" --record-size "$size" \
                --batch-size "$batch" --acks "$acks" --producers "$producers" \
                --in-flight "$in_flight" --duration-s "$duration" \
                --json "$dir/p_${size}_${acks}_$r.json"
            pagecache_reference "dd_${size}_${acks}_$r"
        done
    done
done

python3 - "$dir" "$rounds" "${sizes[@]}" <<'EOF'
import json, os, statistics, sys
d, rounds, sizes = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
load = lambda n: json.load(open(os.path.join(d, n + ".json")))
med = statistics.median
errors = 0
print("| records | acks | produce MiB/s (median) | of the page-cache reference (per-round ratios) | latency p50 / p99 / max ms | errors |")
print("|---|---|---:|---:|---|---:|")
for size in sizes:
    for acks in ("1", "all"):
        runs = [load(f"p_{size}_{acks}_{r}")["produce"] for r in range(1, rounds + 1)]
        refs = [load(f"dd_{size}_{acks}_{r}")["mib_per_s"] for r in range(1, rounds + 1)]
        ratios = [p["mib_per_s"] / c for p, c in zip(runs, refs)]
        lat = runs[len(runs) // 2]["latency_ms"] or {}
        errs = sum(p["errors"] for p in runs)
        errors += errs
        print(f"| {int(size):,} B | {acks} | {med([p['mib_per_s'] for p in runs]):.0f} | "
              f"{med(ratios):.0%} ({', '.join(f'{x:.0%}' for x in ratios)}) | "
              f"{lat.get('p50', 0):.1f} / {lat.get('p99', 0):.1f} / {lat.get('max', 0):.0f} | {errs} |")
if errors:
    print(f"\n{errors} produce requests failed: a broker under load must make them wait instead")
    sys.exit(1)
EOF
