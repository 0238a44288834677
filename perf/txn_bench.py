#!/usr/bin/python3
"""Transaction benchmarks on one broker (tests/e2e/broker.py: a private `sluice serve` on a free
loopback port, its data directory removed afterwards). Every figure is a ratio of two runs
alternated in the same process, with the same client, the same record size and the same topic
layout (3 partitions):

  produce: transactional produce (--txn-records per transaction, committed) against
           idempotent produce, both acks=all, records/s; the ratio is the median of the
           per-round ratios. --client sluice (default): `sluice bench` producers
           (--idempotent / --transactional-id: AddPartitionsToTxn, pipelined produces, EndTxn),
           which add little client time of their own; --client librdkafka: confluent-kafka
           producers (begin, produce, commit_transaction), whose transactional API is serial
           and slow per transaction, so that figure says more about the client.
           Beside it, the broker's CPU seconds (utime + stime of its process) per record in each
           mode: the broker's own cost of transactions, apart from the client's pace.
  consume: read_committed against read_uncommitted consumption (librdkafka) of the last
           transactional topic (its markers included), records/s, median of per-round ratios.

Reproduce:
  cmake --build build && SLUICE_BIN=build/tools/sluice /usr/bin/python3 perf/txn_bench.py \\
      --rounds 3 --seconds 5 [--txn-records 100] [--record-bytes 1024] [--producers 1]
      [--client sluice|librdkafka] [--json out.json]
"""

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))

import confluent_kafka as ck  # noqa: E402

from broker import Broker  # noqa: E402

PARTITIONS = 3


