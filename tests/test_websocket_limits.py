"""Websocket rate limits through a real ``weer-serve --processes 2`` on loopback: connects per
user and per address are counted in Redis, so both processes share them; a connect over a
limit is accepted, told ``rate_limited`` and closed with 4429; subscribe churn is answered with
a per-stream ``rate_limited`` and the socket goes on."""

import asyncio
import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
import websockets

from domain.models import User
from domain.services.tokens import access_token_issue
from tests.conftest import DaphneServer, run_server
from tests.factories import UserFactory
from tests.polling import wait_for
from tests.test_serve import _children, _serving
from tests.ws import WsClient

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

PER_USER = 12
PER_ADDRESS = 20
SUBSCRIBES = 15  # more than PER_USER: the first test subscribes each socket once


@pytest.fixture(scope="module")
def server(
    django_db_setup: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DaphneServer]:
    """Two processes on one port, with small limits (the counters are emptied before each
    test, conftest.py)."""
    env = {
        "LIMIT_WS_CONNECTS_PER_USER": f"{PER_USER}/minute",
        "LIMIT_WS_CONNECTS_PER_ADDRESS": f"{PER_ADDRESS}/minute",
        "LIMIT_SUBSCRIBES_PER_USER": f"{SUBSCRIBES}/minute",
    }
    log_dir = tmp_path_factory.mktemp("limits-server")
    command = ("-m", "realtime.serving.serve", "--processes", "2")
    with run_server(log_dir, *command, env=env) as server:
        yield server


async def _user() -> User:
    return await asyncio.to_thread(UserFactory)


async def _refused(server: DaphneServer, token: str) -> tuple[int, dict[str, Any]]:
    """The first message and the close code of a socket the server ends at once."""
    async with websockets.connect(f"{server.ws_url}?token={token}") as socket:
        message = json.loads(await asyncio.wait_for(socket.recv(), 5))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), 5)
    assert closed.value.rcvd is not None, "the server sent no close frame"
    return closed.value.rcvd.code, message


async def test_connects_per_user_are_counted_across_both_processes(server: DaphneServer) -> None:
    """A user's sockets, spread over both processes, count toward one limit: the one over it
    is told ``rate_limited`` (with when to retry) and closed with 4429; another user is not
    affected."""
    user = await _user()
    token = access_token_issue(user=user)
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(PER_USER):
            client = await stack.enter_async_context(WsClient.connect(server, token))
            await client.assert_nothing_pending()
            await client.subscribe("beds.46")  # a process reports its sockets once serving
            assert (await client.next())["type"] == "snapshot"
        children = _children(server.process.pid)
        await asyncio.to_thread(
            wait_for, lambda: _serving(server.http_url) == children, "both processes serving"
        )
        code, message = await _refused(server, token)
        assert code == 4429
        assert message["type"] == "error"
        assert message["code"] == "rate_limited"
        assert "try again in" in message["message"]
        async with WsClient.connect(server, access_token_issue(user=await _user())) as other:
            await other.assert_nothing_pending()


async def test_connects_per_address_count_refused_tokens_too(server: DaphneServer) -> None:
    """Every connect from an address counts, a bad token's included (checked before the
    account is read): past the limit even a good token is refused with 4429."""
    for _ in range(PER_ADDRESS):
        code, message = await _refused(server, "garbage")
        assert (code, message["code"]) == (4401, "invalid_token")
    code, message = await _refused(server, access_token_issue(user=await _user()))
    assert (code, message["code"]) == (4429, "rate_limited")


async def test_subscribe_churn_is_refused_per_stream_and_the_socket_goes_on(
    server: DaphneServer,
) -> None:
    """Subscribing over and over (each a snapshot to build) is limited per user: the one over
    the limit gets an ``error`` ``rate_limited`` for that stream, is not subscribed, and the
    socket stays open."""
    token = access_token_issue(user=await _user())
    async with WsClient.connect(server, token) as client:
        for _ in range(SUBSCRIBES):
            await client.subscribe("beds.11")
            assert (await client.next())["type"] == "snapshot"
            await client.send({"type": "unsubscribe", "streams": ["beds.11"]})
            assert await client.next() == {"type": "unsubscribed", "stream": "beds.11"}
        await client.send({"type": "subscribe", "streams": ["beds.11"]})
        refusal = await client.next()
        assert refusal["type"] == "error"
        assert refusal["code"] == "rate_limited"
        assert refusal["stream"] == "beds.11"
        await client.assert_nothing_pending()
        await client.send({"type": "unsubscribe", "streams": ["beds.11"]})
        assert (await client.next())["code"] == "not_subscribed"
