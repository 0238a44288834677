"""A network partition: broker 1 runs in a network namespace this test creates, joined to the
test's namespace by a veth pair it creates (its own 10.213.N.0/30 addresses, nothing else is
touched); ZooKeeper and brokers 2 and 3 listen on the host end. Taking the veth link down cuts
broker 1 off from ZooKeeper, its peers and the producer while it leads the partition:

  - a producer inside broker 1's namespace keeps sending acks=1 to it: once its lease has run
    out (2/3 of the session timeout without reaching ZooKeeper) broker 1 answers
    NOT_LEADER_OR_FOLLOWER, so nothing is acknowledged by a broker that may have been replaced;
  - the controller elects 2 or 3 when broker 1's session expires, and the idempotent acks=all
    producer outside carries on against it;
  - after the link comes back, broker 1 follows the new leader, drops what it had written alone
    and rejoins the ISR; every record acknowledged anywhere is stored once, in order.

Needs root (network namespaces, veth); prints E2E-SKIP otherwise."""

import os
import subprocess
import sys
import time
import unittest

from cluster import Cluster
from test_cluster import LoadThread, check_exactly_once, consume_all, describe, wait_for

try:
    import confluent_kafka as ck
    from confluent_kafka import admin as ck_admin
except ImportError:  # pragma: no cover
    ck = None


def sh(*args, check=True):
    return subprocess.run(list(args), check=check, capture_output=True, text=True, timeout=30)


def can_make_namespaces():
    if os.geteuid() != 0 or not os.path.exists("/usr/sbin/ip") and not os.path.exists("/sbin/ip"):
        return False
    # Everything setUp does, once: a namespace, a veth pair, one end moved into it, addresses.
    name = "slp-probe-%d" % os.getpid()
    veth = "slq%d" % (os.getpid() % 100000)
    try:
        if sh("ip", "netns", "add", name, check=False).returncode != 0:
            return False
        steps = [("ip", "link", "add", veth, "type", "veth", "peer", "name", veth + "p"),
                 ("ip", "link", "set", veth + "p", "netns", name),
                 ("ip", "addr", "add", "10.213.251.1/30", "dev", veth),
                 ("ip", "link", "set", veth, "up"),
                 ("ip", "netns", "exec", name, "ip", "link", "set", "lo", "up")]
        return all(sh(*step, check=False).returncode == 0 for step in steps)
    except (OSError, subprocess.SubprocessError):
        return False
    finally:
        sh("ip", "link", "del", veth, check=False)
        sh("ip", "netns", "del", name, check=False)


SKIP = ck is None or not can_make_namespaces()
if SKIP:
    print("E2E-SKIP: needs root with network namespaces and python3-confluent-kafka")

# Run inside the namespace: acks=1 produces to broker 1 alone, one per 50 ms, printing each
# outcome with a timestamp.
IN_NS_PRODUCER = r"""
import sys, time
import confluent_kafka as ck
p = ck.Producer({"bootstrap.servers": sys.argv[1], "acks": "1", "enable.idempotence": False,
                 "retries": 0, "message.timeout.ms": 3000, "request.timeout.ms": 2000,
                 "log_level": 0, "socket.timeout.ms": 2000})
end = time.monotonic() + float(sys.argv[3])
def done(err, msg):
    print("%.3f %s" % (time.monotonic(), "ok" if err is None else err.name()), flush=True)
i = 0
while time.monotonic() < end:
    p.produce(sys.argv[2], value=b"alone-%d" % i, partition=0, on_delivery=done)
    i += 1
    p.poll(0.05)
p.flush(10)
"""


