"""The one publishing path: every event any client receives goes through ``publish_event``.

One Redis script, atomically per event: takes the stream's next sequence number, builds the
wire frame around the data (serialized once, here), appends it to the stream's bounded
history (a Redis Stream whose entry IDs are ``<seq>-0``), and publishes it to the stream's
sharded pub/sub channel (``SPUBLISH``), which every server process's hub listens to. The Redis
is the realtime engine (``realtime.engine``): one Redis, or a Redis Cluster where each stream
lives in the slot of its ``{stream}`` hash tag. Domain services do not call it
directly: they hand their events to ``domain.events.events_publish_on_commit``, which writes them
to the outbox in their transaction; the outbox relay (``domain.services.outbox``) hands them to
``publish_events`` (``settings.EVENTS_PUBLISHER``) once it commits, at least once, and the
script publishes each outbox id once.

Sequence numbers start from the clock (ms since epoch) when a stream's counter is created, so a
Redis that lost its data never reissues a number a client already holds: that client's
``since`` is then older than the history and it gets a snapshot.
"""

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import redis
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from redis.backoff import NoBackoff
from redis.retry import Retry

from domain.events import Event, stream_parse
from domain.redis_turns import TurnPipeline
from realtime.engine import AsyncEngine, SyncEngine, engine_url, sync_engine

# KEYS: seq, history, outbox ids, live channel (all four with the stream's {hash tag}: one
# cluster slot; the channel is a key so that a cluster routes and checks it like one). ARGV:
# frame head, data JSON, history ms, history maxlen, outbox id ("" for an event that has none).
# An outbox id already seen on the stream is a redelivery by the relay: nothing is published
# again and the seq it got is returned.
_PUBLISH = """
if ARGV[5] ~= '' then
  local seen = redis.call('ZSCORE', KEYS[3], ARGV[5])
  if seen then return tonumber(seen) end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('SET', KEYS[1], now - 1, 'NX')
local seq = redis.call('INCR', KEYS[1])
local frame = ARGV[1] .. seq .. ',"ts":' .. now .. ',"data":' .. ARGV[2] .. '}'
local added = redis.pcall(
  'XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], seq .. '-0', 'ts', now, 'f', frame)
if type(added) == 'table' and added.err then
  -- The counter is behind its own history (the two came back from different points in time):
  -- move it past the history's newest entry, so no number is used twice; hubs resync.
  local newest = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
  local top = tonumber(string.match(newest[1][1], '^(%d+)'))
  redis.call('SET', KEYS[1], top + 1000)
  seq = redis.call('INCR', KEYS[1])
  frame = ARGV[1] .. seq .. ',"ts":' .. now .. ',"data":' .. ARGV[2] .. '}'
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], seq .. '-0', 'ts', now, 'f', frame)
end
local cutoff = now - tonumber(ARGV[3])
local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
if tonumber(first[1][2][2]) < cutoff then
  -- Expire by age, at most 100 entries per publish so no single call runs long.
  local oldest = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 100)
  local keep_from = oldest[#oldest][1]
  for _, entry in ipairs(oldest) do
    if tonumber(entry[2][2]) >= cutoff then keep_from = entry[1] break end
  end
  redis.call('XTRIM', KEYS[2], 'MINID', keep_from)
end
redis.call('SPUBLISH', KEYS[4], seq .. ' ' .. frame)
if ARGV[5] ~= '' then
  -- Remember it by seq; forget beyond the history's length, as history forgets the event.
  redis.call('ZADD', KEYS[3], seq, ARGV[5])
  if redis.call('ZCARD', KEYS[3]) > tonumber(ARGV[4]) then
    redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -tonumber(ARGV[4]) - 1)
  end
end
return seq
"""

# KEYS: seq. ARGV: now (ms). The stream's current sequence number, creating the counter if new.
_HEAD = """
redis.call('SET', KEYS[1], tonumber(ARGV[1]) - 1, 'NX')
return tonumber(redis.call('GET', KEYS[1]))
"""

PUBLISHED_COUNTER = settings.REDIS_KEY_PREFIX + "metrics:published"


def seq_key(stream: str) -> str:
    # The {hash tag} keeps a stream's keys in one cluster slot.
    return f"{settings.REDIS_KEY_PREFIX}{{{stream}}}:seq"


def history_key(stream: str) -> str:
    return f"{settings.REDIS_KEY_PREFIX}{{{stream}}}:history"


def outbox_key(stream: str) -> str:
    """The outbox ids published on the stream lately (a sorted set scored by their seq)."""
    return f"{settings.REDIS_KEY_PREFIX}{{{stream}}}:outbox"


_LIVE_PREFIX, _LIVE_SUFFIX = settings.REDIS_KEY_PREFIX + "{", "}:live"


def live_channel(stream: str) -> str:
    return f"{_LIVE_PREFIX}{stream}{_LIVE_SUFFIX}"


def stream_of_channel(channel: str) -> str:
    """The stream whose ``live_channel`` this is (its inverse)."""
    return channel.removeprefix(_LIVE_PREFIX).removesuffix(_LIVE_SUFFIX)


class _WireEncoder(DjangoJSONEncoder):
    """Times go out in UTC ("…Z") whatever zone they were made in (the upstream's are KST)."""

    def default(self, o: object) -> Any:
        if isinstance(o, datetime) and o.tzinfo is not None:
            o = o.astimezone(UTC)
        return super().default(o)


