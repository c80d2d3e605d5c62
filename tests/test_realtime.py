"""Streams over real daphne processes, real Redis and a real websocket client."""

import asyncio
import functools
import json
import logging
import time
from datetime import timedelta
from typing import cast

import pytest
import redis
import redis.asyncio
from django.conf import settings
from django.utils import timezone

from domain.errors import ErrorCode
from domain.models import Role, User
from domain.services.tokens import access_token_issue
from realtime.engine import SyncEngine, async_engine, sync_engine
from realtime.hub import Hub
from realtime.metrics import PROCESS_KEY_PREFIX
from realtime.publishing import (
    _PUBLISH,
    _publish_call,
    history_key,
    live_channel,
    publish_event,
    stream_head,
)
from realtime.sinks import Frame
from tests.conftest import DaphneServer, read_metrics
from tests.factories import ERStatusFactory, HospitalFactory, UserFactory
from tests.polling import eventually, wait_for
from tests.ws import WsClient

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


async def _user(**fields: object) -> User:
    return await asyncio.to_thread(UserFactory, **fields)


def _token(user: User, lifetime: timedelta | None = None) -> str:
    return access_token_issue(user=user, lifetime=lifetime)


@functools.cache
def _engine() -> SyncEngine:
    """The realtime engine the server uses (one Redis, or the cluster of a cluster run): one
    client for the module (a cluster client left to the garbage collector warns of its
    sockets)."""
    return sync_engine(settings.REALTIME_REDIS_URL)


def _unheard(stream: str) -> str:
    """A channel nobody listens to, in ``stream``'s slot: publishing an event there puts it in
    history while its pub/sub message goes nowhere."""
    return live_channel(stream) + ":unheard"


def _change(hpid: str, new: int) -> dict[str, object]:
    return {"hpid": hpid, "changes": {"er_general": {"old": new - 1, "new": new}}, "hvidate": None}


async def test_subscribe_then_snapshot_then_live_events(daphne_server: DaphneServer) -> None:
    """subscribed carries the current seq, the snapshot holds the region, events follow in seq."""
    await asyncio.to_thread(
        lambda: ERStatusFactory(
            hospital=HospitalFactory(hpid="R2600001", region_code="26", sido="부산광역시"),
            er_general=-2,
            ct=True,
            hvidate=timezone.now(),
        )
    )
    crew = await _user()
    async with WsClient.connect(daphne_server, _token(crew)) as client:
        subscribed = await client.subscribe("beds.26")
        snapshot = await client.next()
        assert snapshot["type"] == "snapshot"
        assert snapshot["stream"] == "beds.26"
        assert snapshot["seq"] == subscribed["seq"]
        assert snapshot["reason"] == "initial"
        [hospital] = [h for h in snapshot["data"]["hospitals"] if h["hpid"] == "R2600001"]
        assert hospital["beds"] == {"er_general": -2, "er_general_capacity": 20, "ct": True}
        assert hospital["hvidate"] is not None

        before = int(time.time() * 1000)
        seq = await asyncio.to_thread(
            publish_event, "beds.26", "beds.changed", _change("R2600001", 3)
        )
        event = await client.next()
        assert event == {
            "type": "beds.changed",
            "stream": "beds.26",
            "seq": subscribed["seq"] + 1,
            "ts": event["ts"],
            "data": _change("R2600001", 3),
        }
        assert seq == event["seq"]
        assert before - 5 <= event["ts"] <= int(time.time() * 1000) + 5
        await client.assert_nothing_pending()


async def test_unknown_and_forbidden_streams_leave_the_socket_open(
    daphne_server: DaphneServer,
) -> None:
    """Each refused stream gets its own error and the socket goes on working."""
    crew, other = await _user(), await _user()
    async with WsClient.connect(daphne_server, _token(crew)) as client:
        await client.send(
            {
                "type": "subscribe",
                "streams": [
                    "beds.99",
                    "hospital.A1100015",
                    f"crew.{other.pk}",
                    "metrics",
                    "nonsense",
                ],
            }
        )
        errors = [await client.next() for _ in range(5)]
        assert [(e["type"], e["code"], e["stream"]) for e in errors] == [
            ("error", "unknown_stream", "beds.99"),
            ("error", "forbidden", "hospital.A1100015"),
            ("error", "forbidden", f"crew.{other.pk}"),
            ("error", "forbidden", "metrics"),
            ("error", "unknown_stream", "nonsense"),
        ]
        mine = await client.subscribe(f"crew.{crew.pk}")
        assert mine["stream"] == f"crew.{crew.pk}"


