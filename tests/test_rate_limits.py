"""Rate limits over the JSON API, on MariaDB and the real Redis the counters live in: login per
account and per client address, sign-up, refresh, reservations per crew and open requests per
crew; a 429 in the one error shape with ``Retry-After``; and no lock-out when Redis is down."""

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from django.contrib.auth import authenticate
from django.test import Client
from pytest_django import Settings

from domain.errors import ErrorCode
from domain.models import Reservation, ReservationStatus, Role, User
from domain.services import tokens
from tests.conftest import bearer
from tests.factories import PASSWORD, ERStatusFactory, HospitalFactory, UserFactory

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse as Response

pytestmark = pytest.mark.django_db
JSON = "application/json"
CONDITION = {
    "sex": "male",
    "age_band": "50_59",
    "consciousness": "alert",
    "chief_complaint": "Chest pain, 30 min",
}


def _login(api: Client, username: str, password: str, address: str = "198.51.100.7") -> "Response":
    return api.post(
        "/api/auth/token",
        {"username": username, "password": password},
        content_type=JSON,
        REMOTE_ADDR=address,
    )


def _assert_rate_limited(response: "Response", window: int = 60) -> int:
    """A 429 in the API's one error shape, with a ``Retry-After`` of whole seconds within the
    limit's window; returns it."""
    assert response.status_code == 429, response.content
    body = response.json()
    assert body["error"]["code"] == "rate_limited"
    assert body["error"]["fields"] == {}
    retry_after = int(response["Retry-After"])
    assert 1 <= retry_after <= window
    return retry_after


