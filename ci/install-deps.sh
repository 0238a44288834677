#!/usr/bin/env bash
# Installs every Debian package Sluice needs to build and test. Idempotent: packages already
# present are skipped, and apt-get update runs once only when something is missing.
set -euo pipefail

packages=(
  g++ cmake ninja-build ccache pkg-config python3 valgrind
  libgtest-dev libgmock-dev libbenchmark-dev
  liburing-dev libzstd-dev liblz4-dev libsnappy-dev zlib1g-dev
)
# Real Kafka clients used by the end-to-end tests (tests/e2e): kcat, kafka-python with the
# codecs it can use (snappy, lz4, zstd), confluent-kafka, and Go's sarama built with Debian's go.
if [[ "${SLUICE_CLIENT_DEPS:-1}" == 1 ]]; then
  packages+=(kcat librdkafka-dev python3-kafka python3-confluent-kafka
             python3-snappy python3-lz4 python3-zstandard
             golang-go golang-github-shopify-sarama-dev)
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
