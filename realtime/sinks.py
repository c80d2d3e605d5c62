"""Where a socket's outgoing frames go, with a bound on what a slow client may hold up.

``Frame`` is one event (or a burst of them) encoded once: UTF-8 payloads and (built on first
use) the ready-made websocket frames, built with autobahn's ``PreparedMessage`` (its API meant
for broadcast). Under daphne, ``TwistedSink`` writes those same bytes to every socket instead
of one ASGI ``send`` per socket and message, and learns that a client is not reading from Twisted's
producer API: the transport pauses us when its buffer passes 64 KiB. While paused, a socket
may queue up to ``REALTIME_SEND_BUFFER_BYTES`` more; past that it is closed as too slow.
Under any other ASGI server ``AsgiSink`` does the same through the ASGI ``send``.
"""

import asyncio
import functools
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from autobahn.websocket.protocol import PreparedMessage, WebSocketProtocol
from twisted.internet import tcp
from twisted.web.http import HTTPChannel


class Frame:
    """One or more outgoing messages, encoded once however many sockets receive them: their
    UTF-8 payloads and (built on first use) the websocket frames carrying them back to back, so
    a socket takes a burst of events, or a replay, in one write."""

    __slots__ = ("_wire", "payloads", "size")

    def __init__(self, *payloads: bytes) -> None:
        self.payloads = payloads
        self.size = sum(map(len, payloads))
        self._wire: bytes | None = None

    @classmethod
    def of_text(cls, text: str) -> "Frame":
        return cls(text.encode())

    @classmethod
    def joined(cls, frames: Sequence["Frame"]) -> "Frame":
        return frames[0] if len(frames) == 1 else cls(*(p for f in frames for p in f.payloads))

    @property
    def texts(self) -> list[str]:
        return [payload.decode() for payload in self.payloads]

    @property
    def wire(self) -> bytes:
        if self._wire is None:
            self._wire = b"".join(
                PreparedMessage(p, isBinary=False, applyMask=False, doNotCompress=True).payloadHybi
                for p in self.payloads
            )
        return self._wire


class Sink(Protocol):
    def send(self, frame: Frame) -> bool:
        """Queue ``frame``; False (and the socket is being closed) if the client is too slow."""

    async def drain(self, seconds: float) -> bool:
        """Wait until the client has taken what was queued; False if it did not in time."""

    def detach(self) -> None:
        """The socket is gone: stop writing."""


OverflowHandler = Callable[[], None]


class TwistedSink:
    """Writes straight to daphne's autobahn protocol. Implements Twisted's IPushProducer."""

    __slots__ = (
        "_limit",
        "_on_overflow",
        "_open",
        "_paused",
        "_paused_bytes",
        "_protocol",
        "_resumed",
        "_socket",
    )

    def __init__(self, protocol: Any, limit: int, on_overflow: OverflowHandler) -> None:
        self._protocol = protocol
        self._limit = limit
        self._on_overflow = on_overflow
        self._paused_bytes = 0
        self._paused = False
        self._open = True
        self._resumed: asyncio.Event | None = None  # made when first needed: most never are
        # twisted.web's HTTPChannel stays registered after the websocket upgrade; it has no
        # more HTTP to pace, so this socket's write pressure is reported to us instead.
        http_channel = protocol.transport.producer
        protocol.transport.unregisterProducer()
        protocol.registerProducer(self, True)
        _release_handshake(protocol, http_channel)
        # Plain TCP: frames can go to the socket at once (see _write).
        transport = protocol.transport
        self._socket = transport.getHandle() if isinstance(transport, tcp.Connection) else None

    def send(self, frame: Frame) -> bool:
        if not self._open or self._protocol.state != WebSocketProtocol.STATE_OPEN:
            return False
        if self._paused:
            self._paused_bytes += frame.size
            if self._paused_bytes > self._limit:
                self._overflow()
                return False
        if self._socket is None:
            self._protocol.sendData(frame.wire)
        else:
            self._write(self._socket, frame.wire)
        return True

    def _write(self, sock: Any, data: bytes) -> None:
        """Send now when nothing is queued ahead, else queue behind it in Twisted's buffer.

        Twisted's ``transport.write`` always buffers and registers the socket with the event
        loop, sending one pass later: the profile of a 40,000 deliveries/s run spent a third of
        the server's CPU in those per-socket (un)registrations. Sending straight away when the
        transport's and autobahn's buffers are empty skips them; anything the kernel does not
        take goes to Twisted's buffer as before, so ordering and back-pressure are unchanged.
        This reads Twisted's buffer state (``offset``, ``dataBuffer``, ``_tempDataLen``): the
        realtime tests guard it."""
        transport = self._protocol.transport
        if (
            not transport._tempDataLen
            and transport.offset == len(transport.dataBuffer)
            and not self._protocol.send_queue
            and transport.connected
        ):
            try:
                sent = sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                return  # the connection is gone; Twisted notices and closes it
            if sent == len(data):
                return
            data = data[sent:]
        transport.write(data)

    async def drain(self, seconds: float) -> bool:
        if self._paused and self._open:
            if self._resumed is None:
                self._resumed = asyncio.Event()
            try:
                await asyncio.wait_for(self._resumed.wait(), seconds)
            except TimeoutError:
                return False
        return self._open

    def detach(self) -> None:
        self._open = False
        self._wake_drain()

    def _overflow(self) -> None:
        self._open = False
        self._wake_drain()
        self._on_overflow()

    def _wake_drain(self) -> None:
        if self._resumed is not None:
            self._resumed.set()
            self._resumed = None

    # IPushProducer, called by the Twisted transport.
    def pauseProducing(self) -> None:
        # Twisted calls this on every write while its buffer is over the mark.
        if not self._paused:
            self._paused = True
            self._paused_bytes = 0

    def resumeProducing(self) -> None:
        self._paused = False
        self._wake_drain()

    def stopProducing(self) -> None:
        self.detach()


