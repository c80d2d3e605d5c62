from django.contrib import admin
from django.urls import include, path, re_path

from domain.api import api
from domain.api.errors import api_not_found
from project.health import healthz, readyz
from project.metrics import prometheus_metrics

urlpatterns = [
    path("api/", api.urls),
    re_path(r"^api/", api_not_found),
    path("admin/", admin.site.urls),
    path("healthz", healthz),
    path("readyz", readyz),
    path("metrics", prometheus_metrics),
    path("", include("frontend.urls")),
]
