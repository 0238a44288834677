"""Dynamic broker configs with confluent-kafka's AdminClient: AlterConfigs on the BROKER
resource changes message.max.bytes while the broker runs (a record that fitted is now refused
with MSG_SIZE_TOO_LARGE), DescribeConfigs reports the value with its dynamic source on the
broker and on a topic that inherits it, a key that cannot change at run time is refused, the
setting survives a restart, and removing it restores the default."""

import time
import unittest

from broker import Broker

try:
    from confluent_kafka import KafkaError, KafkaException, Producer
    from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource, NewTopic
except ImportError:
    print("E2E-SKIP: python3-confluent-kafka is not installed")
    raise SystemExit(0)

BIG = b"x" * 5000


class DynamicConfigTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.b = Broker(num_partitions=1)

    @classmethod
    def tearDownClass(cls):
        cls.b.close()

    def admin(self):
        # One client for the test: a future dies with the client that made it.
        if not hasattr(self, "_admin"):
            self._admin = AdminClient({"bootstrap.servers": self.b.bootstrap})
        return self._admin

    def produce(self, value):
        p = Producer({"bootstrap.servers": self.b.bootstrap, "message.timeout.ms": 10000,
                      "message.max.bytes": 10_000_000})
        errors = []
        p.produce("dyn", value, on_delivery=lambda e, m: errors.append(e))
        p.flush(15)
        return errors[0] if errors else "no report"

    def alter_broker(self, configs):
        res = ConfigResource("broker", "0", set_config=configs)
        return self.admin().alter_configs([res])[res].result(timeout=15)

    def describe(self, kind, name, key):
        res = ConfigResource(kind, name)
        entries = self.admin().describe_configs([res])[res].result(timeout=15)
        return entries[key]

    def test_message_max_bytes_changes_without_restart(self):
        a = self.admin()
        a.create_topics([NewTopic("dyn", 1, 1)])["dyn"].result(timeout=15)
        self.assertIsNone(self.produce(BIG))
        self.alter_broker({"message.max.bytes": "2000"})
        entry = self.describe("broker", "0", "message.max.bytes")
        self.assertEqual(entry.value, "2000")
        self.assertEqual(entry.source, ConfigSource.DYNAMIC_BROKER_CONFIG.value)
        topic_entry = self.describe("topic", "dyn", "max.message.bytes")
        self.assertEqual(topic_entry.value, "2000")
        self.assertEqual(topic_entry.source, ConfigSource.DYNAMIC_BROKER_CONFIG.value)
        err = self.produce(BIG)
        self.assertIsNotNone(err)
        self.assertEqual(err.code(), KafkaError.MSG_SIZE_TOO_LARGE, err)
        self.assertIsNone(self.produce(b"small"))
        # A key that needs a restart is refused, and nothing changes.
        with self.assertRaises(KafkaException) as cm:
            self.alter_broker({"message.max.bytes": "2000", "num.partitions": "7"})
        self.assertEqual(cm.exception.args[0].code(), KafkaError.INVALID_CONFIG)
        self.assertEqual(self.describe("broker", "0", "message.max.bytes").value, "2000")
        # Persisted: still in effect after a restart.
        self.b.restart()
        del self._admin  # the broker came back on a new port
        err = self.produce(BIG)
        self.assertIsNotNone(err)
        self.assertEqual(err.code(), KafkaError.MSG_SIZE_TOO_LARGE)
        # AlterConfigs replaces the broker's set: an empty one removes the override.
        self.alter_broker({})
        self.assertEqual(self.describe("broker", "0", "message.max.bytes").value, "1048588")
        deadline = time.monotonic() + 10
        while self.produce(BIG) is not None:
            self.assertLess(time.monotonic(), deadline, "the default did not come back")
            time.sleep(0.2)

    def test_kafkas_dynamic_thread_pool_sizes_are_kept_and_reported(self):
        # Kafka's tools change log.cleaner.threads at run time; Sluice has no cleaner pool but
        # accepts, keeps and reports it as Kafka does.
        self.alter_broker({"log.cleaner.threads": "3"})
        entry = self.describe("broker", "0", "log.cleaner.threads")
        self.assertEqual(entry.value, "3")
        self.assertEqual(entry.source, ConfigSource.DYNAMIC_BROKER_CONFIG.value)
        self.assertFalse(entry.is_read_only)
        with self.assertRaises(KafkaException) as cm:
            self.alter_broker({"log.cleaner.threads": "99"})
        self.assertEqual(cm.exception.args[0].code(), KafkaError.INVALID_CONFIG)
        self.assertEqual(self.describe("broker", "0", "log.cleaner.threads").value, "3")
        self.alter_broker({})
        self.assertEqual(self.describe("broker", "0", "log.cleaner.threads").value, "1")

if __name__ == "__main__":
    unittest.main()
