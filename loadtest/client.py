"""A lean websocket client for ``weer-loadtest``: many sockets per process at little CPU each.

The load generator shares the server's machine, so every microsecond it spends per message is
taken from the server it measures. General-purpose clients cost 27–33 µs of CPU per received
message here (websockets 17 and aiohttp 3.14, measured with 10,000 clients): a task wake-up, a
future and a parser generator per message. This one is an ``asyncio.Protocol`` that splits
frames straight out of ``data_received`` and hands each complete message to a callback, with
no task or future per message. The handshake and outgoing frames (masked, as RFC 6455 wants of
clients) use the ``websockets`` library's helpers; only the server → client frame split is here.
"""

import asyncio
import json
import random
from collections import deque
from collections.abc import Callable, Sequence
from typing import cast
from urllib.parse import urlsplit

from websockets.frames import Frame, Opcode
from websockets.utils import accept_key, generate_key

MessageHandler = Callable[[bytes], None]

_OPEN_TIMEOUT = 30.0
_CLOSE_TIMEOUT = 10.0
_NO_STATUS = 1005
_ABNORMAL = 1006
# The server process is draining (a deploy, a restart): it closes its sockets one by one over
# its drain window, and clients come back after a random delay and resume (docs/protocol.md §6).
SERVICE_RESTART = 1012
# docs/protocol.md §6, "Reconnecting": the bound of the random delay before a reconnect starts
# here and doubles with each failed attempt, up to the maximum.
RECONNECT_FIRST_BOUND = 0.5
RECONNECT_MAX_BOUND = 30.0


_JITTER = random.Random()  # noqa: S311 - jitter, not a secret


def reconnect_delay(attempt: int, rng: random.Random = _JITTER) -> float:
    """Seconds to wait before reconnect ``attempt`` (0 after a connection that worked, +1 for
    each one that failed since): full jitter, uniform in [0, min(30, 0.5 × 2^attempt))."""
    return rng.random() * min(RECONNECT_MAX_BOUND, RECONNECT_FIRST_BOUND * 2.0 ** min(attempt, 16))


class HandshakeError(Exception):
    pass


