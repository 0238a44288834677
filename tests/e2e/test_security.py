"""Security end to end: TLS, SASL (PLAIN, SCRAM-SHA-256/512), ACLs and quotas with real clients.

A test CA, a server certificate (for 127.0.0.1 and localhost) and a client certificate
(CN=alice,O=Sluice) are made by `openssl` into a temporary directory. SCRAM users are created
with `sluice user add` through the SASL_PLAINTEXT listener, authenticated as the PLAIN super user.

- Transport: kcat and confluent-kafka over SSL with and without a client certificate (and a
  listener that requires one); SASL_PLAINTEXT and SASL_SSL with PLAIN and SCRAM-SHA-512 (kcat,
  confluent-kafka); kafka-python and kafkajs over SASL_SSL with SCRAM.
- Refusals: a wrong password and an unknown user (SASL_AUTHENTICATION_FAILED, logged without the
  password), a client that skips the handshake (closed), and garbage at the TLS and SASL layers
  (random bytes before and after the TLS handshake, a truncated record, a huge SASL token): each
  connection closed with a log line while the broker keeps serving.
- Authorization: a principal without WRITE producing, without READ fetching or joining a group,
  without DESCRIBE listing topics, each refused with Kafka's error code, while the principal
  that holds the ACL is served; the certificate's subject is the principal on SSL.
- Quotas: a producer over its producer_byte_rate is held near it; another user is not.
"""

import json
import os
import random
import shutil
import socket
import ssl
import struct
import subprocess
import tempfile
import time
import unittest

from broker import Broker, free_port, read_response, request_frame, sluice_binary, wait_closed

KCAT = shutil.which("kcat")
OPENSSL = shutil.which("openssl")
NODE = shutil.which("node")
HERE = os.path.dirname(os.path.abspath(__file__))
KAFKAJS_DRIVER = os.path.join(HERE, "kafkajs", "secure.js")
KAFKAJS = os.path.join(HERE, "kafkajs", "node_modules", "kafkajs", "package.json")

if KCAT is None or OPENSSL is None:
    print("E2E-SKIP: needs kcat and openssl")

ADMIN = ("admin", "admin-secret")
JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
        'username="admin" password="admin-secret" '
        'user_admin="admin-secret" user_alice="alice-secret" user_bob="bob-secret" '
        'user_carol="carol-secret";')
SASL_AUTHENTICATION_FAILED = 58


