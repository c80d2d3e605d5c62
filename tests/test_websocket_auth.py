"""Websocket authentication through a real daphne server on loopback."""

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest
import websockets
from websockets.typing import Origin

from domain.models import Approval, Role
from domain.services.tokens import access_token_issue
from tests.conftest import DaphneServer
from tests.factories import HospitalFactory, UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


async def _closed_with(url: str) -> tuple[int, dict[str, Any]]:
    """The close code the server ends a socket on ``url`` with, and its last message."""
    async with websockets.connect(url) as socket:
        message = json.loads(await asyncio.wait_for(socket.recv(), 5))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), 5)
    assert closed.value.rcvd is not None, "the server sent no close frame"
    return closed.value.rcvd.code, message


async def test_missing_and_bad_tokens_close_with_4401(daphne_server: DaphneServer) -> None:
    """No token, a garbage token and an expired token all close with 4401."""
    user = await asyncio.to_thread(UserFactory)
    expired = access_token_issue(user=user, lifetime=timedelta(seconds=-5))
    for query, reason in [
        ("", "token_missing"),
        ("?token=garbage", "invalid_token"),
        (f"?token={expired}", "token_expired"),
    ]:
        code, message = await _closed_with(f"{daphne_server.ws_url}{query}")
        assert code == 4401
        assert message == {"type": "error", "code": reason, "message": message["message"]}


async def test_inactive_users_close_with_4403(daphne_server: DaphneServer) -> None:
    """Pending and rejected users are authenticated but refused with 4403."""
    for approval in (Approval.PENDING, Approval.REJECTED):
        user = await asyncio.to_thread(UserFactory, approval=approval)
        token = access_token_issue(user=user)
        code, message = await _closed_with(f"{daphne_server.ws_url}?token={token}")
        assert code == 4403
        assert message["code"] == f"account_{approval}"


async def test_active_user_connects_and_pings(daphne_server: DaphneServer) -> None:
    """An active user's socket stays open and answers ping with pong."""
    hospital = await asyncio.to_thread(HospitalFactory)
    user = await asyncio.to_thread(UserFactory, role=Role.HOSPITAL, hospital=hospital)
    token = access_token_issue(user=user)
    async with websockets.connect(f"{daphne_server.ws_url}?token={token}") as socket:
        await socket.send('{"type":"ping"}')
        assert json.loads(await asyncio.wait_for(socket.recv(), 5)) == {"type": "pong"}
        await socket.send("{not json")
        assert json.loads(await asyncio.wait_for(socket.recv(), 5))["code"] == "bad_json"
    assert token not in daphne_server.output(), "the token leaked into the server's logs"


async def test_foreign_browser_origin_is_refused(daphne_server: DaphneServer) -> None:
    """A page on another origin cannot open a socket, even with a valid token."""
    user = await asyncio.to_thread(UserFactory)
    token = access_token_issue(user=user)
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(
            f"{daphne_server.ws_url}?token={token}", origin=Origin("https://evil.example")
        ):
            pass
    assert refused.value.response.status_code == 403
    async with websockets.connect(
        f"{daphne_server.ws_url}?token={token}", origin=Origin("http://localhost")
    ) as socket:
        await socket.send('{"type":"ping"}')
        assert json.loads(await asyncio.wait_for(socket.recv(), 5)) == {"type": "pong"}


async def test_websockets_on_any_other_path_are_refused(daphne_server: DaphneServer) -> None:
    """Only /ws/ opens a websocket; another path is refused in the handshake."""
    user = await asyncio.to_thread(UserFactory)
    token = access_token_issue(user=user)
    for path in ("/ws", "/ws/x/", "/api/ws/"):
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(
                f"ws://127.0.0.1:{daphne_server.port}{path}?token={token}"
            ):
                pass
        assert refused.value.response.status_code == 403, path
