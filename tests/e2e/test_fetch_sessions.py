"""Incremental fetch sessions (KIP-227), spoken on a raw socket with Fetch v7: a full fetch
with epoch 0 opens a session; incremental fetches name only the partitions whose position
moved and get back only the partitions with something new; epochs must follow one another;
forgotten partitions leave the session; epoch -1 closes it. (None of the Debian clients opens
sessions: librdkafka, sarama and kafkajs always send epoch -1, so the protocol is driven by
hand here, the way the Java consumer uses it.)"""

import socket
import struct
import threading
import time
import unittest

from broker import BrokerTestCase, read_response, request_frame

try:
    from kafka import KafkaProducer
except ImportError:  # pragma: no cover - reported as a skip
    KafkaProducer = None

if KafkaProducer is None:
    print("E2E-SKIP: python3-kafka is not installed")

FETCH_SESSION_ID_NOT_FOUND = 70
INVALID_FETCH_SESSION_EPOCH = 71


def string(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def fetch_v7(session_id, epoch, parts, forgotten=(), max_wait_ms=0, min_bytes=0):
    """parts: [(topic, partition, offset)]; forgotten: [(topic, partition)]."""
    by_topic = {}
    for topic, p, offset in parts:
        by_topic.setdefault(topic, []).append((p, offset))
    body = struct.pack(">iiiibii", -1, max_wait_ms, min_bytes, 1 << 20, 0, session_id, epoch)
    body += struct.pack(">i", len(by_topic))
    for topic, ps in by_topic.items():
        body += string(topic) + struct.pack(">i", len(ps))
        for p, offset in ps:
            body += struct.pack(">iqqi", p, offset, -1, 1 << 20)
    gone = {}
    for topic, p in forgotten:
        gone.setdefault(topic, []).append(p)
    body += struct.pack(">i", len(gone))
    for topic, ps in gone.items():
        body += string(topic) + struct.pack(">i", len(ps)) + b"".join(struct.pack(">i", p) for p in ps)
    return body


def count_records(records):
    """Records in a sequence of v2 batches (record count at byte 57 of each)."""
    n, at = 0, 0
    while at + 61 <= len(records):
        (length,) = struct.unpack(">i", records[at + 8:at + 12])
        (count,) = struct.unpack(">i", records[at + 57:at + 61])
        n += count
        at += 12 + length
    return n


def parse_fetch_v7(body):
    """-> (error code, session id, {(topic, partition): (error, high watermark, records)})."""
    throttle, error, session_id, ntopics = struct.unpack(">ihii", body[:14])
    at, out = 14, {}
    for _ in range(ntopics):
        (tlen,) = struct.unpack(">h", body[at:at + 2])
        topic = body[at + 2:at + 2 + tlen].decode()
        at += 2 + tlen
        (nparts,) = struct.unpack(">i", body[at:at + 4])
        at += 4
        for _ in range(nparts):
            p, perr, hw, lso, lstart, naborted = struct.unpack(">ihqqqi", body[at:at + 34])
            at += 34 + max(naborted, 0) * 16
            (rlen,) = struct.unpack(">i", body[at:at + 4])
            at += 4
            records = body[at:at + max(rlen, 0)]
            at += max(rlen, 0)
            out[(topic, p)] = (perr, hw, count_records(records))
    return error, session_id, out


@unittest.skipIf(KafkaProducer is None, "python3-kafka is not installed")
class FetchSessionTest(BrokerTestCase):
    def setUp(self):
        self.topic = self.unique_topic("fs")
        self.producer = KafkaProducer(bootstrap_servers=self.broker.bootstrap, acks="all")
        self.produce(0, 5)
        self.produce(1, 3)
        self.sock = socket.create_connection((self.broker.host, self.broker.port), timeout=10)
        self.corr = 0

    def tearDown(self):
        self.sock.close()
        self.producer.close(10)

    def produce(self, partition, n):
        for i in range(n):
            self.producer.send(self.topic, value=b"v%d" % i, partition=partition)
        self.producer.flush(30)

    def fetch(self, *args, **kw):
        self.corr += 1
        self.sock.sendall(request_frame(1, 7, self.corr, fetch_v7(*args, **kw)))
        corr, body = read_response(self.sock, timeout=15)
        self.assertEqual(corr, self.corr)
        return parse_fetch_v7(body)

    def test_a_session_answers_only_what_changed(self):
        t = self.topic
        err, sid, parts = self.fetch(0, 0, [(t, 0, 0), (t, 1, 0), (t, 2, 0)])
        self.assertEqual(err, 0)
        self.assertNotEqual(sid, 0, "epoch 0 opens a session")
        self.assertEqual(parts, {(t, 0): (0, 5, 5), (t, 1): (0, 3, 3), (t, 2): (0, 0, 0)})

        # The client moves its positions; nothing new anywhere: an empty answer.
        err, sid1, parts = self.fetch(sid, 1, [(t, 0, 5), (t, 1, 3)])
        self.assertEqual((err, sid1, parts), (0, sid, {}))

        # New records in a partition the request does not name: only it comes back.
        self.produce(2, 4)
        err, _, parts = self.fetch(sid, 2, [])
        self.assertEqual(parts, {(t, 2): (0, 4, 4)})

        # A repeated or skipped epoch, and an unknown id, are refused.
        self.assertEqual(self.fetch(sid, 2, [])[0], INVALID_FETCH_SESSION_EPOCH)
        self.assertEqual(self.fetch(sid, 9, [])[0], INVALID_FETCH_SESSION_EPOCH)
        self.assertEqual(self.fetch(sid ^ 0x5A5A, 3, [])[0], FETCH_SESSION_ID_NOT_FOUND)

        # Forget partition 2: its new records no longer show; partition 0's do.
        err, _, parts = self.fetch(sid, 3, [(t, 2, 4)], forgotten=[(t, 2)])
        self.assertEqual((err, parts), (0, {}))
        self.produce(2, 2)
        self.produce(0, 1)
        err, _, parts = self.fetch(sid, 4, [])
        self.assertEqual(parts, {(t, 0): (0, 6, 1)})

        # Epoch -1 closes the session: a full, sessionless answer, and the id is gone.
        err, sid_after, parts = self.fetch(sid, -1, [(t, 0, 0)])
        self.assertEqual((err, sid_after), (0, 0))
        self.assertEqual(parts, {(t, 0): (0, 6, 6)})
        self.assertEqual(self.fetch(sid, 5, [])[0], FETCH_SESSION_ID_NOT_FOUND)
        self.assertBrokerAlive()

    def test_an_incremental_fetch_waits_on_every_partition_of_its_session(self):
        t = self.topic
        err, sid, _ = self.fetch(0, 0, [(t, 0, 5), (t, 1, 3), (t, 2, 0)])
        self.assertNotEqual(sid, 0)
        self.fetch(sid, 1, [])  # the high watermarks have been sent: nothing is new now
        timer = threading.Timer(0.5, self.produce, args=(1, 1))
        timer.start()
        try:
            started = time.monotonic()
            err, _, parts = self.fetch(sid, 2, [], max_wait_ms=10000, min_bytes=1)
            waited = time.monotonic() - started
        finally:
            timer.join()
        self.assertEqual(parts, {(t, 1): (0, 4, 1)})
        self.assertLess(waited, 9, "the fetch was woken by the produce, not by its timeout")


if __name__ == "__main__":
    unittest.main()
