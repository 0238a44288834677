"""kafka-python against Sluice: producers with acks 0, 1 and all (and each compression codec
kafka-python can use here), and group-less consumers assigned to partitions reading from the
earliest offset, the latest offset and a timestamp."""

import logging
import time
import unittest

from broker import BrokerTestCase
from kp_helpers import KafkaPythonHelpers

try:
    import kafka
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka import codec as kafka_codec
except ImportError:  # pragma: no cover - reported as a skip
    kafka = None

WAIT_S = 30
if kafka is None:
    print("E2E-SKIP: python3-kafka is not installed")
CODEC_IDS = {"gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
logging.getLogger("kafka").setLevel(logging.CRITICAL)


@unittest.skipIf(kafka is None, "python3-kafka is not installed")
class KafkaPythonTest(KafkaPythonHelpers, BrokerTestCase):
    def producer(self, **extra):
        conf = dict(bootstrap_servers=self.broker.bootstrap, linger_ms=5,
                    request_timeout_ms=WAIT_S * 1000, max_block_ms=WAIT_S * 1000)
        conf.update(extra)
        return KafkaProducer(**conf)

    def consumer(self, **extra):
        conf = dict(bootstrap_servers=self.broker.bootstrap, group_id=None,
                    enable_auto_commit=False, fetch_max_wait_ms=100,
                    request_timeout_ms=WAIT_S * 1000 + 1000)
        conf.update(extra)
        return KafkaConsumer(**conf)

    def send_all(self, producer, topic, records, partition=None, timestamps=None):
        futures = []
        for i, (k, v) in enumerate(records):
            futures.append(producer.send(topic, key=k, value=v, partition=partition,
                                         timestamp_ms=timestamps[i] if timestamps else None))
        producer.flush(WAIT_S)
        return [f.get(timeout=WAIT_S) for f in futures]

    def records(self, tag, n):
        return [(b"%s-k%d" % (tag, i), b"%s-v%d-" % (tag, i) + b"y" * (i % 40)) for i in range(n)]

    def read_everything(self, topic, expected_count):
        c = self.consumer()
        try:
            tps = self.partitions(c, topic)
            c.assign(tps)
            c.seek_to_beginning(*tps)
            got = self.poll_n(c, expected_count)
            self.assertEqual(self.poll_n(c, 1, timeout=0.5), [], "more records than produced")
            return got
        finally:
            c.close()

    def test_acks_levels_then_read_from_earliest(self):
        topic = self.unique_topic()
        written = []
        for acks in (0, 1, "all"):
            p = self.producer(acks=acks)
            recs = self.records(str(acks).encode(), 300)
            metas = self.send_all(p, topic, recs)
            p.close(WAIT_S)
            if acks != 0:
                self.assertEqual(len({(m.partition, m.offset) for m in metas}), len(recs))
            written += recs
        got = self.read_everything(topic, len(written))
        self.assertEqual(sorted((m.key, m.value) for m in got), sorted(written))

    def test_compression_codecs(self):
        codecs = [c for c, available in (("gzip", kafka_codec.has_gzip()),
                                         ("snappy", kafka_codec.has_snappy()),
                                         ("lz4", kafka_codec.has_lz4()),
                                         ("zstd", kafka_codec.has_zstd())) if available]
        self.assertIn("gzip", codecs)
        for codec in codecs:
            with self.subTest(codec=codec):
                topic = self.unique_topic("kp-" + codec)
                p = self.producer(acks="all", compression_type=codec)
                recs = self.records(codec.encode(), 400)
                self.send_all(p, topic, recs)
                p.close(WAIT_S)
                got = self.read_everything(topic, len(recs))
                self.assertEqual(sorted((m.key, m.value) for m in got), sorted(recs))
                # Batches are stored as the producer compressed them (compression.type=producer).
                stored = set()
                for part in range(3):
                    stored |= set(self.broker.stored_batch_codecs(topic, part))
                self.assertEqual(stored, {CODEC_IDS[codec]})

    def test_read_from_latest(self):
        topic = self.unique_topic()
        p = self.producer(acks=1)
        self.send_all(p, topic, self.records(b"old", 90))
        c = self.consumer()
        try:
            tps = self.partitions(c, topic)
            c.assign(tps)
            c.seek_to_end(*tps)
            ends = {tp: c.position(tp) for tp in tps}  # resolves the end offsets now
            self.assertEqual(sum(ends.values()), 90)
            self.assertEqual(c.end_offsets(tps), ends)
            self.assertEqual(c.beginning_offsets(tps), {tp: 0 for tp in tps})
            new = self.records(b"new", 60)
            self.send_all(p, topic, new)
            got = self.poll_n(c, len(new))
            self.assertEqual(sorted((m.key, m.value) for m in got), sorted(new))
            for m in got:
                self.assertGreaterEqual(m.offset, ends[TopicPartition(topic, m.partition)])
        finally:
            c.close()
            p.close(WAIT_S)

    def test_read_from_timestamp(self):
        topic = self.unique_topic()
        base = int(time.time() * 1000) - 7_200_000
        recs = self.records(b"ts", 30)
        stamps = [base + 500 * i for i in range(len(recs))]
        p = self.producer(acks="all")
        self.send_all(p, topic, recs, partition=2, timestamps=stamps)
        p.close(WAIT_S)
        c = self.consumer()
        try:
            tp = TopicPartition(topic, 2)
            found = c.offsets_for_times({tp: base + 5_250})
            self.assertEqual(found[tp].offset, 11)
            self.assertEqual(found[tp].timestamp, base + 5_500)
            found = c.offsets_for_times({tp: base + 10**9})
            self.assertIsNone(found[tp], "no record at or after a future timestamp")
            c.assign([tp])
            c.seek(tp, 11)
            got = self.poll_n(c, len(recs) - 11)
            self.assertEqual([m.offset for m in got], list(range(11, len(recs))))
            self.assertEqual([m.timestamp for m in got], stamps[11:])
            self.assertEqual([(m.key, m.value) for m in got], recs[11:])
        finally:
            c.close()

    def test_headers(self):
        topic = self.unique_topic()
        p = self.producer(acks="all")
        p.send(topic, key=b"k", value=b"v", partition=0,
               headers=[("one", b"1"), ("empty", b"")]).get(timeout=WAIT_S)
        p.close(WAIT_S)
        got = self.read_everything(topic, 1)
        self.assertEqual(got[0].headers, [("one", b"1"), ("empty", b"")])


if __name__ == "__main__":
    unittest.main()
