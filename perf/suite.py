#!/usr/bin/python3
"""Sluice benchmark suite: OpenMessaging-Benchmark-style scenarios against Sluice (started here
with a fresh data directory) or any Kafka-protocol broker (--broker host:port), the physical
references measured in the same run, and a report folder: summary.json for machines, report.html
(self-contained, charts drawn by matplotlib as inline SVG) for people.

    perf/suite.py --build BUILD_DIR [--out DIR] [--quick] [--broker HOST:PORT]
    perf/suite.py --render-only DIR/summary.json     # draw report.html again, measure nothing

Measuring needs the standard library only; drawing the report needs matplotlib (Debian's
python3-matplotlib, seen by /usr/bin/python3), imported only then. perf/gate imports the pieces
it shares from here (Broker, run_bench, the references). perf/README.md describes the scenarios
and the report.
"""

import argparse
import datetime
import html
import importlib.util
import io
import json
import math
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

MiB = 1 << 20
GiB = 1 << 30
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def parse_size(text):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(|k|ki|kib|m|mi|mib|g|gi|gib)b?", text.strip().lower())
    if not m:
        raise argparse.ArgumentTypeError(f"bad size '{text}'")
    mult = {"": 1, "k": 1 << 10, "m": MiB, "g": GiB}[m.group(2)[:1]]
    return int(float(m.group(1)) * mult)


