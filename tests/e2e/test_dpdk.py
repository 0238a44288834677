"""The broker on the dpdk network stack: Sluice's own ARP/IPv4/TCP over a DPDK net_tap port,
with real clients (kcat, confluent-kafka) talking the Linux kernel's TCP on the other side.

The broker runs with `--no-pci --vdev=net_tap0,iface=<tap> --no-huge`; the test creates a
network namespace, moves the tap's kernel end into it and gives it 198.18.N.1/24 (RFC 2544's
benchmarking range, on a link this test owns); the broker's stack is 198.18.N.2. Every client
runs inside the namespace, so its packets can only reach the broker through the tap.

Faults: this VM's kernel has no netem qdisc (CONFIG_NET_SCH_NETEM is off), so when `tc qdisc
add ... netem` is refused the loss/duplication/reordering is injected at the broker's port
instead (sluice.dpdk.test.faults, both directions), which the kernel TCP on the other side
sees the same way. Where netem exists it is used as well.

Both ends on the stack: a broker on a net_memif port (shared memory, no kernel on the packet
path) and `sluice bench --network-stack dpdk` on the other end of the pair produce and consume;
what the broker stored is checked with `sluice dump-log --verify`.

Needs root, network namespaces, /dev/net/tun and a binary built with DPDK; prints E2E-SKIP
otherwise."""

import glob
import hashlib
import json
import os
import random
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

from broker import Broker, request_frame

PY = "/usr/bin/python3"
HERE = os.path.dirname(os.path.abspath(__file__))


def sh(*args, check=True, timeout=60, **kw):
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise AssertionError("%s exited %d:\n%s\n%s" % (" ".join(args[:8]), r.returncode,
                                                       r.stdout[-1500:], r.stderr[-3000:]))
    return r


def binary_has_dpdk():
    path = os.environ.get("SLUICE_BIN")
    if not path:
        return False
    # A bad address fails before DPDK starts; only a build without DPDK says "not built".
    data = tempfile.mkdtemp(prefix="sluice-dpdk-probe-")
    try:
        out = subprocess.run([path, "serve", "--sluice.network.stack=dpdk", "--sluice.dpdk.ip=x",
                              "--log.dirs=" + data], capture_output=True, text=True, timeout=30)
    finally:
        shutil.rmtree(data, ignore_errors=True)
    return "not built" not in (out.stdout + out.stderr)


def can_run():
    if os.geteuid() != 0 or not os.path.exists("/dev/net/tun"):
        return False
    name = "sld-probe-%d" % os.getpid()
    try:
        if sh("ip", "netns", "add", name, check=False).returncode != 0:
            return False
        return True
    except (OSError, subprocess.SubprocessError):
        return False
    finally:
        sh("ip", "netns", "del", name, check=False)


def kcat_found():
    return subprocess.run(["which", "kcat"], capture_output=True).returncode == 0


SKIP_REASON = None
if not can_run():
    SKIP_REASON = "needs root, network namespaces and /dev/net/tun"
elif not kcat_found():
    SKIP_REASON = "needs kcat"
elif not binary_has_dpdk():
    SKIP_REASON = "the sluice binary was built without DPDK (dpdk-dev missing)"
if SKIP_REASON:
    print("E2E-SKIP: " + SKIP_REASON)


