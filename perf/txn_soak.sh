#!/usr/bin/env bash
# The long version of the exactly-once test (tests/e2e/test_txn_eos.py): a consume-transform-
# produce copier (tests/e2e/txn_copier.py) killed with -9 at random points CYCLES times (default
# 300; CI runs 8) while it copies RECORDS input records (default 20000) in transactions that
# also commit its consumer offsets; then the output, read with read_committed, must hold every
# input record exactly once. SEED picks the kill times. About 2 s per cycle.
#
# usage: perf/txn_soak.sh [BUILD_DIR]     env: CYCLES=300 RECORDS=20000 SEED=7
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$here/build}" && pwd)
[[ -x $build/tools/sluice ]] || { echo "no $build/tools/sluice (build it first)" >&2; exit 2; }
cd "$here/tests/e2e"
SLUICE_BIN=$build/tools/sluice SLUICE_EOS_KILL_CYCLES=${CYCLES:-300} \
    SLUICE_EOS_RECORDS=${RECORDS:-20000} SLUICE_EOS_SEED=${SEED:-7} \
    exec /usr/bin/python3 -m unittest -v test_txn_eos