async def test_hospital_and_crew_streams_reach_only_their_owners(
    daphne_server: DaphneServer,
) -> None:
    """Staff of A never get hospital.B events; a crew never gets another crew's."""
    hospital_a = await asyncio.to_thread(HospitalFactory, hpid="HOSP000A")
    await asyncio.to_thread(HospitalFactory, hpid="HOSP000B")
    staff_a = await _user(role=Role.HOSPITAL, hospital=hospital_a)
    crew_1, crew_2 = await _user(), await _user()
    async with (
        WsClient.connect(daphne_server, _token(staff_a)) as nurse,
        WsClient.connect(daphne_server, _token(crew_1)) as medic,
    ):
        await nurse.subscribe("hospital.HOSP000A")
        assert (await nurse.next())["type"] == "snapshot"
        await medic.subscribe(f"crew.{crew_1.pk}")
        assert (await medic.next())["type"] == "snapshot"
        await nurse.send({"type": "subscribe", "streams": ["hospital.HOSP000B"]})
        assert (await nurse.next())["code"] == "forbidden"

        for stream in (
            "hospital.HOSP000B",
            f"crew.{crew_2.pk}",
            "hospital.HOSP000A",
            f"crew.{crew_1.pk}",
        ):
            await asyncio.to_thread(publish_event, stream, "test.marker", {"for": stream})
        assert (await nurse.next())["data"] == {"for": "hospital.HOSP000A"}
        assert (await medic.next())["data"] == {"for": f"crew.{crew_1.pk}"}
        await nurse.assert_nothing_pending()
        await medic.assert_nothing_pending()


def _publish_steadily(stream: str, count: int, interval: float) -> None:
    for n in range(count):
        publish_event(stream, "beds.changed", _change("R2700001", n))
        time.sleep(interval)


async def test_resume_while_publishing_is_gapless_and_without_duplicates(
    daphne_server: DaphneServer,
) -> None:
    """A socket dropped mid-stream resumes with since and sees every seq exactly once, in order,
    although the publisher never pauses."""
    crew = await _user()
    received: list[int] = []
    async with WsClient.connect(daphne_server, _token(crew)) as client:
        first = (await client.subscribe("beds.27"))["seq"]
        assert (await client.next())["type"] == "snapshot"
        publisher = asyncio.create_task(asyncio.to_thread(_publish_steadily, "beds.27", 400, 0.002))
        for event in await client.events(60):
            received.append(event["seq"])
        client.socket.transport.abort()  # the tunnel: no close handshake
    redis_client = async_engine(settings.REALTIME_REDIS_URL)

    async def published_while_away() -> bool:  # the tablet resumes behind the head
        return await stream_head(redis_client, "beds.27") >= received[-1] + 20

    await eventually(published_while_away, "20 events published while away")
    await redis_client.aclose()
    async with WsClient.connect(daphne_server, _token(crew)) as client:
        resumed = await client.subscribe("beds.27", since={"beds.27": received[-1]})
        assert resumed["seq"] > received[-1]
        while received[-1] < first + 400:
            message = await client.next()
            assert message["type"] == "beds.changed", message
            received.append(message["seq"])
        await publisher
        await client.assert_nothing_pending()
    assert received == list(range(first + 1, first + 401))


