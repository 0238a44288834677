"""Go's sarama ConsumerGroup against Sluice's group coordinator: builds sarama_group/ (GOPATH
mode, Debian's gocode tree) and runs it against a fresh broker. What the program checks is
described in sarama_group/main.go."""

import os
import shutil
import subprocess
import tempfile
import unittest

from broker import BrokerTestCase

HERE = os.path.dirname(os.path.abspath(__file__))
GOPATH = "/usr/share/gocode"
SARAMA_SRC = os.path.join(GOPATH, "src/github.com/Shopify/sarama")
GO = shutil.which("go")

if GO is None or not os.path.isdir(SARAMA_SRC):
    print("E2E-SKIP: needs go (golang-go) and %s (golang-github-shopify-sarama-dev)" % SARAMA_SRC)


@unittest.skipIf(GO is None or not os.path.isdir(SARAMA_SRC), "go or sarama is not installed")
class SaramaGroupTest(BrokerTestCase):
    broker_config = {"group_initial_rebalance_delay_ms": 0}

    @classmethod
    def setUpClass(cls):
        work = os.environ.get("E2E_WORK_DIR")
        cls._tmp = None
        if not work:
            cls._tmp = work = tempfile.mkdtemp(prefix="sluice-sarama-group-")
        cls.binary = os.path.join(work, "sarama_group_e2e")
        env = dict(os.environ, GO111MODULE="off", GOPATH=GOPATH, CGO_ENABLED="0",
                   GOCACHE=os.path.join(work, "gocache"), GOFLAGS="")
        r = subprocess.run([GO, "build", "-o", cls.binary, "."],
                           cwd=os.path.join(HERE, "sarama_group"), env=env, capture_output=True,
                           timeout=240)
        if r.returncode != 0:
            raise AssertionError("go build failed:\n" + r.stderr.decode(errors="replace"))
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            if cls._tmp:
                shutil.rmtree(cls._tmp, ignore_errors=True)

    def test_consumer_group_splits_consumes_and_resumes_from_commits(self):
        r = subprocess.run([self.binary, "-broker", self.broker.bootstrap], capture_output=True,
                           timeout=180)
        out = r.stdout.decode(errors="replace")
        self.assertEqual(r.returncode, 0, out + r.stderr.decode(errors="replace"))
        self.assertIn("OK group of 2 consumed 300 records", out)
        self.assertBrokerAlive()


if __name__ == "__main__":
    unittest.main()
