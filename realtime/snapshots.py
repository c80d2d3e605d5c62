"""The current state of a stream, sent instead of a replay when there is none to send."""

import json
from typing import Any

from channels.db import database_sync_to_async

from domain.selectors.hospitals import er_status_snapshot
from domain.selectors.reservations import reservations_open_snapshot
from realtime.metrics import LATEST_KEY
from realtime.streams import Stream, StreamKind


async def snapshot_data(stream: Stream, redis_client: Any) -> dict[str, Any]:
    """Read after the stream's seq was taken, so it reflects at least every event up to it."""
    if stream.kind is StreamKind.BEDS:
        region = None if stream.key == "all" else stream.key
        hospitals = await database_sync_to_async(er_status_snapshot)(region_code=region)
        return {"hospitals": hospitals}
    if stream.kind is StreamKind.HOSPITAL:
        return {
            "reservations": await database_sync_to_async(reservations_open_snapshot)(
                hpid=stream.key
            )
        }
    if stream.kind is StreamKind.CREW:
        return {
            "reservations": await database_sync_to_async(reservations_open_snapshot)(
                crew_id=int(stream.key)
            )
        }
    latest = await redis_client.get(LATEST_KEY)
    return json.loads(latest) if latest else {}
