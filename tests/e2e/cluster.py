"""A private Sluice cluster for end-to-end tests: one ZooKeeper (ci/zookeeper.sh, on a free
loopback port) and N brokers (broker.py's Broker, ids 1..N, each on 127.0.0.1 port 0 with its
own data directory). `close()` stops the brokers, then ZooKeeper, and removes every directory.
Only the processes started here are ever signalled.

ZooKeeper sessions are short (SESSION_MS) so that a killed broker's session expires, and the
controller moves its leaderships, within a few seconds."""

import os
import shutil
import socket
import subprocess
import tempfile
import time

from broker import Broker

HERE = os.path.dirname(os.path.abspath(__file__))
ZOOKEEPER_SH = os.path.join(HERE, "..", "..", "ci", "zookeeper.sh")
SESSION_MS = 4000


def free_port(host="127.0.0.1"):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self, brokers=3, zk_host="127.0.0.1", hosts=None, prefixes=None, **config):
        """`hosts` / `prefixes`: per broker id, the address it listens on and the command that
        runs it (Broker's `host` and `prefix`); `zk_host` the address ZooKeeper listens on."""
        self.dir = tempfile.mkdtemp(prefix="sluice-cluster-")
        self.zk_dir = os.path.join(self.dir, "zookeeper")
        self.zk_host = zk_host
        self.zk_port = free_port(zk_host)
        subprocess.run([ZOOKEEPER_SH, "start", self.zk_dir, str(self.zk_port)], check=True,
                       stdout=subprocess.DEVNULL, timeout=90,
                       env=dict(os.environ, SLUICE_ZK_ADDRESS=zk_host))
        self.zk_connect = "%s:%d/sluice" % (zk_host, self.zk_port)
        self.config = {"zookeeper_connect": self.zk_connect,
                       "zookeeper_session_timeout_ms": SESSION_MS,
                       "default_replication_factor": min(3, brokers),
                       "offsets_topic_num_partitions": 4,
                       "group_initial_rebalance_delay_ms": 0,
                       "replica_lag_time_max_ms": 5000,
                       "controlled_shutdown_timeout_ms": 10000,
                       "leader_imbalance_check_interval_seconds": 3,
                       "leader_imbalance_per_broker_percentage": 0}
        self.config.update(config)
        self.brokers = {}
        try:
            for i in range(1, brokers + 1):
                self.brokers[i] = Broker(broker_id=i, host=(hosts or {}).get(i, "127.0.0.1"),
                                         prefix=(prefixes or {}).get(i), **self.config)
            for b in self.brokers.values():
                self.wait_joined(b)
            if brokers:  # brokers=0: the caller starts its own (test_security_cluster.py)
                self.wait_settled(brokers)
        except BaseException:
            self.close()
            raise

    def wait_joined(self, broker, timeout=30, since=0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "joined the cluster" in broker.log_text()[since:]:
                return
            if not broker.alive():
                raise RuntimeError("broker exited:\n" + broker.log_tail())
            time.sleep(0.05)
        raise RuntimeError("broker did not join within %ss:\n%s" % (timeout, broker.log_tail()))

    def wait_settled(self, count, timeout=30):
        """Until the cluster reports `count` brokers and a controller (sluice cluster describe)."""
        deadline = time.monotonic() + timeout
        out = ""
        while time.monotonic() < deadline:
            r = subprocess.run([os.environ["SLUICE_BIN"], "cluster", "describe",
                                "--bootstrap-server", self.bootstrap],
                               capture_output=True, text=True, timeout=30)
            out = r.stdout + r.stderr
            if r.returncode == 0 and "\tBrokers: %d\n" % count in out and "Controller: -1" not in out:
                return
            time.sleep(0.1)
        raise RuntimeError("the cluster did not settle within %ss:\n%s" % (timeout, out))

    @property
    def bootstrap(self):
        return ",".join(b.bootstrap for b in self.brokers.values() if b.alive())

    def live(self):
        return [i for i, b in self.brokers.items() if b.alive()]

    def restart(self, i, hard=False):
        b = self.brokers[i]
        since = len(b.log_text())
        if b.alive():
            b.restart(hard=hard)
        else:
            b.kill()  # reaps it and closes its log
            b.start()
        self.wait_joined(b, since=since)
        return b

    def close(self):
        for b in self.brokers.values():
            try:
                b.close()
            except Exception:  # pragma: no cover - best effort
                pass
        subprocess.run([ZOOKEEPER_SH, "stop", self.zk_dir, str(self.zk_port)],
                       env=dict(os.environ, SLUICE_ZK_ADDRESS=self.zk_host),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
