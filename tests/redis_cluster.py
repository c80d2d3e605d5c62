"""A Redis Cluster of the test's own on loopback: Debian's ``redis-server`` and
``redis-cli --cluster create``, 3 masters with a replica each unless told otherwise. The tests
(and ``benchmarks/``) start it, break it (kill a master, move a slot) and stop it; the machine's
shared Redis is never touched.

Each node needs its data port and that port + 10000 (the cluster bus) free: ports are taken in
a block from a base chosen at random in 20000–29999 and checked before use."""

import contextlib
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_block(size: int) -> int:
    for _ in range(200):
        base = random.randrange(20000, 30000 - size)
        ports = [*range(base, base + size), *range(base + 10000, base + 10000 + size)]
        if all(_port_free(port) for port in ports):
            return base
    raise RuntimeError("no free block of ports for a Redis Cluster")


def _wait(condition: Callable[[], bool], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.1)


def _command(node: "Node", *args: object) -> Any:
    return node.client.execute_command(*args)  # type: ignore[no-untyped-call]  # redis-py


@dataclass
class Node:
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5)


class RedisCluster:
    def __init__(self, directory: Path, masters: int = 3, replicas: int = 1) -> None:
        self.directory = directory
        self.masters, self.replicas = masters, replicas
        base = _free_block(masters * (1 + replicas))
        self.nodes = [Node(port) for port in range(base, base + masters * (1 + replicas))]

    @property
    def url(self) -> str:
        """``REALTIME_REDIS_URL`` for this cluster (every node a seed)."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes[:3])

    def node(self, port: int) -> Node:
        return next(n for n in self.nodes if n.port == port)

    def start_node(self, node: Node) -> None:
        executable = shutil.which("redis-server")
        assert executable, "redis-server is needed"
        node_dir = self.directory / str(node.port)
        node_dir.mkdir(parents=True, exist_ok=True)
        node.process = subprocess.Popen(
            [
                executable,
                "--bind",
                "127.0.0.1",
                "--port",
                str(node.port),
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "1000",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(node_dir),
                "--logfile",
                str(node_dir / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait(lambda: bool(node.client.ping()), f"redis-server on {node.port}", 10)

    def start(self) -> None:
        for node in self.nodes:
            self.start_node(node)
        subprocess.run(
            [
                shutil.which("redis-cli") or "redis-cli",
                "--cluster",
                "create",
                *(f"127.0.0.1:{n.port}" for n in self.nodes),
                "--cluster-replicas",
                str(self.replicas),
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        self.wait_healthy()

    def _info(self, node: Node) -> dict[str, str]:
        raw = _command(node, "CLUSTER", "INFO").decode()
        return dict(line.split(":", 1) for line in raw.split() if ":" in line)

    def primaries(self) -> list[Node]:
        """The running nodes that are masters now, by their own account."""
        return [
            n
            for n in self.nodes
            if n.process is not None and n.client.info("replication")["role"] == "master"
        ]

    def wait_healthy(self, timeout: float = 30) -> None:
        """Every running node sees the cluster ``ok`` with ``self.masters`` masters, and every
        replica is in sync with its master."""

        def healthy() -> bool:
            running = [n for n in self.nodes if n.process is not None]
            if any(self._info(n)["cluster_state"] != "ok" for n in running):
                return False
            if len(self.primaries()) != self.masters:
                return False
            for node in running:
                replication = node.client.info("replication")
                if replication["role"] == "slave" and replication["master_link_status"] != "up":
                    return False
            return True

        _wait(healthy, "the Redis Cluster is healthy", timeout)

    def slot(self, key: str) -> int:
        return int(_command(self.primaries()[0], "CLUSTER", "KEYSLOT", key))

    def owner(self, key: str) -> Node:
        """The master of ``key``'s slot."""
        slot = self.slot(key)
        running = next(n for n in self.nodes if n.process is not None)
        for start, end, master, *_ in _command(running, "CLUSTER", "SLOTS"):
            if start <= slot <= end:
                return self.node(int(master[1]))
        raise AssertionError(f"slot {slot} is not served")

    def kill(self, node: Node) -> None:
        """SIGKILL a node, as a crash would."""
        assert node.process is not None
        node.process.kill()
        node.process.wait(timeout=10)
        node.process = None

    def wait_promoted(self, dead: Node, timeout: float = 30) -> None:
        """A replica took over ``dead``'s slots: the cluster is ``ok`` again without it."""

        def promoted() -> bool:
            running = [n for n in self.nodes if n.process is not None]
            return len(self.primaries()) == self.masters and all(
                self._info(n)["cluster_state"] == "ok" for n in running
            )

        _wait(promoted, f"a replica of {dead.port} is promoted", timeout)

    def migrate_slot_of(self, key: str, target: Node) -> None:
        """Move ``key``'s slot, with its keys, to ``target`` (a master), the way
        ``redis-cli --cluster reshard`` does: SETSLOT IMPORTING/MIGRATING, MIGRATE, SETSLOT NODE."""
        source = self.owner(key)
        assert source.port != target.port
        slot = self.slot(key)
        source_id = _command(source, "CLUSTER", "MYID").decode()
        target_id = _command(target, "CLUSTER", "MYID").decode()
        _command(target, "CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
        _command(source, "CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
        while keys := _command(source, "CLUSTER", "GETKEYSINSLOT", slot, 100):
            _command(source, "MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys)
        for node in self.primaries():
            _command(node, "CLUSTER", "SETSLOT", slot, "NODE", target_id)
        _wait(lambda: self.owner(key).port == target.port, f"slot {slot} moved", 10)

    def flush(self) -> None:
        for node in self.primaries():
            node.client.flushall()

    def stop(self) -> None:
        for node in self.nodes:
            if node.process is not None:
                self.kill(node)


@contextlib.contextmanager
def run_redis_cluster(
    directory: Path, masters: int = 3, replicas: int = 1
) -> Iterator[RedisCluster]:
    cluster = RedisCluster(directory, masters, replicas)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
