"""A failed log dir in a cluster (Kafka's JBOD handling, KIP-112): one broker runs with two
log dirs; the second one's contents vanish under it while idempotent acks=all producers write.
The broker takes that dir offline and publishes its offline replicas; the controller moves the
leadership of the partitions it led there to in-sync replicas and drops it from their ISRs; the
broker keeps serving the partitions of its other dir; every acknowledged record is there once."""

import glob
import os
import shutil
import unittest

from cluster import Cluster
from test_cluster import (LoadThread, admin, check_exactly_once, ck, ck_admin, consume_all,
                          describe, kp, wait_for)

if ck is None or kp is None:
    print("E2E-SKIP: python3-confluent-kafka or python3-kafka is not installed")

PARTITIONS = 6
WAIT_S = 60


@unittest.skipIf(ck is None or kp is None, "clients missing")
class ClusterDiskTest(unittest.TestCase):
    def setUp(self):
        self.cluster = Cluster(3)

    def tearDown(self):
        self.cluster.close()

    def test_a_failed_log_dir_moves_its_leaderships_and_loses_nothing(self):
        b = self.cluster.brokers[1]
        first = os.path.join(b.data_dir, "data")
        second = os.path.join(b.data_dir, "data2")
        b.config["log.dirs"] = first + "," + second
        self.cluster.restart(1)
        # Broker 1 is every partition's preferred leader, so it leads some in each of its dirs.
        a = admin(self.cluster)
        a.create_topics([ck_admin.NewTopic("disks", num_partitions=PARTITIONS,
                                           replica_assignment=[[1, 2, 3]] * PARTITIONS,
                                           config={"segment.bytes": str(1 << 20)})
                         ])["disks"].result(WAIT_S)
        wait_for(lambda: [p["leader"] for p in describe(self.cluster, "disks")] == [1] * PARTITIONS
                 and all(len(p["isr"]) == 3 for p in describe(self.cluster, "disks")),
                 "broker 1 leading every partition with a full ISR")
        in_second = sorted(int(p.rsplit("-", 1)[1]) for p in glob.glob(second + "/disks-*"))
        in_first = sorted(int(p.rsplit("-", 1)[1]) for p in glob.glob(first + "/disks-*"))
        self.assertTrue(in_second and in_first, "broker 1 should use both dirs")
        states = describe(self.cluster, "disks")
        led_second = [p for p in in_second if states[p]["leader"] == 1]
        self.assertTrue(led_second, "broker 1 leads no partition in its second dir: %s" % states)

        load = LoadThread(self.cluster, "disks", PARTITIONS)
        load.start()
        try:
            wait_for(lambda: load.total() > 200, "load before the failure")
            # The disk behind the second dir fails: its files are gone; the next file the
            # broker creates there (a segment roll forced by large records, a checkpoint)
            # fails with an I/O error.
            for path in glob.glob(second + "/*"):
                shutil.rmtree(path, ignore_errors=True)
            p = ck.Producer({"bootstrap.servers": self.cluster.bootstrap, "acks": "all",
                             "enable.idempotence": True, "log_level": 0,
                             "message.timeout.ms": 120000})
            for i in range(15):
                p.produce("disks", value=b"big%02d" % i + b"b" * 100_000, partition=led_second[0])
                p.poll(0)
            p.flush(120)
            wait_for(lambda: "log dir %s is offline" % second in b.log_text(),
                     "broker 1 taking its second dir offline")

            def moved():
                now = describe(self.cluster, "disks")
                return all(now[p]["leader"] not in (-1, 1) and 1 not in now[p]["isr"]
                           for p in in_second)
            wait_for(moved, "leadership off the failed dir and broker 1 out of its ISRs")
            before = load.total()
            wait_for(lambda: load.total() > before + 200, "progress after the failure")
        finally:
            load.finish()
        self.assertEqual(load.errors, [])
        self.assertTrue(b.alive(), "the broker keeps running")
        # Its other dir still serves: it remains in the ISR of the partitions there.
        now = describe(self.cluster, "disks")
        for p in in_first:
            self.assertIn(1, now[p]["isr"], "partition %d (first dir)" % p)
        stored = consume_all(self.cluster, "disks", PARTITIONS, load.total() + 15)
        big = [v for recs in stored.values() for _, v in recs if v.startswith(b"big")]
        self.assertLessEqual(len(big), 15)
        self.assertEqual(len(big), len(set(big)), "a large record was stored twice")
        stored = {p: [(o, v) for o, v in recs if not v.startswith(b"big")]
                  for p, recs in stored.items()}
        check_exactly_once(self, load.acked, stored)


if __name__ == "__main__":
    unittest.main()
