"""kafkajs (Node.js) transactions against Sluice: a transactional producer
(`transactionalId`, `idempotent: true`, `maxInFlightRequests: 1`) commits a transaction, aborts
one and commits another, each with `txn.sendOffsets()` for a consumer group; a second
incarnation of a transactional id fences the first, whose open transaction is aborted.

Each test runs kafkajs/txn.js (one scenario per run, a JSON spec on stdin, one "RESULT <json>"
line back) and checks here what the client saw: kafkajs consumers with read_committed (its
default, `readUncommitted: false`) see committed records exactly once and aborted ones never,
read_uncommitted sees them all, the group's committed offsets are those of committed
transactions only, and a consumer of the group resumes from them. Where Debian's
python3-confluent-kafka is installed, a librdkafka consumer checks the same once more.
kafkajs is the version pinned in kafkajs/package.json, installed by ci/install-deps.sh with
`npm ci` into kafkajs/node_modules (not committed). Without node or that install the file prints
E2E-SKIP."""

import json
import os
import shutil
import subprocess
import time
import unittest

from broker import BrokerTestCase

try:
    import confluent_kafka as ck
except ImportError:  # pragma: no cover - the cross-check is left out
    ck = None

HERE = os.path.dirname(os.path.abspath(__file__))
HARNESS = os.path.join(HERE, "kafkajs")
DRIVER = os.path.join(HARNESS, "txn.js")
KAFKAJS = os.path.join(HARNESS, "node_modules", "kafkajs", "package.json")
NODE = shutil.which("node")
RUN_TIMEOUT_S = 90

if NODE is None or not os.path.isfile(KAFKAJS):
    # The whole file cannot run; ctest turns this marker into "skipped".
    print("E2E-SKIP: needs node (nodejs) and kafkajs in %s (ci/install-deps.sh runs `npm ci` "
          "there; it is skipped when the npm registry cannot be reached)" % HARNESS)


def hexs(s):
    return s.encode().hex()


def record(partition, value, key=None):
    return {"partition": partition, "key": None if key is None else hexs(key),
            "value": hexs(value)}


def by_partition(records):
    """{partition: [(offset, value as text), ...]} in arrival order."""
    out = {}
    for r in records:
        out.setdefault(r["partition"], []).append((r["offset"], bytes.fromhex(r["value"]).decode()))
    return out


def offsets_map(rows):
    return {row["partition"]: row["offset"] for row in rows}


@unittest.skipIf(NODE is None or not os.path.isfile(KAFKAJS),
                 "node or kafkajs is not installed (ci/install-deps.sh)")
