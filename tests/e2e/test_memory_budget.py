"""The broker's memory for requests in flight stays bounded (queued.max.request.bytes, split per
core, net/memory_budget.h) under connections that send large produce requests as fast as the
socket takes them without reading a single answer, and consumers that ask for large fetches and
never read their sockets. Meanwhile a real client (confluent-kafka) keeps producing and
consuming. The broker's anonymous memory (RssAnon, sampled throughout) must stay under a bound
derived from the budget; every acknowledged record is then read back exactly once; once the
load stops, the memory held goes back and the broker keeps serving.

Measured when this was written: RssAnon grew 62-63 MiB with the 64 MiB budget (bound 139 MiB), and
190 MiB under the same load with queued.max.request.bytes=0 (no bound): the bound fails
without the budget."""

import os
import re
import socket
import struct
import threading
import time
import unittest
import urllib.request

from broker import BrokerTestCase, free_port, read_response, request_frame
from client_load import (WAIT_S, ClientLoad, DefaultRecordBatchBuilder, ck,
                         parse_produce_v3_response, produce_v3, record_batch)

if ck is not None:
    import confluent_kafka.admin  # noqa: F401 - ck.admin

if ck is None or DefaultRecordBatchBuilder is None:
    print("E2E-SKIP: python3-confluent-kafka and python3-kafka are needed")

MIB = 1 << 20
BUDGET_BYTES = 64 * MIB               # queued.max.request.bytes (two cores: 32 MiB each)
MAX_REQUEST_BYTES = 9 * MIB           # socket.request.max.bytes
APPEND_BUFFER_BYTES = 4 * MIB         # sluice.append.buffer.bytes, per partition
FLOOD_PARTITIONS = 4
FLOODERS = 24                         # connections sending large produce requests
REQUESTS_EACH = 4
RECORDS_PER_REQUEST = 6               # of 1 MiB: ~6 MiB per request, 576 MiB in all
NON_READERS = 8                       # consumers that never read their sockets
FETCHES_EACH = 20
PRODUCE, FETCH = 0, 1


def rss_anon_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no RssAnon in /proc/%d/status" % pid)


def fetch_v4(topic, partition, max_bytes):
    body = struct.pack(">iiiib", -1, 500, 1, max_bytes, 0)
    body += struct.pack(">ih", 1, len(topic)) + topic
    body += struct.pack(">iiqi", 1, partition, 0, max_bytes)
    return body


