"""Transactions on a 3-broker cluster (ZooKeeper): a transaction spanning partitions led by
different brokers commits everywhere (markers reach other brokers through WriteTxnMarkers);
and kill -9 of the transaction coordinator, or of a partition leader, in the middle of an open
transaction: __transaction_state is replicated, the new coordinator aborts the open
transaction when the producer's next incarnation starts, and no part of it ever becomes
visible to read_committed."""

import os
import re
import subprocess
import time
import unittest

from cluster import Cluster

try:
    import confluent_kafka as ck
    from confluent_kafka import admin as ck_admin
except ImportError:  # pragma: no cover
    ck = None

if ck is None:
    print("E2E-SKIP: python3-confluent-kafka is not installed")

WAIT_S = 60
PARTITIONS = 3


@unittest.skipIf(ck is None, "python3-confluent-kafka is not installed")
class ClusterTransactionsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster(3, transaction_state_log_num_partitions=4)

    @classmethod
    def tearDownClass(cls):
        cls.cluster.close()

    def setUp(self):
        for i, b in self.cluster.brokers.items():
            if not b.alive():
                self.cluster.restart(i)
        self.cluster.wait_settled(3)

    def create_topic(self, name):
        a = ck_admin.AdminClient({"bootstrap.servers": self.cluster.bootstrap, "log_level": 0})
        a.create_topics([ck_admin.NewTopic(name, num_partitions=PARTITIONS,
                                           replication_factor=3)])[name].result(timeout=WAIT_S)
        self.wait_for(lambda: len(self.leaders(name)) == PARTITIONS, "leaders of " + name)

    def leaders(self, topic):
        a = ck_admin.AdminClient({"bootstrap.servers": self.cluster.bootstrap, "log_level": 0})
        t = a.list_topics(topic, timeout=10).topics[topic]
        return {p: m.leader for p, m in t.partitions.items() if m.leader >= 0}

    def wait_for(self, cond, what, timeout=WAIT_S):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if cond():
                    return
            except Exception:  # metadata while a broker is down
                pass
            time.sleep(0.2)
        raise AssertionError("timed out waiting for " + what)

    def producer(self, txn_id):
        p = ck.Producer({"bootstrap.servers": self.cluster.bootstrap, "transactional.id": txn_id,
                         "linger.ms": 2, "message.timeout.ms": 60000, "log_level": 0,
                         "transaction.timeout.ms": 60000,
                         "topic.metadata.refresh.interval.ms": 1000})
        p.init_transactions(WAIT_S)
        return p

    def send(self, p, topic, prefix, per_partition):
        for part in range(PARTITIONS):
            for i in range(per_partition):
                p.produce(topic, value=("%s-%d-%d" % (prefix, part, i)).encode(), partition=part)
        self.assertEqual(p.flush(WAIT_S), 0)

    def read(self, topic, isolation, expect, timeout=30):
        c = ck.Consumer({"bootstrap.servers": self.cluster.bootstrap, "log_level": 0,
                         "group.id": "verify-%f" % time.time(), "enable.auto.commit": False,
                         "isolation.level": isolation})
        c.assign([ck.TopicPartition(topic, p, ck.OFFSET_BEGINNING) for p in range(PARTITIONS)])
        out = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(out) < expect:
            out += [m.value().decode() for m in c.consume(500, timeout=0.5) if m.error() is None]
        # Anything past `expect` would be a bug: look a little longer.
        end = time.monotonic() + 2
        while time.monotonic() < end:
            out += [m.value().decode() for m in c.consume(500, timeout=0.5) if m.error() is None]
        c.close()
        return sorted(out)

    def coordinator_of(self, txn_id):
        r = subprocess.run([os.environ["SLUICE_BIN"], "txn", "describe", txn_id,
                            "--bootstrap-server", self.cluster.bootstrap],
                           capture_output=True, text=True, timeout=30)
        m = re.search(r"Coordinator: (\d+)", r.stdout)
        self.assertIsNotNone(m, r.stdout + r.stderr)
        return int(m.group(1))

    def expected(self, prefix, per_partition):
        return ["%s-%d-%d" % (prefix, p, i) for p in range(PARTITIONS) for i in range(per_partition)]

    def kill_mid_transaction(self, topic, txn_id, victim_of):
        self.create_topic(topic)
        p = self.producer(txn_id)
        p.begin_transaction()
        self.send(p, topic, "ok", 20)
        p.commit_transaction(WAIT_S)
        p.begin_transaction()
        self.send(p, topic, "open", 20)
        victim = victim_of(topic, txn_id)
        self.cluster.brokers[victim].kill()
        # The producer's next incarnation, against what is left of the cluster.
        self.wait_for(lambda: len(self.leaders(topic)) == PARTITIONS, "new leaders of " + topic)
        p2 = self.producer(txn_id)
        self.assertNotEqual(self.coordinator_of(txn_id), victim)
        p2.begin_transaction()
        self.send(p2, topic, "after", 10)
        p2.commit_transaction(WAIT_S)
        want = sorted(self.expected("ok", 20) + self.expected("after", 10))
        self.assertEqual(self.read(topic, "read_committed", len(want)), want)
        everything = self.read(topic, "read_uncommitted", len(want) + 60)
        self.assertEqual(len(everything), len(want) + 60, "the aborted records are stored")
        # The killed broker comes back, catches up, and serves the same outcome as a leader.
        self.cluster.restart(victim)
        self.cluster.wait_settled(3)

    def test_transaction_spanning_brokers_commits_everywhere(self):
        topic = "txn-span"
        self.create_topic(topic)
        # (A broker that has just rejoined may answer metadata before its view has the leaders.)
        self.wait_for(lambda: len(self.leaders(topic)) == PARTITIONS and
                      len(set(self.leaders(topic).values())) > 1, "leaders spread over brokers")
        p = self.producer("span")
        p.begin_transaction()
        self.send(p, topic, "c", 30)
        p.commit_transaction(WAIT_S)
        p.begin_transaction()
        self.send(p, topic, "a", 30)
        p.abort_transaction(WAIT_S)
        want = sorted(self.expected("c", 30))
        self.assertEqual(self.read(topic, "read_committed", len(want)), want)

    def test_kill9_coordinator_mid_transaction(self):
        self.kill_mid_transaction("txn-coord-kill", "coord-kill",
                                  lambda topic, txn_id: self.coordinator_of(txn_id))

    def test_kill9_partition_leader_mid_transaction(self):
        def leader_not_coordinator(topic, txn_id):
            coord = self.coordinator_of(txn_id)
            others = [b for b in self.leaders(topic).values() if b != coord]
            return others[0] if others else self.leaders(topic)[0]
        self.kill_mid_transaction("txn-leader-kill", "leader-kill", leader_not_coordinator)


if __name__ == "__main__":
    unittest.main()
