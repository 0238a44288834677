"""Admin clients against Sluice: confluent-kafka's AdminClient and kafka-python's
KafkaAdminClient create topics, list and describe them, describe and alter their configs, add
partitions and delete them; a producer and consumer confirm each change took effect."""

import logging
import socket
import struct
import time
import unittest

from broker import BrokerTestCase, read_response, request_frame

try:
    import confluent_kafka as ck
    from confluent_kafka import admin as ck_admin
except ImportError:  # pragma: no cover
    ck = None
try:
    import kafka
    from kafka import admin as kp_admin
    from kafka import errors as kp_errors
except ImportError:  # pragma: no cover
    kafka = None

WAIT_S = 30
if ck is None and kafka is None:
    print("E2E-SKIP: neither python3-confluent-kafka nor python3-kafka is installed")
INCREMENTAL_ALTER_CONFIGS = 44
SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3


def kstr(s):
    if s is None:
        return struct.pack(">h", -1)
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def incremental_alter_configs_v0(topic, ops, validate_only=False):
    """The request body: one topic resource with (name, operation, value) entries. Neither
    Debian client has IncrementalAlterConfigs (librdkafka 2.2 and kafka-python 2.1 added it)."""
    body = struct.pack(">ib", 1, 2) + kstr(topic) + struct.pack(">i", len(ops))
    for name, op, value in ops:
        body += kstr(name) + struct.pack(">b", op) + kstr(value)
    return body + struct.pack(">b", 1 if validate_only else 0)


def describe_configs_v1(port, resources):
    """DescribeConfigs v1 with synonyms over a raw socket: {(type, name): {config: synonyms}}."""
    body = struct.pack(">i", len(resources))
    for rtype, name in resources:
        body += struct.pack(">b", rtype) + kstr(name) + struct.pack(">i", -1)
    body += b"\x01"  # include_synonyms
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request_frame(32, 1, 7, body))
        _, resp = read_response(sock, WAIT_S)
    pos = 4  # throttle time

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from(fmt, resp, pos)
        pos += struct.calcsize(fmt)
        return v[0]

    def string():
        nonlocal pos
        n = take(">h")
        if n < 0:
            return None
        v = resp[pos:pos + n].decode()
        pos += n
        return v

    out = {}
    for _ in range(take(">i")):
        take(">h")
        string()
        key = (take(">b"), string())
        configs = {}
        for _ in range(take(">i")):
            name = string()
            string()
            take(">b")  # read only
            take(">b")  # source
            take(">b")  # sensitive
            configs[name] = [(string(), string(), take(">b")) for _ in range(take(">i"))]
        out[key] = configs
    return out


def parse_incremental_alter_configs_v0(body):
    """[(error_code, error_message)] per resource."""
    (count,) = struct.unpack_from(">i", body, 4)
    pos, out = 8, []
    for _ in range(count):
        err, mlen = struct.unpack_from(">hh", body, pos)
        pos += 4
        msg = body[pos:pos + mlen].decode() if mlen >= 0 else None
        pos += max(mlen, 0) + 1  # message, resource type
        (nlen,) = struct.unpack_from(">h", body, pos)
        pos += 2 + nlen
        out.append((err, msg))
    return out
logging.getLogger("kafka").setLevel(logging.CRITICAL)


