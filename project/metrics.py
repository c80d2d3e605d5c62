"""``/metrics``: every server process's realtime figures, the ingestion figures, the outbox
backlog and the hospitals missing an ER screen, in Prometheus text format. Composed here, where
the packages meet, so neither imports the other. Only for a scraper holding ``METRICS_TOKEN``
(the figures name processes, their memory and the streams in use, which the websocket shows to
administrators only)."""

import hmac
import logging
from collections.abc import Iterator

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from domain.selectors.outbox import outbox_backlog
from ingestion.metrics import IngestionMetricsCollector
from ingestion.region_health import RegionDataCollector
from realtime.metrics import PresenceMetricsCollector, RedisMetricsCollector

logger = logging.getLogger(__name__)


class OutboxMetricsCollector(Collector):
    """The outbox backlog, read from the database at scrape time: events of committed changes
    not yet published (more than a moment's worth means Redis is or was unreachable)."""

    def collect(self) -> Iterator[Metric]:
        backlog = outbox_backlog()
        age = 0.0
        if backlog.oldest_created_at is not None:
            age = max(0.0, (timezone.now() - backlog.oldest_created_at).total_seconds())
        yield GaugeMetricFamily(
            "weer_outbox_pending_events", "Committed events not yet published", backlog.pending
        )
        yield GaugeMetricFamily(
            "weer_outbox_oldest_age_seconds", "Age of the oldest unpublished event (0: none)", age
        )


class _Sources(Collector):
    """Every source's figures, each read on its own: a source that cannot be read (Redis or the
    database during an outage, just when the figures matter most) is left out, logged, and
    shown as ``weer_metrics_source_up{source} 0``, instead of failing the whole page."""

    def __init__(self, sources: dict[str, Collector]) -> None:
        self._sources = sources

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "weer_metrics_source_up",
            "Whether the source's figures could be read for this scrape (1) or not (0)",
            labels=["source"],
        )
        for name, source in self._sources.items():
            try:
                figures = list(source.collect())
            except Exception as exc:
                logger.warning("/metrics: cannot read %s: %r", name, exc)
                figures = []
                up.add_metric([name], 0)
            else:
                up.add_metric([name], 1)
            yield from figures
        yield up


_registry = CollectorRegistry(auto_describe=False)
_registry.register(
    _Sources(
        {
            "realtime": RedisMetricsCollector(settings.REDIS_URL, settings.REALTIME_REDIS_URL),
            "ingestion": IngestionMetricsCollector(settings.REDIS_URL),
            "ingestion_regions": RegionDataCollector(),
            "outbox": OutboxMetricsCollector(),
            "presence": PresenceMetricsCollector(settings.REDIS_URL),
        }
    )
)


def prometheus_metrics(request: HttpRequest) -> HttpResponse:
    """The figures, for ``Authorization: Bearer <METRICS_TOKEN>``. Without a ``METRICS_TOKEN``
    configured the page does not exist (404: off unless an operator turns it on); a missing or
    wrong token is a 401 (compared in constant time)."""
    expected = settings.METRICS_TOKEN
    if not expected:
        return HttpResponse("Not found.\n", status=404, content_type="text/plain")
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {expected}".encode()):
        response = HttpResponse(
            "A bearer token (METRICS_TOKEN) is required.\n", status=401, content_type="text/plain"
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(_registry), content_type=CONTENT_TYPE_LATEST)
