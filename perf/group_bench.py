#!/usr/bin/python3
"""Consumer-group benchmarks against a running broker, with librdkafka (confluent-kafka):

  rebalance: time from N members subscribing (all at once) until every member holds an
             assignment, and time for the survivors to settle after one member leaves.
  commits:   synchronous OffsetCommits per second from one member, each committing every
             partition of a many-partition topic.

Reproduce (broker with no initial rebalance delay, so the number is the protocol's own time):
  sluice serve --listeners=PLAINTEXT://127.0.0.1:9092 --log.dirs=/tmp/gb \\
      --group.initial.rebalance.delay.ms=0 &
  /usr/bin/python3 perf/group_bench.py --bootstrap 127.0.0.1:9092 --members 10 100 \\
      --commit-partitions 64 --commit-seconds 10
"""

import argparse
import time
import uuid

import confluent_kafka as ck
import confluent_kafka.admin


def create(bootstrap, topic, partitions):
    a = ck.admin.AdminClient({"bootstrap.servers": bootstrap})
    a.create_topics([ck.admin.NewTopic(topic, partitions, 1)])[topic].result(30)


def rebalance(bootstrap, members):
    topic = "gb-" + uuid.uuid4().hex[:8]
    create(bootstrap, topic, members)
    conf = {"bootstrap.servers": bootstrap, "group.id": topic, "session.timeout.ms": 30000,
            "heartbeat.interval.ms": 300}
    cs = [ck.Consumer(conf) for _ in range(members)]
    start = time.monotonic()
    for c in cs:
        c.subscribe([topic])
    while not all(c.assignment() for c in cs):
        for c in cs:
            c.poll(0)
        time.sleep(0.01)
    joined = time.monotonic() - start
    cs[0].close()
    start = time.monotonic()
    rest = cs[1:]
    while sum(len(c.assignment()) for c in rest) != members or not all(c.assignment() for c in rest):
        for c in rest:
            c.poll(0)
        time.sleep(0.01)
    left = time.monotonic() - start
    for c in rest:
        c.close()
    return joined, left


def commits(bootstrap, partitions, seconds):
    topic = "gbc-" + uuid.uuid4().hex[:8]
    create(bootstrap, topic, partitions)
    c = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": topic})
    n = 0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        n += 1
        c.commit(offsets=[ck.TopicPartition(topic, p, n) for p in range(partitions)],
                 asynchronous=False)
    elapsed = time.monotonic() - start
    c.close()
    return n / elapsed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", default="127.0.0.1:9092")
    ap.add_argument("--members", type=int, nargs="*", default=[10, 100])
    ap.add_argument("--commit-partitions", type=int, default=64)
    ap.add_argument("--commit-seconds", type=float, default=10)
    a = ap.parse_args()
    for m in a.members:
        joined, left = rebalance(a.bootstrap, m)
        print("rebalance members=%d: all assigned after %.3f s; after one leaves %.3f s"
              % (m, joined, left))
    rate = commits(a.bootstrap, a.commit_partitions, a.commit_seconds)
    print("commits: %.0f OffsetCommit/s (%d partitions each, %.0f partition offsets/s)"
          % (rate, a.commit_partitions, rate * a.commit_partitions))


if __name__ == "__main__":
    main()
