"""``/metrics``: every server process's realtime figures and the ingestion figures, in
Prometheus text format. Composed here, where the packages meet, so neither imports the other."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from ingestion.metrics import IngestionMetricsCollector
from realtime.metrics import RedisMetricsCollector

_registry = CollectorRegistry(auto_describe=False)
_registry.register(RedisMetricsCollector(settings.REDIS_URL))
_registry.register(IngestionMetricsCollector(settings.REDIS_URL))


def prometheus_metrics(request: HttpRequest) -> HttpResponse:
    return HttpResponse(generate_latest(_registry), content_type=CONTENT_TYPE_LATEST)
