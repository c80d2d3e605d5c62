"""/metrics is for the scraper holding METRICS_TOKEN only, on a real server process."""

from pathlib import Path

import httpx
import pytest

from tests.conftest import DaphneServer, metrics_headers, run_server

pytestmark = pytest.mark.django_db(transaction=True)


def test_metrics_need_the_bearer_token(daphne_server: DaphneServer) -> None:
    """No token or a wrong one is a 401 that shows no figure; the right one reads them."""
    url = f"{daphne_server.http_url}/metrics"
    right = metrics_headers()["Authorization"]
    for headers in [{}, {"Authorization": "Bearer wrong"}, {"Authorization": right[:-1]}]:
        refused = httpx.get(url, headers=headers, timeout=5)
        assert refused.status_code == 401, refused.text[:300]
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
        assert "weer_" not in refused.text
    allowed = httpx.get(url, headers=metrics_headers(), timeout=5)
    assert allowed.status_code == 200
    assert "weer_metrics_source_up" in allowed.text


def test_metrics_are_off_without_a_token(tmp_path: Path) -> None:
    """A server with no METRICS_TOKEN has no /metrics at all, with or without a header."""
    with run_server(
        tmp_path,
        "-m",
        "realtime.serving.server",
        "project.asgi:application",
        env={"METRICS_TOKEN": ""},
    ) as server:
        for headers in [{}, {"Authorization": "Bearer x"}, metrics_headers()]:
            response = httpx.get(f"{server.http_url}/metrics", headers=headers, timeout=5)
            assert response.status_code == 404
            assert "weer_" not in response.text
