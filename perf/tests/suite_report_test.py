#!/usr/bin/python3
"""The benchmark suite's report (perf/suite.py), drawn from a small fixed summary: no broker, no
measuring, a second or two. It pins what a reader of report.html relies on: every chart is there
as inline SVG with its series named in its legend, a scenario without a side or with an error
draws no empty chart, the ids of the charts on one page do not collide, --render-only redraws a
report from summary.json, and a Python without matplotlib gets a message naming the package
while measuring (and perf/gate, which imports suite.py) still needs none.

Run by ctest (perf_suite_report) with Debian's /usr/bin/python3, the interpreter that sees
python3-matplotlib; without matplotlib it prints PERF-SKIP and counts as skipped.
"""

import copy
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import unittest
from unittest import mock

PERF = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, PERF)
import suite  # noqa: E402

CURVE = [[0, 0.3], [50, 1.2], [90, 2.5], [99, 6.0], [99.9, 12.0], [99.99, 20.0], [100, 30.0]]


def side(mib_s, p50_ms):
    return {"records": 100000, "mib_per_s": mib_s, "records_per_s": mib_s * 1000,
            "wire_bytes": 1 << 30, "seconds": 5.0, "requests": 500,
            "latency_ms": {"p50": p50_ms, "p99": 6.0, "p999": 12.0, "max": 30.0,
                           "percentiles": CURVE}}


def timeline(sides, seconds=5):
    points = []
    for t in range(1, seconds + 1):
        point = {"t": t + 0.1}
        for s in sides:
            point[s] = {"mib_s": 300.0 + 10 * t, "rec_s": 3e5, "p50_ms": 0.5 * t,
                        "p99_ms": 5.0 + t, "max_ms": 20.0}
        points.append(point)
    return points


SUMMARY = {
    "started": "2025-01-01T12:00:00", "commit": "abc1234", "duration_s": 5,
    "machine": {"cpus": 2, "cpu_model": "test CPU", "kernel": "6.1", "load_average": [0.5, 0, 0]},
    "broker": {"description": "Sluice started by the test", "address": None},
    "references": {"loopback": {"mib_per_s": 3000.0},
                   "disk_write": {"mib_per_s": 700.0, "page_cache_mib_per_s": 2000.0},
                   "fdatasync": {"p50_ms": 0.2, "p99_ms": 1.0, "per_s": 4000.0}},
    "scenarios": [
        {"name": "max-1k", "title": "1 KiB records, full speed", "what": "1 producer, 1 consumer",
         "result": {"settings": {"acks": 1}, "produce": side(400.0, 5.0),
                    "consume": side(398.0, 2.0), "timeline": timeline(("produce", "consume")),
                    "broker_cpu_per_wall": 1.1},
         "fractions": {"produce_vs_loopback": 0.13, "consume_vs_loopback": 0.13,
                       "produce_vs_disk_write": 0.57}},
        {"name": "acks-all-fsync", "title": "acks=all, fsync every batch", "what": "produce only",
         "result": {"settings": {"acks": -1}, "produce": side(180.0, 4.0),
                    "timeline": timeline(("produce",))},
         "fractions": {"produce_vs_loopback": 0.06}},
        {"name": "broken", "title": "a scenario that failed", "what": "nothing measured",
         "result": {"error": "sluice bench failed (1): connection refused"}, "fractions": {}},
    ],
    "micro": {},
}


def svgs(page):
    return re.findall(r"<svg\b.*?</svg>", page, re.S)


def texts(svg):
    """The strings a chart shows (svg.fonttype none keeps them as <text> elements)."""
    return set(re.findall(r"<text\b[^>]*>([^<]*)</text>", svg))


