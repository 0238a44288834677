"""Security in a 2-broker cluster (ZooKeeper): brokers replicate over a SASL_SSL internal
listener (TLS verified against the test CA, then SASL PLAIN: inter.broker.listener.name,
sasl.mechanism.inter.broker.protocol), clients use a SASL_SSL external listener and are told
the external endpoints.
SCRAM credentials and ACLs made through one broker are enforced by the other (they live in
ZooKeeper), and an ACL removed through the second stops the first from serving.

confluent-kafka produces with acks=all to a replication-factor-2 topic (so the follower must
have fetched over the authenticated internal listener) and consumes in a group."""

import os
import shutil
import subprocess
import tempfile
import time
import unittest

from broker import Broker, free_port
from cluster import Cluster
from test_security import OPENSSL, make_pki, sluice

if OPENSSL is None or shutil.which("java") is None:
    print("E2E-SKIP: needs openssl and java for ZooKeeper (ci/install-deps.sh)")

JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
        'username="broker" password="broker-secret" user_broker="broker-secret" '
        'user_admin="admin-secret";')


class SecureClusterTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        try:
            import confluent_kafka  # noqa: F401
        except ImportError:
            raise unittest.SkipTest("python3-confluent-kafka")
        cls.tmp = tempfile.mkdtemp(prefix="sluice-pki-")
        cls.pki = make_pki(cls.tmp)
        cls.cluster = Cluster(brokers=0)
        cls.ports = {}
        try:
            for i in (1, 2):
                internal, external = free_port(), free_port()
                cls.ports[i] = {"INTERNAL": internal, "EXTERNAL": external}
                cfg = dict(cls.cluster.config)
                cfg.update({
                    "default_replication_factor": 2, "min_insync_replicas": 2,
                    "listener.security.protocol.map": "INTERNAL:SASL_SSL,EXTERNAL:SASL_SSL",
                    "inter.broker.listener.name": "INTERNAL",
                    "sasl.mechanism.inter.broker.protocol": "PLAIN",
                    "sasl.jaas.config": JAAS,
                    "ssl.certificate.location": cls.pki["server"],
                    "ssl.key.location": cls.pki["server_key"],
                    "ssl.ca.location": cls.pki["ca"],
                    "authorizer.class.name": "kafka.security.authorizer.AclAuthorizer",
                    "super.users": "User:admin;User:broker",
                })
                b = Broker(broker_id=i, num_partitions=1,
                           listeners="INTERNAL://127.0.0.1:%d,EXTERNAL://127.0.0.1:%d"
                                     % (internal, external), **cfg)
                cls.cluster.brokers[i] = b
            for b in cls.cluster.brokers.values():
                cls.cluster.wait_joined(b)
        except BaseException:
            cls.cluster.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.cluster.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def external(self, i):
        return "127.0.0.1:%d" % self.ports[i]["EXTERNAL"]

    def admin(self, i, *args):
        r = sluice(list(args) + ["--bootstrap-server", self.external(i), "--security-protocol",
                                 "SASL_SSL", "--ssl-ca-location", self.pki["ca"],
                                 "--sasl-mechanism", "PLAIN", "--sasl-username", "admin",
                                 "--sasl-password", "admin-secret"], timeout=60)
        return r

    def client(self, i, user, password):
        return {"bootstrap.servers": self.external(i), "security.protocol": "SASL_SSL",
                "ssl.ca.location": self.pki["ca"], "sasl.mechanism": "SCRAM-SHA-512",
                "sasl.username": user, "sasl.password": password}

    def retry(self, fn, what, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            r = fn()
            if r.returncode == 0:
                return r
            if time.monotonic() > deadline:
                raise AssertionError("%s: %s%s" % (what, r.stdout, r.stderr))
            time.sleep(0.5)

    def test_credentials_and_acls_shared_and_replication_authenticated(self):
        from confluent_kafka import Consumer, KafkaException, Producer
        self.retry(lambda: self.admin(1, "topic", "create", "shared", "--partitions", "2",
                                      "--replication-factor", "2"), "create topic")
        self.retry(lambda: self.admin(1, "user", "add", "sam", "--password", "sam-pw"), "user add")
        for args in (["--operation", "Write", "--operation", "Read", "--topic", "shared"],
                     ["--operation", "Read", "--group", "sam-group"]):
            self.retry(lambda: self.admin(1, "acl", "add", "--allow-principal", "User:sam", *args),
                       "acl add")
        # Broker 2 learns them from ZooKeeper; produce through it with acks=all (RF 2, min ISR 2:
        # the follower must be replicating over the SASL internal listener).
        deadline = time.monotonic() + 30
        while True:
            p = Producer(dict(self.client(2, "sam", "sam-pw"), **{"acks": "all",
                                                                  "message.timeout.ms": 8000}))
            errors = []
            for n in range(100):
                p.produce("shared", b"s-%d" % n, on_delivery=lambda e, m: e and errors.append(e))
            left = p.flush(20)
            if left == 0 and not errors:
                break
            if time.monotonic() > deadline:
                raise AssertionError("producing through broker 2 failed: %s (%d left)\n%s"
                                     % (errors[:3], left, self.cluster.brokers[2].log_tail()))
            time.sleep(1)
        c = Consumer(dict(self.client(1, "sam", "sam-pw"),
                          **{"group.id": "sam-group", "auto.offset.reset": "earliest"}))
        c.subscribe(["shared"])
        got = set()
        deadline = time.monotonic() + 40
        while len(got) < 100 and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and m.error() is None:
                got.add(m.value())
        c.close()
        self.assertEqual(got, {b"s-%d" % n for n in range(100)})
        # The clients were told the external endpoints, never the internal ones.
        md = Producer(self.client(1, "sam", "sam-pw")).list_topics("shared", timeout=10)
        self.assertEqual({(b.host, b.port) for b in md.brokers.values()},
                         {("127.0.0.1", self.ports[i]["EXTERNAL"]) for i in (1, 2)})
        # An ACL removed through broker 2 stops broker 1 from taking sam's writes.
        self.retry(lambda: self.admin(2, "acl", "remove", "--principal", "User:sam", "--topic",
                                      "shared"), "acl remove")
        deadline = time.monotonic() + 20
        while True:
            p = Producer(dict(self.client(1, "sam", "sam-pw"), **{"acks": "all", "retries": 0,
                                                                  "message.timeout.ms": 5000}))
            errors = []
            p.produce("shared", b"late", on_delivery=lambda e, m: e and errors.append(e))
            p.flush(10)
            if errors and "authoriz" in str(errors[0]).lower():
                break
            if time.monotonic() > deadline:
                raise AssertionError("broker 1 still accepts sam's writes: %s" % errors)
            time.sleep(1)
        self.assertIn("authenticated User:broker", self.cluster.brokers[1].log_text() +
                      self.cluster.brokers[2].log_text())


if __name__ == "__main__":
    unittest.main()
