"""Clients that speak Kafka 0.9 and 0.10: kafka-python pinned to api_version (0, 9) and (0, 10)
sends Produce v1/v2 with magic 0/1 message sets (compressed in wrapper messages), Fetch v1/v2
and ListOffsets v0, and expects magic 0/1 messages back. The broker stores v2 batches only
(up-conversion on write) and rewrites them for these fetchers (down-conversion on read)."""

import logging
import socket
import struct
import time
import unittest
import zlib

from broker import BrokerTestCase, read_response, request_frame
from kp_helpers import KafkaPythonHelpers

try:
    import kafka
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka import codec as kafka_codec
except ImportError:  # pragma: no cover - reported as a skip
    kafka = None

WAIT_S = 30
OLD_VERSIONS = ((0, 9), (0, 10))
CODEC_IDS = {None: 0, "gzip": 1, "snappy": 2, "lz4": 3}
if kafka is None:
    print("E2E-SKIP: python3-kafka is not installed")
logging.getLogger("kafka").setLevel(logging.CRITICAL)


def available_codecs():
    have = {None: True, "gzip": kafka_codec.has_gzip(), "snappy": kafka_codec.has_snappy(),
            "lz4": kafka_codec.has_lz4()}
    return [c for c, ok in have.items() if ok]


