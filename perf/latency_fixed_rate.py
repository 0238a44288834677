#!/usr/bin/python3
"""Produce latency at a fixed rate (issue #14): `sluice bench --rate` at 10k, 50k and 100k
records/s of 1 KiB to a 4-partition topic, acks=1 and acks=all with fsync=always, against one
Sluice broker started per configuration, with cross-core rings on and off side by side in the
same run (`sluice.cross.core.rings`). Prints request latency p50 / p99 / p99.9 / max (ms) of
each run and the achieved rate; asserts nothing. Point --bootstrap-server at another broker
(Kafka, Redpanda) to add its column.

    perf/latency_fixed_rate.py --build build [--duration-s 10] [--rates 10000,50000,100000]
        [--variant NAME:--broker.arg=value[,--other=value]]...

Each --variant is one broker configuration measured side by side (default: rings=true and
rings=false); e.g. --variant sqpoll:--sluice.uring.sqpoll=true --variant base:
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    def __init__(self, sluice, extra):
        self.dir = tempfile.mkdtemp(prefix="sluice-latency-", dir="/var/tmp")
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sluice, "serve", "--listeners=PLAINTEXT://127.0.0.1:%d" % self.port,
             "--log.dirs=" + os.path.join(self.dir, "data"), "--num.partitions=4"] + extra,
            stdout=open(os.path.join(self.dir, "broker.log"), "wb"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("broker did not start")

    def close(self):
        self.proc.terminate()
        self.proc.wait(60)
        shutil.rmtree(self.dir, ignore_errors=True)


def bench(sluice, bootstrap, topic, rate, acks, duration, out_dir):
    path = os.path.join(out_dir, "%s-%d.json" % (topic, rate))
    subprocess.run([sluice, "bench", "--bootstrap-server", bootstrap, "--topic", topic,
                    "--mode", "produce", "--partitions", "4", "--record-size", "1024",
                    "--acks", acks, "--rate", str(rate), "--duration-s", str(duration),
                    "--json", path, "--quiet"], check=True, timeout=duration * 4 + 60)
    with open(path) as f:
        side = json.load(f)["produce"]
    lat = side["latency_ms"]
    return side.get("records_per_s", 0), lat["p50"], lat["p99"], lat["p999"], lat["max"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--broker-build", help="run the broker from this build instead (e.g. an "
                    "older tree; the bench still comes from --build)")
    ap.add_argument("--duration-s", type=int, default=10)
    ap.add_argument("--rates", default="10000,50000,100000")
    ap.add_argument("--bootstrap-server", help="also measure this broker (any Kafka)")
    ap.add_argument("--variant", action="append", default=[],
                    help="NAME:comma-separated broker arguments (repeatable)")
    opts = ap.parse_args()
    variants = []
    for v in opts.variant or ["rings=true:--sluice.cross.core.rings=true",
                              "rings=false:--sluice.cross.core.rings=false"]:
        name, _, args = v.partition(":")
        variants.append((name, [a for a in args.split(",") if a]))
    sluice = os.path.join(opts.build, "tools", "sluice")
    serve = os.path.join(opts.broker_build or opts.build, "tools", "sluice")
    rates = [int(r) for r in opts.rates.split(",")]
    out_dir = tempfile.mkdtemp(prefix="sluice-latency-out-")
    rows = []
    cases = [("acks=1", "1", []), ("acks=all fsync=always", "all", ["--sluice.fsync=always"])]
    for label, acks, extra in cases:
        for vi, (name, args) in enumerate(variants):
            b = Broker(serve, extra + args)
            try:
                for rate in rates:
                    topic = "lat-%s-%d-%d" % (acks, vi, rate)
                    r = bench(sluice, "127.0.0.1:%d" % b.port, topic, rate, acks,
                              opts.duration_s, out_dir)
                    rows.append((label, "sluice " + name, rate) + r)
                    print("%-22s %-20s %7d rec/s: achieved %8.0f  p50 %.3f  p99 %.3f  "
                          "p99.9 %.3f  max %.3f ms" % rows[-1], flush=True)
            finally:
                b.close()
        if opts.bootstrap_server:
            for rate in rates:
                r = bench(sluice, opts.bootstrap_server, "lat-other-%s-%d" % (acks, rate), rate,
                          acks, opts.duration_s, out_dir)
                rows.append((label, "other broker", rate) + r)
                print("%-22s %-20s %7d rec/s: achieved %8.0f  p50 %.3f  p99 %.3f  "
                      "p99.9 %.3f  max %.3f ms" % rows[-1], flush=True)
    shutil.rmtree(out_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