def cpu_s(pid):
    """utime + stime of a process (all its threads), seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def produce_for(bootstrap, topic, seconds, record_bytes, txn_records, txn_id=None):
    """Records/s produced (and acknowledged) in about `seconds`."""
    conf = {"bootstrap.servers": bootstrap, "linger.ms": 5, "enable.idempotence": True,
            "batch.size": 1 << 20, "queue.buffering.max.kbytes": 1 << 20}
    if txn_id:
        conf["transactional.id"] = txn_id
    p = ck.Producer(conf)
    value = b"x" * record_bytes
    if txn_id:
        p.init_transactions(30)
    sent = 0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if txn_id:
            p.begin_transaction()
        for _ in range(txn_records):
            while True:
                try:
                    p.produce(topic, value=value)
                    break
                except BufferError:
                    p.poll(0.01)
        p.poll(0)
        if txn_id:
            p.commit_transaction(30)
        sent += txn_records
    p.flush(60)
    elapsed = time.monotonic() - start
    return sent / elapsed, sent


def consume_all(bootstrap, topic, isolation):
    """(records, records/s) reading the whole topic: timed from the first record to the last,
    the end being 2 s without any."""
    c = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-%f" % time.time(),
                     "enable.auto.commit": False, "isolation.level": isolation,
                     "fetch.max.bytes": 64 << 20, "max.partition.fetch.bytes": 16 << 20})
    c.assign([ck.TopicPartition(topic, p, ck.OFFSET_BEGINNING) for p in range(PARTITIONS)])
    got = 0
    first = last = None
    began = time.monotonic()
    while last is None or time.monotonic() - last < 2:
        msgs = [m for m in c.consume(10000, timeout=0.5) if m.error() is None]
        if msgs:
            last = time.monotonic()
            first = first or last
            got += len(msgs)
        elif first is None and time.monotonic() - began > 30:
            break
    c.close()
    return got, got / max(last - first, 1e-6) if first else 0.0


def delete_topic(bootstrap, topic):
    subprocess.run([os.environ["SLUICE_BIN"], "topic", "delete", topic, "--bootstrap-server",
                    bootstrap], check=True, stdout=subprocess.DEVNULL, timeout=60)


def sluice_bench(binary, bootstrap, topic, seconds, record_bytes, txn_records, producers,
                 txn_id=None):
    """(records/s, records) of `sluice bench` producers (acks=all): idempotent, or
    transactional with --txn-records per transaction."""
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        argv = [binary, "bench", "--bootstrap-server", bootstrap, "--topic", topic,
                "--partitions", str(PARTITIONS), "--acks", "all", "--producers", str(producers),
                "--record-size", str(record_bytes), "--duration-s", str(seconds), "--json",
                f.name, "--quiet"]
        argv += ["--transactional-id", txn_id, "--txn-records", str(txn_records)] if txn_id \
            else ["--idempotent"]
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, timeout=seconds + 120)
        with open(f.name) as r:
            produce = json.load(r)["produce"]
    if produce["errors"]:
        raise RuntimeError("sluice bench reported %d error(s)" % produce["errors"])
    return produce["records"] / produce["seconds"], produce["records"]


def _produce_job(job):
    return produce_for(*job)


def produce_parallel(bootstrap, topic, seconds, record_bytes, txn_records, producers, txn_id=None):
    """(records/s, records) of `producers` producer processes writing at once (each its own
    librdkafka producer and, when transactional, its own transactional id)."""
    if producers == 1:
        return produce_for(bootstrap, topic, seconds, record_bytes, txn_records, txn_id)
    jobs = [(bootstrap, topic, seconds, record_bytes, txn_records,
             None if txn_id is None else "%s-%d" % (txn_id, i)) for i in range(producers)]
    with multiprocessing.get_context("fork").Pool(producers) as pool:
        results = pool.map(_produce_job, jobs)
    return sum(r for r, _ in results), sum(n for _, n in results)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--txn-records", type=int, default=100)
    ap.add_argument("--record-bytes", type=int, default=1024)
    ap.add_argument("--producers", type=int, default=1,
                    help="producers writing at once in each mode")
    ap.add_argument("--client", choices=("sluice", "librdkafka"), default="sluice",
                    help="who produces: sluice bench (pipelined, C++) or librdkafka")
    ap.add_argument("--json")
    args = ap.parse_args()
    with Broker(num_partitions=PARTITIONS) as b:
        # Each run's topic is deleted after it, and a warm-up run's before the first: on this
        # VM a page the guest never used costs a host fault, which makes writing into new
        # page-cache pages 3x slower than into recycled ones (perf/README.md "Broker
        # throughput"). Without the deletions every run would take never-used pages, except
        # runs that happened to follow a freed directory; with them every run recycles.
        if args.client == "sluice":
            sluice_bench(os.environ["SLUICE_BIN"], b.bootstrap, "warmup", 4, args.record_bytes,
                         args.txn_records, args.producers)
        else:
            produce_parallel(b.bootstrap, "warmup", 4, args.record_bytes, args.txn_records,
                             args.producers)
        delete_topic(b.bootstrap, "warmup")
        produce = []
        for r in range(args.rounds):
            def run(txn_mode):
                """(records/s, broker CPU seconds per record) of one mode's run."""
                os.sync()  # no run pays for the previous one's writeback
                c0 = cpu_s(b.proc.pid)
                topic = ("txn-%d" if txn_mode else "idem-%d") % r
                txn_id = "bench-%d" % r if txn_mode else None
                if args.client == "sluice":
                    rate, n = sluice_bench(os.environ["SLUICE_BIN"], b.bootstrap, topic,
                                           args.seconds, args.record_bytes, args.txn_records,
                                           args.producers, txn_id=txn_id)
                else:
                    rate, n = produce_parallel(b.bootstrap, topic, args.seconds,
                                               args.record_bytes, args.txn_records,
                                               args.producers, txn_id=txn_id)
                # Broker CPU per record: what a transaction costs the broker, apart from the
                # client's own pace.
                cpu = (cpu_s(b.proc.pid) - c0) / n
                if not (txn_mode and r == args.rounds - 1):  # that one is consumed below
                    delete_topic(b.bootstrap, topic)
                return rate, cpu
            # The order alternates (ABBA), so that a drift over the run (the page cache
            # filling) does not always favour the mode that runs first.
            if r % 2 == 0:
                idem, idem_cpu = run(False)
                txn, txn_cpu = run(True)
            else:
                txn, txn_cpu = run(True)
                idem, idem_cpu = run(False)
            produce.append((idem, txn, idem_cpu, txn_cpu))
            print("round %d: idempotent %.0f rec/s (broker %.2f us/record), transactional "
                  "(%d/txn) %.0f rec/s (broker %.2f us/record); throughput ratio %.2f, broker "
                  "CPU per record ratio %.2f, %.0f us per transaction beyond its records"
                  % (r + 1, idem, idem_cpu * 1e6, args.txn_records, txn, txn_cpu * 1e6,
                     txn / idem, txn_cpu / idem_cpu,
                     (txn_cpu - idem_cpu) * args.txn_records * 1e6), flush=True)
        # Consume the last transactional topic both ways, alternated.
        topic = "txn-%d" % (args.rounds - 1)
        consume = []
        for r in range(args.rounds):
            n_unc, unc = consume_all(b.bootstrap, topic, "read_uncommitted")
            n_com, com = consume_all(b.bootstrap, topic, "read_committed")
            if n_unc != n_com:
                raise RuntimeError("read_committed saw %d records, read_uncommitted %d: every "
                                   "transaction committed" % (n_com, n_unc))
            consume.append((unc, com))
            print("round %d: %d records; read_uncommitted %.0f rec/s, read_committed %.0f rec/s,"
                  " ratio %.2f" % (r + 1, n_unc, unc, com, com / unc), flush=True)
    result = {
        "txn_vs_idempotent_produce": statistics.median(p[1] / p[0] for p in produce),
        "txn_vs_idempotent_broker_cpu_per_record": statistics.median(p[3] / p[2] for p in produce),
        # What a transaction costs the broker beyond its records' idempotent cost.
        "broker_cpu_us_per_txn_beyond_records": statistics.median(
            (p[3] - p[2]) * args.txn_records * 1e6 for p in produce),
        "read_committed_vs_uncommitted_consume": statistics.median(c / u for u, c in consume),
        "idempotent_records_per_s": statistics.median(p[0] for p in produce),
        "txn_records_per_s": statistics.median(p[1] for p in produce),
        "records_per_txn": args.txn_records,
        "producers": args.producers,
        "client": args.client,
        "record_bytes": args.record_bytes,
    }
    print(json.dumps(result, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
