"""The realtime engine on a Redis Cluster: 3 masters with a replica each, on loopback ports,
started by these tests (tests/redis_cluster.py), with a real server process on it.

Each stream's keys and channel live in one slot; publishing refuses a channel of another slot;
the realtime suite passes on the cluster; a master killed mid-stream and a slot migrated under
live subscribers lose nothing a client does not get back (0 lost, 0 duplicated)."""

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import websockets
from django.conf import settings

from domain.events import Event
from domain.services.tokens import access_token_issue
from realtime.engine import cluster_seeds, is_cluster
from realtime.publishing import (
    _PUBLISH,
    _publish_call,
    history_key,
    live_channel,
    outbox_key,
    publish_event,
    publish_events,
    seq_key,
)
from tests.conftest import DaphneServer, run_server
from tests.factories import UserFactory
from tests.polling import eventually
from tests.redis_cluster import RedisCluster, run_redis_cluster
from tests.ws import WsClient

pytestmark = [pytest.mark.django_db(transaction=True)]

# The realtime suite: streams, resume and history, the reservation flow's events, revocations.
REALTIME_SUITE = (
    "tests/test_realtime.py",
    "tests/test_event_replay.py",
    "tests/test_reservations_realtime.py",
    "tests/test_revocation.py",
)
STREAMS = [f"beds.{code}" for code in (11, 26, 27, 28, 29, 30, 31, 36, 41, 43, 44, 45, 46, 47)]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    with run_redis_cluster(tmp_path_factory.mktemp("cluster")) as running:
        yield running


@pytest.fixture
def on_cluster(cluster: RedisCluster, monkeypatch: pytest.MonkeyPatch) -> RedisCluster:
    """This test process publishes to the cluster too."""
    monkeypatch.setattr(settings, "REALTIME_REDIS_URL", cluster.url)
    return cluster


@pytest.fixture(scope="module")
def cluster_server(
    django_db_setup: None, cluster: RedisCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DaphneServer]:
    with run_server(
        tmp_path_factory.mktemp("cluster-server"),
        "-m",
        "realtime.serving.server",
        "project.asgi:application",
        env={"REALTIME_REDIS_URL": cluster.url},
    ) as server:
        yield server


def _one_stream_per_master(cluster: RedisCluster) -> list[str]:
    by_master: dict[int, str] = {}
    for stream in STREAMS:
        by_master.setdefault(cluster.owner(seq_key(stream)).port, stream)
    assert len(by_master) == 3, f"{STREAMS} do not cover the 3 masters"
    return list(by_master.values())


def test_cluster_urls_name_their_seeds() -> None:
    assert is_cluster("redis+cluster://10.0.0.1:7000,10.0.0.2:7001")
    assert not is_cluster("redis://10.0.0.1:6379/0")
    assert cluster_seeds("rediss+cluster://u:pw@a:7000,b:7001/0?ssl_cert_reqs=none") == (
        "rediss://u:pw@a:7000?ssl_cert_reqs=none",
        [("a", 7000), ("b", 7001)],
    )
    with pytest.raises(ValueError, match="only database 0"):
        cluster_seeds("redis+cluster://a:7000/3")
    with pytest.raises(ValueError, match="names no host"):
        cluster_seeds("redis+cluster://")


def test_a_streams_keys_and_channel_share_one_slot(cluster: RedisCluster) -> None:
    for stream in STREAMS:
        names = (seq_key(stream), history_key(stream), outbox_key(stream), live_channel(stream))
        slots = {cluster.slot(name) for name in names}
        assert len(slots) == 1, (stream, slots)


def test_publishing_to_a_channel_of_another_slot_is_refused(on_cluster: RedisCluster) -> None:
    """The script names its channel in KEYS: a channel with another stream's tag is refused
    by the master itself (CROSSSLOT), before anything is written."""
    stream, other = _one_stream_per_master(on_cluster)[:2]
    call = _publish_call(stream, "beds.changed", {"hpid": "X", "changes": {}})
    master = on_cluster.owner(seq_key(stream))
    before = master.client.get(seq_key(stream))
    with pytest.raises(redis.ResponseError, match=r"don't hash to the same slot"):  # CROSSSLOT
        master.client.eval(_PUBLISH, 4, *call.keys[:3], live_channel(other), *call.args)
    assert master.client.get(seq_key(stream)) == before
    # Same slot, right channel: published (and the counter moved).
    seq = publish_event(stream, "beds.changed", {"hpid": "X", "changes": {}})
    assert int(master.client.get(seq_key(stream)) or 0) == seq


