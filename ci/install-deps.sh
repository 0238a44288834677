#!/usr/bin/env bash
# Installs every Debian package Sluice needs to build and test. Idempotent: packages already
# present are skipped, and apt-get update runs once only when something is missing.
set -euo pipefail

packages=(
  g++ cmake ninja-build ccache pkg-config python3
  libgtest-dev libgmock-dev libbenchmark-dev
  liburing-dev libzstd-dev liblz4-dev libsnappy-dev zlib1g-dev
)
# Real Kafka clients used by the end-to-end tests (added by the broker's tests).
if [[ "${SLUICE_CLIENT_DEPS:-1}" == 1 ]]; then
  packages+=(kcat librdkafka-dev python3-kafka python3-confluent-kafka)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [[ $(id -u) == 0 ]] || SUDO=sudo
  echo "ci/install-deps: installing ${missing[*]}"
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
fi
