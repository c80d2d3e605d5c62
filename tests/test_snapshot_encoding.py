"""Compressed snapshots (docs/protocol.md §1, ``?snapshots=deflate``): the binary frame inflates
to exactly the message, and so the state, that the JSON text frame carries, for any statuses;
it is built once per stream and seq; and over a real server a socket that asked gets the same
snapshot as one that did not, as a binary frame, and every other message as text."""

import asyncio
import json
import zlib
from datetime import UTC, datetime
from typing import Any

import pytest
import websockets
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st

from domain.bed_fields import STATUS_VALUE_KINDS, Kind
from domain.events import stream_parse
from domain.models import ERStatus, Hospital
from domain.services.tokens import access_token_issue
from realtime import snapshots
from realtime.sinks import Frame
from tests.conftest import DaphneServer
from tests.factories import HospitalFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

_JSON_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)
_VALUE = {
    Kind.COUNT: st.none() | st.integers(min_value=-999, max_value=9999),
    Kind.FLAG: st.none() | st.booleans(),
    Kind.MIXED: st.none()
    | st.integers(min_value=-999, max_value=9999)
    | _JSON_TEXT
    | st.lists(_JSON_TEXT, max_size=3),
}
_STATUS = st.fixed_dictionaries({name: _VALUE[kind] for name, kind in STATUS_VALUE_KINDS.items()})
_TIME = st.none() | st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
)


def _inflated(frame: Frame) -> Any:
    assert frame.deflated is not None
    assert frame.deflated.binary
    (payload,) = frame.deflated.payloads
    return json.loads(zlib.decompress(payload))


def _store(statuses: list[dict[str, Any]], times: list[datetime | None]) -> None:
    ERStatus.objects.all().delete()
    Hospital.objects.all().delete()
    for values, hvidate in zip(statuses, times, strict=False):
        ERStatus.objects.create(hospital=HospitalFactory(), hvidate=hvidate, **values)


@examples(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(statuses=st.lists(_STATUS, max_size=6), times=st.lists(_TIME, min_size=6, max_size=6))
def test_a_deflated_snapshot_inflates_to_exactly_the_json_snapshots_state(
    statuses: list[dict[str, Any]], times: list[datetime | None]
) -> None:
    """For generated ER statuses (every bed field unknown, zero, negative, a flag, or upstream's
    free text in any script), stored in the database and read by the real snapshot path, the
    binary frame inflates to the text frame's very bytes, so to the same state."""
    _store(statuses, times)
    stream = stream_parse("beds.11")
    assert stream is not None
    snapshots._shared.clear()  # noqa: SLF001 - each example reads its own database state
    frame = asyncio.run(snapshots.snapshot_frame(stream, 41, "initial", redis_client=None))
    (text,) = frame.payloads
    assert frame.deflated is not None
    assert zlib.decompress(frame.deflated.payloads[0]) == text
    message = json.loads(text)
    assert _inflated(frame) == message
    assert [h["beds"] for h in message["data"]["hospitals"]] == [
        {name: value for name, value in s.items() if value is not None} for s in statuses
    ]


@pytest.mark.asyncio
async def test_a_snapshot_is_framed_and_compressed_once_per_stream_and_seq() -> None:
    """Every socket asking for the same stream, seq and reason shares one frame (so one
    compression); a new seq makes a new one."""
    await asyncio.to_thread(HospitalFactory.create_batch, 3)
    stream = stream_parse("beds.11")
    assert stream is not None
    frames = await asyncio.gather(
        *(snapshots.snapshot_frame(stream, 7, "initial", None) for _ in range(20))
    )
    assert all(frame is frames[0] for frame in frames)
    assert (await snapshots.snapshot_frame(stream, 8, "initial", None)) is not frames[0]


async def _read(socket: websockets.ClientConnection) -> str | bytes:
    return await asyncio.wait_for(socket.recv(), 5)


@pytest.mark.asyncio
async def test_a_socket_that_asks_gets_the_same_snapshot_deflated_and_the_rest_as_text(
    daphne_server: DaphneServer,
) -> None:
    statuses = [{"er_general": n, "er_general_capacity": 20} for n in range(12)]
    await asyncio.to_thread(_store, statuses, [None] * 12)
    token = access_token_issue(user=await asyncio.to_thread(UserFactory))
    subscribe = json.dumps({"type": "subscribe", "streams": ["beds.11"]})
    async with (
        websockets.connect(f"{daphne_server.ws_url}?token={token}&snapshots=deflate") as deflated,
        websockets.connect(f"{daphne_server.ws_url}?token={token}") as plain,
    ):
        for socket in (deflated, plain):
            await socket.send(subscribe)
        subscribed, binary = await _read(deflated), await _read(deflated)
        assert isinstance(subscribed, str)
        assert isinstance(binary, bytes)
        assert json.loads(subscribed)["type"] == "subscribed"
        assert json.loads(await _read(plain))["type"] == "subscribed"
        text = await _read(plain)
        assert isinstance(text, str)
        assert zlib.decompress(binary).decode() == text
        assert len(binary) < len(text.encode()) / 3
        await deflated.send(json.dumps({"type": "ping"}))
        assert await _read(deflated) == '{"type":"pong"}'


@pytest.mark.asyncio
@pytest.mark.parametrize("asked", ["gzip", "DEFLATE", "deflate,gzip"])
async def test_a_connect_asking_for_another_encoding_is_refused_with_4400(
    daphne_server: DaphneServer, asked: str
) -> None:
    token = access_token_issue(user=await asyncio.to_thread(UserFactory))
    async with websockets.connect(f"{daphne_server.ws_url}?token={token}&snapshots={asked}") as s:
        error = json.loads(await _read(s))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await _read(s)
    assert error["type"] == "error"
    assert error["code"] == "unsupported_snapshots"
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4400
