"""Transactions with confluent-kafka (Debian's, on librdkafka): committed records visible to a
read_committed consumer and aborted ones never, both to read_uncommitted; offsets sent in a
transaction committed only when it commits; an open transaction holding back what
read_committed sees; zombie fencing; transactions aborted by timeout and by a new incarnation
after the broker was killed; bad transactional requests refused; compaction removing aborted
records and, once their data is gone, the markers (with their aborted-index entries)."""

import glob
import os
import re
import socket
import struct
import subprocess
import time
import unittest

from broker import BrokerTestCase, sluice_binary

try:
    import confluent_kafka as ck
except ImportError:  # pragma: no cover - reported as a skip
    ck = None

WAIT_S = 30
if ck is None:
    print("E2E-SKIP: python3-confluent-kafka is not installed")


def values(msgs):
    return [m.value().decode() for m in msgs]


@unittest.skipIf(ck is None, "python3-confluent-kafka is not installed")
class TransactionsTest(BrokerTestCase):
    broker_config = {
        "num_partitions": 1,
        "transaction.abort.timed.out.transaction.cleanup.interval.ms": 500,
        "group.initial.rebalance.delay.ms": 0,
        "log.retention.check.interval.ms": 500,  # retention and compaction passes
        # Markers past the producer snapshot stay; a fresh snapshot lets compaction remove them.
        "sluice.producer.snapshot.interval.ms": 200,
    }

    def producer(self, txn_id, **extra):
        conf = {"bootstrap.servers": self.broker.bootstrap, "transactional.id": txn_id,
                "linger.ms": 5, "message.timeout.ms": WAIT_S * 1000}
        conf.update(extra)
        p = ck.Producer(conf)
        p.init_transactions(WAIT_S)
        return p

    def read(self, topic, isolation, expect=None, partition=0, wait_s=10):
        """Everything readable from the start of `topic`-`partition`, or once `expect` records
        arrived."""
        c = ck.Consumer({"bootstrap.servers": self.broker.bootstrap, "group.id": "e2e-reader",
                         "enable.auto.commit": False, "isolation.level": isolation})
        try:
            c.assign([ck.TopicPartition(topic, partition, ck.OFFSET_BEGINNING)])
            out = []
            deadline = time.time() + wait_s
            while time.time() < deadline and (expect is None or len(out) < expect):
                for m in c.consume(num_messages=500, timeout=0.5):
                    if m.error() is None:
                        out.append(m)
            return out
        finally:
            c.close()

    def send(self, producer, topic, prefix, n):
        for i in range(n):
            producer.produce(topic, value=("%s-%d" % (prefix, i)).encode())
        producer.flush(WAIT_S)

    def test_committed_visible_aborted_never(self):
        topic = self.unique_topic()
        p = self.producer("vis-" + topic)
        p.begin_transaction()
        self.send(p, topic, "c1", 10)
        p.commit_transaction(WAIT_S)
        p.begin_transaction()
        self.send(p, topic, "ab", 10)
        p.abort_transaction(WAIT_S)
        p.begin_transaction()
        self.send(p, topic, "c2", 5)
        p.commit_transaction(WAIT_S)
        committed = values(self.read(topic, "read_committed", expect=15))
        self.assertEqual(committed, ["c1-%d" % i for i in range(10)] +
                         ["c2-%d" % i for i in range(5)])
        # Give read_committed a moment more: nothing aborted may trickle in.
        self.assertEqual(len(self.read(topic, "read_committed", wait_s=2)), 15)
        everything = values(self.read(topic, "read_uncommitted", expect=25))
        self.assertEqual(sorted(everything), sorted(["c1-%d" % i for i in range(10)] +
                                                    ["ab-%d" % i for i in range(10)] +
                                                    ["c2-%d" % i for i in range(5)]))
        self.assertBrokerAlive()

    def test_open_transaction_holds_back_read_committed(self):
        topic = self.unique_topic()
        plain = ck.Producer({"bootstrap.servers": self.broker.bootstrap})
        plain.produce(topic, value=b"before")
        plain.flush(WAIT_S)
        p = self.producer("open-" + topic)
        p.begin_transaction()
        self.send(p, topic, "open", 3)
        plain.produce(topic, value=b"after")  # written behind the open transaction
        plain.flush(WAIT_S)
        self.assertEqual(values(self.read(topic, "read_committed", wait_s=3)), ["before"])
        self.assertEqual(len(self.read(topic, "read_uncommitted", expect=5)), 5)
        c = ck.Consumer({"bootstrap.servers": self.broker.bootstrap, "group.id": "e2e-lso",
                         "isolation.level": "read_committed"})
        # ListOffsets(latest) under read_committed answers the last stable offset: where the
        # open transaction begins.
        low, high = c.get_watermark_offsets(ck.TopicPartition(topic, 0), timeout=10)
        c.close()
        self.assertEqual((low, high), (0, 1))
        p.commit_transaction(WAIT_S)
        got = values(self.read(topic, "read_committed", expect=5))
        self.assertEqual(got, ["before", "open-0", "open-1", "open-2", "after"])

    def test_offsets_commit_only_with_the_transaction(self):
        src = self.unique_topic("src")
        dst = self.unique_topic("dst")
        group = "g-" + src
        plain = ck.Producer({"bootstrap.servers": self.broker.bootstrap})
        for i in range(10):
            plain.produce(src, value=b"%d" % i)
        plain.flush(WAIT_S)
        consumer = ck.Consumer({"bootstrap.servers": self.broker.bootstrap, "group.id": group,
                                "enable.auto.commit": False, "auto.offset.reset": "earliest",
                                "isolation.level": "read_committed"})
        consumer.subscribe([src])
        msgs = []
        deadline = time.time() + WAIT_S
        while len(msgs) < 10 and time.time() < deadline:
            msgs += [m for m in consumer.consume(10, timeout=0.5) if m.error() is None]
        self.assertEqual(len(msgs), 10)
        p = self.producer("eos-" + src)
        tp = ck.TopicPartition(src, 0)

        def committed():
            return consumer.committed([tp], timeout=10)[0].offset

        p.begin_transaction()
        p.produce(dst, value=b"x")
        p.send_offsets_to_transaction([ck.TopicPartition(src, 0, 4)],
                                      consumer.consumer_group_metadata(), WAIT_S)
        p.abort_transaction(WAIT_S)
        self.assertLess(committed(), 0, "an aborted transaction's offsets must not commit")
        p.begin_transaction()
        p.produce(dst, value=b"y")
        p.send_offsets_to_transaction([ck.TopicPartition(src, 0, 7)],
                                      consumer.consumer_group_metadata(), WAIT_S)
        p.commit_transaction(WAIT_S)
        self.assertEqual(committed(), 7)
        consumer.close()
        self.assertEqual(values(self.read(dst, "read_committed", expect=1)), ["y"])

    def test_zombie_is_fenced(self):
        topic = self.unique_topic()
        txn_id = "zombie-" + topic
        old = self.producer(txn_id)
        old.begin_transaction()
        self.send(old, topic, "zombie", 3)
        new = self.producer(txn_id)  # aborts the zombie's transaction, fences its epoch
        with self.assertRaises(ck.KafkaException) as ctx:
            old.commit_transaction(WAIT_S)
        err = ctx.exception.args[0]
        self.assertTrue(err.fatal() or "fenced" in err.str().lower(), err.str())
        new.begin_transaction()
        self.send(new, topic, "new", 2)
        new.commit_transaction(WAIT_S)
        self.assertEqual(values(self.read(topic, "read_committed", expect=2)), ["new-0", "new-1"])
        self.assertEqual(len(self.read(topic, "read_committed", wait_s=2)), 2)

    def test_timeout_aborts_an_abandoned_transaction(self):
        topic = self.unique_topic()
        p = self.producer("abandon-" + topic, **{"transaction.timeout.ms": 2000,
                                                   "message.timeout.ms": 2000})
        p.begin_transaction()
        self.send(p, topic, "lost", 4)
        # Abandoned: the coordinator aborts it after its timeout and fences the producer.
        plain = ck.Producer({"bootstrap.servers": self.broker.bootstrap})
        plain.produce(topic, value=b"later")
        plain.flush(WAIT_S)
        got = values(self.read(topic, "read_committed", expect=1, wait_s=15))
        self.assertEqual(got, ["later"])
        with self.assertRaises(ck.KafkaException):
            p.commit_transaction(10)

    def test_compaction_removes_aborted_records(self):
        from confluent_kafka import admin as ck_admin
        topic = self.unique_topic()
        a = ck_admin.AdminClient({"bootstrap.servers": self.broker.bootstrap})
        a.create_topics([ck_admin.NewTopic(topic, num_partitions=1, replication_factor=1, config={
            "cleanup.policy": "compact", "segment.bytes": "2048"})])[topic].result(WAIT_S)
        p = self.producer("compact-" + topic)
        pad = "." * 300
        p.begin_transaction()
        p.produce(topic, key=b"k", value=("committed" + pad).encode())
        p.commit_transaction(WAIT_S)
        p.begin_transaction()
        p.produce(topic, key=b"k", value=("aborted" + pad).encode())
        p.produce(topic, key=b"only-aborted", value=("aborted" + pad).encode())
        p.abort_transaction(WAIT_S)
        plain = ck.Producer({"bootstrap.servers": self.broker.bootstrap, "linger.ms": 0})
        for i in range(30):  # closes the segments holding the transactions
            plain.produce(topic, key=b"fill-%d" % i, value=pad.encode())
            plain.flush(WAIT_S)

        def uncommitted():
            return [(m.key(), m.value().decode()[:9]) for m in
                    self.read(topic, "read_uncommitted", wait_s=2)]
        deadline = time.time() + 30
        seen = uncommitted()
        while any(v.startswith("aborted") for _, v in seen) and time.time() < deadline:
            time.sleep(0.5)
            seen = uncommitted()
        self.assertFalse([kv for kv in seen if kv[1].startswith("aborted")],
                         "compaction left aborted records")
        # The aborted value of k did not hide the committed one.
        self.assertIn((b"k", "committed"), seen)
        committed = [(m.key(), m.value().decode()[:9]) for m in
                     self.read(topic, "read_committed", wait_s=2)]
        self.assertIn((b"k", "committed"), committed)
        self.assertBrokerAlive()

    def control_batches(self, topic):
        """(offset, COMMIT|ABORT) of every marker in the partition's segment files."""
        out = []
        part = os.path.join(self.broker.data_dir, "data", topic + "-0")
        for seg in sorted(glob.glob(os.path.join(part, "*.log"))):
            r = subprocess.run([sluice_binary(), "dump-log", "--records", seg],
                               capture_output=True, text=True, timeout=60)
            out += [(int(o), t) for o, t in
                    re.findall(r"^\s*\| offset: (\d+) .*control: (\w+)", r.stdout, re.M)]
        return out

    def test_compaction_removes_markers_once_their_data_is_gone(self):
        from confluent_kafka import admin as ck_admin
        topic = self.unique_topic()
        a = ck_admin.AdminClient({"bootstrap.servers": self.broker.bootstrap})
        a.create_topics([ck_admin.NewTopic(topic, num_partitions=1, replication_factor=1, config={
            "cleanup.policy": "compact", "segment.bytes": "2048",
            "delete.retention.ms": "0"})])[topic].result(WAIT_S)
        p = self.producer("markers-" + topic)
        pad = "." * 300
        p.begin_transaction()  # aborted: its records go in the first pass, its ABORT later
        p.produce(topic, key=b"k", value=("aborted" + pad).encode())
        p.flush(WAIT_S)
        p.abort_transaction(WAIT_S)
        p.begin_transaction()  # committed, then overwritten: the same, with its COMMIT
        p.produce(topic, key=b"k", value=("first" + pad).encode())
        p.commit_transaction(WAIT_S)
        plain = ck.Producer({"bootstrap.servers": self.broker.bootstrap, "linger.ms": 0})
        plain.produce(topic, key=b"k", value=("plain" + pad).encode())
        plain.flush(WAIT_S)
        p.begin_transaction()  # the same producer again: live data, its COMMIT stays
        p.produce(topic, key=b"k2", value=("after" + pad).encode())
        p.commit_transaction(WAIT_S)
        self.assertEqual([t for _, t in self.control_batches(topic)], ["ABORT", "COMMIT", "COMMIT"])
        last_commit = self.control_batches(topic)[-1]
        for i in range(8):  # closes the segments holding the transactions
            plain.produce(topic, key=b"fill-%d" % i, value=pad.encode())
            plain.flush(WAIT_S)
        # Nothing more is written: the pass that removes the records runs again by itself, and
        # that second pass removes the markers.
        deadline = time.time() + 60
        markers = self.control_batches(topic)
        while markers != [last_commit] and time.time() < deadline:
            time.sleep(0.5)
            markers = self.control_batches(topic)
        self.assertEqual(markers, [last_commit], "markers left by compaction")
        # The ABORT's index entry went with it: librdkafka would otherwise drop the same
        # producer's later committed records as aborted.
        committed = {m.key(): m.value().decode().rstrip(".") for m in
                     self.read(topic, "read_committed", wait_s=3)}
        self.assertEqual(committed.get(b"k"), "plain")
        self.assertEqual(committed.get(b"k2"), "after")
        self.assertNotIn("aborted", committed.values())
        self.assertEqual(committed, {m.key(): m.value().decode().rstrip(".") for m in
                                     self.read(topic, "read_uncommitted", wait_s=3)})
        self.assertBrokerAlive()

    def test_control_batch_in_produce_is_refused(self):
        topic = self.unique_topic()
        plain = ck.Producer({"bootstrap.servers": self.broker.bootstrap})
        plain.produce(topic, value=b"one")
        plain.flush(WAIT_S)
        records = control_batch(4242, 0)
        name = topic.encode()
        body = struct.pack(">hhi", -1, 1, 10000) + struct.pack(">i", 1) + \
            struct.pack(">h", len(name)) + name + struct.pack(">ii", 1, 0) + \
            struct.pack(">i", len(records)) + records
        client = b"e2e"
        frame = struct.pack(">hhih", 0, 3, 9, len(client)) + client + body
        with socket.create_connection(("127.0.0.1", self.broker.port), timeout=10) as s:
            s.sendall(struct.pack(">i", len(frame)) + frame)
            size = struct.unpack(">i", s.recv(4, socket.MSG_WAITALL))[0]
            resp = s.recv(size, socket.MSG_WAITALL)
        at = 4 + 4  # correlation id, topic count
        n = struct.unpack(">h", resp[at:at + 2])[0]
        at += 2 + n + 4  # name, partition count
        index, error = struct.unpack(">ih", resp[at:at + 6])
        self.assertEqual((index, error), (0, 87))  # INVALID_RECORD
        # Nothing was written: the log still ends after the one plain record.
        c = ck.Consumer({"bootstrap.servers": self.broker.bootstrap, "group.id": "e2e-end"})
        self.assertEqual(c.get_watermark_offsets(ck.TopicPartition(topic, 0), timeout=10), (0, 1))
        c.close()
        self.assertBrokerAlive()

    def sluice(self, *argv):
        out = subprocess.run([self.broker.binary, *argv, "--bootstrap-server",
                              self.broker.bootstrap], capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout

    def test_cli_lists_describes_and_aborts_a_hanging_transaction(self):
        topic = self.unique_topic()
        txn_id = "cli-" + topic
        p = self.producer(txn_id)
        p.begin_transaction()
        self.send(p, topic, "stuck", 3)
        plain = ck.Producer({"bootstrap.servers": self.broker.bootstrap})
        plain.produce(topic, value=b"after")
        plain.flush(WAIT_S)
        listed = self.sluice("txn", "list", "--state", "Ongoing")
        self.assertRegex(listed, r"%s\s+0\s+\d+\s+Ongoing" % txn_id)
        described = self.sluice("txn", "describe", txn_id)
        self.assertIn("State: Ongoing", described)
        self.assertIn("Partition: %s-0" % topic, described)
        hanging = self.sluice("txn", "find-hanging", "--topic", topic, "--min-age-ms", "0")
        self.assertRegex(hanging, r"%s\s+0\s+\d+\s+\d+\s+0\s" % topic)
        self.assertIn("1 hanging transaction(s)", hanging)
        # The operator aborts it on the partition: read_committed moves past it at once.
        aborted = self.sluice("txn", "abort", "--topic", topic, "--partition", "0",
                              "--start-offset", "0")
        self.assertIn("Aborted the transaction", aborted)
        self.assertEqual(values(self.read(topic, "read_committed", expect=1)), ["after"])
        self.assertIn("0 hanging transaction(s)",
                      self.sluice("txn", "find-hanging", "--topic", topic, "--min-age-ms", "0"))

    def test_transactional_requests_from_strangers_are_refused(self):
        # EndTxn v0 for an id that never called InitProducerId: INVALID_PRODUCER_ID_MAPPING (49).
        txn_id = ("nobody-" + self.unique_topic()).encode()
        body = struct.pack(">h", len(txn_id)) + txn_id + struct.pack(">qh?", 12345, 0, True)
        client = b"e2e"
        header = struct.pack(">hhih", 26, 0, 7, len(client)) + client
        frame = header + body
        with socket.create_connection(("127.0.0.1", self.broker.port), timeout=10) as s:
            s.sendall(struct.pack(">i", len(frame)) + frame)
            size = struct.unpack(">i", s.recv(4, socket.MSG_WAITALL))[0]
            resp = s.recv(size, socket.MSG_WAITALL)
        correlation, _throttle, error = struct.unpack(">iih", resp[:10])
        self.assertEqual(correlation, 7)
        self.assertEqual(error, 49)
        self.assertBrokerAlive()


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def varint(n):
    n = (n << 1) ^ (n >> 63)  # zigzag
    out = b""
    while True:
        if n < 0x80:
            return out + bytes([n])
        out += bytes([(n & 0x7F) | 0x80])
        n >>= 7


def control_batch(producer_id, epoch):
    """A COMMIT marker as a client would have to forge it: a v2 batch with the control bit."""
    key = struct.pack(">hh", 0, 1)
    value = struct.pack(">hi", 0, 0)
    body = b"\x00" + varint(0) + varint(0) + varint(len(key)) + key + varint(len(value)) + \
        value + varint(0)
    record = varint(len(body)) + body
    after_crc = struct.pack(">hiqqqhii", 0x30, 0, 0, 0, producer_id, epoch, -1, 1) + record
    head = struct.pack(">ib", 0, 2)  # partition leader epoch, magic
    crc = struct.pack(">I", crc32c(after_crc))
    batch_len = len(head) + len(crc) + len(after_crc)
    return struct.pack(">qi", 0, batch_len) + head + crc + after_crc


@unittest.skipIf(ck is None, "python3-confluent-kafka is not installed")
class TransactionsRestartTest(BrokerTestCase):
    broker_config = {"num_partitions": 1}

    def test_broker_killed_mid_transaction(self):
        topic = self.unique_topic()
        txn_id = "crash-" + topic
        conf = {"bootstrap.servers": self.broker.bootstrap, "transactional.id": txn_id,
                "linger.ms": 0, "message.timeout.ms": WAIT_S * 1000}
        p = ck.Producer(conf)
        p.init_transactions(WAIT_S)
        p.begin_transaction()
        p.produce(topic, value=b"committed")
        p.commit_transaction(WAIT_S)
        p.begin_transaction()
        for i in range(5):
            p.produce(topic, value=b"open-%d" % i)
        p.flush(WAIT_S)
        self.broker.kill()
        self.broker.start()
        # A new incarnation of the producer: the coordinator reloaded the open transaction
        # from __transaction_state and aborts it before handing out a new epoch.
        conf["bootstrap.servers"] = self.broker.bootstrap
        p2 = ck.Producer(conf)
        p2.init_transactions(WAIT_S)
        p2.begin_transaction()
        p2.produce(topic, value=b"after")
        p2.commit_transaction(WAIT_S)
        c = ck.Consumer({"bootstrap.servers": self.broker.bootstrap, "group.id": "r",
                         "isolation.level": "read_committed"})
        c.assign([ck.TopicPartition(topic, 0, ck.OFFSET_BEGINNING)])
        got = []
        deadline = time.time() + 15
        while time.time() < deadline and len(got) < 2:
            got += [m.value() for m in c.consume(100, timeout=0.5) if m.error() is None]
        time.sleep(1)
        got += [m.value() for m in c.consume(100, timeout=0.5) if m.error() is None]
        c.close()
        self.assertEqual(got, [b"committed", b"after"])
        # And the aborted records are gone for good after a clean restart too (the aborted
        # index and producer snapshot are reloaded).
        self.broker.restart()
        c = ck.Consumer({"bootstrap.servers": self.broker.bootstrap, "group.id": "r2",
                         "isolation.level": "read_committed"})
        c.assign([ck.TopicPartition(topic, 0, ck.OFFSET_BEGINNING)])
        again = []
        deadline = time.time() + 15
        while time.time() < deadline and len(again) < 2:
            again += [m.value() for m in c.consume(100, timeout=0.5) if m.error() is None]
        c.close()
        self.assertEqual(again, [b"committed", b"after"])


if __name__ == "__main__":
    unittest.main()
