#!/usr/bin/python3
"""Both ends on one network stack, side by side in one run (build/perf/stack_bench):

  posix: server and client processes on kernel sockets (io_uring) over loopback;
  dpdk:  server and client processes on the dpdk stack, joined by a net_memif pair (shared
         memory between the processes: no kernel on the packet path), --no-huge.

Per round and stack: a stream run (64 KiB Kafka-framed messages, up to 4 MiB in flight, each
acknowledged by an 8-byte answer) and a ping-pong run (1 KiB echoed, one at a time). Reported
(median over rounds): stream MiB/s, CPU seconds per GiB streamed for the client and the server
(utime + stime, the server's read from /proc), round-trip p50/p99/p99.9. Ratios are dpdk / posix.
The dpdk processes poll their port (with 100 us naps when idle, net_memif having no RX
interrupt here), so their CPU includes polling.

This is the stacks' own cost, not the broker's; Kafka produce/consume with both ends on the
dpdk stack is perf/bypass_bench.py.

Reproduce (root, a build with dpdk-dev):
  cmake --build build --target stack_bench && /usr/bin/python3 perf/stack_bench.py \\
      --build build --rounds 3 --seconds 5 [--json out.json]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sides(stack, sock, mtu=1500):
    if stack == "posix":
        return (["--stack", "posix", "--listen", "127.0.0.1:19556"],
                ["--stack", "posix", "--connect", "127.0.0.1:19556"])
    eal = "--no-pci --no-huge -m 256 --vdev=net_memif0,role=%s,socket=" + sock
    return (["--stack", "dpdk", "--listen", "198.18.9.2:9092", "--ip", "198.18.9.2",
             "--dpdk-args", eal % "server", "--mtu", str(mtu)],
            ["--stack", "dpdk", "--connect", "198.18.9.2:9092", "--ip", "198.18.9.1",
             "--dpdk-args", eal % "client", "--mtu", str(mtu)])


def one(binary, stack, args):
    with tempfile.TemporaryDirectory() as tmp:
        server_args, client_args = sides(stack, os.path.join(tmp, "memif.sock"), args.mtu)
        server = subprocess.Popen([binary, "--role", "server"] + server_args,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            deadline = time.monotonic() + 30
            while server.stdout.readline().strip() != "listening":
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("%s server did not start" % stack)
            out = {}
            for phase, extra in (("stream", ["--seconds", str(args.seconds), "--pings", "0"]),
                                 ("ping", ["--seconds", "0", "--pings", str(args.pings)])):
                before = cpu_s(server.pid)
                r = subprocess.run([binary, "--role", "client"] + client_args + extra,
                                   capture_output=True, text=True, timeout=args.seconds + 120)
                if r.returncode != 0:
                    raise RuntimeError("%s client failed:\n%s" % (stack, r.stderr[-2000:]))
                line = [l for l in r.stdout.splitlines() if l.startswith("{")][-1]
                out[phase] = json.loads(line)
                out[phase]["server_cpu_s"] = cpu_s(server.pid) - before
        finally:
            server.terminate()
            server.wait(20)
    gib = out["stream"]["stream_bytes"] / float(1 << 30)
    return {"stream_mib_s": out["stream"]["stream_mib_s"],
            "client_cpu_s_per_gib": out["stream"]["client_cpu_stream_s"] / gib,
            "server_cpu_s_per_gib": out["stream"]["server_cpu_s"] / gib,
            "rtt_p50_us": out["ping"]["rtt_p50_us"], "rtt_p99_us": out["ping"]["rtt_p99_us"],
            "rtt_p999_us": out["ping"]["rtt_p999_us"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--pings", type=int, default=20000)
    ap.add_argument("--mtu", type=int, default=1500, help="of the dpdk ports (net_memif in DPDK 22.11 takes at most 1500)")
    ap.add_argument("--json")
    args = ap.parse_args()
    binary = os.path.join(args.build, "perf", "stack_bench")
    rows = {"posix": [], "dpdk": []}
    for _ in range(args.rounds):
        for stack in ("dpdk", "posix"):
            row = one(binary, stack, args)
            rows[stack].append(row)
            print("%-5s stream %7.1f MiB/s  client %.2f s/GiB  server %.2f s/GiB  rtt p50 %.1f "
                  "p99 %.1f p99.9 %.1f us" % (stack, row["stream_mib_s"],
                                               row["client_cpu_s_per_gib"],
                                               row["server_cpu_s_per_gib"], row["rtt_p50_us"],
                                               row["rtt_p99_us"], row["rtt_p999_us"]), flush=True)
    med = {s: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for s, rs in rows.items()}
    ratio = {k: med["dpdk"][k] / med["posix"][k] for k in med["posix"] if med["posix"][k]}
    print("\nmedians, dpdk over net_memif vs posix over loopback (both ends on the stack):")
    for k in med["posix"]:
        print("  %-22s %10.2f vs %10.2f  (%.2fx)" % (k, med["dpdk"][k], med["posix"][k],
                                                   ratio.get(k, 0)))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"medians": med, "ratios": ratio, "rounds": rows}, f, indent=1)


if __name__ == "__main__":
    main()
