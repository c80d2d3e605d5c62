"""Ingestion health per region, for the admin console (the ``ingestion_regions`` section of the
``metrics`` stream) and ``/metrics``: the database's view of each region's data (hospitals, the
newest and oldest ``hvidate``, staleness) beside the ingestion figures in Redis (last
successful poll, failed polls, today's upstream calls).

Times on the stream are unix milliseconds, null when unknown. ``/metrics`` gets the
database-backed figures from ``RegionDataCollector``; the Redis-backed ones (last success,
failed polls, calls left) come with the other ingestion figures, so a database outage hides
only the former.
"""

import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import redis.asyncio
from channels.db import database_sync_to_async
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from domain.presence import unix_ms
from domain.selectors.regions import RegionData, region_data_list
from ingestion.metrics import aread_ingestion_metrics


def _ms(moment: datetime | None) -> int | None:
    return None if moment is None else unix_ms(moment)


def region_health(regions: Sequence[RegionData], figures: Mapping[str, Any]) -> dict[str, Any]:
    """The ``ingestion_regions`` section: ``regions`` (one row per region of ``regions``, in
    their order) and today's calls, from ``figures`` as ``read_ingestion_metrics`` gives
    them. ``last_success_at`` is the last successful beds poll Redis recorded and
    ``polls_failed`` the region's failed beds polls counted there (0 when none was)."""
    rows = []
    for region in regions:
        last_success = figures.get(f"region:{region.region_code}:last_success")
        rows.append(
            {
                "region_code": region.region_code,
                "name": region.name,
                "hospitals": region.hospitals,
                "last_success_at": None if last_success is None else round(last_success * 1000),
                "newest_data_at": _ms(region.newest_hvidate),
                "oldest_data_at": _ms(region.oldest_hvidate),
                "stale": region.stale,
                "stale_since": _ms(region.stale_since),
                "consecutive_failures": region.consecutive_failures,
                "polls_failed": int(figures.get(f"region:{region.region_code}:polls_failed", 0)),
                "last_error": region.last_error,
            }
        )
    return {
        "regions": rows,
        "calls_used_today": figures["calls_used_today"],
        "daily_call_budget": figures["daily_call_budget"],
        "calls_left_today": figures["calls_left_today"],
    }


async def aread_region_health(client: "redis.asyncio.Redis") -> dict[str, Any]:
    """``region_health`` of the database and of Redis now (a ``REALTIME_METRICS_SECTIONS``
    reader). Raises what the database or Redis raises when either cannot be read."""
    figures = await aread_ingestion_metrics(client)
    # Not thread-sensitive: read once a second, it must not queue behind (or hold up) the
    # consumers' database calls on the one shared sync thread.
    regions = await database_sync_to_async(region_data_list, thread_sensitive=False)()
    return region_health(regions, figures)


class RegionDataCollector(Collector):
    """Prometheus collector of each region's data age and staleness, read from the database
    at scrape time: ``weer_ingestion_region_data_age_seconds{region,of="newest"|"oldest"}``
    (now − the newest and the oldest ``hvidate``; absent for a region with no status yet) and
    ``weer_ingestion_region_stale{region}`` (1 while stale)."""

    def collect(self) -> Iterator[Metric]:
        regions = region_data_list()
        now = time.time()
        age = GaugeMetricFamily(
            "weer_ingestion_region_data_age_seconds",
            "Now minus the newest or oldest hvidate of the region's hospitals",
            labels=["region", "of"],
        )
        stale = GaugeMetricFamily(
            "weer_ingestion_region_stale",
            "Whether the region's data is stale: its polls have failed for too long (1) or not",
            labels=["region"],
        )
        for region in regions:
            for of, hvidate in (
                ("newest", region.newest_hvidate),
                ("oldest", region.oldest_hvidate),
            ):
                if hvidate is not None:
                    age.add_metric([region.region_code, of], max(0.0, now - hvidate.timestamp()))
            stale.add_metric([region.region_code], int(region.stale))
        yield from (age, stale)
