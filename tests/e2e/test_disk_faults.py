"""Disk faults, as Kafka's users know them: a full log dir (a small tmpfs the test mounts) makes
produce fail with KAFKA_STORAGE_ERROR and a clear log line while reads go on, nothing on disk is
damaged, and writes resume when space returns. With several log.dirs, partitions spread over
them, and a log dir that cannot be used is taken offline while the others keep serving."""

import glob
import logging
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from broker import Broker, BrokerTestCase, sluice_binary

try:
    import kafka
    from kafka import KafkaConsumer, TopicPartition
    import confluent_kafka
except ImportError:  # pragma: no cover - reported as a skip
    kafka = None

WAIT_S = 30
SEGMENT_BYTES = 1 << 20
logging.getLogger("kafka").setLevel(logging.CRITICAL)
if kafka is None:
    print("E2E-SKIP: python3-kafka or python3-confluent-kafka is not installed")


class StorageError(Exception):
    pass


class SyncProducer:
    """confluent-kafka with no retries, one record at a time: each send returns its offset or
    raises StorageError for KAFKA_STORAGE_ERROR (kafka-python 2.0.2 does not know code 56)."""

    def __init__(self, bootstrap):
        self.p = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "acks": 1,
                                           "retries": 0, "linger.ms": 0,
                                           "message.timeout.ms": WAIT_S * 1000})

    def send(self, topic, key, value, partition=0):
        out = {}
        self.p.produce(topic, key=key, value=value, partition=partition,
                       on_delivery=lambda err, msg: out.update(err=err, msg=msg))
        self.p.flush(WAIT_S)
        if "err" not in out:
            raise AssertionError("no delivery report within %ds" % WAIT_S)
        if out["err"] is not None:
            if out["err"].code() == confluent_kafka.KafkaError.KAFKA_STORAGE_ERROR:
                raise StorageError(str(out["err"]))
            raise AssertionError("produce failed: %s" % out["err"])
        return out["msg"].offset()

    def close(self):
        self.p.flush(WAIT_S)


def mount_tmpfs(size_mib):
    """A private tmpfs of `size_mib` MiB, or None when this machine does not allow mounting."""
    path = tempfile.mkdtemp(prefix="sluice-fulldisk-")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dm" % size_mib, "tmpfs", path],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if r.returncode != 0:
        os.rmdir(path)
        return None
    return path