def encode_json(data: object) -> str:
    return json.dumps(data, cls=_WireEncoder, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class _Call:
    keys: tuple[str, str, str, str]
    args: tuple[str, str, int, int, str]


def _publish_call(
    stream: str, kind: str, data: Mapping[str, Any], outbox_id: str | None = None
) -> _Call:
    if stream_parse(stream) is None:
        raise ValueError(f"Not a stream: {stream!r}")
    head = f'{{"type":{encode_json(kind)},"stream":{encode_json(stream)},"seq":'
    return _Call(
        keys=(seq_key(stream), history_key(stream), outbox_key(stream), live_channel(stream)),
        args=(
            head,
            encode_json(data),
            settings.REALTIME_HISTORY_SECONDS * 1000,
            settings.REALTIME_HISTORY_MAXLEN,
            outbox_id or "",
        ),
    )


_sync_clients: dict[str, SyncEngine] = {}  # by engine URL


def _client() -> SyncEngine:
    url = engine_url()
    client = _sync_clients.get(url)
    if client is None:
        # Bounded waits: a Redis that stopped answering (a partition, a paused server) fails
        # the publish within seconds instead of holding a request or a task forever (the
        # outbox keeps the events). One immediate retry: a pooled connection that a Redis
        # restart closed is replaced at once.
        client = _sync_clients[url] = sync_engine(
            url,
            socket_timeout=2,
            socket_connect_timeout=2,
            retry=Retry(NoBackoff(), 1),
        )
    return client


def _route(client: SyncEngine, call: _Call) -> dict[str, Any]:
    """Where a cluster pipeline sends the call: its stream's master, from the slot map. Named
    explicitly because redis-py 8.1's synchronous cluster pipeline (which has no ``eval``) would
    otherwise ask its default node which keys each EVAL has (``COMMAND GETKEYS``): a round trip
    per event, and none goes through while that node is down, even after a failover."""
    if not isinstance(client, redis.RedisCluster):
        return {}
    return {"target_nodes": client.get_node_from_key(call.keys[0])}  # type: ignore[no-untyped-call]


def publish_events(events: Sequence[Event]) -> list[int]:
    """Publish events in order, in one round trip, and return their sequence numbers.

    An event with an ``outbox_id`` that its stream published already (the outbox relay
    delivers at least once) is not published again: its seq is the one it got then. Events
    without one are always published.

    Synchronous (services, Celery tasks). Raises ``ValueError`` for a malformed stream name
    (before anything is published) and ``redis.RedisError`` if Redis is unreachable.
    """
    calls = [_publish_call(e.stream, e.kind, e.data, e.outbox_id) for e in events]
    if not calls:
        return []
    client = _client()
    with client.pipeline(transaction=False) as pipe:
        for call in calls:
            pipe.execute_command(
                "EVAL", _PUBLISH, len(call.keys), *call.keys, *call.args, **_route(client, call)
            )
        pipe.incrby(PUBLISHED_COUNTER, len(calls))
        *seqs, _ = pipe.execute()
    return [int(seq) for seq in seqs]


def publish_event(stream: str, kind: str, data: Mapping[str, Any]) -> int:
    """Publish one event of ``kind`` to ``stream``; its sequence number (see publish_events)."""
    return publish_events([Event(stream, kind, data)])[0]


async def apublish_event(
    client: AsyncEngine, stream: str, kind: str, data: Mapping[str, Any]
) -> int:
    """``publish_event`` for code already on the event loop (the server's own metrics)."""
    call = _publish_call(stream, kind, data)
    async with client.pipeline(transaction=False) as pipe:
        pipe.eval(_PUBLISH, len(call.keys), *call.keys, *call.args)
        pipe.incr(PUBLISHED_COUNTER)
        seq, _ = await pipe.execute()
    return int(seq)


async def stream_head(client: "AsyncEngine | TurnPipeline", stream: str) -> int:
    """The stream's current sequence number (the seq of its latest event)."""
    return int(await client.eval(_HEAD, 1, seq_key(stream), int(time.time() * 1000)))


async def history_after(
    client: AsyncEngine, stream: str, after: int, upto: int, *, count: int = 1000
) -> list[tuple[int, bytes]] | None:
    """Up to ``count`` frames with ``after < seq <= upto``, in order, or None when history no
    longer reaches back to ``after + 1`` (the client needs a snapshot)."""
    if after >= upto:
        return []
    entries = cast(
        list[tuple[bytes, dict[bytes, bytes]]],
        await client.xrange(history_key(stream), f"{after + 1}-0", f"{upto}-0", count=count),
    )
    frames = [(int(entry_id.split(b"-", 1)[0]), fields[b"f"]) for entry_id, fields in entries]
    if not frames or frames[0][0] != after + 1:
        return None
    return frames


# KEYS: seq, history. ARGV: floor, now (ms). Makes sure the stream's next seq is above every seq
# up to ``floor`` that clients may hold (see ``stream_rebase``).
_REBASE = """
local floor = tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or (tonumber(ARGV[2]) - 1))
if current >= floor then
  redis.call('SET', KEYS[1], current, 'NX')
  return current
end
local rebased = floor + REBASE_GAP
redis.call('SET', KEYS[1], rebased)
redis.call('XTRIM', KEYS[2], 'MINID', rebased + 1)
return rebased
"""
REBASE_GAP = 1000
_REBASE = _REBASE.replace("REBASE_GAP", str(REBASE_GAP))


async def stream_rebase(client: AsyncEngine, stream: str, floor: int) -> int:
    """The stream's current seq, first moved past ``floor`` if its counter is below it.

    A counter below a seq already delivered means Redis lost it (restarted, flushed, failed over
    to a lagging replica): the events numbered after it would reuse numbers clients hold for
    other events. The counter jumps to ``floor + REBASE_GAP`` and the history before that is
    dropped, so a client resuming from any seq it holds gets a snapshot, never a replay of
    different events under the same numbers."""
    now = int(time.time() * 1000)
    return int(await client.eval(_REBASE, 2, seq_key(stream), history_key(stream), floor, now))
