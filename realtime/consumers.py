"""The websocket edge. This is the foundation's minimal consumer: it authenticates, closes
with the documented codes and answers pings; streams arrive with the realtime issue."""

import json

from channels.generic.websocket import AsyncWebsocketConsumer

from realtime.close_codes import close_code_for


class StreamConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]
    async def connect(self) -> None:
        await self.accept()
        error = self.scope.get("auth_error")
        if error is not None:
            await self._error(error.code, error.message)
            await self.close(code=close_code_for(error))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            message = json.loads(text_data) if text_data is not None else None
        except ValueError:
            await self._error("bad_json", "Messages must be JSON text frames.")
            return
        if isinstance(message, dict) and message.get("type") == "ping":
            await self.send(text_data='{"type":"pong"}')
        else:
            await self._error("unknown_type", "Unknown message type.")

    async def _error(self, code: str, message: str) -> None:
        await self.send(text_data=json.dumps({"type": "error", "code": code, "message": message}))
