"""ER-screen presence across the server processes: the ``presence`` section of the metrics
stream (``/metrics`` shows its alarm count: ``realtime.metrics.PresenceMetricsCollector``).

Each process counts its ER screens by hpid (``ProcessMetrics.er_screens``, in its per-process
metrics key, which expires within seconds of the process dying). The metrics leader adds them
up once a second, notes in the hash ``weer:<namespace>:presence:last_screen_at`` (hpid → unix
ms) when each hospital last had one, so that the time survives a change of leader, and joins
them to the hospitals' reservation figures from the database (``domain.presence``).
"""

import asyncio
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import redis.asyncio
from channels.db import database_sync_to_async
from django.conf import settings
from django.utils import timezone

from domain.presence import HospitalDemand, presence_report, unix_ms
from domain.selectors.presence import presence_hospitals

LAST_SCREEN_KEY = settings.REDIS_KEY_PREFIX + "presence:last_screen_at"


class PresenceUnavailable(Exception):
    """The database has not answered the previous second's read yet (frozen or very slow)."""


def er_screens_total(processes: dict[str, dict[str, Any]]) -> Counter[str]:
    """ER screens by hpid, summed over the processes' reports (hpids with at least one)."""
    total: Counter[str] = Counter()
    for figures in processes.values():
        total.update(figures.get("er_screens", {}))
    return +total


class PresenceSection:
    """Builds the ``presence`` section on the metrics leader, once a second."""

    def __init__(self) -> None:
        self._reading: asyncio.Future[list[HospitalDemand]] | None = None

    async def read(
        self, client: "redis.asyncio.Redis", processes: dict[str, dict[str, Any]]
    ) -> dict[str, Any]:
        """The section (``domain.presence.presence_report``). Records the screens seen now
        before reading the database, so a database outage does not lose them. Raises what
        Redis or the database raise, or ``PresenceUnavailable`` while the previous database
        read is still running (a new one would only queue behind it)."""
        now = timezone.now()
        screens = er_screens_total(processes)
        if screens:
            await client.hset(LAST_SCREEN_KEY, mapping=dict.fromkeys(screens, unix_ms(now)))
        raw = await client.hgetall(LAST_SCREEN_KEY)
        last_screen_at = {_text(key): int(value) for key, value in raw.items()}
        recent = timedelta(seconds=settings.PRESENCE_RECENT_REQUEST_SECONDS)
        hospitals = await self._hospitals(list(screens), now - recent)
        return presence_report(
            hospitals=hospitals,
            screens=screens,
            last_screen_at=last_screen_at,
            now=now,
            recent=recent,
        )

    async def _hospitals(self, hpids: list[str], since: datetime) -> list[HospitalDemand]:
        if self._reading is not None and not self._reading.done():
            raise PresenceUnavailable("the previous database read has not finished")
        # Not thread-sensitive, as ingestion.region_health's read: once a second, it must not
        # queue behind (or hold up) the consumers' database calls on the one shared sync thread.
        read = database_sync_to_async(presence_hospitals, thread_sensitive=False)
        reading = asyncio.ensure_future(read(hpids=hpids, requested_since=since))
        # Retrieved here if awaited to the end; if the section times out first, the outcome
        # is dropped when it comes (not an "exception never retrieved").
        reading.add_done_callback(lambda done: done.cancelled() or done.exception())
        self._reading = reading
        return await asyncio.shield(reading)


def _text(key: bytes | str) -> str:
    return key.decode() if isinstance(key, bytes) else key