def test_the_realtime_suite_passes_on_the_cluster(cluster: RedisCluster, tmp_path: Path) -> None:
    """The realtime suite, whole, in a pytest run whose realtime engine is the cluster (with a
    test database and a Redis database of its own for the rest)."""
    db = settings.DATABASES["default"]
    base = f"mysql://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 3306}"
    server, db_number = settings.REDIS_URL.rsplit("/", 1)
    redis_url = f"{server}/{13 if db_number != '13' else 12}"  # not this run's database
    cluster.flush()
    env = {
        **os.environ,
        "DATABASE_URL": f"{base}/weer_cluster_suite",
        "REDIS_URL": redis_url,
        "REALTIME_REDIS_URL": cluster.url,
    }
    env.pop("REDIS_NAMESPACE", None)
    run = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", *REALTIME_SUITE, "-q", "-p", "no:cacheprovider"),
            # Cluster clients that redis-py closes leave sockets to the garbage collector, whose
            # ResourceWarnings land on whichever test runs then: not this run's subject.
            *("-W", "ignore::pytest.PytestUnraisableExceptionWarning"),
        ],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    assert " passed" in run.stdout, run.stdout[-2000:]
    assert "skipped" not in run.stdout, run.stdout[-2000:]


class _Publisher(threading.Thread):
    """Publishes to each stream in turn until stopped, retrying an event until the cluster takes
    it (a master is down meanwhile), and records the seq each accepted event got. Each event has
    an outbox id, as the outbox relay's do: a retry of one the master took but whose answer was
    lost with the master is not published twice."""

    def __init__(self, streams: list[str], pause: float = 0.01) -> None:
        super().__init__(daemon=True)
        self.streams, self.pause = streams, pause
        self.accepted: dict[str, list[int]] = {s: [] for s in streams}
        self.refused = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.stopping.is_set():
            for stream in self.streams:
                deadline = time.monotonic() + 30
                while True:
                    try:
                        event = Event(stream, "beds.changed", {"hpid": "P", "n": n}, f"t{n}")
                        [seq] = publish_events([event])
                        break
                    except redis.RedisError:
                        self.refused += 1
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.05)
                self.accepted[stream].append(seq)
            n += 1
            time.sleep(self.pause)


class _Listener:
    """One client's messages per stream, checked as they come: each event follows the previous
    message's seq by one (a snapshot sets where the next must follow), none twice."""

    def __init__(self, client: WsClient, heads: dict[str, int]) -> None:
        self.client = client
        self.position = dict(heads)
        self.events = {s: 0 for s in heads}
        self.snapshots = {s: 0 for s in heads}
        self.seen: dict[str, set[int]] = {s: set() for s in heads}
        self.faults: list[str] = []

    async def read_until(self, targets: dict[str, int], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while any(self.position[s] < seq for s, seq in targets.items()):
            message = await self.client.next(timeout=max(0.1, deadline - time.monotonic()))
            self._take(message)

    def _take(self, message: dict[str, Any]) -> None:
        stream, seq = message.get("stream"), message.get("seq")
        if stream not in self.position or not isinstance(seq, int):
            return
        if message["type"] == "snapshot":  # a fresh start: what came before is superseded
            self.snapshots[stream] += 1
            self.seen[stream].clear()
        elif seq != self.position[stream] + 1:
            self.faults.append(f"{stream}: {seq} after {self.position[stream]}")
        else:
            n = message["data"]["n"]
            if n in self.seen[stream]:
                self.faults.append(f"{stream}: event {n} twice")
            self.seen[stream].add(n)
            self.events[stream] += 1
        self.position[stream] = seq


def _reconnects(server: DaphneServer) -> float:
    """``weer_hub_pubsub_reconnects_total`` of the server's processes."""
    lines = server.metrics().splitlines()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in lines
        if line.startswith("weer_hub_pubsub_reconnects_total{")
    )


async def _listeners(server: DaphneServer, streams: list[str], count: int) -> list[_Listener]:
    user = await asyncio.to_thread(UserFactory)
    token = access_token_issue(user=user)
    listeners = []
    for _ in range(count):
        socket = await websockets.connect(f"{server.ws_url}?token={token}")
        client = WsClient(socket)
        heads = {}
        for stream in streams:
            heads[stream] = (await client.subscribe(stream))["seq"]
            snapshot = await client.next()
            assert snapshot["type"] == "snapshot", snapshot
        listener = _Listener(client, heads)
        listener.snapshots = dict.fromkeys(streams, 1)
        listeners.append(listener)
    return listeners


