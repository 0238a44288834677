#!/usr/bin/env bash
# Broker throughput, as ratios to loopback TCP measured in the same run (perf/README.md,
# "Broker throughput"). Starts a single Sluice broker on a free port with a fresh data directory
# on the real disk, then runs with `sluice bench`:
# in ROUNDS rounds, each with its own loopback reference run right before:
#   1. the loopback reference (a socket pair pushing fetch-sized frames through the kernel),
#   2. produce: 1 KiB records, acks=1, then a page-cache write reference: dd writing 1 GiB to a
#      new file (no fsync), the rate at which this machine takes fresh pages into the page
#      cache, which bounds produce,
#   3. consume: one partition read back from the page cache (pre-filled, wrapping around), with
#      one fetch in flight and with PIPELINE in flight,
#   4. the same consumes against the broker restarted with sluice.fetch.cached.send=mapped (sent
#      from a read-only mapping instead of spliced), and restarted with
#      sluice.fetch.zero.copy=false (a copying fetch),
#      with the broker's CPU time (utime + stime from /proc/<pid>/stat) per GiB consumed,
# and prints a table. Every socket uses the cubic congestion control (sluice bench's default
# --tcp-congestion, and the broker's sluice.tcp.congestion.local for same-host peers).
# Kills only the broker it started and removes its directory.
#
# usage: perf/broker_bench.sh [BUILD_DIR]          (default: /work/build-tools, a Release build)
# env:   DURATION=5 (seconds per run)  ROUNDS=3  DATA_PARENT=/var/tmp  FILL=1GiB  PRODUCERS=2
#        PARTITIONS=2 (produce topic)  IN_FLIGHT=8  BATCH=64KiB  FETCH=8MiB  PIPELINE=4
set -euo pipefail

build=${1:-/work/build-tools}
sluice=$build/tools/sluice
duration=${DURATION:-5}
data_parent=${DATA_PARENT:-/var/tmp}
fill=${FILL:-1GiB}
producers=${PRODUCERS:-2}
partitions=${PARTITIONS:-2}
in_flight=${IN_FLIGHT:-8}
batch=${BATCH:-64KiB}
fetch=${FETCH:-8MiB}
rounds=${ROUNDS:-3}
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

# Rounds: every round measures the loopback reference again right before the broker runs it is
# compared with, so each ratio comes from two runs seconds apart; the table shows the median
# over the rounds (these machines are shared and noisy: loopback alone can vary 2x in a minute).
loopback() {  # name
    bench --reference loopback --duration-s "$duration" --fetch-size "$fetch" --json "$dir/$1.json"
}
consume() {  # name depth
    local t0 t1
    t0=$(broker_ticks)
    bench --mode consume --topic consume-bench --fill-bytes "$fill" --duration-s "$duration" \
        --fetch-size "$fetch" --fetch-in-flight "$2" --json "$dir/$1.json"
    t1=$(broker_ticks)
    echo $((t1 - t0)) >"$dir/$1.ticks"
}

# A loopback reference, then the consume at 1 and PIPELINE fetches in flight.
consume_pair() {  # loopback-name key round
    loopback "$1_$3"
    consume "${2}1_$3" 1
    consume "${2}${pipeline}_$3" "$pipeline"
}

start_broker
# Fill the consume topic outside the measurements; it stays in the page cache.
bench --mode consume --topic consume-bench --partitions 1 --record-size 1024 \
    --batch-size "$batch" --fill-bytes "$fill" --producers "$producers" --in-flight "$in_flight" \
    --duration-s 0.001 --fetch-size "$fetch" >/dev/null
# Fresh pages into the page cache, as an append with fsync=never takes them (no fsync).
pagecache_reference() {  # round
    local t0 t1
    t0=$(date +%s.%N)
    dd if=/dev/zero of="$dir/dd_$1" bs=1M count=1024 status=none
    t1=$(date +%s.%N)
    rm -f "$dir/dd_$1"
    python3 -c "import json,sys; print(json.dumps({'mib_per_s': 1024 / (float(sys.argv[2]) - float(sys.argv[1]))}))" "$t0" "$t1" >"$dir/pagecache_$1.json"
}
for r in $(seq "$rounds"); do
    echo "== round $r/$rounds: loopback, produce (1 KiB, acks=1, $producers producers x $in_flight in flight, $partitions partitions), page-cache write reference, consume 1 partition from the page cache with 1 and $pipeline fetches in flight (${duration}s each)" >&2
    loopback "loop_zc_$r"
    bench --mode produce --topic produce-bench --partitions "$partitions" --record-size 1024 \
        --batch-size "$batch" --acks 1 --producers "$producers" --in-flight "$in_flight" \
        --duration-s "$duration" --json "$dir/produce_$r.json"
    pagecache_reference "$r"
    consume_pair loop_zc2 zc "$r"
