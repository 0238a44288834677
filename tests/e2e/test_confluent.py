"""confluent-kafka (Python on librdkafka) against Sluice: producers with acks 0, 1 and all;
consumers assigned to partitions (no group coordination) reading from the earliest offset, the
latest offset and a timestamp; and an idempotent producer that must not duplicate anything."""

import time
import unittest

from broker import BrokerTestCase

try:
    import confluent_kafka as ck
except ImportError:  # pragma: no cover - reported as a skip
    ck = None

WAIT_S = 30
if ck is None:
    print("E2E-SKIP: python3-confluent-kafka is not installed")


def produce_all(producer, topic, records, partition=None, timestamps=None):
    """Produces (key, value) pairs and returns the delivery reports in completion order."""
    reports = []

    def on_delivery(err, msg):
        reports.append((err, msg))

    for i, (k, v) in enumerate(records):
        kwargs = {"key": k, "value": v, "on_delivery": on_delivery}
        if partition is not None:
            kwargs["partition"] = partition
        if timestamps is not None:
            kwargs["timestamp"] = timestamps[i]
        while True:
            try:
                producer.produce(topic, **kwargs)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    left = producer.flush(WAIT_S)
    if left:
        raise AssertionError("%d records still undelivered after %ss" % (left, WAIT_S))
    return reports


