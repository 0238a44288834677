#!/usr/bin/env bash
# Installs what Sluice needs, builds it, and runs a broker on localhost:9092 with its data in
# /tmp/sluice-logs (Kafka's default layout). Extra arguments go to `sluice serve`, e.g.
#   ./ci/serve.sh --log.dirs=/var/lib/sluice --num.partitions=3
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
SLUICE_CLIENT_DEPS=0 "$here/ci/install-deps.sh"
BUILD_TYPE=${BUILD_TYPE:-Release} "$here/ci/build.sh"
exec "${BUILD_DIR:-$here/build}/tools/sluice" serve "$@"
