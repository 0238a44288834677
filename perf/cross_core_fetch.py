#!/usr/bin/python3
"""What a fetch costs when the consumer's connection is on another core than its partition
(the request hops to the owning core and the answer comes back) against the same-core case,
measured side by side on one connection in one run (issue #14).

One broker with 2 cores; a topic with 8 partitions is filled by `sluice bench`; the metrics
(`sluice_partition_core`, `sluice_core_connections`) tell which core owns which partition and
which core the test's connection landed on. That one connection then fetches (Fetch v4, one
request in flight, records skipped by their batch headers) alternately from a partition of its
own core and one of the other core, for --seconds each, --rounds times, at each --fetch-sizes.
Prints fetches/s, MiB/s and broker CPU (utime+stime) per fetch and per GiB, and the ratios
other/same. Asserts nothing.

    perf/cross_core_fetch.py --build build [--rounds 3] [--seconds 3] [--fetch-sizes 4096,65536,1048576]
        [--broker-arg=--sluice.cross.core.rings=false]
"""

import argparse
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

FETCH = 1


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def recv_exact(sock, n):
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        r = sock.recv_into(view[got:], n - got)
        if r == 0:
            raise ConnectionError("broker closed the connection")
        got += r
    return buf


def fetch_request(correlation_id, topic, partition, offset, max_bytes):
    body = struct.pack(">iiiib", -1, 0, 1, max_bytes, 0)
    body += struct.pack(">ih", 1, len(topic)) + topic
    body += struct.pack(">iiqi", 1, partition, offset, max_bytes)
    header = struct.pack(">hhih", FETCH, 4, correlation_id, 4) + b"perf"
    return struct.pack(">i", len(header) + len(body)) + header + body


def next_offset(resp, offset):
    """The offset after the last whole batch of a Fetch v4 response for one partition, and the
    partition's high watermark."""
    pos = 4 + 4 + 4  # correlation id, throttle, topic count
    (n,) = struct.unpack_from(">h", resp, pos)
    pos += 2 + n + 4  # topic name, partition count
    _part, err, hw = struct.unpack_from(">ihq", resp, pos)
    if err != 0:
        raise RuntimeError("fetch error %d" % err)
    pos += 4 + 2 + 8 + 8  # partition, error, high watermark, last stable offset
    (aborted,) = struct.unpack_from(">i", resp, pos)
    pos += 4 + max(aborted, 0) * 16
    (size,) = struct.unpack_from(">i", resp, pos)
    pos += 4
    end = pos + size
    while pos + 27 <= end:
        base, length = struct.unpack_from(">qi", resp, pos)
        if pos + 12 + length > end:
            break  # a batch cut off by max_bytes
        (last_delta,) = struct.unpack_from(">i", resp, pos + 23)
        offset = base + last_delta + 1
        pos += 12 + length
    return offset, hw


def fetch_for(sock, topic, partition, max_bytes, seconds, broker_pid):
    offset, fetches, nbytes, cid = 0, 0, 0, 0
    cpu0 = cpu_seconds(broker_pid)
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        cid += 1
        sock.sendall(fetch_request(cid, topic, partition, offset, max_bytes))
        (length,) = struct.unpack(">i", recv_exact(sock, 4))
        resp = recv_exact(sock, length)
        nbytes += length
        fetches += 1
        offset, hw = next_offset(resp, offset)
        if offset >= hw:
            offset = 0  # wrap around: the log does not change
    elapsed = time.monotonic() - t0
    cpu = cpu_seconds(broker_pid) - cpu0
    return fetches / elapsed, nbytes / elapsed / (1 << 20), cpu / fetches * 1e6, cpu / (nbytes / (1 << 30))


def scrape(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        return r.read().decode()


def measure(sluice, rounds, seconds, sizes, broker_args=(), report=print):
    """Runs the comparison; returns {fetch size: {"same": [rows], "other": [rows]}}, a row per
    round: (fetches/s, MiB/s, broker CPU us per fetch, broker CPU s per GiB)."""
    work = tempfile.mkdtemp(prefix="sluice-xcore-", dir="/var/tmp")
    port, mport = free_port(), free_port()
    broker = subprocess.Popen(
        [sluice, "serve", "--listeners=PLAINTEXT://127.0.0.1:%d" % port,
         "--log.dirs=" + os.path.join(work, "data"), "--sluice.cores=2", "--num.partitions=8",
         "--sluice.metrics.listener=127.0.0.1:%d" % mport,
         "--sluice.metrics.partition.labels=true"] + list(broker_args),
        stdout=open(os.path.join(work, "broker.log"), "wb"), stderr=subprocess.STDOUT)
    results = {}
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                scrape(mport)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        subprocess.run([sluice, "bench", "--bootstrap-server", "127.0.0.1:%d" % port,
                        "--topic", "xc", "--mode", "produce", "--partitions", "8",
                        "--records", "400000", "--quiet"], check=True, timeout=300,
                       stdout=subprocess.DEVNULL)
        owners = {int(p): int(c) for p, c in re.findall(
            r'^sluice_partition_core\{topic="xc",partition="(\d+)"\} (\d+)$', scrape(mport), re.M)}
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        time.sleep(0.5)
        conns = {int(c): int(n) for c, n in re.findall(
            r'^sluice_core_connections\{core="(\d+)"\} (\d+)$', scrape(mport), re.M)}
        mine = [c for c, n in conns.items() if n == 1]
        if len(mine) != 1 or sum(conns.values()) != 1:
            raise RuntimeError("cannot tell which core the connection is on: %s" % conns)
        core = mine[0]
        same = min(p for p, c in owners.items() if c == core)
        other = min(p for p, c in owners.items() if c != core)
        report("connection on core %d; partition %d on the same core, %d on the other"
               % (core, same, other))
        for size in sizes:
            rows = {"same": [], "other": []}
            for r in range(rounds):
                order = [("same", same), ("other", other)]
                if r % 2:
                    order.reverse()
                for name, p in order:
                    rows[name].append(fetch_for(sock, b"xc", p, size, seconds, broker.pid))
            results[size] = rows
        sock.close()
    finally:
        broker.terminate()
        broker.wait(60)
        shutil.rmtree(work, ignore_errors=True)
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=3)
    ap.add_argument("--fetch-sizes", default="4096,65536,1048576")
    ap.add_argument("--broker-arg", action="append", default=[],
                    help="extra `sluice serve` argument (repeatable)")
    opts = ap.parse_args()
    sluice = os.path.join(opts.build, "tools", "sluice")
    sizes = [int(s) for s in opts.fetch_sizes.split(",")]
    results = measure(sluice, opts.rounds, opts.seconds, sizes, opts.broker_arg)
    for size in sizes:
        rows = results[size]
        med = {k: [sorted(v[i] for v in rows[k])[len(rows[k]) // 2] for i in range(4)]
               for k in rows}
        for k in ("same", "other"):
            f, mib, us, cpu_gib = med[k]
            print("fetch %8d B  %-5s core: %8.0f fetches/s  %7.1f MiB/s  broker CPU "
                  "%6.1f us/fetch  %5.2f s/GiB" % (size, k, f, mib, us, cpu_gib))
        print("fetch %8d B  other/same: fetches/s %.3f, broker CPU per fetch %.3f"
              % (size, med["other"][0] / med["same"][0], med["other"][2] / med["same"][2]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
