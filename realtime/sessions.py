"""One authenticated websocket's conversation: the protocol of docs/protocol.md.

Everything the socket receives goes through its sink, in the order written here, so replies,
replays, snapshots and live events never overtake each other.
"""

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings
from redis.exceptions import RedisError

from domain.errors import DATABASE_UNAVAILABLE
from domain.events import Stream, stream_allowed, stream_parse
from domain.presence import er_screen_hpid
from realtime import close_codes
from realtime.auth import SocketUser
from realtime.hub import Hub, Member
from realtime.publishing import encode_json, history_after, stream_head
from realtime.rate_limits import subscribe_refusal
from realtime.sinks import Frame, Sink
from realtime.snapshots import snapshot_frame

logger = logging.getLogger(__name__)

Closer = Callable[[int], Awaitable[None]]

ERROR_BURST = 10  # invalid messages tolerated at once...
ERROR_REFILL_PER_S = 1.0  # ...and regained per second; beyond that the socket is closed
DRAIN_TIMEOUT = 30.0  # a replay waits this long for a paused client before giving up
# What makes a stream unavailable for a moment: Redis (history, seq) or the database (snapshot).
_UNAVAILABLE: tuple[type[Exception], ...] = (TimeoutError, RedisError, *DATABASE_UNAVAILABLE)


