"""Connection metrics, counted in each server process and shared through Redis.

Every second each process writes its counters to
``weer:<namespace>:metrics:process:<host:pid>`` (expiring after a few seconds, so a dead
process drops out); one process, holding a short Redis lease, adds them up, stores the total
and publishes it on the ``metrics`` stream. ``/metrics`` serves the per-process figures in
Prometheus text format from any process. Other packages' figures join the ``metrics`` stream
as sections named in ``settings.REALTIME_METRICS_SECTIONS`` (so realtime imports none of them)
and ``/metrics`` through their own collectors (``project.metrics``).
"""

import asyncio
import bisect
import functools
import itertools
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

import redis
import redis.asyncio
from django.conf import settings
from django.utils.module_loading import import_string
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from domain.events import METRICS, METRICS_SNAPSHOT
from realtime.engine import sync_engine
from realtime.presence import PresenceSection, er_screens_total
from realtime.publishing import PUBLISHED_COUNTER, apublish_event

if TYPE_CHECKING:
    from realtime.hub import Hub

logger = logging.getLogger(__name__)

PROCESS_KEY_PREFIX = settings.REDIS_KEY_PREFIX + "metrics:process:"
LEADER_KEY = settings.REDIS_KEY_PREFIX + "metrics:leader"
LATEST_KEY = settings.REDIS_KEY_PREFIX + "metrics:latest"
REPORT_INTERVAL = 1.0
# A section of the metrics stream not read in this long is null in that report: the report
# still goes out, and in time (its process's key expires after 3 intervals).
SECTION_TIMEOUT = 0.8 * REPORT_INTERVAL
# Per-process counters that only grow, summed over the processes in the metrics stream.
CUMULATIVE = (
    "frames_sent",
    "slow_consumer_closes",
    "abuse_closes",
    "resumes",
    "snapshots",
    "resyncs",
)
# Upper bounds (seconds) of the publish → delivery latency histogram's buckets.
DELIVERY_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class LatencyHistogram:
    """Counts by bucket (``DELIVERY_LATENCY_BUCKETS``, then one past the last) and their sum:
    an observation is a bisect and two additions."""

    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(DELIVERY_LATENCY_BUCKETS) + 1)
        self.sum = 0.0

    def observe(self, seconds: float, times: int = 1) -> None:
        self.counts[bisect.bisect_left(DELIVERY_LATENCY_BUCKETS, seconds)] += times
        self.sum += seconds * times


