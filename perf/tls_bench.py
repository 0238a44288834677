#!/usr/bin/python3
"""TLS against plaintext on the same broker, side by side in one run.

One broker with a PLAINTEXT and an SSL listener (a throwaway CA and certificate made with
`openssl`); `sluice bench` produces to and then consumes from each listener in turn, rounds
alternating. Reported per listener (median over rounds): produce and consume MiB/s, latency
p50/p99, broker CPU seconds per GiB moved (utime + stime of the broker process) and bench CPU
seconds per GiB (its rusage; the client decrypts too). Ratios are TLS / plaintext.

Kernel TLS: the broker offloads nothing to the kernel when `tcp_available_ulp` lacks "tls" (a
kernel built without CONFIG_TLS, as on the machine the README's figures come from); the script
prints which case it measured.

Reproduce:
  SLUICE_BIN=build/tools/sluice /usr/bin/python3 perf/tls_bench.py --rounds 3 --seconds 5 \\
      [--record-bytes 1024] [--cores 2] [--json out.json] [--broker-arg=--key=value]
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

from broker import Broker, free_port  # noqa: E402
from test_security import make_pki  # noqa: E402

sys.path.insert(0, HERE)
from dpdk_bench import run_bench as bench_once  # noqa: E402

GIB = float(1 << 30)


def kernel_tls():
    try:
        with open("/proc/sys/net/ipv4/tcp_available_ulp") as f:
            return "tls" in f.read().split()
    except OSError:
        return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--record-bytes", type=int, default=1024)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--json")
    ap.add_argument("--broker-arg", action="append", default=[],
                    help="extra broker setting as --key=value (repeatable)")
    args = ap.parse_args()
    extra_config = dict(a.lstrip("-").split("=", 1) for a in args.broker_arg)
    tmp = tempfile.mkdtemp(prefix="sluice-tls-bench-")
    pki = make_pki(tmp)
    print("kernel TLS offered by this kernel: %s" % ("yes" if kernel_tls() else
                                                      "no (user-space TLS measured)"))
    plain, tls = free_port(), free_port()
    results = {}
    try:
        for rnd in range(args.rounds):
            with Broker(num_partitions=2,
                        listeners="PLAINTEXT://127.0.0.1:%d,SSL://127.0.0.1:%d" % (plain, tls),
                        **{"sluice.cores": str(args.cores),
                           "ssl.certificate.location": pki["server"],
                           "ssl.key.location": pki["server_key"], **extra_config}) as b:
                order = [("plaintext", plain, []),
                         ("tls", tls, ["--security-protocol", "SSL", "--ssl-ca-location", pki["ca"]])]
                if rnd % 2:
                    order.reverse()
                for name, port, extra in order:
                    for mode in ("produce", "consume"):
                        side, broker_cpu, bench_cpu = bench_once(
                            [], "127.0.0.1:%d" % port, mode, args, b.proc.pid,
                            topic="tls-bench-" + name, extra=extra)
                        gib = side["wire_bytes"] / GIB if side["wire_bytes"] else 1e-9
                        lat = side.get("latency_ms") or {}
                        results.setdefault(name, {}).setdefault(mode, []).append({
                            "mib_s": side["mib_per_s"], "p50_ms": lat.get("p50"),
                            "p99_ms": lat.get("p99"), "broker_cpu_s_per_gib": broker_cpu / gib,
                            "bench_cpu_s_per_gib": bench_cpu / gib})
                        print("%-9s %-7s %8.1f MiB/s  p50 %6.2f ms  p99 %6.2f ms  broker %.2f s/GiB"
                              "  bench %.2f s/GiB" % (name, mode, side["mib_per_s"], lat.get("p50") or 0,
                                                      lat.get("p99") or 0, broker_cpu / gib,
                                                      bench_cpu / gib), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    summary = {n: {m: {k: statistics.median(r[k] for r in rows if r[k] is not None) for k in rows[0]}
                   for m, rows in modes.items()} for n, modes in results.items()}
    ratios = {m: {k: (summary["tls"][m][k] / summary["plaintext"][m][k]
                      if summary["plaintext"][m][k] else None) for k in summary["tls"][m]}
              for m in ("produce", "consume")}
    print("\nmedians (TLS vs plaintext, same broker, same run):")
    for m in ("produce", "consume"):
        t, p, r = summary["tls"][m], summary["plaintext"][m], ratios[m]
        print("  %-7s MiB/s %.1f vs %.1f (%.2fx)  p99 %.2f vs %.2f ms  broker CPU/GiB %.2f vs %.2f s "
              "(%.2fx)  bench CPU/GiB %.2f vs %.2f s" % (
                  m, t["mib_s"], p["mib_s"], r["mib_s"], t["p99_ms"], p["p99_ms"],
                  t["broker_cpu_s_per_gib"], p["broker_cpu_s_per_gib"], r["broker_cpu_s_per_gib"],
                  t["bench_cpu_s_per_gib"], p["bench_cpu_s_per_gib"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"kernel_tls": kernel_tls(), "summary": summary, "ratios": ratios,
                       "rounds": results}, f, indent=1)


if __name__ == "__main__":
    main()