async def test_since_older_than_history_gets_a_snapshot(daphne_server: DaphneServer) -> None:
    """Resume replays while history reaches back; beyond it, or ahead of it, a snapshot."""
    crew = await _user()
    seqs = [
        await asyncio.to_thread(publish_event, "beds.28", "beds.changed", _change("X", n))
        for n in range(5)
    ]
    _engine().xtrim(history_key("beds.28"), minid=f"{seqs[3]}-0", approximate=False)
    async with WsClient.connect(daphne_server, _token(crew)) as client:
        await client.subscribe("beds.28", since={"beds.28": seqs[2]})
        assert [e["seq"] for e in await client.events(2)] == seqs[3:]
        await client.assert_nothing_pending()
        await client.send({"type": "unsubscribe", "streams": ["beds.28"]})
        assert await client.next() == {"type": "unsubscribed", "stream": "beds.28"}

        subscribed = await client.subscribe("beds.28", since={"beds.28": seqs[1]})
        snapshot = await client.next()
        assert (snapshot["type"], snapshot.get("reason")) == ("snapshot", "history_expired"), (
            snapshot
        )
        assert snapshot["seq"] == subscribed["seq"] == seqs[-1]
        await client.send({"type": "unsubscribe", "streams": ["beds.28"]})
        await client.next()

        await client.subscribe("beds.28", since={"beds.28": seqs[-1] + 1000})
        assert (await client.next())["reason"] == "unknown_seq"


async def test_two_server_processes_share_one_sequence(
    daphne_server: DaphneServer, second_daphne_server: DaphneServer
) -> None:
    """A publish reaches subscribers on both processes with the same, single sequence."""
    crew = await _user()
    async with (
        WsClient.connect(daphne_server, _token(crew)) as one,
        WsClient.connect(second_daphne_server, _token(crew)) as two,
    ):
        head_one = (await one.subscribe("beds.29"))["seq"]
        head_two = (await two.subscribe("beds.29"))["seq"]
        assert head_one == head_two
        await one.next(), await two.next()  # snapshots
        for n in range(20):
            await asyncio.to_thread(publish_event, "beds.29", "beds.changed", _change("Y", n))
        got_one, got_two = await one.events(20), await two.events(20)
        assert got_one == got_two
        assert [e["seq"] for e in got_one] == list(range(head_one + 1, head_one + 21))


async def test_event_lost_on_pubsub_is_recovered_from_history(daphne_server: DaphneServer) -> None:
    """If pub/sub drops an event, the hub notices the gap and fetches it from history."""
    crew = await _user()
    async with WsClient.connect(daphne_server, _token(crew)) as client:
        head = (await client.subscribe("beds.30"))["seq"]
        await client.next()
        await asyncio.to_thread(publish_event, "beds.30", "beds.changed", _change("Z", 1))
        call = _publish_call("beds.30", "beds.changed", _change("Z", 2))
        _engine().eval(
            _PUBLISH, len(call.keys), *call.keys[:3], _unheard("beds.30"), *call.args
        )  # in history, but its pub/sub message went nowhere
        await asyncio.to_thread(publish_event, "beds.30", "beds.changed", _change("Z", 3))
        events = await client.events(3)
        assert [e["seq"] for e in events] == [head + 1, head + 2, head + 3]
        assert [e["data"]["changes"]["er_general"]["new"] for e in events] == [1, 2, 3]


async def test_a_burst_over_two_streams_with_a_lost_event_arrives_whole_and_in_order(
    daphne_server: DaphneServer,
) -> None:
    """One round trip publishes 300 events interleaved over two streams, one of them lost on
    pub/sub mid-burst: the hub fans the burst out in batches, yet each event is its own
    message, each stream stays in seq order, and the lost one comes from history."""
    crew = await _user()
    async with WsClient.connect(daphne_server, _token(crew)) as client:
        heads = {}
        for stream in ("beds.43", "beds.44"):
            heads[stream] = (await client.subscribe(stream))["seq"]
            await client.next()  # snapshot
        calls = [
            _publish_call(f"beds.4{3 + n % 2}", "beds.changed", _change("B", n)) for n in range(300)
        ]
        with _engine().pipeline(transaction=False) as pipe:
            for n, call in enumerate(calls):
                channel = call.keys[3] + ":unheard" if n == 151 else call.keys[3]
                pipe.execute_command("EVAL", _PUBLISH, 4, *call.keys[:3], channel, *call.args)
            await asyncio.to_thread(pipe.execute)
        events = await client.events(300)
        await client.assert_nothing_pending()
    for offset, stream in enumerate(("beds.43", "beds.44")):
        mine = [e for e in events if e["stream"] == stream]
        assert [e["seq"] for e in mine] == list(range(heads[stream] + 1, heads[stream] + 151))
        assert [e["data"]["changes"]["er_general"]["new"] for e in mine] == list(
            range(offset, 300, 2)
        )


