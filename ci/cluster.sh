#!/usr/bin/env bash
# A local 3-broker Sluice cluster with its own ZooKeeper, for trying cluster mode and for the
# end-to-end cluster tests:
#   ci/cluster.sh start [DIR]     ZooKeeper on 127.0.0.1:2181 (SLUICE_ZK_PORT), brokers 1, 2, 3
#                                 on 127.0.0.1:9092, 9093, 9094 (SLUICE_CLUSTER_BASE_PORT), data
#                                 in DIR/broker-N (DIR: /tmp/sluice-cluster), logs in
#                                 DIR/broker-N.log; returns once every broker serves
#   ci/cluster.sh stop [DIR]      SIGTERM to every broker (controlled shutdown), then ZooKeeper
#   ci/cluster.sh kill N [DIR]    kill -9 broker N
#   ci/cluster.sh restart N [DIR] start broker N again (after stop or kill)
# Extra broker settings: SLUICE_CLUSTER_ARGS (e.g. "--zookeeper.session.timeout.ms=6000").
# The binary is $SLUICE_BIN, else build/tools/sluice (build it first: ci/build.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${SLUICE_BIN:-$here/build/tools/sluice}
zk_port=${SLUICE_ZK_PORT:-2181}
base_port=${SLUICE_CLUSTER_BASE_PORT:-9092}

usage() {
    echo "usage: $0 start [DIR] | stop [DIR] | kill N [DIR] | restart N [DIR]" >&2
    exit 2
}

start_broker() {
    local dir=$1 n=$2
    local port=$((base_port + n - 1))
    mkdir -p "$dir/broker-$n"
    # shellcheck disable=SC2086
    nohup "$bin" serve --broker.id="$n" --listeners="PLAINTEXT://127.0.0.1:$port" \
        --log.dirs="$dir/broker-$n" --zookeeper.connect="127.0.0.1:$zk_port/sluice" \
        --default.replication.factor=3 --min.insync.replicas=2 \
        ${SLUICE_CLUSTER_ARGS:-} >>"$dir/broker-$n.log" 2>&1 &
    echo $! >"$dir/broker-$n.pid"
}

wait_broker() {
    local dir=$1 n=$2
    local port=$((base_port + n - 1))
    for _ in $(seq 1 300); do
        if grep -q "joined the cluster" "$dir/broker-$n.log" 2>/dev/null &&
            (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        if ! kill -0 "$(cat "$dir/broker-$n.pid")" 2>/dev/null; then
            echo "ci/cluster: broker $n exited; its log:" >&2
            tail -20 "$dir/broker-$n.log" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "ci/cluster: broker $n did not start within 30 s" >&2
    return 1
}

signal_broker() {
    local dir=$1 n=$2 sig=$3
    local pid_file=$dir/broker-$n.pid
    [[ -f $pid_file ]] || return 0
    local pid
    pid=$(cat "$pid_file")
    # Only a process that is this cluster's broker.
    if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "--broker.id=$n "; then
        kill "-$sig" "$pid" 2>/dev/null || true
        for _ in $(seq 1 200); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pid_file"
}

(($# >= 1)) || usage
cmd=$1
shift
case $cmd in
start)
    dir=${1:-/tmp/sluice-cluster}
    mkdir -p "$dir"
    [[ -x $bin ]] || { echo "ci/cluster: $bin not built (run ci/build.sh)" >&2; exit 1; }
    "$here/ci/zookeeper.sh" start "$dir/zookeeper" "$zk_port"
    for n in 1 2 3; do start_broker "$dir" "$n"; done
    for n in 1 2 3; do wait_broker "$dir" "$n"; done
    echo "ci/cluster: brokers 1-3 on 127.0.0.1:$base_port-$((base_port + 2)), ZooKeeper on 127.0.0.1:$zk_port"
    ;;
stop)
    dir=${1:-/tmp/sluice-cluster}
    for n in 1 2 3; do signal_broker "$dir" "$n" TERM & done
    wait
    "$here/ci/zookeeper.sh" stop "$dir/zookeeper" "$zk_port" || true
    ;;
kill)
    (($# >= 1)) || usage
    n=$1
    dir=${2:-/tmp/sluice-cluster}
    signal_broker "$dir" "$n" KILL
    ;;
restart)
    (($# >= 1)) || usage
    n=$1
    dir=${2:-/tmp/sluice-cluster}
    signal_broker "$dir" "$n" TERM
    mv "$dir/broker-$n.log" "$dir/broker-$n.log.$(date +%s%N)" 2>/dev/null || true
    start_broker "$dir" "$n"
    wait_broker "$dir" "$n"
    ;;
*)
    usage
    ;;
esac
