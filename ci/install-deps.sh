#!/usr/bin/env bash
# Installs every Debian package Sluice needs to build and test. Idempotent: packages already
# present are skipped, and apt-get update runs once only when something is missing.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)

packages=(
  g++ cmake ninja-build ccache pkg-config python3 python3-matplotlib valgrind
  libgtest-dev libgmock-dev libbenchmark-dev
  liburing-dev libzstd-dev liblz4-dev libsnappy-dev zlib1g-dev
  # ZooKeeper for cluster mode: the C client replication/ links, and the server jars with a
  # java to run them for tests (replication/testing/zk_server.h, ci/zookeeper.sh).
  # libzookeeper-java holds the jars the `zookeeper` package would add only scripts and a full
  # default-jre to; the system service is the separate zookeeperd, deliberately not installed.
  libzookeeper-mt-dev libzookeeper-java default-jre-headless
  # DPDK 22.11 for the dpdk network stack (net/dpdk_stack.cc) and its tests (a tap device).
  dpdk-dev
  # `ip` for the network-partition and dpdk tests (namespaces, veth pairs, the tap they move),
  # `ping` for the dpdk test's ICMP echo and ARP checks.
  iproute2 iputils-ping
  # OpenSSL for the SSL and SASL_SSL listeners (net/tls), and the `openssl` command the tests
  # make their CA and certificates with.
  libssl-dev openssl
  # jemalloc, the broker's allocator (broker/allocator.cc).
  libjemalloc-dev
)
# What only the tests need (ci/serve.sh skips it with SLUICE_CLIENT_DEPS=0): real Kafka
# clients used by the end-to-end tests (tests/e2e): kcat, kafka-python with the
# codecs it can use (snappy, lz4, zstd), confluent-kafka, Go's sarama built with Debian's go,
# and Node.js with npm for kafkajs (installed from the npm registry below). Node and npm are
# asked for only when their commands are missing: a machine may have them from another source
# (NodeSource's nodejs bundles npm and conflicts with Debian's npm package).
if [[ "${SLUICE_CLIENT_DEPS:-1}" == 1 ]]; then
  # clang with its runtime for the libFuzzer targets (tests/fuzz, ci/fuzz.sh); a real Prometheus
  # server that tests/e2e/test_metrics.py starts on loopback (the packaged service is not used).
  packages+=(clang libclang-rt-14-dev prometheus)
  # python3-xxhash: kafka-python needs it to write lz4 in the magic 0 (Kafka 0.9) framing.
  packages+=(kcat librdkafka-dev python3-kafka python3-confluent-kafka
             python3-snappy python3-lz4 python3-zstandard python3-xxhash
             golang-go golang-github-shopify-sarama-dev)
  command -v node >/dev/null || packages+=(nodejs)
  command -v npm >/dev/null || packages+=(npm)
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

# kafkajs for tests/e2e/test_kafkajs.py: `npm ci` installs exactly what package-lock.json pins
# into tests/e2e/kafkajs/node_modules (ignored by git). It runs again only when the lock file
# differs from the copy kept after the last good install. The npm registry may be unreachable:
# then the install is reported and left out, CI goes on, and test_kafkajs.py prints E2E-SKIP.
install_kafkajs() {
  local harness="$here/tests/e2e/kafkajs"
  local stamp="$harness/node_modules/.sluice-package-lock.json"
  if ! command -v npm >/dev/null; then
    echo "ci/install-deps: npm is missing; the kafkajs tests will be skipped" >&2
    return 0
  fi
  cmp -s "$harness/package-lock.json" "$stamp" && return 0
  echo "ci/install-deps: npm ci in tests/e2e/kafkajs"
  if (cd "$harness" && timeout 300 npm ci --no-audit --no-fund --fetch-retries=1 \
        --fetch-timeout=60000); then
    cp "$harness/package-lock.json" "$stamp"
  else
    rm -rf "$harness/node_modules"
    echo "ci/install-deps: npm ci failed (is the npm registry reachable?);" \
         "the kafkajs tests will be skipped" >&2
  fi
}
if [[ "${SLUICE_CLIENT_DEPS:-1}" == 1 ]]; then
  install_kafkajs
fi
