"""Durable delivery of committed changes (docs/realtime.md § the transactional outbox): a change
committed while Redis is unreachable still reaches the sockets that wait for it, once, soon
after Redis returns. Real MariaDB, real Redis servers of the tests' own that they stop and
start, a real daphne server and a real Celery worker with beat."""

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import redis
import websockets
from django.conf import settings
from django.db import transaction
from django.test import Client
from django.utils import timezone

from domain.events import Event, beds_changed, events_publish_on_commit
from domain.models import OutboxEvent, Reservation, ReservationStatus, Role, User
from domain.services.er_status import er_status_apply
from domain.services.outbox import outbox_relay
from domain.services.tokens import access_token_issue
from realtime.publishing import history_key, publish_events, seq_key
from tests.conftest import (
    DaphneServer,
    RedisServer,
    StreamEvents,
    bearer,
    metrics_headers,
    run_celery_worker,
    run_redis,
    run_server,
)
from tests.factories import ERStatusFactory, HospitalFactory, UserFactory, bed_report
from tests.polling import eventually
from tests.test_reservations import CONDITION
from tests.ws import WsClient

Json = dict[str, Any]


# -- the relay and the publisher: at least once, published once ---------------------------------


@pytest.mark.django_db
@pytest.mark.usefixtures("empty_streams")
def test_a_relay_that_published_but_never_deleted_its_rows_publishes_nothing_twice(
    stream_events: StreamEvents,
) -> None:
    """A relay that crashed after publishing, before its deletions committed, left its rows;
    the next relay hands the same events over again, and each stream still holds each event
    once, with one seq: the publisher knew their outbox ids."""
    hvidate = timezone.now()
    for n in (1, 2):
        changes = {"er_general": {"old": n, "new": n + 1}}
        events_publish_on_commit(
            beds_changed(hpid="OUTBOX1", region_code="11", changes=changes, hvidate=hvidate)
        )
    with transaction.atomic():
        assert outbox_relay() == 4  # published...
        transaction.set_rollback(True)  # ...and then it crashed: the deletions never commit
    assert OutboxEvent.objects.count() == 4

    assert outbox_relay() == 4
    assert OutboxEvent.objects.count() == 0
    client = redis.Redis.from_url(settings.REDIS_URL)
    for stream in ("beds.11", "beds.all"):
        events = stream_events(stream)
        assert [e["data"]["changes"]["er_general"]["new"] for e in events] == [2, 3]
        assert events[1]["seq"] == events[0]["seq"] + 1
        assert int(cast(bytes, client.get(seq_key(stream)))) == events[1]["seq"]


@pytest.mark.usefixtures("empty_streams")
def test_events_without_an_outbox_id_are_published_every_time(
    stream_events: StreamEvents,
) -> None:
    """What does not come from the outbox (metrics, load tests) is published as often as it is
    given: de-duplication is by outbox id only."""
    event = Event("beds.11", "beds.changed", {"hpid": "OUTBOX2", "changes": {}})
    first, second = publish_events([event, event])
    assert second == first + 1
    assert len(stream_events("beds.11")) == 2


# -- Redis unreachable: writes commit, the outbox keeps their events ----------------------------


def _history(client: redis.Redis, stream: str) -> list[Json]:
    entries = cast(list[tuple[bytes, dict[bytes, bytes]]], client.xrange(history_key(stream)))
    return [json.loads(fields[b"f"]) for _, fields in entries]