class KafkaJsTransactionsTest(BrokerTestCase):
    broker_config = {"group_initial_rebalance_delay_ms": 0}

    def drive(self, scenario, spec, timeout=RUN_TIMEOUT_S):
        """Runs one txn.js scenario and returns its RESULT; fails with the driver's output and
        the broker's log tail when it does not produce one."""
        spec = dict(spec, timeout_ms=(timeout - 10) * 1000)
        r = subprocess.run([NODE, DRIVER, scenario, self.broker.bootstrap],
                           input=json.dumps(spec).encode(), capture_output=True, timeout=timeout,
                           cwd=HARNESS)
        out = r.stdout.decode(errors="replace")
        if os.environ.get("KAFKAJS_LOG"):
            print("--- kafkajs %s stderr:\n%s" % (scenario, r.stderr.decode(errors="replace")))
        for line in out.splitlines():
            if line.startswith("RESULT ") and r.returncode == 0:
                return json.loads(line[len("RESULT "):])
        self.fail("kafkajs %s failed (exit %d):\n%s\nstderr:\n%s\nbroker log:\n%s"
                  % (scenario, r.returncode, out, r.stderr.decode(errors="replace")[-6000:],
                     self.broker.log_tail()))

    # The librdkafka cross-check ---------------------------------------------------------------

    def confluent_read(self, topic, partitions, isolation, expect, wait_s=15):
        """{partition: [(offset, value)]} read from the start of each partition (assigned, no
        group), until `expect` records arrived and a second more passed."""
        c = ck.Consumer({"bootstrap.servers": self.broker.bootstrap, "group.id": "e2e-check",
                         "enable.auto.commit": False, "isolation.level": isolation})
        try:
            c.assign([ck.TopicPartition(topic, p, ck.OFFSET_BEGINNING)
                      for p in range(partitions)])
            out = {}
            count = 0
            deadline = time.time() + wait_s
            done_at = None
            while time.time() < deadline and (done_at is None or time.time() < done_at):
                for m in c.consume(num_messages=500, timeout=0.2):
                    if m.error() is None:
                        out.setdefault(m.partition(), []).append((m.offset(),
                                                                  m.value().decode()))
                        count += 1
                if count >= expect and done_at is None:
                    done_at = time.time() + 1.0
            return out
        finally:
            c.close()

    def confluent_committed(self, group, topic, partitions):
        c = ck.Consumer({"bootstrap.servers": self.broker.bootstrap, "group.id": group,
                         "enable.auto.commit": False})
        try:
            got = c.committed([ck.TopicPartition(topic, p) for p in range(partitions)],
                              timeout=10)
            return {tp.partition: tp.offset for tp in got}
        finally:
            c.close()

    # Tests -------------------------------------------------------------------------------------

    def test_committed_once_aborted_never_offsets_only_with_commit(self):
        src = self.unique_topic("kjs-src")
        dst = self.unique_topic("kjs-dst")
        group = "kjs-txn-group-%d" % os.getpid()
        partitions = 2
        inputs = [record(p, "in-%d-%d" % (p, i)) for p in range(partitions) for i in range(10)]
        transactions = [
            ("commit", "c1", 6, {0: 3, 1: 5}),
            ("abort", "ab", 6, {0: 9, 1: 10}),
            # Only partition 0: partition 1 keeps what the first transaction committed.
            ("commit", "c2", 4, {0: 6}),
        ]
        spec = {"src": src, "dst": dst, "partitions": partitions, "group": group,
                "txn_id": "kjs-txn-" + dst, "input": inputs, "transactions": []}
        # What dst must hold: each transaction's records in each partition, then its marker.
        next_offset = {p: 0 for p in range(partitions)}
        starts = []          # per transaction: {partition: first offset}
        committed = {p: [] for p in range(partitions)}
        everything = {p: [] for p in range(partitions)}
        for end, prefix, n, offsets in transactions:
            recs = [record(i % partitions, "%s-%d" % (prefix, i), key="k%d" % i)
                    for i in range(n)]
            spec["transactions"].append({"end": end, "records": recs, "offsets": [
                {"partition": p, "offset": o} for p, o in offsets.items()]})
            starts.append(dict(next_offset))
            for i in range(n):
                p = i % partitions
                row = (next_offset[p], "%s-%d" % (prefix, i))
                next_offset[p] += 1
                everything[p].append(row)
                if end == "commit":
                    committed[p].append(row)
            for p in range(partitions):
                next_offset[p] += 1  # the commit or abort marker
        spec["expect_committed"] = sum(len(v) for v in committed.values())
        spec["expect_all"] = sum(len(v) for v in everything.values())
        group_offsets = {0: 6, 1: 5}
        spec["expect_resumed"] = sum(10 - o for o in group_offsets.values())

        r = self.drive("txn", spec)

        # Every transaction's records were accepted, where they had to go.
        self.assertEqual(len(r["steps"]), len(transactions))
        for step, (end, _, _, _), start in zip(r["steps"], transactions, starts):
            self.assertEqual(step["end"], end)
            self.assertEqual((step["active_before_end"], step["active_after_end"]), (True, False))
            self.assertEqual(step["sent"], [{"partition": p, "errorCode": 0,
                                             "baseOffset": start[p]} for p in range(partitions)])
        # The group's offsets, fetched after each transaction ended: the first commit's, still
        # those after the abort (never 9 and 10), then the third's for partition 0.
        self.assertEqual([offsets_map(s["committed"]) for s in r["steps"]],
                         [{0: 3, 1: 5}, {0: 3, 1: 5}, {0: 6, 1: 5}])
        self.assertEqual(offsets_map(r["committed_at_end"]), group_offsets)
        # Records and markers: three transactions of 3 + 3 + 2 records per partition.
        self.assertEqual(r["dst_offsets"], [{"partition": p, "low": 0, "high": next_offset[p],
                                             "offset": next_offset[p]}
                                            for p in range(partitions)])
        self.assertEqual(next_offset, {0: 11, 1: 11})

        # read_committed: the committed records exactly once, in offset order; nothing aborted.
        self.assertEqual(by_partition(r["read_committed"]), committed)
        self.assertFalse([x for x in r["read_committed"]
                          if bytes.fromhex(x["value"]).startswith(b"ab-")])
        # read_uncommitted: the aborted ones too (they are in the log), markers never.
        self.assertEqual(by_partition(r["read_uncommitted"]), everything)

        # A consumer of the group starts where the committed transactions left it (fromBeginning
        # is true: without committed offsets it would start at 0).
        self.assertEqual(by_partition(r["resumed"]),
                         {p: [(i, "in-%d-%d" % (p, i)) for i in range(o, 10)]
                          for p, o in group_offsets.items()})

        if ck is not None:
            # The same seen by librdkafka.
            self.assertEqual(self.confluent_read(dst, partitions, "read_committed",
                                                 spec["expect_committed"]), committed)
            self.assertEqual(self.confluent_read(dst, partitions, "read_uncommitted",
                                                 spec["expect_all"]), everything)
            self.assertEqual(self.confluent_committed(group, src, partitions), group_offsets)
        self.assertBrokerAlive()

    def test_new_incarnation_fences_and_aborts_the_open_transaction(self):
        topic = self.unique_topic("kjs-fence")

        def recs(prefix, n):
            return [record(0, "%s-%d" % (prefix, i)) for i in range(n)]

        spec = {"topic": topic, "group": "kjs-fence-%d" % os.getpid(),
                "txn_id": "kjs-fence-" + topic, "before": recs("before", 3),
                "open": recs("open", 4), "behind": recs("behind", 2), "fresh": recs("fresh", 5)}
        r = self.drive("fence", spec)

        before = [(i, "before-%d" % i) for i in range(3)]
        opened = [(3 + i, "open-%d" % i) for i in range(4)]
        behind = [(7 + i, "behind-%d" % i) for i in range(2)]
        # 9 is the marker that aborted the open transaction.
        fresh = [(10 + i, "fresh-%d" % i) for i in range(5)]

        self.assertEqual(r["open_sent"], [{"partition": 0, "errorCode": 0, "baseOffset": 3}])
        # While the transaction is open, ListOffsets (READ_COMMITTED, as kafkajs's admin asks)
        # answers the last stable offset, where it begins, though the log goes on to 9; and a
        # read_committed consumer sees only what precedes it.
        self.assertEqual(r["offsets_while_open"],
                         [{"partition": 0, "low": 0, "high": 3, "offset": 3}])
        self.assertEqual(by_partition(r["read_committed_while_open"]), {0: before})

        # The first incarnation is fenced: its commit fails with the old epoch.
        self.assertFalse(r["old_commit"]["ok"], r["old_commit"])
        self.assertIn(r["old_commit"]["type"], ("INVALID_PRODUCER_EPOCH", "PRODUCER_FENCED"),
                      r["old_commit"])

        self.assertEqual(r["fresh_sent"], [{"partition": 0, "errorCode": 0, "baseOffset": 10}])
        self.assertEqual(r["offsets_at_end"],
                         [{"partition": 0, "low": 0, "high": 16, "offset": 16}])
        self.assertEqual(by_partition(r["read_committed"]), {0: before + behind + fresh})
        self.assertEqual(by_partition(r["read_uncommitted"]),
                         {0: before + opened + behind + fresh})

        if ck is not None:
            self.assertEqual(self.confluent_read(topic, 1, "read_committed", 10),
                             {0: before + behind + fresh})
        self.assertBrokerAlive()


if __name__ == "__main__":
    unittest.main()
