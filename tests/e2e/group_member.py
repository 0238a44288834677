"""One consumer-group member in its own process, so a test can SIGKILL it like a crash.

Run: group_member.py <client> <bootstrap> <group> <topic> [key=value ...]
  client: confluent | kafka-python
  options: instance=<group.instance.id>  assignor=<partition.assignment.strategy>
           session_ms=<session.timeout.ms>  reset=earliest|latest
It prints one line per event on stdout (flushed at once):
  ASSIGN <comma-separated partitions>   the whole current assignment, after every change
  REC <partition> <offset> <value>      a record, printed ("processed") before its commit
  COMMITTED                             after every synchronous commit
Records are committed after processing (at-least-once): nothing printed is ever un-processed.
"""

import sys


def emit(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def run_confluent(bootstrap, group, topic, opts):
    import confluent_kafka as ck

    conf = {"bootstrap.servers": bootstrap, "group.id": group,
            "auto.offset.reset": opts.get("reset", "earliest"), "enable.auto.commit": False,
            "session.timeout.ms": int(opts.get("session_ms", 6000)),
            "heartbeat.interval.ms": 500, "topic.metadata.refresh.interval.ms": 2000}
    if "instance" in opts:
        conf["group.instance.id"] = opts["instance"]
    if "assignor" in opts:
        conf["partition.assignment.strategy"] = opts["assignor"]
    c = ck.Consumer(conf)
    cooperative = opts.get("assignor") == "cooperative-sticky"

    def show():
        emit("ASSIGN " + ",".join(str(p) for p in sorted(tp.partition for tp in c.assignment())))

    def on_assign(consumer, parts):
        if cooperative:
            consumer.incremental_assign(parts)
        else:
            consumer.assign(parts)
        show()

    def on_revoke(consumer, parts):
        if cooperative:
            consumer.incremental_unassign(parts)
        else:
            consumer.unassign()
        show()

    c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_revoke)
    while True:
        msgs = c.consume(100, 0.2)
        good = [m for m in msgs if m.error() is None]
        for m in good:
            emit("REC %d %d %s" % (m.partition(), m.offset(), m.value().decode()))
        if good:
            try:
                c.commit(asynchronous=False)
                emit("COMMITTED")
            except ck.KafkaException as e:
                emit("COMMIT-FAILED %s" % e)


def run_kafka_python(bootstrap, group, topic, opts):
    import kafka

    kw = {}
    if "instance" in opts:
        kw["group_instance_id"] = opts["instance"]
    c = kafka.KafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                            auto_offset_reset=opts.get("reset", "earliest"),
                            enable_auto_commit=False,
                            session_timeout_ms=int(opts.get("session_ms", 6000)),
                            heartbeat_interval_ms=500, metadata_max_age_ms=2000, **kw)

    class listener(kafka.ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked):
            emit("ASSIGN ")

        def on_partitions_assigned(self, assigned):
            emit("ASSIGN " + ",".join(str(p) for p in sorted(tp.partition for tp in assigned)))

    c.subscribe([topic], listener=listener())
    while True:
        batches = c.poll(timeout_ms=200)
        n = 0
        for tp, msgs in batches.items():
            for m in msgs:
                emit("REC %d %d %s" % (tp.partition, m.offset, m.value.decode()))
                n += 1
        if n:
            try:
                c.commit()
                emit("COMMITTED")
            except Exception as e:  # noqa: BLE001 - a rebalance; the records come again
                emit("COMMIT-FAILED %s" % e)


def main():
    client, bootstrap, group, topic = sys.argv[1:5]
    opts = dict(a.split("=", 1) for a in sys.argv[5:])
    {"confluent": run_confluent, "kafka-python": run_kafka_python}[client](
        bootstrap, group, topic, opts)


if __name__ == "__main__":
    main()