done
stop_broker
# The same consumes against the broker restarted with one fetch setting changed.
fetch_mode_rounds() {  # key broker-flag
    start_broker "$2"
    for r in $(seq "$rounds"); do
        echo "== round $r/$rounds: loopback, consume with $2 at 1 and $pipeline in flight" >&2
        consume_pair "loop_$1" "$1" "$r"
    done
    stop_broker
}
fetch_mode_rounds mp --sluice.fetch.cached.send=mapped
fetch_mode_rounds cp --sluice.fetch.zero.copy=false

python3 - "$dir" "$(getconf CLK_TCK)" "$pipeline" "$rounds" <<'EOF'
import json, sys, os, statistics
d, hz, pipeline, rounds = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
load = lambda n: json.load(open(os.path.join(d, n + ".json")))
med = statistics.median
def rate(name, side):
    return load(name)[side]["mib_per_s"] if side else load(name)["mib_per_s"]
loops = [rate(f"{k}_{r}", None) for r in range(1, rounds + 1) for k in ("loop_zc", "loop_zc2", "loop_mp", "loop_cp")]
pcache = [rate(f"pagecache_{r}", None) for r in range(1, rounds + 1)]
print(f"| run | MiB/s (median) | vs loopback (median of per-round ratios) | notes |")
print(f"|---|---:|---:|---|")
print(f"| loopback TCP (reference) | {med(loops):.0f} | 100% | {rounds * 4} runs, {min(loops):.0f}..{max(loops):.0f} MiB/s |")
print(f"| page-cache write reference (dd, 1 GiB to a new file) | {med(pcache):.0f} | — | {rounds} runs, {min(pcache):.0f}..{max(pcache):.0f} MiB/s |")
def show(label, names, loop_key, side, extra):
    rates = [rate(n, side) for n in names]
    ratios = [rate(n, side) / rate(f"{loop_key}_{i + 1}", None) for i, n in enumerate(names)]
    print(f"| {label} | {med(rates):.0f} | {med(ratios):.1%} | ratios {', '.join(f'{x:.0%}' for x in ratios)}; {extra} |")
    return med(ratios)
prods = [load(f"produce_{r}")["produce"] for r in range(1, rounds + 1)]
lat = prods[len(prods) // 2]["latency_ms"] or {}
p_vs_cache = med([p["mib_per_s"] / c for p, c in zip(prods, pcache)])
p_ratio = show("produce 1 KiB, acks=1", [f"produce_{r}" for r in range(1, rounds + 1)], "loop_zc", "produce",
               f"{med([p['records_per_s'] for p in prods]):.0f} rec/s; {p_vs_cache:.0%} of the page-cache write reference; "
               f"latency p50 {lat.get('p50', 0):.2f} p99 {lat.get('p99', 0):.2f} "
               f"p99.9 {lat.get('p999', 0):.2f} max {lat.get('max', 0):.0f} ms")
best = 0
for label, key, loop_key in (("zero-copy (default: splice)", "zc", "loop_zc2"),
                             ("zero-copy (mapped)", "mp", "loop_mp"), ("copying", "cp", "loop_cp")):
    for depth in ("1", pipeline):
        names = [f"{key}{depth}_{r}" for r in range(1, rounds + 1)]
        ticks = sum(int(open(os.path.join(d, n + ".ticks")).read()) for n in names)
        gib = sum(load(n)["consume"]["wire_bytes"] for n in names) / 2**30
        lats = [load(n)["consume"]["latency_ms"]["p50"] for n in names]
        r = show(f"consume 1 partition, {label} fetch, {depth} in flight", names, loop_key, "consume",
                 f"fetch p50 {med(lats):.1f} ms; broker CPU {ticks / hz / gib:.3f} s/GiB")
        if key == "zc" and depth == "1":
            best = r
print()
print(f"targets: produce >= 30% of loopback: {'met' if p_ratio >= 0.3 else 'NOT met'} ({p_ratio:.0%}); "
      f"consume (1 fetch in flight, as Kafka's consumers) >= 90% of loopback: {'met' if best >= 0.9 else 'NOT met'} ({best:.0%})")
EOF
