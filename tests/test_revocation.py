"""An account that loses its access loses its open sockets too, on every server process, within
2 s: disabled or rejected (4403), logged out (that login's sockets, 4401) or given a new password
(every socket, 4401); and new sockets are refused. A socket is authenticated from the account's
cached status, without the database, and that cache never admits a disabled account."""

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from django.conf import settings
from django.test import Client, override_settings

from domain.models import Role, User
from domain.services.tokens import token_pair_issue
from tests.conftest import DaphneServer, bearer, run_server, server_env
from tests.factories import HospitalFactory, UserFactory
from tests.mariadb import MariaDBServer, migrate, run_mariadb

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

CLOSE_WITHIN = 2.0  # seconds from the change's answer to every socket closed


def _post(user: User | None, path: str, body: dict[str, Any] | None = None) -> Any:
    client, data = Client(), json.dumps(body or {})
    if user is None:
        response = client.post(path, data, content_type="application/json")
    else:
        response = client.post(path, data, content_type="application/json", **bearer(user))
    assert response.status_code in (200, 201, 204), (response.status_code, response.content)
    return response.json() if response.content else None


class Socket:
    """A websocket subscribed to a stream, waiting for the server to close it."""

    def __init__(self, connection: websockets.ClientConnection, stream: str) -> None:
        self.connection = connection
        self.stream = stream

    @classmethod
    async def open(cls, server: DaphneServer, token: str, stream: str) -> "Socket":
        connection = await websockets.connect(f"{server.ws_url}?token={token}")
        await connection.send(json.dumps({"type": "subscribe", "streams": [stream]}))
        for expected in ("subscribed", "snapshot"):
            message = json.loads(await asyncio.wait_for(connection.recv(), 5))
            assert message["type"] == expected, message
        return cls(connection, stream)

    async def closed(self, timeout: float) -> tuple[int, str | None]:
        """The close code and the last error code the server sent before closing."""
        error = None
        try:
            while True:
                message = json.loads(await asyncio.wait_for(self.connection.recv(), timeout))
                if message.get("type") == "error":
                    error = message["code"]
        except websockets.ConnectionClosed as closed:
            return (closed.rcvd.code if closed.rcvd else 1006), error

    async def still_open(self) -> bool:
        await self.connection.send(json.dumps({"type": "ping"}))
        answer: object = json.loads(await asyncio.wait_for(self.connection.recv(), 5))
        return answer == {"type": "pong"}


async def _refused(server: DaphneServer, token: str) -> tuple[int, str]:
    async with websockets.connect(f"{server.ws_url}?token={token}") as connection:
        error = json.loads(await asyncio.wait_for(connection.recv(), 5))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(connection.recv(), 5)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, error["code"]


async def _all_closed(sockets: list[Socket]) -> list[tuple[int, str | None]]:
    return await asyncio.gather(*(s.closed(timeout=CLOSE_WITHIN + 3) for s in sockets))


def _set_password(user: User, password: str) -> None:
    user.set_password(password)
    user.save()


def _staff() -> tuple[User, User]:
    hospital = HospitalFactory(hpid="REVOKE01")
    return UserFactory(role=Role.HOSPITAL, hospital=hospital), UserFactory(role=Role.ADMIN)


@pytest.mark.parametrize(
    ("action", "reason"), [("disable", "account_disabled"), ("reject", "account_rejected")]
)
async def test_a_disabled_or_rejected_account_loses_its_sockets_on_every_process(
    daphne_server: DaphneServer, second_daphne_server: DaphneServer, action: str, reason: str
) -> None:
    """An admin disables (or rejects) an ER user with a socket on each of two server
    processes: both get the reason and close with 4403 within 2 s of the answer; a new socket
    with a still unexpired token is refused with 4403; an unrelated user's socket stays."""
    staff, admin = await asyncio.to_thread(_staff)
    bystander = await asyncio.to_thread(UserFactory)
    token = (await asyncio.to_thread(token_pair_issue, user=staff)).access
    other = (await asyncio.to_thread(token_pair_issue, user=bystander)).access
    sockets = [
        await Socket.open(server, token, "hospital.REVOKE01")
        for server in (daphne_server, second_daphne_server)
    ]
    unrelated = await Socket.open(second_daphne_server, other, "beds.all")
    await asyncio.to_thread(_post, admin, f"/api/admin/users/{staff.pk}/{action}")
    answered = time.monotonic()
    closes = await _all_closed(sockets)
    took = time.monotonic() - answered
    assert closes == [(4403, reason), (4403, reason)]
    assert took < CLOSE_WITHIN, f"closed {took:.2f} s after the answer"
    for server in (daphne_server, second_daphne_server):
        assert await _refused(server, token) == (4403, reason)
    assert await unrelated.still_open()
    await unrelated.connection.close()


