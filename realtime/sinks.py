"""Where a socket's outgoing frames go, with a bound on what a slow client may hold up.

``Frame`` is an event encoded once: its text, its UTF-8 bytes and (built on first use) its
ready-made websocket frame. Under daphne, ``TwistedSink`` writes that same prepared frame to
every socket's transport (autobahn's ``sendPreparedMessage``, public API meant for broadcast)
instead of one ASGI ``send`` per socket, and learns that a client is not reading from Twisted's
producer API: the transport pauses us when its buffer passes 64 KiB. While paused, a socket
may queue up to ``REALTIME_SEND_BUFFER_BYTES`` more; past that it is closed as too slow.
Under any other ASGI server ``AsgiSink`` does the same through the ASGI ``send``.
"""

import asyncio
import functools
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from autobahn.websocket.protocol import PreparedMessage, WebSocketProtocol
from twisted.internet import tcp


class Frame:
    """One outgoing message, encoded once however many sockets receive it."""

    __slots__ = ("_prepared", "payload")

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self._prepared: PreparedMessage | None = None

    @classmethod
    def of_text(cls, text: str) -> "Frame":
        return cls(text.encode())

    @property
    def text(self) -> str:
        return self.payload.decode()

    @property
    def prepared(self) -> PreparedMessage:
        if self._prepared is None:
            self._prepared = PreparedMessage(
                self.payload, isBinary=False, applyMask=False, doNotCompress=True
            )
        return self._prepared


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

    def __init__(self, protocol: Any, limit: int, on_overflow: OverflowHandler) -> None:
        self._protocol = protocol
        self._limit = limit
        self._on_overflow = on_overflow
        self._paused_bytes = 0
        self._paused = False
        self._open = True
        self._resumed = asyncio.Event()
        self._resumed.set()
        # twisted.web's HTTPChannel stays registered after the websocket upgrade; it has no
        # more HTTP to pace, so this socket's write pressure is reported to us instead.
        protocol.transport.unregisterProducer()
        protocol.registerProducer(self, True)
        # Plain TCP without compression: frames can go to the socket at once (see _write).
        transport = protocol.transport
        direct = isinstance(transport, tcp.Connection) and protocol._perMessageCompress is None
        self._socket = transport.getHandle() if direct else None

    def send(self, frame: Frame) -> bool:
        if not self._open or self._protocol.state != WebSocketProtocol.STATE_OPEN:
            return False
        if self._paused:
            self._paused_bytes += len(frame.payload)
            if self._paused_bytes > self._limit:
                self._overflow()
                return False
        if self._socket is None:
            self._protocol.sendPreparedMessage(frame.prepared)
        else:
            self._write(self._socket, frame.prepared.payloadHybi)
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
        try:
            await asyncio.wait_for(self._resumed.wait(), seconds)
        except TimeoutError:
            return False
        return self._open

    def detach(self) -> None:
        self._open = False
        self._resumed.set()

    def _overflow(self) -> None:
        self._open = False
        self._resumed.set()
        self._on_overflow()

    # IPushProducer, called by the Twisted transport.
    def pauseProducing(self) -> None:
        # Twisted calls this on every write while its buffer is over the mark.
        if not self._paused:
            self._paused = True
            self._paused_bytes = 0
            self._resumed.clear()

    def resumeProducing(self) -> None:
        self._paused = False
        self._resumed.set()

    def stopProducing(self) -> None:
        self.detach()


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
        if self._queued_bytes + len(frame.payload) > self._limit:
            self._open = False
            self._queue.clear()
            self._on_overflow()
            return False
        self._queue.append(frame)
        self._queued_bytes += len(frame.payload)
        self._idle.clear()
        if self._writer is None:
            self._writer = asyncio.ensure_future(self._write_all())
        return True

    async def _write_all(self) -> None:
        try:
            while self._queue and self._open:
                frame = self._queue.popleft()
                self._queued_bytes -= len(frame.payload)
                await self._send_text(frame.text)
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
    ``partial(server.handle_reply, protocol)``, which gives us the autobahn protocol."""
    if isinstance(base_send, functools.partial) and base_send.args:
        protocol = base_send.args[0]
        if hasattr(protocol, "sendPreparedMessage") and hasattr(protocol, "registerProducer"):
            return TwistedSink(protocol, limit, on_overflow)
    return AsgiSink(send_text, limit, on_overflow)
