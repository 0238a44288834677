"""A consume-transform-produce loop with exactly-once semantics (confluent-kafka): reads the
input topic as a read_committed group member, writes each record's transformed copy to the
output topic, and commits the consumed offsets inside the same transaction. Killed (-9) and
restarted at random by test_txn_eos.py; a new incarnation fences the old one through its
transactional id and resumes from the last committed transaction.

usage: txn_copier.py BOOTSTRAP INPUT OUTPUT GROUP TRANSACTIONAL_ID
Prints "ready" once its transactions are initialised and "idle" once it holds every input
partition and has copied each to its end."""

import os
import sys

import confluent_kafka as ck


def drained(consumer, topic):
    """Whether this member holds every partition of `topic` and has read each to its end (a
    killed predecessor's partitions come to it only once that member's session expired)."""
    parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    assigned = [tp for tp in consumer.assignment() if tp.topic == topic]
    if len(assigned) != len(parts):
        return False
    # The position is unknown until this incarnation consumed something: the committed offset
    # is where it stands then.
    committed = {(c.topic, c.partition): c.offset for c in consumer.committed(assigned, 10)}
    for tp in consumer.position(assigned):
        at = tp.offset if tp.offset >= 0 else committed.get((tp.topic, tp.partition), -1)
        _low, high = consumer.get_watermark_offsets(tp, timeout=10)
        if at < high:
            return False
    return True


def main():
    bootstrap, src, dst, group, txn_id = sys.argv[1:6]
    consumer = ck.Consumer({
        "bootstrap.servers": bootstrap, "group.id": group, "isolation.level": "read_committed",
        "enable.auto.commit": False, "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000, "heartbeat.interval.ms": 500,
        **({"debug": os.environ["SLUICE_COPIER_DEBUG"]} if "SLUICE_COPIER_DEBUG" in os.environ else {}),
    })
    producer = ck.Producer({
        "bootstrap.servers": bootstrap, "transactional.id": txn_id, "linger.ms": 5,
        "transaction.timeout.ms": 20000,
    })
    producer.init_transactions(30)
    print("ready", flush=True)
    consumer.subscribe([src])
    idle = 0
    while True:
        msgs = consumer.consume(num_messages=50, timeout=1.0)
        msgs = [m for m in msgs if m.error() is None]
        if not msgs:
            idle += 1
            if idle >= 3 and drained(consumer, src):
                print("idle", flush=True)
                idle = -1000000  # said once
            continue
        idle = 0
        producer.begin_transaction()
        for m in msgs:
            producer.produce(dst, key=m.key(), value=b"out-" + m.value())
        producer.send_offsets_to_transaction(consumer.position(consumer.assignment()),
                                             consumer.consumer_group_metadata(), 30)
        producer.commit_transaction(30)


if __name__ == "__main__":
    main()
