#!/usr/bin/env bash
# The long version of the replication model test (replication/tests/replication_model_test.cc):
# many more seeds and steps of random produces, fetches, lost messages, crashes with and without
# power loss, isolation past the session timeout and restarts, checking after every step that
# no acknowledged record is lost and that replicas agree below their high watermarks. CI runs
# 300 seeds x 1500 steps; this runs SEEDS x STEPS (default 20000 x 5000, a few minutes).
#
# usage: perf/replication_soak.sh [BUILD_DIR]     env: SEEDS=20000 STEPS=5000
set -euo pipefail
build=${1:-build}
bin=$build/replication/replication_test
[[ -x $bin ]] || { echo "no $bin (build the replication_test target)" >&2; exit 2; }
SLUICE_MODEL_SEEDS=${SEEDS:-20000} SLUICE_MODEL_STEPS=${STEPS:-5000} \
    exec "$bin" --gtest_filter='replication_model.*'
