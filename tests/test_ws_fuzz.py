"""Hostile websocket input, through a real daphne server of this module's own (so its
``/metrics`` counts are this module's sockets alone): deeply nested JSON, invalid UTF-8 text,
binary and oversized frames never crash a socket, never leak it on ``/metrics``, and leave
the server serving others (issue #13)."""

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass

import hypothesis
import pytest
import redis
import websockets
from channels.testing import WebsocketCommunicator
from django.conf import settings
from hypothesis import HealthCheck, given
from hypothesis import strategies as st

import realtime.hub
from domain.models import Role, User
from domain.services.tokens import access_token_issue
from realtime import close_codes
from realtime.consumers import StreamConsumer
from realtime.metrics import PROCESS_KEY_PREFIX
from realtime.publishing import publish_event
from realtime.sessions import Session
from tests.conftest import DaphneServer, run_server
from tests.factories import HospitalFactory, UserFactory
from tests.polling import wait_for
from tests.ws import WsClient

MIB = 1024 * 1024
DEEP = 3000  # levels of nesting: far past Python's recursion limit, and under 4096 bytes


@pytest.fixture(scope="module")
def server(
    django_db_setup: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DaphneServer]:
    """A server process of this module's own: its figures on /metrics are ours alone. Its
    connect and subscribe limits are off: the fuzz opens hundreds of sockets for three users,
    and what is under test is each socket's handling of what it is sent."""
    limits_off = {
        name: "off"
        for name in (
            "LIMIT_WS_CONNECTS_PER_USER",
            "LIMIT_WS_CONNECTS_PER_ADDRESS",
            "LIMIT_SUBSCRIBES_PER_USER",
        )
    }
    with run_server(
        tmp_path_factory.mktemp("fuzz"),
        "-m",
        "realtime.serving.server",
        "project.asgi:application",
        env=limits_off,
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


async def _serves_a_new_client(server: DaphneServer, token: str) -> None:
    """A new client connects, subscribes and gets a live event."""
    async with WsClient.connect(server, token) as client:
        await client.subscribe("loadtest.fuzz")
        assert (await client.next())["type"] == "snapshot"
        await asyncio.to_thread(publish_event, "loadtest.fuzz", "loadtest.tick", {"n": 1})
        event = await client.next()
        assert (event["type"], event["data"]) == ("loadtest.tick", {"n": 1})
    await asyncio.to_thread(_no_sockets_left, server)


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_after_hostile_clients_the_server_still_serves(server: DaphneServer) -> None:
    """Whatever the clients before sent, a new one is served, and nothing raised inside."""
    await _serves_a_new_client(server, access_token_issue(user=await _crew()))
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


# -- the fuzz ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Frame:
    """One message a client sends: its payload, as text or binary (or text in fragments), and
    the close code it must get (None: it is answered and the socket stays open)."""

    payload: bytes
    text: bool = True
    fragments: int = 1

    @property
    def closes_with(self) -> int | None:
        if len(self.payload) > MIB:
            return close_codes.MESSAGE_TOO_BIG
        if self.text:
            try:
                self.payload.decode()
            except UnicodeDecodeError:
                return close_codes.INVALID_PAYLOAD
        return None

    async def send(self, socket: websockets.ClientConnection) -> None:
        if self.fragments == 1:
            await socket.send(self.payload, text=self.text)
            return
        step = -(-len(self.payload) // self.fragments)
        # Fragments of a text message are str: split where no character is cut.
        text = self.payload.decode()
        await socket.send([text[i : i + step] for i in range(0, len(text), step)])


_LONE_SURROGATES = st.sampled_from(["\ud800", "\udbff", "\udc00", "\udfff"])
_STRINGS = st.text(max_size=12) | st.builds(  # JSON may hold a lone surrogate, UTF-8 cannot
    "{}{}{}".format, st.text(max_size=6), _LONE_SURROGATES, st.text(max_size=6)
)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | _STRINGS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(_STRINGS, children, max_size=4)
    ),
    max_leaves=24,
)
_STREAMS = (
    st.sampled_from(["beds.11", "beds.all", "beds.99", "metrics", "loadtest.fuzz", "crew.1"])
    | st.sampled_from(["hospital.A0000001", "crew.", "beds.", "", "loadtest." + "x" * 40])
    | st.builds(str.__add__, st.sampled_from(["beds.", "crew.", "loadtest."]), _STRINGS)
    | _STRINGS
)
_REQUESTS = st.fixed_dictionaries(  # well formed, so their streams are looked at
    {
        "type": st.sampled_from(["subscribe", "unsubscribe"]),
        "streams": st.lists(_STREAMS, min_size=1, max_size=4),
    },
    optional={"since": st.dictionaries(_STREAMS, st.integers(0, 2**62), max_size=3)},
)
_MESSAGES = _REQUESTS | st.fixed_dictionaries(
    {"type": st.sampled_from(["ping", "subscribe", "unsubscribe"]) | _JSON},
    optional={
        "streams": st.lists(_STREAMS, max_size=4) | _JSON,
        "since": st.dictionaries(_STREAMS, st.integers(-2, 2**70) | _JSON, max_size=3) | _JSON,
    },
)


