"""Ingestion figures, kept in one Redis hash so every worker adds to the same totals and the
web processes can serve them (``/metrics``, the ``metrics`` stream).

Fields: ``<operation>:calls_ok`` / ``:calls_failed`` / ``:last_seconds``; per polled operation
``<operation>:polls_failed`` and ``<operation>:polls_failed:<error class>``; ``records_parsed``,
``records_changed``, ``records_rejected``, ``records_older_skipped``; ``polls_skipped_overlap``,
``polls_skipped_budget``; ``region:<code>:last_success`` (unix time); ``lag_last_max_seconds``
and ``lag_last_mean_seconds`` (publish time − hvidate of the latest poll's changes).
"""

import time
from collections.abc import Mapping
from typing import Any

import redis
import redis.asyncio
from django.conf import settings

from ingestion.budget import calls_key
from ingestion.upstream import CallRecord

KEY = "weer:ingestion:metrics"


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

    def poll_failed(self, operation: str, error: Exception) -> None:
        with self._redis.pipeline(transaction=False) as pipe:
            pipe.hincrby(KEY, f"{operation}:polls_failed", 1)
            pipe.hincrby(KEY, f"{operation}:polls_failed:{type(error).__name__}", 1)
            pipe.execute()

    def skipped(self, reason: str) -> None:
        self._redis.hincrby(KEY, f"polls_skipped_{reason}", 1)


def _summary(raw: Mapping[Any, Any], calls_today: object) -> dict[str, Any]:
    figures: dict[str, Any] = {_text(key): float(value) for key, value in raw.items()}
    figures["calls_used_today"] = int(calls_today or 0)  # type: ignore[call-overload]
    figures["daily_call_budget"] = settings.UPSTREAM_DAILY_CALL_BUDGET
    return figures


def _text(key: bytes | str) -> str:
    return key.decode() if isinstance(key, bytes) else key


def read_ingestion_metrics(client: "redis.Redis") -> dict[str, Any]:
    """The hash as numbers, plus today's calls against the budget."""
    return _summary(client.hgetall(KEY), client.get(calls_key(time.time())))


async def aread_ingestion_metrics(client: "redis.asyncio.Redis") -> dict[str, Any]:
    return _summary(await client.hgetall(KEY), await client.get(calls_key(time.time())))
