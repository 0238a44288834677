#!/usr/bin/python3
"""The dpdk network stack against the posix (io_uring sockets) stack, side by side in one run.

  dpdk:  the broker on the dpdk stack with a net_tap port (--no-huge); `sluice bench` runs in a
         network namespace holding the tap's kernel end, so the client side is the Linux
         kernel's TCP and every packet crosses the tap (tests/e2e/test_dpdk.py's set-up).
  posix: the same broker binary on the posix stack on loopback, the same bench on the host.

Rounds alternate dpdk and posix; each round runs a produce and then a consume bench. Reported
per stack (median over rounds): produce and consume MiB/s, request latency p50/p99, broker CPU
seconds per GiB moved (utime + stime of the broker process) and bench CPU seconds per GiB (its
rusage). Ratios are dpdk / posix. The tap is a kernel device written with one writev per frame
and read with one read per frame on the broker side, so this bounds the dpdk stack by the tap,
not by the stack (net/README.md); both-sides kernel bypass over net_memif is
perf/bypass_bench.py.

Reproduce (root; a binary built with dpdk-dev installed):
  cmake --build build && SLUICE_BIN=build/tools/sluice /usr/bin/python3 perf/dpdk_bench.py \\
      --rounds 3 --seconds 5 [--record-bytes 1024] [--cores 2] [--mtu 1500|9000] [--json out.json]
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))

from broker import Broker  # noqa: E402
from test_dpdk import DpdkSetup  # noqa: E402

GIB = float(1 << 30)


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_bench(prefix, bootstrap, mode, args, broker_pid, topic="dpdk-bench", extra=()):
    """One `sluice bench` (`extra`: more of its arguments); returns (its JSON side, broker
    CPU s, bench CPU s). perf/tls_bench.py uses it too."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        cmd = prefix + [os.environ["SLUICE_BIN"], "bench", "--bootstrap-server", bootstrap,
                        "--topic", topic, "--mode", mode, "--partitions", "2",
                        "--record-size", str(args.record_bytes), "--duration-s",
                        str(args.seconds), "--fill-bytes", "512MiB", "--json", out.name,
                        "--quiet"] + list(extra)
        before_child = resource.getrusage(resource.RUSAGE_CHILDREN)
        before_broker = cpu_s(broker_pid)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, timeout=args.seconds * 10 + 120)
        broker = cpu_s(broker_pid) - before_broker
        after_child = resource.getrusage(resource.RUSAGE_CHILDREN)
        bench = (after_child.ru_utime - before_child.ru_utime +
                 after_child.ru_stime - before_child.ru_stime)
        with open(out.name) as f:
            report = json.load(f)
    return report[mode], broker, bench


def measure(stack, prefix, bootstrap, pid, args, results, topic="dpdk-bench", extra=()):
    """A produce then a consume bench; appends each one's row to results[stack][mode]."""
    for mode in ("produce", "consume"):
        side, broker_cpu, bench_cpu = run_bench(prefix, bootstrap, mode, args, pid, topic, extra)
        if side.get("errors"):
            raise RuntimeError("%s %s: %d error(s)" % (stack, mode, side["errors"]))
        gib = side["wire_bytes"] / GIB if side["wire_bytes"] else 1e-9
        lat = side.get("latency_ms") or {}
        row = results.setdefault(stack, {}).setdefault(mode, [])
        row.append({"mib_s": side["mib_per_s"], "p50_ms": lat.get("p50"),
                    "p99_ms": lat.get("p99"), "broker_cpu_s_per_gib": broker_cpu / gib,
                    "bench_cpu_s_per_gib": bench_cpu / gib})
        print("%-5s %-7s %8.1f MiB/s  p50 %6.2f ms  p99 %6.2f ms  broker %.2f s/GiB  bench "
              "%.2f s/GiB" % (stack, mode, side["mib_per_s"], lat.get("p50") or 0,
                             lat.get("p99") or 0, broker_cpu / gib, bench_cpu / gib),
              flush=True)


def report(results, title, json_path=None):
    """Medians per stack and mode, each stack / posix; printed, and written to `json_path`."""
    summary = {}
    for stack, modes in results.items():
        for mode, rows in modes.items():
            summary.setdefault(stack, {})[mode] = {
                k: statistics.median(r[k] for r in rows if r[k] is not None)
                for k in rows[0]}
    # Every other stack against posix (bypass_bench.py runs dpdk at more than one MTU).
    ratios = {}
    print("\nmedians (%s, same run):" % title)
    p_all = summary["posix"]
    for stack in (s for s in summary if s != "posix"):
        for mode in ("produce", "consume"):
            d, p = summary[stack][mode], p_all[mode]
            r = {k: (d[k] / p[k] if p[k] else None) for k in d}
            ratios.setdefault(stack, {})[mode] = r
            print("  %-20s %-7s MiB/s %.1f vs %.1f (%.2fx)  p99 %.2f vs %.2f ms  broker CPU/GiB "
                  "%.2f vs %.2f s (%.2fx)  bench CPU/GiB %.2f vs %.2f s (%.2fx)" % (
                      stack, mode, d["mib_s"], p["mib_s"], r["mib_s"], d["p99_ms"], p["p99_ms"],
                      d["broker_cpu_s_per_gib"], p["broker_cpu_s_per_gib"],
                      r["broker_cpu_s_per_gib"], d["bench_cpu_s_per_gib"],
                      p["bench_cpu_s_per_gib"], r["bench_cpu_s_per_gib"]))
    if json_path:
        with open(json_path, "w") as f:
            json.dump({"summary": summary, "ratios": ratios, "rounds": results}, f, indent=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--record-bytes", type=int, default=1024)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--mtu", type=int, default=1500, help="the tap's MTU (both ends)")
    ap.add_argument("--json")
    args = ap.parse_args()
    results = {}
    for _ in range(args.rounds):
        setup = DpdkSetup(7, **{"sluice.cores": str(args.cores),
                                "sluice.dpdk.tcp.user.timeout.ms": "60000",
                                "sluice.dpdk.mtu": str(args.mtu)})
        try:
            measure("dpdk", ["ip", "netns", "exec", setup.ns], setup.broker.bootstrap,
                    setup.broker.proc.pid, args, results)
        finally:
            setup.close()
        with Broker(num_partitions=2, **{"sluice.cores": str(args.cores)}) as b:
            measure("posix", [], b.bootstrap, b.proc.pid, args, results)
    report(results, "dpdk over a tap vs posix on loopback", args.json)


if __name__ == "__main__":
    main()
