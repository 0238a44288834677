"""Consumer groups with real clients (confluent-kafka on librdkafka, kafka-python): partitions
split disjointly over the members and taken over when one is killed; at-least-once processing
across member kills and a broker restart; committed offsets surviving a restart;
auto.offset.reset for a new group; static membership; cooperative-sticky incremental
rebalances; and protocol misuse answered with Kafka's error codes while the group carries on.

Members run in their own processes (group_member.py) so that a test can SIGKILL one."""

import os
import signal
import struct
import socket
import subprocess
import sys
import threading
import time
import unittest

from broker import Broker, BrokerTestCase, read_response, request_frame

try:
    import confluent_kafka as ck
    import confluent_kafka.admin  # noqa: F401
except ImportError:  # pragma: no cover
    ck = None
try:
    import kafka  # noqa: F401
except ImportError:  # pragma: no cover
    kafka = None

if ck is None:
    print("E2E-SKIP: python3-confluent-kafka is not installed")

WAIT_S = 60
HERE = os.path.dirname(os.path.abspath(__file__))
# Fast rebalances for tests: no initial delay, short session timeouts allowed.
GROUP_CONFIG = {"group_initial_rebalance_delay_ms": 0, "group_min_session_timeout_ms": 1000}


class Member:
    """A group_member.py process and what it printed so far."""

    def __init__(self, client, bootstrap, group, topic, **opts):
        args = [sys.executable, os.path.join(HERE, "group_member.py"), client, bootstrap, group,
                topic] + ["%s=%s" % kv for kv in opts.items()]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     stdin=subprocess.DEVNULL)
        self.lines = []
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.proc.stdout:
            with self.lock:
                self.lines.append(raw.decode().rstrip("\n"))

    def snapshot(self):
        with self.lock:
            return list(self.lines)

    def assignments(self):
        """Every ASSIGN event, as a list of partition sets."""
        out = []
        for line in self.snapshot():
            if line.startswith("ASSIGN"):
                rest = line[len("ASSIGN"):].strip()
                out.append(frozenset(int(p) for p in rest.split(",") if p))
        return out

    def assignment(self):
        a = self.assignments()
        return a[-1] if a else frozenset()

    def records(self):
        out = []
        for line in self.snapshot():
            if line.startswith("REC "):
                _, p, o, v = line.split(" ", 3)
                out.append((int(p), int(o), v))
        return out

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.reader.join(10)
        self.proc.stdout.close()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        self.kill()


