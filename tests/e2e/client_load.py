"""Shared by the tests that load the broker while checking it keeps serving a real client:
`ClientLoad`, a confluent-kafka producer and consumer in a thread, and raw Produce v3 frames
(`record_batch`, `produce_v3`, `parse_produce_v3_response`) for connections that misbehave."""

import os
import struct
import threading
import time

try:
    import confluent_kafka as ck
except ImportError:  # pragma: no cover
    ck = None
try:
    from kafka.record.default_records import DefaultRecordBatchBuilder
except ImportError:  # pragma: no cover
    DefaultRecordBatchBuilder = None

WAIT_S = 20


def record_batch(records, batch_size=1 << 20):
    """A valid v2 record batch (kafka-python's builder computes the CRC32C)."""
    b = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=False,
                                  producer_id=-1, producer_epoch=-1, base_sequence=-1,
                                  batch_size=batch_size)
    for i, (k, v) in enumerate(records):
        if b.append(i, timestamp=int(time.time() * 1000), key=k, value=v, headers=[]) is None:
            raise ValueError("record %d does not fit a batch of %d bytes" % (i, batch_size))
    return bytes(b.build())


def produce_v3(topic, partition, batch, acks=1):
    body = struct.pack(">hhi", -1, acks, 5000)  # null transactional id, acks, timeout
    body += struct.pack(">ih", 1, len(topic)) + topic
    body += struct.pack(">iii", 1, partition, len(batch)) + batch
    return body


def parse_produce_v3_response(body):
    """Returns [(partition, error_code, base_offset)] of the single topic in a v3 response."""
    pos = 4  # topic count
    (name_len,) = struct.unpack_from(">h", body, pos)
    pos += 2 + name_len
    (n,) = struct.unpack_from(">i", body, pos)
    pos += 4
    out = []
    for _ in range(n):
        part, err, base, _ts = struct.unpack_from(">ihqq", body, pos)
        pos += 22
        out.append((part, err, base))
    return out


class ClientLoad(threading.Thread):
    """Produces (acks=all) and consumes with confluent-kafka until stopped; records failures."""

    def __init__(self, bootstrap, topic):
        super().__init__(daemon=True)
        self.bootstrap, self.topic = bootstrap, topic
        self.stop_event = threading.Event()
        self.errors = []
        self.rounds = 0

    def run(self):
        try:
            self._run()
        except Exception as e:  # noqa: BLE001 - any failure is the test's business
            self.errors.append(repr(e))

    def _run(self):
        p = ck.Producer({"bootstrap.servers": self.bootstrap, "acks": "all", "linger.ms": 1,
                         "message.timeout.ms": WAIT_S * 1000, "log_level": 0})
        c = ck.Consumer({"bootstrap.servers": self.bootstrap, "group.id": "unused",
                         "enable.auto.commit": False, "fetch.wait.max.ms": 50,
                         "log_level": 0})
        c.assign([ck.TopicPartition(self.topic, i, ck.OFFSET_BEGINNING) for i in range(3)])
        expected = set()
        seen = set()
        failures = []
        while not self.stop_event.is_set():
            batch = {(b"k%d-%d" % (self.rounds, i), os.urandom(50)) for i in range(20)}
            for k, v in batch:
                p.produce(self.topic, key=k, value=v,
                          on_delivery=lambda err, msg: err and failures.append(str(err)))
            if p.flush(WAIT_S) != 0 or failures:
                self.errors.append("produce round %d: %s" % (self.rounds, failures[:3]))
                return
            expected |= batch
            deadline = time.monotonic() + WAIT_S
            while not expected <= seen and time.monotonic() < deadline:
                for m in c.consume(num_messages=500, timeout=0.2):
                    if m.error():
                        self.errors.append("consume: %s" % m.error())
                        return
                    seen.add((m.key(), m.value()))
            if not expected <= seen:
                self.errors.append("round %d: %d records not consumed"
                                   % (self.rounds, len(expected - seen)))
                return
            if seen - expected:
                self.errors.append("consumed records nobody produced")
                return
            self.rounds += 1
        c.close()
