"""Produce under write load keeps every producer's order and fails nothing (issue #15).

A partition whose append buffer is full makes produce requests wait; it never refuses them.
A refusal (the old REQUEST_TIMED_OUT) is retried by the client after the batches behind it were
accepted, which reorders the log. Each test here writes records that carry their producer and
sequence number with plain (non-idempotent) librdkafka producers, then reads the partition
back from offset 0 and checks: no delivery error, every record exactly once, and each
producer's records in the order it produced them.

`SmallBufferTest` shrinks the append buffer (sluice.append.buffer.bytes) so that waiting
happens on every run, whatever the disk's speed, and checks the broker says it did.
"""

import time
import unittest

from broker import BrokerTestCase

try:
    import confluent_kafka as ck
except ImportError:  # pragma: no cover - reported as a skip
    ck = None

if ck is None:
    print("E2E-SKIP: python3-confluent-kafka is not installed")

DELIVERY_TIMEOUT_S = 240


def value_of(producer_id, seq, size):
    head = b"%d:%d:" % (producer_id, seq)
    return head + b"x" * max(0, size - len(head))


def produce(bootstrap, topic, producer_id, sizes, **conf):
    """Produces len(sizes) records to partition 0 with librdkafka's defaults (plus `conf`);
    returns the delivery errors."""
    settings = {"bootstrap.servers": bootstrap, "log_level": 3}
    settings.update(conf)
    p = ck.Producer(settings)
    errors = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(str(err))

    for seq, size in enumerate(sizes):
        while True:
            try:
                p.produce(topic, value=value_of(producer_id, seq, size), partition=0,
                          on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    left = p.flush(DELIVERY_TIMEOUT_S)
    if left:
        errors.append("%d records undelivered after %ss" % (left, DELIVERY_TIMEOUT_S))
    return errors


def read_partition(bootstrap, topic, count, timeout_s=120):
    """(offset, producer id, sequence) of the first `count` records of partition 0."""
    c = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": "e2e-order-unused",
                     "enable.auto.commit": False, "enable.partition.eof": False,
                     "fetch.wait.max.ms": 100, "log_level": 3})
    c.assign([ck.TopicPartition(topic, 0, 0)])
    out = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(out) < count and time.monotonic() < deadline:
            for m in c.consume(num_messages=1000, timeout=0.5):
                if m.error():
                    raise AssertionError("consumer error: %s" % m.error())
                pid, seq = m.value().split(b":", 2)[:2]
                out.append((m.offset(), int(pid), int(seq)))
    finally:
        c.close()
    return out


class OrderChecks:
    def assert_each_producer_in_order(self, records, expected):
        """`expected`: {producer id: record count}. Every record once, in production order."""
        seen = {pid: [] for pid in expected}
        for offset, pid, seq in records:
            self.assertIn(pid, seen, "record from unknown producer %d at %d" % (pid, offset))
            seen[pid].append((offset, seq))
        for pid, n in expected.items():
            seqs = [s for _, s in seen[pid]]
            out_of_place = [(o, s, i) for i, (o, s) in enumerate(seen[pid]) if s != i]
            self.assertEqual(len(seqs), n, "producer %d: %d records read, %d produced"
                             % (pid, len(seqs), n))
            self.assertEqual(out_of_place[:5], [],
                             "producer %d: (offset, record, expected) out of order" % pid)
        offsets = [o for o, _, _ in records]
        self.assertEqual(offsets, list(range(len(offsets))), "offsets are not dense")

    def check_single_producer(self, topic, sizes, **conf):
        errors = produce(self.broker.bootstrap, topic, 0, sizes, **conf)
        self.assertEqual(errors[:5], [], "%d delivery errors" % len(errors))
        records = read_partition(self.broker.bootstrap, topic, len(sizes))
        self.assert_each_producer_in_order(records, {0: len(sizes)})
        self.assertBrokerAlive()

    def check_concurrent_producers(self, topic, producers, sizes, **conf):
        import threading
        results = {}

        def run(pid):
            results[pid] = produce(self.broker.bootstrap, topic, pid, sizes, **conf)

        threads = [threading.Thread(target=run, args=(pid,)) for pid in range(producers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for pid in range(producers):
            self.assertEqual(results[pid][:5], [], "producer %d: %d delivery errors"
                             % (pid, len(results[pid])))
        records = read_partition(self.broker.bootstrap, topic, producers * len(sizes))
        self.assert_each_producer_in_order(records, {pid: len(sizes) for pid in range(producers)})
        self.assertBrokerAlive()


@unittest.skipIf(ck is None, "python3-confluent-kafka is not installed")
class DefaultBufferTest(BrokerTestCase, OrderChecks):
    """The scenario of the issue, against a broker with its default settings."""

    broker_config = {"num_partitions": 4}

    def test_10kb_then_500kb_records_keep_their_order_with_default_retries(self):
        self.check_single_producer(self.unique_topic(), [10_000] * 1000 + [500_000] * 1000)


@unittest.skipIf(ck is None, "python3-confluent-kafka is not installed")
class SmallBufferTest(BrokerTestCase, OrderChecks):
    """A 1 MiB append buffer: most produce requests wait for room."""

    broker_config = {"num_partitions": 1, "sluice_append_buffer_bytes": 1 << 20}

    @classmethod
    def tearDownClass(cls):
        waited = "wait for room in the append buffer" in cls.broker.log_text()
        super().tearDownClass()
        if not waited:
            raise AssertionError("the broker never made a produce wait: the tests did not "
                                 "exercise back-pressure")

    def test_large_records_with_no_retries_fail_nothing(self):
        # retries=0: a single refused request would be a delivery error.
        self.check_single_producer(self.unique_topic(), [10_000] * 500 + [500_000] * 200,
                                   retries=0)

    def test_four_producers_on_one_partition_keep_their_orders(self):
        self.check_concurrent_producers(self.unique_topic(), 4, [20_000] * 1500)

    def test_many_small_records_at_full_speed(self):
        self.check_single_producer(self.unique_topic(), [100] * 200_000, retries=0,
                                   **{"linger.ms": 0})


if __name__ == "__main__":
    unittest.main()
