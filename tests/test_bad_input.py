"""Bad input anywhere in the API gets a 400 with field errors in the one error shape."""

import pytest
from django.test import Client

from domain.models import User
from tests.conftest import bearer

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("lat=abc&lon=126.9", "lat"),
        ("lat=37.5&lon=east", "lon"),
        ("lat=91&lon=126.9", "lat"),
        ("lat=37.5&lon=-181", "lon"),
        ("lat=nan&lon=126.9", "lat"),
        ("lat=37.5&lon=inf", "lon"),
        ("lat=37.5", "lon"),
        ("radius_km=5", "radius_km"),
        ("lat=37.5&lon=126.9&radius_km=-1", "radius_km"),
        ("region=99", "region"),
        ("needs=ct,teleporter", "needs"),
        ("min_er_beds=many", "min_er_beds"),
        ("min_er_beds=-1", "min_er_beds"),
        ("page=0", "page"),
        ("page_size=101", "page_size"),
        ("page_size=0", "page_size"),
        ("q=" + "x" * 101, "q"),
    ],
)
def test_hospital_search_rejects(api: Client, query: str, field: str) -> None:
    """Each malformed or out-of-range search parameter is named in the 400's fields."""
    response = api.get(f"/api/hospitals?{query}")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["fields"], error


@pytest.mark.parametrize(
    "body",
    ['{"username": "x", "password": ', "not json", "[1, 2]", '"a string"', "{}"],
)
def test_malformed_json_bodies(api: Client, body: str) -> None:
    """Broken or wrongly shaped JSON is a 400, never a 500."""
    response = api.post("/api/auth/token", body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["fields"]


@pytest.mark.parametrize("body", ["[1, 2]", '"a string"', "42", "null"])
def test_json_that_is_not_an_object(api: Client, body: str) -> None:
    """A body that is valid JSON but not an object is blamed on the body as a whole."""
    response = api.post("/api/auth/signup", body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert "body" in response.json()["error"]["fields"]


def test_oversized_body(api: Client) -> None:
    """A body over DATA_UPLOAD_MAX_MEMORY_SIZE is refused with a 400 naming the body."""
    huge = '{"username": "' + "x" * (200 * 1024) + '", "password": "p"}'
    response = api.post("/api/auth/signup", huge, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "body_too_large"
    assert "body" in response.json()["error"]["fields"]


def test_wrong_types_in_body(api: Client) -> None:
    """Fields of the wrong type or length are reported by name."""
    response = api.post(
        "/api/auth/signup",
        {"username": ["list"], "password": 5, "role": "ambulance", "phone": "0" * 21},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert {"username", "password", "phone"} <= response.json()["error"]["fields"].keys()


def test_non_numeric_path_id(api: Client, admin_user: User) -> None:
    """A non-numeric user id in the path is a 400 or 404, never a 500."""
    response = api.post("/api/admin/users/abc/approve", **bearer(admin_user))
    assert response.status_code in (400, 404)
    assert "error" in response.json()
