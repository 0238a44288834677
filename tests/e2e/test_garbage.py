"""Bad input on the wire: while a real client (confluent-kafka) keeps producing and consuming,
other connections throw random bytes, truncated frames, absurd length prefixes, unknown API keys,
requests whose arrays claim 2^31-1 elements, corrupt record batches and frames larger than
socket.request.max.bytes at the broker. The broker must stay up, answer or close each bad
connection without hanging, keep serving the real client throughout, and answer ApiVersions at
an unsupported version with a v0 response carrying UNSUPPORTED_VERSION (35)."""

import os
import random
import socket
import struct
import threading
import time
import unittest

from broker import (BrokerTestCase, read_response, recv_exact, request_frame, wait_closed)
from client_load import (WAIT_S, ClientLoad, DefaultRecordBatchBuilder, ck,
                         parse_produce_v3_response, produce_v3, record_batch)

MAX_REQUEST_BYTES = 102400
if ck is None:
    print("E2E-SKIP: python3-confluent-kafka is not installed")
METADATA, PRODUCE, API_VERSIONS = 3, 0, 18


def flexible_frame(api_key, api_version, correlation_id, body, client_id=b"e2e"):
    """A request with header v2: header v1 plus an empty tagged-field section."""
    header = (struct.pack(">hhih", api_key, api_version, correlation_id, len(client_id))
              + client_id + b"\x00")
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


def uvarint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def metadata_v1(topics):
    body = struct.pack(">i", len(topics))
    for t in topics:
        body += struct.pack(">h", len(t)) + t
    return body