async def test_token_expiry_on_an_open_socket_closes_with_4401(daphne_server: DaphneServer) -> None:
    """When the access token runs out the server says so and closes with 4401."""
    crew = await _user()
    async with WsClient.connect(daphne_server, _token(crew, timedelta(seconds=2))) as client:
        await client.subscribe("beds.all")
        assert (await client.next())["type"] == "snapshot"
        error = await client.next(timeout=5)
        assert (error["type"], error["code"]) == ("error", ErrorCode.TOKEN_EXPIRED)
        assert await client.close_code() == 4401


async def test_invalid_messages_get_errors_then_4429(daphne_server: DaphneServer) -> None:
    """Each bad message is answered; a burst of them closes the socket with 4429."""
    crew = await _user()
    async with WsClient.connect(daphne_server, _token(crew)) as client:
        await client.socket.send("x" * 5000)
        assert (await client.next())["code"] == "message_too_large"
        await client.socket.send(b"\x00binary")
        assert (await client.next())["code"] == "bad_message"
        await client.send({"type": "subscribe", "streams": "beds.11"})
        assert (await client.next())["code"] == "bad_message"
        await client.send({"type": "subscribe", "streams": ["beds.11"], "since": {"beds.11": -1}})
        assert (await client.next())["code"] == "bad_message"
        await client.send({"type": "dance"})
        assert (await client.next())["code"] == "unknown_type"
        for _ in range(10):
            await client.socket.send("{oops")
        assert await client.close_code() == 4429


async def test_slow_consumer_is_closed_while_others_keep_receiving(
    daphne_server: DaphneServer,
) -> None:
    """A client that reads nothing is cut off (4408) and the server's memory stays bounded;
    a client reading normally gets every event."""
    crew = await _user()
    padding = "p" * 16_000
    count = 2500  # 40 MB of frames in all
    rss_before = daphne_server.rss_kib()
    async with (
        WsClient.connect(daphne_server, _token(crew), max_queue=1, max_size=2**20) as slow,
        WsClient.connect(daphne_server, _token(crew), max_size=2**20) as fast,
    ):
        await slow.subscribe("beds.31")
        await slow.next()
        head = (await fast.subscribe("beds.31"))["seq"]
        await fast.next()

        async def read_all() -> list[int]:
            return [e["seq"] for e in await fast.events(count, timeout=30)]

        reader = asyncio.create_task(read_all())

        def publish_many() -> None:
            for n in range(count):
                publish_event("beds.31", "beds.changed", {"n": n, "padding": padding})

        await asyncio.to_thread(publish_many)
        assert await reader == list(range(head + 1, head + count + 1))
        rss_growth_mib = (daphne_server.rss_kib() - rss_before) / 1024
        assert rss_growth_mib < 25, f"server grew {rss_growth_mib:.0f} MiB"
        assert await slow.close_code(timeout=30) in (4408, 1006)
    _engine().delete(history_key("beds.31"))
    wait_for(_slow_consumer_closes, "a slow-consumer close reported")  # reported each second