def find_binary(build, name, subdir=""):
    path = os.path.join(build, subdir, name)
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"no {name} at {path} (build it: ninja -C {build} {name})")
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def git_commit(repo):
    try:
        out = subprocess.run(["git", "-C", repo, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", repo, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine_info():
    load = os.getloadavg()
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu_model": cpu, "kernel": os.uname().release,
            "load_average": [round(x, 2) for x in load]}


def check_not_tmpfs(path):
    try:
        out = subprocess.run(["stat", "-f", "-c", "%T", path], capture_output=True, text=True)
        if out.stdout.strip() == "tmpfs":
            raise RuntimeError(f"{path} is tmpfs; give --data-parent on a real disk")
    except OSError:
        pass


# ---------------------------------------------------------------------------------------------
# The broker under test

class Broker:
    """A `sluice serve` this process started: own port, own data directory, killed by pid."""

    def __init__(self, sluice, data_parent, extra_args=()):
        self.sluice = sluice
        self.dir = tempfile.mkdtemp(prefix="sluice-perf-", dir=data_parent)
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.extra_args = list(extra_args)
        self.proc = None

    def start(self):
        self.logf = open(os.path.join(self.dir, "broker.log"), "ab")
        cmd = [self.sluice, "serve", f"--listeners=PLAINTEXT://127.0.0.1:{self.port}",
               f"--log.dirs={self.dir}/data", "--num.partitions=1"] + self.extra_args
        self.proc = subprocess.Popen(cmd, stdout=self.logf, stderr=subprocess.STDOUT)
        for _ in range(200):
            if self.proc.poll() is not None:
                break
            r = subprocess.run([self.sluice, "topic", "list", "--bootstrap-server", self.bootstrap,
                                "--request-timeout-ms", "1000"], capture_output=True)
            if r.returncode == 0:
                return self
            time.sleep(0.1)
        self.stop()
        with open(os.path.join(self.dir, "broker.log"), errors="replace") as f:
            raise RuntimeError("broker did not start:\n" + f.read()[-4000:])

    def cpu_s(self):
        """utime + stime of the broker so far (all its threads, io_uring workers included)."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def user_cpu_s(self):
        """utime of the broker so far: CPU spent in user space, where a zero-copy fetch never
        touches the record bytes and a copying one copies every byte."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) / CLK_TCK

    def reactor_cpu_s(self):
        """utime + stime of the broker's own threads, without io_uring's kernel workers
        (iou-wrk-*, iou-sqp-*): the CPU of the event loops, the resource a core has one of.
        Those threads live as long as the broker, so differences between two reads are exact."""
        total = 0
        for task in os.listdir(f"/proc/{self.proc.pid}/task"):
            try:
                with open(f"/proc/{self.proc.pid}/task/{task}/comm") as f:
                    if f.read().startswith("iou-"):
                        continue
                with open(f"/proc/{self.proc.pid}/task/{task}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
            except OSError:
                continue  # a thread that just exited
        return total / CLK_TCK

    def evict_page_cache(self):
        """Writes back and drops this broker's segment files from the page cache (only ours)."""
        for root, _, files in os.walk(os.path.join(self.dir, "data")):
            for name in files:
                try:
                    fd = os.open(os.path.join(root, name), os.O_RDONLY)
                except OSError:
                    continue
                try:
                    os.fdatasync(fd)
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                except OSError:
                    pass
                finally:
                    os.close(fd)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def remove(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Running `sluice bench` with live progress

PROGRESS_RE = re.compile(r"^\[\s*([\d.]+)s(?:,\s*([\d.]+)s left)?\]")
SIDE_RE = re.compile(r"\|\s*(produce|consume)\s+([\d.]+) MiB/s\s+([\d.]+) rec/s"
                     r"(?: p50 ([\d.]+) p99 ([\d.]+) max ([\d.]+) ms)?")
LOOPBACK_RE = re.compile(r"^\[\s*([\d.]+)s\] loopback\s+([\d.]+) MiB/s")


def parse_progress(line):
    """One progress line of `sluice bench` -> {"t": s, "produce": {...}, "consume": {...}}."""
    m = PROGRESS_RE.match(line)
    if not m:
        m = LOOPBACK_RE.match(line)
        if m:
            return {"t": float(m.group(1)), "loopback": {"mib_s": float(m.group(2))}}
        return None
    point = {"t": float(m.group(1))}
    for s in SIDE_RE.finditer(line):
        side = {"mib_s": float(s.group(2)), "rec_s": float(s.group(3))}
        if s.group(4):
            side.update(p50_ms=float(s.group(4)), p99_ms=float(s.group(5)),
                        max_ms=float(s.group(6)))
        point[s.group(1)] = side
    return point


class BenchRun:
    """One `sluice bench` process; its progress lines become a timeline and live status."""

    def __init__(self, sluice, args, json_path, label, status=None):
        self.json_path = json_path
        self.label = label
        self.status = status
        self.timeline = []
        self.stderr_tail = []
        cmd = [sluice, "bench"] + [str(a) for a in args] + ["--json", json_path]
        self.cmd = cmd
        self.ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, bufsize=1)

    def pump(self):
        for line in self.proc.stderr:
            line = line.rstrip("\n")
            point = parse_progress(line)
            if point:
                self.timeline.append(point)
                if self.status:
                    self.status(self.label, line)
            else:
                self.stderr_tail = (self.stderr_tail + [line])[-20:]
                if line.strip():
                    log(f"  [{self.label}] {line}")

    def finish(self):
        self.pump()
        out = self.proc.stdout.read()
        rc = self.proc.wait()
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (ru1.ru_utime - self.ru0.ru_utime) + (ru1.ru_stime - self.ru0.ru_stime)
        if rc != 0:
            raise RuntimeError(f"{' '.join(self.cmd)} failed ({rc}):\n{out}\n" +
                               "\n".join(self.stderr_tail))
        with open(self.json_path) as f:
            result = json.load(f)
        result["timeline"] = self.timeline
        result["client_cpu_s"] = cpu
        return result


def run_bench(sluice, args, json_path, label="bench", status=None):
    return BenchRun(sluice, args, json_path, label, status).finish()


def run_parallel(runs):
    """Reads several BenchRuns' progress at once (threads), then finishes them."""
    import threading
    threads = [threading.Thread(target=r.pump) for r in runs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [r.finish() for r in runs]


# ---------------------------------------------------------------------------------------------
# Physical references, measured in the same run

def ref_loopback(sluice, out_dir, duration_s, status=None):
    r = run_bench(sluice, ["--reference", "loopback", "--duration-s", duration_s],
                  os.path.join(out_dir, "ref_loopback.json"), "loopback", status)
    gib = r["bytes"] / GiB
    r["cpu_s_per_gib"] = r["client_cpu_s"] / gib if gib else 0
    return r


def ref_disk_write(data_parent, total_bytes, block_bytes=MiB):
    """Sequential write of `total_bytes` in 1 MiB writes, then fdatasync: the disk's bandwidth."""
    path = tempfile.mktemp(prefix="sluice-perf-seqwrite-", dir=data_parent)
    block = os.urandom(block_bytes)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        t0 = time.monotonic()
        written = 0
        while written < total_bytes:
            written += os.write(fd, block)
        t_cache = time.monotonic() - t0
        os.fdatasync(fd)
        t = time.monotonic() - t0
    finally:
        os.close(fd)
        os.unlink(path)
    return {"bytes": written, "seconds": t, "mib_per_s": written / MiB / t,
            "page_cache_mib_per_s": written / MiB / t_cache if t_cache else 0}


def ref_fdatasync(data_parent, duration_s, count_max=2000):
    """4 KiB appends, each followed by fdatasync: the latency floor of acks=all + fsync always."""
    path = tempfile.mktemp(prefix="sluice-perf-fsync-", dir=data_parent)
    block = os.urandom(4096)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    lat = []
    try:
        end = time.monotonic() + duration_s
        while time.monotonic() < end and len(lat) < count_max:
            os.write(fd, block)
            t0 = time.perf_counter()
            os.fdatasync(fd)
            lat.append((time.perf_counter() - t0) * 1e3)
    finally:
        os.close(fd)
        os.unlink(path)
    lat.sort()
    pick = lambda p: lat[min(len(lat) - 1, int(p / 100 * len(lat)))]
    return {"count": len(lat), "p50_ms": pick(50), "p99_ms": pick(99), "max_ms": lat[-1],
            "mean_ms": statistics.fmean(lat), "per_s": 1e3 / statistics.fmean(lat)}


# ---------------------------------------------------------------------------------------------
# Scenarios (OpenMessaging Benchmark workloads, scaled to one machine)

def scenarios(opts):
    """name -> what to run. `args` are sluice bench options; every topic has 16 partitions."""
    common = ["--partitions", 16, "--record-size", 1024]
    both = ["--mode", "both"] + common
    rate = opts.rate
    # 16 KiB batches: a request every ~12 ms at 20k/s. The paced producer reads answers while it
    # waits for the next send time, so the default window (5 in flight) does not add the pacing
    # sleeps to a request's latency.
    paced = ["--rate", rate, "--batch-size", "16KiB"]
    return [
        {"name": "max-1k", "title": "1 KiB records, full speed",
         "what": "1 producer, 1 consumer reading all 16 partitions, acks=1",
         "args": both},
        {"name": "rate-1k", "title": f"1 KiB records at a fixed {rate:.0f} records/s",
         "what": "1 producer at a fixed rate (16 KiB batches), 1 consumer that is the one member "
                 "of a consumer group (sluice bench --group: JoinGroup/SyncGroup with the range "
                 "assignor, heartbeats, offsets committed every second and at the end); this is "
                 "the fan-out-to-1 case",
         "args": both + paced, "group": True},
        {"name": "max-100b", "title": "100-byte records, full speed",
         "what": "1 producer, 1 consumer, acks=1",
         "args": ["--mode", "both", "--partitions", 16, "--record-size", 100]},
        {"name": "acks-all-fsync", "title": "acks=all, fsync every batch",
         "what": "1 producer, 8 requests in flight, topic fsyncing every write "
                 "(Sluice: sluice.fsync=always; others: flush.messages=1)",
         "args": ["--mode", "produce"] + common + ["--acks", "all", "--in-flight", 8,
                                                  "--batch-size", "16KiB"],
         "fsync": True},
        {"name": "producers-4", "title": "4 producers, full speed",
         "what": "4 producer threads (4 connections), 1 consumer",
         "args": both + ["--producers", 4]},
        {"name": "fanout-4", "title": f"fan-out to 4 consumer groups at {rate:.0f} records/s",
         "what": "1 producer at a fixed rate; 4 consumer groups of one member each, every group "
                 "reading every partition and committing its offsets (sluice bench --group "
                 "--consumer-groups 4)",
         "args": both + paced + ["--consumer-groups", 4], "group": True},
        {"name": "catchup", "title": f"catch-up read of a {opts.backlog / GiB:.1f} GiB backlog "
                                     "while producers write",
         "what": "the topic is filled first; its files are then dropped from the page cache (when "
                 "the suite started the broker); one consumer reads the whole backlog from the "
                 f"earliest offset while a producer keeps writing at {rate:.0f} records/s for the "
                 "scenario's duration; the consume seconds are the catch-up time",
         "catchup": True},
    ]


def create_topic(sluice, bootstrap, topic, partitions, configs):
    cmd = [sluice, "topic", "create", topic, "--bootstrap-server", bootstrap,
           "--partitions", str(partitions)]
    for c in configs:
        cmd += ["--config", c]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"topic create {topic}: {r.stderr.strip()}")


def delete_topic(sluice, bootstrap, topic):
    subprocess.run([sluice, "topic", "delete", topic, "--bootstrap-server", bootstrap],
                   capture_output=True)


class Progress:
    """The live status line: scenario, elapsed/remaining of the whole suite, bench's last line."""

    def __init__(self, planned_s):
        self.t0 = time.monotonic()
        self.planned_s = planned_s
        self.scenario = ""

    def __call__(self, label, line):
        elapsed = time.monotonic() - self.t0
        left = max(0.0, self.planned_s - elapsed)
        log(f"[suite {elapsed:5.0f}s, ~{left:4.0f}s left] {self.scenario} {label}: {line}")


def run_scenario(sc, ctx):
    name = sc["name"]
    topic = f"perf-{name}-{ctx.stamp}"
    raw = os.path.join(ctx.out, "raw")
    bench_common = ["--bootstrap-server", ctx.bootstrap, "--topic", topic]
    cpu0 = ctx.broker.cpu_s() if ctx.broker else None
    t0 = time.monotonic()
    if sc.get("catchup"):
        result = run_catchup(sc, ctx, topic, bench_common)
    else:
        if sc.get("fsync"):
            create_topic(ctx.sluice, ctx.bootstrap, topic, 16, ctx.fsync_configs)
        # A group named after the scenario's topic: new, so it starts from the run's log end.
        group = ["--group", f"{topic}-group"] if sc.get("group") else []
        result = run_bench(ctx.sluice, bench_common + sc["args"] + group +
                           ["--duration-s", ctx.duration],
                           os.path.join(raw, f"{name}.json"), name, ctx.progress)
    wall = time.monotonic() - t0
    if ctx.broker:
        result["broker_cpu_s"] = ctx.broker.cpu_s() - cpu0
        result["broker_cpu_per_wall"] = result["broker_cpu_s"] / wall
    if not ctx.keep_topics:
        delete_topic(ctx.sluice, ctx.bootstrap, topic)
    return result


def run_catchup(sc, ctx, topic, bench_common):
    raw = os.path.join(ctx.out, "raw")
    log(f"  [catchup] filling {topic} with {ctx.backlog / GiB:.1f} GiB")
    records = ctx.backlog // 1034
    fill = run_bench(ctx.sluice, bench_common + ["--mode", "produce", "--partitions", 16,
                                                 "--record-size", 1024, "--records", records,
                                                 "--in-flight", 8],
                     os.path.join(raw, "catchup_fill.json"), "catchup fill", ctx.progress)
    if ctx.broker:
        ctx.broker.evict_page_cache()
    producer = BenchRun(ctx.sluice, bench_common + ["--mode", "produce", "--record-size", 1024,
                                                    "--rate", ctx.rate, "--batch-size", "16KiB",
                                                    "--duration-s", ctx.duration],
                        os.path.join(raw, "catchup_produce.json"), "catchup producer", ctx.progress)
    # The consumer reads the backlog once (--records) and stops: its seconds are the catch-up time.
    consumer = BenchRun(ctx.sluice, bench_common + ["--mode", "consume", "--record-size", 1024,
                                                    "--records", records],
                        os.path.join(raw, "catchup_consume.json"), "catchup consumer",
                        ctx.progress)
    prod, cons = run_parallel([producer, consumer])
    merged = {"settings": cons["settings"], "produce": prod["produce"], "consume": cons["consume"],
              "fill": fill["produce"], "client_cpu_s": prod["client_cpu_s"] + cons["client_cpu_s"]}
    # One timeline: the producer's and the consumer's points side by side, by second.
    by_t = {}
    for p in prod["timeline"]:
        by_t.setdefault(round(p["t"]), {"t": p["t"]})["produce"] = p.get("produce")
    for p in cons["timeline"]:
        by_t.setdefault(round(p["t"]), {"t": p["t"]})["consume"] = p.get("consume")
    merged["timeline"] = [v for _, v in sorted(by_t.items())]
    return merged


def fractions(result, refs):
    """Every throughput as a fraction of its physical limit; fsync latency as a multiple."""
    out = {}
    loop = refs["loopback"]["mib_per_s"]
    disk = refs["disk_write"]["mib_per_s"]
    for side in ("produce", "consume"):
        r = result.get(side)
        if not r:
            continue
        out[f"{side}_vs_loopback"] = r["mib_per_s"] / loop
        if side == "produce":
            out["produce_vs_disk_write"] = r["mib_per_s"] / disk
    prod = result.get("produce") or {}
    lat = prod.get("latency_ms") or {}
    if result.get("settings", {}).get("acks") == -1 and lat:
        out["produce_p50_vs_fdatasync_p50"] = lat["p50"] / refs["fdatasync"]["p50_ms"]
        out["requests_per_s_vs_fdatasync_per_s"] = (
            prod["requests"] / prod["seconds"] / refs["fdatasync"]["per_s"] if prod["seconds"] else 0)
    return out


# ---------------------------------------------------------------------------------------------
# The report page: one self-contained HTML file, its charts drawn by matplotlib as inline SVG

class ReportError(RuntimeError):
    """The report cannot be drawn by this Python (matplotlib missing). The measurements are not
    lost: summary.json is written first, and --render-only draws the report from it later."""


MATPLOTLIB_HINT = ("install it with `apt-get install python3-matplotlib` and run the suite with "
                   "Debian's /usr/bin/python3 (a python3 from pyenv or a venv does not see "
                   "Debian's packages)")

# Line styles and markers cycle with the colours, so series that lie on top of each other (a
# consumer keeping up with its producer draws the same MiB/s line) stay distinguishable.
LINE_STYLES = ["-", "--", "-.", ":"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]


class Charts:
    """Draws the report's charts, one matplotlib Figure each (no pyplot, so no global figure
    registry to leak into). Made per report; each chart gets its own SVG id salt, so the ids of
    the charts inlined in one page never collide. matplotlib is imported here, only when a
    report is drawn: measuring, and perf/gate (which imports this file), need only the standard
    library."""

    # Width and height without the legend, inches: 446 x 230 pt, ~595 px wide, so two charts
    # stand side by side in a 1280 px window.
    SIZE_IN = (6.2, 3.2)

    def __init__(self):
        try:
            import matplotlib
        except ImportError as e:
            raise ReportError(f"the report's charts need matplotlib, which {sys.executable} "
                              f"cannot import: {MATPLOTLIB_HINT}") from e
        matplotlib.use("Agg")  # no display: the figures are only ever saved
        from matplotlib import ticker
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        self.matplotlib, self.ticker, self.figure = matplotlib, ticker, Figure
        self.canvas = FigureCanvasAgg
        self.count = 0

    def chart(self, series, title, xlabel, ylabel, xticks=None, ylog=False, xzero=False):
        """series: [(label, [(x, y), ...])]. xticks: [(x, text)] instead of automatic ticks.
        ylog: a log10 y axis spanning whole decades. xzero: the x axis starts at 0 (time plots).
        Returns an inline <svg> element, or a note when no series has a point to draw."""
        drawable = lambda y: y is not None and (y > 0 or not ylog)
        series = [(label, [(x, y) for x, y in pts if drawable(y)]) for label, pts in series]
        series = [(label, pts) for label, pts in series if pts]
        if not series:
            return f"<p><i>{html.escape(title)}: no data</i></p>"
        fig = self.figure(figsize=self.SIZE_IN, layout="constrained")
        self.canvas(fig)  # Agg's renderer measures the legend (_legend)
        ax = fig.add_subplot()
        for i, (label, pts) in enumerate(series):
            ax.plot([x for x, _ in pts], [y for _, y in pts], label=label, color=f"C{i % 10}",
                    linestyle=LINE_STYLES[i % len(LINE_STYLES)], linewidth=1.6,
                    marker=MARKERS[i % len(MARKERS)] if len(pts) <= 20 else None, markersize=4)
        ax.set_title(title, fontsize=12, fontweight="bold")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if xticks:
            ax.set_xticks([x for x, _ in xticks], [text for _, text in xticks])
            ax.set_xlim(xticks[0][0], xticks[-1][0])
        elif xzero:
            ax.set_xlim(left=0)
        ys = [y for _, pts in series for _, y in pts]
        if ylog:
            self._log_y(ax, ys)
        else:  # from 0, with headroom: a steady fixed-rate line must not lie on the frame
            ax.set_ylim(0, max(ys) * 1.1 or 1)
        ax.grid(True, which="major", color="#d8d8d8", linewidth=0.8)
        ax.grid(True, which="minor", axis="y", color="#efefef", linewidth=0.6)
        self._legend(fig, ax, len(series))
        return self._svg(fig)

    def _legend(self, fig, ax, count):
        """Below the plot, never over the data, in as many columns (at most 4, rows balanced) as
        fit the chart's width. The figure grows by the legend's height, so charts side by side
        keep plots of one size whatever their legends (constrained layout lays out the plot in
        the strip above the legend: it does not place a figure legend itself before 3.7)."""
        handles, labels = ax.get_legend_handles_labels()
        renderer = fig.canvas.get_renderer()
        for columns in range(min(4, count), 0, -1):
            rows = math.ceil(count / columns)
            legend = fig.legend(handles, labels, loc="lower center", ncol=math.ceil(count / rows),
                                frameon=False, fontsize=9, handlelength=3, columnspacing=1.5)
            extent = legend.get_window_extent(renderer)
            if extent.width <= 0.95 * fig.bbox.width or columns == 1:
                break
            legend.remove()
        width_in, plot_in = self.SIZE_IN
        legend_in = extent.height / fig.dpi + 0.05
        fig.set_size_inches(width_in, plot_in + legend_in)
        bottom = legend_in / (plot_in + legend_in)
        fig.get_layout_engine().set(rect=(0, bottom, 1, 1 - bottom))

    def _log_y(self, ax, ys):
        """Whole decades, labelled as plain numbers (0.1, 1, 10, 1,000 rather than 10^-1 ...);
        over only one or two decades the 2s and 5s between them are labelled too, so a narrow
        range still reads without counting minor ticks."""
        lo = math.floor(math.log10(min(ys)))
        hi = max(math.ceil(math.log10(max(ys))), lo + 1)
        ax.set_yscale("log")
        ax.set_ylim(10.0 ** lo, 10.0 ** hi)
        plain = lambda v: f"{v:,.0f}" if v >= 1 else f"{v:g}"
        ax.yaxis.set_major_locator(self.ticker.LogLocator(base=10))
        ax.yaxis.set_major_formatter(self.ticker.FuncFormatter(lambda v, _: plain(v)))
        if hi - lo <= 2:
            mantissa = lambda v: round(v / 10.0 ** math.floor(math.log10(v) + 1e-9))
            ax.yaxis.set_minor_formatter(self.ticker.FuncFormatter(
                lambda v, _: plain(v) if mantissa(v) in (2, 5) else ""))
        else:
            ax.yaxis.set_minor_formatter(self.ticker.NullFormatter())

    def _svg(self, fig):
        # Text stays text (svg.fonttype none): smaller, selectable, drawn in the page's fonts.
        self.count += 1
        rc = {"svg.fonttype": "none", "svg.hashsalt": f"sluice-report-chart-{self.count}"}
        buf = io.StringIO()
        with self.matplotlib.rc_context(rc):
            fig.savefig(buf, format="svg", metadata={"Date": None})
        svg = buf.getvalue()
        svg = svg[svg.index("<svg"):]  # without the XML declaration and DOCTYPE, to inline it
        # matplotlib names its groups after the artists (figure_1, axes_1, ...) in every chart
        # alike; nothing refers to them, and one page must not hold an id twice. The ids that
        # are referred to (markers, clip paths) are hashes salted per chart.
        return re.sub(r'<g id="[^"]*"', "<g", svg)


def percentile_x(p):
    """HdrHistogram-style axis: distance in nines (90% -> 1, 99% -> 2, 99.9% -> 3)."""
    return -math.log10(max(1e-5, 1 - p / 100))


PERCENTILE_TICKS = [(0, "0%"), (1, "90%"), (2, "99%"), (3, "99.9%"), (4, "99.99%"),
                    (5, "max")]


def latency_curve_series(result, side):
    lat = (result.get(side) or {}).get("latency_ms") or {}
    pts = lat.get("percentiles")
    if not pts:  # an older bench: the few percentiles it reports
        pts = [[50, lat.get("p50")], [99, lat.get("p99")], [99.9, lat.get("p999")],
               [100, lat.get("max")]] if lat else []
    return [(percentile_x(p), v) for p, v in pts if v is not None]


def timeline_series(result, side, key):
    return [(p["t"], p[side][key]) for p in result.get("timeline", [])
            if p.get(side) and key in p[side]]


def groups_html(summary):
    """The consumer-group figures of scenarios whose consumers were group members."""
    rows = []
    for sc in summary["scenarios"]:
        r = sc["result"]
        produced = (r.get("produce") or {}).get("records", 0)
        for g in r.get("groups") or []:
            lat = g.get("commit_latency_ms") or {}
            shares = " | ".join(",".join(str(p) for p in m["partitions"]) or "&ndash;"
                                for m in g["members"])
            rows.append(
                f"<tr><td>{html.escape(sc['name'])}</td><td>{html.escape(g['group'])}</td>"
                f"<td>{g['records']:,} of {produced:,}</td><td>{g['mib_per_s']:.1f}</td>"
                f"<td>{g['first_assignment_s']:.2f}</td><td>{g['rebalances']}</td>"
                f"<td>{g['commits']}</td><td>{g['commit_errors']}</td>"
                f"<td>{lat.get('p50', 0):.2f}</td><td>{lat.get('p99', 0):.2f}</td>"
                f"<td>{lat.get('max', 0):.2f}</td><td>{shares}</td></tr>")
    if not rows:
        return ""
    return ("<h2>Consumer groups</h2><table><tr><th>scenario</th><th>group</th>"
            "<th>records read (of produced)</th><th>MiB/s</th><th>first assignment s</th>"
            "<th>rebalances</th><th>commits</th><th>failed commits</th><th>commit p50 ms</th>"
            "<th>commit p99 ms</th><th>commit max ms</th><th>partitions per member</th></tr>"
            + "".join(rows) + "</table><p class=what>First assignment: from a member's start "
            "to its SyncGroup answer (the slowest member), which includes the coordinator's "
            "group.initial.rebalance.delay.ms (3 s by default, extended while members arrive). "
            "Rebalances: generations the group's members were assigned in, the first included. "
            "Commit latency: OffsetCommit request to answer.</p>")


def html_report(summary):
    charts = Charts()  # first: without matplotlib, fail before any work
    refs = summary["references"]
    rows = []
    for sc in summary["scenarios"]:
        r = sc["result"]
        if "error" in r:
            rows.append(f"<tr><td>{sc['name']}</td><td colspan=9 class=err>"
                        f"{html.escape(r['error'][:300])}</td></tr>")
            continue
        fr = sc["fractions"]
        for side in ("produce", "consume"):
            s = r.get(side)
            if not s:
                continue
            lat = s.get("latency_ms") or {}
            frac = fr.get(f"{side}_vs_loopback", 0)
            extra = (f"{fr['produce_vs_disk_write']:.0%} of disk write"
                     if side == "produce" and "produce_vs_disk_write" in fr else "")
            if "produce_p50_vs_fdatasync_p50" in fr and side == "produce":
                extra += (f"; p50 = {fr['produce_p50_vs_fdatasync_p50']:.1f}&times; fdatasync p50"
                          f"; {fr['requests_per_s_vs_fdatasync_per_s']:.1f}&times; fdatasyncs/s")
            if r.get("fill") and side == "consume":
                extra += (f"backlog of {s['wire_bytes'] / GiB:.1f} GiB read in "
                          f"{s['seconds']:.1f} s while producing")
            cpu = (f"{r['broker_cpu_per_wall']:.2f}" if "broker_cpu_per_wall" in r else "&ndash;")
            rows.append(
                f"<tr><td>{sc['name']}</td><td>{side}</td><td>{s['mib_per_s']:.1f}</td>"
                f"<td>{s['records_per_s']:,.0f}</td><td>{lat.get('p50', 0):.2f}</td>"
                f"<td>{lat.get('p99', 0):.2f}</td><td>{lat.get('p999', 0):.2f}</td>"
                f"<td>{lat.get('max', 0):.2f}</td><td><b>{frac:.1%}</b> of loopback"
                f"{'; ' + extra if extra else ''}</td><td>{cpu}</td></tr>")
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Sluice benchmark report</title>",
        "<style>body{font-family:sans-serif;margin:24px;max-width:1340px}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 7px;"
        "text-align:right}td:first-child,td:nth-child(2){text-align:left}th{background:#f3f3f3}"
        ".err{color:#b00;text-align:left}.charts{display:flex;flex-wrap:wrap;gap:8px}"
        ".charts svg{max-width:100%;height:auto}"
        "h3{margin-bottom:2px}.what{color:#555;font-size:13px;margin:2px 0 6px}</style></head><body>",
        "<h1>Sluice benchmark report</h1>",
        f"<p>{html.escape(summary['broker']['description'])} &middot; commit "
        f"{html.escape(summary['commit'])} &middot; {html.escape(summary['started'])} &middot; "
        f"{summary['machine']['cpus']} CPUs ({html.escape(summary['machine']['cpu_model'])}), "
        f"load average at start {summary['machine']['load_average'][0]} &middot; "
        f"{summary['duration_s']} s per scenario</p>",
        "<h2>Physical references (same run)</h2><table><tr><th>reference</th><th>value</th></tr>",
        f"<tr><td>loopback TCP, 8 MiB frames</td><td>{refs['loopback']['mib_per_s']:.0f} MiB/s</td></tr>",
        f"<tr><td>sequential disk write (1 MiB writes + fdatasync)</td>"
        f"<td>{refs['disk_write']['mib_per_s']:.0f} MiB/s (page cache alone "
        f"{refs['disk_write']['page_cache_mib_per_s']:.0f} MiB/s)</td></tr>",
        f"<tr><td>fdatasync after a 4 KiB append</td><td>p50 {refs['fdatasync']['p50_ms']:.2f} ms, "
        f"p99 {refs['fdatasync']['p99_ms']:.2f} ms ({refs['fdatasync']['per_s']:.0f}/s)</td></tr>",
        "</table>",
        "<h2>Results</h2><table><tr><th>scenario</th><th>side</th><th>MiB/s</th><th>records/s</th>"
        "<th>p50 ms</th><th>p99 ms</th><th>p99.9 ms</th><th>max ms</th>"
        "<th>fraction of the limit</th><th>broker CPUs busy</th></tr>",
        *rows, "</table>",
        "<p class=what>MiB/s counts record batches as sent/received. Latency: produce = request "
        "sent (or due, with a fixed rate) to acknowledged; consume = fetch request to answer. "
        "Broker CPUs busy = broker CPU seconds / wall seconds (only when the suite started the "
        "broker).</p>",
        groups_html(summary),
    ]
    curves_p, curves_c = [], []
    for sc in summary["scenarios"]:
        if "error" in sc["result"]:
            continue
        if sc["result"].get("produce"):
            curves_p.append((sc["name"], latency_curve_series(sc["result"], "produce")))
        if sc["result"].get("consume"):
            curves_c.append((sc["name"], latency_curve_series(sc["result"], "consume")))
    parts.append("<h2>Latency percentiles</h2><div class=charts>")
    parts.append(charts.chart(curves_p, "Produce latency by percentile", "percentile",
                              "ms (log scale)", PERCENTILE_TICKS, ylog=True))
    parts.append(charts.chart(curves_c, "Fetch latency by percentile", "percentile",
                              "ms (log scale)", PERCENTILE_TICKS, ylog=True))
    parts.append("</div><h2>Scenarios over time</h2>")
    for sc in summary["scenarios"]:
        r = sc["result"]
        parts.append(f"<h3>{html.escape(sc['name'])}: {html.escape(sc['title'])}</h3>"
                     f"<p class=what>{html.escape(sc['what'])}</p>")
        if "error" in r:
            parts.append(f"<p class=err>{html.escape(r['error'][:2000])}</p>")
            continue
        thr = [(f"{side} MiB/s", timeline_series(r, side, "mib_s"))
               for side in ("produce", "consume") if r.get(side)]
        lat = []
        for side in ("produce", "consume"):
            if r.get(side):
                lat.append((f"{side} p50", timeline_series(r, side, "p50_ms")))
                lat.append((f"{side} p99", timeline_series(r, side, "p99_ms")))
        parts.append("<div class=charts>")
        parts.append(charts.chart(thr, "Throughput per second", "seconds", "MiB/s", xzero=True))
        parts.append(charts.chart(lat, "Latency per second", "seconds", "ms (log scale)",
                                  ylog=True, xzero=True))
        parts.append("</div>")
    parts.append("</body></html>")
    return "\n".join(parts)


# ---------------------------------------------------------------------------------------------
# Google Benchmark micro-benchmarks (part of the full suite)

def run_micro(build, out_dir, quick):
    results = {}
    for name in ("hotpath_bench", "engine_bench"):
        path = os.path.join(build, "perf", name)
        if not os.access(path, os.X_OK):
            log(f"  [micro] {name} not built; skipped")
            continue
        json_path = os.path.join(out_dir, "raw", f"{name}.json")
        cmd = [path, f"--benchmark_out={json_path}", "--benchmark_out_format=json",
               "--benchmark_repetitions=" + ("1" if quick else "3"),
               "--benchmark_report_aggregates_only=true"]
        if name == "engine_bench" and quick:
            cmd.append("--benchmark_filter=append/batch_KiB:16/policy:0/closed_loop:0")
        log(f"  [micro] {' '.join(cmd[:1])} ...")
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            results[name] = {"error": r.stderr[-2000:]}
            continue
        with open(json_path) as f:
            data = json.load(f)
        rows = []
        for b in data["benchmarks"]:
            if b.get("aggregate_name", "median") not in ("median",):
                continue
            row = {"name": b.get("run_name", b["name"]), "real_time": b["real_time"],
                   "cpu_time": b["cpu_time"], "time_unit": b["time_unit"]}
            for k, v in b.items():
                if k.startswith("ratio") or k.endswith("per_second") or k.endswith("MBps"):
                    row[k] = v
            rows.append(row)
        results[name] = rows
    return results


def micro_html(micro):
    out = ["<h2>Micro-benchmarks (Google Benchmark, medians)</h2>"]
    for name, rows in micro.items():
        out.append(f"<h3>{name}</h3>")
        if isinstance(rows, dict):
            out.append(f"<p class=err>{html.escape(rows['error'])}</p>")
            continue
        keys = sorted({k for r in rows for k in r if k not in ("name", "time_unit")})
        out.append("<table><tr><th>benchmark</th>" + "".join(f"<th>{k}</th>" for k in keys) +
                   "</tr>")
        for r in rows:
            cells = []
            for k in keys:
                v = r.get(k)
                if v is None:
                    cells.append("<td></td>")
                elif k.endswith("per_second"):
                    cells.append(f"<td>{v / MiB:,.0f} MiB/s</td>" if "bytes" in k else
                                 f"<td>{v:,.0f}/s</td>")
                elif k.endswith("_time"):
                    cells.append(f"<td>{v:,.1f} {r['time_unit']}</td>")
                else:
                    cells.append(f"<td>{v:.3g}</td>")
            out.append(f"<tr><td>{html.escape(r['name'])}</td>{''.join(cells)}</tr>")
        out.append("</table>")
    out.append("<p class=what>ratio_vs_memcpy: throughput against a memcpy of the same bytes timed "
               "in the same iterations; ratio_vs_pwrite: engine append against a pwrite loop "
               "(perf/README.md).</p>")
    return "\n".join(out)


def write_report(summary, out_dir):
    """Draws out_dir/report.html from a summary: the one just measured, or a summary.json read
    back by --render-only. Raises ReportError when matplotlib is missing."""
    page = html_report(summary)
    if summary.get("micro"):
        page = page.replace("</body></html>", micro_html(summary["micro"]) + "</body></html>")
    path = os.path.join(out_dir, "report.html")
    with open(path, "w") as f:
        f.write(page)
    return path


def render_only(summary_path, out_dir):
    """--render-only: the report of a finished run drawn again from its summary.json, measuring
    nothing (after a change to the report code, or on a machine that has matplotlib)."""
    try:
        with open(summary_path) as f:
            summary = json.load(f)
    except (OSError, ValueError) as e:
        raise SystemExit(f"perf/suite.py: cannot read {summary_path}: {e}")
    out_dir = os.path.abspath(out_dir or os.path.dirname(os.path.abspath(summary_path)))
    os.makedirs(out_dir, exist_ok=True)
    try:
        path = write_report(summary, out_dir)
    except ReportError as e:
        raise SystemExit(f"perf/suite.py: {e}")
    print(f"report: {path}")
    return 0


# ---------------------------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--build", default=os.environ.get("BUILD_DIR", "build"),
                    help="build directory with sluice (and perf/*_bench)")
    ap.add_argument("--broker", help="host:port of a running Kafka-protocol broker; default: start "
                                      "Sluice from --build with a fresh data directory")
    ap.add_argument("--broker-name", default=None, help="what --broker is, for the report")
    ap.add_argument("--broker-arg", action="append", default=[],
                    help="extra `sluice serve` option, e.g. --broker-arg=--sluice.fetch.zero.copy=false")
    ap.add_argument("--out", default=None, help="report folder (default perf-report-<time>)")
    ap.add_argument("--render-only", metavar="SUMMARY_JSON",
                    help="measure nothing: draw report.html again from a finished run's "
                         "summary.json, beside it (or in --out)")
    ap.add_argument("--data-parent", default=os.environ.get("SLUICE_BENCH_DIR", "/var/tmp"))
    ap.add_argument("--duration-s", type=float, default=20, help="per scenario (default 20)")
    ap.add_argument("--rate", type=float, default=20000, help="records/s of the fixed-rate scenarios")
    ap.add_argument("--backlog", type=parse_size, default=4 * GiB, help="catch-up backlog (4GiB)")
    ap.add_argument("--only", default="", help="comma-separated scenario names")
    ap.add_argument("--quick", action="store_true",
                    help="5 s per scenario, 512 MiB backlog, short references and micro-benchmarks")
    ap.add_argument("--no-micro", action="store_true", help="skip the Google Benchmark targets")
    ap.add_argument("--keep-topics", action="store_true")
    ap.add_argument("--fsync-config", action="append", default=None,
                    help="topic config for the fsync scenario (Sluice: sluice.fsync=always, "
                         "others: flush.messages=1)")
    opts = ap.parse_args(argv)
    if opts.render_only:
        return render_only(opts.render_only, opts.out)
    if importlib.util.find_spec("matplotlib") is None:
        log(f"warning: {sys.executable} cannot import matplotlib, so the run will end with "
            f"summary.json but no report.html; {MATPLOTLIB_HINT}")
    if opts.quick:
        opts.duration_s = min(opts.duration_s, 5)
        opts.backlog = min(opts.backlog, 512 * MiB)
    build = os.path.abspath(opts.build)
    try:
        sluice = find_binary(build, "sluice", "tools")
        check_not_tmpfs(opts.data_parent)
    except RuntimeError as e:
        raise SystemExit(str(e))
    started = datetime.datetime.now()
    out = os.path.abspath(opts.out or f"perf-report-{started:%Y%m%d-%H%M%S}")
    os.makedirs(os.path.join(out, "raw"), exist_ok=True)
    all_sc = scenarios(opts)
    chosen = [s for s in all_sc if not opts.only or s["name"] in opts.only.split(",")]
    if not chosen:
        raise SystemExit(f"no scenario matches --only; known: {', '.join(s['name'] for s in all_sc)}")

    class Ctx:
        pass
    ctx = Ctx()
    ctx.sluice, ctx.out, ctx.duration, ctx.rate = sluice, out, opts.duration_s, opts.rate
    ctx.backlog, ctx.keep_topics = opts.backlog, opts.keep_topics
    ctx.stamp = f"{started:%H%M%S}"
    ref_s = 3 if opts.quick else 5
    planned = ref_s * 2 + len(chosen) * (opts.duration_s + 3) + (
        opts.backlog / (300 * MiB) if any(s.get("catchup") for s in chosen) else 0)
    ctx.progress = Progress(planned)

    log(f"== references ({ref_s} s each)")
    refs = {"loopback": ref_loopback(sluice, os.path.join(out, "raw"), ref_s, ctx.progress),
            "disk_write": ref_disk_write(opts.data_parent, (256 if opts.quick else 1024) * MiB),
            "fdatasync": ref_fdatasync(opts.data_parent, ref_s)}
    log(f"   loopback {refs['loopback']['mib_per_s']:.0f} MiB/s, disk write "
        f"{refs['disk_write']['mib_per_s']:.0f} MiB/s, fdatasync p50 "
        f"{refs['fdatasync']['p50_ms']:.2f} ms")

    broker = None
    if opts.broker:
        ctx.bootstrap = opts.broker
        desc = f"{opts.broker_name or 'Kafka-protocol broker'} at {opts.broker}"
        ctx.fsync_configs = opts.fsync_config or ["flush.messages=1"]
    else:
        broker = Broker(sluice, opts.data_parent, opts.broker_arg).start()
        ctx.bootstrap = broker.bootstrap
        desc = "Sluice started by the suite (fresh data directory" + (
            ", " + " ".join(opts.broker_arg) if opts.broker_arg else "") + ")"
        ctx.fsync_configs = opts.fsync_config or ["sluice.fsync=always"]
    ctx.broker = broker
    results = []
    try:
        for i, sc in enumerate(chosen):
            ctx.progress.scenario = f"({i + 1}/{len(chosen)} {sc['name']})"
            log(f"== {sc['name']}: {sc['title']}")
            try:
                r = run_scenario(sc, ctx)
            except RuntimeError as e:
                log(f"   FAILED: {e}")
                r = {"error": str(e)}
            fr = fractions(r, refs) if "error" not in r else {}
            results.append({"name": sc["name"], "title": sc["title"], "what": sc["what"],
                            "result": r, "fractions": fr})
    finally:
        if broker:
            broker.remove()
    micro = {} if opts.no_micro else run_micro(build, out, opts.quick)
    summary = {"started": started.isoformat(timespec="seconds"),
               "commit": git_commit(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
               "machine": machine_info(), "duration_s": opts.duration_s,
               "broker": {"description": desc, "address": ctx.bootstrap if opts.broker else None},
               "references": refs, "scenarios": results, "micro": micro}
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    try:
        report, no_report = write_report(summary, out), None
    except ReportError as e:
        report, no_report = None, e
    failed = [r["name"] for r in results if "error" in r["result"]]
    log("")
    for r in results:
        if "error" in r["result"]:
            continue
        for side in ("produce", "consume"):
            s = r["result"].get(side)
            if s:
                log(f"  {r['name']:<16} {side:<8} {s['mib_per_s']:8.1f} MiB/s "
                    f"({r['fractions'].get(side + '_vs_loopback', 0):6.1%} of loopback)")
        for g in r["result"].get("groups") or []:
            lat = g.get("commit_latency_ms") or {}
            log(f"  {r['name']:<16} group {g['group']}: {g['records']} records, first assignment "
                f"{g['first_assignment_s']:.2f} s, {g['rebalances']} rebalance(s), "
                f"{g['commits']} commits (p50 {lat.get('p50', 0):.2f} ms, "
                f"p99 {lat.get('p99', 0):.2f} ms)")
    if no_report:
        log(f"no report.html: {no_report}; then draw it from this run's measurements with\n"
            f"  /usr/bin/python3 {os.path.abspath(__file__)} --render-only {out}/summary.json")
    print(f"report: {report or '(not drawn)'}  summary: {out}/summary.json" +
          (f"  (failed: {', '.join(failed)})" if failed else ""))
    return 1 if failed or not report else 0


if __name__ == "__main__":
    sys.exit(main())