class StreamClient(asyncio.Protocol):
    """One websocket. ``recv()`` returns messages one by one until ``stream_to(handler)``;
    from then on every message goes to ``handler`` as it is parsed."""

    def __init__(self, host: str, target: str) -> None:
        loop = asyncio.get_running_loop()
        self._request_head = (
            f"GET {target} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        )
        self._key = generate_key()
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._opened: asyncio.Future[None] = loop.create_future()
        self._fragments: list[bytes] = []
        self._inbox: deque[bytes] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._handler: MessageHandler | None = None
        self._close_sent = False
        self.closed: asyncio.Future[int] = loop.create_future()  # the close code

    @classmethod
    async def open(cls, url: str) -> "StreamClient":
        """Connect and complete the opening handshake (within 30 s)."""
        timeout = _OPEN_TIMEOUT
        parts = urlsplit(url)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        client = cls(parts.netloc, target)
        loop = asyncio.get_running_loop()
        await asyncio.wait_for(
            loop.create_connection(lambda: client, parts.hostname or "", parts.port or 80),
            timeout,
        )
        try:
            await asyncio.wait_for(asyncio.shield(client._opened), timeout)
        except BaseException:
            client.abort()
            raise
        return client

    @property
    def is_open(self) -> bool:
        return not self.closed.done()

    def send_text(self, text: str) -> None:
        self._write(Opcode.TEXT, text.encode())

    async def recv(self) -> bytes:
        while not self._inbox:
            if self.closed.done():
                raise ConnectionError(f"closed with {self.closed.result()}")
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        return self._inbox.popleft()

    def stream_to(self, handler: MessageHandler) -> None:
        self._handler = handler
        while self._inbox:
            handler(self._inbox.popleft())

    def abort(self) -> None:
        """Drop the connection like a dead tunnel: no close handshake."""
        if self._transport is not None:
            self._transport.abort()

    async def close(self) -> None:
        if self.is_open and self._transport is not None:
            self._close_sent = True
            self._write(Opcode.CLOSE, (1000).to_bytes(2, "big"))
            try:
                await asyncio.wait_for(asyncio.shield(self.closed), _CLOSE_TIMEOUT)
            except TimeoutError:
                self.abort()

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        request = f"{self._request_head}Sec-WebSocket-Key: {self._key}\r\n\r\n"
        self._transport.write(request.encode())

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if not self._opened.done() and not self._read_handshake():
            return
        self._read_frames()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._opened.done():
            self._opened.set_exception(HandshakeError("connection lost during the handshake"))
        self._set_closed(_ABNORMAL)
        self._wake()

    # -- parsing ---------------------------------------------------------------------------

    def _read_handshake(self) -> bool:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        head = bytes(self._buffer[:end]).decode("latin-1").split("\r\n")
        del self._buffer[: end + 4]
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in head[1:])
        }
        if head[0].split(" ", 2)[1:2] != ["101"]:
            self._opened.set_exception(HandshakeError(head[0]))
        elif headers.get("sec-websocket-accept") != accept_key(self._key):
            self._opened.set_exception(HandshakeError("wrong Sec-WebSocket-Accept"))
        else:
            self._opened.set_result(None)
            return True
        self.abort()
        return False

    def _read_frames(self) -> None:
        buffer = self._buffer
        size = len(buffer)
        at = 0
        while size - at >= 2:
            first, length = buffer[at], buffer[at + 1] & 0x7F
            start = at + 2
            if length == 126:
                start += 2
                if size < start:
                    break
                length = int.from_bytes(buffer[at + 2 : start], "big")
            elif length == 127:
                start += 8
                if size < start:
                    break
                length = int.from_bytes(buffer[at + 2 : start], "big")
            end = start + length
            if size < end:
                break
            self._on_frame(first, bytes(buffer[start:end]))
            at = end
        del buffer[:at]

    def _on_frame(self, first: int, payload: bytes) -> None:
        opcode, fin = first & 0x0F, first & 0x80
        if opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
            if not fin:
                self._fragments.append(payload)
                return
            if self._fragments:
                payload = b"".join([*self._fragments, payload])
                self._fragments.clear()
            if self._handler is not None:
                self._handler(payload)
            else:
                self._inbox.append(payload)
                self._wake()
        elif opcode == Opcode.PING:
            self._write(Opcode.PONG, payload)
        elif opcode == Opcode.CLOSE:
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else _NO_STATUS
            if not self._close_sent:
                self._close_sent = True
                self._write(Opcode.CLOSE, payload[:2])
            self._set_closed(code)
            if self._transport is not None:
                self._transport.close()
            self._wake()

    def _write(self, opcode: Opcode, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(Frame(opcode, data).serialize(mask=True, extensions=[]))

    def _set_closed(self, code: int) -> None:
        if not self.closed.done():
            self.closed.set_result(code)

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


async def hold_crowd(
    url: str,
    tokens: Sequence[str],
    stream: str,
    *,
    since: int | None = None,
    concurrency: int = 200,
) -> tuple[list[StreamClient], int]:
    """Connect one client per token to ``url`` (``?token=`` is added) and subscribe each to
    ``stream``, at most ``concurrency`` handshakes at once: a crowd standing in for tablets.
    Everything after the ``subscribed`` answer is read and dropped. Returns the connected
    clients and how many failed."""
    semaphore = asyncio.Semaphore(concurrency)
    message: dict[str, object] = {"type": "subscribe", "streams": [stream]}
    if since is not None:
        message["since"] = {stream: since}
    subscribe = json.dumps(message)

    async def one(token: str) -> StreamClient | None:
        async with semaphore:
            try:
                client = await StreamClient.open(f"{url}?token={token}")
            except (OSError, TimeoutError, HandshakeError):
                return None
            client.send_text(subscribe)
            try:
                answer = json.loads(await client.recv())
            except ConnectionError:
                return None
            if answer.get("type") != "subscribed":
                client.abort()
                return None
            client.stream_to(_drop)
            return client

    clients = await asyncio.gather(*(one(token) for token in tokens))
    held = [client for client in clients if client is not None]
    return held, len(clients) - len(held)


def _drop(_message: bytes) -> None:
    pass
