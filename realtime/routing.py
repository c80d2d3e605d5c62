"""The one websocket endpoint, ``/ws/``.

Every ``async`` layer between daphne and the consumer keeps a coroutine frame (and often a
scope copy) alive for the socket's whole life, about 0.3–0.7 KB each. So the layers here are
plain calls that return the next layer's coroutine: Channels' ``URLRouter`` and ``as_asgi()``
are not used (one path, one consumer), the origin check returns the consumer's coroutine, and
authentication happens in the consumer. Measured with ``benchmarks/connection_memory.py``.
Any other path is refused before the websocket opens (HTTP 403), as an unknown route should be.
"""

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, cast

from channels.security.websocket import WebsocketDenier

from realtime.consumers import StreamConsumer
from realtime.origin import BrowserOriginValidator

if TYPE_CHECKING:
    from channels.consumer import _ChannelScope

WEBSOCKET_PATH = "/ws/"


def _endpoint(scope: dict[str, Any], receive: Any, send: Any) -> Awaitable[None]:
    if scope["path"] != WEBSOCKET_PATH:
        return WebsocketDenier()(cast("_ChannelScope", scope), receive, send)
    return StreamConsumer()(cast("_ChannelScope", scope), receive, send)


websocket_application = BrowserOriginValidator(_endpoint)
