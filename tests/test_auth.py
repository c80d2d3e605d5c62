"""Sign-up, approval, login, refresh rotation and token verification, over the JSON API."""

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

import jwt
import pytest
from django.conf import settings
from django.test import Client

from domain.errors import ErrorCode
from domain.models import Approval, RefreshToken, Role, User
from domain.services.tokens import access_token_issue
from tests.conftest import bearer
from tests.factories import PASSWORD, HospitalFactory, UserFactory

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse as Response

pytestmark = pytest.mark.django_db
JSON = "application/json"


def _sign_up(api: Client, **overrides: object) -> "Response":
    body: dict[str, object] = {
        "username": "medic7",
        "password": PASSWORD,
        "role": "ambulance",
        "agency": "서울 중부소방서",
        "crew_name": "중부 1",
        "phone": "010-1234-5678",
    }
    body.update(overrides)
    return api.post("/api/auth/signup", body, content_type=JSON)


def _login(api: Client, username: str, password: str = PASSWORD) -> "Response":
    return api.post(
        "/api/auth/token",
        {"username": username, "password": password},
        content_type=JSON,
    )


def test_sign_up_approve_login_and_call(api: Client, admin_user: User) -> None:
    """The whole path: pending (no token) → approved → token → an authorized call."""
    response = _sign_up(api)
    assert response.status_code == 201, response.content
    assert response.json()["approval"] == "pending"
    user_id = response.json()["id"]

    pending = _login(api, "medic7")
    assert pending.status_code == 403
    assert pending.json()["error"]["code"] == ErrorCode.ACCOUNT_PENDING

    queue = api.get("/api/admin/users?approval=pending", **bearer(admin_user))
    assert [u["username"] for u in queue.json()["results"]] == ["medic7"]

    approved = api.post(
        f"/api/admin/users/{user_id}/approve", content_type=JSON, **bearer(admin_user)
    )
    assert approved.status_code == 200
    assert approved.json()["approval"] == "active"

    tokens = _login(api, "medic7")
    assert tokens.status_code == 200
    access = tokens.json()["access"]
    claims = jwt.decode(access, settings.JWT_SIGNING_KEY, algorithms=["HS256"])
    assert claims["sub"] == str(user_id)
    assert claims["role"] == "ambulance"
    assert claims["hospital"] is None
    assert {"exp", "iat", "jti"} <= claims.keys()

    me = api.get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {access}")
    assert me.status_code == 200
    assert me.json()["username"] == "medic7"


def test_hospital_staff_token_names_their_hospital(api: Client) -> None:
    """A hospital user's token carries the hpid of the hospital they work for."""
    hospital = HospitalFactory(hpid="A1100015")
    UserFactory(username="nurse1", role=Role.HOSPITAL, hospital=hospital)
    access = _login(api, "nurse1").json()["access"]
    claims = jwt.decode(access, settings.JWT_SIGNING_KEY, algorithms=["HS256"])
    assert claims["hospital"] == "A1100015"
    assert claims["role"] == "hospital"


def test_rejected_user_never_gets_a_token(api: Client, admin_user: User) -> None:
    """Rejection is final for tokens: login answers 403 account_rejected."""
    user_id = _sign_up(api).json()["id"]
    rejected = api.post(
        f"/api/admin/users/{user_id}/reject",
        {"reason": "Unknown agency"},
        content_type=JSON,
        **bearer(admin_user),
    )
    assert rejected.status_code == 200
    assert rejected.json()["rejection_reason"] == "Unknown agency"
    response = _login(api, "medic7")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == ErrorCode.ACCOUNT_REJECTED
    assert "access" not in response.json()


def test_rejecting_an_active_user_stops_their_tokens(api: Client, admin_user: User) -> None:
    """Access tokens of a rejected user are refused (403) and refresh tokens revoked (401)."""
    user = UserFactory(username="medic8")
    pair = _login(api, "medic8").json()
    api.post(f"/api/admin/users/{user.pk}/reject", content_type=JSON, **bearer(admin_user))
    me = api.get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {pair['access']}")
    assert me.status_code == 403
    assert me.json()["error"]["code"] == ErrorCode.ACCOUNT_REJECTED
    refreshed = api.post("/api/auth/refresh", {"refresh": pair["refresh"]}, content_type=JSON)
    assert refreshed.status_code == 401


def test_wrong_password_is_401(api: Client) -> None:
    """Bad credentials get 401 and the same answer for unknown users."""
    UserFactory(username="medic9")
    wrong = _login(api, "medic9", "nope")
    unknown = _login(api, "nobody", "nope")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.json()["error"]["code"] == ErrorCode.INVALID_CREDENTIALS


