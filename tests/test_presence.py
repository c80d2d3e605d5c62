"""ER-screen presence: hospital sockets on their own stream counted in every server process,
added up by the metrics leader, joined to the hospitals' reservations, and shown as the
``presence`` section of ``metrics.snapshot`` and on /metrics (real servers, Redis, MariaDB)."""

import asyncio
import json
import logging
import os
import signal
import socket
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio
import websockets
from django.conf import settings
from django.utils import timezone
from pytest_django import Settings

from domain.events import hospital_stream
from domain.models import Hospital, Reservation, ReservationStatus, Role, User
from domain.presence import (
    HospitalDemand,
    er_screen_alarm,
    er_screen_needed,
    presence_report,
    unix_ms,
)
from domain.selectors.presence import presence_hospitals
from domain.services.reservations import reservation_request
from domain.services.tokens import access_token_issue
from realtime.auth import SocketUser
from realtime.hub import Hub
from realtime.metrics import LATEST_KEY, PROCESS_KEY_PREFIX, _Aggregator
from realtime.sessions import Session
from realtime.sinks import Frame
from tests.conftest import DaphneServer, read_metrics, run_redis, run_server
from tests.factories import HospitalFactory, UserFactory
from tests.polling import eventually, wait_for
from tests.test_reservations import CONDITION
from tests.ws import WsClient

NOW = timezone.now()
HOUR = timedelta(hours=1)


# -- the pure decisions ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("screens", "pending", "last_request_ago", "alarm"),
    [
        (0, 1, timedelta(minutes=2), True),  # a request waits and nobody watches
        (0, 2, None, True),  # pending counts even without a known time
        (0, 0, timedelta(minutes=59), True),  # a recent request: more are likely
        (0, 0, HOUR, True),  # the hour is inclusive
        (0, 0, HOUR + timedelta(seconds=1), False),  # quiet for over an hour
        (0, 0, None, False),  # never had a request
        (1, 3, timedelta(seconds=5), False),  # a screen is connected
        (2, 0, None, False),
    ],
)
def test_er_screen_alarm_cases(
    screens: int, pending: int, last_request_ago: timedelta | None, alarm: bool
) -> None:
    """The alarm is on exactly when a hospital needs a screen (pending or recent) and has none."""
    last = None if last_request_ago is None else NOW - last_request_ago
    facts = {"pending": pending, "last_request_at": last, "now": NOW, "recent": HOUR}
    assert er_screen_alarm(screens=screens, **facts) is alarm  # type: ignore[arg-type]
    if alarm:
        assert er_screen_needed(**facts)  # type: ignore[arg-type]


def test_presence_report_shape_order_and_times() -> None:
    """Alarms first, then by name; hospitals neither watched nor in need are left out; times
    are unix ms, ``last_screen_at`` is now while a screen is connected."""
    hospitals = [
        HospitalDemand("B1", "나병원", "11", 0, NOW - timedelta(minutes=10)),
        HospitalDemand("A1", "가병원", "26", 2, NOW - timedelta(minutes=1)),
        HospitalDemand("C1", "다병원", "11", 1, NOW - timedelta(minutes=3)),
        HospitalDemand("D1", "라병원", "11", 0, NOW - 2 * HOUR),  # quiet, no screen: left out
        HospitalDemand("E1", "마병원", "11", 0, None),  # a screen, no requests ever
    ]
    report = presence_report(
        hospitals=hospitals,
        screens={"C1": 2, "E1": 1},
        last_screen_at={"A1": 1795560000000, "C1": 1},
        now=NOW,
        recent=HOUR,
    )
    assert [row["hpid"] for row in report["hospitals"]] == ["A1", "B1", "C1", "E1"]
    assert report["hospitals"][0] == {
        "hpid": "A1",
        "name": "가병원",
        "region_code": "26",
        "screens": 0,
        "last_screen_at": 1795560000000,
        "pending": 2,
        "last_request_at": unix_ms(NOW - timedelta(minutes=1)),
        "alarm": True,
    }
    by_hpid = {row["hpid"]: row for row in report["hospitals"]}
    assert by_hpid["B1"]["last_screen_at"] is None
    assert by_hpid["B1"]["alarm"]
    assert by_hpid["C1"]["last_screen_at"] == unix_ms(NOW)
    assert not by_hpid["C1"]["alarm"]
    assert by_hpid["E1"]["last_request_at"] is None
    assert (report["alarms"], report["with_screen"]) == (2, 2)


