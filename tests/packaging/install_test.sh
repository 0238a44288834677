#!/usr/bin/env bash
# `cmake --install` into a temporary prefix: the binary runs and reports its version, the
# systemd unit names the installed binary and config and carries its sandboxing, the default
# config is one `sluice serve` accepts. With systemd-analyze present the unit is verified too.
set -euo pipefail
build=$1
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
bin="$prefix/bin/sluice"
unit="$prefix/lib/systemd/system/sluice.service"

conf="$prefix/etc/sluice/server.properties"
for f in "$bin" "$unit" "$conf"; do
    [[ -e "$f" ]] || { echo "missing after install: $f" >&2; exit 1; }
done
version=$("$bin" --version)
[[ "$version" =~ ^sluice\ [0-9]+\.[0-9]+\.[0-9]+\ \(commit\ [0-9a-f]{12}|unknown\)$ ]] ||
    { echo "unexpected --version output: $version" >&2; exit 1; }
grep -q "^ExecStart=$prefix/bin/sluice serve --config $prefix/etc/sluice/server.properties$" "$unit" ||
    { echo "ExecStart does not name the installed binary and config:" >&2; grep ExecStart "$unit" >&2; exit 1; }
for key in NoNewPrivileges=yes ProtectSystem=strict LimitNOFILE= KillSignal=SIGTERM StateDirectory=sluice; do
    grep -q "^$key" "$unit" || { echo "the unit lacks $key" >&2; exit 1; }
done
if command -v systemd-analyze >/dev/null; then
    systemd-analyze verify "$unit" 2>&1 | grep -v "Failed to resolve\|not found\|user" || true
fi
# The shipped config loads (a start with an unusable log dir fails on the directory, not the keys).
data=$(mktemp -d)
out=$(timeout 10 "$bin" serve --config "$conf" --log.dirs="$data" --listeners=PLAINTEXT://127.0.0.1:0 \
      --sluice.cores=1 2>&1 & pid=$!; sleep 1.5; kill -TERM $pid; wait $pid) || true
rm -rf "$data"
grep -q "serving on port" <<<"$out" || { echo "the installed config did not start a broker:" >&2; echo "$out" >&2; exit 1; }
echo "install ok: $version"