async def test_logging_out_closes_that_logins_sockets_only(
    daphne_server: DaphneServer, second_daphne_server: DaphneServer
) -> None:
    """A user logged in on two devices logs out on one: that login's sockets close with 4401
    ``token_revoked`` within 2 s (on both processes) and its token is refused; the other
    device's socket stays open."""
    staff, _admin = await asyncio.to_thread(_staff)
    leaving = await asyncio.to_thread(token_pair_issue, user=staff)
    staying = await asyncio.to_thread(token_pair_issue, user=staff)
    sockets = [
        await Socket.open(server, leaving.access, "hospital.REVOKE01")
        for server in (daphne_server, second_daphne_server)
    ]
    kept = await Socket.open(second_daphne_server, staying.access, "hospital.REVOKE01")
    await asyncio.to_thread(_post, None, "/api/auth/logout", {"refresh": leaving.refresh})
    answered = time.monotonic()
    closes = await _all_closed(sockets)
    assert time.monotonic() - answered < CLOSE_WITHIN
    assert closes == [(4401, "token_revoked"), (4401, "token_revoked")]
    assert await _refused(daphne_server, leaving.access) == (4401, "token_revoked")
    assert await kept.still_open()
    await kept.connection.close()


async def test_a_new_password_closes_every_socket_and_the_new_pair_works(
    daphne_server: DaphneServer, second_daphne_server: DaphneServer
) -> None:
    """A password change closes the account's sockets on both processes with 4401 within
    2 s; tokens from before are refused; the pair it answers with connects."""
    staff, _admin = await asyncio.to_thread(_staff)
    await asyncio.to_thread(_set_password, staff, "old-password-123")
    before = await asyncio.to_thread(token_pair_issue, user=staff)
    sockets = [
        await Socket.open(server, before.access, "hospital.REVOKE01")
        for server in (daphne_server, second_daphne_server)
    ]
    fresh = await asyncio.to_thread(
        _post,
        staff,
        "/api/auth/password",
        {"current_password": "old-password-123", "new_password": "a-new-long-password-456"},
    )
    answered = time.monotonic()
    closes = await _all_closed(sockets)
    assert time.monotonic() - answered < CLOSE_WITHIN
    assert closes == [(4401, "token_revoked"), (4401, "token_revoked")]
    assert await _refused(second_daphne_server, before.access) == (4401, "token_revoked")
    socket = await Socket.open(daphne_server, fresh["access"], "hospital.REVOKE01")
    assert await socket.still_open()
    await socket.connection.close()


# -- no database query per connect -----------------------------------------------------------


@pytest.fixture(scope="module")
def frozen_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDBServer]:
    with run_mariadb(tmp_path_factory.mktemp("mariadb")) as db:
        migrate(db.url)
        yield db


_IN_PRIVATE_DB = """
import sys, django
django.setup()
from domain.models import Role, User
from domain.services.tokens import access_claims, token_pair_issue
from domain.services.users import user_disable
from tests.factories import UserFactory
if sys.argv[1] == "issue":
    print(token_pair_issue(user=UserFactory(role=Role.AMBULANCE, username="frozen-crew")).access)
else:
    admin = UserFactory(role=Role.ADMIN, username="frozen-admin")
    user_disable(user_id=access_claims(sys.argv[2]).user_id, by=admin)
"""