# -- the selector ------------------------------------------------------------------------------


def _request(crew: User, *hospitals: Hospital) -> list[Reservation]:
    return reservation_request(crew=crew, condition=CONDITION, hpids=[h.hpid for h in hospitals])


@pytest.mark.django_db
def test_presence_hospitals_reads_pending_recent_and_watched_hospitals() -> None:
    """Hospitals with pending or recent reservations or with screens, with their pending count
    and newest request; quiet unwatched ones are not read."""
    crew = UserFactory(role=Role.AMBULANCE)
    pending, recent, old, watched, quiet = (HospitalFactory() for _ in range(5))
    _request(crew, pending)
    [cancelled] = _request(crew, recent)
    [stale] = _request(crew, old)
    Reservation.objects.filter(pk__in=[cancelled.pk, stale.pk]).update(
        status=ReservationStatus.CANCELLED, closed_at=timezone.now()
    )
    Reservation.objects.filter(pk=stale.pk).update(created_at=timezone.now() - 2 * HOUR)
    rows = presence_hospitals(hpids=[watched.hpid], requested_since=timezone.now() - HOUR)
    found = {row.hpid: row for row in rows}
    assert set(found) == {pending.hpid, recent.hpid, watched.hpid}
    assert (found[pending.hpid].pending, found[recent.hpid].pending) == (1, 0)
    assert found[recent.hpid].last_request_at == Reservation.objects.get(pk=cancelled.pk).created_at
    assert found[watched.hpid] == HospitalDemand(
        watched.hpid, watched.name, watched.region_code, 0, None
    )
    assert quiet.hpid not in found
    assert old.hpid not in found


# -- counting in a process ---------------------------------------------------------------------


