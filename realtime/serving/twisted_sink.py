"""The fast sink under daphne: frames go straight to the socket through Twisted and autobahn.

daphne hands each application ``send`` as ``partial(server.handle_reply, protocol)``, which
gives us the autobahn protocol; daphne never negotiates compression, so ready-made
uncompressed frames (autobahn's ``PreparedMessage``, its API meant for broadcast) may go to it.
``TwistedSink`` writes those same bytes to every socket instead of one ASGI ``send`` per socket
and message, and learns that a client is not reading from Twisted's producer API: the transport
pauses us when its buffer passes 64 KiB. While paused, a socket may queue up to
``REALTIME_SEND_BUFFER_BYTES`` more; past that it is closed as too slow.

This reads private state of Twisted (``_tempDataLen``, ``offset``, ``dataBuffer``), autobahn
(``send_queue``, ``_perMessageCompress``) and twisted.web (``HTTPChannel.requests``), at the
versions pinned in ``constraints.txt``. When they are not there, ``sink_for`` falls back to the
portable ``AsgiSink`` and the handshake is left as it is; either fallback is logged once and
counted on ``/metrics`` (``realtime.serving.adapters``), and the realtime tests fail on it.
"""

import asyncio
import collections
import functools
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from autobahn.websocket.protocol import PreparedMessage, TrafficStats, WebSocketProtocol
from twisted.internet import tcp
from twisted.web.http import HTTPChannel

from realtime.metrics import ProcessMetrics
from realtime.serving.adapters import adapter_used
from realtime.sinks import AsgiSink, Frame, OverflowHandler, Sink


def wire(frame: Frame) -> bytes:
    """The frame's messages as unmasked websocket frames (no permessage-deflate: a ``binary``
    frame is compressed already), built once per frame."""
    if frame.wire is None:
        frame.wire = b"".join(
            PreparedMessage(
                p, isBinary=frame.binary, applyMask=False, doNotCompress=True
            ).payloadHybi
            for p in frame.payloads
        )
    return frame.wire


