from django.contrib import admin
from django.urls import include, path

from domain.api import api
from project.health import healthz, readyz
from project.metrics import prometheus_metrics

urlpatterns = [
    path("api/", api.urls),
    path("admin/", admin.site.urls),
    path("healthz", healthz),
    path("readyz", readyz),
    path("metrics", prometheus_metrics),
    path("", include("frontend.urls")),
]