class Sampler(threading.Thread):
    """The broker's RssAnon every 20 ms; `peak` is the largest seen."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop_event = pid, 0, threading.Event()

    def run(self):
        while not self.stop_event.is_set():
            self.peak = max(self.peak, rss_anon_bytes(self.pid))
            time.sleep(0.02)


class Flooder(threading.Thread):
    """Writes REQUESTS_EACH large produce requests back to back without reading, then reads
    every answer. The batch (one per partition, built before the flood: kafka-python's CRC32C
    is pure Python) is sent every time: `acked` lists the base offsets it was acknowledged at."""

    batches = {}

    @classmethod
    def keys_of(cls, partition):
        return [b"p%d-%d" % (partition, k) for k in range(RECORDS_PER_REQUEST)]

    def __init__(self, port, index):
        super().__init__(daemon=True)
        self.port, self.index = port, index
        self.partition = index % FLOOD_PARTITIONS
        self.keys = self.keys_of(self.partition)
        if self.partition not in self.batches:
            records = [(k, os.urandom(MIB - 64)) for k in self.keys]
            batch = record_batch(records, batch_size=RECORDS_PER_REQUEST * MIB + MIB)
            self.batches[self.partition] = produce_v3(b"flood", self.partition, batch, acks=1)
        self.body = self.batches[self.partition]
        self.acked, self.errors = [], []

    def run(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=120) as s:
                for r in range(REQUESTS_EACH):
                    s.sendall(request_frame(PRODUCE, 3, r, self.body))
                for r in range(REQUESTS_EACH):
                    cid, resp = read_response(s, timeout=120)
                    ((part, err, base),) = parse_produce_v3_response(resp)
                    if cid != r or part != self.partition:
                        self.errors.append("answer %d out of order: %d/%d" % (r, cid, part))
                    elif err != 0:
                        self.errors.append("request %d: error %d" % (r, err))
                    else:
                        self.acked.append(base)
        except Exception as e:  # noqa: BLE001 - the test reports it
            self.errors.append("flooder %d: %r" % (self.index, e))


@unittest.skipIf(ck is None or DefaultRecordBatchBuilder is None, "Kafka client packages missing")
class MemoryBudgetTest(BrokerTestCase):
    metrics_port = free_port()
    broker_config = {
        "queued.max.request.bytes": BUDGET_BYTES,
        "socket.request.max.bytes": MAX_REQUEST_BYTES,
        "message.max.bytes": MAX_REQUEST_BYTES,
        "sluice.append.buffer.bytes": APPEND_BUFFER_BYTES,
        "sluice.metrics.listener": "127.0.0.1:%d" % metrics_port,
    }

    def metric_sum(self, name):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.metrics_port,
                                    timeout=10) as r:
            text = r.read().decode()
        values = [float(v) for v in re.findall(r"^%s\{[^}]*\} (\S+)$" % name, text, re.M)]
        self.assertTrue(values, "no %s in the metrics" % name)
        return sum(values)

    def wait_for(self, what, cond, timeout=WAIT_S):
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                self.fail("timed out waiting for " + what)
            time.sleep(0.1)

    def test_bounded_memory_other_clients_served_nothing_lost(self):
        pid = self.broker.proc.pid
        load = ClientLoad(self.broker.bootstrap, "steady")
        load.start()
        self.addCleanup(load.stop_event.set)
        self.wait_for("the real client's first round", lambda: load.rounds > 0 or load.errors)
        self.assertEqual(load.errors, [])
        # The flood topic exists before the raw requests name it.
        admin = ck.admin.AdminClient({"bootstrap.servers": self.broker.bootstrap})
        admin.create_topics([ck.admin.NewTopic("flood", FLOOD_PARTITIONS, 1)])["flood"].result(WAIT_S)
        flooders = [Flooder(self.broker.port, i) for i in range(FLOODERS)]
        time.sleep(0.5)
        baseline = rss_anon_bytes(pid)
        self.assertEqual(self.metric_sum("sluice_memory_budget_bytes"), BUDGET_BYTES)

        sampler = Sampler(pid)
        sampler.start()
        rounds_before = load.rounds
        for f in flooders:
            f.start()
        time.sleep(0.3)  # some data to fetch
        readers = []
        for i in range(NON_READERS):
            s = socket.create_connection(("127.0.0.1", self.broker.port), timeout=10)
            self.addCleanup(s.close)
            readers.append(s)
            for n in range(FETCHES_EACH):
                s.sendall(request_frame(FETCH, 4, n, fetch_v4(b"flood", i % FLOOD_PARTITIONS,
                                                              8 * MIB)))
        for f in flooders:
            f.join(180)
            self.assertFalse(f.is_alive(), "flooder %d hung" % f.index)
        rounds_during = load.rounds - rounds_before
        waits = self.metric_sum("sluice_memory_waits_total")
        held_peak = self.metric_sum("sluice_memory_held_peak_bytes")
        sampler.stop_event.set()
        sampler.join()
        growth = sampler.peak - baseline
        for f in flooders:
            self.assertEqual(f.errors, [])
            self.assertEqual(len(f.acked), REQUESTS_EACH)

        # The budget did the bounding: connections waited, and what they held stayed within the
        # budget plus one request per core and the light connections' chunks.
        connections = FLOODERS + NON_READERS + 4
        held_bound = BUDGET_BYTES + 2 * MAX_REQUEST_BYTES + connections * 128 * 1024
        # The process: the budget, the append buffers, a receive chunk per connection, the
        # answers' bookkeeping and the allocator's slack (jemalloc keeps freed pages a while).
        rss_bound = (BUDGET_BYTES + 2 * MAX_REQUEST_BYTES + FLOOD_PARTITIONS * APPEND_BUFFER_BYTES
                     + connections * 256 * 1024 + 32 * MIB)
        print("RssAnon baseline %.0f MiB, peak growth %.0f MiB (bound %.0f MiB); held peak "
              "%.0f MiB; %d waits; %d client rounds during the flood"
              % (baseline / MIB, growth / MIB, rss_bound / MIB, held_peak / MIB, waits,
                 rounds_during))
        self.assertGreater(waits, 0, "no connection ever waited: the load did not test the budget")
        self.assertLessEqual(held_peak, held_bound)
        self.assertLessEqual(growth, rss_bound)
        self.assertGreaterEqual(rounds_during, 1, "the real client was not served during the flood")
        self.assertEqual(load.errors, [])

        # Load stops: memory held goes back, and the broker keeps serving.
        for s in readers:
            s.close()
        self.wait_for("the held memory to return",
                      lambda: self.metric_sum("sluice_memory_held_bytes") <= 4 * 128 * 1024,
                      timeout=30)
        self.wait_for("RssAnon to come back near its baseline",
                      lambda: rss_anon_bytes(pid) <= baseline + 96 * MIB, timeout=40)
        target = load.rounds + 2
        self.wait_for("two more client rounds", lambda: load.rounds >= target or load.errors)
        self.assertEqual(load.errors, [])

        # Every acknowledged record is there, at the offsets it was acknowledged at, and
        # nothing else is: no record lost or written twice.
        expected = {}
        for f in flooders:
            for base in f.acked:
                for k, key in enumerate(f.keys):
                    expected[(f.partition, base + k)] = key
        c = ck.Consumer({"bootstrap.servers": self.broker.bootstrap, "group.id": "check",
                         "enable.auto.commit": False, "fetch.max.bytes": 64 * MIB,
                         "max.partition.fetch.bytes": 16 * MIB, "log_level": 0})
        self.addCleanup(c.close)
        c.assign([ck.TopicPartition("flood", p, ck.OFFSET_BEGINNING)
                  for p in range(FLOOD_PARTITIONS)])
        seen = {}
        deadline = time.monotonic() + 60
        while len(seen) < len(expected) and time.monotonic() < deadline:
            for m in c.consume(num_messages=100, timeout=0.5):
                self.assertIsNone(m.error())
                self.assertNotIn((m.partition(), m.offset()), seen)
                seen[(m.partition(), m.offset())] = m.key()
        self.assertEqual(len(seen), FLOODERS * REQUESTS_EACH * RECORDS_PER_REQUEST)
        self.assertEqual(seen, expected)


if __name__ == "__main__":
    unittest.main()
