"""daphne as WeER runs it: stock daphne, with a lighter inbox per connection
(``realtime.serving.inbox``). Used through daphne's own extension point,
``CommandLineInterface.server_class``; ``weer-serve`` runs this instead of plain ``daphne``.
It also tunes the garbage collector for many connections (``realtime.serving.gctuning``).

``create_application`` is a copy of daphne's (4.2.3, pinned in ``constraints.txt``) with one
line changed; a test fails when the installed daphne's no longer matches it.
"""

import asyncio
from functools import partial
from typing import Any

from daphne.cli import CommandLineInterface
from daphne.server import Server

from realtime.serving.gctuning import tune_for_many_connections
from realtime.serving.inbox import Inbox


class WeerServer(Server):  # type: ignore[misc]
    def run(self) -> None:
        tune_for_many_connections()  # the application is imported by now
        super().run()

    def create_application(self, protocol: Any, scope: dict[str, Any]) -> Inbox | None:
        """daphne's ``create_application``, with an ``Inbox`` for its ``asyncio.Queue``."""
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