# What autobahn keeps of the opening handshake (the raw request, its headers and parsed query,
# which holds the token) and never reads again once the socket is open.
_HANDSHAKE_LEFTOVERS = {"http_request_data": b"", "http_headers": {}, "http_request_params": {}}


def _release_handshake(protocol: Any, http_channel: Any) -> None:
    """Drop the handshake's leftovers on an open socket: about 2 KB each, kept for hours. And
    break the reference cycles that keep twisted.web's HTTPChannel and the upgrade request
    alive after the upgrade (another ~3 KB a socket, otherwise freed only by a full garbage
    collection, which a process holding thousands of sockets should rarely need)."""
    if isinstance(http_channel, HTTPChannel):
        http_channel.setTimeout(None)  # type: ignore[no-untyped-call]
        http_channel.requests.clear()
    for name, empty in _HANDSHAKE_LEFTOVERS.items():
        if name in protocol.__dict__:
            setattr(protocol, name, type(empty)())
    request = getattr(protocol, "request", None)  # daphne logs its .path when the socket ends
    if request is not None:
        request.headers, request.params = {}, {}
    # daphne's copy of the headers is also the scope's: read at connect (origin, auth) only.
    headers = getattr(protocol, "clean_headers", None)
    if isinstance(headers, list):
        headers.clear()


class AsgiSink:
    """Portable fallback: a bounded queue drained through the consumer's ASGI ``send``."""

    def __init__(
        self, send_text: Callable[[str], Awaitable[None]], limit: int, on_overflow: OverflowHandler
    ) -> None:
        self._send_text = send_text
        self._limit = limit
        self._on_overflow = on_overflow
        self._queue: deque[Frame] = deque()
        self._queued_bytes = 0
        self._writer: asyncio.Task[None] | None = None
        self._open = True
        self._idle = asyncio.Event()
        self._idle.set()

    def send(self, frame: Frame) -> bool:
        if not self._open:
            return False
        if self._queued_bytes + frame.size > self._limit:
            self._open = False
            self._queue.clear()
            self._on_overflow()
            return False
        self._queue.append(frame)
        self._queued_bytes += frame.size
        self._idle.clear()
        if self._writer is None:
            self._writer = asyncio.ensure_future(self._write_all())
        return True

    async def _write_all(self) -> None:
        try:
            while self._queue and self._open:
                frame = self._queue.popleft()
                self._queued_bytes -= frame.size
                for text in frame.texts:
                    await self._send_text(text)
        finally:
            self._writer = None
            self._idle.set()

    async def drain(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self._idle.wait(), seconds)
        except TimeoutError:
            return False
        return self._open

    def detach(self) -> None:
        self._open = False
        self._queue.clear()
        if self._writer is not None:
            self._writer.cancel()


def sink_for(
    base_send: Any,
    send_text: Callable[[str], Awaitable[None]],
    limit: int,
    on_overflow: OverflowHandler,
) -> Sink:
    """The fastest sink this server allows: daphne hands each application ``send`` as
    ``partial(server.handle_reply, protocol)``, which gives us the autobahn protocol (daphne
    never negotiates compression, so ready-made uncompressed frames may go to it)."""
    if isinstance(base_send, functools.partial) and base_send.args:
        protocol = base_send.args[0]
        if (
            hasattr(protocol, "sendData")
            and hasattr(protocol, "registerProducer")
            and getattr(protocol, "_perMessageCompress", None) is None
        ):
            return TwistedSink(protocol, limit, on_overflow)
    return AsgiSink(send_text, limit, on_overflow)
