"""The websocket edge: authenticate, then hand every message to the socket's ``Session``."""

import asyncio
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from domain.errors import AuthenticationFailed, ErrorCode, ValidationFailed
from domain.log_context import USER_ID
from realtime import close_codes
from realtime.auth import query_value, socket_authenticate
from realtime.hub import get_hub
from realtime.rate_limits import connect_refusal
from realtime.serving.adapters import adapter_used
from realtime.serving.inbox import inbox_kind
from realtime.serving.twisted_sink import sink_for
from realtime.sessions import Session

if TYPE_CHECKING:
    from channels.consumer import _ChannelScope


class StreamConsumer(AsyncWebsocketConsumer):
    session: Session | None = None
    _expiry: asyncio.TimerHandle | None = None
    _ending: "asyncio.Future[None] | None" = None

    async def __call__(self, scope: "_ChannelScope", receive: Any, send: Any) -> None:
        """Channels' own loop also listens to a channel layer, through a task and an
        ``asyncio.wait`` per message. WeER has no channel layer (events come through the hub),
        so one plain await per message does: it keeps about 2 KB less per idle socket."""
        self.scope = scope
        self.channel_layer = None  # type: ignore[assignment]  # none: events come via the hub
        self.base_send = send
        adapter_used(get_hub().metrics, "inbox", inbox_kind(receive))
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass
        finally:
            # However the loop ends (the client left; a bug raised, which daphne then logs and
            # closes the socket with 1011; daphne cancelled us), nothing of the socket stays.
            self._release()

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels' ``dispatch`` without its ``aclose_old_connections`` before each message: a
        hop to asgiref's one thread-sensitive thread and back per message, which every socket
        queued for, and which made a crowd connecting several times slower (docs/performance.md).
        This consumer never uses a database connection itself; its reads go through
        ``database_sync_to_async``, which closes old connections around each call."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def connect(self) -> None:
        hub = get_hub()
        query = self.scope.get("query_string", b"")
        auth = await socket_authenticate(query, hub.accounts)
        deflate = snapshots_deflated(query)
        error = (
            await connect_refusal(self.scope, auth.user)
            or auth.error
            or (deflate if isinstance(deflate, ValidationFailed) else None)
        )
        await self.accept()
        if error is not None or auth.user is None or auth.expires_at is None:
            error = error or AuthenticationFailed(
                "The token is invalid.", code=ErrorCode.INVALID_TOKEN
            )
            await self.send(
                text_data=json.dumps(
                    {"type": "error", "code": error.code, "message": error.message}
                )
            )
            await self.close(code=close_codes.close_code_for(error))
            return
        user = auth.user
        USER_ID.set(user.id)  # on this socket's log lines (its task's context)
        self.session = Session(
            user=user,
            hub=hub,
            close=self._close_with,
            sink=sink_for(
                self.base_send,
                self._send_text,
                self._send_bytes,
                settings.REALTIME_SEND_BUFFER_BYTES,
                lambda: self.session.on_overflow() if self.session else None,
                hub.metrics,
                deflate=deflate is True,
            ),
        )
        hub.accounts.add(self.session, authenticated_at=auth.authenticated_at)
        hub.metrics.connection_opened(user.role)
        seconds_left = (auth.expires_at - datetime.now(UTC)).total_seconds()
        self._expiry = asyncio.get_running_loop().call_later(
            max(seconds_left, 0), self._token_expired
        )

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.session is not None:
            await self.session.receive(text_data, bytes_data)

    async def disconnect(self, code: int) -> None:
        self._release()

    def _release(self) -> None:
        """Leave every stream, count the connection closed and stop its timer (once)."""
        if self._expiry is not None:
            self._expiry.cancel()
        if self.session is not None:
            self.session.leave_all()
            get_hub().metrics.connection_closed(self.session.user.role)
            self.session = None

    def _token_expired(self) -> None:
        if self.session is not None:
            self._ending = asyncio.ensure_future(self.session.token_expired())

    async def _send_text(self, text: str) -> None:
        await self.send(text_data=text)

    async def _send_bytes(self, data: bytes) -> None:
        await self.send(bytes_data=data)

    async def _close_with(self, code: int) -> None:
        await self.close(code=code)


SNAPSHOT_ENCODINGS = ("deflate",)


def snapshots_deflated(query_string: bytes) -> bool | ValidationFailed:
    """Whether the connect asked for compressed snapshots (``?snapshots=deflate``,
    docs/protocol.md §1), or why its ``snapshots`` cannot be done."""
    asked = query_value(query_string, "snapshots")
    if asked is None:
        return False
    if asked in SNAPSHOT_ENCODINGS:
        return True
    return ValidationFailed(
        f"snapshots={asked[:32]!r} is not offered: ask for snapshots=deflate, or nothing.",
        code=ErrorCode.UNSUPPORTED_SNAPSHOTS,
    )
