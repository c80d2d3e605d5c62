"""The one websocket endpoint, ``/ws/``.

There is a single websocket path, so Channels' ``URLRouter`` is not used: its scope copy and
coroutine frames stay alive for every socket's whole life (about 1.3 KiB per idle socket,
measured with ``benchmarks/connection_memory.py``). Any other path is refused before the
websocket opens (HTTP 403), as an unknown route should be.
"""

from typing import Any

from channels.security.websocket import WebsocketDenier

from realtime.consumers import StreamConsumer

WEBSOCKET_PATH = "/ws/"

_stream_consumer = StreamConsumer.as_asgi()


async def websocket_endpoint(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["path"] != WEBSOCKET_PATH:
        await WebsocketDenier()(scope, receive, send)
        return
    await _stream_consumer(scope, receive, send)
