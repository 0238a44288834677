"""kafkajs (Node.js) against Sluice: the admin client, producers with acks -1/1/0, keys,
headers, timestamps and gzip, the idempotent producer, consumer groups (two members sharing a
topic, a third resuming from their commits), fromBeginning true/false and seek.

Each test runs kafkajs/driver.js (one scenario per run, a JSON spec on stdin, one "RESULT
<json>" line back) and checks what the client saw here. kafkajs is the exact version pinned in
kafkajs/package.json and package-lock.json, installed by ci/install-deps.sh with `npm ci` into
kafkajs/node_modules (not committed). Without node or that install the file prints E2E-SKIP."""

import json
import os
import random
import shutil
import socket
import subprocess
import unittest

from broker import BrokerTestCase, read_response, request_frame

HERE = os.path.dirname(os.path.abspath(__file__))
HARNESS = os.path.join(HERE, "kafkajs")
DRIVER = os.path.join(HARNESS, "driver.js")
KAFKAJS = os.path.join(HARNESS, "node_modules", "kafkajs", "package.json")
NODE = shutil.which("node")
RUN_TIMEOUT_S = 120

if NODE is None or not os.path.isfile(KAFKAJS):
    # The whole file cannot run; ctest turns this marker into "skipped".
    print("E2E-SKIP: needs node (nodejs) and kafkajs in %s (ci/install-deps.sh runs `npm ci` "
          "there; it is skipped when the npm registry cannot be reached)" % HARNESS)

GZIP = 1  # record batch attributes & 7


def murmur2(data):
    """Kafka's murmur2 (the Java client's, which kafkajs's DefaultPartitioner ports)."""
    m, r = 0x5BD1E995, 24
    h = (0x9747B28C ^ len(data)) & 0xFFFFFFFF
    whole = len(data) & ~3
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    rest = len(data) - whole
    if rest == 3:
        h ^= data[whole + 2] << 16
    if rest >= 2:
        h ^= data[whole + 1] << 8
    if rest >= 1:
        h ^= data[whole]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h


def key_partition(key_hex, partitions):
    return (murmur2(bytes.fromhex(key_hex)) & 0x7FFFFFFF) % partitions


def grouped_headers(pairs):
    """Headers as kafkajs hands them over: an object keyed by name, so repeated names come
    together (in their order) at the place of the name's first appearance."""
    names = []
    for name, _ in pairs:
        if name not in names:
            names.append(name)
    return [[name, v] for name in names for n, v in pairs if n == name]


def hexs(b):
    return None if b is None else b.hex()