class ProcessMetrics:
    """This process's counters. Cheap to update: plain integers, no I/O."""

    def __init__(self) -> None:
        self.started_at = time.time()
        self.connections: Counter[str] = Counter()  # by role
        self.connects: Counter[str] = Counter()  # sockets accepted since the start, by role
        self.peak_connections = 0  # most sockets open at once since the process started
        self.subscriptions: Counter[str] = Counter()  # by stream
        self.frames_sent = 0
        self.slow_consumer_closes = 0
        self.abuse_closes = 0
        self.resumes = 0
        self.snapshots = 0
        self.resyncs = 0  # streams resynchronised after Redis lost or reordered their events
        # Which fast path into the server each socket got ("sink:twisted", "inbox:weer", …;
        # see realtime.serving.adapters).
        self.adapters: Counter[str] = Counter()
        # ER screens by hpid: members of a hospital's own stream held by its staff's sockets
        # (counted by the hub, where each membership starts and ends exactly once).
        self.er_screens: Counter[str] = Counter()
        # The hub's pub/sub connection(s) re-established after a failure (counted by the hub).
        self.pubsub_reconnects = 0
        # Set on SIGTERM while the process closes its sockets (realtime.serving's drain).
        self.draining = False
        # Publish (Redis's clock, the frame's ``ts``) → the hub writing it to live sockets.
        self.delivery_latency = LatencyHistogram()

    def connection_opened(self, role: str) -> None:
        self.connections[role] += 1
        self.connects[role] += 1
        self.peak_connections = max(self.peak_connections, self.connections.total())

    def connection_closed(self, role: str) -> None:
        self.connections[role] -= 1

    def subscription_added(self, stream: str) -> None:
        self.subscriptions[stream] += 1

    def subscription_removed(self, stream: str) -> None:
        self.subscriptions[stream] -= 1
        if self.subscriptions[stream] <= 0:
            del self.subscriptions[stream]

    def er_screen_opened(self, hpid: str) -> None:
        self.er_screens[hpid] += 1

    def er_screen_closed(self, hpid: str) -> None:
        self.er_screens[hpid] -= 1
        if self.er_screens[hpid] <= 0:
            del self.er_screens[hpid]

    def events_delivered(self, payload: bytes, events: int) -> None:
        """The hub wrote a run of ``events`` consecutive events to its live sockets, the first
        (oldest) of them the frame ``payload``: each counts in ``delivery_latency`` with the
        oldest one's age, now minus its ``ts`` (so the figure errs on the long side). A payload
        with no readable ``ts`` is not counted."""
        start = payload.find(b',"ts":')
        if start < 0:
            return
        end = payload.find(b",", start + 6)
        try:
            published_ms = int(payload[start + 6 : end])
        except ValueError:
            return
        self.delivery_latency.observe(max(0.0, time.time() - published_ms / 1000), events)

    def as_dict(self) -> dict[str, Any]:
        return {
            "connections": {role: n for role, n in self.connections.items() if n},
            "subscriptions": dict(self.subscriptions),
            "frames_sent": self.frames_sent,
            "slow_consumer_closes": self.slow_consumer_closes,
            "abuse_closes": self.abuse_closes,
            "resumes": self.resumes,
            "snapshots": self.snapshots,
            "resyncs": self.resyncs,
            "rss_bytes": resident_memory_bytes(),
            "peak_connections": self.peak_connections,
            "adapters": dict(self.adapters),
            "er_screens": dict(self.er_screens),
            "started_at": self.started_at,
            "connects": dict(self.connects),
            "pubsub_reconnects": self.pubsub_reconnects,
            "draining": self.draining,
            "delivery_latency": {
                "counts": self.delivery_latency.counts,
                "sum": self.delivery_latency.sum,
            },
        }

    async def report_forever(self, hub: "Hub") -> None:
        aggregator = _Aggregator()
        failing = False  # logged once per outage, not every second
        while True:
            await asyncio.sleep(REPORT_INTERVAL)
            try:
                await self._report(hub, aggregator)
                await hub.drop_idle_feeds()
                if failing:
                    logger.info("metrics: reporting again")
                failing = False
            except asyncio.CancelledError:
                raise
            except Exception:
                if not failing:
                    logger.exception("metrics: report failed (retrying every second)")
                failing = True

    async def _report(self, hub: "Hub", aggregator: "_Aggregator") -> None:
        client = hub.redis
        ttl_ms = int(REPORT_INTERVAL * 3000)
        await client.set(PROCESS_KEY_PREFIX + hub.process_id, json.dumps(self.as_dict()), px=ttl_ms)
        leader = await client.set(LEADER_KEY, hub.process_id, nx=True, px=ttl_ms)
        if not leader:
            if (await client.get(LEADER_KEY)) != hub.process_id.encode():
                return
            await client.pexpire(LEADER_KEY, ttl_ms)
        processes = await read_process_metrics(client)
        published = int(await hub.streams.get(PUBLISHED_COUNTER) or 0)
        summary = aggregator.summarize(processes, published)
        summary.update(await aggregator.sections(client, processes))
        await client.set(LATEST_KEY, json.dumps(summary), px=ttl_ms)
        await apublish_event(hub.streams, METRICS, METRICS_SNAPSHOT, summary)


