#!/usr/bin/env bash
# The long version of the cluster failover test (tests/e2e/test_cluster.py,
# test_kill9_leader_cycles_under_idempotent_load): CYCLES kill -9 cycles of partition leaders
# (default 300; CI runs 20) on a private 3-broker cluster under an idempotent acks=all producer,
# then checks that every acknowledged record is stored exactly once, at its offset, in order.
# Each cycle waits out one ZooKeeper session expiry (4 s) and a restart: about 5 s per cycle.
#
# usage: perf/cluster_soak.sh [BUILD_DIR]     env: CYCLES=300
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$here/build}" && pwd)
[[ -x $build/tools/sluice ]] || { echo "no $build/tools/sluice (build it first)" >&2; exit 2; }
cd "$here/tests/e2e"
SLUICE_BIN=$build/tools/sluice SLUICE_CLUSTER_KILL_CYCLES=${CYCLES:-300} \
    exec /usr/bin/python3 -m unittest -v \
    test_cluster.ClusterTest.test_kill9_leader_cycles_under_idempotent_load