def wait_until(pred, what, timeout=WAIT_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def create_topic(bootstrap, topic, partitions):
    admin = ck.admin.AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([ck.admin.NewTopic(topic, partitions, 1)])[topic].result(WAIT_S)


def produce(bootstrap, topic, values, partition=None):
    p = ck.Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all"})
    for v in values:
        kw = {"key": v.encode(), "value": v.encode()}
        if partition is not None:
            kw["partition"] = partition
        p.produce(topic, **kw)
        p.poll(0)
    assert p.flush(WAIT_S) == 0


class GroupMembersMixin:
    def members(self, n, client, group, topic, **opts):
        ms = [Member(client, self.broker.bootstrap, group, topic, **opts) for _ in range(n)]
        self.addCleanup(lambda: [m.stop() for m in ms])
        return ms

    def assert_split(self, members, partitions):
        def covered():
            sets = [m.assignment() for m in members]
            union = frozenset().union(*sets)
            return union == frozenset(range(partitions)) and \
                sum(len(s) for s in sets) == partitions and all(sets)
        wait_until(covered, "a disjoint assignment covering %d partitions: %s"
                   % (partitions, [sorted(m.assignment()) for m in members]))


@unittest.skipIf(ck is None, "python3-confluent-kafka is not installed")
class GroupTest(GroupMembersMixin, BrokerTestCase):
    broker_config = GROUP_CONFIG

    def split_and_take_over(self, client):
        topic = self.unique_topic()
        create_topic(self.broker.bootstrap, topic, 6)
        ms = self.members(3, client, "g-" + topic, topic)
        self.assert_split(ms, 6)
        ms[0].kill()
        self.assert_split(ms[1:], 6)
        # The survivors really consume every partition.
        produce(self.broker.bootstrap, topic, ["v%d" % i for i in range(60)])
        wait_until(lambda: len({r[2] for m in ms[1:] for r in m.records()}) == 60,
                   "the survivors to consume all 60 records")
        self.assertBrokerAlive()

    def test_confluent_members_split_partitions_and_take_over_a_killed_one(self):
        self.split_and_take_over("confluent")

    @unittest.skipIf(kafka is None, "python3-kafka is not installed")
    def test_kafka_python_members_split_partitions_and_take_over_a_killed_one(self):
        self.split_and_take_over("kafka-python")

    def test_auto_offset_reset_earliest_and_latest_for_a_new_group(self):
        topic = self.unique_topic()
        create_topic(self.broker.bootstrap, topic, 1)
        produce(self.broker.bootstrap, topic, ["old%d" % i for i in range(5)])
        early = self.members(1, "confluent", "early-" + topic, topic, reset="earliest")[0]
        late = self.members(1, "confluent", "late-" + topic, topic, reset="latest")[0]
        wait_until(lambda: len(early.records()) == 5, "earliest to read the 5 old records")
        wait_until(lambda: late.assignment() == frozenset([0]), "latest to be assigned")
        time.sleep(1)
        produce(self.broker.bootstrap, topic, ["new"])
        wait_until(lambda: [r[2] for r in late.records()] == ["new"], "latest to read only new")
        wait_until(lambda: len(early.records()) == 6, "earliest to read the new record too")

    def test_static_member_restart_within_session_timeout_does_not_rebalance_others(self):
        topic = self.unique_topic()
        create_topic(self.broker.bootstrap, topic, 4)
        group = "static-" + topic
        a = self.members(1, "confluent", group, topic, instance="a", session_ms=15000)[0]
        b = self.members(1, "confluent", group, topic, instance="b", session_ms=15000)[0]
        self.assert_split([a, b], 4)
        events_a = len(a.assignments())
        b_parts = b.assignment()
        b.kill()
        b2 = self.members(1, "confluent", group, topic, instance="b", session_ms=15000)[0]
        wait_until(lambda: b2.assignment() == b_parts, "the restarted member to get %s back"
                   % sorted(b_parts))
        time.sleep(2)
        self.assertEqual(len(a.assignments()), events_a, "the other member was rebalanced")
        produce(self.broker.bootstrap, topic, ["s%d" % i for i in range(20)])
        wait_until(lambda: len(a.records()) + len(b2.records()) == 20, "both to consume")

    def test_cooperative_sticky_rebalances_incrementally(self):
        topic = self.unique_topic()
        create_topic(self.broker.bootstrap, topic, 6)
        group = "coop-" + topic
        a = self.members(1, "confluent", group, topic, assignor="cooperative-sticky")[0]
        wait_until(lambda: a.assignment() == frozenset(range(6)), "a to own all partitions")
        b = self.members(1, "confluent", group, topic, assignor="cooperative-sticky")[0]
        self.assert_split([a, b], 6)
        # Incremental: a gave up only what b took, and never held nothing in between.
        seen = a.assignments()
        first_full = seen.index(frozenset(range(6)))
        self.assertTrue(all(seen[first_full:]), "a was revoked everything: %s" % seen)
        self.assertTrue(b.assignment() <= frozenset(range(6)))
        self.assertTrue(a.assignment() <= frozenset(range(6)))

    def test_protocol_misuse_gets_kafka_errors_and_the_group_stays_healthy(self):
        topic = self.unique_topic()
        create_topic(self.broker.bootstrap, topic, 2)
        group = "misuse-" + topic
        m = self.members(1, "confluent", group, topic)[0]
        wait_until(lambda: m.assignment() == frozenset([0, 1]), "the member to be assigned")
        with socket.create_connection(("127.0.0.1", self.broker.port), timeout=10) as s:
            def call(key, version, body):
                s.sendall(request_frame(key, version, 1, body))
                return read_response(s, 10)[1]

            def string(v):
                return struct.pack(">h", len(v)) + v.encode()

            # Heartbeat v0 from a member the group does not know: UNKNOWN_MEMBER_ID (25).
            body = call(12, 0, string(group) + struct.pack(">i", 1) + string("nobody"))
            self.assertEqual(struct.unpack(">h", body[:2])[0], 25)
            # OffsetCommit v2 with a stale generation from an unknown member: 25; a commit with
            # a generation when the group does not exist: ILLEGAL_GENERATION (22).
            def commit(g, generation, member):
                req = (string(g) + struct.pack(">i", generation) + string(member) +
                       struct.pack(">q", -1) + struct.pack(">i", 1) + string(topic) +
                       struct.pack(">iiq", 1, 0, 1) + string(""))
                resp = call(8, 2, req)
                # topics[1]: name, partitions[1]: index, error
                n = struct.unpack(">h", resp[4:6])[0]
                return struct.unpack(">h", resp[6 + n + 4 + 4:6 + n + 4 + 4 + 2])[0]
            self.assertEqual(commit(group, 0, "nobody"), 25)
            self.assertEqual(commit("no-such-group-" + topic, 3, "x"), 22)
            # JoinGroup v1 with an absurd session timeout: INVALID_SESSION_TIMEOUT (26).
            join = (string(group) + struct.pack(">ii", 1 << 30, 1000) + string("") +
                    string("consumer") + struct.pack(">i", 1) + string("range") +
                    struct.pack(">i", 0))
            body = call(11, 1, join)
            self.assertEqual(struct.unpack(">h", body[:2])[0], 26)
        # The real member never noticed.
        produce(self.broker.bootstrap, topic, ["after%d" % i for i in range(10)])
        wait_until(lambda: len(m.records()) == 10, "the member to keep consuming")
        self.assertEqual(len(m.assignments()), 1)


@unittest.skipIf(ck is None, "python3-confluent-kafka is not installed")
class GroupRestartTest(GroupMembersMixin, unittest.TestCase):
    """Tests that restart the broker, each with a broker of its own."""

    def setUp(self):
        self.broker = Broker(**GROUP_CONFIG)
        self.addCleanup(self.broker.close)

    def committed(self, group, topic, partitions):
        c = ck.Consumer({"bootstrap.servers": self.broker.bootstrap, "group.id": group})
        try:
            got = c.committed([ck.TopicPartition(topic, p) for p in range(partitions)],
                              timeout=WAIT_S)
            return {tp.partition: tp.offset for tp in got}
        finally:
            c.close()

    def test_committed_offsets_survive_a_restart(self):
        topic = "survive"
        create_topic(self.broker.bootstrap, topic, 3)
        c = ck.Consumer({"bootstrap.servers": self.broker.bootstrap, "group.id": "keep"})
        c.commit(offsets=[ck.TopicPartition(topic, 0, 11), ck.TopicPartition(topic, 2, 5)],
                 asynchronous=False)
        c.close()
        self.assertEqual(self.committed("keep", topic, 3), {0: 11, 1: -1001, 2: 5})
        self.broker.restart()
        self.assertEqual(self.committed("keep", topic, 3), {0: 11, 1: -1001, 2: 5})
        self.broker.restart(hard=True)
        self.assertEqual(self.committed("keep", topic, 3), {0: 11, 1: -1001, 2: 5})

    def test_at_least_once_across_member_kills_and_a_broker_restart(self):
        topic, group, n = "alo", "alo-group", 3000
        create_topic(self.broker.bootstrap, topic, 6)
        everyone = []

        def start(k):
            ms = self.members(k, "confluent", group, topic)
            everyone.extend(ms)
            return ms

        def processed():
            return {r[2] for m in everyone for r in m.records()}

        live = start(3)
        produce(self.broker.bootstrap, topic, ["r%d" % i for i in range(n // 3)])
        wait_until(lambda: len(processed()) >= n // 6, "some processing")
        live[0].kill()
        live[1].kill()
        live = live[2:] + start(2)
        produce(self.broker.bootstrap, topic, ["r%d" % i for i in range(n // 3, 2 * n // 3)])
        wait_until(lambda: len(processed()) >= n // 2, "more processing")
        self.broker.restart()
        produce(self.broker.bootstrap, topic, ["r%d" % i for i in range(2 * n // 3, n)])
        live[0].kill()
        start(1)
        wait_until(lambda: len(processed()) == n,
                   "every record to be processed (%d of %d)" % (len(processed()), n),
                   timeout=120)
        self.assertEqual(processed(), {"r%d" % i for i in range(n)})


if __name__ == "__main__":
    unittest.main()
