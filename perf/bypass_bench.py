#!/usr/bin/python3
"""Kafka traffic with the kernel out of the packet path on both ends, against both ends on the
sockets stack, side by side in one run.

  dpdk:  the broker on the dpdk stack with a net_memif port (server role, --no-huge) and
         `sluice bench --network-stack dpdk` on the other end of the memif pair (client role):
         shared-memory rings between the two processes, Sluice's own TCP/IP on both sides.
  posix: the same broker binary on the posix (io_uring sockets) stack on loopback, the same
         bench on kernel sockets.

Rounds alternate dpdk and posix; each round runs a produce and then a consume bench (1 KiB
records, 2 partitions, acks=1). Reported per stack (median over rounds): MiB/s, request
latency p50/p99, and CPU seconds per GiB moved of the broker process (utime + stime) and of the
bench (its rusage; over dpdk that includes the bench's reactor thread polling the port and the
hand-offs between it and the producer or consumer threads, tools/bypass_stream.h). Ratios are
dpdk / posix.

Reproduce (root; a binary built with dpdk-dev installed):
  cmake --build build && SLUICE_BIN=build/tools/sluice /usr/bin/python3 perf/bypass_bench.py \\
      --rounds 3 --seconds 5 [--record-bytes 1024] [--cores 1] [--json out.json]
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))

from broker import Broker  # noqa: E402
from dpdk_bench import run_bench  # noqa: E402

GIB = float(1 << 30)
BROKER_IP, BENCH_IP = "198.18.9.2", "198.18.9.1"


def memif_eal(sock, role):
    return "--no-pci --no-huge -m 512 --vdev=net_memif0,role=%s,socket=%s" % (role, sock)


def measure(stack, broker, extra, args, results):
    for mode in ("produce", "consume"):
        side, broker_cpu, bench_cpu = run_bench([], broker.bootstrap, mode, args,
                                                broker.proc.pid, topic="bypass-bench",
                                                extra=extra)
        if side.get("errors"):
            raise RuntimeError("%s %s: %d error(s)" % (stack, mode, side["errors"]))
        gib = side["wire_bytes"] / GIB if side["wire_bytes"] else 1e-9
        lat = side.get("latency_ms") or {}
        results.setdefault(stack, {}).setdefault(mode, []).append({
            "mib_s": side["mib_per_s"], "p50_ms": lat.get("p50"), "p99_ms": lat.get("p99"),
            "broker_cpu_s_per_gib": broker_cpu / gib, "bench_cpu_s_per_gib": bench_cpu / gib})
        print("%-5s %-7s %8.1f MiB/s  p50 %6.2f ms  p99 %6.2f ms  broker %.2f s/GiB  bench "
              "%.2f s/GiB" % (stack, mode, side["mib_per_s"], lat.get("p50") or 0,
                             lat.get("p99") or 0, broker_cpu / gib, bench_cpu / gib), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--record-bytes", type=int, default=1024)
    ap.add_argument("--cores", type=int, default=1, help="sluice.cores of the broker (both stacks)")
    ap.add_argument("--json")
    args = ap.parse_args()
    results = {}
    for _ in range(args.rounds):
        tmp = tempfile.mkdtemp(prefix="sluice-bypass-")
        sock = os.path.join(tmp, "memif.sock")
        try:
            with Broker(num_partitions=2, host=BROKER_IP, port=9092, **{
                    "sluice.network.stack": "dpdk", "sluice.dpdk.args": memif_eal(sock, "server"),
                    "sluice.dpdk.ip": BROKER_IP, "sluice.cores": str(args.cores)}) as b:
                measure("dpdk", b, ["--acks", "1", "--network-stack", "dpdk", "--dpdk-args",
                                    memif_eal(sock, "client"), "--dpdk-ip", BENCH_IP],
                        args, results)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        with Broker(num_partitions=2, **{"sluice.cores": str(args.cores)}) as b:
            measure("posix", b, ["--acks", "1"], args, results)
    summary = {}
    for stack, modes in results.items():
        for mode, rows in modes.items():
            summary.setdefault(stack, {})[mode] = {
                k: statistics.median(r[k] for r in rows if r[k] is not None) for k in rows[0]}
    ratios = {}
    for mode in ("produce", "consume"):
        d, p = summary["dpdk"][mode], summary["posix"][mode]
        ratios[mode] = {k: (d[k] / p[k] if p[k] else None) for k in d}
    print("\nmedians (dpdk over net_memif, both ends, vs posix on loopback, same run):")
    for mode in ("produce", "consume"):
        d, p, r = summary["dpdk"][mode], summary["posix"][mode], ratios[mode]
        print("  %-7s MiB/s %.1f vs %.1f (%.2fx)  p99 %.2f vs %.2f ms  broker CPU/GiB %.2f vs "
              "%.2f s (%.2fx)  bench CPU/GiB %.2f vs %.2f s (%.2fx)" % (
                  mode, d["mib_s"], p["mib_s"], r["mib_s"], d["p99_ms"], p["p99_ms"],
                  d["broker_cpu_s_per_gib"], p["broker_cpu_s_per_gib"],
                  r["broker_cpu_s_per_gib"], d["bench_cpu_s_per_gib"],
                  p["bench_cpu_s_per_gib"], r["bench_cpu_s_per_gib"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"summary": summary, "ratios": ratios, "rounds": results}, f, indent=1)


if __name__ == "__main__":
    main()
