"""Celery tasks: thin, named, one lock each so the same poll never runs twice at once.

Beat starts the fan-out tasks; each region is polled by its own task so one region's outage
neither blocks nor retries the others. Only transient failures are retried, with backoff and a
cap: ``UpstreamUnavailable`` (timeouts, 5xx, unreadable responses) and the database being
unreachable (``DATABASE_UNAVAILABLE``). Each region's apply is one transaction, so a poll cut
off by the database leaves the last good state as it was, and its retry (or the next beat)
stores the whole new one. A poll still running when the next is due is skipped.
"""

import logging
from collections.abc import Callable
from typing import Any, TypedDict, TypeVar

import redis
from celery import shared_task
from django.conf import settings

from domain.errors import DATABASE_UNAVAILABLE
from domain.regions import REGIONS
from ingestion import polls
from ingestion.budget import BudgetExhausted
from ingestion.errors import UpstreamUnavailable
from ingestion.metrics import IngestionMetrics

logger = logging.getLogger(__name__)
T = TypeVar("T")


class _RetryOptions(TypedDict):
    autoretry_for: tuple[type[Exception], ...]
    retry_backoff: int
    retry_backoff_max: int
    retry_jitter: bool
    max_retries: int


_RETRY: _RetryOptions = {
    "autoretry_for": (UpstreamUnavailable, *DATABASE_UNAVAILABLE),
    "retry_backoff": 2,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    # Up to about a minute of retries (2 + 4 + 8 + 16 + 32 s at most, jittered): a database
    # restart or fail-over fits; a longer outage is left to the next beat.
    "max_retries": 5,
}


def _exclusively(name: str, ttl: float, poll: Callable[[polls.Tools], T]) -> T | None:
    """Run ``poll`` under a Redis lock (expiring after ``ttl`` s in case a worker dies);
    if the previous run still holds it, skip and count."""
    connection = redis.Redis.from_url(settings.REDIS_URL)
    lock = connection.lock(
        f"{settings.REDIS_KEY_PREFIX}lock:{name}", timeout=max(ttl, 5), blocking=False
    )
    if not lock.acquire():
        IngestionMetrics(connection).skipped("overlap")
        logger.info("%s: previous poll still running; skipped", name)
        return None
    try:
        with polls.ingestion_tools() as tools:
            return poll(tools)
    except BudgetExhausted as exc:
        logger.info("%s: %s", name, exc)
        return None
    finally:
        lock.release()
        connection.close()


def _each_region(task: Any) -> None:
    for region in REGIONS:
        task.delay(region.code)


@shared_task(name="ingestion.poll_beds")
def poll_beds() -> None:
    _each_region(poll_region_beds)


@shared_task(name="ingestion.poll_region_beds", **_RETRY)
def poll_region_beds(region_code: str) -> dict[str, Any] | None:
    applied = _exclusively(
        f"beds:{region_code}",
        3 * settings.INGEST_BEDS_SECONDS,
        lambda tools: polls.poll_region_beds(tools, region_code),
    )
    return None if applied is None else {"changed": len(applied.changed)}


@shared_task(name="ingestion.poll_messages")
def poll_messages() -> None:
    _each_region(poll_region_messages)


@shared_task(name="ingestion.poll_region_messages", **_RETRY)
def poll_region_messages(region_code: str) -> None:
    _exclusively(
        f"messages:{region_code}",
        3 * settings.INGEST_MESSAGES_SECONDS,
        lambda tools: polls.poll_region_messages(tools, region_code),
    )


@shared_task(name="ingestion.poll_acceptance")
def poll_acceptance() -> None:
    _each_region(poll_region_acceptance)


@shared_task(name="ingestion.poll_region_acceptance", **_RETRY)
def poll_region_acceptance(region_code: str) -> None:
    _exclusively(
        f"acceptance:{region_code}",
        3 * settings.INGEST_ACCEPTANCE_SECONDS,
        lambda tools: polls.poll_region_acceptance(tools, region_code),
    )


@shared_task(name="ingestion.sync_institutions", **_RETRY)
def sync_institutions() -> None:
    _exclusively("institutions", 3600, polls.sync_institutions)
