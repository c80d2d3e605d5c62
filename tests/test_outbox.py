"""Durable delivery of committed changes (docs/realtime.md § the transactional outbox): a change
committed while Redis is unreachable still reaches the sockets that wait for it, once, soon
after Redis returns. Real MariaDB, real Redis servers of the tests' own that they stop and
start, a real daphne server and a real Celery worker with beat."""

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from domain.models import Reservation, ReservationStatus, Role, User
from domain.services.tokens import access_token_issue
from tests.conftest import DaphneServer, RedisServer, run_celery_worker, run_redis, run_server
from tests.factories import ERStatusFactory, HospitalFactory, UserFactory
from tests.test_reservations import CONDITION
from tests.ws import WsClient

Json = dict[str, Any]


# -- the end-to-end case of issue #12 ---------------------------------------------------------


@dataclass(frozen=True)
class System:
    """A daphne server and a Celery worker with beat, both on a private Redis."""

    redis: RedisServer
    server: DaphneServer


@pytest.fixture
def system(tmp_path: Path, django_db_setup: None) -> Iterator[System]:
    # Nothing polls the upstream here: the worker runs the beat schedule for the outbox relay.
    quiet = {name: "3600" for name in ("INGEST_BEDS_SECONDS", "INGEST_MESSAGES_SECONDS")}
    quiet["INGEST_ACCEPTANCE_SECONDS"] = "3600"
    with (
        run_redis(tmp_path) as redis_server,
        run_server(
            tmp_path,
            "-m",
            "realtime.serving.server",
            "project.asgi:application",
            env={"REDIS_URL": redis_server.url},
        ) as server,
        run_celery_worker(tmp_path, None, "-B", REDIS_URL=redis_server.url, **quiet),
    ):
        yield System(redis_server, server)


def _http(server: DaphneServer, user: User, path: str, body: Json) -> Any:
    """POST ``body`` as ``user`` over HTTP; the JSON of its 2xx answer."""
    response = httpx.post(
        f"{server.http_url}{path}",
        json=body,
        headers={"Authorization": f"Bearer {access_token_issue(user=user)}"},
        timeout=10,
    )
    assert response.is_success, (response.status_code, response.text)
    return response.json()


class Follower:
    """One client following one stream across a Redis outage: it keeps its socket while the
    server keeps it open, and reconnects resuming from the last seq it saw (``since``) when the
    server closes it."""

    def __init__(self, server: DaphneServer, user: User, stream: str) -> None:
        self.server, self.user, self.stream = server, user, stream
        self.seq = 0
        self.received: list[Json] = []
        self.reconnects = 0
        self._client: WsClient | None = None
        self._context: Any = None

    async def open(self, *, since: int | None = None) -> Json:
        """Connect and subscribe; the first message after ``subscribed`` (snapshot or replay)."""
        self._context = WsClient.connect(self.server, access_token_issue(user=self.user))
        self._client = await self._context.__aenter__()
        subscribed = await self._client.subscribe(
            self.stream, since=None if since is None else {self.stream: since}
        )
        self.seq = subscribed["seq"] if since is None else since
        return subscribed

    async def close(self) -> None:
        if self._context is not None:
            await self._context.__aexit__(None, None, None)
            self._context = self._client = None

    async def next_event(self, timeout: float) -> Json:
        """The next event of the stream (snapshots are skipped), reconnecting if need be."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.stream}: no event within {timeout} s")
            assert self._client is not None
            try:
                message = await self._client.next(timeout=left)
            except websockets.ConnectionClosed:
                await self.close()
                self.reconnects += 1
                await self._reopen(deadline)
                continue
            except TimeoutError:
                continue
            if message.get("stream") != self.stream or "seq" not in message:
                continue
            self.seq = max(self.seq, message["seq"])
            if message["type"] != "snapshot":
                self.received.append(message)
                return message

    async def _reopen(self, deadline: float) -> None:
        """Reconnect with ``since`` until the server takes the subscription again."""
        while True:
            try:
                await self.open(since=self.seq)
                return
            except (OSError, websockets.WebSocketException, AssertionError):
                await self.close()
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)

    async def assert_nothing_pending(self) -> None:
        assert self._client is not None
        await self._client.assert_nothing_pending()


def _world() -> tuple[User, User]:
    hospital = ERStatusFactory(
        hospital=HospitalFactory(hpid="OUTBOX0A", region_code="41", sido="경기도")
    ).hospital
    return (
        UserFactory(role=Role.HOSPITAL, hospital=hospital),
        UserFactory(role=Role.AMBULANCE),
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_an_approval_committed_while_redis_is_down_reaches_both_sockets_once(
    system: System,
) -> None:
    """Redis stops (keeping its data); the ER approves a request over HTTP (200, committed);
    Redis starts again: the crew's socket and the ER screen, kept open or reconnected and
    resumed with ``since``, each receive ``reservation.decided`` exactly once within a few
    seconds, and a client resuming from before the outage replays it once too."""
    staff, crew = await asyncio.to_thread(_world)
    screen = Follower(system.server, staff, "hospital.OUTBOX0A")
    tablet = Follower(system.server, crew, f"crew.{crew.pk}")
    for follower in (screen, tablet):
        await follower.open()
    try:
        [requested] = await asyncio.to_thread(
            _http,
            system.server,
            crew,
            "/api/reservations",
            {"hospitals": ["OUTBOX0A"], "condition": CONDITION},
        )
        for follower in (screen, tablet):
            assert (await follower.next_event(10))["type"] == "reservation.requested"
        before_outage = {f.stream: f.seq for f in (screen, tablet)}

        await asyncio.to_thread(system.redis.stop, save=True)
        approved = await asyncio.to_thread(
            _http, system.server, staff, f"/api/reservations/{requested['id']}/approve", {}
        )
        assert approved["status"] == "approved"
        stored = await Reservation.objects.aget(pk=requested["id"])
        assert stored.status == ReservationStatus.APPROVED

        await asyncio.to_thread(system.redis.start)
        back = time.monotonic()
        for follower in (screen, tablet):
            decided = await follower.next_event(timeout=15)
            assert (decided["type"], decided["data"]["status"]) == (
                "reservation.decided",
                "approved",
            )
        took = time.monotonic() - back
        assert took < 5, f"delivered {took:.1f} s after Redis returned"

        for follower in (screen, tablet):
            await follower.assert_nothing_pending()
            kinds = [e["type"] for e in follower.received]
            assert kinds == ["reservation.requested", "reservation.decided"], kinds
    finally:
        for follower in (screen, tablet):
            await follower.close()

    for stream, seq in before_outage.items():
        late = Follower(system.server, staff if stream.startswith("hospital") else crew, stream)
        await late.open(since=seq)
        try:
            assert (await late.next_event(5))["type"] == "reservation.decided"
            await late.assert_nothing_pending()
        finally:
            await late.close()
