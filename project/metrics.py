"""``/metrics``: every server process's realtime figures, the ingestion figures and the outbox
backlog, in Prometheus text format. Composed here, where the packages meet, so neither imports
the other."""

from collections.abc import Iterator

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from domain.selectors.outbox import outbox_backlog
from ingestion.metrics import IngestionMetricsCollector
from realtime.metrics import RedisMetricsCollector


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


_registry = CollectorRegistry(auto_describe=False)
_registry.register(RedisMetricsCollector(settings.REDIS_URL))
_registry.register(IngestionMetricsCollector(settings.REDIS_URL))
_registry.register(OutboxMetricsCollector())


def prometheus_metrics(request: HttpRequest) -> HttpResponse:
    return HttpResponse(generate_latest(_registry), content_type=CONTENT_TYPE_LATEST)
