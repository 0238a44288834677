"""confluent-kafka (Python on librdkafka) against Sluice: producers with acks 0, 1 and all;
consumers assigned to partitions (no group coordination) reading from the earliest offset, the
latest offset and a timestamp; and an idempotent producer that must not duplicate anything."""

import os
import time
import unittest

from broker import BrokerTestCase

try:
    import confluent_kafka as ck
    import confluent_kafka.admin  # noqa: F401 - ck.admin below
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

    def poll_one(self, consumer, timeout=WAIT_S):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = consumer.poll(0.5)
            if m is not None:
                return m
        return None

    def test_record_too_large_and_fetch_smaller_than_a_batch(self):
        topic = self.unique_topic()
        errors = []
        p = self.producer(**{"message.max.bytes": 5_000_000})
        big = os.urandom(900_000)
        p.produce(topic, value=os.urandom(2_000_000), partition=0,
                  on_delivery=lambda err, msg: errors.append(err))
        p.produce(topic, value=big, partition=0, on_delivery=lambda err, msg: errors.append(err))
        self.assertEqual(p.flush(WAIT_S), 0)
        # Over message.max.bytes (1048588 by default): refused with MESSAGE_TOO_LARGE.
        self.assertEqual([e and e.code() for e in errors], [ck.KafkaError.MSG_SIZE_TOO_LARGE, None])
        # A fetch size far below the batch still returns the whole first batch (KIP-74).
        c = self.consumer(**{"fetch.message.max.bytes": 1000, "fetch.max.bytes": 1000,
                             "message.max.bytes": 1000, "receive.message.max.bytes": 3_000_000})
        try:
            c.assign([ck.TopicPartition(topic, 0, ck.OFFSET_BEGINNING)])
            m = self.poll_one(c)
            self.assertIsNotNone(m)
            self.assertIsNone(m.error())
            self.assertEqual((m.offset(), m.value()), (0, big))
        finally:
            c.close()

    def test_start_inside_a_compressed_batch(self):
        topic = self.unique_topic()
        p = self.producer(**{"compression.codec": "gzip", "linger.ms": 100})
        produce_all(p, topic, [(None, b"v%d" % i) for i in range(500)], partition=0)
        self.assertIn(1, self.broker.stored_batch_codecs(topic, 0))
        c = self.consumer()
        try:
            c.assign([ck.TopicPartition(topic, 0, 250)])
            got = self.consume_n(c, 250)
            self.assertEqual([(m.offset(), m.value()) for m in got],
                             [(i, b"v%d" % i) for i in range(250, 500)])
        finally:
            c.close()

    def test_offset_out_of_range(self):
        topic = self.unique_topic()
        produce_all(self.producer(), topic, self.records(b"oor", 10), partition=0)
        c = self.consumer(**{"auto.offset.reset": "earliest"})
        try:
            c.assign([ck.TopicPartition(topic, 0, 1_000_000)])
            m = self.poll_one(c)
            self.assertIsNone(m.error())
            self.assertEqual(m.offset(), 0, "reset to the earliest offset")
        finally:
            c.close()
        c = self.consumer(**{"auto.offset.reset": "error"})
        try:
            c.assign([ck.TopicPartition(topic, 0, 1_000_000)])
            m = self.poll_one(c)
            self.assertEqual(m.error().code(), ck.KafkaError._AUTO_OFFSET_RESET)
        finally:
            c.close()

    def test_many_partitions(self):
        topic = self.unique_topic()
        admin = ck.admin.AdminClient({"bootstrap.servers": self.broker.bootstrap})
        admin.create_topics([ck.admin.NewTopic(topic, 64, 1)])[topic].result(WAIT_S)
        del admin
        recs = [(b"%d" % i, b"w%d" % i) for i in range(64 * 50)]
        p = self.producer()
        for i, (k, v) in enumerate(recs):
            p.produce(topic, key=k, value=v, partition=i % 64)
        self.assertEqual(p.flush(WAIT_S), 0)
        c = self.consumer()
        try:
            c.assign([ck.TopicPartition(topic, i, 0) for i in range(64)])
            got = self.consume_n(c, len(recs))
            self.assertEqual(sorted((m.key(), m.value()) for m in got), sorted(recs))
            self.assertTrue(all(m.partition() == int(m.key()) % 64 for m in got))
        finally:
            c.close()


if __name__ == "__main__":
    unittest.main()
