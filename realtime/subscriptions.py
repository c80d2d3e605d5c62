"""The hub's sharded pub/sub subscriptions to the streams' live channels, on one Redis or on a
Redis Cluster (``realtime.engine``), read as one ordered flow of messages.

Each subscription is ``SSUBSCRIBE``d on the connection of the master that owns its channel's
slot: one connection per master in a cluster, the one connection of a single Redis. A task per
connection reads it and hands messages on in arrival order, so a quiet shard never delays a busy
one. Each task also keeps its connection honest: after ``PING_AFTER_SILENCE`` without a message
it pings, and gives the connection up (redis-py reconnects and resubscribes on the next read) if
no answer comes within the Redis timeout.

In a cluster, a channel's owner changes when its slot migrates (the old owner pushes
``sunsubscribe``) or its master fails (the connection breaks; a replica takes over). Either
way the subscriptions re-home: the slot map is read again and each channel whose owner changed is
subscribed on the new one. Each (re)subscription's confirmation (``ssubscribe``) reaches the hub
like any other message, and the hub then repairs the stream from history: nothing pub/sub missed
meanwhile is lost. Sharded pub/sub is at most once; history is what makes it lossless.

redis-py 8.1's own ``ClusterPubSub`` is not used: its ``get_sharded_message(timeout=t)`` polls
node after node, waiting up to ``t`` on each, so a message on one shard waits behind a quiet
other (up to ``t`` × masters), and it re-homes channels only when some other command of the same
client hits ``MOVED``, not when a master's connection breaks.
"""

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from types import MethodType
from typing import Any

import redis.asyncio
import redis.asyncio.cluster
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError, SlotNotCoveredError

logger = logging.getLogger(__name__)

Message = dict[str, Any]