class KafkaJsCase(BrokerTestCase):
    """Runs driver scenarios against this class's broker (no tests of its own)."""

    broker_config = {"group_initial_rebalance_delay_ms": 0}
    bootstrap_host = "127.0.0.1"
    driver_options = {}

    def drive(self, scenario, spec, timeout=RUN_TIMEOUT_S):
        """Runs one driver scenario and returns its RESULT; fails with the driver's output and
        the broker's log tail when it does not produce one."""
        spec = dict(spec, timeout_ms=(timeout - 10) * 1000, **self.driver_options)
        bootstrap = "%s:%d" % (self.bootstrap_host, self.broker.port)
        r = subprocess.run([NODE, DRIVER, scenario, bootstrap],
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

    def create(self, topic, partitions, **configs):
        created = self.drive("create", {"topics": [{"topic": topic, "partitions": partitions,
                                                     "configs": configs}]})
        self.assertTrue(created, "createTopics answered false for a new topic")

    def read_all(self, topic, count, **extra):
        spec = {"topic": topic, "group": "reader-%s-%d" % (topic, random.getrandbits(32)),
                "count": count}
        spec.update(extra)
        return self.drive("consume", spec)


@unittest.skipIf(NODE is None or not os.path.isfile(KAFKAJS),
                 "node or kafkajs is not installed (ci/install-deps.sh)")
class KafkaJsTest(KafkaJsCase):
    # Admin ----------------------------------------------------------------------------------

    def test_admin_topic_lifecycle(self):
        topic = self.unique_topic("kjs")
        r = self.drive("admin", {
            "topic": topic, "partitions": 3, "partitions_after": 5,
            "configs": {"cleanup.policy": "compact", "retention.ms": "3600000",
                        "max.message.bytes": "200000"},
            "altered_configs": {"retention.ms": "7200000"},
        })
        self.assertIs(r["created"], True)
        self.assertIs(r["created_again"], False)
        self.assertTrue(r["listed_after_create"])

        node = r["cluster"]["brokers"][0]["nodeId"]
        self.assertEqual(len(r["cluster"]["brokers"]), 1)
        self.assertEqual(r["cluster"]["controller"], node)
        self.assertEqual(r["cluster"]["brokers"][0]["port"], self.broker.port)

        def check_metadata(metadata, count):
            self.assertEqual([t["name"] for t in metadata], [topic])
            parts = metadata[0]["partitions"]
            self.assertEqual([p["partition"] for p in parts], list(range(count)))
            for p in parts:
                self.assertEqual((p["leader"], p["replicas"], p["isr"], p["errorCode"]),
                                 (node, [node], [node], 0))

        check_metadata(r["metadata"], 3)
        check_metadata(r["metadata_after_grow"], 5)

        configs = r["configs"]
        self.assertEqual((configs["errorCode"], configs["resourceName"]), (0, topic))
        for name, value in (("cleanup.policy", "compact"), ("retention.ms", "3600000"),
                            ("max.message.bytes", "200000")):
            self.assertEqual(configs["entries"][name]["value"], value, name)
            self.assertFalse(configs["entries"][name]["isDefault"], name)
        self.assertTrue(configs["entries"]["segment.bytes"]["isDefault"])

        # AlterConfigs (not incremental) replaces the whole set: what it does not name goes
        # back to its default.
        after = r["configs_after_alter"]["entries"]
        self.assertEqual(after["retention.ms"]["value"], "7200000")
        self.assertFalse(after["retention.ms"]["isDefault"])
        self.assertEqual(after["cleanup.policy"]["value"], "delete")
        self.assertTrue(after["cleanup.policy"]["isDefault"])

        self.assertEqual(r["offsets"], [{"partition": p, "low": 0, "high": 0} for p in range(5)])
        self.assertFalse(r["listed_after_delete"])
        self.assertBrokerAlive()

    # Producer -------------------------------------------------------------------------------

    def test_produce_acks_keys_headers_gzip_read_back(self):
        topic = self.unique_topic("kjs")
        partitions = 3
        self.create(topic, partitions)
        rng = random.Random(7)
        sends = []
        n = 0
        for acks in (-1, 1, 0):
            for compression in ("none", "gzip"):
                records = []
                for i in range(40):
                    n += 1
                    rec = {"value": hexs(b"v%d-%s-" % (n, compression.encode())
                                         + bytes(rng.getrandbits(8) for _ in range(i * 7)))}
                    if i % 4 == 0:
                        # No key: the partition is given.
                        rec["key"] = None
                        rec["partition"] = i % partitions
                    else:
                        rec["key"] = hexs(b"key-%d" % (i % 9))
                    if i % 3 == 0:
                        rec["headers"] = [["trace", hexs(b"t-%d" % n)],
                                          ["bin", hexs(bytes([0, 255, n % 256]))],
                                          ["trace", hexs(b"again")], ["empty", ""]]
                    if i % 10 == 5:
                        rec["value"] = None  # a tombstone
                    if i % 7 == 1:
                        rec["timestamp"] = 1_600_000_000_000 + n
                    if i == 6:
                        rec["key"], rec["value"] = "", ""  # empty, not null
                    records.append(rec)
                # One large record per send: a 300 KiB value (compressible, then random).
                n += 1
                big = (b"sluice" * 25000) if compression == "gzip" else \
                    bytes(rng.getrandbits(8) for _ in range(300 * 1024))
                records.append({"key": hexs(b"big-%d" % n), "value": hexs(big)})
                sends.append({"acks": acks, "compression": compression, "records": records})

        metadata = self.drive("produce", {"topic": topic, "sends": sends})
        self.assertEqual(len(metadata), len(sends))

        # What each partition must hold, in produce order, and where each send must start.
        expected = {p: [] for p in range(partitions)}
        for send, answer in zip(sends, metadata):
            starts = {}
            for rec in send["records"]:
                p = rec.get("partition")
                if p is None:
                    p = key_partition(rec["key"], partitions)
                starts.setdefault(p, len(expected[p]))
                expected[p].append(rec)
            if send["acks"] == 0:
                self.assertEqual(answer, [], "acks=0 has no answer")
                continue
            self.assertEqual(sorted((m["partition"], m["errorCode"], m["baseOffset"])
                                    for m in answer),
                             sorted((p, 0, off) for p, off in starts.items()),
                             "acks=%d %s" % (send["acks"], send["compression"]))

        total = sum(len(s["records"]) for s in sends)
        got = self.read_all(topic, total, wait_ms=60000)
        self.check_read_back(got, expected, partitions)
        # Again with fetch limits far below one batch: each fetch still returns a whole batch.
        got = self.read_all(topic, total, wait_ms=60000, max_bytes=1024)
        self.check_read_back(got, expected, partitions)

        # gzip sends are stored as gzip batches, the others uncompressed.
        codecs = set()
        for p in range(partitions):
            codecs.update(self.broker.stored_batch_codecs(topic, p))
        self.assertEqual(codecs, {0, GZIP})
        self.assertBrokerAlive()

    def check_read_back(self, got, expected, partitions):
        total = sum(len(records) for records in expected.values())
        self.assertEqual(len(got), total, "records read back")
        by_partition = {p: [] for p in range(partitions)}
        for rec in got:
            by_partition[rec["partition"]].append(rec)
        for p in range(partitions):
            offsets = [rec["offset"] for rec in by_partition[p]]
            self.assertEqual(offsets, list(range(len(expected[p]))),
                             "partition %d: offsets in arrival order" % p)
            for want, have in zip(expected[p], by_partition[p]):
                where = "partition %d offset %d" % (p, have["offset"])
                self.assertEqual(have["key"], want["key"], where)
                self.assertEqual(have["value"], want["value"], where)
                self.assertEqual(have["headers"], grouped_headers(want.get("headers", [])), where)
                if "timestamp" in want:
                    self.assertEqual(have["timestamp"], want["timestamp"], where)

    def test_idempotent_producer_no_duplicates(self):
        for in_flight in (1, 5):
            topic = self.unique_topic("kjs-idem%d" % in_flight)
            self.create(topic, 2)
            sends = [{"acks": -1, "compression": "gzip" if s % 2 else "none",
                      "records": [{"key": hexs(b"k%d" % (s * 10 + i)),
                                   "value": hexs(b"send-%d-record-%d" % (s, i))}
                                  for i in range(25)]}
                     for s in range(12)]
            metadata = self.drive("produce", {"topic": topic, "sends": sends, "idempotent": True,
                                              "max_in_flight": in_flight, "concurrent": True})
            for answer in metadata:
                self.assertTrue(all(m["errorCode"] == 0 for m in answer), answer)
            total = 12 * 25
            got = self.read_all(topic, total)
            values = [bytes.fromhex(rec["value"]) for rec in got]
            self.assertEqual(len(values), total, "maxInFlightRequests=%d" % in_flight)
            self.assertEqual(sorted(values), sorted(bytes.fromhex(r["value"])
                                                   for s in sends for r in s["records"]))
            for p in (0, 1):
                offsets = [rec["offset"] for rec in got if rec["partition"] == p]
                self.assertEqual(offsets, list(range(len(offsets))))
            # Within one send, records of one partition keep their order.
            for s in range(12):
                for p in (0, 1):
                    seq = [v for v, rec in zip(values, got)
                           if rec["partition"] == p and v.startswith(b"send-%d-" % s)]
                    idx = [int(v.rsplit(b"-", 1)[1]) for v in seq]
                    self.assertEqual(idx, sorted(idx))
        self.assertBrokerAlive()

    # Consumers ------------------------------------------------------------------------------

    def test_consumer_group_shares_partitions_and_resumes_from_commits(self):
        topic = self.unique_topic("kjs")
        self.create(topic, 4)
        first = [{"key": hexs(b"k%d" % i), "value": hexs(b"first-%d" % i)} for i in range(400)]
        second = [{"key": hexs(b"k%d" % i), "value": hexs(b"second-%d" % i)} for i in range(100)]
        group = "kjs-group-%d" % os.getpid()
        r = self.drive("group", {"topic": topic, "group": group, "partitions": 4,
                                 "first": first, "second": second}, timeout=180)
        a, b, c = r["members"]["a"], r["members"]["b"], r["members"]["c"]
        self.assertTrue(a["assignment"] and b["assignment"], (a["assignment"], b["assignment"]))
        self.assertFalse(set(a["assignment"]) & set(b["assignment"]))
        self.assertEqual(sorted(a["assignment"] + b["assignment"]), [0, 1, 2, 3])
        for m in (a, b):
            self.assertTrue({rec["partition"] for rec in m["records"]} <= set(m["assignment"]))

        # Together they read every first-round record exactly once.
        seen = sorted(bytes.fromhex(rec["value"]) for rec in a["records"] + b["records"])
        self.assertEqual(seen, sorted(bytes.fromhex(x["value"]) for x in first))

        # The described group had both members, the committed offsets are the log ends.
        self.assertEqual(r["described"]["state"], "Stable")
        self.assertEqual(r["described"]["protocolType"], "consumer")
        described = sorted(r["described"]["members"], key=lambda m: m["assignment"][topic])
        self.assertEqual([m["assignment"][topic] for m in described],
                         sorted([a["assignment"], b["assignment"]]))
        for m in described:
            self.assertEqual(m["clientId"], "sluice-e2e-kafkajs-group")
            self.assertEqual(m["clientHost"], "/127.0.0.1")
            self.assertEqual(m["subscription"], [topic])
        per_partition = {p: 0 for p in range(4)}
        for x in first:
            per_partition[key_partition(x["key"], 4)] += 1
        self.assertEqual(r["committed"], [{"partition": p, "offset": per_partition[p]}
                                          for p in range(4)])
        self.assertIn(group, [g["groupId"] for g in r["groups"]])

        # The third member resumes from those offsets: only the second round.
        self.assertEqual(c["assignment"], [0, 1, 2, 3])
        self.assertEqual(sorted(bytes.fromhex(rec["value"]) for rec in c["records"]),
                         sorted(bytes.fromhex(x["value"]) for x in second))
        self.assertEqual(r["deleted"], [{"groupId": group, "errorCode": 0}])
        self.assertBrokerAlive()

    def test_offsets_by_timestamp_commit_metadata_and_out_of_range_reset(self):
        topic = self.unique_topic("kjs")
        self.create(topic, 1)
        records = [{"key": None, "value": hexs(b"t%d" % i), "partition": 0,
                    "timestamp": 1_000_000 + 1000 * i} for i in range(10)]
        r = self.drive("offsets", {
            "topic": topic, "group": "kjs-offsets-%d" % os.getpid(), "records": records,
            "timestamps": [1_000_000, 1_004_500, 1_009_000, 2_000_000],
            "commit_at": 3, "commit_metadata": "checkpoint-3", "delete_before": 6})
        # The first record at or after each timestamp; none after the last, which kafkajs
        # turns (from Kafka's -1) into the log end.
        self.assertEqual(r["by_timestamp"], {
            "1000000": [{"partition": 0, "offset": 0}],
            "1004500": [{"partition": 0, "offset": 5}],
            "1009000": [{"partition": 0, "offset": 9}],
            "2000000": [{"partition": 0, "offset": 10}]})
        self.assertEqual(r["committed"],
                         [{"partition": 0, "offset": 3, "metadata": "checkpoint-3"}])
        self.assertEqual(r["after_delete"], [{"partition": 0, "low": 6, "high": 10}])
        # Offset 3 is gone: OFFSET_OUT_OF_RANGE, and kafkajs (fromBeginning) restarts at 6.
        self.assertEqual(r["resumed"], [6, 7, 8, 9])
        self.assertBrokerAlive()

    def test_from_beginning_true_and_false(self):
        topic = self.unique_topic("kjs")
        self.create(topic, 2)
        old = [{"key": hexs(b"old%d" % i), "value": hexs(b"old-%d" % i)} for i in range(30)]
        self.drive("produce", {"topic": topic, "sends": [{"acks": -1, "records": old}]})
        new = [{"key": hexs(b"new%d" % i), "value": hexs(b"new-%d" % i)} for i in range(10)]
        got = self.drive("latest", {"topic": topic, "group": "kjs-latest-%d" % os.getpid(),
                                    "records": new})
        self.assertEqual(sorted(rec["value"] for rec in got), sorted(x["value"] for x in new))

        got = self.read_all(topic, 40)
        self.assertEqual(sorted(rec["value"] for rec in got),
                         sorted(x["value"] for x in old + new))
        self.assertBrokerAlive()

    def test_seek(self):
        topic = self.unique_topic("kjs")
        self.create(topic, 1)
        records = [{"key": None, "value": hexs(b"r%d" % i), "partition": 0} for i in range(30)]
        self.drive("produce", {"topic": topic, "sends": [{"acks": 1, "records": records[:15]},
                                                         {"acks": 1, "compression": "gzip",
                                                          "records": records[15:]}]})
        got = self.read_all(topic, 20,
                            seeks_before=[{"topic": topic, "partition": 0, "offset": "10"}],
                            seek_after={"topic": topic, "partition": 0, "offset": "17"},
                            count_after=13)
        offsets = [rec["offset"] for rec in got]
        # From 10 to the end, then from 17 (inside the gzip batch) to the end again.
        self.assertEqual(offsets, list(range(10, 30)) + list(range(17, 30)))
        for rec in got:
            self.assertEqual(rec["value"], hexs(b"r%d" % rec["offset"]))
        self.assertBrokerAlive()


@unittest.skipIf(NODE is None or not os.path.isfile(KAFKAJS),
                 "node or kafkajs is not installed (ci/install-deps.sh)")
class KafkaJsLocalhostIpv6Test(KafkaJsCase):
    """A broker with Kafka's default kind of listener, `PLAINTEXT://:PORT` (every interface),
    reached the way kafkajs on Node.js 18 reaches "localhost" where /etc/hosts lists ::1 first
    (Debian's default): over IPv6 only. Kafka's JVM binds that listener dual-stack; so must we."""

    broker_config = {"group_initial_rebalance_delay_ms": 0, "listeners": "PLAINTEXT://:0",
                     "advertised_listeners": "PLAINTEXT://localhost:0"}
    bootstrap_host = "localhost"
    driver_options = {"localhost_ipv6": True}

    def test_raw_ipv4_and_ipv6_clients(self):
        for host in ("127.0.0.1", "::1"):
            with socket.create_connection((host, self.broker.port), timeout=5) as s:
                s.sendall(request_frame(18, 0, 1, b""))
                corr, body = read_response(s)
                self.assertEqual((corr, body[:2]), (1, b"\0\0"), host)

    def test_produce_and_consume_over_ipv6(self):
        topic = self.unique_topic("kjs6")
        self.create(topic, 2)
        records = [{"key": hexs(b"k%d" % i), "value": hexs(b"v%d" % i)} for i in range(50)]
        answer = self.drive("produce", {"topic": topic,
                                        "sends": [{"acks": -1, "records": records}]})
        self.assertTrue(all(m["errorCode"] == 0 for m in answer[0]), answer)
        got = self.read_all(topic, 50)
        self.assertEqual(sorted(rec["value"] for rec in got), sorted(r["value"] for r in records))
        self.assertBrokerAlive()


if __name__ == "__main__":
    unittest.main()
