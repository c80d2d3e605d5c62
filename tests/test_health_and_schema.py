"""Operational endpoints and the published OpenAPI schema."""

import pytest
from django.test import Client
from pytest_django import Settings

pytestmark = pytest.mark.django_db


def test_readiness_checks_real_database_and_redis(api: Client) -> None:
    """/readyz reaches MariaDB and Redis for real and says so."""
    response = api.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "ok", "database": "ok", "redis": "ok"}


def test_readiness_reports_an_unreachable_redis(api: Client, settings: Settings) -> None:
    """With Redis unreachable the probe answers 503 and names the failing dependency."""
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = api.get("/readyz")
    assert response.status_code == 503
    assert response.json()["redis"].startswith("error")
    assert response.json()["database"] == "ok"


def test_openapi_schema_lists_the_api(api: Client) -> None:
    """The schema documents every public endpoint with its error responses."""
    schema = api.get("/api/openapi.json").json()
    paths = schema["paths"]
    for path in (
        "/api/auth/signup",
        "/api/auth/token",
        "/api/auth/refresh",
        "/api/regions",
        "/api/hospitals",
        "/api/hospitals/{hpid}",
        "/api/admin/users",
        "/api/admin/users/{user_id}/approve",
        "/api/admin/users/{user_id}/reject",
    ):
        assert path in paths, path
    assert "400" in paths["/api/hospitals"]["get"]["responses"]
    assert "409" in paths["/api/auth/signup"]["post"]["responses"]
