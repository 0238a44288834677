#!/usr/bin/env bash
# Broker throughput, as ratios to loopback TCP measured in the same run (perf/README.md,
# "Broker throughput"). Starts a single Sluice broker on a free port with a fresh data directory
# on the real disk, then runs with `sluice bench`:
#   1. the loopback reference (a socket pair pushing fetch-sized frames through the kernel),
#   2. produce: 1 KiB records, acks=1,
#   3. consume: one partition read back from the page cache (pre-filled, wrapping around), with
#      one fetch in flight and with PIPELINE in flight,
#   4. the same consumes against the broker restarted with sluice.fetch.zero.copy=false, with the
#      broker's CPU time (utime + stime from /proc/<pid>/stat) per GiB consumed for both,
# and prints a table. Kills only the broker it started and removes its directory.
#
# usage: perf/broker_bench.sh [BUILD_DIR]          (default: /work/build-tools, a Release build)
# env:   DURATION=10 (seconds per run)  DATA_PARENT=/var/tmp  FILL=1GiB  PRODUCERS=2
#        PARTITIONS=2 (produce topic)  IN_FLIGHT=8  BATCH=64KiB  FETCH=8MiB  PIPELINE=4
set -euo pipefail

build=${1:-/work/build-tools}
sluice=$build/tools/sluice
duration=${DURATION:-10}
data_parent=${DATA_PARENT:-/var/tmp}
fill=${FILL:-1GiB}
producers=${PRODUCERS:-2}
partitions=${PARTITIONS:-2}
in_flight=${IN_FLIGHT:-8}
batch=${BATCH:-64KiB}
fetch=${FETCH:-8MiB}
pipeline=${PIPELINE:-4}

[[ -x $sluice ]] || { echo "no sluice binary at $sluice (build the 'sluice' target)" >&2; exit 2; }

dir=$(mktemp -d "$data_parent/sluice-broker-bench-XXXXXX")
broker_pid=""
stop_broker() {
    if [[ -n $broker_pid ]]; then
        kill -TERM "$broker_pid" 2>/dev/null || true
        wait "$broker_pid" 2>/dev/null || true
        broker_pid=""
    fi
}
cleanup() {
    stop_broker
    rm -rf "$dir"
}
trap cleanup EXIT INT TERM

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
bootstrap=127.0.0.1:$port

start_broker() {
    "$sluice" serve --listeners=PLAINTEXT://127.0.0.1:$port --log.dirs="$dir/data" \
        --num.partitions=1 "$@" >>"$dir/broker.log" 2>&1 &
    broker_pid=$!
    for _ in $(seq 100); do
        if "$sluice" topic list --bootstrap-server "$bootstrap" --request-timeout-ms 1000 \
            >/dev/null 2>&1; then
            return 0
        fi
        kill -0 "$broker_pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "broker did not start:" >&2
    cat "$dir/broker.log" >&2
    exit 1
}

# utime + stime of the broker, in clock ticks.
broker_ticks() { awk '{print $14 + $15}' "/proc/$broker_pid/stat"; }

bench() { "$sluice" bench --bootstrap-server "$bootstrap" --quiet "$@"; }

echo "== loopback reference (${duration}s)" >&2
bench --reference loopback --duration-s "$duration" --fetch-size "$fetch" --json "$dir/loopback.json"

start_broker
echo "== produce: 1 KiB records, acks=1, $producers producers x $in_flight in flight, $partitions partitions (${duration}s)" >&2
bench --mode produce --topic produce-bench --partitions "$partitions" --record-size 1024 \
    --batch-size "$batch" --acks 1 --producers "$producers" --in-flight "$in_flight" \
    --duration-s "$duration" --json "$dir/produce.json"

# Fill outside the measurement, then read it back from the page cache.
bench --mode consume --topic consume-bench --partitions 1 --record-size 1024 \
    --batch-size "$batch" --fill-bytes "$fill" --producers "$producers" --in-flight "$in_flight" \
    --duration-s 0.001 --fetch-size "$fetch" >/dev/null
# Each consume is run with one fetch in flight (as Kafka's consumers fetch) and with
# $PIPELINE in flight (bench --fetch-in-flight: later passes over the unchanging log ask ahead).
consume_runs() {  # label
    for depth in 1 "$pipeline"; do
        echo "== consume: one partition from the page cache, $1, $depth fetch(es) in flight (${duration}s)" >&2
        local t0 t1
        t0=$(broker_ticks)
        bench --mode consume --topic consume-bench --fill-bytes "$fill" --duration-s "$duration" \
            --fetch-size "$fetch" --fetch-in-flight "$depth" --json "$dir/consume_$1_$depth.json"
        t1=$(broker_ticks)
        echo $((t1 - t0)) >"$dir/consume_$1_$depth.ticks"
    done
}
consume_runs zero-copy
stop_broker
start_broker --sluice.fetch.zero.copy=false
consume_runs copying
stop_broker

python3 - "$dir" "$(getconf CLK_TCK)" "$pipeline" <<'EOF'
import json, sys, os
d, hz, pipeline = sys.argv[1], int(sys.argv[2]), sys.argv[3]
load = lambda n: json.load(open(os.path.join(d, n)))
loop = load("loopback.json")["mib_per_s"]
prod = load("produce.json")["produce"]
def row(name, mibs, extra=""):
    print(f"| {name:<46} | {mibs:>9.1f} | {mibs / loop:>8.1%} | {extra} |")
print(f"| {'run':<46} | {'MiB/s':>9} | {'vs loop':>8} | notes |")
print(f"|{'-'*48}|{'-'*11}|{'-'*10}|-------|")
row("loopback TCP (reference)", loop)
lat = prod["latency_ms"] or {}
row("produce 1 KiB acks=1", prod["mib_per_s"],
    f"{prod['records_per_s']:.0f} rec/s, p50 {lat.get('p50', 0):.2f} ms, p99 {lat.get('p99', 0):.2f} ms, "
    f"p99.9 {lat.get('p999', 0):.2f} ms, max {lat.get('max', 0):.2f} ms")
best = 0
for mode in ("zero-copy", "copying"):
    for depth in ("1", pipeline):
        c = load(f"consume_{mode}_{depth}.json")["consume"]
        ticks = int(open(os.path.join(d, f"consume_{mode}_{depth}.ticks")).read())
        gib = c["wire_bytes"] / 2**30
        cpu = ticks / hz
        if mode == "zero-copy":
            best = max(best, c["mib_per_s"])
        lat = c["latency_ms"] or {}
        row(f"consume 1 partition, {mode}, {depth} in flight", c["mib_per_s"],
            f"fetch p50 {lat.get('p50', 0):.2f} ms, broker CPU {cpu / gib if gib else 0:.3f} s/GiB")
print()
print(f"targets: produce >= 30% of loopback: {'met' if prod['mib_per_s'] >= 0.3 * loop else 'NOT met'}; "
      f"consume >= 90% of loopback: {'met' if best >= 0.9 * loop else 'NOT met'}")
EOF
