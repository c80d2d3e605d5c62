"""Hostile websocket input, through a real daphne server of this module's own (so its
``/metrics`` counts are this module's sockets alone): deeply nested JSON, invalid UTF-8 text,
binary and oversized frames never crash a socket, never leak it on ``/metrics``, and leave
the server serving others (issue #13)."""

import asyncio
import json
from collections.abc import Iterator

import pytest
import redis
from channels.testing import WebsocketCommunicator
from django.conf import settings

import realtime.hub
from domain.models import User
from domain.services.tokens import access_token_issue
from realtime import close_codes
from realtime.consumers import StreamConsumer
from realtime.metrics import PROCESS_KEY_PREFIX
from realtime.publishing import publish_event
from realtime.sessions import Session
from tests.conftest import DaphneServer, run_server
from tests.factories import UserFactory
from tests.polling import wait_for
from tests.ws import WsClient

MIB = 1024 * 1024
DEEP = 3000  # levels of nesting: far past Python's recursion limit, and under 4096 bytes


@pytest.fixture(scope="module")
def server(
    django_db_setup: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DaphneServer]:
    """A server process of this module's own: its figures on /metrics are ours alone."""
    with run_server(
        tmp_path_factory.mktemp("fuzz"), "-m", "realtime.serving.server", "project.asgi:application"
    ) as server:
        yield server


def _no_sockets_left(server: DaphneServer) -> None:
    """Every socket this module opened is gone from ``/metrics``, with its subscriptions."""
    figures: list[tuple[int, int]] = []

    def none_left() -> bool:
        figures.append(server.socket_figures())
        return figures[-1] == (0, 0)

    try:
        wait_for(none_left, "no connection or subscription left")
    except AssertionError as left:
        raise AssertionError(f"{left}: (connections, subscriptions) = {figures[-1]}") from None


async def _crew() -> User:
    return await asyncio.to_thread(UserFactory)


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
@pytest.mark.parametrize(
    "text",
    [
        "[" * DEEP,
        "[" * (DEEP // 2) + "]" * (DEEP // 2),
        '{"":[' * (DEEP // 4),
        '{"type":"subscribe","streams":["beds.11"],"since":{"beds.11":' + "[" * DEEP + "}}",
    ],
    ids=["open-lists", "closed-lists", "objects-and-lists", "inside-a-message"],
)
async def test_deeply_nested_json_is_bad_json(server: DaphneServer, text: str) -> None:
    """JSON nested deeper than the parser recurses is answered ``bad_json``; the socket stays
    open, and once closed it leaves nothing behind on /metrics."""
    crew = await _crew()
    async with WsClient.connect(server, access_token_issue(user=crew)) as client:
        await client.subscribe(f"crew.{crew.pk}")
        assert (await client.next())["type"] == "snapshot"
        await client.socket.send(text)
        assert (await client.next())["code"] == "bad_json"
        await client.assert_nothing_pending()
    await asyncio.to_thread(_no_sockets_left, server)


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_lone_surrogates_come_back_escaped(server: DaphneServer) -> None:
    """A stream name holding a lone surrogate (valid JSON, ``"\\ud800"``, though no UTF-8
    text can carry it) is refused by name, escaped, and the socket stays open."""
    crew = await _crew()
    async with WsClient.connect(server, access_token_issue(user=crew)) as client:
        await client.socket.send('{"type":"subscribe","streams":["beds.\\ud800"]}')
        error = await client.next()
        assert (error["code"], error["stream"]) == ("unknown_stream", "beds.\ud800")
        await client.assert_nothing_pending()
    await asyncio.to_thread(_no_sockets_left, server)


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
@pytest.mark.parametrize(
    "payload",
    [b"\xff", b'{"type":"ping","x":"\xc3"}', b"\xed\xa0\x80", b"ok \xf4\x90\x80\x80"],
    ids=["stray-byte", "truncated", "surrogate", "above-max"],
)
async def test_invalid_utf8_text_closes_with_1007(server: DaphneServer, payload: bytes) -> None:
    """A text frame that is not UTF-8 fails the connection with 1007 (not a TCP reset), and
    its subscriptions and connection leave /metrics."""
    crew = await _crew()
    async with WsClient.connect(server, access_token_issue(user=crew)) as client:
        await client.subscribe(f"crew.{crew.pk}")
        await client.socket.send(payload, text=True)
        assert await client.close_code() == close_codes.INVALID_PAYLOAD
    await asyncio.to_thread(_no_sockets_left, server)


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
async def test_a_message_over_1_mib_closes_with_1009(server: DaphneServer, binary: bool) -> None:
    """A message over 1 MiB is refused unread with 1009; one over 4096 bytes and under 1 MiB
    only gets ``message_too_large``."""
    crew = await _crew()
    async with WsClient.connect(server, access_token_issue(user=crew)) as client:
        await client.subscribe(f"crew.{crew.pk}")
        assert (await client.next())["type"] == "snapshot"
        await client.socket.send("x" * (MIB // 2))
        assert (await client.next())["code"] == "message_too_large"
        await client.socket.send(b"x" * (MIB + 1) if binary else "x" * (MIB + 1))
        assert await client.close_code() == close_codes.MESSAGE_TOO_BIG
    await asyncio.to_thread(_no_sockets_left, server)


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_after_hostile_clients_the_server_still_serves(server: DaphneServer) -> None:
    """Whatever the other clients sent, a new one connects, subscribes and gets a live event."""
    crew = await _crew()
    async with WsClient.connect(server, access_token_issue(user=crew)) as client:
        await client.subscribe("loadtest.fuzz")
        assert (await client.next())["type"] == "snapshot"
        await asyncio.to_thread(publish_event, "loadtest.fuzz", "loadtest.tick", {"n": 1})
        event = await client.next()
        assert (event["type"], event["data"]) == ("loadtest.tick", {"n": 1})
    await asyncio.to_thread(_no_sockets_left, server)
    assert "Exception inside application" not in server.output()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_an_exception_in_the_consumer_still_cleans_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Whatever raises inside a consumer, the error reaches the server (daphne closes the
    socket with 1011) and the socket still leaves its streams, its connection count and its
    token timer behind: nothing outlives it in the hub or on /metrics."""
    monkeypatch.setattr(realtime.hub, "_hubs", {})  # a hub of this test's own, closed below
    hub = realtime.hub.get_hub()
    crew = await _crew()
    consumer = StreamConsumer()
    communicator = WebsocketCommunicator(consumer, f"/ws/?token={access_token_issue(user=crew)}")
    try:
        connected, _ = await communicator.connect()
        assert connected
        await communicator.send_json_to({"type": "subscribe", "streams": ["loadtest.boom"]})
        assert json.loads(await communicator.receive_from())["type"] == "subscribed"
        assert json.loads(await communicator.receive_from())["type"] == "snapshot"
        assert hub.metrics.connections.total() == 1
        assert hub.metrics.subscriptions == {"loadtest.boom": 1}

        async def explode(*_: object) -> None:
            raise RuntimeError("a bug")

        monkeypatch.setattr(Session, "receive", explode)
        await communicator.send_to(text_data='{"type":"ping"}')
        with pytest.raises(RuntimeError, match="a bug"):
            await communicator.wait()
        assert hub.metrics.connections.total() == 0
        assert hub.metrics.subscriptions == {}
        timer = consumer._expiry  # noqa: SLF001 - the token timer the socket set
        assert timer is not None
        assert timer.cancelled()
    finally:
        await hub.close()
        redis.Redis.from_url(settings.REDIS_URL).delete(PROCESS_KEY_PREFIX + hub.process_id)