def _slow_consumer_closes() -> int:
    """Slow-consumer closes so far, as the server processes last reported them."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    keys = list(client.scan_iter(match=PROCESS_KEY_PREFIX + "*"))
    reports = [json.loads(v) for v in client.mget(keys) if v] if keys else []
    return sum(int(report["slow_consumer_closes"]) for report in reports)


async def test_metrics_stream_and_prometheus_endpoint(daphne_server: DaphneServer) -> None:
    """Admins see live connection counts on the metrics stream and at /metrics."""
    admin = await _user(role=Role.ADMIN)
    async with WsClient.connect(daphne_server, _token(admin)) as client:
        await client.subscribe("metrics")
        await client.next()  # snapshot: the latest figures, if any
        # Figures are shared once a second: the first event may predate this connection.
        deadline = time.monotonic() + 5
        while True:
            event = await client.next(timeout=5)
            assert event["type"] == "metrics.snapshot"
            figures = event["data"]
            if figures["connections"]["by_role"].get("admin", 0) >= 1:
                break
            assert time.monotonic() < deadline, figures
        assert figures["subscriptions"].get("metrics", 0) >= 1
        text = await asyncio.to_thread(read_metrics, daphne_server.http_url)
        assert 'weer_ws_connections{process="' in text
        assert 'role="admin"' in text
        assert "weer_events_published_total" in text


class _RecordingSink:
    """Stands in for a socket: notes the seq of every event written to it."""

    def __init__(self) -> None:
        self.seqs: list[int] = []

    def send(self, frame: Frame) -> bool:
        self.seqs.extend(json.loads(payload)["seq"] for payload in frame.payloads)
        return True

    async def drain(self, seconds: float) -> bool:
        return True

    def detach(self) -> None:
        pass


async def test_a_stream_dropped_and_joined_again_at_once_stays_subscribed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The hub drops an idle stream and a socket joins it again before the unsubscribe is
    answered: that answer is not taken for the server pushing the stream away (a slot
    migration), and the stream's events keep coming."""
    stream = "beds.50"
    hub = Hub(settings.REDIS_URL, settings.REALTIME_REDIS_URL)
    sink = _RecordingSink()
    try:
        hub.leave(stream, await hub.join(stream, _RecordingSink()))
        with caplog.at_level(logging.WARNING, logger="realtime.subscriptions"):
            await hub.drop_idle_feeds(idle_for=0)
            member = await hub.join(stream, sink)
            await hub.go_live(stream, member, await stream_head(hub.streams, stream))
            seq = await asyncio.to_thread(publish_event, stream, "beds.changed", _change("D", 1))

            async def delivered() -> bool:
                return seq in sink.seqs

            await eventually(delivered, "the event after joining again")
        assert [r.getMessage() for r in caplog.records] == []
    finally:
        await hub.close()
        redis.Redis.from_url(settings.REDIS_URL).delete(PROCESS_KEY_PREFIX + hub.process_id)


async def test_a_member_going_live_ahead_of_its_lagging_hub_gets_no_event_twice() -> None:
    """Under load a process's pub/sub can lag behind history: a client resumed from history
    up to seq N must not get events up to N again when their pub/sub copies arrive late."""
    stream = "beds.48"
    client = _engine()
    hub = Hub(settings.REDIS_URL, settings.REALTIME_REDIS_URL)
    sink = _RecordingSink()
    try:
        member = await hub.join(stream, sink)
        late = []  # published, in history, but their pub/sub messages still on their way
        for n in range(3):
            call = _publish_call(stream, "beds.changed", _change("L", n))
            seq = client.eval(
                _PUBLISH, len(call.keys), *call.keys[:3], _unheard(stream), *call.args
            )
            entries = client.xrange(history_key(stream), f"{seq}-0", f"{seq}-0")
            [(_, fields)] = cast(list[tuple[bytes, dict[bytes, bytes]]], entries)
            late.append(b"%d %s" % (seq, fields[b"f"]))
        head = await stream_head(hub.streams, stream)
        await hub.go_live(stream, member, head)  # the member replayed history up to head
        for message in late:
            client.spublish(live_channel(stream), message)
        newest = await asyncio.to_thread(publish_event, stream, "beds.changed", _change("L", 9))

        async def newest_arrived() -> bool:
            return newest in sink.seqs

        await eventually(newest_arrived, "the newest event")
        assert sink.seqs == [newest]
    finally:
        await hub.close()
        redis.Redis.from_url(settings.REDIS_URL).delete(PROCESS_KEY_PREFIX + hub.process_id)


async def test_a_cold_hub_joined_on_several_streams_at_once_subscribes_to_each() -> None:
    """A server process that starts while a crowd reconnects gets first joins to several
    streams at once: each must be subscribed on the one pub/sub connection the hub reads (two
    racing first subscribes used to open two, and the stream whose confirmation went to the
    other one never became ready: every join to it timed out, for good)."""
    hub = Hub(settings.REDIS_URL)
    streams = [f"beds.{code}" for code in ("11", "26", "27", "28", "29", "30")]
    try:
        members = await asyncio.wait_for(
            asyncio.gather(*(hub.join(stream, _RecordingSink()) for stream in streams)), 8
        )
        assert len(members) == len(streams)
    finally:
        await hub.close()
        redis.Redis.from_url(settings.REDIS_URL).delete(PROCESS_KEY_PREFIX + hub.process_id)
