"""Ingestion figures, kept in one Redis hash so every worker adds to the same totals and the
web processes can serve them (``/metrics``, the ``metrics`` stream).

Fields: ``<operation>:calls_ok`` / ``:calls_failed`` / ``:last_seconds``; per polled operation
``<operation>:polls_failed`` and ``<operation>:polls_failed:<error class>``; ``records_parsed``,
``records_changed``, ``records_rejected``, ``records_older_skipped``; ``polls_skipped_overlap``,
``polls_skipped_budget``; ``region:<code>:last_success`` (unix time) and
``region:<code>:polls_failed`` (its beds polls that failed upstream); ``lag_last_max_seconds``
and ``lag_last_mean_seconds`` (publish time − hvidate of the latest poll's changes).
"""

import time
from collections.abc import Iterator, Mapping
from typing import Any

import redis
import redis.asyncio
from django.conf import settings
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ingestion.budget import calls_key
from ingestion.upstream import CallRecord

KEY = settings.REDIS_KEY_PREFIX + "ingestion:metrics"


class IngestionMetrics:
    def __init__(self, client: "redis.Redis") -> None:
        self._redis = client

    def call(self, record: CallRecord) -> None:
        outcome = "calls_ok" if record.outcome == "ok" else "calls_failed"
        with self._redis.pipeline(transaction=False) as pipe:
            pipe.hincrby(KEY, f"{record.operation}:{outcome}", 1)
            pipe.hset(KEY, f"{record.operation}:last_seconds", round(record.seconds, 4))
            pipe.execute()

    def records(self, *, parsed: int, rejected: int, changed: int = 0, older: int = 0) -> None:
        with self._redis.pipeline(transaction=False) as pipe:
            pipe.hincrby(KEY, "records_parsed", parsed)
            pipe.hincrby(KEY, "records_rejected", rejected)
            pipe.hincrby(KEY, "records_changed", changed)
            pipe.hincrby(KEY, "records_older_skipped", older)
            pipe.execute()

    def region_succeeded(self, region_code: str) -> None:
        self._redis.hset(KEY, f"region:{region_code}:last_success", round(time.time(), 3))

    def lags(self, lags: list[float]) -> None:
        if lags:
            self._redis.hset(
                KEY,
                mapping={
                    "lag_last_max_seconds": round(max(lags), 3),
                    "lag_last_mean_seconds": round(sum(lags) / len(lags), 3),
                },
            )

    def poll_failed(
        self, operation: str, error: Exception, *, region_code: str | None = None
    ) -> None:
        """A poll of ``operation`` failed with ``error``; of ``region_code``'s data if given."""
        with self._redis.pipeline(transaction=False) as pipe:
            pipe.hincrby(KEY, f"{operation}:polls_failed", 1)
            pipe.hincrby(KEY, f"{operation}:polls_failed:{type(error).__name__}", 1)
            if region_code is not None:
                pipe.hincrby(KEY, f"region:{region_code}:polls_failed", 1)
            pipe.execute()

    def skipped(self, reason: str) -> None:
        self._redis.hincrby(KEY, f"polls_skipped_{reason}", 1)


def _summary(raw: Mapping[Any, Any], calls_today: object) -> dict[str, Any]:
    figures: dict[str, Any] = {_text(key): float(value) for key, value in raw.items()}
    figures["calls_used_today"] = int(calls_today or 0)  # type: ignore[call-overload]
    figures["daily_call_budget"] = settings.UPSTREAM_DAILY_CALL_BUDGET
    figures["calls_left_today"] = max(0, figures["daily_call_budget"] - figures["calls_used_today"])
    return figures


def _text(key: bytes | str) -> str:
    return key.decode() if isinstance(key, bytes) else key


def read_ingestion_metrics(client: "redis.Redis") -> dict[str, Any]:
    """The hash as numbers, plus today's calls against the budget (``calls_used_today``,
    ``daily_call_budget``, ``calls_left_today``: never below 0)."""
    return _summary(client.hgetall(KEY), client.get(calls_key(time.time())))


async def aread_ingestion_metrics(client: "redis.asyncio.Redis") -> dict[str, Any]:
    return _summary(await client.hgetall(KEY), await client.get(calls_key(time.time())))


class IngestionMetricsCollector(Collector):
    """Prometheus collector reading the ingestion figures from Redis at scrape time."""

    def __init__(self, redis_url: str) -> None:
        self._client = redis.Redis.from_url(redis_url, socket_timeout=2)

    def collect(self) -> Iterator[Metric]:
        return _families(read_ingestion_metrics(self._client))


def _families(figures: dict[str, Any]) -> Iterator[Metric]:
    """The ingestion hash as Prometheus families."""
    calls = CounterMetricFamily(
        "weer_upstream_calls", "Upstream calls", labels=["operation", "outcome"]
    )
    seconds = GaugeMetricFamily(
        "weer_upstream_call_seconds", "Duration of the latest call", labels=["operation"]
    )
    last_success = GaugeMetricFamily(
        "weer_ingestion_region_last_success_timestamp_seconds",
        "Last successful beds poll",
        labels=["region"],
    )
    region_failed = CounterMetricFamily(
        "weer_ingestion_region_polls_failed",
        "Beds polls of the region that failed upstream",
        labels=["region"],
    )
    records = CounterMetricFamily("weer_ingestion_records", "Upstream records", labels=["result"])
    skipped = CounterMetricFamily(
        "weer_ingestion_polls_skipped", "Polls not run", labels=["reason"]
    )
    for name, value in figures.items():
        parts = name.split(":")
        if len(parts) == 2 and parts[1] in ("calls_ok", "calls_failed"):
            calls.add_metric([parts[0], parts[1].removeprefix("calls_")], value)
        elif len(parts) == 2 and parts[1] == "last_seconds":
            seconds.add_metric([parts[0]], value)
        elif len(parts) == 3 and parts[0] == "region" and parts[2] == "last_success":
            last_success.add_metric([parts[1]], value)
        elif len(parts) == 3 and parts[0] == "region" and parts[2] == "polls_failed":
            region_failed.add_metric([parts[1]], value)
        elif name.startswith("records_"):
            records.add_metric([name.removeprefix("records_")], value)
        elif name.startswith("polls_skipped_"):
            skipped.add_metric([name.removeprefix("polls_skipped_")], value)
    lag = GaugeMetricFamily(
        "weer_ingestion_lag_seconds", "Publish time minus hvidate, latest poll", labels=["stat"]
    )
    for stat in ("max", "mean"):
        if f"lag_last_{stat}_seconds" in figures:
            lag.add_metric([stat], figures[f"lag_last_{stat}_seconds"])
    budget = GaugeMetricFamily(
        "weer_upstream_calls_today", "Upstream calls used today (KST)", labels=["of"]
    )
    budget.add_metric(["used"], figures["calls_used_today"])
    budget.add_metric(["budget"], figures["daily_call_budget"])
    budget.add_metric(["left"], figures["calls_left_today"])
    yield from (calls, seconds, last_success, region_failed, records, skipped, lag, budget)