def make_pki(directory):
    """CA, server and client key pairs (PEM) in `directory`; returns their paths."""
    def run(*args):
        subprocess.run([OPENSSL] + list(args), cwd=directory, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=Sluice Test CA")
    with open(os.path.join(directory, "san.cnf"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for name, subject, ext in (("server", "/CN=localhost", ["-extfile", "san.cnf"]),
                               ("client", "/O=Sluice/CN=alice", [])):
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key", "-out",
            name + ".csr", "-subj", subject)
        run("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", name + ".pem", "-days", "2", *ext)
    return {k: os.path.join(directory, k + ".pem") for k in ("ca", "server", "client")} | {
        "server_key": os.path.join(directory, "server.key"),
        "client_key": os.path.join(directory, "client.key")}


def kcat(args, stdin=None, timeout=30):
    return subprocess.run([KCAT] + args, input=stdin, capture_output=True, timeout=timeout)


def sluice(args, timeout=30):
    return subprocess.run([sluice_binary()] + args, capture_output=True, text=True,
                          timeout=timeout)


class SecureBroker:
    """One broker with SSL, SSL-with-required-client-certificates, SASL_PLAINTEXT and SASL_SSL
    listeners; `authorizer` turns the ACL authorizer on (super user User:admin)."""

    def __init__(self, pki, authorizer=False, **extra):
        self.pki = pki
        self.ports = {n: free_port() for n in ("SASL_PLAINTEXT", "SSL", "MTLS", "SASL_SSL")}
        listeners = ",".join("%s://127.0.0.1:%d" % (n, p) for n, p in self.ports.items())
        config = {
            "listener.security.protocol.map":
                "SSL:SSL,MTLS:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL",
            "ssl.certificate.location": pki["server"],
            "ssl.key.location": pki["server_key"],
            "ssl.ca.location": pki["ca"],
            "ssl.client.auth": "requested",
            "listener.name.mtls.ssl.client.auth": "required",
            "sasl.jaas.config": JAAS,
            "auto.create.topics.enable": "true",
        }
        if authorizer:
            config.update({"authorizer.class.name": "kafka.security.authorizer.AclAuthorizer",
                           "super.users": "User:admin"})
        config.update(extra)
        self.broker = Broker(num_partitions=1, listeners=listeners, **config)

    def addr(self, listener):
        return "127.0.0.1:%d" % self.ports[listener]

    def admin(self, *args):
        """A `sluice` client command as the PLAIN super user over SASL_PLAINTEXT."""
        r = sluice(list(args) + ["--bootstrap-server", self.addr("SASL_PLAINTEXT"),
                                 "--sasl-mechanism", "PLAIN", "--sasl-username", ADMIN[0],
                                 "--sasl-password", ADMIN[1]])
        if r.returncode != 0:
            raise AssertionError("sluice %s failed: %s%s" % (args, r.stdout, r.stderr))
        return r.stdout

    def close(self):
        self.broker.close()


def kcat_tls(pki, cert=False):
    args = ["-X", "ssl.ca.location=" + pki["ca"]]
    if cert:
        args += ["-X", "ssl.certificate.location=" + pki["client"],
                 "-X", "ssl.key.location=" + pki["client_key"]]
    return args


def kcat_sasl(mechanism, user, password, tls_pki=None):
    args = ["-X", "security.protocol=" + ("SASL_SSL" if tls_pki else "SASL_PLAINTEXT"),
            "-X", "sasl.mechanism=" + mechanism, "-X", "sasl.username=" + user,
            "-X", "sasl.password=" + password]
    if tls_pki:
        args += ["-X", "ssl.ca.location=" + tls_pki["ca"]]
    return args


class PkiTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if KCAT is None or OPENSSL is None:
            raise unittest.SkipTest("needs kcat and openssl")
        cls.tmp = tempfile.mkdtemp(prefix="sluice-pki-")
        cls.pki = make_pki(cls.tmp)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)


class TransportTest(PkiTestCase):
    """TLS and SASL with every client, no authorizer."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.b = SecureBroker(cls.pki)
        cls.b.admin("user", "add", "scram512", "--password", "s512-pw")
        cls.b.admin("user", "add", "scram256", "--password", "s256-pw", "--mechanism",
                    "SCRAM-SHA-256")

    @classmethod
    def tearDownClass(cls):
        cls.b.close()
        super().tearDownClass()

    def roundtrip_kcat(self, listener, extra, topic, value):
        p = kcat(["-P", "-b", self.b.addr(listener), "-t", topic, "-X",
                  "security.protocol=" + ("SSL" if listener in ("SSL", "MTLS") else "PLAINTEXT")]
                 + extra, stdin=value)
        self.assertEqual(p.returncode, 0, p.stderr)
        c = kcat(["-C", "-b", self.b.addr(listener), "-t", topic, "-e", "-q", "-X",
                  "security.protocol=" + ("SSL" if listener in ("SSL", "MTLS") else "PLAINTEXT")]
                 + extra)
        self.assertEqual(c.returncode, 0, c.stderr)
        return c.stdout.decode().split()

    def test_kcat_ssl_with_and_without_client_certificate(self):
        self.assertEqual(self.roundtrip_kcat("SSL", kcat_tls(self.pki), "ssl-anon", b"one\n"), ["one"])
        self.assertEqual(self.roundtrip_kcat("SSL", kcat_tls(self.pki, cert=True), "ssl-cert", b"two\n"),
                         ["two"])

    def test_tls12_and_tls13_handshakes(self):
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            ctx = ssl.create_default_context(cafile=self.pki["ca"])
            ctx.minimum_version = ctx.maximum_version = version
            with ctx.wrap_socket(socket.create_connection(("127.0.0.1", self.b.ports["SSL"]), timeout=5),
                                 server_hostname="localhost") as t:
                self.assertEqual(t.version(), {ssl.TLSVersion.TLSv1_2: "TLSv1.2",
                                               ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version])
                t.sendall(request_frame(18, 0, 5, b""))
                corr, body = read_response(t)
                self.assertEqual(corr, 5)
                self.assertEqual(struct.unpack_from(">h", body)[0], 0)
        # A TLS 1.1 client is refused (ssl.enabled.protocols is TLSv1.2,TLSv1.3).
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(self.pki["ca"])
        try:
            ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        except (ValueError, ssl.SSLError):
            return
        with self.assertRaises((ssl.SSLError, OSError)):
            with ctx.wrap_socket(socket.create_connection(("127.0.0.1", self.b.ports["SSL"]), timeout=5),
                                 server_hostname="localhost") as t:
                t.sendall(request_frame(18, 0, 5, b""))
                read_response(t)

    def test_kcat_listener_requiring_client_certificates(self):
        self.assertEqual(self.roundtrip_kcat("MTLS", kcat_tls(self.pki, cert=True), "mtls", b"m\n"), ["m"])
        r = kcat(["-L", "-b", self.b.addr("MTLS"), "-X", "security.protocol=SSL", "-m", "3"]
                 + kcat_tls(self.pki))
        self.assertNotEqual(r.returncode, 0, "a client without a certificate was served")
        self.assertIn("TLS handshake", self.b.broker.log_text())

    def test_kcat_sasl_plaintext_and_sasl_ssl(self):
        for mech, user, pw in (("PLAIN", "alice", "alice-secret"),
                               ("SCRAM-SHA-512", "scram512", "s512-pw"),
                               ("SCRAM-SHA-256", "scram256", "s256-pw")):
            for tls in (None, self.pki):
                topic = "sasl-%s-%s" % (mech.lower(), "ssl" if tls else "plain")
                addr = self.b.addr("SASL_SSL" if tls else "SASL_PLAINTEXT")
                args = kcat_sasl(mech, user, pw, tls)
                p = kcat(["-P", "-b", addr, "-t", topic] + args, stdin=b"v-" + user.encode() + b"\n")
                self.assertEqual(p.returncode, 0, p.stderr)
                c = kcat(["-C", "-b", addr, "-t", topic, "-e", "-q"] + args)
                self.assertEqual(c.returncode, 0, c.stderr)
                self.assertEqual(c.stdout.decode().split(), ["v-" + user])
        log = self.b.broker.log_text()
        self.assertIn("authenticated User:scram512 from 127.0.0.1 with SCRAM-SHA-512 on listener SASL_SSL", log)

    def test_confluent_kafka_ssl_and_sasl_ssl(self):
        try:
            from confluent_kafka import Consumer, Producer
        except ImportError:
            self.skipTest("python3-confluent-kafka")
        cases = [
            ("SSL", {"security.protocol": "SSL", "ssl.ca.location": self.pki["ca"]}),
            ("SSL", {"security.protocol": "SSL", "ssl.ca.location": self.pki["ca"],
                     "ssl.certificate.location": self.pki["client"],
                     "ssl.key.location": self.pki["client_key"]}),
            ("SASL_SSL", {"security.protocol": "SASL_SSL", "ssl.ca.location": self.pki["ca"],
                          "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "scram512",
                          "sasl.password": "s512-pw"}),
            ("SASL_SSL", {"security.protocol": "SASL_SSL", "ssl.ca.location": self.pki["ca"],
                          "sasl.mechanism": "PLAIN", "sasl.username": "bob",
                          "sasl.password": "bob-secret"}),
        ]
        for i, (listener, conf) in enumerate(cases):
            topic = "ck-%d" % i
            base = dict(conf, **{"bootstrap.servers": self.b.addr(listener)})
            p = Producer(dict(base, **{"acks": "all"}))
            for n in range(50):
                p.produce(topic, ("ck-%d-%d" % (i, n)).encode())
            self.assertEqual(p.flush(30), 0)
            c = Consumer(dict(base, **{"group.id": "ck-g-%d" % i, "auto.offset.reset": "earliest"}))
            c.subscribe([topic])
            got = []
            deadline = time.monotonic() + 30
            while len(got) < 50 and time.monotonic() < deadline:
                m = c.poll(0.5)
                if m is not None and m.error() is None:
                    got.append(m.value().decode())
            c.close()
            self.assertEqual(got, ["ck-%d-%d" % (i, n) for n in range(50)], conf)

    def test_kafka_python_sasl_ssl_scram(self):
        try:
            from kafka import KafkaConsumer, KafkaProducer
        except ImportError:
            self.skipTest("python3-kafka")
        ctx = ssl.create_default_context(cafile=self.pki["ca"])
        common = dict(bootstrap_servers=self.b.addr("SASL_SSL"), security_protocol="SASL_SSL",
                      ssl_context=ctx, sasl_mechanism="SCRAM-SHA-512",
                      sasl_plain_username="scram512", sasl_plain_password="s512-pw")
        p = KafkaProducer(acks="all", **common)
        for n in range(20):
            p.send("kp-scram", b"kp-%d" % n).get(timeout=20)
        p.close()
        c = KafkaConsumer("kp-scram", group_id="kp-g", auto_offset_reset="earliest",
                          consumer_timeout_ms=15000, **common)
        got = [m.value for m in c]
        c.close()
        self.assertEqual(got[:20], [b"kp-%d" % n for n in range(20)])

    def test_kafkajs_sasl_ssl_scram(self):
        if NODE is None or not os.path.isfile(KAFKAJS):
            self.skipTest("node and kafkajs (ci/install-deps.sh)")
        spec = {"topic": "kjs-scram", "group": "kjs-g", "count": 30, "ca": self.pki["ca"],
                "mechanism": "scram-sha-512", "username": "scram512", "password": "s512-pw",
                "timeout_ms": 60000}
        r = subprocess.run([NODE, KAFKAJS_DRIVER, "produce-consume", self.b.addr("SASL_SSL")],
                           input=json.dumps(spec), capture_output=True, text=True, timeout=90)
        line = [l for l in r.stdout.splitlines() if l.startswith(("RESULT", "FAIL"))]
        self.assertTrue(line and line[-1].startswith("RESULT"), r.stdout + r.stderr)
        values = json.loads(line[-1][len("RESULT "):])["values"]
        self.assertEqual(sorted(values), sorted("kafkajs-%d" % i for i in range(30)))

    # Refusals -------------------------------------------------------------------------------

    def sasl_authenticate_raw(self, mechanism, token):
        """SaslHandshake v1 + one SaslAuthenticate v1 on a fresh SASL_PLAINTEXT connection;
        returns (error code of the handshake, error code of authenticate, the socket)."""
        s = socket.create_connection(("127.0.0.1", self.b.ports["SASL_PLAINTEXT"]), timeout=5)
        mech = mechanism.encode()
        s.sendall(request_frame(17, 1, 1, struct.pack(">h", len(mech)) + mech))
        _, body = read_response(s)
        hs_error = struct.unpack_from(">h", body)[0]
        s.sendall(request_frame(36, 1, 2, struct.pack(">i", len(token)) + token))
        _, body = read_response(s)
        return hs_error, struct.unpack_from(">h", body)[0], s

    def test_wrong_password_and_unknown_user(self):
        for user, pw in ((b"alice", b"not-her-password"), (b"mallory", b"whatever")):
            hs, auth, s = self.sasl_authenticate_raw("PLAIN", b"\0" + user + b"\0" + pw)
            self.assertEqual(hs, 0)
            self.assertEqual(auth, SASL_AUTHENTICATION_FAILED)
            self.assertTrue(wait_closed(s), "the connection stayed open after a failed login")
            s.close()
        r = kcat(["-L", "-b", self.b.addr("SASL_PLAINTEXT"), "-m", "3"]
                 + kcat_sasl("SCRAM-SHA-512", "scram512", "wrong-pw"))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"Authentication failed", r.stderr)
        log = self.b.broker.log_text()
        self.assertIn("failed SASL PLAIN authentication from 127.0.0.1", log)
        self.assertIn("failed SASL SCRAM-SHA-512 authentication", log)
        for secret in ("not-her-password", "wrong-pw", "whatever"):
            self.assertNotIn(secret, log)
        self.assertRegex(self.roundtrip_kcat("SSL", kcat_tls(self.pki), "after-fail", b"ok\n")[0], "ok")

    def test_unsupported_mechanism_and_skipped_handshake(self):
        s = socket.create_connection(("127.0.0.1", self.b.ports["SASL_PLAINTEXT"]), timeout=5)
        s.sendall(request_frame(17, 1, 1, struct.pack(">h", 6) + b"GSSAPI"))
        _, body = read_response(s)
        self.assertEqual(struct.unpack_from(">h", body)[0], 33)  # UNSUPPORTED_SASL_MECHANISM
        s.close()
        # Metadata without authenticating: the connection is closed, nothing is answered.
        s = socket.create_connection(("127.0.0.1", self.b.ports["SASL_PLAINTEXT"]), timeout=5)
        s.sendall(request_frame(3, 1, 1, struct.pack(">i", -1)))
        self.assertTrue(wait_closed(s))
        s.close()
        self.assertIn("before SASL authentication completed", self.b.broker.log_text())

    def test_garbage_at_the_tls_and_sasl_layers(self):
        rng = random.Random(7)
        port_ssl = self.b.ports["SSL"]
        # Random bytes instead of a ClientHello.
        s = socket.create_connection(("127.0.0.1", port_ssl), timeout=5)
        s.sendall(bytes(rng.getrandbits(8) for _ in range(4096)))
        self.assertTrue(wait_closed(s))
        s.close()
        # A truncated TLS record: a handshake record header announcing 16 KiB, then close.
        s = socket.create_connection(("127.0.0.1", port_ssl), timeout=5)
        s.sendall(b"\x16\x03\x01\x40\x00" + b"\x01" * 100)
        s.close()
        # Random bytes after a completed handshake, at the record layer.
        ctx = ssl.create_default_context(cafile=self.pki["ca"])
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
        s = socket.create_connection(("127.0.0.1", port_ssl), timeout=5)
        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                s.sendall(out.read())
                data = s.recv(65536)
                self.assertTrue(data, "the broker closed during the handshake")
                inc.write(data)
        s.sendall(out.read())
        s.sendall(b"\x17\x03\x03\x00\x40" + bytes(rng.getrandbits(8) for _ in range(64)))
        self.assertTrue(wait_closed(s))
        s.close()
        # Garbage Kafka frames inside a good TLS session: closed as on plaintext.
        t = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port_ssl), timeout=5),
                            server_hostname="localhost")
        t.sendall(struct.pack(">i", 2 ** 31 - 1) + b"junk")
        self.assertTrue(wait_closed(t))
        t.close()
        # A huge SASL token before authentication: over sasl.server.max.receive.size.
        s = socket.create_connection(("127.0.0.1", self.b.ports["SASL_PLAINTEXT"]), timeout=5)
        s.sendall(request_frame(17, 1, 1, struct.pack(">h", 5) + b"PLAIN"))
        read_response(s)
        s.sendall(struct.pack(">i", 50 * 1024 * 1024) + b"\0" * 1024)
        self.assertTrue(wait_closed(s))
        s.close()
        # A token within the frame limit but over the SASL token bound.
        hs, auth, s = self.sasl_authenticate_raw("PLAIN", b"\0a\0" + b"x" * (100 * 1024))
        self.assertEqual(auth, SASL_AUTHENTICATION_FAILED)
        s.close()
        log = self.b.broker.log_text()
        self.assertIn("TLS handshake with", log)
        self.assertIn("TLS record from", log)
        self.assertIn("exceeds max_frame_bytes", log)
        self.assertTrue(self.b.broker.alive())
        self.assertEqual(self.roundtrip_kcat("SSL", kcat_tls(self.pki), "after-garbage", b"fine\n"),
                         ["fine"])


class AuthorizationTest(PkiTestCase):
    """The ACL authorizer with kafka-python, whose exceptions carry Kafka's error codes."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            import kafka  # noqa: F401
        except ImportError:
            raise unittest.SkipTest("python3-kafka")
        cls.b = SecureBroker(cls.pki, authorizer=True)
        b = cls.b
        b.admin("topic", "create", "orders", "--partitions", "1")
        b.admin("topic", "create", "audit", "--partitions", "1")
        b.admin("acl", "add", "--allow-principal", "User:alice", "--operation", "Write",
                "--topic", "orders")
        b.admin("acl", "add", "--allow-principal", "User:bob", "--operation", "Read",
                "--topic", "orders")
        b.admin("acl", "add", "--allow-principal", "User:bob", "--operation", "Read",
                "--group", "readers")
        b.admin("acl", "add", "--allow-principal", "User:alice", "--operation", "Read",
                "--topic", "audit")
        # The certificate's subject is the principal on SSL.
        b.admin("acl", "add", "--allow-principal", "User:CN=alice,O=Sluice", "--operation", "All",
                "--topic", "mtls-", "--resource-pattern-type", "prefixed")

    @classmethod
    def tearDownClass(cls):
        cls.b.close()
        super().tearDownClass()

    def client_args(self, user):
        return dict(bootstrap_servers=self.b.addr("SASL_PLAINTEXT"),
                    security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN",
                    sasl_plain_username=user, sasl_plain_password=user + "-secret")

    def test_produce_needs_write(self):
        from kafka import KafkaProducer
        from kafka.errors import TopicAuthorizationFailedError
        p = KafkaProducer(acks="all", retries=0, **self.client_args("alice"))
        meta = p.send("orders", b"from-alice").get(timeout=20)
        self.assertGreaterEqual(meta.offset, 0)
        p.close()
        p = KafkaProducer(acks="all", retries=0, max_block_ms=10000, **self.client_args("bob"))
        with self.assertRaises(TopicAuthorizationFailedError):
            p.send("orders", b"from-bob").get(timeout=20)
        p.close()

    def test_fetch_needs_read_and_join_needs_group_read(self):
        from kafka import KafkaConsumer, KafkaProducer, TopicPartition
        from kafka.errors import GroupAuthorizationFailedError, TopicAuthorizationFailedError
        p = KafkaProducer(acks="all", **self.client_args("alice"))
        p.send("orders", b"for-bob").get(timeout=20)
        p.close()
        # bob reads orders in group readers.
        c = KafkaConsumer("orders", group_id="readers", auto_offset_reset="earliest",
                          consumer_timeout_ms=10000, **self.client_args("bob"))
        got = [m.value for m in c]
        c.close()
        self.assertIn(b"for-bob", got)
        # alice may write orders but not read it.
        c = KafkaConsumer(auto_offset_reset="earliest", consumer_timeout_ms=5000,
                          **self.client_args("alice"))
        c.assign([TopicPartition("orders", 0)])
        with self.assertRaises(TopicAuthorizationFailedError):
            for _ in range(20):
                c.poll(timeout_ms=500)
        c.close()
        # alice may read audit, but not join the group readers.
        c = KafkaConsumer("audit", group_id="readers", consumer_timeout_ms=5000,
                          **self.client_args("alice"))
        with self.assertRaises(GroupAuthorizationFailedError):
            for _ in range(20):
                c.poll(timeout_ms=500)
        c.close()

    def test_metadata_hides_what_the_principal_may_not_describe(self):
        from kafka import KafkaConsumer
        c = KafkaConsumer(**self.client_args("carol"))
        self.assertEqual(c.topics(), set())
        c.close()
        c = KafkaConsumer(**self.client_args("bob"))
        self.assertEqual(c.topics(), {"orders"})  # READ implies DESCRIBE
        c.close()
        # Asked by name: TOPIC_AUTHORIZATION_FAILED (29), whether the topic exists or not.
        for topic in (b"audit", b"no-such-topic"):
            s = socket.create_connection(("127.0.0.1", self.b.ports["SASL_PLAINTEXT"]), timeout=5)
            s.sendall(request_frame(17, 1, 1, struct.pack(">h", 5) + b"PLAIN"))
            read_response(s)
            tok = b"\0carol\0carol-secret"
            s.sendall(request_frame(36, 1, 2, struct.pack(">i", len(tok)) + tok))
            read_response(s)
            # Metadata v1: topics [name], then read the topic error code.
            s.sendall(request_frame(3, 1, 3, struct.pack(">ih", 1, len(topic)) + topic))
            _, body = read_response(s)
            nbrokers = struct.unpack_from(">i", body)[0]
            off = 4
            for _ in range(nbrokers):
                off += 4
                hl = struct.unpack_from(">h", body, off)[0]
                off += 2 + hl + 4
                rl = struct.unpack_from(">h", body, off)[0]
                off += 2 + (rl if rl > 0 else 0)
            off += 4  # controller id
            ntopics = struct.unpack_from(">i", body, off)[0]
            self.assertEqual(ntopics, 1)
            self.assertEqual(struct.unpack_from(">h", body, off + 4)[0], 29, topic)
            s.close()
        self.assertNotIn("no-such-topic", sluice(["topic", "list", "--bootstrap-server",
                                                  self.b.addr("SASL_PLAINTEXT"), "--sasl-mechanism",
                                                  "PLAIN", "--sasl-username", "admin",
                                                  "--sasl-password", "admin-secret"]).stdout)

    def test_certificate_subject_is_the_ssl_principal(self):
        topic = "mtls-data"
        base = ["-b", self.b.addr("SSL"), "-t", topic, "-X", "security.protocol=SSL"]
        p = kcat(["-P"] + base + kcat_tls(self.pki, cert=True), stdin=b"cert-ok\n")
        self.assertEqual(p.returncode, 0, p.stderr)
        c = kcat(["-C", "-e", "-q"] + base + kcat_tls(self.pki, cert=True))
        self.assertEqual(c.stdout.decode().split(), ["cert-ok"])
        # Without the certificate the client is User:ANONYMOUS: refused.
        p = kcat(["-P"] + base + kcat_tls(self.pki), stdin=b"anon\n")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"authorization failed", p.stderr.lower())

    def test_acl_admin_apis_refuse_ordinary_users(self):
        r = sluice(["acl", "list", "--bootstrap-server", self.b.addr("SASL_PLAINTEXT"),
                    "--sasl-mechanism", "PLAIN", "--sasl-username", "bob",
                    "--sasl-password", "bob-secret"])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("CLUSTER_AUTHORIZATION_FAILED", r.stderr)
        listed = self.b.admin("acl", "list", "--topic", "orders")
        self.assertIn("User:alice Write", listed)
        self.assertIn("User:bob Read", listed)


