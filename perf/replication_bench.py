#!/usr/bin/python3
"""Replication benchmarks on a private 3-broker cluster (tests/e2e/cluster.py: its own ZooKeeper
and brokers on free loopback ports, removed afterwards), every figure from one run:

  throughput: `sluice bench` produce, alternating rounds of acks=all to a replication-factor-3
              topic and acks=1 to a replication-factor-1 topic (3 partitions each); the ratio
              is the median of the per-round ratios. Beside it, the same run's `dd` rate to a
              new file: on this VM producing is bounded by the host's cost of fresh page-cache
              pages, and replication factor 3 writes every byte three times.
  replication lag: request latency p99 of acks=all against acks=1, both to the
              replication-factor-3 topic under the same load (acks=all waits for the
              followers' next fetch to carry the high watermark past the request).
  unavailability: one idempotent acks=all producer (librdkafka) sending small records at a
              steady rate to a 1-partition topic while its leader is stopped with SIGTERM
              (controlled shutdown) and then with kill -9; the figure is the longest gap
              between consecutive acknowledgements around each event. kill -9 is bounded by
              zookeeper.session.timeout.ms (here 4000 ms): the controller learns of the death
              only when the session expires.

Reproduce:
  cmake --build build && SLUICE_BIN=build/tools/sluice /usr/bin/python3 perf/replication_bench.py \\
      --rounds 3 --seconds 5 [--cores 2] [--json out.json]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))

import confluent_kafka as ck  # noqa: E402
from confluent_kafka import admin as ck_admin  # noqa: E402

from cluster import Cluster, SESSION_MS  # noqa: E402


def bench(binary, bootstrap, topic, acks, seconds):
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        subprocess.run([binary, "bench", "--bootstrap-server", bootstrap, "--topic", topic,
                        "--acks", acks, "--duration-s", str(seconds), "--json", f.name,
                        "--quiet"], check=False, stdout=subprocess.DEVNULL, timeout=seconds + 120)
        with open(f.name) as r:
            return json.load(r)["produce"]


def dd_new_file_mbps(directory, mib=256):
    path = os.path.join(directory, "dd-reference")
    start = time.monotonic()
    subprocess.run(["dd", "if=/dev/zero", "of=" + path, "bs=1M", "count=%d" % mib],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elapsed = time.monotonic() - start
    os.unlink(path)
    return mib / elapsed


def create(bootstrap, name, partitions, rf):
    a = ck_admin.AdminClient({"bootstrap.servers": bootstrap})
    a.create_topics([ck_admin.NewTopic(name, num_partitions=partitions,
                                       replication_factor=rf)])[name].result(60)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        t = a.list_topics(name, timeout=10).topics[name]
        if t.partitions and all(p.leader >= 0 and len(p.isrs) == rf
                                for p in t.partitions.values()):
            return
        time.sleep(0.2)
    raise RuntimeError("no leaders for " + name)


def leader_of(bootstrap, topic):
    a = ck_admin.AdminClient({"bootstrap.servers": bootstrap})
    return a.list_topics(topic, timeout=10).topics[topic].partitions[0].leader


def unavailability(cluster, topic, rate, event):
    """Runs a steady producer, applies `event(leader)` after 2 s, keeps producing until 5 s after
    the new leader serves; returns the longest gap between acknowledgements (ms) and counts."""
    p = ck.Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all",
                     "enable.idempotence": True, "linger.ms": 0, "log_level": 0,
                     "message.timeout.ms": 60000, "topic.metadata.refresh.interval.ms": 500,
                     "retry.backoff.ms": 20, "reconnect.backoff.ms": 20,
                     "reconnect.backoff.max.ms": 200})
    acks = []
    errors = []

    def done(err, msg):
        if err is None:
            acks.append(time.monotonic())
        else:
            errors.append(str(err))

    stop = threading.Event()

    def run():
        i = 0
        interval = 1.0 / rate
        nxt = time.monotonic()
        while not stop.is_set():
            p.produce(topic, value=b"x%09d" % i, on_delivery=done)
            i += 1
            p.poll(0)
            nxt += interval
            delay = nxt - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        p.flush(60)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    time.sleep(2)
    victim = leader_of(cluster.bootstrap, topic)
    at = time.monotonic()
    event(victim)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if acks and acks[-1] > at + 1:
            break
        time.sleep(0.05)
    time.sleep(3)
    stop.set()
    t.join(90)
    window = [a for a in acks if a >= at - 1]
    gaps = [b - a for a, b in zip(window, window[1:])]
    cluster.restart(victim)
    return {"max_gap_ms": round(max(gaps) * 1000, 1) if gaps else None,
            "acks": len(acks), "errors": len(errors), "victim": victim}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rate", type=int, default=1000, help="records/s in the unavailability runs")
    ap.add_argument("--cores", type=int, default=2,
                    help="sluice.cores of each broker (three brokers share this host's CPUs)")
    ap.add_argument("--broker-config", action="append", default=[], metavar="KEY=VALUE",
                    help="a broker setting for all three brokers (repeatable)")
    ap.add_argument("--json")
    args = ap.parse_args()
    if any("=" not in kv for kv in args.broker_config):
        ap.error("--broker-config takes KEY=VALUE")
    extra = dict(kv.split("=", 1) for kv in args.broker_config)
    binary = os.environ.get("SLUICE_BIN") or os.path.join(HERE, "..", "build", "tools", "sluice")
    os.environ["SLUICE_BIN"] = binary
    out = {"session_timeout_ms": SESSION_MS}
    with Cluster(3, auto_leader_rebalance_enable="false", sluice_cores=args.cores, **extra) as c:
        create(c.bootstrap, "rf3", 3, 3)
        create(c.bootstrap, "rf1", 3, 1)
        rounds = []
        for r in range(args.rounds):
            a = bench(binary, c.bootstrap, "rf3", "all", args.seconds)
            b = bench(binary, c.bootstrap, "rf1", "1", args.seconds)
            l1 = bench(binary, c.bootstrap, "rf3", "1", args.seconds)
            dd = dd_new_file_mbps(c.dir)
            rounds.append({"rf3_all_mibps": a["mib_per_s"], "rf1_acks1_mibps": b["mib_per_s"],
                           "ratio": a["mib_per_s"] / b["mib_per_s"],
                           "rf3_all_p50_ms": a["latency_ms"]["p50"],
                           "rf3_all_p99_ms": a["latency_ms"]["p99"],
                           "rf3_acks1_p50_ms": l1["latency_ms"]["p50"],
                           "rf3_acks1_p99_ms": l1["latency_ms"]["p99"],
                           "errors": a["errors"] + b["errors"] + l1["errors"],
                           "dd_new_file_mibps": dd})
            print("round %d: %s" % (r, json.dumps(rounds[-1])), flush=True)
        out["rounds"] = rounds
        out["ratio_median"] = statistics.median(x["ratio"] for x in rounds)
        # Replication factor 3 puts every byte in three brokers' page caches.
        out["rf3_bytes_written_vs_dd_median"] = statistics.median(
            3 * x["rf3_all_mibps"] / x["dd_new_file_mibps"] for x in rounds)
        out["rf1_bytes_written_vs_dd_median"] = statistics.median(
            x["rf1_acks1_mibps"] / x["dd_new_file_mibps"] for x in rounds)
        out["rf3_all_p99_ms_median"] = statistics.median(x["rf3_all_p99_ms"] for x in rounds)
        out["rf3_acks1_p99_ms_median"] = statistics.median(x["rf3_acks1_p99_ms"] for x in rounds)
        create(c.bootstrap, "avail", 1, 3)
        out["controlled_shutdown"] = unavailability(
            c, "avail", args.rate, lambda v: c.brokers[v].stop())
        out["kill9"] = unavailability(c, "avail", args.rate, lambda v: c.brokers[v].kill())
    print(json.dumps({k: v for k, v in out.items() if k != "rounds"}, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
