#!/usr/bin/env bash
# The project's test command: installs what is needed, builds, and runs every test.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/ci/install-deps.sh"
"$here/ci/build.sh"
build=${BUILD_DIR:-$here/build}
cd "$build"
ctest --output-on-failure -j "${JOBS:-$(nproc)}" --timeout 600