def umount(path):
    subprocess.run(["umount", "-l", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    shutil.rmtree(path, ignore_errors=True)


def fill(path, leave_bytes):
    """A filler file taking all the free space of `path`'s filesystem but `leave_bytes`."""
    st = os.statvfs(path)
    free = st.f_bavail * st.f_frsize
    filler = os.path.join(path, "filler")
    with open(filler, "wb") as f:
        os.posix_fallocate(f.fileno(), 0, max(free - leave_bytes, 1))
    return filler


class Clients:
    def __init__(self, broker):
        self.broker = broker

    def producer(self):
        return SyncProducer(self.broker.bootstrap)

    def read(self, topic, partition, expect, timeout=WAIT_S):
        c = KafkaConsumer(bootstrap_servers=self.broker.bootstrap, group_id=None,
                          enable_auto_commit=False, fetch_max_wait_ms=100,
                          request_timeout_ms=WAIT_S * 1000 + 1000)
        try:
            tp = TopicPartition(topic, partition)
            c.assign([tp])
            c.seek_to_beginning(tp)
            out = []
            deadline = time.monotonic() + timeout
            while len(out) < expect and time.monotonic() < deadline:
                for msgs in c.poll(timeout_ms=200, max_records=5000).values():
                    out.extend(msgs)
            # Nothing beyond what is expected.
            for msgs in c.poll(timeout_ms=500).values():
                out.extend(msgs)
            return out
        finally:
            c.close()


@unittest.skipIf(kafka is None, "python3-kafka is not installed")
class FullDiskTest(unittest.TestCase):
    def setUp(self):
        self.mnt = mount_tmpfs(24)
        if self.mnt is None:
            print("E2E-SKIP: cannot mount a tmpfs here (needs root)")
            self.skipTest("cannot mount a tmpfs")
        self.broker = Broker(num_partitions=1, log_dirs=self.mnt, log_segment_bytes=SEGMENT_BYTES)
        self.clients = Clients(self.broker)

    def tearDown(self):
        self.broker.close()
        umount(self.mnt)

    def test_full_disk_refuses_produce_serves_reads_and_recovers(self):
        topic = "full"
        p = self.clients.producer()
        value = b"x" * 8000
        acked = []

        def send(i):
            acked.append((p.send(topic, b"%d" % i, value), i))

        for i in range(20):
            send(i)
        filler = fill(self.mnt, 2 * SEGMENT_BYTES)
        errors = 0
        i = 20
        while errors == 0 and i < 2000:
            try:
                send(i)
            except StorageError:
                errors += 1
            i += 1
        self.assertEqual(errors, 1, "the full disk never refused a produce")
        # Still refused while full, and the broker says why in its log.
        with self.assertRaises(StorageError):
            send(i)
        self.assertIn("is full; appends are refused (KAFKA_STORAGE_ERROR)", self.broker.log_text())
        # Reads go on: every acknowledged record, once, in offset order.
        got = self.clients.read(topic, 0, len(acked))
        self.assertEqual([(m.offset, int(m.key)) for m in got], acked)

        # Space returns: produce resumes right after the last acknowledged offset.
        os.unlink(filler)
        last = acked[-1][0]
        for j in range(i + 1, i + 31):
            send(j)
        p.close()
        del p
        self.assertEqual(acked[-30][0], last + 1, "an offset was skipped or reused")
        got = self.clients.read(topic, 0, len(acked))
        self.assertEqual([(m.offset, int(m.key)) for m in got], acked)

        # Nothing on disk was damaged: a restart recovers every record, dump-log verifies.
        self.broker.restart(hard=True)
        got = Clients(self.broker).read(topic, 0, len(acked))
        self.assertEqual([(m.offset, int(m.key)) for m in got], acked)
        verify = subprocess.run([sluice_binary(), "dump-log", "--verify",
                                 os.path.join(self.mnt, "full-0")],
                                capture_output=True, text=True, timeout=60)
        self.assertEqual(verify.returncode, 0, verify.stdout[-2000:] + verify.stderr[-2000:])


@unittest.skipIf(kafka is None, "python3-kafka is not installed")
class LogDirsTest(unittest.TestCase):
    """log.dirs with three directories (JBOD)."""

    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="sluice-jbod-")
        self.dirs = [os.path.join(self.root, n) for n in ("a", "b", "c")]
        self.broker = Broker(num_partitions=6, log_dirs=",".join(self.dirs),
                             log_segment_bytes=SEGMENT_BYTES)
        self.clients = Clients(self.broker)

    def tearDown(self):
        self.broker.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def where(self, topic):
        """{partition: dir index} from the partition directories on disk."""
        out = {}
        for i, d in enumerate(self.dirs):
            for path in glob.glob(os.path.join(d, topic + "-*")):
                out[int(path.rsplit("-", 1)[1])] = i
        return out

    def fill_topic(self, topic, partitions, n, tag=b""):
        p = self.clients.producer()
        for part in range(partitions):
            for i in range(n):
                p.send(topic, b"%s%d-%d" % (tag, part, i), b"v", partition=part)
        p.close()

    def test_partitions_spread_and_an_unusable_dir_goes_offline_while_the_others_serve(self):
        self.fill_topic("spread", 6, 10)
        placed = self.where("spread")
        self.assertEqual(sorted(placed), list(range(6)))
        self.assertEqual(sorted(placed.values()), [0, 0, 1, 1, 2, 2],
                         "partitions should spread evenly over the log dirs")
        on_b = [p for p, d in placed.items() if d == 1]
        elsewhere = [p for p, d in placed.items() if d != 1]

        # The disk behind dir b is gone: a plain file stands where the directory was.
        self.broker.stop()
        os.rename(self.dirs[1], self.dirs[1] + ".away")
        open(self.dirs[1], "w").close()
        self.broker.start()
        self.assertIn("log dir %s is offline" % self.dirs[1], self.broker.log_text())
        p = SyncProducer(self.broker.bootstrap)
        for part in on_b:
            with self.assertRaises(StorageError):
                p.send("spread", b"x", b"v", partition=part)
        for part in elsewhere:
            p.send("spread", b"new", b"v", partition=part)
            got = self.clients.read("spread", part, 11)
            self.assertEqual(len(got), 11)
        # A new topic goes to the online dirs only.
        self.fill_topic("fresh", 6, 1)
        self.assertEqual(set(self.where("fresh").values()), {0, 2})
        self.assertEqual(len(self.where("fresh")), 6)
        del p

        # The disk comes back: every partition serves again, nothing lost.
        self.broker.stop()
        os.unlink(self.dirs[1])
        os.rename(self.dirs[1] + ".away", self.dirs[1])
        self.broker.start()
        for part in range(6):
            got = self.clients.read("spread", part, 11 if part in elsewhere else 10)
            self.assertEqual(len(got), 11 if part in elsewhere else 10, "partition %d" % part)

    def test_an_io_error_takes_its_whole_dir_offline_and_the_others_keep_serving(self):
        self.fill_topic("io", 6, 2)
        placed = self.where("io")
        on_b = [p for p, d in placed.items() if d == 1]
        elsewhere = [p for p, d in placed.items() if d != 1]
        self.assertEqual(len(on_b), 2)
        # The directory's contents vanish under the running broker (a disk that failed);
        # the next segment roll of a partition there cannot create its file.
        for path in glob.glob(os.path.join(self.dirs[1], "*")):
            shutil.rmtree(path, ignore_errors=True)
        p = SyncProducer(self.broker.bootstrap)
        big = b"z" * (100 * 1024)
        failed = False
        for _ in range(40):
            try:
                p.send("io", b"k", big, partition=on_b[0])
            except StorageError:
                failed = True
                break
        self.assertTrue(failed, "no I/O error surfaced")
        deadline = time.monotonic() + 10
        while "log dir %s is offline" % self.dirs[1] not in self.broker.log_text():
            self.assertLess(time.monotonic(), deadline, "the dir was not taken offline")
            time.sleep(0.1)
        # The other partition in that dir is offline too, though its own files were open.
        with self.assertRaises(StorageError):
            p.send("io", b"k", b"v", partition=on_b[1])
        for part in elsewhere:
            p.send("io", b"k", b"v", partition=part)
            self.assertEqual(len(self.clients.read("io", part, 3)), 3)
        del p
        self.assertIsNone(self.broker.proc.poll(), "the broker must keep running")


if __name__ == "__main__":
    unittest.main()