def _private_deployment(db: MariaDBServer) -> dict[str, str]:
    """The settings of a deployment on the private database: its own Redis namespace too, as
    its user ids repeat the test database's (whose cached statuses are not its users')."""
    return {"DATABASE_URL": db.url, "REDIS_NAMESPACE": "private-db"}


def _in_private_db(db: MariaDBServer, *args: str) -> str:
    """Run a step on the private database, as another process of the deployment would."""
    done = subprocess.run(
        [sys.executable, "-c", _IN_PRIVATE_DB, *args],
        env={**server_env(), **_private_deployment(db)},
        cwd=settings.BASE_DIR,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.stdout.strip()


async def test_a_socket_is_authenticated_from_the_cache_without_the_database(
    frozen_db: MariaDBServer, tmp_path: Path
) -> None:
    """Once a user's status is cached, more sockets for it connect while the database is
    frozen (no query is made); the cache never admits the account once it is disabled."""
    env = {**_private_deployment(frozen_db), "DATABASE_READ_TIMEOUT_SECONDS": "2"}
    with run_server(
        tmp_path, "-m", "realtime.serving.server", "project.asgi:application", env=env
    ) as server:
        token = await asyncio.to_thread(_in_private_db, frozen_db, "issue")
        first = await Socket.open(server, token, "beds.all")  # reads the database, caches
        frozen_db.pause()
        try:
            again = await Socket.open(server, token, "loadtest.cached")
            assert await again.still_open()
        finally:
            frozen_db.resume()
        await asyncio.to_thread(_in_private_db, frozen_db, "disable", token)
        assert (await first.closed(timeout=5))[0] == 4403
        assert await _refused(server, token) == (4403, "account_disabled")


async def test_a_connect_right_after_a_disable_is_refused_though_the_status_was_cached(
    daphne_server: DaphneServer, second_daphne_server: DaphneServer
) -> None:
    """The auth cache never admits a disabled account: 10 times over, a user's status is
    cached by a socket on each of two processes, the account is disabled, and a new socket
    opened the moment the disable is answered (before any server can have heard of it) is
    refused with 4403 on both; enabled again, the user connects again."""
    staff, admin = await asyncio.to_thread(_staff)
    for _ in range(10):
        # A new login each time: disabling revoked the last one.
        token = (await asyncio.to_thread(token_pair_issue, user=staff)).access
        cached = [
            await Socket.open(server, token, "hospital.REVOKE01")
            for server in (daphne_server, second_daphne_server)
        ]
        await asyncio.to_thread(_post, admin, f"/api/admin/users/{staff.pk}/disable")
        for server in (daphne_server, second_daphne_server):
            assert await _refused(server, token) == (4403, "account_disabled")
        assert [code for code, _ in await _all_closed(cached)] == [4403, 4403]
        await asyncio.to_thread(_post, admin, f"/api/admin/users/{staff.pk}/enable")


async def test_a_status_read_before_a_disable_is_not_cached_after_it() -> None:
    """A lookup that read the database before a change committed cannot put that stale
    status in the cache afterwards: the change's marker stays (``SET NX``), so the next
    lookup reads the database and sees the account disabled. (In a key space of its own, so
    that no running server, hearing of the change, marks it instead.)"""
    from domain.services.account_status import CHANGED, status_key, user_statuses_read
    from domain.services.users import user_disable
    from realtime.hub import Hub

    staff, admin = await asyncio.to_thread(_staff)
    stale = (await asyncio.to_thread(user_statuses_read, user_ids=[staff.pk]))[staff.pk]
    hub = Hub(settings.REDIS_URL)  # its account cache only
    with override_settings(REDIS_KEY_PREFIX=f"weer:cache-race-{time.time_ns()}:"):
        await asyncio.to_thread(user_disable, user_id=staff.pk, by=admin)
        try:
            await hub.accounts._cache([stale])  # noqa: SLF001 - the racing lookup's store
            assert await hub.redis.get(status_key(staff.pk)) == CHANGED
            status = await hub.accounts.status(staff.pk)
            assert status is not None
            assert not status.is_active
        finally:
            await hub.accounts.close()
            await hub.redis.aclose()