@unittest.skipIf(SKIP, "no network namespaces here")
class PartitionTest(unittest.TestCase):
    def setUp(self):
        n = os.getpid() % 250
        self.ns = "slp-%d" % os.getpid()
        self.host_if = "slh%d" % (os.getpid() % 100000)
        self.ns_if = "sln%d" % (os.getpid() % 100000)
        self.host_ip = "10.213.%d.1" % n
        self.ns_ip = "10.213.%d.2" % n
        sh("ip", "netns", "add", self.ns)
        self.addCleanup(sh, "ip", "netns", "del", self.ns, check=False)
        sh("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
        self.addCleanup(sh, "ip", "link", "del", self.host_if, check=False)
        sh("ip", "link", "set", self.ns_if, "netns", self.ns)
        sh("ip", "addr", "add", self.host_ip + "/30", "dev", self.host_if)
        sh("ip", "link", "set", self.host_if, "up")
        nsx = ["ip", "netns", "exec", self.ns]
        sh(*nsx, "ip", "addr", "add", self.ns_ip + "/30", "dev", self.ns_if)
        sh(*nsx, "ip", "link", "set", self.ns_if, "up")
        sh(*nsx, "ip", "link", "set", "lo", "up")
        self.cluster = Cluster(3, zk_host=self.host_ip,
                               hosts={1: self.ns_ip, 2: self.host_ip, 3: self.host_ip},
                               prefixes={1: nsx}, auto_leader_rebalance_enable="false")
        self.addCleanup(self.cluster.close)

    def test_partitioned_leader_stops_acknowledging_and_rejoins(self):
        a = ck_admin.AdminClient({"bootstrap.servers": self.cluster.bootstrap, "log_level": 0})
        a.create_topics([ck_admin.NewTopic("cut", num_partitions=1,
                                           replica_assignment=[[1, 2, 3]])])["cut"].result(60)
        wait_for(lambda: describe(self.cluster, "cut")[0]["leader"] == 1 and
                 len(describe(self.cluster, "cut")[0]["isr"]) == 3, "broker 1 leading")
        load = LoadThread(self.cluster, "cut", 1)
        load.start()
        try:
            wait_for(lambda: load.total() > 100, "progress before the partition")
            # The producer inside the namespace, then the cut.
            alone = subprocess.Popen(
                ["ip", "netns", "exec", self.ns, sys.executable, "-c", IN_NS_PRODUCER,
                 self.cluster.brokers[1].bootstrap, "cut", "14"],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            time.sleep(1)
            cut_at = time.monotonic()
            sh("ip", "link", "set", self.host_if, "down")
            wait_for(lambda: describe_from(self.cluster, [2, 3], "cut")["leader"] in (2, 3),
                     "a new leader on the majority side")
            mark = load.total()
            wait_for(lambda: load.total() > mark + 100, "progress on the new leader")
            out, _ = alone.communicate(timeout=60)
            sh("ip", "link", "set", self.host_if, "up")
            wait_for(lambda: 1 in describe(self.cluster, "cut")[0]["isr"],
                     "broker 1 back in the ISR", timeout=90)
        finally:
            load.finish()
        # The isolated leader acknowledged nothing once its lease was over: the session
        # timeout is 4 s, the lease 2/3 of it; allow a second for the last in-flight answer.
        lines = [l.split() for l in out.splitlines() if l.strip()]
        late_ok = [float(t) - cut_at for t, r in lines if r == "ok" and float(t) - cut_at > 4.0]
        self.assertEqual(late_ok, [], "broker 1 acknowledged after its lease ended")
        refused = [r for t, r in lines if float(t) - cut_at > 3.5 and r != "ok"]
        self.assertTrue(refused, "the isolated producer heard refusals: %s" % out[-500:])
        self.assertEqual(load.errors, [])
        # Broker 1's writes of its last lease moments are either replicated (then acknowledged
        # and kept) or dropped when it followed again; everything the outside producer had
        # acknowledged is there once.
        alone_ok = sum(1 for t, r in lines if r == "ok")
        stored = consume_all(self.cluster, "cut", 1, load.total() + alone_ok)
        outside = {0: [(o, v) for o, v in stored[0] if v.startswith(b"v")]}
        check_exactly_once(self, load.acked, outside)


def describe_from(cluster, ids, topic):
    """The partition state as the brokers `ids` report it (the majority side)."""
    boot = ",".join(cluster.brokers[i].bootstrap for i in ids)
    md = ck_admin.AdminClient({"bootstrap.servers": boot, "log_level": 0}).list_topics(topic, timeout=10)
    p = md.topics[topic].partitions[0]
    return {"leader": p.leader, "isr": list(p.isrs)}


if __name__ == "__main__":
    unittest.main()