_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_memory_bytes() -> int | None:
    """This process's resident memory (Linux), for memory per connection under load."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE_SIZE
    except OSError:
        return None


async def read_process_metrics(client: "redis.asyncio.Redis") -> dict[str, dict[str, Any]]:
    keys = [key async for key in client.scan_iter(match=PROCESS_KEY_PREFIX + "*", count=1000)]
    values = await client.mget(keys) if keys else []
    return {
        key.decode()[len(PROCESS_KEY_PREFIX) :]: json.loads(value)
        for key, value in zip(keys, values, strict=True)
        if value is not None
    }


class _Aggregator:
    """Adds up the processes' counters and turns cumulative ones into per-second rates."""

    def __init__(self) -> None:
        self._previous: tuple[float, int, int] | None = None
        self._presence = PresenceSection()
        self._failing: set[str] = set()  # sections that could not be read last time

    async def sections(
        self, client: "redis.asyncio.Redis", processes: dict[str, dict[str, Any]]
    ) -> dict[str, Any]:
        """The sections beside the realtime figures, by name: ``presence`` and those of
        ``settings.REALTIME_METRICS_SECTIONS``, read at once. Each fails on its own: one that
        raises or takes longer than ``SECTION_TIMEOUT`` (its Redis keys or database are out of
        reach) is null in this report, logged once until it is back."""
        readers: dict[str, Callable[[], Awaitable[Any]]] = {
            "presence": functools.partial(self._presence.read, client, processes)
        }
        for name, path in settings.REALTIME_METRICS_SECTIONS.items():
            readers[name] = functools.partial(import_string(path), client)
        values = await asyncio.gather(*(self._section(n, r) for n, r in readers.items()))
        return dict(zip(readers, values, strict=True))

    async def _section(self, name: str, read: Callable[[], Awaitable[Any]]) -> Any:
        try:
            value = await asyncio.wait_for(read(), SECTION_TIMEOUT)
        except Exception as exc:  # not CancelledError (a BaseException): that stops the loop
            if name not in self._failing:
                logger.warning(
                    "metrics: section %s unavailable (null until it is back): %r", name, exc
                )
                self._failing.add(name)
            return None
        if name in self._failing:
            logger.info("metrics: section %s is back", name)
            self._failing.discard(name)
        return value

    def summarize(self, processes: dict[str, dict[str, Any]], published: int) -> dict[str, Any]:
        now = time.monotonic()
        by_role: Counter[str] = Counter()
        subscriptions: Counter[str] = Counter()
        totals: Counter[str] = Counter()
        for figures in processes.values():
            by_role.update(figures["connections"])
            subscriptions.update(figures["subscriptions"])
            for name in CUMULATIVE:
                totals[name] += figures.get(name, 0)
        published_rate = frames_rate = None
        if self._previous is not None:
            then, published_then, frames_then = self._previous
            elapsed = max(now - then, 1e-6)
            published_rate = round(max(published - published_then, 0) / elapsed, 1)
            frames_rate = round(max(totals["frames_sent"] - frames_then, 0) / elapsed, 1)
        self._previous = (now, published, totals["frames_sent"])
        return {
            "at": int(time.time() * 1000),
            "connections": {"total": sum(by_role.values()), "by_role": dict(by_role)},
            "processes": {
                name: {
                    "connections": sum(figures["connections"].values()),
                    "rss_bytes": figures.get("rss_bytes"),
                }
                for name, figures in processes.items()
            },
            "subscriptions": dict(subscriptions),
            "events_published_per_s": published_rate,
            "frames_sent_per_s": frames_rate,
            "events_published": published,
            **{name: totals[name] for name in CUMULATIVE},
        }


class RedisMetricsCollector(Collector):
    """Prometheus collector reading every live process's figures from Redis at scrape time."""

    def __init__(self, redis_url: str, engine_url: str | None = None) -> None:
        self._client = redis.Redis.from_url(redis_url, socket_timeout=2)
        # The count of published events is kept by the publishing path, on the realtime engine.
        self._engine = sync_engine(engine_url or redis_url, socket_timeout=2)

    def collect(self) -> Iterator[Metric]:
        keys = list(self._client.scan_iter(match=PROCESS_KEY_PREFIX + "*", count=1000))
        values = self._client.mget(keys) if keys else []
        processes = {
            key.decode()[len(PROCESS_KEY_PREFIX) :]: json.loads(value)
            for key, value in zip(keys, values, strict=True)
            if value is not None
        }
        connections = GaugeMetricFamily(
            "weer_ws_connections", "Open websocket connections", labels=["process", "role"]
        )
        subscriptions = GaugeMetricFamily(
            "weer_ws_subscriptions", "Stream subscriptions", labels=["process", "stream"]
        )
        counters = {
            name: CounterMetricFamily(f"weer_ws_{name}", help_text, labels=["process"])
            for name, help_text in (
                ("frames_sent", "Event frames written to sockets"),
                ("slow_consumer_closes", "Sockets closed because the client read too slowly"),
                ("abuse_closes", "Sockets closed for too many invalid messages"),
                ("resumes", "Subscriptions resumed from history"),
                ("snapshots", "Snapshots served"),
                (
                    "resyncs",
                    "Streams resynchronised (members sent a snapshot) after Redis lost, "
                    "reset or reordered their events",
                ),
            )
        }
        resident = GaugeMetricFamily(
            "weer_process_resident_memory_bytes",
            "Resident memory of each server process",
            labels=["process"],
        )
        peak = GaugeMetricFamily(
            "weer_ws_connections_peak",
            "Most websocket connections open at once since the process started",
            labels=["process"],
        )
        adapters = CounterMetricFamily(
            "weer_ws_adapter_sockets",
            "Sockets by the server fast path they got (part: inbox, sink, write, handshake)",
            labels=["process", "part", "kind"],
        )
        er_screens = GaugeMetricFamily(
            "weer_er_screens",
            "ER screens connected (hospital sockets on their own hospital stream), all processes",
            labels=["hpid"],
        )
        for hpid, n in sorted(er_screens_total(processes).items()):
            er_screens.add_metric([hpid], n)
        yield from _lifecycle_families(processes)
        for process, figures in processes.items():
            for name, n in figures.get("adapters", {}).items():
                adapters.add_metric([process, *name.split(":", 1)], n)
            if figures.get("rss_bytes") is not None:
                resident.add_metric([process], figures["rss_bytes"])
            peak.add_metric([process], figures.get("peak_connections", 0))
            for role, n in figures["connections"].items():
                connections.add_metric([process, role], n)
            for stream, n in figures["subscriptions"].items():
                subscriptions.add_metric([process, stream], n)
            for name, family in counters.items():
                family.add_metric([process], figures.get(name, 0))
        published = CounterMetricFamily("weer_events_published", "Events published")
        published.add_metric([], int(self._engine.get(PUBLISHED_COUNTER) or 0))
        yield from (connections, subscriptions, resident, peak, adapters, er_screens)
        yield from counters.values()
        yield published