def _screens_by_process() -> dict[str, Counter[str]]:
    """Each live process's ER screens by hpid, as it last reported them to Redis."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    keys = list(client.scan_iter(match=PROCESS_KEY_PREFIX + "*"))
    values = client.mget(keys) if keys else []
    return {
        key.decode()[len(PROCESS_KEY_PREFIX) :]: Counter(json.loads(value).get("er_screens", {}))
        for key, value in zip(keys, values, strict=True)
        if value
    }


def _screens(hpid: str) -> int:
    return sum(counts[hpid] for counts in _screens_by_process().values())


async def _until(condition: Callable[[], Any], what: str, timeout: float = 10) -> None:
    await asyncio.to_thread(wait_for, condition, what, timeout)


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_er_screen_counts_return_to_zero_however_sockets_leave(
    daphne_server: DaphneServer,
) -> None:
    """Screens opened and ended every way a socket can (unsubscribe, close, a dropped
    connection, a second subscribe refused, another hospital's stream refused) are counted
    while they last and leave the count at 0: it cannot drift."""
    hospital, other = (
        await asyncio.to_thread(HospitalFactory),
        await asyncio.to_thread(HospitalFactory),
    )
    staff = await asyncio.to_thread(UserFactory, role=Role.HOSPITAL, hospital=hospital)
    crew = await asyncio.to_thread(UserFactory, role=Role.AMBULANCE)
    token, ward = access_token_issue(user=staff), hospital_stream(hospital.hpid)
    async with (
        WsClient.connect(daphne_server, token) as unsubscribing,
        WsClient.connect(daphne_server, token) as closing,
        WsClient.connect(daphne_server, token) as dropping,
        WsClient.connect(daphne_server, token) as doubled,
        WsClient.connect(daphne_server, access_token_issue(user=crew)) as crew_socket,
    ):
        for client in (unsubscribing, closing, dropping):
            await client.subscribe(ward, "beds.all")
            await client.events(3)  # snapshot, subscribed, snapshot
        await doubled.subscribe(ward)
        await doubled.next()
        await doubled.send({"type": "subscribe", "streams": [ward, hospital_stream(other.hpid)]})
        refusals = {(m["code"], m["stream"]) for m in await doubled.events(2)}
        assert refusals == {("already_subscribed", ward), ("forbidden", f"hospital.{other.hpid}")}
        await crew_socket.send({"type": "subscribe", "streams": [ward]})
        assert (await crew_socket.next())["code"] == "forbidden"
        await _until(lambda: _screens(hospital.hpid) == 4, "4 screens counted")
        await unsubscribing.send({"type": "unsubscribe", "streams": [ward]})
        assert (await unsubscribing.next())["type"] == "unsubscribed"
        await closing.socket.close()
        dropping.socket.transport.abort()  # no close frame: the connection just ends
        await _until(lambda: _screens(hospital.hpid) == 1, "3 screens gone, 1 left")
        assert _screens(other.hpid) == 0
    await _until(lambda: _screens(hospital.hpid) == 0, "no screen left")


class _RecordingSink:
    """Stands in for a socket: keeps every message written to it."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def send(self, frame: Frame) -> bool:
        self.messages.extend(json.loads(payload) for payload in frame.payloads)
        return True

    async def drain(self, seconds: float) -> bool:
        return True

    def detach(self) -> None:
        pass


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_failed_catch_up_uncounts_its_er_screen(tmp_path: Path) -> None:
    """A screen whose catch-up fails (Redis stops answering after the join) is answered
    ``unavailable`` and counted no longer."""
    hospital = await asyncio.to_thread(HospitalFactory)
    user = SocketUser(id=1, role=Role.HOSPITAL, hpid=hospital.hpid)
    ward = hospital_stream(hospital.hpid)
    with run_redis(tmp_path) as private:
        hub = Hub(private.url)
        sink = _RecordingSink()

        async def close(code: int) -> None:
            pass

        session = Session(user=user, hub=hub, sink=sink, close=close)
        try:
            subscribe = json.dumps({"type": "subscribe", "streams": [ward]})
            await asyncio.wait_for(session.receive(subscribe, None), 15)
            assert hub.metrics.er_screens == {hospital.hpid: 1}
            await session.receive(json.dumps({"type": "unsubscribe", "streams": [ward]}), None)
            assert hub.metrics.er_screens == {}
            # Idle connections enough for the hub's metrics reports while Redis is paused:
            # redis-py does not time out the handshake of a new connection to a paused Redis.
            await asyncio.gather(*(hub.redis.ping() for _ in range(8)))
            private.pause()  # the stream's feed stays ready: the next join needs no Redis
            subscribing = asyncio.ensure_future(session.receive(subscribe, None))

            async def counted() -> bool:
                return hub.metrics.er_screens == {hospital.hpid: 1}

            await eventually(counted, "the joined screen counted")
            await asyncio.wait_for(subscribing, 15)
            assert sink.messages[-1]["code"] == "unavailable"
            assert hub.metrics.er_screens == {}
            session.leave_all()  # the socket closes: nothing more to uncount
            assert hub.metrics.er_screens == {}
        finally:
            # Killed rather than resumed: the connections its timeout left half-read then fail
            # at once instead of holding up the hub's close.
            private.stop()
            await asyncio.wait_for(hub.close(), 15)


# -- the metrics leader ------------------------------------------------------------------------


async def broken_section(client: Any) -> dict[str, Any]:
    raise ConnectionError("this section's source is down")


async def slow_section(client: Any) -> dict[str, Any]:
    await asyncio.sleep(30)
    return {}


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_failing_section_is_null_and_the_others_still_reported(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """A section that raises or hangs is null in the report (logged once per outage) while
    the others, presence among them, are read as usual."""
    settings.REALTIME_METRICS_SECTIONS = {
        "broken": "tests.test_presence.broken_section",
        "slow": "tests.test_presence.slow_section",
        "ingestion": "ingestion.metrics.aread_ingestion_metrics",
    }
    client = redis.asyncio.Redis.from_url(settings.REDIS_URL)
    aggregator = _Aggregator()
    try:
        with caplog.at_level(logging.WARNING, logger="realtime.metrics"):
            for _ in range(2):
                sections = await asyncio.wait_for(aggregator.sections(client, {}), 5)
                assert sections["broken"] is None
                assert sections["slow"] is None
                assert "calls_used_today" in sections["ingestion"]
                assert set(sections["presence"]) == {"hospitals", "alarms", "with_screen"}
        logged = [r.getMessage() for r in caplog.records if "unavailable" in r.getMessage()]
        assert len(logged) == 2, logged  # one line each for "broken" and "slow", not per report
    finally:
        await client.aclose()


# -- across processes, on the wire -------------------------------------------------------------


def _children(pid: int) -> set[int]:
    return {int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


def _presence() -> dict[str, Any] | None:
    latest = redis.Redis.from_url(settings.REDIS_URL).get(LATEST_KEY)
    section: dict[str, Any] | None = json.loads(latest).get("presence") if latest else None
    return section


def _row(hpid: str) -> dict[str, Any] | None:
    section = _presence()
    rows = [row for row in section["hospitals"] if row["hpid"] == hpid] if section else []
    return rows[0] if rows else None


def _gauge(text: str, name: str, labels: str = "") -> float | None:
    for line in text.splitlines():
        if line.startswith(f"{name}{labels} ") or line.startswith(f"{name}{{{labels}}} "):
            return float(line.rsplit(" ", 1)[1])
    return None


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_screens_on_two_processes_are_added_up_and_a_killed_ones_drop_out(
    tmp_path: Path,
) -> None:
    """ER screens on both of weer-serve's processes add up in the presence section and on
    /metrics; after one process is killed its screens count as gone within seconds."""
    hospitals = [await asyncio.to_thread(HospitalFactory) for _ in range(3)]
    staff = [
        await asyncio.to_thread(UserFactory, role=Role.HOSPITAL, hospital=h) for h in hospitals
    ]
    tokens = [access_token_issue(user=user) for user in staff]
    hpids = {h.hpid for h in hospitals}
    with run_server(tmp_path, "-m", "realtime.serving.serve", "--processes", "2") as server:
        children = _children(server.process.pid)
        assert len(children) == 2
        pids = {f"{socket.gethostname()}:{child}" for child in children}
        sockets: list[tuple[str, websockets.ClientConnection]] = []

        def on_both() -> bool:
            per_process = _screens_by_process()
            counted = sum(per_process.get(pid, Counter()).total() for pid in pids)
            return counted == len(sockets) and all(per_process.get(pid) for pid in pids)

        try:
            while len(sockets) < 40:  # until the kernel has spread them over both processes
                for _ in range(6):
                    hpid = hospitals[len(sockets) % len(hospitals)].hpid
                    token = tokens[len(sockets) % len(hospitals)]
                    ws = await websockets.connect(f"{server.ws_url}?token={token}")
                    sockets.append((hpid, ws))
                    await ws.send(
                        json.dumps({"type": "subscribe", "streams": [f"hospital.{hpid}"]})
                    )
                    assert json.loads(await ws.recv())["type"] == "subscribed"
                try:
                    await _until(on_both, "screens counted on both processes", timeout=5)
                    break
                except AssertionError:
                    continue
            expected = Counter(hpid for hpid, _ in sockets)

            def section_counts() -> Counter[str]:
                section = _presence() or {"hospitals": []}
                return Counter(
                    {r["hpid"]: r["screens"] for r in section["hospitals"] if r["hpid"] in hpids}
                )

            await _until(lambda: section_counts() == expected, "the presence section's counts")
            text = await asyncio.to_thread(read_metrics, server.http_url)
            for hpid, n in expected.items():
                assert _gauge(text, "weer_er_screens", f'hpid="{hpid}"') == n

            per_process = _screens_by_process()
            victim = min(children)
            lost = per_process[f"{socket.gethostname()}:{victim}"]
            assert lost.total() > 0
            os.kill(victim, signal.SIGKILL)
            await _until(
                lambda: section_counts() == expected - lost,
                "the killed process's screens gone from the presence section",
            )
            await _until(
                lambda: all(
                    _gauge(read_metrics(server.http_url), "weer_er_screens", f'hpid="{h}"')
                    == ((expected - lost)[h] or None)
                    for h in hpids
                ),
                "the killed process's screens gone from /metrics",
            )
        finally:
            for _, ws in sockets:
                await ws.close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_alarm_for_a_pending_request_until_a_screen_subscribes(
    daphne_server: DaphneServer,
) -> None:
    """A hospital with a pending request and no screen raises the alarm, on the metrics
    stream and /metrics; a screen subscribing clears it; once the screen leaves the alarm is
    back and ``last_screen_at`` tells when it was last seen."""
    hospital = await asyncio.to_thread(HospitalFactory)
    staff = await asyncio.to_thread(UserFactory, role=Role.HOSPITAL, hospital=hospital)
    crew = await asyncio.to_thread(UserFactory, role=Role.AMBULANCE)
    admin = await asyncio.to_thread(UserFactory, role=Role.ADMIN)
    [reservation] = await asyncio.to_thread(_request, crew, hospital)
    requested_at = unix_ms(reservation.created_at)

    async with WsClient.connect(daphne_server, access_token_issue(user=admin)) as console:
        await console.subscribe("metrics")
        await console.next()  # the snapshot

        async def row_seen(predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
            """The hospital's row in the first metrics.snapshot where ``predicate`` holds."""
            for _ in range(20):
                event = await console.next(timeout=5)
                assert event["type"] == "metrics.snapshot"
                section = event["data"]["presence"]
                rows = [r for r in section["hospitals"] if r["hpid"] == hospital.hpid]
                if rows and predicate(rows[0]):
                    assert section["alarms"] == sum(r["alarm"] for r in section["hospitals"])
                    row: dict[str, Any] = rows[0]
                    return row
            raise AssertionError("not on the metrics stream within 20 snapshots")

        alarmed = await row_seen(lambda row: row["alarm"])
        assert alarmed == {
            "hpid": hospital.hpid,
            "name": hospital.name,
            "region_code": hospital.region_code,
            "screens": 0,
            "last_screen_at": None,
            "pending": 1,
            "last_request_at": requested_at,
            "alarm": True,
        }
        await _until(
            lambda: _gauge(read_metrics(daphne_server.http_url), "weer_er_screens_missing") == 1,
            "weer_er_screens_missing 1",
        )

        async with WsClient.connect(daphne_server, access_token_issue(user=staff)) as screen:
            await screen.subscribe(hospital_stream(hospital.hpid))
            watched = await row_seen(lambda row: not row["alarm"])
            assert (watched["screens"], watched["pending"]) == (1, 1)
            assert watched["last_screen_at"] >= requested_at

            def counted_and_nothing_missing() -> bool:
                text = read_metrics(daphne_server.http_url)
                return (
                    _gauge(text, "weer_er_screens_missing") == 0
                    and _gauge(text, "weer_er_screens", f'hpid="{hospital.hpid}"') == 1
                )

            await _until(counted_and_nothing_missing, "/metrics: the screen, nothing missing")
        left = await row_seen(lambda row: row["alarm"])
        assert left["screens"] == 0
        assert watched["last_screen_at"] <= left["last_screen_at"] <= unix_ms(timezone.now())
        await _until(
            lambda: _gauge(read_metrics(daphne_server.http_url), "weer_er_screens_missing") == 1,
            "weer_er_screens_missing back to 1",
        )