def _json_text(value: object, ascii_only: bool) -> bytes:
    # Not ASCII-escaped, a lone surrogate becomes bytes that are not UTF-8 (1007 expected).
    return json.dumps(value, ensure_ascii=ascii_only).encode(errors="surrogatepass")


def _nested(opener: str, depth: int, closed: bool, inside_a_message: bool) -> bytes:
    closer = "".join({"[": "]", "{": "}"}[c] for c in reversed(opener) if c in "[{")
    text = opener * depth + ("0" + closer * depth if closed else "")
    if inside_a_message:
        text = '{"type":"subscribe","streams":["beds.11"],"since":{"beds.11":' + text + "}}"
    return text.encode()


_FRAMES = st.one_of(
    st.builds(_Frame, st.builds(_json_text, _REQUESTS, st.just(True))),  # of the protocol's shape
    st.builds(_Frame, st.builds(_json_text, _JSON | _MESSAGES, st.booleans())),
    st.builds(  # JSON nested from a few levels to far past the parser's recursion limit
        _Frame,
        st.builds(
            _nested,
            st.sampled_from(["[", '{"a":', '{"":[', '[{"":']),
            st.integers(1, 20) | st.integers(900, DEEP),
            st.booleans(),
            st.booleans(),
        ),
    ),
    st.builds(_Frame, st.text().map(str.encode)),  # any text
    st.builds(  # not UTF-8, sent as text
        _Frame,
        st.builds(
            lambda before, bad, after: before.encode() + bad + after.encode(),
            st.text(max_size=16),
            st.sampled_from([b"\xff", b"\xc3(", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf"]),
            st.text(max_size=16),
        ),
    ),
    st.builds(_Frame, st.binary(max_size=64), text=st.just(False)),
    st.builds(  # over the protocol's 4096 bytes, or over the transport's 1 MiB
        _Frame,
        st.builds(
            lambda size: b"x" * size, st.integers(4097, 8192) | st.integers(MIB + 1, MIB + 64)
        ),
        text=st.booleans(),
    ),
    st.builds(  # a message in fragments
        _Frame,
        st.builds(_json_text, _MESSAGES, st.just(True)),
        fragments=st.integers(2, 4),
    ),
)
DOCUMENTED_ERRORS = {  # docs/protocol.md §6
    "bad_json",
    "bad_message",
    "message_too_large",
    "unknown_type",
    "unknown_stream",
    "forbidden",
    "already_subscribed",
    "not_subscribed",
    "too_many_streams",
    "unavailable",
}


async def _exchange(server: DaphneServer, token: str, frames: list[_Frame]) -> None:
    """Send ``frames`` on a new socket, then a ping. Every answer must be a protocol message;
    the socket must answer the ping, or be closed with the code of the first frame that
    fails the connection (or with 4429, invalid messages having come too fast)."""
    fatal = next((f.closes_with for f in frames if f.closes_with is not None), None)
    async with WsClient.connect(server, token, max_size=None) as client:
        code = await _pong_or_close_code(client, frames, expect_pong=fatal is None)
    assert code in {fatal, close_codes.TOO_MANY_ERRORS}, code


async def _pong_or_close_code(
    client: WsClient, frames: list[_Frame], expect_pong: bool
) -> int | None:
    """None once the ping is answered, or the code the socket was closed with (1006: none)."""
    try:
        for frame in frames:
            await frame.send(client.socket)
            if frame.closes_with is not None:
                break
        else:
            await client.send({"type": "ping"})
        while True:
            message = await client.next(timeout=10)
            assert isinstance(message, dict), message
            assert isinstance(message.get("type"), str), message
            if message["type"] == "error":
                assert message["code"] in DOCUMENTED_ERRORS, message
            if message == {"type": "pong"} and expect_pong:
                return None
    except websockets.ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else 1006


@pytest.mark.django_db(transaction=True)
def test_fuzzed_frames_never_crash_a_socket_nor_leak_it(server: DaphneServer) -> None:
    """Frames of every kind (JSON of every shape and depth, any text, text that is not UTF-8,
    binary, oversized, fragmented) get answers or a documented close, never 1011 or a reset;
    afterwards /metrics shows none of those sockets, and a new client is served."""
    tokens = [
        access_token_issue(user=UserFactory(role=role, hospital=hospital))
        for role, hospital in [
            (Role.AMBULANCE, None),
            (Role.HOSPITAL, HospitalFactory(hpid="A0000001")),
            (Role.ADMIN, None),
        ]
    ]

    @hypothesis.settings(
        max_examples=300,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(token=st.sampled_from(tokens), frames=st.lists(_FRAMES, min_size=1, max_size=6))
    def exchange(token: str, frames: list[_Frame]) -> None:
        asyncio.run(_exchange(server, token, frames))

    exchange()
    _no_sockets_left(server)
    asyncio.run(_serves_a_new_client(server, tokens[0]))
    assert "Exception inside application" not in server.output()
