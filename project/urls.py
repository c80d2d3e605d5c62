from django.contrib import admin
from django.urls import include, path

from domain.api import api
from project.health import healthz, readyz

urlpatterns = [
    path("api/", api.urls),
    path("admin/", admin.site.urls),
    path("healthz", healthz),
    path("readyz", readyz),
    path("", include("frontend.urls")),
]
