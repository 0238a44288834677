"""Starts and stops one Sluice broker process for an end-to-end test.

A `Broker` owns exactly one `sluice serve` process and one temporary data directory. It listens
on 127.0.0.1 port 0 and learns the real port from the broker's "serving on port N" log line, so
tests running side by side never collide. `stop()` sends SIGTERM (a clean shutdown), `kill()`
sends SIGKILL, `start()` may be called again to restart on the same data directory, and
`close()` stops the process and removes the directory. Nothing else is ever signalled.

The binary comes from the SLUICE_BIN environment variable (ctest passes `$<TARGET_FILE:sluice>`).
"""

import ctypes
import glob
import os
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import unittest

START_TIMEOUT_S = 20
STOP_TIMEOUT_S = 20
_PORT_LINE = re.compile(rb"serving on port (\d+)")
_PR_SET_PDEATHSIG = 1


def _die_with_parent():
    """Runs in the child before exec: if the test process is killed (a ctest timeout), the
    kernel kills the broker too instead of leaving it running."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def sluice_binary():
    path = os.environ.get("SLUICE_BIN")
    if not path:
        raise unittest.SkipTest("SLUICE_BIN is not set (run through ctest)")
    if not os.access(path, os.X_OK):
        raise RuntimeError("SLUICE_BIN=%s is not an executable" % path)
    return path


class Broker:
    def __init__(self, num_partitions=3, host="127.0.0.1", prefix=None, port=0, listeners=None,
                 **config):
        """`host`: the address to listen on (a test's own veth address); `prefix`: a command
        that runs the broker (["ip", "netns", "exec", NS] for a namespace the test made);
        `port`: 0 lets the kernel pick (the dpdk stack, with its own address, needs one);
        `listeners`: a whole `listeners` value instead (several listeners; `port` is then the
        first one's)."""
        self.binary = sluice_binary()
        self.host = host
        self.listen_port = port
        self.listeners = listeners
        self.prefix = list(prefix or [])
        self.data_dir = tempfile.mkdtemp(prefix="sluice-e2e-")
        self.config = {"num.partitions": str(num_partitions), "sluice.cores": "2"}
        self.config.update({k.replace("_", "."): str(v) for k, v in config.items()})
        self.proc = None
        self.port = None
        self._log_path = os.path.join(self.data_dir, "broker.log")
        self._log = None
        self.start()

    # Lifecycle -----------------------------------------------------------------------------

    def start(self):
        assert self.proc is None or self.proc.poll() is not None, "broker already running"
        listeners = self.listeners or "PLAINTEXT://%s:%d" % (self.host, self.listen_port)
        args = self.prefix + [self.binary, "serve", "--listeners=" + listeners,
                "--log.dirs=" + os.path.join(self.data_dir, "data")]
        args += ["--%s=%s" % kv for kv in self.config.items()]
        # The log goes to a file (never a pipe that nobody drains); the port is read from it.
        self._log = open(self._log_path, "ab")
        offset = self._log.tell()
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            with open(self._log_path, "rb") as f:
                f.seek(offset)
                m = _PORT_LINE.search(f.read())
            if m:
                self.port = int(m.group(1))
                return self
            if self.proc.poll() is not None:
                raise RuntimeError("broker exited with %s during start:\n%s"
                                   % (self.proc.returncode, self.log_tail()))
            time.sleep(0.05)
        self.kill()
        raise RuntimeError("broker did not report its port within %ss:\n%s"
                           % (START_TIMEOUT_S, self.log_tail()))

    def stop(self):
        """SIGTERM and wait for a clean exit; returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise RuntimeError("broker did not stop within %ss of SIGTERM:\n%s"
                               % (STOP_TIMEOUT_S, self.log_tail()))
        finally:
            self._close_log()

    def kill(self):
        """SIGKILL: no shutdown at all, like a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(STOP_TIMEOUT_S)
        self._close_log()

    def restart(self, hard=False):
        if hard:
            self.kill()
        else:
            rc = self.stop()
            if rc != 0:
                raise RuntimeError("broker exited with %s on SIGTERM:\n%s" % (rc, self.log_tail()))
        return self.start()

    def close(self):
        try:
            self.stop()
        finally:
            self.kill()
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _close_log(self):
        if self._log is not None:
            self._log.close()
            self._log = None

    # Queries ---------------------------------------------------------------------------------

    @property
    def bootstrap(self):
        return "%s:%d" % (self.host, self.port)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_text(self):
        with open(self._log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def log_tail(self, lines=40):
        try:
            return "\n".join(self.log_text().splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stored_batch_codecs(self, topic, partition):
        """The compression codec (attributes & 7) of every record batch in the partition's
        segment files, read straight from disk. Segments are preallocated, so each is read
        batch by batch up to the first zero length."""
        codecs = []
        pattern = os.path.join(self.data_dir, "data", "%s-%d" % (topic, partition), "*.log")
        for path in sorted(glob.glob(pattern)):
            with open(path, "rb") as f:
                while True:
                    header = f.read(23)
                    if len(header) < 23:
                        break
                    _, length, _, magic, _, attrs = struct.unpack(">qiibIh", header)
                    if length <= 0:
                        break
                    if magic != 2:
                        raise AssertionError("batch at %d of %s has magic %d"
                                             % (f.tell() - 23, path, magic))
                    codecs.append(attrs & 7)
                    f.seek(length - 11, os.SEEK_CUR)
        return codecs

    def api_versions(self, timeout=5):
        """{api key: (min, max)} from an ApiVersions v0 request on a fresh connection."""
        with socket.create_connection((self.host, self.port), timeout=timeout) as s:
            s.sendall(request_frame(18, 0, 8, b""))
            _, body = read_response(s, timeout)
        error, count = struct.unpack_from(">hi", body)
        if error != 0:
            raise AssertionError("ApiVersions v0 failed with error %d" % error)
        out = {}
        for i in range(count):
            key, lo, hi = struct.unpack_from(">hhh", body, 6 + 6 * i)
            out[key] = (lo, hi)
        return out

    def api_versions_ok(self, timeout=5):
        """True when a fresh connection gets an ApiVersions v0 answer with error 0."""
        with socket.create_connection((self.host, self.port), timeout=timeout) as s:
            s.sendall(request_frame(18, 0, 7, b""))
            corr, body = read_response(s, timeout)
            return corr == 7 and struct.unpack(">h", body[:2])[0] == 0


# Raw Kafka framing, for tests that speak the protocol by hand ---------------------------------

def request_frame(api_key, api_version, correlation_id, body, client_id=b"e2e"):
    """A request with header v1 (non-flexible): size, key, version, correlation id, client id."""
    header = struct.pack(">hhih", api_key, api_version, correlation_id, len(client_id)) + client_id
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


def recv_exact(sock, n, timeout):
    deadline = time.monotonic() + timeout
    out = b""
    while len(out) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("read %d of %d bytes" % (len(out), n))
        sock.settimeout(left)
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise ConnectionError("closed after %d of %d bytes" % (len(out), n))
        out += chunk
    return out


def read_response(sock, timeout=5):
    """Reads one response frame; returns (correlation id, body after the v0 header)."""
    size = struct.unpack(">i", recv_exact(sock, 4, timeout))[0]
    frame = recv_exact(sock, size, timeout)
    return struct.unpack(">i", frame[:4])[0], frame[4:]


def wait_closed(sock, timeout=5):
    """True when the peer closes the connection (EOF or reset) within the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([sock], [], [], max(0.0, deadline - time.monotonic()))
        if not r:
            break
        try:
            if not sock.recv(65536):
                return True
        except (ConnectionResetError, BrokenPipeError):
            return True
    return False


class BrokerTestCase(unittest.TestCase):
    """One broker per test class (starting one per test would cost a second each)."""

    broker_config = {}

    @classmethod
    def setUpClass(cls):
        cls.broker = Broker(**cls.broker_config)

    @classmethod
    def tearDownClass(cls):
        b = cls.broker
        alive = b.alive()
        b.close()
        if not alive:
            raise AssertionError("the broker died during the tests:\n" + b.log_tail())

    def assertBrokerAlive(self):
        self.assertTrue(self.broker.alive(), "broker died:\n" + self.broker.log_tail())

    def unique_topic(self, prefix="t"):
        return "%s-%s-%d" % (prefix, self._testMethodName.replace("_", "-"), os.getpid())


def free_port(host="127.0.0.1"):
    """A port nothing listens on right now (for a listener that needs a fixed port)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]
