"""One poll of one kind of upstream data: fetch every page, parse, apply, record the outcome.

The Celery tasks and ``manage.py ingest_once`` call these; the rules of what a report changes
live in the domain services they call.
"""

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

import redis
from django.conf import settings

from domain.regions import REGIONS_BY_CODE
from domain.services.er_status import (
    BedsApplied,
    er_status_apply,
    region_poll_failed,
    region_poll_succeeded,
)
from domain.services.hospital_info import (
    InfoApplied,
    acceptance_apply,
    announcements_apply,
    institutions_apply,
)
from ingestion import upstream
from ingestion.budget import BudgetExhausted, CallBudget
from ingestion.errors import UpstreamError, UpstreamQuotaExceeded
from ingestion.metrics import IngestionMetrics
from ingestion.parsing import (
    RecordRejected,
    parse_acceptance,
    parse_bed_record,
    parse_institution,
    parse_message,
)

logger = logging.getLogger(__name__)
Report = TypeVar("Report")


@dataclass(frozen=True, slots=True)
class Tools:
    client: upstream.UpstreamClient
    budget: CallBudget
    metrics: IngestionMetrics


@contextmanager
def ingestion_tools() -> Iterator[Tools]:
    """An upstream client wired to the shared call budget and metrics."""
    connection = redis.Redis.from_url(settings.REDIS_URL)
    budget = CallBudget(connection, settings.UPSTREAM_DAILY_CALL_BUDGET)
    metrics = IngestionMetrics(connection)
    client = upstream.UpstreamClient(before_call=budget.take, after_call=metrics.call)
    try:
        yield Tools(client, budget, metrics)
    finally:
        client.close()
        connection.close()


def _parse_each(
    items: Iterable[dict[str, str]],
    parse: Callable[[dict[str, str]], Report],
    metrics: IngestionMetrics,
) -> list[Report]:
    """Parse every item; a malformed one is logged, counted and left out."""
    reports, rejected = [], 0
    for item in items:
        try:
            reports.append(parse(item))
        except RecordRejected as exc:
            rejected += 1
            logger.warning("upstream record rejected: %s", exc)
    metrics.records(parsed=len(reports), rejected=rejected)
    return reports


def poll_region_beds(tools: Tools, region_code: str) -> BedsApplied:
    """Poll one region's real-time beds. On any failure the region's last good state stays and
    its freshness is updated (it may turn stale); the error is raised for the caller to retry
    (``UpstreamUnavailable``) or not."""
    region = REGIONS_BY_CODE[region_code]
    try:
        items = list(tools.client.fetch_all(upstream.BEDS, STAGE1=region.name))
    except (UpstreamError, BudgetExhausted) as exc:
        _failed(tools, region_code, exc)
        raise
    reports = _parse_each(items, parse_bed_record, tools.metrics)
    applied = er_status_apply(region_code=region_code, reports=reports)
    region_poll_succeeded(region_code=region_code)
    tools.metrics.records(
        parsed=0, rejected=0, changed=len(applied.changed), older=applied.older_skipped
    )
    tools.metrics.region_succeeded(region_code)
    tools.metrics.lags(applied.lags)
    return applied


def _failed(tools: Tools, region_code: str, exc: Exception) -> None:
    if isinstance(exc, UpstreamQuotaExceeded):
        until = tools.budget.block_until_reset()
        logger.error("upstream quota exceeded: polling paused until %s", until)
    if isinstance(exc, BudgetExhausted):
        tools.metrics.skipped("budget")
    else:
        tools.metrics.poll_failed(upstream.BEDS, exc, region_code=region_code)
    region_poll_failed(region_code=region_code, error=f"{type(exc).__name__}: {exc}")


def poll_region_messages(tools: Tools, region_code: str) -> InfoApplied:
    region = REGIONS_BY_CODE[region_code]
    items = tools.client.fetch_all(upstream.MESSAGES, Q0=region.name)
    reports = _parse_each(items, parse_message, tools.metrics)
    return announcements_apply(region_code=region_code, reports=reports)


def poll_region_acceptance(tools: Tools, region_code: str) -> InfoApplied:
    region = REGIONS_BY_CODE[region_code]
    items = tools.client.fetch_all(upstream.ACCEPTANCE, STAGE1=region.name, SM_TYPE="1")
    reports = _parse_each(items, parse_acceptance, tools.metrics)
    return acceptance_apply(reports=reports)


def sync_institutions(tools: Tools) -> InfoApplied:
    """The nationwide institution list (the operation ignores region filters anyway)."""
    reports = _parse_each(
        tools.client.fetch_all(upstream.INSTITUTIONS), parse_institution, tools.metrics
    )
    return institutions_apply(reports=reports)
