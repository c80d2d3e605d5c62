"""daphne as WeER runs it: stock daphne, with a lighter inbox per connection.

daphne gives every connection an ``asyncio.Queue`` for what the client sends; an empty one is
four deques and an ``Event`` (about 2.9 KB), held for the socket's whole life. A websocket
receives a message now and then, so ``Inbox`` (a list made on first use and one waiter) does
the same job for a tenth of that. Used through daphne's own extension point,
``CommandLineInterface.server_class``; ``weer-serve`` runs this instead of plain ``daphne``.
It also tunes the garbage collector for many connections (``realtime.gctuning``).
"""

import asyncio
from functools import partial
from typing import Any

from daphne.cli import CommandLineInterface
from daphne.server import Server

from realtime.gctuning import tune_for_many_connections


class Inbox:
    """The part of ``asyncio.Queue`` daphne uses: ``put_nowait`` and ``get``, unbounded, for
    the one application instance that reads it."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[Any] | None = None
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        if self._items is None:
            self._items = []
        self._items.append(item)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def get(self) -> Any:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.pop(0)


class WeerServer(Server):  # type: ignore[misc]
    def run(self) -> None:
        tune_for_many_connections()  # the application is imported by now
        super().run()

    def create_application(self, protocol: Any, scope: dict[str, Any]) -> Inbox | None:
        """daphne's ``create_application`` (4.2), with an ``Inbox`` for its queue."""
        assert "application_instance" not in self.connections[protocol]  # noqa: S101 - as daphne
        inbox = Inbox()
        scope.setdefault("asgi", {"version": "3.0"})
        application_instance = self.application(
            scope=scope, receive=inbox.get, send=partial(self.handle_reply, protocol)
        )
        if protocol not in self.connections:
            return None
        self.connections[protocol]["application_instance"] = asyncio.ensure_future(
            application_instance, loop=asyncio.get_event_loop()
        )
        return inbox


class WeerCommandLine(CommandLineInterface):  # type: ignore[misc]
    server_class = WeerServer


if __name__ == "__main__":
    WeerCommandLine.entrypoint()
