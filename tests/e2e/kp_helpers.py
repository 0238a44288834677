"""Helpers shared by the kafka-python end-to-end tests (test_kafka_python.py,
test_old_clients.py): waiting for a topic's partitions and polling a number of records."""

import time

try:
    from kafka import TopicPartition
except ImportError:  # pragma: no cover - the tests themselves report the skip
    TopicPartition = None

WAIT_S = 30


class KafkaPythonHelpers:
    def partitions(self, consumer, topic):
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            parts = consumer.partitions_for_topic(topic)
            if parts:
                return [TopicPartition(topic, p) for p in sorted(parts)]
            time.sleep(0.1)
        raise AssertionError("no metadata for " + topic)

    def poll_n(self, consumer, n, timeout=WAIT_S):
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n and time.monotonic() < deadline:
            for msgs in consumer.poll(timeout_ms=200, max_records=1000).values():
                out.extend(msgs)
        return out