def test_expired_access_token_is_401(api: Client, crew_user: User) -> None:
    """An access token past its exp is refused with token_expired."""
    token = access_token_issue(user=crew_user, lifetime=timedelta(seconds=-1))
    response = api.get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == ErrorCode.TOKEN_EXPIRED
    assert response["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda t: t[:-2] + ("AA" if t[-2:] != "AA" else "BB"), id="signature"),
        pytest.param(
            lambda t: jwt.encode(
                {**jwt.decode(t, options={"verify_signature": False}), "role": "admin"},
                "another-key-that-is-long-enough-for-hs256",
                algorithm="HS256",
            ),
            id="resigned-with-other-key",
        ),
        pytest.param(
            lambda t: jwt.encode(
                jwt.decode(t, options={"verify_signature": False}),
                None,  # type: ignore[arg-type]  # alg none takes no key; pyjwt's types say str
                algorithm="none",
            ),
            id="alg-none",
        ),
        pytest.param(lambda t: "not.a.jwt", id="garbage"),
    ],
)
def test_tampered_access_token_is_401(
    api: Client, crew_user: User, tamper: Callable[[str], str]
) -> None:
    """Any change to a token, or an unsigned one, is refused with invalid_token."""
    token = tamper(access_token_issue(user=crew_user))
    response = api.get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == ErrorCode.INVALID_TOKEN


def test_missing_token_is_401(api: Client) -> None:
    """Protected endpoints without a bearer token answer 401."""
    response = api.get("/api/auth/me")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_refresh_rotates_and_reuse_revokes_the_family(api: Client, crew_user: User) -> None:
    """A refresh token works once; replaying it revokes every token descended from it."""
    first = _login(api, crew_user.username).json()
    second = api.post("/api/auth/refresh", {"refresh": first["refresh"]}, content_type=JSON)
    assert second.status_code == 200
    assert second.json()["refresh"] != first["refresh"]
    me = api.get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {second.json()['access']}")
    assert me.status_code == 200

    replay = api.post("/api/auth/refresh", {"refresh": first["refresh"]}, content_type=JSON)
    assert replay.status_code == 401
    assert replay.json()["error"]["code"] == ErrorCode.TOKEN_REUSED
    stolen_chain = api.post(
        "/api/auth/refresh", {"refresh": second.json()["refresh"]}, content_type=JSON
    )
    assert stolen_chain.status_code == 401
    assert not RefreshToken.objects.filter(user=crew_user, revoked_at__isnull=True).exists()


def test_refresh_token_is_not_an_access_token(api: Client, crew_user: User) -> None:
    """Token types are not interchangeable in either direction."""
    pair = _login(api, crew_user.username).json()
    as_access = api.get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {pair['refresh']}")
    assert as_access.status_code == 401
    as_refresh = api.post("/api/auth/refresh", {"refresh": pair["access"]}, content_type=JSON)
    assert as_refresh.status_code == 401


def test_sign_up_validation(api: Client) -> None:
    """Weak passwords, admin self-sign-up and unknown hospitals are 400 with field errors."""
    weak = _sign_up(api, password="123")
    assert weak.status_code == 400
    assert "password" in weak.json()["error"]["fields"]
    admin = _sign_up(api, role="admin")
    assert admin.status_code == 400
    assert "role" in admin.json()["error"]["fields"]
    no_hospital = _sign_up(api, role="hospital", hospital="ZZZ99999")
    assert no_hospital.status_code == 400
    assert "hospital" in no_hospital.json()["error"]["fields"]
    bad_name = _sign_up(api, username="has space")
    assert bad_name.status_code == 400
    assert "username" in bad_name.json()["error"]["fields"]
    assert not User.objects.exists()


def test_duplicate_username_is_409(api: Client) -> None:
    """Usernames are unique regardless of case."""
    UserFactory(username="Medic7")
    response = _sign_up(api, username="medic7")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == ErrorCode.USERNAME_TAKEN


def test_admin_endpoints_need_an_admin(api: Client, crew_user: User, admin_user: User) -> None:
    """Non-admins get 403; unknown users 404; repeating a decision 409."""
    pending = UserFactory(approval=Approval.PENDING)
    assert api.get("/api/admin/users", **bearer(crew_user)).status_code == 403
    assert (
        api.post(
            f"/api/admin/users/{pending.pk}/approve", content_type=JSON, **bearer(crew_user)
        ).status_code
        == 403
    )
    assert api.post("/api/admin/users/999999/approve", **bearer(admin_user)).status_code == 404
    assert (
        api.post(
            f"/api/admin/users/{pending.pk}/approve", content_type=JSON, **bearer(admin_user)
        ).status_code
        == 200
    )
    again = api.post(
        f"/api/admin/users/{pending.pk}/approve", content_type=JSON, **bearer(admin_user)
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == ErrorCode.ALREADY_ACTIVE
    bad_filter = api.get("/api/admin/users?approval=maybe", **bearer(admin_user))
    assert bad_filter.status_code == 400
    assert "approval" in bad_filter.json()["error"]["fields"]