@unittest.skipIf(ck is None, "python3-confluent-kafka is not installed")
class ConfluentKafkaTest(BrokerTestCase):
    def producer(self, **extra):
        conf = {"bootstrap.servers": self.broker.bootstrap, "linger.ms": 5,
                "message.timeout.ms": WAIT_S * 1000}
        conf.update(extra)
        return ck.Producer(conf)

    def consumer(self, **extra):
        # librdkafka requires a group.id for a Consumer even when partitions are assigned by
        # hand; with assign() and no commits it never joins the group.
        conf = {"bootstrap.servers": self.broker.bootstrap, "group.id": "e2e-unused",
                "enable.auto.commit": False, "enable.auto.offset.store": False,
                "enable.partition.eof": False, "fetch.wait.max.ms": 100,
                "log_level": 3}
        conf.update(extra)
        return ck.Consumer(conf)

    def consume_n(self, consumer, n, timeout=WAIT_S):
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n and time.monotonic() < deadline:
            for m in consumer.consume(num_messages=min(500, n - len(out)), timeout=0.5):
                if m.error():
                    raise AssertionError("consumer error: %s" % m.error())
                out.append(m)
        return out

    def records(self, tag, n):
        return [(b"%s-k%d" % (tag, i), b"%s-value-%d-" % (tag, i) + b"x" * (i % 50))
                for i in range(n)]

    def assign_all(self, consumer, topic, offset):
        md = consumer.list_topics(topic, timeout=10)
        parts = sorted(md.topics[topic].partitions)
        consumer.assign([ck.TopicPartition(topic, p, offset) for p in parts])
        return parts

    def test_acks_levels_then_read_from_earliest(self):
        topic = self.unique_topic()
        written = []
        for acks in ("0", "1", "all"):
            recs = self.records(acks.encode(), 300)
            reports = produce_all(self.producer(acks=acks), topic, recs)
            self.assertEqual(len(reports), len(recs))
            self.assertEqual([e for e, _ in reports if e is not None], [])
            if acks != "0":  # acks=0 gets no offsets back
                offsets = {(m.partition(), m.offset()) for _, m in reports}
                self.assertEqual(len(offsets), len(recs), "duplicate offsets reported")
                self.assertTrue(all(o >= 0 for _, o in offsets))
            written += recs

        c = self.consumer()
        try:
            self.assign_all(c, topic, ck.OFFSET_BEGINNING)
            got = self.consume_n(c, len(written))
            self.assertEqual(len(got), len(written))
            self.assertEqual(sorted((m.key(), m.value()) for m in got), sorted(written))
            # Within a partition, offsets are dense and increasing.
            by_part = {}
            for m in got:
                by_part.setdefault(m.partition(), []).append(m.offset())
            for p, offs in by_part.items():
                self.assertEqual(offs, list(range(offs[0], offs[0] + len(offs))), "partition %d" % p)
            self.assertEqual(self.consume_n(c, 1, timeout=1), [], "nothing more expected")
        finally:
            c.close()

    def test_read_from_latest(self):
        topic = self.unique_topic()
        produce_all(self.producer(acks="all"), topic, self.records(b"old", 100))
        c = self.consumer()
        try:
            parts = self.assign_all(c, topic, ck.OFFSET_END)
            # Let the consumer resolve the end offsets; nothing old may arrive.
            self.assertEqual(self.consume_n(c, 1, timeout=2), [])
            for p in parts:
                low, high = c.get_watermark_offsets(ck.TopicPartition(topic, p), timeout=10)
                self.assertEqual(low, 0)
            new = self.records(b"new", 50)
            produce_all(self.producer(acks="1"), topic, new)
            got = self.consume_n(c, len(new))
            self.assertEqual(sorted((m.key(), m.value()) for m in got), sorted(new))
        finally:
            c.close()

    def test_read_from_timestamp(self):
        topic = self.unique_topic()
        base = int(time.time() * 1000) - 3_600_000
        recs = self.records(b"ts", 40)
        stamps = [base + 1000 * i for i in range(len(recs))]
        produce_all(self.producer(acks="all"), topic, recs, partition=1, timestamps=stamps)
        c = self.consumer()
        try:
            # Between two records' timestamps: the first record at or after it.
            found = c.offsets_for_times([ck.TopicPartition(topic, 1, base + 10_500)], timeout=10)
            self.assertEqual(found[0].error, None)
            self.assertEqual(found[0].offset, 11)
            # Exactly a record's timestamp, before everything, after everything.
            found = c.offsets_for_times([ck.TopicPartition(topic, 1, base + 20_000),
                                         ck.TopicPartition(topic, 0, base)], timeout=10)
            self.assertEqual(found[0].offset, 20)
            self.assertEqual(found[1].offset, -1, "partition 0 is empty")
            found = c.offsets_for_times([ck.TopicPartition(topic, 1, base - 1)], timeout=10)
            self.assertEqual(found[0].offset, 0)
            found = c.offsets_for_times([ck.TopicPartition(topic, 1, base + 10**9)], timeout=10)
            self.assertEqual(found[0].offset, -1)

            c.assign([ck.TopicPartition(topic, 1, 11)])
            got = self.consume_n(c, len(recs) - 11)
            self.assertEqual([m.offset() for m in got], list(range(11, len(recs))))
            self.assertEqual([m.timestamp() for m in got],
                             [(ck.TIMESTAMP_CREATE_TIME, s) for s in stamps[11:]])
            self.assertEqual([(m.key(), m.value()) for m in got], recs[11:])
        finally:
            c.close()

    def test_idempotent_producer_writes_no_duplicates(self):
        topic = self.unique_topic()
        n = 3000
        recs = self.records(b"idem", n)
        p = self.producer(**{"enable.idempotence": True, "acks": "all",
                             "max.in.flight.requests.per.connection": 5, "linger.ms": 2,
                             "batch.num.messages": 50})
        reports = produce_all(p, topic, recs)
        self.assertEqual([e for e, _ in reports if e is not None], [])
        self.assertEqual(len({(m.partition(), m.offset()) for _, m in reports}), n)

        c = self.consumer()
        try:
            self.assign_all(c, topic, ck.OFFSET_BEGINNING)
            got = self.consume_n(c, n)
            self.assertEqual(self.consume_n(c, 1, timeout=1), [], "more records than produced")
            keys = [m.key() for m in got]
            self.assertEqual(len(keys), n)
            self.assertEqual(len(set(keys)), n, "duplicates")
            self.assertEqual(sorted((m.key(), m.value()) for m in got), sorted(recs))
            # The producer's per-partition order is kept.
            by_part = {}
            for m in got:
                by_part.setdefault(m.partition(), []).append(int(m.key().split(b"-k")[1]))
            for p_, idx in by_part.items():
                self.assertEqual(idx, sorted(idx), "partition %d out of order" % p_)
        finally:
            c.close()

    def test_headers_and_null_values(self):
        topic = self.unique_topic()
        p = self.producer()
        p.produce(topic, key=b"k1", value=None, partition=0, headers=[("a", b"1"), ("b", None)])
        p.produce(topic, key=None, value=b"", partition=0, headers={"utf8": "h\u00e9".encode()})
        self.assertEqual(p.flush(WAIT_S), 0)
        c = self.consumer()
        try:
            c.assign([ck.TopicPartition(topic, 0, ck.OFFSET_BEGINNING)])
            got = self.consume_n(c, 2)
            self.assertEqual([(m.key(), m.value()) for m in got], [(b"k1", None), (None, b"")])
            self.assertEqual(got[0].headers(), [("a", b"1"), ("b", None)])
            self.assertEqual(got[1].headers(), [("utf8", "h\u00e9".encode())])
        finally:
            c.close()


if __name__ == "__main__":
    unittest.main()