@unittest.skipIf(ck is None, "python3-confluent-kafka is not installed")
class GarbageTest(BrokerTestCase):
    broker_config = {"socket_request_max_bytes": MAX_REQUEST_BYTES}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.load = ClientLoad(cls.broker.bootstrap, "steady")
        cls.load.start()
        # The first round creates the topic (auto-created through Metadata) and proves the
        # client works before anything is thrown at the broker.
        deadline = time.monotonic() + WAIT_S
        while cls.load.rounds == 0 and not cls.load.errors and time.monotonic() < deadline:
            time.sleep(0.05)

    @classmethod
    def tearDownClass(cls):
        try:
            # The real client must still complete rounds after everything thrown at the broker.
            target = cls.load.rounds + 2
            deadline = time.monotonic() + WAIT_S
            while (cls.load.rounds < target and not cls.load.errors and cls.load.is_alive()
                   and time.monotonic() < deadline):
                time.sleep(0.05)
            cls.load.stop_event.set()
            cls.load.join(WAIT_S * 3)
            rounds, errors = cls.load.rounds, cls.load.errors
        finally:
            super().tearDownClass()
        if cls.load.is_alive():
            raise AssertionError("the real client is stuck")
        if errors or rounds < 2:
            raise AssertionError("the real client failed after %d rounds: %s" % (rounds, errors))

    def setUp(self):
        self.assertBrokerAlive()
        self.assertEqual(self.load.errors, [], "the real client failed")

    def tearDown(self):
        self.assertBrokerAlive()
        self.assertTrue(self.broker.api_versions_ok(), "broker stopped answering")
        self.assertEqual(self.load.errors, [], "the real client failed")

    def connect(self):
        return socket.create_connection(("127.0.0.1", self.broker.port), timeout=5)

    def send_and_expect_close(self, data, what):
        with self.connect() as s:
            try:
                s.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                return  # closed while we were still sending: fine
            self.assertTrue(wait_closed(s, WAIT_S), "broker kept the connection after " + what)

    def send_and_hang_up(self, data, linger_s=0.05):
        with self.connect() as s:
            try:
                s.sendall(data)
                time.sleep(linger_s)
            except (BrokenPipeError, ConnectionResetError):
                pass

    # ---------------------------------------------------------------------------------------

    def test_random_bytes(self):
        rng = random.Random(1234)
        for _ in range(200):
            self.send_and_hang_up(bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 2048))),
                                  linger_s=0)
        # Random bytes behind a plausible length prefix.
        for _ in range(100):
            body = bytes(rng.getrandbits(8) for _ in range(rng.randint(8, 512)))
            self.send_and_hang_up(struct.pack(">i", len(body)) + body, linger_s=0)

    def test_truncated_frames(self):
        frame = request_frame(METADATA, 1, 1, metadata_v1([b"steady", b"other"]))
        for cut in range(1, len(frame)):
            self.send_and_hang_up(frame[:cut], linger_s=0)
        # A prefix promising more than ever comes, then silence, then hang-up.
        self.send_and_hang_up(struct.pack(">i", 1000) + b"\x00" * 10, linger_s=0.5)

    def test_absurd_length_prefixes(self):
        for length in (0x7FFFFFFF, MAX_REQUEST_BYTES + 1, -1, -2147483648, -7):
            with self.subTest(length=length):
                self.send_and_expect_close(struct.pack(">i", length) + b"\x00" * 64,
                                           "length prefix %d" % length)

    def test_requests_before_a_bad_prefix_are_answered_then_closed(self):
        # Three good requests pipelined in one write with an absurd length prefix behind them:
        # the broker answers the three, in order, and then closes (nothing after the bad
        # prefix is read).
        good = b"".join(request_frame(METADATA, 1, 100 + i, metadata_v1([])) for i in range(2))
        good += request_frame(API_VERSIONS, 0, 102, b"")
        for bad in (struct.pack(">i", 0x7FFFFFFF), struct.pack(">i", -5)):
            with self.subTest(prefix=bad.hex()):
                with self.connect() as s:
                    s.sendall(good + bad + b"\x00" * 32)
                    ids = [read_response(s, WAIT_S)[0] for _ in range(3)]
                    self.assertEqual(ids, [100, 101, 102])
                    self.assertTrue(wait_closed(s, WAIT_S),
                                    "broker kept the connection after a bad prefix")

    def test_zero_length_and_tiny_frames(self):
        for body in (b"", b"\x00", b"\x00\x03", b"\x00\x03\x00\x01"):
            self.send_and_hang_up(struct.pack(">i", len(body)) + body, linger_s=0.1)

    def test_frame_larger_than_request_max(self):
        body = metadata_v1([b"x" * 100]) + b"\x00" * MAX_REQUEST_BYTES
        frame = request_frame(METADATA, 1, 9, body)
        self.assertGreater(len(frame) - 4, MAX_REQUEST_BYTES)
        self.send_and_expect_close(frame, "a frame over socket.request.max.bytes")

    def test_unknown_api_key_and_version(self):
        for key, version in ((77, 0), (32767, 0), (-1, 0), (METADATA, 99), (PRODUCE, 1),
                             (METADATA, -1)):
            with self.subTest(key=key, version=version):
                self.send_and_expect_close(request_frame(key, version, 5, b""),
                                           "api key %d version %d" % (key, version))

    def test_huge_array_counts(self):
        cases = {
            "Metadata v1 with 2^31-1 topics": request_frame(
                METADATA, 1, 3, struct.pack(">i", 0x7FFFFFFF)),
            "Metadata v1 with -2 topics": request_frame(METADATA, 1, 3, struct.pack(">i", -2)),
            "Metadata v1 with a 32767-byte topic name": request_frame(
                METADATA, 1, 3, struct.pack(">ih", 1, 32767) + b"abc"),
            "Metadata v9 with 2^32-2 topics": flexible_frame(
                METADATA, 9, 3, uvarint(0xFFFFFFFF) + b"\x00\x00\x00"),
            "Metadata v9 with an overlong varint": flexible_frame(
                METADATA, 9, 3, b"\xff" * 12),
            "Produce v3 with 2^31-1 topics": request_frame(
                PRODUCE, 3, 3, struct.pack(">hhii", -1, 1, 1000, 0x7FFFFFFF)),
            "Produce v3 with records longer than the frame": request_frame(
                PRODUCE, 3, 3, struct.pack(">hhiih", -1, 1, 1000, 1, 6) + b"steady"
                + struct.pack(">iii", 1, 0, 0x7FFFFFF0) + b"\x00" * 100),
        }
        for what, frame in cases.items():
            with self.subTest(what):
                self.send_and_expect_close(frame, what)

    def test_api_versions_unsupported_version(self):
        for version in (99, 4, 32767):
            with self.subTest(version=version), self.connect() as s:
                s.sendall(flexible_frame(API_VERSIONS, version, 42, b"\x00"))
                corr, body = read_response(s, WAIT_S)
                self.assertEqual(corr, 42)
                error, count = struct.unpack_from(">hi", body, 0)
                self.assertEqual(error, 35, "UNSUPPORTED_VERSION")
                keys = {}
                for i in range(count):
                    k, lo, hi = struct.unpack_from(">hhh", body, 6 + 6 * i)
                    keys[k] = (lo, hi)
                self.assertEqual(len(body), 6 + 6 * count, "a v0 body has nothing more")
                self.assertIn(API_VERSIONS, keys)
                self.assertEqual(keys[API_VERSIONS][0], 0)
                self.assertGreaterEqual(keys[API_VERSIONS][1], 3)
                # The client retries at a version it now knows; the same connection serves it.
                s.sendall(request_frame(API_VERSIONS, 0, 43, b""))
                corr, body = read_response(s, WAIT_S)
                self.assertEqual((corr, struct.unpack_from(">h", body)[0]), (43, 0))

    @unittest.skipIf(DefaultRecordBatchBuilder is None, "python3-kafka is not installed")
    def test_corrupt_record_batches_are_refused_not_stored(self):
        topic = b"raw-produce"  # not the real client's topic: it must see only its own records
        good = record_batch([(b"raw-key", b"raw value")])
        bad_crc = bytearray(good)
        bad_crc[-1] ^= 0xFF  # inside the last record: the CRC no longer matches
        bad_magic = bytearray(good)
        bad_magic[16] = 7
        short_len = bytearray(good)
        struct.pack_into(">i", short_len, 8, len(good))  # batch length beyond the bytes
        with self.connect() as s:
            s.sendall(request_frame(METADATA, 1, 99, metadata_v1([topic])))  # auto-creates it
            self.assertEqual(read_response(s, WAIT_S)[0], 99)
            for i, batch in enumerate((bytes(bad_crc), bytes(bad_magic), bytes(short_len),
                                       b"\x00" * 61, good[:30])):
                s.sendall(request_frame(PRODUCE, 3, 100 + i, produce_v3(topic, 0, batch)))
                corr, body = read_response(s, WAIT_S)
                self.assertEqual(corr, 100 + i)
                (part, err, _), = parse_produce_v3_response(body)
                self.assertEqual(part, 0)
                # CORRUPT_MESSAGE, INVALID_REQUEST or INVALID_RECORD; never success.
                self.assertIn(err, (2, 42, 87), "corrupt batch %d" % i)
            # The connection still works, and a good batch is taken.
            s.sendall(request_frame(PRODUCE, 3, 200, produce_v3(topic, 0, good)))
            corr, body = read_response(s, WAIT_S)
            (part, err, base), = parse_produce_v3_response(body)
            self.assertEqual((corr, err), (200, 0))
            self.assertEqual(base, 0, "nothing of the corrupt batches may have been stored")

    def test_slow_byte_by_byte_request_is_answered(self):
        frame = request_frame(API_VERSIONS, 0, 77, b"")
        with self.connect() as s:
            for b in frame:
                s.sendall(bytes([b]))
                time.sleep(0.01)
            corr, body = read_response(s, WAIT_S)
            self.assertEqual((corr, struct.unpack_from(">h", body)[0]), (77, 0))

    def test_pipelined_requests_then_garbage(self):
        # Ten good requests in one write, then a bad size prefix. The broker hangs up; it may
        # or may not answer the good ones first (Kafka would, having read them one at a time),
        # but whatever it sends is whole and in order.
        good = b"".join(request_frame(API_VERSIONS, 0, 1000 + i, b"") for i in range(10))
        with self.connect() as s:
            s.sendall(good + struct.pack(">i", -5) + b"junk")
            expected = 1000
            try:
                while True:
                    corr, body = read_response(s, WAIT_S)
                    self.assertEqual((corr, struct.unpack_from(">h", body)[0]), (expected, 0))
                    expected += 1
            except TimeoutError:
                self.fail("neither answered nor closed")
            except (ConnectionError, OSError):
                pass  # closed
            self.assertTrue(wait_closed(s, WAIT_S))

    def test_many_idle_half_open_connections(self):
        socks = []
        try:
            for i in range(200):
                s = self.connect()
                s.sendall(struct.pack(">i", 100) + b"\x00\x12")
                socks.append(s)
            self.assertTrue(self.broker.api_versions_ok())
        finally:
            for s in socks:
                s.close()

    def test_request_after_peer_half_close(self):
        with self.connect() as s:
            s.sendall(request_frame(API_VERSIONS, 0, 5, b""))
            s.shutdown(socket.SHUT_WR)
            corr, _ = read_response(s, WAIT_S)
            self.assertEqual(corr, 5)


if __name__ == "__main__":
    unittest.main()