@pytest.mark.asyncio
async def test_a_slot_migration_keeps_history_and_live_subscribers(
    on_cluster: RedisCluster, cluster_server: DaphneServer
) -> None:
    """A stream's slot moves to another master between two bursts: the subscribers get every
    event of both bursts in order, and a client resuming from before the first gets them all
    from history, now on the new master."""
    stream = _one_stream_per_master(on_cluster)[0]
    listeners = await _listeners(cluster_server, [stream], 10)
    start = listeners[0].position[stream]
    try:
        first = [publish_event(stream, "beds.changed", {"hpid": "M", "n": n}) for n in range(20)]
        source = on_cluster.owner(seq_key(stream))
        target = next(n for n in on_cluster.primaries() if n.port != source.port)
        await asyncio.to_thread(on_cluster.migrate_slot_of, seq_key(stream), target)
        second = [
            publish_event(stream, "beds.changed", {"hpid": "M", "n": n}) for n in range(20, 40)
        ]
        assert first + second == list(range(start + 1, start + 41))
        for listener in listeners:
            await listener.read_until({stream: second[-1]}, timeout=15)
            assert listener.faults == []
            assert listener.events[stream] == 40
        assert target.client.xlen(history_key(stream)) >= 40
        user = await asyncio.to_thread(UserFactory)
        async with WsClient.connect(cluster_server, access_token_issue(user=user)) as resumed:
            await resumed.subscribe(stream, since={stream: start})
            replay = await resumed.events(40)
            assert [e["seq"] for e in replay] == first + second
            assert {e["type"] for e in replay} == {"beds.changed"}
    finally:
        for listener in listeners:
            await listener.client.socket.close()


@pytest.mark.asyncio
async def test_a_master_killed_mid_stream_loses_nothing_after_resume(
    on_cluster: RedisCluster, cluster_server: DaphneServer
) -> None:
    """Events flow to 30 clients on a stream of each master; one master is killed (SIGKILL) and
    its replica promoted. Every client ends with every event each stream accepted, each once,
    in order, or a snapshot (reason resync) where the new master had not received some: 0
    lost, 0 duplicated."""
    streams = _one_stream_per_master(on_cluster)
    listeners = await _listeners(cluster_server, streams, 30)
    reconnects_before = _reconnects(cluster_server)
    publisher = _Publisher(streams)
    victim = on_cluster.owner(seq_key(streams[0]))
    try:
        publisher.start()

        async def some_published() -> bool:
            return all(len(seqs) >= 50 for seqs in publisher.accepted.values())

        await eventually(some_published, "50 events a stream before the kill", timeout=30)
        on_cluster.kill(victim)
        await asyncio.to_thread(on_cluster.wait_promoted, victim)
        accepted_at_promotion = {s: len(seqs) for s, seqs in publisher.accepted.items()}

        async def more_published() -> bool:
            return all(
                len(publisher.accepted[s]) >= n + 50 for s, n in accepted_at_promotion.items()
            )

        await eventually(more_published, "50 events a stream after the failover", timeout=60)
        publisher.stopping.set()
        await asyncio.to_thread(publisher.join, 60)
        last = {s: seqs[-1] for s, seqs in publisher.accepted.items()}
        await asyncio.gather(*(listener.read_until(last, timeout=30) for listener in listeners))
        for listener in listeners:
            assert listener.faults == [], listener.faults[:5]
            for stream in streams:
                assert listener.position[stream] == last[stream]
        # The hub counted the move on /metrics (the WeerRedisFailover alert).
        assert await eventually(
            lambda: asyncio.to_thread(lambda: _reconnects(cluster_server) > reconnects_before),
            "the failover on /metrics",
        )
        # The streams of the surviving masters were never interrupted: no snapshot, every event.
        for listener in listeners:
            for stream in streams[1:]:
                assert listener.snapshots[stream] == 1, stream  # the one on subscribing
                assert listener.events[stream] == len(publisher.accepted[stream])
    finally:
        publisher.stopping.set()
        for listener in listeners:
            await listener.client.socket.close()
    print(
        f"\nmaster kill: {publisher.refused} publishes refused during the failover; "
        f"killed stream: {listeners[0].events[streams[0]]} events delivered of "
        f"{len(publisher.accepted[streams[0]])} accepted, "
        f"{listeners[0].snapshots[streams[0]] - 1} resync snapshot(s)"
    )
