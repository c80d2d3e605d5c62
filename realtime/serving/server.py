"""daphne as WeER runs it: stock daphne, with a lighter inbox per connection
(``realtime.serving.inbox``). Used through daphne's own extension point,
``CommandLineInterface.server_class``; ``weer-serve`` runs this instead of plain ``daphne``.
Its access log is Python logging (``realtime.serving.access_log``). It also tunes the garbage
collector for many connections (``realtime.serving.gctuning``), and
makes autobahn close a websocket that breaks the protocol with a close frame saying why
(``WEBSOCKET_OPTIONS``) instead of resetting its TCP connection.

``create_application`` is a copy of daphne's (4.2.3, pinned in ``constraints.txt``) with one
line changed; a test fails when the installed daphne's no longer matches it.
"""

import asyncio
import types
from functools import partial
from typing import Any, ClassVar

import autobahn.websocket.protocol
from daphne.cli import CommandLineInterface
from daphne.server import Server
from daphne.ws_protocol import WebSocketProtocol

from realtime.serving.access_log import log_access
from realtime.serving.gctuning import tune_for_many_connections
from realtime.serving.inbox import Inbox

# autobahn's options for every websocket, on top of daphne's (which set the 1 MiB limits of
# ``--websocket-max-message-size`` and ``--websocket-max-frame-size``). By default autobahn
# fails a connection that breaks the rules (a text frame that is not UTF-8, a message over the
# limit, a protocol error) by dropping its TCP connection: the client sees a reset, as if the
# network had failed, and cannot tell that it sent something wrong. Without ``failByDrop`` it
# sends the close code RFC 6455 names for it (1007, 1009, 1002) and then closes. Text frames
# are validated as UTF-8 as they arrive (autobahn's default, stated because daphne decodes
# every text payload and would raise on one that is not).
WEBSOCKET_OPTIONS = {"failByDrop": False, "utf8validateIncoming": True}


def _not_pretty_printed(value: object) -> str:
    return f"<{type(value).__name__}: not pretty-printed>"


# autobahn pretty-prints its 29 options for a debug line on every new websocket, whether debug
# logging is on or not: a tenth of a connect's CPU. Its debug lines (off) do without them.
autobahn.websocket.protocol.pformat = _not_pretty_printed  # type: ignore[assignment,attr-defined]


class WeerWebSocketProtocol(WebSocketProtocol):  # type: ignore[misc]
    """daphne's protocol, but autobahn's options are read from the factory once, onto the
    class, instead of being copied into every connection's ``__dict__`` (29 entries each)."""

    _options_from: ClassVar[Any] = None

    def _connectionMade(self) -> None:
        cls = type(self)
        if cls._options_from is None:
            for name in self.CONFIG_ATTRS:
                if not hasattr(cls, name):  # as autobahn: the factory's, unless the class says
                    value = getattr(self.factory, name)
                    # A plain function (perMessageCompressionAccept) must not become a method.
                    is_function = isinstance(value, types.FunctionType)
                    setattr(cls, name, staticmethod(value) if is_function else value)
            cls._options_from = self.factory
        assert cls._options_from is self.factory  # noqa: S101 - one factory per process
        super()._connectionMade()


class WeerServer(Server):  # type: ignore[misc]
    def log_action(self, protocol: str, action: str, details: dict[str, Any]) -> None:
        """The access log as Python logging (``realtime.serving.access_log``), whatever
        daphne's ``--access-log`` says."""
        log_access(protocol, action, details)

    def run(self) -> None:
        tune_for_many_connections()  # the application is imported by now
        super().run()

    @property
    def ws_factory(self) -> Any:
        return self._ws_factory

    @ws_factory.setter
    def ws_factory(self, factory: Any) -> None:
        """daphne's ``run`` makes its autobahn factory and sets its own options on it (which
        leave these alone) before it listens: ours go on as it is made."""
        factory.setProtocolOptions(**WEBSOCKET_OPTIONS)
        factory.protocol = WeerWebSocketProtocol
        self._ws_factory = factory

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
