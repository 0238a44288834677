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
      --rounds 3 --seconds 5 [--record-bytes 1024] [--cores 1] [--mtus 1500,9000,9000+trusted]
      [--json out.json]

--mtus runs the dpdk side once per entry in each round (stacks "dpdk-mtu1500", ...; both ends of
the memif pair take the MTU: net/README.md "Jumbo frames on net_memif"; loopback's is 65536);
"+trusted" adds sluice.dpdk.link.trusted / --dpdk-trusted-link on both ends (no TCP/IPv4
checksums, as on loopback: net/README.md "Trusted links").
"""

import argparse
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))

from broker import Broker  # noqa: E402
from dpdk_bench import measure, report  # noqa: E402

BROKER_IP, BENCH_IP = "198.18.9.2", "198.18.9.1"


def memif_eal(sock, role):
    return "--no-pci --no-huge -m 512 --vdev=net_memif0,role=%s,socket=%s" % (role, sock)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--record-bytes", type=int, default=1024)
    ap.add_argument("--cores", type=int, default=1, help="sluice.cores of the broker (both stacks)")
    ap.add_argument("--mtus", default="1500,9000,9000+trusted",
                    help="MTUs of the memif link to run the dpdk side at, comma-separated; "
                         "N+trusted: without checksums on both ends")
    ap.add_argument("--json")
    args = ap.parse_args()
    variants = [(int(m.split("+")[0]), m.endswith("+trusted")) for m in args.mtus.split(",") if m]
    results = {}
    for _ in range(args.rounds):
        for mtu, trusted in variants:
            tmp = tempfile.mkdtemp(prefix="sluice-bypass-")
            sock = os.path.join(tmp, "memif.sock")
            try:
                with Broker(num_partitions=2, host=BROKER_IP, port=9092, **{
                        "sluice.network.stack": "dpdk",
                        "sluice.dpdk.args": memif_eal(sock, "server"),
                        "sluice.dpdk.ip": BROKER_IP, "sluice.dpdk.mtu": str(mtu),
                        "sluice.dpdk.link.trusted": "true" if trusted else "false",
                        "sluice.cores": str(args.cores)}) as b:
                    measure("dpdk-mtu%d%s" % (mtu, "-trusted" if trusted else ""), [],
                            b.bootstrap, b.proc.pid, args, results,
                            "bypass-bench",
                            ["--acks", "1", "--network-stack", "dpdk", "--dpdk-args",
                             memif_eal(sock, "client"), "--dpdk-ip", BENCH_IP,
                             "--dpdk-mtu", str(mtu)] + (["--dpdk-trusted-link"] if trusted else []))
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        with Broker(num_partitions=2, **{"sluice.cores": str(args.cores)}) as b:
            measure("posix", [], b.bootstrap, b.proc.pid, args, results, "bypass-bench",
                    ["--acks", "1"])
    report(results, "dpdk over net_memif, both ends, vs posix on loopback", args.json)


if __name__ == "__main__":
    main()