class ReportTest(unittest.TestCase):
    def setUp(self):
        self.page = suite.html_report(copy.deepcopy(SUMMARY))

    def test_every_chart_is_inline_svg_with_its_series_in_the_legend(self):
        charts = svgs(self.page)
        # 2 percentile charts + 2 timelines for each scenario that measured something.
        self.assertEqual(len(charts), 2 + 2 * 2)
        self.assertNotIn("<?xml", self.page)
        self.assertNotIn("<!DOCTYPE svg", self.page)
        produce_curves, fetch_curves, thr, lat = (texts(c) for c in charts[:4])
        self.assertIn("Produce latency by percentile", produce_curves)
        self.assertLessEqual({"max-1k", "acks-all-fsync", "99.9%", "max", "ms (log scale)"},
                             produce_curves)
        self.assertIn("max-1k", fetch_curves)
        self.assertNotIn("acks-all-fsync", fetch_curves)  # it has no consumer
        self.assertLessEqual({"Throughput per second", "produce MiB/s", "consume MiB/s",
                              "seconds", "MiB/s"}, thr)
        self.assertLessEqual({"Latency per second", "produce p50", "produce p99", "consume p50",
                              "consume p99"}, lat)
        self.assertNotIn("consume p50", texts(charts[5]))  # acks-all-fsync: produce only

    def test_a_chart_draws_its_points(self):
        # One polyline (path) per series with its markers: 5 seconds of 2 series.
        thr = svgs(self.page)[2]
        self.assertGreaterEqual(len(re.findall(r"<use\b", thr)), 2 * 5)

    def test_ids_of_the_charts_on_one_page_do_not_collide(self):
        ids = re.findall(r'\bid="([^"]+)"', self.page)
        duplicated = sorted({i for i in ids if ids.count(i) > 1})
        self.assertEqual(duplicated, [])

    def test_a_failed_scenario_shows_its_error_and_no_chart(self):
        self.assertIn("connection refused", self.page)
        after = self.page.split("broken: a scenario that failed")[-1]
        self.assertEqual(svgs(after), [])

    def test_a_chart_without_drawable_points_says_so(self):
        charts = suite.Charts()
        # On a log axis 0 and None cannot be drawn; the chart notes it instead of an empty frame.
        note = charts.chart([("p50", [(1, 0), (2, None)])], "Latency", "s", "ms", ylog=True)
        self.assertEqual(note, "<p><i>Latency: no data</i></p>")
        svg = charts.chart([("p50", [(1, 0), (2, 3.0), (3, 4.0)])], "Latency", "s", "ms",
                           ylog=True)
        self.assertTrue(svg.startswith("<svg"))
        self.assertIn("p50", texts(svg))

    def test_render_only_redraws_the_report_from_summary_json(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "summary.json")
            with open(path, "w") as f:
                json.dump(SUMMARY, f)
            with mock.patch("builtins.print"):
                self.assertEqual(suite.main(["--render-only", path]), 0)
                self.assertEqual(suite.main(["--render-only", path, "--out",
                                             os.path.join(tmp, "elsewhere")]), 0)
            for report in (os.path.join(tmp, "report.html"),
                           os.path.join(tmp, "elsewhere", "report.html")):
                with open(report) as f:
                    self.assertEqual(len(svgs(f.read())), 6)

    def test_without_matplotlib_the_error_names_the_package(self):
        with mock.patch.dict(sys.modules, {"matplotlib": None}):  # import raises ImportError
            with self.assertRaises(suite.ReportError) as caught:
                suite.html_report(copy.deepcopy(SUMMARY))
        self.assertIn("apt-get install python3-matplotlib", str(caught.exception))

    def test_importing_the_suite_does_not_import_matplotlib(self):
        # perf/gate imports suite.py and measures; neither may need matplotlib.
        code = ("import sys; sys.path.insert(0, sys.argv[1]); import suite; "
                "print('matplotlib' in sys.modules)")
        out = subprocess.run([sys.executable, "-c", code, PERF], capture_output=True, text=True,
                             check=True).stdout
        self.assertEqual(out.strip(), "False")


if __name__ == "__main__":
    if importlib.util.find_spec("matplotlib") is None:
        print(f"PERF-SKIP: {sys.executable} cannot import matplotlib "
              "(apt-get install python3-matplotlib)")
        sys.exit(0)
    unittest.main(verbosity=2)
