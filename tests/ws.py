"""A small websocket test client speaking docs/protocol.md over a real connection."""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import websockets

from tests.conftest import DaphneServer


class WsClient:
    def __init__(self, socket: websockets.ClientConnection) -> None:
        self.socket = socket

    @classmethod
    @asynccontextmanager
    async def connect(
        cls, server: DaphneServer, token: str, **options: Any
    ) -> AsyncIterator["WsClient"]:
        async with websockets.connect(f"{server.ws_url}?token={token}", **options) as socket:
            yield cls(socket)

    async def send(self, message: dict[str, Any]) -> None:
        await self.socket.send(json.dumps(message))

    async def next(self, timeout: float = 5) -> dict[str, Any]:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(self.socket.recv(), timeout))
        return message

    async def subscribe(self, *streams: str, since: dict[str, int] | None = None) -> dict[str, Any]:
        """Subscribe to one stream and return its ``subscribed`` message."""
        message: dict[str, Any] = {"type": "subscribe", "streams": list(streams)}
        if since is not None:
            message["since"] = since
        await self.send(message)
        reply = await self.next()
        assert reply["type"] == "subscribed", reply
        return reply

    async def events(self, count: int, timeout: float = 10) -> list[dict[str, Any]]:
        return [await self.next(timeout) for _ in range(count)]

    async def assert_nothing_pending(self) -> None:
        """Nothing else was queued for us: the next message is the answer to a ping."""
        await self.send({"type": "ping"})
        assert await self.next() == {"type": "pong"}

    async def close_code(self, timeout: float = 10) -> int:
        """Read until the server closes the socket; its close code (1006: no close frame)."""
        try:
            while True:
                await asyncio.wait_for(self.socket.recv(), timeout)
        except websockets.ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else 1006
