"""Where a socket's outgoing frames go, with a bound on what a slow client may hold up.

``Frame`` is one event (or a burst of them) encoded once: its UTF-8 payloads, and a slot for
the same messages in a server's wire format, built by the first sink that needs them and then
shared by every socket. ``Sink`` is what the hub and sessions write to. ``AsgiSink`` works
under any ASGI server, through the ASGI ``send``; under daphne the consumer gets the faster
``realtime.serving.twisted_sink.TwistedSink`` instead (see ``realtime.serving.sink_for``).
Either way a socket that stops reading may hold up to ``REALTIME_SEND_BUFFER_BYTES`` before it
is closed as too slow.
"""

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol


class Frame:
    """One or more outgoing messages, encoded once however many sockets receive them: their
    UTF-8 payloads and (``wire``, built on first use by a sink that writes raw bytes) the
    websocket frames carrying them back to back, so a socket takes a burst of events, or a
    replay, in one write. A snapshot also carries ``deflated``: the same message compressed,
    as one binary frame, for sockets that asked for compressed snapshots (docs/protocol.md §1);
    ``binary`` marks such a frame."""

    __slots__ = ("binary", "deflated", "payloads", "size", "wire")

    def __init__(self, *payloads: bytes, binary: bool = False) -> None:
        self.payloads = payloads
        self.size = sum(map(len, payloads))
        self.wire: bytes | None = None
        self.binary = binary
        self.deflated: Frame | None = None

    @classmethod
    def of_text(cls, text: str) -> "Frame":
        return cls(text.encode())

    @classmethod
    def joined(cls, frames: Sequence["Frame"]) -> "Frame":
        return frames[0] if len(frames) == 1 else cls(*(p for f in frames for p in f.payloads))

    @property
    def texts(self) -> list[str]:
        return [payload.decode() for payload in self.payloads]


class Sink(Protocol):
    def send(self, frame: Frame) -> bool:
        """Queue ``frame``; False (and the socket is being closed) if the client is too slow."""

    async def drain(self, seconds: float) -> bool:
        """Wait until the client has taken what was queued; False if it did not in time."""

    def detach(self) -> None:
        """The socket is gone: stop writing."""


OverflowHandler = Callable[[], None]


class AsgiSink:
    """Portable fallback: a bounded queue drained through the consumer's ASGI ``send``."""

    def __init__(
        self,
        send_text: Callable[[str], Awaitable[None]],
        send_bytes: Callable[[bytes], Awaitable[None]],
        limit: int,
        on_overflow: OverflowHandler,
        *,
        deflate: bool = False,
    ) -> None:
        self._send_text = send_text
        self._send_bytes = send_bytes
        self._deflate = deflate
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
        if self._deflate and frame.deflated is not None:
            frame = frame.deflated
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
                if frame.binary:
                    for payload in frame.payloads:
                        await self._send_bytes(payload)
                else:
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