class TwistedSink:
    """Writes straight to daphne's autobahn protocol. Implements Twisted's IPushProducer."""

    __slots__ = (
        "_deflate",
        "_limit",
        "_on_overflow",
        "_open",
        "_paused",
        "_paused_bytes",
        "_protocol",
        "_resumed",
        "_socket",
    )

    def __init__(
        self, protocol: Any, limit: int, on_overflow: OverflowHandler, *, deflate: bool = False
    ) -> None:
        self._protocol = protocol
        self._deflate = deflate
        self._limit = limit
        self._on_overflow = on_overflow
        self._paused_bytes = 0
        self._paused = False
        self._open = True
        self._resumed: asyncio.Event | None = None  # made when first needed: most never are
        # twisted.web's HTTPChannel stays registered after the websocket upgrade; it has no
        # more HTTP to pace, so this socket's write pressure is reported to us instead.
        protocol.transport.unregisterProducer()
        protocol.registerProducer(self, True)
        # Plain TCP whose buffer state we can read: frames can go to the socket at once (see
        # _write); otherwise through autobahn's sendData (correct, slower).
        self._socket = direct_socket(protocol.transport)

    @property
    def writes_directly(self) -> bool:
        return self._socket is not None

    def send(self, frame: Frame) -> bool:
        if not self._open or self._protocol.state != WebSocketProtocol.STATE_OPEN:
            return False
        if self._deflate and frame.deflated is not None:
            frame = frame.deflated
        if self._paused:
            self._paused_bytes += frame.size
            if self._paused_bytes > self._limit:
                self._overflow()
                return False
        if self._socket is None:
            self._protocol.sendData(wire(frame))
        else:
            self._write(self._socket, wire(frame))
        return True

    def _write(self, sock: Any, data: bytes) -> None:
        """Send now when nothing is queued ahead, else queue behind it in Twisted's buffer.

        Twisted's ``transport.write`` always buffers and registers the socket with the event
        loop, sending one pass later: the profile of a 40,000 deliveries/s run spent a third of
        the server's CPU in those per-socket (un)registrations. Sending straight away when the
        transport's and autobahn's buffers are empty skips them; anything the kernel does not
        take goes to Twisted's buffer as before, so ordering and back-pressure are unchanged."""
        transport = self._protocol.transport
        if (
            not transport._tempDataLen  # noqa: SLF001 - Twisted's buffer state, pinned (module doc)
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


_TRANSPORT_BUFFER_STATE = ("_tempDataLen", "offset", "dataBuffer")


def direct_socket(transport: Any) -> Any | None:
    """The transport's socket, if frames may be written to it directly (see ``_write``)."""
    if isinstance(transport, tcp.Connection) and all(
        hasattr(transport, name) for name in _TRANSPORT_BUFFER_STATE
    ):
        return transport.getHandle()
    return None


# What autobahn keeps of the opening handshake (the raw request, its request line, URI, headers
# and parsed query, which all hold the token) and never reads again once the socket is open.
_HANDSHAKE_LEFTOVERS = {
    "http_request_data": b"",
    "http_headers": {},
    "http_request_params": {},
    "http_status_line": "",
    "http_request_uri": "",
}
# autobahn's byte and frame counters, which nothing here reads: one object for every socket.
_TRAFFIC_STATS = TrafficStats()  # type: ignore[no-untyped-call]


class _SendQueueOnDemand:
    """Stands in for autobahn's ``send_queue``, a deque (760 bytes a socket with its first
    block) used only for sync or chopped sends, which daphne never makes: empty until one is
    made, which then gets a real deque. (A weak reference: a cycle would keep a closed socket
    alive until a full garbage collection.)"""

    __slots__ = ("_protocol",)

    def __init__(self, protocol: Any) -> None:
        self._protocol = weakref.ref(protocol)

    def __len__(self) -> int:
        return 0

    def append(self, item: Any) -> None:
        protocol = self._protocol()
        if protocol is not None:
            protocol.send_queue = collections.deque([item])


def release_handshake(protocol: Any, http_channel: Any) -> bool:
    """Drop the handshake's leftovers on an open socket: about 2.7 KB each, kept for hours
    (and an empty send queue and traffic counters no one reads: another 1.1 KB). And
    break the reference cycles that keep twisted.web's HTTPChannel and the upgrade request
    alive after the upgrade (another ~3 KB a socket, otherwise freed only by a full garbage
    collection, which a process holding thousands of sockets should rarely need). Whether
    everything expected was there to release."""
    complete = isinstance(http_channel, HTTPChannel) and isinstance(
        getattr(http_channel, "requests", None), list
    )
    if complete:
        http_channel.setTimeout(None)
        http_channel.requests.clear()
    for name, empty in _HANDSHAKE_LEFTOVERS.items():
        if name in protocol.__dict__:
            setattr(protocol, name, type(empty)())
        else:
            complete = False
    if isinstance(protocol.__dict__.get("send_queue"), collections.deque) and not len(
        protocol.send_queue
    ):
        protocol.send_queue = _SendQueueOnDemand(protocol)
    else:
        complete = False
    if isinstance(protocol.__dict__.get("trafficStats"), TrafficStats):
        protocol.trafficStats = _TRAFFIC_STATS
    else:
        complete = False
    request = getattr(protocol, "request", None)  # daphne logs its .path when the socket ends
    if request is not None:
        request.headers, request.params = {}, {}
    # daphne's copy of the headers is also the scope's: read at connect (origin, auth) only.
    headers = getattr(protocol, "clean_headers", None)
    if isinstance(headers, list):
        headers.clear()
    else:
        complete = False
    return complete


def _autobahn_protocol(base_send: Any) -> Any | None:
    """daphne's protocol behind the application's ``send``, if it is one we can write to."""
    if not (isinstance(base_send, functools.partial) and base_send.args):
        return None
    protocol = base_send.args[0]
    if (
        hasattr(protocol, "sendData")
        and hasattr(protocol, "registerProducer")
        and hasattr(protocol, "send_queue")
        and getattr(protocol, "_perMessageCompress", False) is None  # daphne: never negotiated
    ):
        return protocol
    return None


def sink_for(
    base_send: Any,
    send_text: Callable[[str], Awaitable[None]],
    send_bytes: Callable[[bytes], Awaitable[None]],
    limit: int,
    on_overflow: OverflowHandler,
    metrics: ProcessMetrics,
    *,
    deflate: bool = False,
) -> Sink:
    """The fastest sink this server allows, noted in ``metrics``; with ``deflate``, snapshots
    go out compressed (``Frame.deflated``)."""
    protocol = _autobahn_protocol(base_send)
    if protocol is None:
        adapter_used(metrics, "sink", "asgi")
        return AsgiSink(send_text, send_bytes, limit, on_overflow, deflate=deflate)
    http_channel = protocol.transport.producer
    sink = TwistedSink(protocol, limit, on_overflow, deflate=deflate)
    adapter_used(metrics, "sink", "twisted")
    adapter_used(metrics, "write", "direct" if sink.writes_directly else "send_data")
    released = release_handshake(protocol, http_channel)
    adapter_used(metrics, "handshake", "released" if released else "kept")
    return sink
