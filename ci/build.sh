#!/usr/bin/env bash
# Configures and builds Sluice into ${BUILD_DIR:-build} (release with debug info).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$here/build}
cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo} ${CMAKE_ARGS:-}
cmake --build "$build" -j "${JOBS:-$(nproc)}"
