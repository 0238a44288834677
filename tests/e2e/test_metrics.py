"""The metrics endpoint scraped by a real Prometheus (Debian's `prometheus`, started here on
loopback with a private data directory): the target is up with no parse error, the per-topic
byte counter and the Produce request counter move by what kcat produced, the latency histogram
and the per-core reactor series are there, and /healthz, /readyz and an unknown path answer as documented."""

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request

from broker import Broker, free_port

PROMETHEUS = shutil.which("prometheus")
KCAT = shutil.which("kcat")
if PROMETHEUS is None or KCAT is None:
    print("E2E-SKIP: needs prometheus and kcat (ci/install-deps.sh)")


def http_get(url, timeout=5):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, ""  # not listening yet


class MetricsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if PROMETHEUS is None or KCAT is None:
            raise unittest.SkipTest("prometheus and kcat")
        cls.metrics_port = free_port()
        cls.b = Broker(num_partitions=1,
                       **{"sluice.metrics.listener": "127.0.0.1:%d" % cls.metrics_port})
        cls.dir = tempfile.mkdtemp(prefix="sluice-prom-")
        cfg = os.path.join(cls.dir, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "scrape_configs:\n  - job_name: sluice\n    static_configs:\n"
                    "      - targets: ['127.0.0.1:%d']\n" % cls.metrics_port)
        cls.prom_port = free_port()
        cls.prom_log = open(os.path.join(cls.dir, "prometheus.log"), "wb")
        cls.prom = subprocess.Popen(
            [PROMETHEUS, "--config.file=" + cfg, "--storage.tsdb.path=" + os.path.join(cls.dir, "data"),
             "--web.listen-address=127.0.0.1:%d" % cls.prom_port],
            stdout=cls.prom_log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    @classmethod
    def tearDownClass(cls):
        cls.prom.terminate()
        try:
            cls.prom.wait(20)
        except subprocess.TimeoutExpired:
            cls.prom.kill()
        cls.prom_log.close()
        cls.b.close()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def query(self, expr):
        status, body = http_get("http://127.0.0.1:%d/api/v1/query?query=%s"
                                % (self.prom_port, urllib.request.quote(expr)))
        if status != 200:
            return None
        result = json.loads(body)["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    def wait_value(self, expr, predicate, timeout=30):
        deadline = time.monotonic() + timeout
        v = None
        while time.monotonic() < deadline:
            v = self.query(expr)
            if v is not None and predicate(v):
                return v
            time.sleep(0.5)
        raise AssertionError("%s never satisfied the condition (last %s)" % (expr, v))

    def produce(self, topic, values):
        r = subprocess.run([KCAT, "-P", "-b", self.b.bootstrap, "-t", topic, "-X", "linger.ms=0"],
                           input=("\n".join(values) + "\n").encode(), capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_prometheus_scrapes_and_counters_move(self):
        self.wait_value('up{job="sluice"}', lambda v: v == 1)
        status, body = http_get("http://127.0.0.1:%d/api/v1/targets" % self.prom_port)
        self.assertEqual(status, 200)
        target = json.loads(body)["data"]["activeTargets"][0]
        self.assertEqual(target["health"], "up", target)
        self.assertEqual(target["lastError"], "")
        self.produce("metered", ["a" * 100] * 10)
        first = self.wait_value('sluice_topic_bytes_in_total{topic="metered"}', lambda v: v > 1000)
        produces = self.wait_value('sluice_requests_total{api="Produce"}', lambda v: v >= 1)
        self.produce("metered", ["b" * 100] * 10)
        second = self.wait_value('sluice_topic_bytes_in_total{topic="metered"}', lambda v: v > first)
        # Each batch carries 10 records of 100 bytes plus framing: the counter moved by one batch.
        self.assertGreater(second - first, 1000)
        self.assertLess(second - first, 1400)
        self.wait_value('sluice_requests_total{api="Produce"}', lambda v: v > produces)
        size = self.wait_value('sluice_log_size_bytes{topic="metered"}', lambda v: v >= second)
        self.assertEqual(size, second)  # everything produced is in the segment, nothing else
        self.wait_value('sluice_request_latency_seconds_count{api="Produce"}', lambda v: v >= 2)
        self.assertEqual(self.query('sluice_log_segments{topic="metered"}'), 1)
        # The reactors report their io_uring traffic and how busy they are.
        self.wait_value('sum(sluice_uring_completions_total)', lambda v: v > 0)
        busy = self.wait_value('max(sluice_reactor_busy_ratio)', lambda v: v >= 0)
        self.assertLessEqual(busy, 1.0)
        self.assertEqual(self.query('count(sluice_reactor_busy_ratio)'), 2)  # sluice.cores=2

    def test_consumer_group_lag(self):
        self.produce("lagged", ["r%d" % i for i in range(20)])
        r = subprocess.run([KCAT, "-b", self.b.bootstrap, "-G", "lag-group", "-X", "auto.offset.reset=earliest",
                            "-e", "-q", "lagged"], capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(r.stdout.split()), 20)
        self.wait_value('sluice_group_lag{group="lag-group"}', lambda v: v == 0)
        self.produce("lagged", ["s%d" % i for i in range(10)])
        self.wait_value('sluice_group_lag{group="lag-group"}', lambda v: v == 10)

    def test_allocator_statistics(self):
        status, body = http_get("http://127.0.0.1:%d/metrics" % self.metrics_port)
        self.assertEqual(status, 200)
        info = [l for l in body.splitlines() if l.startswith("sluice_allocator_info{")]
        self.assertEqual(len(info), 1, info)
        if os.path.exists("/usr/include/jemalloc/jemalloc.h"):  # built with it (ci/install-deps.sh)
            self.assertIn('allocator="jemalloc 5', info[0])
            self.assertIn("allocator jemalloc", self.b.log_text())
            allocated = self.wait_value("sluice_allocator_allocated_bytes", lambda v: v > 0)
            resident = self.query("sluice_allocator_resident_bytes")
            self.assertGreaterEqual(resident, allocated)

    def test_connections_per_core_and_memory_budget(self):
        # Two idle connections open: the per-core gauges add up to the broker's count.
        socks = [socket.create_connection(("127.0.0.1", self.b.port)) for _ in range(2)]
        try:
            deadline = time.monotonic() + 20
            while True:
                status, body = http_get("http://127.0.0.1:%d/metrics" % self.metrics_port)
                per_core = [int(v) for v in re.findall(r'^sluice_core_connections\{core="\d+"\} (\d+)$', body, re.M)]
                total = re.search(r"^sluice_connections (\d+)$", body, re.M)
                if len(per_core) == 2 and total and sum(per_core) == int(total.group(1)) >= 2:
                    break
                self.assertLess(time.monotonic(), deadline, body[-2000:])
                time.sleep(0.2)
        finally:
            for s in socks:
                s.close()
        # The default budget: a quarter of RAM split over the two cores.
        budgets = [int(v) for v in re.findall(r'^sluice_memory_budget_bytes\{core="\d+"\} (\d+)$', body, re.M)]
        ram = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        self.assertEqual(budgets, [ram // 4 // 2] * 2)
        for name in ("held_bytes", "held_peak_bytes", "waits_total", "waiting_connections"):
            self.assertEqual(len(re.findall(r'^sluice_memory_%s\{core="\d+"\} \d+$' % name, body, re.M)), 2, name)

    def test_health_and_readiness(self):
        base = "http://127.0.0.1:%d" % self.metrics_port
        self.assertEqual(http_get(base + "/healthz"), (200, "ok\n"))
        self.assertEqual(http_get(base + "/readyz"), (200, "ready\n"))
        self.assertEqual(http_get(base + "/nope")[0], 404)
        status, body = http_get(base + "/metrics")
        self.assertEqual(status, 200)
        self.assertIn("# TYPE sluice_requests_total counter", body)


if __name__ == "__main__":
    unittest.main()