class LimitsTest(unittest.TestCase):
    """max.connections.per.ip, and connections.max.reauth.ms for a client that does not
    re-authenticate (Debian's librdkafka 2.0.2 predates KIP-368 on the client side)."""

    @classmethod
    def setUpClass(cls):
        cls.port = free_port()
        cls.b = Broker(num_partitions=1, listeners="SASL_PLAINTEXT://127.0.0.1:%d" % cls.port,
                       **{"sasl.jaas.config": JAAS, "connections.max.reauth.ms": "1500",
                          "max.connections.per.ip": "3"})

    @classmethod
    def tearDownClass(cls):
        cls.b.close()

    def login(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        s.sendall(request_frame(17, 1, 1, struct.pack(">h", 5) + b"PLAIN"))
        read_response(s)
        tok = b"\0alice\0alice-secret"
        s.sendall(request_frame(36, 1, 2, struct.pack(">i", len(tok)) + tok))
        _, body = read_response(s)
        error = struct.unpack_from(">h", body)[0]
        # v1: error, error message (null: -1), auth bytes, session lifetime.
        off = 2
        msg_len = struct.unpack_from(">h", body, off)[0]
        off += 2 + max(msg_len, 0)
        off += 4 + struct.unpack_from(">i", body, off)[0]
        lifetime = struct.unpack_from(">q", body, off)[0]
        return s, error, lifetime

    def test_session_expires_without_reauthentication(self):
        s, error, lifetime = self.login()
        self.assertEqual(error, 0)
        self.assertEqual(lifetime, 1500)
        s.sendall(request_frame(18, 0, 3, b""))
        self.assertEqual(read_response(s)[0], 3)  # served while the session lasts
        time.sleep(2.0)
        s.sendall(request_frame(3, 1, 4, struct.pack(">i", -1)))
        self.assertTrue(wait_closed(s), "an expired session was still served")
        s.close()
        self.assertIn("expired without re-authentication", self.b.log_text())

    def test_connections_per_ip(self):
        socks = [socket.create_connection(("127.0.0.1", self.port), timeout=5) for _ in range(3)]
        try:
            time.sleep(0.3)
            extra = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            self.assertTrue(wait_closed(extra), "a 4th connection from one address was kept")
            extra.close()
            for s in socks:  # the first three are still served
                s.sendall(request_frame(18, 0, 9, b""))
                self.assertEqual(read_response(s)[0], 9)
        finally:
            for s in socks:
                s.close()
        self.assertIn("max.connections.per.ip reached", self.b.log_text())
        time.sleep(0.3)  # closed connections give their slots back
        s, error, _ = self.login()
        self.assertEqual(error, 0)
        s.close()


class QuotaTest(PkiTestCase):
    """producer_byte_rate for one user; another is not held back."""

    QUOTA = 256 * 1024  # bytes per second

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            import confluent_kafka  # noqa: F401
        except ImportError:
            raise unittest.SkipTest("python3-confluent-kafka")
        cls.b = SecureBroker(cls.pki)
        cls.b.admin("quota", "alter", "--user", "alice", "--add",
                    "producer_byte_rate=%d" % cls.QUOTA)

    @classmethod
    def tearDownClass(cls):
        cls.b.close()
        super().tearDownClass()

    def produce_rate(self, user, total_bytes):
        from confluent_kafka import Producer
        p = Producer({"bootstrap.servers": self.b.addr("SASL_PLAINTEXT"),
                      "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
                      "sasl.username": user, "sasl.password": user + "-secret",
                      "acks": "1", "linger.ms": 5, "batch.size": 65536})
        value = b"q" * 1000
        start = time.monotonic()
        for _ in range(total_bytes // len(value)):
            while True:
                try:
                    p.produce("quota-" + user, value)
                    break
                except BufferError:
                    p.poll(0.05)
        self.assertEqual(p.flush(120), 0)
        return total_bytes / (time.monotonic() - start)

    def test_producer_over_quota_is_throttled_others_are_not(self):
        # 3 MiB at 256 KiB/s: ~12 s. The first window's burst is allowed, so the bound is loose.
        throttled = self.produce_rate("alice", 3 * 1024 * 1024)
        free = self.produce_rate("bob", 3 * 1024 * 1024)
        print("quota %d B/s: throttled user %.0f B/s, free user %.0f B/s" % (self.QUOTA, throttled, free))
        self.assertLess(throttled, self.QUOTA * 1.6, "alice was not held near her quota")
        self.assertGreater(throttled, self.QUOTA * 0.4, "alice was held far below her quota")
        self.assertGreater(free, self.QUOTA * 4, "bob, without a quota, was throttled")
        desc = self.b.admin("quota", "describe")
        self.assertIn("user=alice producer_byte_rate=%d" % self.QUOTA, desc)


if __name__ == "__main__":
    unittest.main()