def wait_for(predicate, what, timeout=WAIT_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


@unittest.skipIf(ck is None, "python3-confluent-kafka is not installed")
class ConfigSourcesTest(BrokerTestCase):
    """DescribeConfigs sources and synonyms (librdkafka asks for synonyms), as Kafka reports
    them: a topic override, a topic key supplied by an explicit broker setting, a default."""
    broker_config = {"log_retention_hours": "5"}

    def test_sources_and_synonyms(self):
        admin = ck_admin.AdminClient({"bootstrap.servers": self.broker.bootstrap})
        topic = self.unique_topic("ck-sources")
        admin.create_topics([ck_admin.NewTopic(topic, 1, 1,
                                               config={"retention.bytes": "4096"})]
                            )[topic].result(timeout=WAIT_S)
        res = ck_admin.ConfigResource(ck_admin.ConfigResource.Type.TOPIC, topic)
        entries = admin.describe_configs([res])[res].result(timeout=WAIT_S)
        Source = ck_admin.ConfigSource

        def synonyms(entry):
            return [(s.name, s.value, s.source) for s in entry.synonyms.values()]

        override = entries["retention.bytes"]
        self.assertEqual((override.value, override.source),
                         ("4096", Source.DYNAMIC_TOPIC_CONFIG.value))
        self.assertEqual(synonyms(override),
                         [("retention.bytes", "4096", Source.DYNAMIC_TOPIC_CONFIG.value),
                          ("log.retention.bytes", "-1", Source.DEFAULT_CONFIG.value)])
        from_broker = entries["retention.ms"]
        self.assertEqual((from_broker.value, from_broker.source),
                         (str(5 * 3600 * 1000), Source.STATIC_BROKER_CONFIG.value))
        default = entries["cleanup.policy"]
        self.assertEqual((default.value, default.source, default.is_default),
                         ("delete", Source.DEFAULT_CONFIG.value, True))
        self.assertEqual(synonyms(default),
                         [("log.cleanup.policy", "delete", Source.DEFAULT_CONFIG.value)])
        # confluent-kafka keeps synonyms in a dict by name, so a broker key that is both set
        # and defaulted shows once: read the full lists off the wire.
        raw = describe_configs_v1(self.broker.port, [(2, topic), (4, "0")])
        self.assertEqual(raw[(2, topic)]["retention.ms"],
                         [("log.retention.hours", "5", 4), ("log.retention.hours", "168", 5)])
        self.assertEqual(raw[(4, "0")]["log.retention.hours"],
                         [("log.retention.hours", "5", 4), ("log.retention.hours", "168", 5)])
        self.assertEqual(raw[(4, "0")]["num.partitions"][-1][2], 5)


@unittest.skipIf(ck is None, "python3-confluent-kafka is not installed")
class ConfluentAdminTest(BrokerTestCase):
    broker_config = {"auto_create_topics_enable": "false"}

    def setUp(self):
        self.admin = ck_admin.AdminClient({"bootstrap.servers": self.broker.bootstrap})

    def tearDown(self):
        self.admin = None  # closes the client before the class stops the broker

    def results(self, futures):
        return {k: f.result(timeout=WAIT_S) for k, f in futures.items()}

    def topic_partitions(self, topic):
        md = self.admin.list_topics(timeout=10)
        t = md.topics.get(topic)
        if t is None or t.error is not None:
            return None
        return len(t.partitions)

    def describe(self, topic):
        res = ck_admin.ConfigResource(ck_admin.ConfigResource.Type.TOPIC, topic)
        return self.results(self.admin.describe_configs([res]))[res]

    def test_topic_lifecycle(self):
        topic = self.unique_topic("ck-admin")
        self.results(self.admin.create_topics(
            [ck_admin.NewTopic(topic, num_partitions=2, replication_factor=1,
                               config={"retention.ms": "3600000", "cleanup.policy": "delete"})],
            operation_timeout=10))
        self.assertEqual(self.topic_partitions(topic), 2)

        md = self.admin.list_topics(timeout=10)
        self.assertEqual(list(md.brokers.values())[0].port, self.broker.port)
        self.assertEqual(md.topics[topic].partitions[0].leader, md.controller_id)

        # Creating it again fails with TOPIC_ALREADY_EXISTS; a bad name or count is refused.
        with self.assertRaises(ck.KafkaException) as cm:
            self.results(self.admin.create_topics([ck_admin.NewTopic(topic, 1, 1)]))
        self.assertEqual(cm.exception.args[0].code(), ck.KafkaError.TOPIC_ALREADY_EXISTS)
        with self.assertRaises(ck.KafkaException):
            self.results(self.admin.create_topics([ck_admin.NewTopic("bad/name", 1, 1)]))
        with self.assertRaises(ck.KafkaException):
            self.results(self.admin.create_topics(
                [ck_admin.NewTopic(topic + "-rf", 1, replication_factor=3)]))

        configs = self.describe(topic)
        self.assertEqual(configs["retention.ms"].value, "3600000")
        self.assertEqual(configs["cleanup.policy"].value, "delete")
        self.assertIn("segment.bytes", configs)

        # AlterConfigs replaces the topic's whole set of overrides.
        res = ck_admin.ConfigResource(ck_admin.ConfigResource.Type.TOPIC, topic,
                                      set_config={"retention.ms": "7200000",
                                                  "max.message.bytes": "2000000"})
        self.results(self.admin.alter_configs([res]))
        configs = self.describe(topic)
        self.assertEqual(configs["retention.ms"].value, "7200000")
        self.assertEqual(configs["max.message.bytes"].value, "2000000")
        self.assertNotEqual(configs["cleanup.policy"].source,
                            ck_admin.ConfigSource.DYNAMIC_TOPIC_CONFIG.value)
        # An unknown key or a bad value is refused and changes nothing.
        for bad in ({"no.such.key": "1"}, {"retention.ms": "soon"}):
            res = ck_admin.ConfigResource(ck_admin.ConfigResource.Type.TOPIC, topic, set_config=bad)
            with self.assertRaises(ck.KafkaException):
                self.results(self.admin.alter_configs([res]))
        self.assertEqual(self.describe(topic)["retention.ms"].value, "7200000")

        broker_res = ck_admin.ConfigResource(ck_admin.ConfigResource.Type.BROKER, "0")
        broker_cfg = self.results(self.admin.describe_configs([broker_res]))[broker_res]
        self.assertEqual(broker_cfg["num.partitions"].value, "3")

        # Add partitions, then write to and read from the new one.
        self.results(self.admin.create_partitions([ck_admin.NewPartitions(topic, 5)]))
        wait_for(lambda: self.topic_partitions(topic) == 5, "5 partitions")
        with self.assertRaises(ck.KafkaException):  # never fewer
            self.results(self.admin.create_partitions([ck_admin.NewPartitions(topic, 3)]))
        p = ck.Producer({"bootstrap.servers": self.broker.bootstrap})
        p.produce(topic, value=b"in the new partition", partition=4)
        self.assertEqual(p.flush(WAIT_S), 0)
        del p
        c = ck.Consumer({"bootstrap.servers": self.broker.bootstrap, "group.id": "unused",
                         "enable.auto.commit": False, "log_level": 3})
        try:
            c.assign([ck.TopicPartition(topic, 4, ck.OFFSET_BEGINNING)])
            msg = None
            deadline = time.monotonic() + WAIT_S
            while msg is None and time.monotonic() < deadline:
                msg = c.poll(0.5)
            self.assertIsNotNone(msg)
            self.assertIsNone(msg.error())
            self.assertEqual(msg.value(), b"in the new partition")
        finally:
            c.close()

        self.results(self.admin.delete_topics([topic], operation_timeout=10))
        wait_for(lambda: self.topic_partitions(topic) is None, "the topic to go")
        with self.assertRaises(ck.KafkaException):
            self.results(self.admin.delete_topics([topic]))

        # The name can be used again, and starts empty.
        self.results(self.admin.create_topics([ck_admin.NewTopic(topic, 1, 1)]))
        c = ck.Consumer({"bootstrap.servers": self.broker.bootstrap, "group.id": "unused",
                         "enable.auto.commit": False, "log_level": 3})
        try:
            low, high = c.get_watermark_offsets(ck.TopicPartition(topic, 0), timeout=10)
            self.assertEqual((low, high), (0, 0))
        finally:
            c.close()

    def incremental(self, topic, ops, validate_only=False):
        with socket.create_connection(("127.0.0.1", self.broker.port), timeout=WAIT_S) as s:
            s.sendall(request_frame(INCREMENTAL_ALTER_CONFIGS, 0, 11,
                                    incremental_alter_configs_v0(topic, ops, validate_only)))
            corr, body = read_response(s, WAIT_S)
        self.assertEqual(corr, 11)
        (result,) = parse_incremental_alter_configs_v0(body)
        return result

    def test_incremental_alter_configs_by_hand(self):
        topic = self.unique_topic("incr")
        self.results(self.admin.create_topics(
            [ck_admin.NewTopic(topic, 1, 1, config={"retention.ms": "1000000",
                                                    "segment.bytes": "1048576"})]))
        self.assertEqual(self.incremental(topic, [("retention.ms", SET, "2000000"),
                                                  ("segment.bytes", DELETE, None),
                                                  ("cleanup.policy", APPEND, "compact")])[0],
                         0)
        configs = self.describe(topic)
        self.assertEqual(configs["retention.ms"].value, "2000000")
        self.assertEqual(configs["segment.bytes"].value, "1073741824", "back to the default")
        self.assertEqual(sorted(configs["cleanup.policy"].value.split(",")),
                         ["compact", "delete"])
        self.assertEqual(self.incremental(topic, [("cleanup.policy", SUBTRACT, "delete")])[0], 0)
        self.assertEqual(self.describe(topic)["cleanup.policy"].value, "compact")

        # validate_only changes nothing; bad keys, values and operations are refused.
        self.assertEqual(self.incremental(topic, [("retention.ms", SET, "5")], True)[0], 0)
        self.assertEqual(self.describe(topic)["retention.ms"].value, "2000000")
        for ops in ([("no.such.key", SET, "1")], [("retention.ms", SET, "x")],
                    [("retention.ms", SET, None)], [("retention.ms", APPEND, "1")],
                    [("retention.ms", 9, "1")]):
            with self.subTest(ops=ops):
                err, msg = self.incremental(topic, ops)
                self.assertEqual(err, 40, "INVALID_CONFIG")
                self.assertTrue(msg)
        self.assertEqual(self.describe(topic)["retention.ms"].value, "2000000")
        self.assertEqual(self.incremental(topic + "-missing", [("retention.ms", SET, "1")])[0],
                         3, "UNKNOWN_TOPIC_OR_PARTITION")


@unittest.skipIf(kafka is None, "python3-kafka is not installed")
class KafkaPythonAdminTest(BrokerTestCase):
    broker_config = {"auto_create_topics_enable": "false"}

    def setUp(self):
        self.admin = kp_admin.KafkaAdminClient(bootstrap_servers=self.broker.bootstrap,
                                               request_timeout_ms=WAIT_S * 1000)

    def tearDown(self):
        self.admin.close()

    def describe(self, topic):
        resp = self.admin.describe_configs(
            [kp_admin.ConfigResource(kp_admin.ConfigResourceType.TOPIC, topic)])
        (error_code, _msg, _type, _name, entries), = resp[0].resources
        self.assertEqual(error_code, 0)
        return {e[0]: e[1] for e in entries}

    def partitions(self, topic):
        for t in self.admin.describe_topics([topic]):
            if t["topic"] == topic and t["error_code"] == 0:
                return len(t["partitions"])
        return None

    def test_topic_lifecycle(self):
        topic = self.unique_topic("kp-admin")
        resp = self.admin.create_topics(
            [kp_admin.NewTopic(topic, num_partitions=3, replication_factor=1,
                               topic_configs={"retention.bytes": "1048576"})],
            timeout_ms=10_000)
        self.assertEqual([e[1] for e in resp.topic_errors], [0])
        # CreateTopics v1+ carries an error message: null on success, as Kafka sends it.
        self.assertEqual([e[2] for e in resp.topic_errors if len(e) > 2],
                         [None] * sum(1 for e in resp.topic_errors if len(e) > 2))
        self.assertIn(topic, self.admin.list_topics())
        self.assertEqual(self.partitions(topic), 3)
        with self.assertRaises(kp_errors.TopicAlreadyExistsError):
            self.admin.create_topics([kp_admin.NewTopic(topic, 1, 1)])

        self.assertEqual(self.describe(topic)["retention.bytes"], "1048576")
        resp = self.admin.alter_configs(
            [kp_admin.ConfigResource(kp_admin.ConfigResourceType.TOPIC, topic,
                                     configs={"retention.bytes": "2097152",
                                              "cleanup.policy": "compact"})])
        self.assertEqual([r[0] for r in resp.resources], [0])
        configs = self.describe(topic)
        self.assertEqual(configs["retention.bytes"], "2097152")
        self.assertEqual(configs["cleanup.policy"], "compact")

        resp = self.admin.create_partitions({topic: kp_admin.NewPartitions(total_count=4)})
        self.assertEqual([e[1] for e in resp.topic_errors], [0])
        wait_for(lambda: self.partitions(topic) == 4, "4 partitions")

        cluster = self.admin.describe_cluster() if hasattr(self.admin, "describe_cluster") else None
        if cluster is not None:
            self.assertEqual(len(cluster["brokers"]), 1)

        resp = self.admin.delete_topics([topic], timeout_ms=10_000)
        self.assertEqual([e[1] for e in resp.topic_error_codes], [0])
        wait_for(lambda: topic not in self.admin.list_topics(), "the topic to go")


if __name__ == "__main__":
    unittest.main()