class Session:
    __slots__ = (
        "_close",
        "_closer",
        "_closing",
        "_error_allowance",
        "_error_checked",
        "_hub",
        "_members",
        "_sink",
        "user",
    )  # one per socket: slots keep ~300 bytes each off every idle connection

    def __init__(self, *, user: SocketUser, hub: Hub, sink: Sink, close: Closer) -> None:
        self.user = user
        self._hub = hub
        self._sink = sink
        self._close = close
        self._members: dict[str, Member] = {}
        self._error_allowance = float(ERROR_BURST)
        self._error_checked = time.monotonic()
        self._closing = False
        self._closer: asyncio.Future[None] | None = None

    # -- incoming --------------------------------------------------------------------------

    async def receive(self, text: str | None, data: bytes | None) -> None:
        if text is None:
            await self._refuse("bad_message", "Send JSON text frames, not binary.")
            return
        if len(text) > settings.REALTIME_MAX_MESSAGE_BYTES or (
            len(text.encode()) > settings.REALTIME_MAX_MESSAGE_BYTES
        ):
            await self._refuse(
                "message_too_large",
                f"Messages are at most {settings.REALTIME_MAX_MESSAGE_BYTES} bytes.",
            )
            return
        try:
            message = json.loads(text)
        except Exception:  # whatever the parser raises, the message is unusable
            # Not only ValueError: JSON nested deeper than the parser recurses (2 KB of "[")
            # raises RecursionError.
            await self._refuse("bad_json", "The message is not valid JSON.")
            return
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            await self._refuse("bad_message", 'A message is a JSON object with a "type".')
            return
        kind = message["type"]
        if kind == "ping":
            self._send({"type": "pong"})
        elif kind == "subscribe":
            await self._subscribe(message)
        elif kind == "unsubscribe":
            await self._unsubscribe(message)
        else:
            await self._refuse("unknown_type", f"Unknown message type {kind[:40]!r}.")

    async def _subscribe(self, message: dict[str, Any]) -> None:
        streams = message.get("streams")
        since = message.get("since", {})
        if not _is_list_of_str(streams) or not streams:
            await self._refuse("bad_message", '"streams" must be a non-empty list of names.')
            return
        if not isinstance(since, dict) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in since.values()
        ):
            await self._refuse("bad_message", '"since" maps stream names to seq numbers ≥ 0.')
            return
        for name in dict.fromkeys(streams):
            stream = stream_parse(name)
            if stream is None:
                await self._refuse("unknown_stream", f"No stream {name[:64]!r}.", stream=name)
            elif not stream_allowed(self.user, stream):
                await self._refuse("forbidden", "You may not receive this stream.", stream=name)
            elif name in self._members:
                await self._refuse("already_subscribed", "Already subscribed.", stream=name)
            elif len(self._members) >= settings.REALTIME_MAX_STREAMS_PER_SOCKET:
                await self._refuse(
                    "too_many_streams", "Too many streams on one socket.", stream=name
                )
            elif (limited := await subscribe_refusal(self.user)) is not None:
                await self._refuse("rate_limited", limited.message, stream=name)
            else:
                await self._join(stream, since.get(name))
            if self._closing:
                return

    async def _join(self, stream: Stream, since: int | None) -> None:
        """Subscribe to ``stream`` (docs/protocol.md §4). If Redis, or the database a snapshot
        is read from, fails on the way, the stream is answered ``unavailable`` (possibly after
        its ``subscribed``), left in the hub, and the socket goes on."""
        try:
            member = await self._hub.join(
                stream.name, self._sink, er_screen=er_screen_hpid(self.user, stream)
            )
        except (TimeoutError, RedisError) as exc:  # an outage: one line per refusal
            logger.warning("cannot join %s: %r", stream.name, exc, extra={"stream": stream.name})
            self._send_unavailable(stream)
            return
        if self._closing:  # ended meanwhile (token expiry, revocation): leave_all has run
            self._hub.leave(stream.name, member)
            return
        self._members[stream.name] = member
        try:
            await self._catch_up(stream, member, since)
        except _UNAVAILABLE as exc:
            logger.warning(
                "cannot send %s its state: %r", stream.name, exc, extra={"stream": stream.name}
            )
            if self._members.get(stream.name) is member:
                del self._members[stream.name]
                self._hub.leave(stream.name, member)
            self._send_unavailable(stream)

    async def _catch_up(self, stream: Stream, member: Member, since: int | None) -> None:
        head = await stream_head(self._hub.turns, stream.name)
        self._send({"type": "subscribed", "stream": stream.name, "seq": head})
        delivered = await self._replay(stream, since, head) if since is not None else None
        if delivered is None:
            reason = "initial" if since is None else "history_expired"
            if since is not None and since > head:
                reason = "unknown_seq"
            self._sink.send(await snapshot_frame(stream, head, reason, self._hub.redis))
            self._hub.metrics.snapshots += 1
            delivered = head
        else:
            self._hub.metrics.resumes += 1
        if stream.name in self._members:  # not unsubscribed or closed meanwhile
            await self._hub.go_live(stream.name, member, delivered)

    def _send_unavailable(self, stream: Stream) -> None:
        self._send(
            {
                "type": "error",
                "code": "unavailable",
                "stream": stream.name,
                "message": "The stream is unavailable; try again.",
            }
        )

    async def _replay(self, stream: Stream, since: int, head: int) -> int | None:
        """Send every event after ``since`` up to ``head`` from history; the seq delivered, or
        None when history does not reach back that far (or ``since`` is in the future)."""
        if since > head:
            return None
        delivered = since
        while delivered < head:
            frames = await history_after(self._hub.streams, stream.name, delivered, head)
            if frames is None:
                return None if delivered == since else delivered
            self._sink.send(Frame(*(payload for _, payload in frames)))
            delivered = frames[-1][0]
            if not await self._sink.drain(DRAIN_TIMEOUT):
                await self.slow_consumer()
                return delivered
        return delivered

    async def _unsubscribe(self, message: dict[str, Any]) -> None:
        streams = message.get("streams")
        if not _is_list_of_str(streams) or not streams:
            await self._refuse("bad_message", '"streams" must be a non-empty list of names.')
            return
        for name in dict.fromkeys(streams):
            member = self._members.pop(name, None)
            if member is None:
                await self._refuse("not_subscribed", "Not subscribed.", stream=name)
                continue
            self._hub.leave(name, member)
            self._send({"type": "unsubscribed", "stream": name})

    # -- outgoing --------------------------------------------------------------------------

    def _send(self, message: dict[str, Any]) -> None:
        self._sink.send(Frame.of_text(encode_json(message)))

    async def _refuse(self, code: str, text: str, *, stream: str | None = None) -> None:
        """Answer an invalid message with an error; close the socket if they keep coming."""
        error = {"type": "error", "code": code, "message": text}
        if stream is not None:
            error["stream"] = stream[:64]
        # ASCII-escaped: the name is the client's, and JSON lets it hold lone surrogates
        # ("\ud800"), which UTF-8 cannot carry but an escape can.
        self._sink.send(Frame.of_text(json.dumps(error, separators=(",", ":"))))
        now = time.monotonic()
        self._error_allowance = min(
            ERROR_BURST, self._error_allowance + (now - self._error_checked) * ERROR_REFILL_PER_S
        )
        self._error_checked = now
        self._error_allowance -= 1
        if self._error_allowance < 0:
            self._hub.metrics.abuse_closes += 1
            await self.end(close_codes.TOO_MANY_ERRORS)

    # -- ending ----------------------------------------------------------------------------

    async def token_expired(self) -> None:
        self._send(
            {
                "type": "error",
                "code": "token_expired",
                "message": "The access token expired: refresh it, reconnect and resume.",
            }
        )
        await self.end(close_codes.UNAUTHENTICATED)

    async def slow_consumer(self) -> None:
        if not self._closing:
            self._hub.metrics.slow_consumer_closes += 1
            await self.end(close_codes.SLOW_CONSUMER)

    def on_overflow(self) -> None:
        """The sink gave up on a client that reads too slowly (called inside a fan-out)."""
        self._closer = asyncio.ensure_future(self.slow_consumer())

    async def end(self, code: int) -> None:
        """Leave every stream and close the socket with ``code``."""
        if self._closing:
            return
        self._closing = True
        self.leave_all()
        await self._close(code)

    async def revoke(self, code: str) -> None:
        """The account lost its access (``AccountClose``): say why, and close the socket."""
        self._send(
            {
                "type": "error",
                "code": code,
                "message": "This account's access was withdrawn on this device: log in again.",
            }
        )
        await self.end(close_codes.close_code_for_revocation(code))

    def leave_all(self) -> None:
        self._hub.accounts.discard(self)
        for name, member in self._members.items():
            self._hub.leave(name, member)
        self._members.clear()
        self._sink.detach()


def _is_list_of_str(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)
