"""The current state of a stream, sent instead of a replay when there is none to send.

A snapshot is built and encoded once per stream and sequence number in this process, and
shared by every socket asking for it within a few seconds: a crowd reconnecting after a
network blip costs one database read, not one per tablet. Its message is compressed once too
(zlib, off the event loop), for the sockets that asked for compressed snapshots: ``beds.all``'s
926 KB of JSON for 500 hospitals is 88 KB so, for 25 ms of one thread's CPU
(docs/performance.md § Snapshots on the wire).
"""

import asyncio
import json
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

from channels.db import database_sync_to_async

from domain.events import Stream, StreamKind
from domain.selectors.hospitals import er_status_snapshot
from domain.selectors.reservations import reservations_open_snapshot
from realtime.metrics import LATEST_KEY
from realtime.publishing import encode_json
from realtime.sinks import Frame

SHARE_SECONDS = 3.0  # data_age_seconds in a shared snapshot is at most this old
DEFLATE_LEVEL = 6  # zlib's default: 9 saves another 14 % of beds.all for twice the CPU
DEFLATE_INLINE_BYTES = 8192  # smaller messages compress in ~0.1 ms: cheaper than a thread hop


@dataclass
class _Shared:
    seq: int
    made_at: float
    data: "asyncio.Future[str]"
    frames: "dict[str, asyncio.Future[Frame]]" = field(default_factory=dict)  # by reason


_shared: dict[str, _Shared] = {}


def _current(stream: Stream, seq: int) -> _Shared | None:
    shared = _shared.get(stream.name)
    if (
        shared is not None
        and shared.seq == seq
        and time.monotonic() - shared.made_at < SHARE_SECONDS
    ):
        return shared
    return None


async def snapshot_json(stream: Stream, seq: int, redis_client: Any) -> str:
    """The encoded ``data`` of ``stream``'s snapshot, taken after its seq reached ``seq``."""
    shared = _current(stream, seq)
    if shared is not None:
        data: str = await asyncio.shield(shared.data)
        return data
    future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    _shared[stream.name] = _Shared(seq, time.monotonic(), future)
    try:
        future.set_result(encode_json(await _snapshot_data(stream, redis_client)))
    except BaseException as exc:
        _fail(future, exc)
        _shared.pop(stream.name, None)
        raise
    return future.result()


async def snapshot_frame(stream: Stream, seq: int, reason: str, redis_client: Any) -> Frame:
    """The snapshot message of ``stream`` at ``seq`` (docs/protocol.md §4), as text and
    compressed (``Frame.deflated``): made once per stream, seq and reason, and shared."""
    data = await snapshot_json(stream, seq, redis_client)
    shared = _current(stream, seq)
    if shared is None:  # expired meanwhile: frame what was read, unshared
        return await _framed(stream.name, seq, reason, data)
    made = shared.frames.get(reason)
    if made is not None:
        return await asyncio.shield(made)
    made = shared.frames[reason] = asyncio.get_running_loop().create_future()
    try:
        made.set_result(await _framed(stream.name, seq, reason, data))
    except BaseException as exc:
        _fail(made, exc)
        shared.frames.pop(reason, None)
        raise
    return made.result()


async def _framed(stream: str, seq: int, reason: str, data: str) -> Frame:
    payload = snapshot_text(stream, seq, reason, data).encode()
    frame = Frame(payload)
    # zlib releases the GIL: beds.all's 25 ms do not stop the event loop.
    frame.deflated = Frame(
        await asyncio.to_thread(zlib.compress, payload, DEFLATE_LEVEL), binary=True
    )
    return frame


def snapshot_text(stream: str, seq: int, reason: str, data: str) -> str:
    """The snapshot message (docs/protocol.md §4) around already encoded ``data``."""
    return (
        f'{{"type":"snapshot","stream":{encode_json(stream)},"seq":{seq},'
        f'"reason":"{reason}","data":{data}}}'
    )


def _fail(future: "asyncio.Future[Any]", exc: BaseException) -> None:
    future.set_exception(exc)
    future.exception()  # raised here and to any sharer: not an "exception never retrieved"


async def _snapshot_data(stream: Stream, redis_client: Any) -> dict[str, Any]:
    """Read after the stream's seq was taken, so it reflects at least every event up to it."""
    if stream.kind is StreamKind.BEDS:
        region = None if stream.key == "all" else stream.key
        hospitals = await database_sync_to_async(er_status_snapshot)(region_code=region)
        return {"hospitals": hospitals}
    if stream.kind is StreamKind.HOSPITAL:
        reservations = await database_sync_to_async(reservations_open_snapshot)(hpid=stream.key)
        return {"reservations": reservations}
    if stream.kind is StreamKind.CREW:
        reservations = await database_sync_to_async(reservations_open_snapshot)(
            crew_id=int(stream.key)
        )
        return {"reservations": reservations}
    if stream.kind in (StreamKind.LOADTEST, StreamKind.ACCOUNTS):
        return {}
    latest = await redis_client.get(LATEST_KEY)
    return json.loads(latest) if latest else {}