@pytest.mark.django_db(transaction=True)
def test_writes_commit_while_redis_is_down_and_the_relay_delivers_them_in_order_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """With the publisher's Redis stopped, a request, its acknowledgement, its approval and an
    ingestion poll all commit and answer 2xx; the failed publish logs one line (no traceback)
    and /metrics shows the backlog; once Redis is back the relay delivers every event, each
    stream's in the order of its changes, and the outbox is empty."""
    hospital = ERStatusFactory(
        hospital=HospitalFactory(hpid="OUTBOX0B", region_code="26", sido="부산광역시")
    ).hospital
    staff = UserFactory(role=Role.HOSPITAL, hospital=hospital)
    crew = UserFactory(role=Role.AMBULANCE)
    api = Client()
    with run_redis(tmp_path) as private:
        client = redis.Redis.from_url(private.url)
        monkeypatch.setattr(settings, "REALTIME_REDIS_URL", private.url)  # the publisher's
        private.stop()

        with caplog.at_level(logging.WARNING):
            created = api.post(
                "/api/reservations",
                json.dumps({"hospitals": ["OUTBOX0B"], "condition": CONDITION}),
                content_type="application/json",
                **bearer(crew),
            )
            assert created.status_code == 201, created.content
            rid = created.json()[0]["id"]
            for action in ("acknowledge", "approve"):
                answer = api.post(f"/api/reservations/{rid}/{action}", **bearer(staff))
                assert answer.status_code == 200, answer.content
            later = timezone.now() + timedelta(seconds=1)
            er_status_apply(
                region_code="26",
                reports=[bed_report("OUTBOX0B", later, er_general=9, er_general_capacity=20)],
            )
        assert Reservation.objects.get(pk=rid).status == ReservationStatus.APPROVED
        # The first commit's relay fails and says so; the next commits leave it to beat.
        failures = [r for r in caplog.records if r.name == "domain.services.outbox"]
        assert len(failures) == 1, [r.getMessage() for r in caplog.records]
        assert all(r.levelno == logging.WARNING and r.exc_info is None for r in failures)
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]

        pending = OutboxEvent.objects.count()
        # To both sides: requested, acknowledged, decided; to both bed streams: the held bed,
        # the ingested change.
        assert pending == 2 * 5
        metrics = api.get("/metrics", headers=metrics_headers()).content.decode()
        assert f"weer_outbox_pending_events {pending}.0" in metrics
        [age] = [line for line in metrics.splitlines() if line.startswith("weer_outbox_oldest")]
        assert float(age.split()[1]) > 0

        private.start()
        assert outbox_relay() == pending
        assert OutboxEvent.objects.count() == 0
        kinds = ["reservation.requested", "reservation.acknowledged", "reservation.decided"]
        for stream in ("hospital.OUTBOX0B", f"crew.{crew.pk}"):
            events = _history(client, stream)
            assert [e["type"] for e in events] == kinds
            assert [e["seq"] for e in events] == list(range(events[0]["seq"], events[0]["seq"] + 3))
        for stream in ("beds.26", "beds.all"):
            changes = [e["data"]["changes"] for e in _history(client, stream)]
            assert changes == [{"held": {"old": 0, "new": 1}}, {"er_general": {"old": 5, "new": 9}}]
        assert outbox_relay() == 0
        client.close()


# -- the end-to-end case of issue #12 ---------------------------------------------------------


@dataclass(frozen=True)
class System:
    """A daphne server and a Celery worker with beat, both on a private Redis."""

    redis: RedisServer
    server: DaphneServer


@pytest.fixture
def system(tmp_path: Path, django_db_setup: None) -> Iterator[System]:
    # Nothing polls the upstream here: the worker runs the beat schedule for the outbox relay.
    polls = ("INGEST_BEDS_SECONDS", "INGEST_MESSAGES_SECONDS", "INGEST_ACCEPTANCE_SECONDS")
    quiet = dict.fromkeys(polls, "3600")
    # The test's key names (history_key) are the system's: the same namespace on its Redis.
    on_private = {"REDIS_NAMESPACE": settings.REDIS_NAMESPACE}
    with (
        run_redis(tmp_path) as redis_server,
        run_server(
            tmp_path,
            "-m",
            "realtime.serving.server",
            "project.asgi:application",
            env={"REDIS_URL": redis_server.url, **on_private},
        ) as server,
        run_celery_worker(tmp_path, None, "-B", REDIS_URL=redis_server.url, **on_private, **quiet),
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


async def _outbox_empty() -> bool:
    return await OutboxEvent.objects.acount() == 0


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
    seconds, and the streams' histories hold it once."""
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

    # Whoever resumes from before the outage gets it once too, replayed from history.
    await eventually(_outbox_empty, "the relay to delete what it published")
    for user, (stream, seq) in zip((staff, crew), before_outage.items(), strict=True):
        async with WsClient.connect(system.server, access_token_issue(user=user)) as resumed:
            await resumed.subscribe(stream, since={stream: seq})
            replayed = await resumed.next()
            assert (replayed["type"], replayed["seq"]) == ("reservation.decided", seq + 1)
            await resumed.assert_nothing_pending()
