"""The current state of a stream, sent instead of a replay when there is none to send.

A snapshot is built and encoded once per stream and sequence number in this process, and
shared by every socket asking for it within a few seconds: a crowd reconnecting after a
network blip costs one database read, not one per tablet.
"""

import asyncio
import json
import time
from typing import Any

from channels.db import database_sync_to_async

from domain.events import Stream, StreamKind
from domain.selectors.hospitals import er_status_snapshot
from domain.selectors.reservations import reservations_open_snapshot
from realtime.metrics import LATEST_KEY
from realtime.publishing import encode_json

SHARE_SECONDS = 3.0  # data_age_seconds in a shared snapshot is at most this old

_shared: dict[str, tuple[int, float, "asyncio.Future[str]"]] = {}


async def snapshot_json(stream: Stream, seq: int, redis_client: Any) -> str:
    """The encoded ``data`` of ``stream``'s snapshot, taken after its seq reached ``seq``."""
    cached = _shared.get(stream.name)
    if cached is not None:
        cached_seq, made_at, future = cached
        if cached_seq == seq and time.monotonic() - made_at < SHARE_SECONDS:
            return await asyncio.shield(future)
    future = asyncio.get_running_loop().create_future()
    _shared[stream.name] = (seq, time.monotonic(), future)
    try:
        future.set_result(encode_json(await _snapshot_data(stream, redis_client)))
    except BaseException as exc:
        future.set_exception(exc)
        future.exception()  # raised here and to any sharer: not an "exception never retrieved"
        _shared.pop(stream.name, None)
        raise
    return future.result()


def snapshot_frame(stream: str, seq: int, reason: str, data: str) -> str:
    """The snapshot message (docs/protocol.md §4) around already encoded ``data``."""
    return (
        f'{{"type":"snapshot","stream":{encode_json(stream)},"seq":{seq},'
        f'"reason":"{reason}","data":{data}}}'
    )


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