@unittest.skipIf(kafka is None, "python3-kafka is not installed")
class OldClientsTest(KafkaPythonHelpers, BrokerTestCase):
    def producer(self, api_version=None, **extra):
        conf = dict(bootstrap_servers=self.broker.bootstrap, linger_ms=5, acks="all",
                    request_timeout_ms=WAIT_S * 1000, max_block_ms=WAIT_S * 1000)
        if api_version:
            conf["api_version"] = api_version
        conf.update(extra)
        return KafkaProducer(**conf)

    def consumer(self, api_version=None, **extra):
        conf = dict(bootstrap_servers=self.broker.bootstrap, group_id=None,
                    enable_auto_commit=False, fetch_max_wait_ms=100,
                    request_timeout_ms=WAIT_S * 1000 + 1000)
        if api_version:
            conf["api_version"] = api_version
        conf.update(extra)
        return KafkaConsumer(**conf)

    def records(self, tag, n):
        return [(b"%s-k%d" % (tag, i) if i % 7 else None, b"%s-v%d-" % (tag, i) + b"z" * (i % 50))
                for i in range(n)]

    def send_all(self, producer, topic, records, timestamps=None):
        futures = [producer.send(topic, key=k, value=v,
                                 timestamp_ms=timestamps[i] if timestamps else None)
                   for i, (k, v) in enumerate(records)]
        producer.flush(WAIT_S)
        return [f.get(timeout=WAIT_S) for f in futures]

    def read_all(self, topic, n, api_version=None):
        c = self.consumer(api_version)
        try:
            tps = self.partitions(c, topic)
            c.assign(tps)
            c.seek_to_beginning(*tps)
            got = self.poll_n(c, n)
            self.assertEqual(self.poll_n(c, 1, timeout=0.5), [], "more records than produced")
            return got
        finally:
            c.close()

    def stored_codecs(self, topic):
        out = set()
        for part in range(3):
            out |= set(self.broker.stored_batch_codecs(topic, part))
        return out

    def test_old_producer_and_consumer_round_trip_with_every_codec(self):
        for version in OLD_VERSIONS:
            for codec in available_codecs():
                with self.subTest(api_version=version, codec=codec):
                    topic = self.unique_topic("old-%d%d-%s" % (version + (codec or "none",)))
                    recs = self.records(b"%d" % version[1], 250)
                    p = self.producer(version, compression_type=codec)
                    metas = self.send_all(p, topic, recs)
                    p.close(WAIT_S)
                    self.assertEqual(len({(m.partition, m.offset) for m in metas}), len(recs))
                    # Stored as v2 batches (stored_batch_codecs checks magic 2), keeping the codec.
                    self.assertEqual(self.stored_codecs(topic), {CODEC_IDS[codec]})
                    # The old client reads its own records back, at the offsets it was told.
                    got = self.read_all(topic, len(recs), version)
                    self.assertEqual(sorted((m.key or b"", m.value) for m in got),
                                     sorted((k or b"", v) for k, v in recs))
                    acked = {(m.partition, m.offset) for m in metas}
                    self.assertEqual({(m.partition, m.offset) for m in got}, acked)
                    # A current client reads the up-converted batches.
                    new = self.read_all(topic, len(recs))
                    self.assertEqual(sorted((m.key or b"", m.value) for m in new),
                                     sorted((k or b"", v) for k, v in recs))

    def test_timestamps_survive_magic1_and_magic0_gets_the_arrival_time(self):
        base = int(time.time() * 1000) - 3_600_000
        topic = self.unique_topic("old-ts")
        recs = self.records(b"ts", 20)
        stamps = [base + 10 * i for i in range(len(recs))]
        p = self.producer((0, 10))
        self.send_all(p, topic, recs, timestamps=stamps)
        p.close(WAIT_S)
        by_value = {v: ts for (k, v), ts in zip(recs, stamps)}
        for m in self.read_all(topic, len(recs)):
            self.assertEqual(m.timestamp, by_value[m.value])
        for m in self.read_all(topic, len(recs), (0, 10)):
            self.assertEqual(m.timestamp, by_value[m.value])

        topic0 = self.unique_topic("old-ts0")
        before = int(time.time() * 1000)
        p = self.producer((0, 9))
        self.send_all(p, topic0, recs)
        p.close(WAIT_S)
        after = int(time.time() * 1000)
        for m in self.read_all(topic0, len(recs)):
            self.assertGreaterEqual(m.timestamp, before - 1000)
            self.assertLessEqual(m.timestamp, after + 1000)

    def test_old_consumers_read_what_a_current_producer_wrote(self):
        topic = self.unique_topic("new-to-old")
        recs = self.records(b"n", 300)
        p = self.producer(compression_type="gzip")
        p.send(topic, key=b"h", value=b"with-headers", headers=[("x", b"1")]).get(WAIT_S)
        self.send_all(p, topic, recs)
        p.close(WAIT_S)
        want = sorted([(b"h", b"with-headers")] + [(k or b"", v) for k, v in recs])
        for version in OLD_VERSIONS:
            with self.subTest(api_version=version):
                got = self.read_all(topic, len(want), version)
                self.assertEqual(sorted((m.key or b"", m.value) for m in got), want)
                # Offsets within each partition are the log's, in order, with no gaps.
                per_part = {}
                for m in got:
                    per_part.setdefault(m.partition, []).append(m.offset)
                for offsets in per_part.values():
                    self.assertEqual(offsets, list(range(len(offsets))))

    def test_old_consumer_seeks_into_the_middle_of_a_compressed_batch(self):
        topic = self.unique_topic("old-seek")
        recs = self.records(b"s", 100)
        p = self.producer(compression_type="gzip", linger_ms=200)
        futures = [p.send(topic, key=k, value=v, partition=1) for k, v in recs]
        p.flush(WAIT_S)
        [f.get(WAIT_S) for f in futures]
        p.close(WAIT_S)
        for version in OLD_VERSIONS:
            with self.subTest(api_version=version):
                c = self.consumer(version)
                try:
                    tp = TopicPartition(topic, 1)
                    self.partitions(c, topic)
                    c.assign([tp])
                    c.seek(tp, 37)
                    got = self.poll_n(c, len(recs) - 37)
                    self.assertEqual([m.offset for m in got], list(range(37, len(recs))))
                    self.assertEqual([m.value for m in got], [v for _, v in recs[37:]])
                    self.assertEqual(c.end_offsets([tp])[tp], len(recs))
                finally:
                    c.close()

    def test_old_group_consumer_commits_and_a_successor_resumes(self):
        topic = self.unique_topic("old-group")
        recs = self.records(b"g", 120)
        p = self.producer((0, 9))
        self.send_all(p, topic, recs)
        p.close(WAIT_S)
        group = "old-group-%d" % time.monotonic_ns()
        first = self.consumer((0, 9), group_id=group, auto_offset_reset="earliest")
        try:
            first.subscribe([topic])
            got = self.poll_n(first, 50)
            self.assertGreaterEqual(len(got), 50)
            first.commit()
            seen = {(m.partition, m.offset) for m in got}
        finally:
            first.close()
        second = self.consumer((0, 9), group_id=group, auto_offset_reset="earliest")
        try:
            second.subscribe([topic])
            rest = self.poll_n(second, len(recs) - len(seen))
            rest_keys = {(m.partition, m.offset) for m in rest}
            self.assertFalse(rest_keys & seen, "committed records were read again")
            self.assertEqual(len(seen | rest_keys), len(recs))
        finally:
            second.close()

    def test_produce_v3_with_a_legacy_message_set_is_refused(self):
        # The up-conversion is for the versions that carry message sets; a v3+ request must
        # hold v2 batches. A raw request proves the broker says so and keeps serving.
        topic = self.unique_topic("v3-legacy")
        p = self.producer()
        p.send(topic, value=b"x", partition=0).get(WAIT_S)
        p.close(WAIT_S)
        msg = struct.pack(">bbii", 0, 0, -1, 1) + b"v"  # magic 0, no key, value "v"
        body_msg = struct.pack(">I", zlib.crc32(msg)) + msg
        mset = struct.pack(">qi", 0, len(body_msg)) + body_msg
        name = topic.encode()
        body = (struct.pack(">hhi", -1, 1, 5000) + struct.pack(">i", 1) +
                struct.pack(">h", len(name)) + name + struct.pack(">i", 1) +
                struct.pack(">i", 0) + struct.pack(">i", len(mset)) + mset)
        with socket.create_connection((self.broker.host, self.broker.port), timeout=5) as s:
            s.sendall(request_frame(0, 3, 77, body))
            corr, resp = read_response(s)
        self.assertEqual(corr, 77)
        # 1 topic, name, 1 partition, index, error code
        at = 4 + 2 + len(name) + 4 + 4
        (error_code,) = struct.unpack(">h", resp[at:at + 2])
        self.assertNotEqual(error_code, 0)
        self.assertBrokerAlive()


if __name__ == "__main__":
    unittest.main()
