"""`sluice dump-log` on segments the broker wrote: every batch listed with its offsets, codec
and a valid CRC; --records decodes keys, values and headers; the offset index is listed in
order; --verify passes on the clean copy and, on copies corrupted by the test (a flipped byte
inside a batch, a torn tail), names the problem and exits 1. The broker's files are never
touched: the corruption is done on copies."""

import glob
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from broker import Broker, sluice_binary

KCAT = shutil.which("kcat")
if KCAT is None:
    print("E2E-SKIP: needs kcat")


def dump(*args):
    return subprocess.run([sluice_binary(), "dump-log"] + list(args), capture_output=True, text=True,
                          timeout=60)


class DumpLogTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if KCAT is None:
            raise unittest.SkipTest("kcat")
        cls.b = Broker(num_partitions=1, **{"log.index.interval.bytes": "4096"})
        # 3 gzip batches with keys and a header, then 200 uncompressed records of 100 bytes
        # (enough bytes for offset index entries).
        for i in range(3):
            r = subprocess.run([KCAT, "-P", "-b", cls.b.bootstrap, "-t", "dumped", "-z", "gzip", "-K:",
                                "-H", "trace=id-%d" % i],
                               input=("k%d:value-%d%s\n" % (i, i, "." * 200)).encode(),
                               capture_output=True, timeout=30)
            assert r.returncode == 0, r.stderr
        for i in range(4):
            r = subprocess.run([KCAT, "-P", "-b", cls.b.bootstrap, "-t", "dumped", "-z", "none"],
                               input=("\n".join("x" * 100 for _ in range(50)) + "\n").encode(),
                               capture_output=True, timeout=30)
            assert r.returncode == 0, r.stderr
        cls.b.stop()
        cls.dir = os.path.join(cls.b.data_dir, "data", "dumped-0")
        cls.segment = sorted(glob.glob(os.path.join(cls.dir, "*.log")))[0]
        cls.tmp = tempfile.mkdtemp(prefix="sluice-dump-")

    @classmethod
    def tearDownClass(cls):
        cls.b.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_batches_of_a_segment(self):
        r = dump(self.segment)
        self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
        batches = re.findall(r"^baseOffset: (\d+) lastOffset: (\d+) count: (\d+) .* compresscodec: (\w+) "
                             r"crc: \d+ isvalid: (\w+)$", r.stdout, re.M)
        self.assertEqual([b[3] for b in batches[:3]], ["gzip"] * 3)
        self.assertTrue(all(b[4] == "true" for b in batches))
        self.assertEqual(sum(int(b[2]) for b in batches), 3 + 200)
        # Offsets follow each other with no gap.
        for prev, cur in zip(batches, batches[1:]):
            self.assertEqual(int(cur[0]), int(prev[1]) + 1)
        self.assertRegex(r.stdout, r"end of (data|file) at position \d+")

    def test_records_decoded(self):
        r = dump("--records", self.segment)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"\| offset: 0 CreateTime: \d+ keySize: 2 valueSize: 207 headers: "
                                   r"\[trace=id-0\] key: k0 payload: value-0\.+\.\.\.\(207 bytes\)")
        self.assertRegex(r.stdout, r"\| offset: 2 .* key: k2 payload: value-2\.")
        self.assertEqual(len(re.findall(r"^  \| offset: ", r.stdout, re.M)), 203)

    def test_directory_and_index(self):
        r = dump(self.dir)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Dumping %s" % self.segment, r.stdout)
        index = re.findall(r"^offset: (\d+) position: (\d+)$", r.stdout, re.M)
        self.assertTrue(index, "no offset index entries:\n" + r.stdout[-2000:])
        positions = [int(p) for _, p in index]
        self.assertEqual(positions, sorted(positions))
        v = dump("--verify", self.dir)
        self.assertEqual(v.returncode, 0, v.stdout)
        self.assertRegex(v.stdout, r"verified \d+ file\(s\), \d+ batch\(es\), 203 record\(s\): 0 problem\(s\)")

    def test_verify_finds_corruption_and_torn_tails(self):
        with open(self.segment, "rb") as f:
            data = f.read()
        end = re.search(r"end of (?:data|file) at position (\d+)", dump(self.segment).stdout)
        used = int(end.group(1))
        flipped = os.path.join(self.tmp, "00000000000000000000.log")
        bad = bytearray(data[:used])
        bad[80] ^= 0xFF  # inside the first batch's records
        with open(flipped, "wb") as f:
            f.write(bad)
        v = dump("--verify", flipped)
        self.assertEqual(v.returncode, 1, v.stdout)
        self.assertIn("batch at offset 0 (position 0) fails its CRC", v.stdout)
        torn = os.path.join(self.tmp, "torn", "00000000000000000000.log")
        os.makedirs(os.path.dirname(torn))
        with open(torn, "wb") as f:
            f.write(data[:used - 30])
        v = dump("--verify", torn)
        self.assertEqual(v.returncode, 1, v.stdout)
        self.assertIn("runs past the end of the file", v.stdout)
        # The broker's own copy is untouched and still verifies.
        self.assertEqual(dump("--verify", self.segment).returncode, 0)

    def test_bad_arguments(self):
        self.assertEqual(dump().returncode, 2)
        r = dump("/nonexistent/segment.log")
        self.assertEqual(r.returncode, 1)
        self.assertIn("does not exist", r.stderr)


if __name__ == "__main__":
    unittest.main()
