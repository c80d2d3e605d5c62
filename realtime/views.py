from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from realtime.metrics import RedisMetricsCollector

_registry = CollectorRegistry(auto_describe=False)
_registry.register(RedisMetricsCollector(settings.REDIS_URL))


def prometheus_metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text exposition of every server process's realtime figures."""
    return HttpResponse(generate_latest(_registry), content_type=CONTENT_TYPE_LATEST)