def _lifecycle_families(processes: dict[str, dict[str, Any]]) -> Iterator[Metric]:
    """Each process's connects, pub/sub reconnects, start, drain and delivery latency (absent
    from a report written before these were counted: 0, its start unknown)."""
    connects = CounterMetricFamily(
        "weer_ws_connects",
        "Websockets accepted (authenticated) since the process started",
        labels=["process", "role"],
    )
    reconnects = CounterMetricFamily(
        "weer_hub_pubsub_reconnects",
        "The hub's Redis pub/sub connections re-established after a failure",
        labels=["process"],
    )
    draining = GaugeMetricFamily(
        "weer_process_draining",
        "Whether the process is draining after SIGTERM (1: closing its sockets, not ready)",
        labels=["process"],
    )
    started = GaugeMetricFamily(
        "weer_process_start_time_seconds",
        "When the server process started (unix time)",
        labels=["process"],
    )
    latency = HistogramMetricFamily(
        "weer_ws_delivery_latency_seconds",
        "Publish (Redis's clock) to the hub's write to the live sockets, per event",
        labels=["process"],
    )
    bounds = [str(bound) for bound in DELIVERY_LATENCY_BUCKETS] + ["+Inf"]
    for process, figures in processes.items():
        for role, n in figures.get("connects", {}).items():
            connects.add_metric([process, role], n)
        reconnects.add_metric([process], figures.get("pubsub_reconnects", 0))
        draining.add_metric([process], int(figures.get("draining", False)))
        if figures.get("started_at") is not None:
            started.add_metric([process], figures["started_at"])
        histogram = figures.get("delivery_latency") or {"counts": [0] * len(bounds), "sum": 0}
        if len(histogram["counts"]) == len(bounds):  # else another version's buckets: left out
            cumulative = itertools.accumulate(histogram["counts"])
            latency.add_metric(
                [process], list(zip(bounds, cumulative, strict=True)), sum_value=histogram["sum"]
            )
    yield from (connects, reconnects, draining, started, latency)


class PresenceMetricsCollector(Collector):
    """``weer_er_screens_missing``: the alarms of the latest ``presence`` section (at most a
    few seconds old), and ``weer_er_screen_alarm_pending_requests`` for each hospital in alarm
    (labelled with its hpid, name and region; its pending reservations, 0 when only a recent
    request put it there). Unreadable (so this source shows as down) when no leader reported
    lately or the section could not be built (the database is down)."""

    def __init__(self, redis_url: str) -> None:
        self._client = redis.Redis.from_url(redis_url, socket_timeout=2)

    def collect(self) -> Iterator[Metric]:
        raw = self._client.get(LATEST_KEY)
        if raw is None:
            raise LookupError("no metrics leader has reported in the last seconds")
        presence = json.loads(raw).get("presence")
        if presence is None:
            raise LookupError("the latest metrics report has no presence section")
        yield GaugeMetricFamily(
            "weer_er_screens_missing",
            "Hospitals with pending or recent reservations and no ER screen connected",
            presence["alarms"],
        )
        pending = GaugeMetricFamily(
            "weer_er_screen_alarm_pending_requests",
            "Pending reservations of each hospital that needs an ER screen and has none",
            labels=["hpid", "hospital", "region"],
        )
        for row in presence["hospitals"]:
            if row["alarm"]:
                pending.add_metric([row["hpid"], row["name"], row["region_code"]], row["pending"])
        yield pending
