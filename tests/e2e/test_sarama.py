"""Go's sarama (Debian's golang-github-shopify-sarama-dev) against Sluice: builds the small
program in sarama/ with `go build` (GOPATH mode, Debian's gocode tree) and runs it against a
fresh broker. The program's own checks are described in sarama/main.go."""

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
BUILD_TIMEOUT_S = 240
RUN_TIMEOUT_S = 120

if GO is None or not os.path.isdir(SARAMA_SRC):
    # The whole file cannot run; ctest turns this marker into "skipped".
    print("E2E-SKIP: needs go (golang-go) and %s (golang-github-shopify-sarama-dev)" % SARAMA_SRC)


@unittest.skipIf(GO is None, "go is not installed (golang-go)")
@unittest.skipIf(not os.path.isdir(SARAMA_SRC), "sarama is not installed "
                 "(golang-github-shopify-sarama-dev)")
class SaramaTest(BrokerTestCase):
    @classmethod
    def setUpClass(cls):
        # Build before starting the broker: on a busy machine the build is the slow part.
        # The build cache lives in the build tree when ctest says where that is, else in a
        # temporary directory removed afterwards.
        work = os.environ.get("E2E_WORK_DIR")
        cls._tmp = None
        if not work:
            cls._tmp = work = tempfile.mkdtemp(prefix="sluice-sarama-")
        cls.binary = os.path.join(work, "sarama_e2e")
        env = dict(os.environ, GO111MODULE="off", GOPATH=GOPATH, CGO_ENABLED="0",
                   GOCACHE=os.path.join(work, "gocache"), GOFLAGS="")
        r = subprocess.run([GO, "build", "-o", cls.binary, "."], cwd=os.path.join(HERE, "sarama"),
                           env=env, capture_output=True, timeout=BUILD_TIMEOUT_S)
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

    def test_sync_producer_and_partition_consumer(self):
        r = subprocess.run([self.binary, "-broker", self.broker.bootstrap, "-topic", "sarama",
                            "-n", "200"], capture_output=True, timeout=RUN_TIMEOUT_S)
        out = r.stdout.decode(errors="replace")
        self.assertEqual(r.returncode, 0, out + r.stderr.decode(errors="replace"))
        self.assertIn("OK produced and consumed 800 records", out)


if __name__ == "__main__":
    unittest.main()