class DpdkSetup:
    """One broker on the dpdk stack and one namespace holding the tap's kernel end."""

    def __init__(self, n, faults="", **config):
        self.n = n
        self.ns = "sld%d-%d" % (n, os.getpid())
        self.tap = config.pop("tap", None) or "sdt%d%d" % (n, os.getpid() % 10000)
        self.mtu = int(config.get("sluice.dpdk.mtu", 1500))
        self.client_ip = "198.18.%d.1" % n
        self.broker_ip = "198.18.%d.2" % n
        args = "--no-pci --vdev=net_tap0,iface=%s --no-huge -m 512" % self.tap
        cfg = {"sluice.network.stack": "dpdk", "sluice.dpdk.args": args,
               "sluice.dpdk.ip": self.broker_ip, "sluice.dpdk.netmask": "255.255.255.0",
               "sluice.dpdk.tcp.user.timeout.ms": "4000", "auto.create.topics.enable": "true"}
        if faults:
            cfg["sluice.dpdk.test.faults"] = faults
        cfg.update(config)
        sh("ip", "netns", "add", self.ns)
        try:
            self.broker = Broker(num_partitions=4, host=self.broker_ip, port=9092, **cfg)
            self._wire_namespace()
        except Exception:
            self.close()
            raise

    def _wire_namespace(self):
        deadline = time.monotonic() + 20
        while sh("ip", "link", "show", self.tap, check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError("tap %s did not appear:\n%s" % (self.tap,
                                                                    self.broker.log_tail()))
            time.sleep(0.1)
        sh("ip", "link", "set", self.tap, "netns", self.ns)
        self.run("ip", "addr", "add", self.client_ip + "/24", "dev", self.tap)
        self.run("ip", "link", "set", self.tap, "mtu", str(self.mtu))
        self.run("ip", "link", "set", self.tap, "up")
        self.run("ip", "link", "set", "lo", "up")

    def run(self, *cmd, check=True, timeout=120, **kw):
        return sh("ip", "netns", "exec", self.ns, *cmd, check=check, timeout=timeout, **kw)

    def python(self, script, *args, timeout=180):
        return self.run(PY, "-c", script, self.broker.bootstrap, *args, timeout=timeout, cwd=HERE)

    def broker_mac(self):
        self.run("ping", "-c", "1", "-W", "2", self.broker_ip, check=False)
        out = self.run("ip", "neigh", "show", self.broker_ip).stdout
        m = re.search(r"lladdr ([0-9a-f:]{17})", out)
        if not m:
            raise AssertionError("no ARP entry for the broker: %r" % out)
        return m.group(1)

    def close(self):
        if getattr(self, "broker", None) is not None:
            self.broker.close()
        sh("ip", "netns", "del", self.ns, check=False)


def kcat_produce(setup, topic, data, extra=()):
    return setup.run("kcat", "-b", setup.broker.bootstrap, "-P", "-t", topic, "-D", "\n",
                     "-X", "message.send.max.retries=10", *extra, input=data, timeout=180)


def kcat_consume(setup, topic, count, partition=None):
    args = ["kcat", "-b", setup.broker.bootstrap, "-C", "-t", topic, "-e", "-q", "-c", str(count),
            "-f", "%s\n"]
    if partition is not None:
        args += ["-p", str(partition)]
    return setup.run(*args, timeout=180).stdout


CONFLUENT_GROUP = r"""
import sys, threading, time
import confluent_kafka as ck
bootstrap, topic = sys.argv[1], sys.argv[2]
total = 4000
p = ck.Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5})
for i in range(total):
    p.produce(topic, key=str(i % 97).encode(), value=("m%06d" % i).encode())
assert p.flush(60) == 0, "unflushed"
seen, lock, done = {}, threading.Lock(), threading.Event()
def member(name):
    c = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": "dpdk-group",
                     "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    deadline = time.time() + 90
    while not done.is_set() and time.time() < deadline:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        with lock:
            seen.setdefault(m.value().decode(), []).append(name)
            if len(seen) >= total:
                done.set()
        c.commit(message=m, asynchronous=False)
    c.close()
threads = [threading.Thread(target=member, args=("c%d" % i,)) for i in range(2)]
[t.start() for t in threads]
[t.join() for t in threads]
missing = total - len(seen)
dups = sum(1 for v in seen.values() if len(v) > 1)
members = set(n for v in seen.values() for n in v)
print("seen=%d missing=%d dups=%d members=%s" % (len(seen), missing, dups, sorted(members)))
assert missing == 0, "missing records"
"""

MANY_CONNECTIONS = r"""
import socket, struct, sys
from broker import request_frame, read_response
host, port = sys.argv[1].rsplit(":", 1)
socks = [socket.create_connection((host, int(port)), timeout=20) for _ in range(int(sys.argv[2]))]
for i, s in enumerate(socks):
    s.sendall(request_frame(18, 0, i, b""))
ok = 0
for i, s in enumerate(socks):
    corr, body = read_response(s, 20)
    ok += corr == i and struct.unpack(">h", body[:2])[0] == 0
for s in socks:
    s.close()
print("answered=%d" % ok)
"""

# Raw frames from inside the namespace, straight onto the tap (AF_PACKET).
RAW_FRAMES = r"""
import random, socket, struct, sys
bootstrap, iface, dst_mac, kind = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
broker_ip = bootstrap.split(":")[0]
dmac = bytes(int(x, 16) for x in dst_mac.split(":"))
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((iface, 0))
smac = s.getsockname()[4]
def csum(b):
    if len(b) % 2: b += b"\0"
    t = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while t >> 16: t = (t & 0xffff) + (t >> 16)
    return ~t & 0xffff
def ip4(a): return socket.inet_aton(a)
def frame(src_ip, sport, flags, seq, payload=b"", bad_tcp=False, bad_ip=False, frag=False):
    tcp = struct.pack("!HHIIBBHHH", sport, 9092, seq, 0, 5 << 4, flags, 65535, 0, 0) + payload
    ph = ip4(src_ip) + ip4(broker_ip) + struct.pack("!BBH", 0, 6, len(tcp))
    c = csum(ph + tcp) ^ (0x5555 if bad_tcp else 0)
    tcp = tcp[:16] + struct.pack("!H", c) + tcp[18:]
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0x2000 if frag else 0x4000,
                      64, 6, 0, ip4(src_ip), ip4(broker_ip))
    hc = csum(hdr) ^ (0x1111 if bad_ip else 0)
    hdr = hdr[:10] + struct.pack("!H", hc) + hdr[12:]
    return dmac + smac + b"\x08\x00" + hdr + tcp
rng = random.Random(5)
net = broker_ip.rsplit(".", 1)[0]
sent = 0
if kind == "flood":
    for i in range(5000):
        s.send(frame("%s.%d" % (net, 100 + i % 100), 1024 + i, 0x02, rng.getrandbits(32)))
        sent += 1
else:
    base = frame(net + ".1", 40000, 0x18, 1, b"x" * 64)
    bad = [dmac + smac + b"\x08\x00", dmac + smac + b"\x08\x00" + b"\x45",
           frame(net + ".1", 40001, 0x02, 5, bad_tcp=True),
           frame(net + ".1", 40002, 0x02, 5, bad_ip=True),
           frame(net + ".1", 40003, 0x02, 5, frag=True),
           dmac + smac + b"\x86\xdd" + b"\x60" + b"\x00" * 60]
    for i in range(3000):
        b = bytearray(base)
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(14, len(b))] = rng.getrandbits(8)
        bad.append(bytes(b))
    for b in bad:
        s.send(b)
        sent += 1
print("sent=%d" % sent)
"""


@unittest.skipIf(SKIP_REASON is not None, SKIP_REASON or "")
class DpdkClients(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.setup = DpdkSetup(1)

    @classmethod
    def tearDownClass(cls):
        cls.setup.close()

    def assert_serving(self):
        out = self.setup.run("kcat", "-b", self.setup.broker.bootstrap, "-L", "-m", "10").stdout
        self.assertIn("1 brokers", out)
        self.assertTrue(self.setup.broker.alive(), self.setup.broker.log_tail())

    def test_ping_and_metadata(self):
        out = self.setup.run("ping", "-c", "3", "-W", "2", self.setup.broker_ip).stdout
        self.assertIn("3 received", out)
        self.assert_serving()

    def test_kcat_produce_and_consume_byte_exact(self):
        lines = ["%06d-%s" % (i, "v" * (i % 300)) for i in range(30000)]
        data = "\n".join(lines) + "\n"
        kcat_produce(self.setup, "dpdk-kcat", data, ("-p", "0"))
        got = kcat_consume(self.setup, "dpdk-kcat", len(lines), partition=0)
        self.assertEqual(hashlib.sha256(got.encode()).hexdigest(),
                         hashlib.sha256(data.encode()).hexdigest())

    def test_confluent_kafka_consumer_group(self):
        out = self.setup.python(CONFLUENT_GROUP, "dpdk-group-topic").stdout
        self.assertIn("missing=0", out)
        self.assertIn("'c0'", out)  # both members consumed: the group shared partitions
        self.assertIn("'c1'", out)

    def test_many_concurrent_connections(self):
        out = self.setup.python(MANY_CONNECTIONS, "300").stdout
        self.assertIn("answered=300", out)

    def test_malformed_frames_are_dropped_and_the_broker_keeps_serving(self):
        mac = self.setup.broker_mac()
        out = self.setup.python(RAW_FRAMES, self.setup.tap, mac, "garbage").stdout
        self.assertIn("sent=", out)
        self.assert_serving()
        kcat_produce(self.setup, "dpdk-after-garbage", "a\nb\nc\n", ("-p", "0"))
        self.assertEqual(kcat_consume(self.setup, "dpdk-after-garbage", 3, 0), "a\nb\nc\n")

    def test_syn_flood_is_bounded(self):
        mac = self.setup.broker_mac()
        out = self.setup.python(RAW_FRAMES, self.setup.tap, mac, "flood").stdout
        self.assertIn("sent=5000", out)
        # The half-open budget fills; later SYNs get SYN cookies (no state), so real clients
        # still get in right after the flood and the broker keeps serving.
        self.assert_serving()
        kcat_produce(self.setup, "dpdk-after-flood", "x\ny\n", ("-p", "0"))
        self.assertEqual(kcat_consume(self.setup, "dpdk-after-flood", 2, 0), "x\ny\n")

    def test_vanished_peer_is_timed_out(self):
        # A consumer reads a large topic; mid-transfer its link goes down and it is killed, so
        # the broker hears nothing more (not even a RST) while it has data unacknowledged.
        payload = "".join("%08d%s\n" % (i, "z" * 900) for i in range(20000))
        kcat_produce(self.setup, "dpdk-vanish", payload, ("-p", "0"))
        consumer = subprocess.Popen(
            ["ip", "netns", "exec", self.setup.ns, "kcat", "-b", self.setup.broker.bootstrap,
             "-C", "-t", "dpdk-vanish", "-p", "0", "-o", "beginning", "-q",
             "-X", "fetch.message.max.bytes=8388608", "-X", "queued.min.messages=1000000"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)
        before = self.setup.broker.log_text().count("timed out")
        self.setup.run("ip", "link", "set", self.setup.tap, "down")
        consumer.kill()
        consumer.wait(10)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if self.setup.broker.log_text().count("timed out") > before:
                    break
                time.sleep(0.2)
            self.assertGreater(self.setup.broker.log_text().count("timed out"), before,
                               self.setup.broker.log_tail())
        finally:
            self.setup.run("ip", "link", "set", self.setup.tap, "up")
        time.sleep(0.5)
        self.assert_serving()


@unittest.skipIf(SKIP_REASON is not None, SKIP_REASON or "")
class DpdkFaults(unittest.TestCase):
    """Long transfers through loss, duplication and reordering complete byte-exact."""

    @classmethod
    def setUpClass(cls):
        cls.setup = DpdkSetup(2, faults="loss=0.01,duplicate=0.01,reorder=0.03")
        netem = cls.setup.run("tc", "qdisc", "add", "dev", cls.setup.tap, "root", "netem",
                              "loss", "1%", "duplicate", "1%", "reorder", "5%", "delay", "1ms",
                              check=False)
        cls.netem = netem.returncode == 0
        print("faults: injected at the broker's port%s" %
              ("" if not cls.netem else " and by netem on the tap"), file=sys.stderr)

    @classmethod
    def tearDownClass(cls):
        cls.setup.close()

    def test_long_transfer_through_faults_is_byte_exact(self):
        rng = random.Random(11)
        lines = ["%07d %s" % (i, "%032x" % rng.getrandbits(128) * rng.randint(1, 20))
                 for i in range(20000)]
        data = "\n".join(lines) + "\n"
        kcat_produce(self.setup, "dpdk-faults", data, ("-p", "0"))
        got = kcat_consume(self.setup, "dpdk-faults", len(lines), partition=0)
        self.assertEqual(len(got), len(data))
        self.assertEqual(hashlib.sha256(got.encode()).hexdigest(),
                         hashlib.sha256(data.encode()).hexdigest())

    def test_consumer_group_through_faults(self):
        out = self.setup.python(CONFLUENT_GROUP, "dpdk-faults-group").stdout
        self.assertIn("missing=0", out)

    def test_zz_faults_were_really_injected(self):
        # Runs last (unittest sorts by name): a clean stop makes each core report its count.
        self.assertEqual(self.setup.broker.stop(), 0)
        counts = [int(n) for n in re.findall(r"(\d+) faults injected",
                                             self.setup.broker.log_text())]
        self.assertTrue(counts and sum(counts) > 100, self.setup.broker.log_tail())


def memif_eal(sock, role):
    return "--no-pci --no-huge -m 256 --vdev=net_memif0,role=%s,socket=%s" % (role, sock)


@unittest.skipIf(SKIP_REASON is not None, SKIP_REASON or "")
class DpdkBothEnds(unittest.TestCase):
    """The broker and `sluice bench` both on the dpdk stack, joined by a net_memif pair."""

    RECORDS = 20000
    MTU = 1500
    TRUSTED = False  # sluice.dpdk.link.trusted on both ends

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="sluice-memif-")
        self.sock = os.path.join(self.tmp, "memif.sock")
        self.broker = Broker(num_partitions=2, host="198.18.9.2", port=9092, **{
            "sluice.network.stack": "dpdk", "sluice.dpdk.args": memif_eal(self.sock, "server"),
            "sluice.dpdk.ip": "198.18.9.2", "sluice.cores": "1", "sluice.dpdk.mtu": str(self.MTU),
            "sluice.dpdk.link.trusted": "true" if self.TRUSTED else "false",
            "auto.create.topics.enable": "true"})

    def tearDown(self):
        self.broker.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def bench(self, mode):
        out = os.path.join(self.tmp, mode + ".json")
        r = subprocess.run([os.environ["SLUICE_BIN"], "bench", "--bootstrap-server",
                            self.broker.bootstrap, "--topic", "memif", "--mode", mode,
                            "--partitions", "2", "--records", str(self.RECORDS),
                            "--record-size", "700", "--acks", "all", "--json", out, "--quiet",
                            "--network-stack", "dpdk", "--dpdk-args",
                            memif_eal(self.sock, "client"), "--dpdk-ip", "198.18.9.1",
                            "--dpdk-mtu", str(self.MTU)] +
                           (["--dpdk-trusted-link"] if self.TRUSTED else []),
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr[-3000:] + self.broker.log_tail())
        with open(out) as f:
            return json.load(f)[mode]

    def test_bench_produces_and_consumes_over_memif(self):
        produced = self.bench("produce")
        self.assertEqual(produced["errors"], 0)
        self.assertEqual(produced["records"], self.RECORDS)
        consumed = self.bench("consume")
        self.assertEqual(consumed["errors"], 0)
        self.assertGreaterEqual(consumed["records"], self.RECORDS)
        self.assertTrue(self.broker.alive(), self.broker.log_tail())
        self.assertEqual(self.broker.stop(), 0)
        parts = glob.glob(os.path.join(self.broker.data_dir, "data", "memif-*"))
        self.assertEqual(len(parts), 2)
        v = subprocess.run([os.environ["SLUICE_BIN"], "dump-log", "--verify"] + parts,
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(v.returncode, 0, v.stdout[-2000:])
        m = re.search(r"(\d+) record\(s\): 0 problem", v.stdout)
        self.assertIsNotNone(m, v.stdout[-2000:])
        self.assertEqual(int(m.group(1)), self.RECORDS)
        log = self.broker.log_text()
        self.assertIn("MTU %d)" % self.MTU, log)
        largest = max(int(x) for x in re.findall(r"frames received, the largest (\d+) bytes", log))
        # The produce's data segments fill the MTU (IP packet + the 14-byte Ethernet header).
        self.assertGreater(largest, self.MTU - 200, log[-2000:])
        self.assertLessEqual(largest, self.MTU + 14, log[-2000:])
        self.assertEqual("checksums skipped (trusted link)" in log, self.TRUSTED)


@unittest.skipIf(SKIP_REASON is not None, SKIP_REASON or "")
class DpdkBothEndsJumbo(DpdkBothEnds):
    """The same over 9000-byte frames: net_memif reports Ethernet's 1500 but carries any length
    (net/README.md "Jumbo frames on net_memif"); segments of 8948 bytes both ways."""

    MTU = 9000
    # More frames each way than a core's pool holds mbufs (8191 of a jumbo frame each), so a
    # receive path that kept any would run dry and stall.
    RECORDS = 150000


@unittest.skipIf(SKIP_REASON is not None, SKIP_REASON or "")
class DpdkBothEndsTrusted(DpdkBothEndsJumbo):
    """Jumbo frames with no TCP/IPv4 checksums on either end (sluice.dpdk.link.trusted): what
    the broker stored still verifies batch by batch (each batch's CRC-32C, end to end)."""

    TRUSTED = True


@unittest.skipIf(SKIP_REASON is not None, SKIP_REASON or "")
class DpdkStartErrors(unittest.TestCase):
    def serve(self, **cfg):
        d = tempfile.mkdtemp(prefix="sluice-dpdk-err-")
        try:
            args = [os.environ["SLUICE_BIN"], "serve", "--listeners=PLAINTEXT://198.18.9.2:9092",
                    "--log.dirs=" + d, "--sluice.network.stack=dpdk",
                    "--sluice.dpdk.ip=198.18.9.2"] + ["--%s=%s" % kv for kv in cfg.items()]
            return subprocess.run(args, capture_output=True, text=True, timeout=60)
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def test_a_trusted_link_is_refused_on_a_port_that_is_not_memif(self):
        r = self.serve(**{"sluice.dpdk.args": "--no-pci --no-huge -m 256 --vdev=net_null0",
                          "sluice.dpdk.link.trusted": "true"})
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("sluice.dpdk.link.trusted is for net_memif", r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