class _Connection:
    """One pub/sub connection (to one master) and the task that reads it."""

    def __init__(self, owner: "Subscriptions", name: str, pubsub: PubSub) -> None:
        self.owner, self.name, self.pubsub = owner, name, pubsub
        # redis-py's PubSub opens its connection on the first command without a lock: two first
        # subscribes at once would open two, and the confirmation on the one not read never
        # comes. (Un)subscribing one at a time keeps to one connection.
        self.lock = asyncio.Lock()
        self.down = False  # its connection failed and is not back yet
        self.reader: asyncio.Task[None] | None = None
        self.heard = 0.0  # when it last brought a message (monotonic)
        self.pinged: float | None = None  # when it was pinged, if the pong has not come

    async def subscribe(self, channel: str) -> None:
        async with self.lock:
            await self.pubsub.ssubscribe(channel)
        if self.reader is None or self.reader.done():
            self.reader = asyncio.ensure_future(self._read())

    async def unsubscribe(self, *channels: str) -> None:
        async with self.lock:
            await self.pubsub.sunsubscribe(*channels)

    async def _read(self) -> None:
        backoff = 0.1
        self.heard, self.pinged = time.monotonic(), None
        # Not subscribed while a subscribe is under way is not the end: the answer to an
        # unsubscribe can come while the same channel is being subscribed again.
        while self.pubsub.subscribed or self.lock.locked():
            try:
                message = await self.pubsub.get_message(timeout=1.0)
                if self.down:
                    self.down = False
                    logger.warning("hub: pub/sub connection to %s is back", self.name)
                    self.owner.back()
                backoff = 0.1
                if message is None:
                    await self._check_silence()
                    continue
                self.heard, self.pinged = time.monotonic(), None
                self.owner.arrived(self, message)
                while (more := await self.pubsub.get_message(timeout=0)) is not None:
                    self.owner.arrived(self, more)
            except asyncio.CancelledError:
                raise
            except Exception:
                if not self.down:
                    logger.exception("hub: pub/sub connection to %s failed", self.name)
                    self.down = True
                self.owner.failed(self)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
        self.owner.emptied(self)

    async def _check_silence(self) -> None:
        """Ping after a silence; give the connection up if the ping goes unanswered."""
        now, timeout = time.monotonic(), self.owner.timeout
        if self.pinged is None and now - self.heard > self.owner.ping_after:
            async with self.lock:
                await self.pubsub.ping()
            self.pinged = now
        elif self.pinged is not None and now - self.pinged > timeout:
            self.heard, self.pinged = now, None
            if self.pubsub.connection is not None:
                await self.pubsub.connection.disconnect()
            raise redis.ConnectionError(f"Redis did not answer a ping within {timeout} s")

    async def close(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
            await asyncio.gather(self.reader, return_exceptions=True)
        await self.pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py: untyped
        if self.owner.clustered:  # its pool is its own (a single Redis's is the client's)
            await self.pubsub.connection_pool.disconnect()


class Subscriptions:
    """Sharded subscriptions of one hub. ``get`` returns the next messages (all that have
    arrived, in order); ``down(channel)`` says whether the connection its channel is on failed
    and is not back (joins fail fast then instead of waiting)."""

    def __init__(
        self,
        engine: "redis.asyncio.Redis | redis.asyncio.RedisCluster",
        *,
        timeout: float,
        ping_after: float,
        on_lost: Callable[[list[str]], None],
        on_back: Callable[[], None],
    ) -> None:
        """``on_lost(channels)``: their connection failed; ``on_back()``: a connection is back,
        or a re-homing moved channels to another master."""
        self.engine, self.timeout, self.ping_after = engine, timeout, ping_after
        self._on_lost, self._on_back = on_lost, on_back
        self._connections: dict[str, _Connection] = {}
        self._home: dict[str, str] = {}  # channel → name of the connection it is subscribed on
        self._arrived: list[Message] = []
        self._wake = asyncio.Event()
        self._rehoming: asyncio.Task[None] | None = None
        # Channels their master unsubscribed us from (a slot migration), with how many re-homing
        # passes found the slot map still naming that master.
        self._pushed_out: dict[str, int] = {}
        self._closing: set[asyncio.Future[None]] = set()
        self._leaving: Counter[str] = Counter()  # our unsubscribes not yet answered
        self.clustered = isinstance(engine, redis.asyncio.RedisCluster)

    # -- what the hub calls ----------------------------------------------------------------

    async def subscribe(self, channel: str) -> None:
        connection = await self._connection_for(channel)
        self._home[channel] = connection.name
        try:
            await connection.subscribe(channel)
        except BaseException:
            if self._home.get(channel) == connection.name:
                del self._home[channel]
            raise

    async def unsubscribe(self, *channels: str) -> None:
        by_connection: dict[str, list[str]] = {}
        for channel in channels:
            if (name := self._home.pop(channel, None)) is not None:
                by_connection.setdefault(name, []).append(channel)
        for name, names in by_connection.items():
            if (connection := self._connections.get(name)) is not None:
                # Their sunsubscribe answers are not pushes, even for a channel subscribed again
                # before they come back (a stream dropped and joined at once).
                self._leaving.update(names)
                await connection.unsubscribe(*names)

    def down(self, channel: str | None = None) -> bool:
        """Whether the connection of ``channel`` (or, without one, any connection) is down."""
        if channel is None:
            return any(c.down for c in self._connections.values())
        name = self._home.get(channel)
        connection = self._connections.get(name) if name is not None else None
        return connection is not None and connection.down

    async def get(self, wait: float, limit: int) -> list[Message]:
        """Up to ``limit`` of what has arrived, in order, waiting up to ``wait`` seconds for
        something (then [])."""
        if not self._arrived:
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), wait)
            except TimeoutError:
                return []
        messages, self._arrived = self._arrived[:limit], self._arrived[limit:]
        return messages

    async def close(self) -> None:
        if self._rehoming is not None:
            self._rehoming.cancel()
            await asyncio.gather(self._rehoming, return_exceptions=True)
        for connection in list(self._connections.values()):
            await connection.close()
        self._connections.clear()

    # -- what the connections call ---------------------------------------------------------

    def arrived(self, connection: _Connection, message: Message) -> None:
        if message["type"] == "sunsubscribe":
            channel = message["channel"].decode()
            if self._leaving[channel]:  # the answer to our own unsubscribe
                self._leaving[channel] -= 1
                if not self._leaving[channel]:
                    del self._leaving[channel]
                return
            if self.clustered and self._home.get(channel) == connection.name:
                # Not asked for: the server moved the channel's slot to another master.
                self._pushed_out.setdefault(channel, 0)
                self._rehome(f"{channel} left {connection.name}")
            return
        self._arrived.append(message)
        self._wake.set()

    def back(self) -> None:
        self._on_back()

    def failed(self, connection: _Connection) -> None:
        lost = [ch for ch, name in self._home.items() if name == connection.name]
        self._on_lost(lost)
        if self.clustered:
            self._rehome(f"the connection to {connection.name} failed")

    def emptied(self, connection: _Connection) -> None:
        """A connection with no subscriptions left: closed (a cluster's, once unused)."""
        if self.clustered and self._connections.get(connection.name) is connection:
            del self._connections[connection.name]
            closing = asyncio.ensure_future(connection.close())
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)

    # -- where channels live ---------------------------------------------------------------

    async def _connection_for(self, channel: str) -> _Connection:
        if not isinstance(self.engine, redis.asyncio.RedisCluster):
            name = "redis"
            if name not in self._connections:
                pubsub = self.engine.pubsub(ignore_subscribe_messages=False)
                self._connections[name] = _Connection(self, name, pubsub)
            return self._connections[name]
        await self.engine.initialize()  # once: reads the slot map
        node = self._master_of(channel)  # the slot's master
        connection = self._connections.get(node.name)
        if connection is None:
            pubsub = PubSub(
                connection_pool=redis.asyncio.ConnectionPool(
                    **{**node.connection_kwargs, "host": node.host, "port": node.port}
                ),
                encoder=self.engine.encoder,
            )
            # After a reconnect, resubscribe one SSUBSCRIBE per slot: a node serves many slots
            # and one SSUBSCRIBE of channels in several would be refused (CROSSSLOT).
            # redis-py's own method for that (pinned: constraints.txt).
            pubsub._resubscribe_shard_channels = MethodType(  # type: ignore[method-assign]  # noqa: SLF001
                redis.asyncio.cluster.ClusterPubSub._resubscribe_shard_channels,  # noqa: SLF001
                pubsub,
            )
            connection = self._connections[node.name] = _Connection(self, node.name, pubsub)
        return connection

    def _master_of(self, channel: str) -> "redis.asyncio.cluster.ClusterNode":
        assert isinstance(self.engine, redis.asyncio.RedisCluster)  # noqa: S101  (clustered only)
        node = self.engine.get_node_from_key(channel)
        if node is None:
            raise SlotNotCoveredError(f"no master serves the slot of {channel}")
        return node

    def _rehome(self, cause: str) -> None:
        if self._rehoming is None or self._rehoming.done():
            logger.warning("hub: re-homing sharded subscriptions (%s)", cause)
            self._rehoming = asyncio.ensure_future(self._rehome_until_settled())

    async def _rehome_until_settled(self) -> None:
        """Re-home until every channel is on a live connection to its slot's master. The slot
        map read right after a change can be stale (a migration reaches the masters one by one;
        a dead master keeps its slots until a replica is promoted): passes repeat, backing off,
        until nothing is left to move and no connection is down."""
        backoff = 0.05
        while True:
            try:
                if await self._rehome_pass():
                    return
            except Exception:
                logger.exception("hub: re-homing failed; retrying")
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 1.0)

    async def _rehome_pass(self) -> bool:
        """One pass: read the slot map, move each channel whose slot has a new master (or that
        its master pushed out) there. True when all is settled."""
        assert isinstance(self.engine, redis.asyncio.RedisCluster)  # noqa: S101  (clustered only)
        try:
            await self.engine.nodes_manager.initialize()
        except RedisError:
            logger.warning("hub: cannot read the cluster's slot map", exc_info=True)
            return False
        settled, moved = True, False
        for channel, name in list(self._home.items()):
            try:
                node = self._master_of(channel)
            except RedisError:  # its slot is not served right now: a later pass moves it
                settled = False
                continue
            pushed_out = channel in self._pushed_out
            if node.name == name and not pushed_out:
                continue
            if node.name == name:
                # Pushed out by a master the slot map still names: the map is stale, or the
                # slot came back. After a few passes, subscribe there again.
                self._pushed_out[channel] += 1
                if self._pushed_out[channel] < 5:
                    settled = False
                    continue
            if await self._move(channel, name):
                moved = True
            settled = settled and channel not in self._pushed_out
        if moved:
            self._on_back()
        return settled and not any(c.down for c in self._connections.values())

    async def _move(self, channel: str, old_name: str) -> bool:
        old = self._connections.get(old_name)
        try:
            connection = await self._connection_for(channel)
            self._home[channel] = connection.name
            await connection.subscribe(channel)
        except RedisError:
            self._home[channel] = old_name
            logger.warning("hub: cannot subscribe %s; retrying", channel, exc_info=True)
            return False
        self._pushed_out.pop(channel, None)
        if old is not None and old is not connection:
            if not old.down:
                with contextlib.suppress(RedisError):
                    await old.unsubscribe(channel)
            else:
                # A dead master: forget the channel there, so its connection, once it has no
                # channels left, stops trying to reconnect.
                old.pubsub.shard_channels.pop(old.pubsub.encoder.encode(channel), None)
        logger.warning("hub: %s moved from %s to %s", channel, old_name, connection.name)
        return True