@pytest.fixture
def hashing_count(monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """How many times login got as far as checking a password (the costly hashing step)."""
    calls = []

    def counting(**credentials: Any) -> Any:
        calls.append(credentials["username"])
        return authenticate(**credentials)

    monkeypatch.setattr("domain.services.tokens.authenticate", counting)
    return lambda: len(calls)


def test_wrong_passwords_for_one_account_are_refused_with_429_before_hashing(
    api: Client, hashing_count: Callable[[], int]
) -> None:
    """Ten wrong passwords a minute (the default) are 401; then the account answers 429 with
    Retry-After, even to the right password, and no password is hashed any more."""
    user = UserFactory(username="medic-under-attack")
    answers = [_login(api, user.username, f"guess-{n}").status_code for n in range(10)]
    assert answers == [401] * 10
    assert hashing_count() == 10
    for password in ("guess-11", PASSWORD):
        _assert_rate_limited(_login(api, user.username, password))
    assert hashing_count() == 10


def test_unknown_usernames_are_limited_exactly_like_real_ones(api: Client) -> None:
    """No user enumeration through the limits: an unknown username gets the same answers, in
    the same order, as an existing one (matched case-insensitively as login does)."""
    UserFactory(username="real-medic")
    known = [_login(api, "real-medic", "wrong").status_code for _ in range(11)]
    unknown = [_login(api, "Nobody-Here", "wrong").status_code for _ in range(6)]
    unknown += [_login(api, "nobody-here", "wrong").status_code for _ in range(5)]
    assert known == unknown == [401] * 10 + [429]


def test_logins_are_limited_per_client_address(api: Client, settings: Settings) -> None:
    """Thirty attempts a minute from one address (the default), whichever accounts they try;
    another address is not affected."""
    settings.LIMIT_LOGIN_PER_ACCOUNT = "1000/minute"
    answers = [_login(api, f"user-{n}", "wrong").status_code for n in range(30)]
    assert answers == [401] * 30
    _assert_rate_limited(_login(api, "user-31", "wrong"))
    assert _login(api, "user-31", "wrong", address="203.0.113.9").status_code == 401


def test_ipv6_clients_are_counted_per_64_bit_prefix(api: Client, settings: Settings) -> None:
    """An IPv6 client holds a whole /64: changing the low bits is the same address."""
    settings.LIMIT_LOGIN_PER_ADDRESS = "3/minute"
    for n in range(3):
        assert _login(api, "x", "wrong", address=f"2001:db8:1:2::{n + 1}").status_code == 401
    _assert_rate_limited(_login(api, "x", "wrong", address="2001:db8:1:2:ffff::9"))
    assert _login(api, "x", "wrong", address="2001:db8:1:3::1").status_code == 401


def test_sign_ups_are_limited_per_address(api: Client, settings: Settings) -> None:
    """Sign-ups per address (LIMIT_SIGNUP_PER_ADDRESS): over it, 429, and no account is made."""
    settings.LIMIT_SIGNUP_PER_ADDRESS = "2/hour"

    def sign_up(n: int) -> "Response":
        body = {"username": f"new-medic-{n}", "password": PASSWORD, "role": "ambulance"}
        return api.post("/api/auth/signup", body, content_type=JSON, REMOTE_ADDR="192.0.2.1")

    assert [sign_up(n).status_code for n in range(2)] == [201, 201]
    assert _assert_rate_limited(sign_up(3), window=3600) > 3500
    assert not User.objects.filter(username="new-medic-3").exists()


def test_refreshes_are_limited_per_user(api: Client, settings: Settings) -> None:
    """Token refreshes per user (LIMIT_REFRESH_PER_USER), counted before the database."""
    settings.LIMIT_REFRESH_PER_USER = "3/minute"
    user = UserFactory()
    refresh = tokens.token_pair_issue(user=user).refresh
    for _ in range(3):
        response = api.post("/api/auth/refresh", {"refresh": refresh}, content_type=JSON)
        assert response.status_code == 200, response.content
        refresh = response.json()["refresh"]
    _assert_rate_limited(api.post("/api/auth/refresh", {"refresh": refresh}, content_type=JSON))
    other = tokens.token_pair_issue(user=UserFactory()).refresh
    assert api.post("/api/auth/refresh", {"refresh": other}, content_type=JSON).status_code == 200


def _hospitals(count: int) -> list[str]:
    return [ERStatusFactory(hospital=HospitalFactory()).hospital.hpid for _ in range(count)]


def _request(api: Client, crew: User, hpids: list[str]) -> "Response":
    body = {"hospitals": hpids, "condition": CONDITION}
    return api.post("/api/reservations", body, content_type=JSON, **bearer(crew))


def test_a_crew_cannot_flood_the_ers_with_requests(api: Client) -> None:
    """The incident of issue #13: a crew sending request after request. With the defaults, at
    most 6 requests of a crew are pending at once (409 too_many_open_reservations beyond) and
    at most 10 requests a minute are made (429 beyond); another crew is not affected."""
    crew = UserFactory(role=Role.AMBULANCE)
    hpids = _hospitals(3)
    answers = [_request(api, crew, hpids).status_code for _ in range(12)]
    assert answers == [201, 201] + [409] * 8 + [429] * 2
    refused = _request(api, crew, hpids[:1])
    assert refused.status_code == 429
    assert Reservation.objects.filter(crew=crew).count() == 6
    assert _request(api, UserFactory(role=Role.AMBULANCE), hpids).status_code == 201


def test_open_requests_per_crew_are_a_domain_rule(api: Client, settings: Settings) -> None:
    """RESERVATION_MAX_OPEN_PER_CREW counts pending requests: one that would pass it is a 409
    naming the rule, and once some are decided or cancelled the crew may send again."""
    settings.RESERVATION_MAX_OPEN_PER_CREW = 4
    crew = UserFactory(role=Role.AMBULANCE)
    hpids = _hospitals(3)
    first = _request(api, crew, hpids)
    assert first.status_code == 201
    refused = _request(api, crew, hpids[:2])
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["code"] == ErrorCode.TOO_MANY_OPEN_RESERVATIONS
    assert "4" in error["message"]
    assert _request(api, crew, hpids[:1]).status_code == 201
    cancelled = first.json()[0]["id"]
    response = api.post(f"/api/reservations/{cancelled}/cancel", content_type=JSON, **bearer(crew))
    assert response.status_code == 200
    assert _request(api, crew, hpids[:1]).status_code == 201
    assert Reservation.objects.filter(crew=crew, status=ReservationStatus.PENDING).count() == 4


def test_reservation_rate_per_crew(api: Client, settings: Settings) -> None:
    """LIMIT_RESERVATIONS_PER_CREW counts requests made; an idempotent replay is not one."""
    settings.LIMIT_RESERVATIONS_PER_CREW = "2/minute"
    crew = UserFactory(role=Role.AMBULANCE)
    [hpid] = _hospitals(1)
    body = {"hospitals": [hpid], "condition": CONDITION}
    for _ in range(3):
        response = api.post(
            "/api/reservations",
            body,
            content_type=JSON,
            HTTP_IDEMPOTENCY_KEY="same-request",
            **bearer(crew),
        )
        assert response.status_code == 201
    assert _request(api, crew, [hpid]).status_code == 201
    _assert_rate_limited(_request(api, crew, [hpid]))


def test_limits_fail_open_when_redis_is_down(
    api: Client, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis unreachable: nobody is locked out (login works, wrong passwords are 401, never
    429), and the outage is logged once, not per request."""
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    settings.LIMIT_LOGIN_PER_ACCOUNT = "2/minute"
    user = UserFactory()
    with caplog.at_level(logging.WARNING, logger="domain.services.rate_limits"):
        answers = [_login(api, user.username, "wrong").status_code for _ in range(4)]
        assert _login(api, user.username, PASSWORD).status_code == 200
    assert answers == [401] * 4
    warnings = [r for r in caplog.records if r.name == "domain.services.rate_limits"]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "not enforced" in warnings[0].getMessage()


def test_a_crowd_of_connects_at_once_is_still_counted(settings: Settings) -> None:
    """500 websocket connects of one user counted at the same moment (a reconnect storm is
    many at once) are all counted in Redis: exactly the rule's 20 are allowed. Counting must not
    fail for want of a pooled connection, which would switch the limits off (fail open)."""
    import asyncio
    import time as clock

    from domain.services.rate_limits import Limit, arate_limit_hit

    settings.LIMIT_WS_CONNECTS_PER_USER = "20/minute"
    key = f"crowd-{clock.time_ns()}"

    async def crowd() -> list[object]:
        return await asyncio.gather(
            *(arate_limit_hit(Limit.WS_CONNECTS_PER_USER, key) for _ in range(500))
        )

    refusals = asyncio.run(crowd())
    assert sum(refusal is None for refusal in refusals) == 20
