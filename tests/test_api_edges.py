"""The edges of the API keep the error contract: every ``/api/`` answer is JSON in the one error
shape, and every oddity a correctly signed token can carry is a 401 over HTTP and a 4401 on the
websocket (never a 500 or a traceback), in-process and through a real daphne server."""

import asyncio
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
import jwt
import pytest
import websockets
from django.conf import settings
from django.test import Client

from domain.models import User
from tests.conftest import DaphneServer
from tests.factories import UserFactory


def assert_error_shape(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """``response`` is ``status`` with a JSON body in the standard error shape."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body: dict[str, Any] = json.loads(response.content)
    assert set(body) == {"error"}, body
    assert {"code", "message", "fields"} <= set(body["error"]), body
    if code is not None:
        assert body["error"]["code"] == code, body
    return body


def signed(claims: Mapping[str, object], **options: Any) -> str:
    """A token over ``claims``, signed with the server's real key (as an insider could)."""
    return jwt.encode(
        dict(claims), settings.JWT_SIGNING_KEY, algorithm=settings.JWT_ALGORITHM, **options
    )


def odd_tokens(user: User) -> dict[str, str]:
    """Correctly signed (or unsigned) access tokens whose claims are each wrong in one way."""
    now = int(datetime.now(UTC).timestamp())
    good: dict[str, object] = {
        "sub": str(user.pk),
        "role": user.role,
        "hospital": None,
        "type": "access",
        "iat": now,
        "exp": now + 600,
        "jti": "a" * 32,
    }
    variants: dict[str, dict[str, object]] = {
        "non-numeric sub": {"sub": "abc"},
        "empty sub": {"sub": ""},
        "negative sub": {"sub": "-1"},
        "sub beyond bigint": {"sub": "9" * 30},
        "sub with spaces": {"sub": f" {user.pk} "},
        "numeric sub": {"sub": user.pk},
        "list sub": {"sub": [user.pk]},
        "object sub": {"sub": {"id": user.pk}},
        "null sub": {"sub": None},
        "exp past year 9999": {"exp": 10**12},
        "exp beyond any clock": {"exp": 10**30},
        "string exp": {"exp": str(now + 600)},
        "nbf in the future": {"nbf": now + 3600},
        "iat in the future": {"iat": now + 3600},
        "list type": {"type": ["access"]},
        "refresh type": {"type": "refresh"},
        "object jti": {"jti": {"x": 1}},
    }
    tokens = {name: signed({**good, **change}) for name, change in variants.items()}
    tokens["absent sub"] = signed({k: v for k, v in good.items() if k != "sub"})
    tokens["absent exp"] = signed({k: v for k, v in good.items() if k != "exp"})
    tokens["alg none"] = jwt.encode(good, "", algorithm="none")
    tokens["other key"] = jwt.encode(good, "x" * 40, algorithm="HS256")
    tokens["array payload"] = jwt.api_jws.encode(
        b"[1, 2]", settings.JWT_SIGNING_KEY, algorithm="HS256"
    )
    tokens["not json payload"] = jwt.api_jws.encode(
        b"\xff\xfe", settings.JWT_SIGNING_KEY, algorithm="HS256"
    )
    tokens["garbage"] = "a.b.c"
    tokens["non-ascii"] = "é.é.é"
    return tokens


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/nope", "/api/", "/api/hospitals/x/y/z", "/api/admin"])
def test_unknown_api_paths_are_json_404(api: Client, path: str) -> None:
    """An unknown path under /api/ is a JSON 404, never a page listing the URL patterns."""
    body = assert_error_shape(api.get(path), 404, "not_found")
    assert "urlpatterns" not in json.dumps(body).lower()
    assert_error_shape(api.post(path, "{}", content_type="application/json"), 404, "not_found")


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["put", "delete", "patch", "options", "head"])
def test_wrong_methods_are_json_405_with_allow(api: Client, method: str) -> None:
    """A method the operation does not take is a JSON 405 that says what it does take."""
    response = getattr(api, method)("/api/regions")
    if method == "head":  # no body by definition; the status and the headers still count
        assert response.status_code == 405
        assert response["Allow"] == "GET"
        return
    assert_error_shape(response, 405, "method_not_allowed")
    assert response["Allow"] == "GET"


@pytest.mark.django_db
def test_a_bug_is_a_json_500_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An unexpected exception in an operation answers the error shape and logs the traceback."""

    def broken() -> None:
        raise RuntimeError("a bug with a secret-looking detail")

    monkeypatch.setattr("domain.api.hospitals.region_list", broken)
    response = Client(raise_request_exception=False).get("/api/regions")
    body = assert_error_shape(response, 500, "internal_error")
    assert "secret-looking" not in json.dumps(body)
    assert "RuntimeError: a bug with a secret-looking detail" in caplog.text


@pytest.mark.django_db
def test_every_token_oddity_is_a_401(api: Client) -> None:
    """Each odd token is refused with 401 and the standard error body, never a 500."""
    user = UserFactory()
    answers = {}
    for name, token in odd_tokens(user).items():
        response = api.get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {token}")
        answers[name] = response.status_code
        if response.status_code == 401:
            assert_error_shape(response, 401)
            assert response["WWW-Authenticate"] == "Bearer"
    assert answers == dict.fromkeys(answers, 401), answers


@pytest.mark.django_db
def test_odd_refresh_tokens_are_a_401(api: Client) -> None:
    """The refresh endpoint refuses the same oddities (as refresh tokens) with 401."""
    user = UserFactory()
    answers = {}
    for name, token in odd_tokens(user).items():
        if name == "refresh type":
            continue  # a well-formed refresh token that was never recorded: 401 as well
        response = api.post(
            "/api/auth/refresh", {"refresh": token}, content_type="application/json"
        )
        answers[name] = response.status_code
    assert answers == dict.fromkeys(answers, 401), answers


@pytest.mark.django_db(transaction=True)
def test_real_server_keeps_the_contract(daphne_server: DaphneServer) -> None:
    """Through daphne: unknown paths, wrong methods and odd tokens answer JSON errors."""
    user = UserFactory()
    with httpx.Client(base_url=daphne_server.http_url, timeout=10) as http:
        for response, status in [
            (http.get("/api/nope"), 404),
            (http.put("/api/regions"), 405),
            (http.delete("/api/hospitals"), 405),
            *(
                (http.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"}), 401)
                for token in odd_tokens(user).values()
                if token.isascii()
            ),
        ]:
            assert response.status_code == status, (response.request.url, response.text[:300])
            assert response.headers["content-type"].startswith("application/json")
            assert set(response.json()["error"]) >= {"code", "message", "fields"}
    assert "Traceback" not in daphne_server.output()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_every_token_oddity_closes_the_socket_with_4401(daphne_server: DaphneServer) -> None:
    """The websocket handshake refuses every odd token with an error message and 4401."""
    user = await asyncio.to_thread(UserFactory)
    codes = {}
    for name, token in odd_tokens(user).items():
        async with websockets.connect(f"{daphne_server.ws_url}?token={quote(token)}") as socket:
            message = json.loads(await asyncio.wait_for(socket.recv(), 5))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(socket.recv(), 5)
        assert message["type"] == "error", message
        assert closed.value.rcvd is not None
        codes[name] = closed.value.rcvd.code
    assert codes == dict.fromkeys(codes, 4401), codes
