"""daphne as WeER runs it: stock daphne, with a lighter inbox per connection
(``realtime.serving.inbox``). Used through daphne's own extension point,
``CommandLineInterface.server_class``; ``weer-serve`` runs this instead of plain ``daphne``.
Its access log is Python logging (``realtime.serving.access_log``). It also tunes the garbage
collector for many connections (``realtime.serving.gctuning``),
makes autobahn close a websocket that breaks the protocol with a close frame saying why
(``WEBSOCKET_OPTIONS``) instead of resetting its TCP connection, and drains on SIGTERM
(``realtime.serving.drain``) instead of dropping every connection at once; it exits 0 only
after a drain or a SIGINT (1 when it cannot listen), which is how ``weer-serve`` tells a
process stopped on purpose from one that died (as is death by a SIGTERM that came while it
started).

``create_application`` is a copy of daphne's (4.2.3, pinned in ``constraints.txt``) with one
line changed; a test fails when the installed daphne's no longer matches it.
"""

import asyncio
import os
import signal
import socket
import sys
import types
from functools import partial
from typing import Any, ClassVar

import autobahn.websocket.protocol
from daphne.cli import CommandLineInterface
from daphne.server import Server
from daphne.ws_protocol import WebSocketProtocol
from django.conf import settings
from twisted.internet import reactor

from realtime.serving import drain
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


def listen_when_ready(fd: int) -> None:
    """Listen on the socket weer-serve handed over, now that the application is loaded: a
    replacement's comes only bound (``serve.bound_socket``), and the kernel's ``SO_REUSEPORT``
    group gives it its share of new connections from now on. (On one listening already, this
    only sets the backlog again.)"""
    sock = socket.socket(fileno=os.dup(fd))
    try:
        sock.listen(drain.LISTEN_BACKLOG)
    finally:
        sock.close()


class WeerServer(Server):  # type: ignore[misc]
    exit_status = 0  # the process's, once the reactor has stopped

    def log_action(self, protocol: str, action: str, details: dict[str, Any]) -> None:
        """The access log as Python logging (``realtime.serving.access_log``), whatever
        daphne's ``--access-log`` says."""
        log_access(protocol, action, details)

    def run(self) -> None:
        tune_for_many_connections()  # the application is imported by now
        for description in self.endpoints:
            if description.startswith("fd:fileno="):  # daphne --fd, as weer-serve runs it
                listen_when_ready(int(description.removeprefix("fd:fileno=").split(":")[0]))
        self._ports: list[Any] = []
        self._drain: asyncio.Future[None] | None = None
        # After startup, when Twisted has set its own handlers (SIGTERM: stop at once).
        reactor.callWhenRunning(self._drain_on_sigterm)
        super().run()

    def listen_success(self, port: Any) -> None:
        self._ports.append(port)  # to stop listening when draining
        super().listen_success(port)

    def listen_error(self, failure: Any) -> None:
        """daphne stops, and would exit 0 like a drained process: exit 1, a failure."""
        WeerServer.exit_status = 1
        super().listen_error(failure)

    def _drain_on_sigterm(self) -> None:
        def on_sigterm(_signum: int, _frame: object) -> None:
            reactor.callFromThread(self.start_drain)

        signal.signal(signal.SIGTERM, on_sigterm)

    def start_drain(self) -> None:
        """Stop accepting and close every websocket with 1012 over ``WEB_DRAIN_SECONDS``,
        then stop (``realtime.serving.drain``). Once only: a second SIGTERM changes nothing."""
        if self._drain is not None:
            drain.logger.info("SIGTERM again: already draining")
            return
        # Imported here: they need Django's apps, loaded with the application.
        from realtime.close_codes import SERVICE_RESTART
        from realtime.hub import get_hub

        get_hub().metrics.draining = True  # weer_process_draining on /metrics (the alerts')

        def close(protocol: Any) -> None:
            # autobahn's sendClose lets applications send only 1000 and 3000-4999; its
            # sendCloseFrame, which its own protocol failures and daphne's 1011 use, sends
            # any code, and 1012 is registered (IANA, RFC 6455 section 7.4) and standard.
            protocol.sendCloseFrame(code=SERVICE_RESTART, reasonUtf8=b"service restart")

        drain.tell_supervisor()  # weer-serve starts a new process in this one's place
        for port in self._ports:
            port.stopListening()
        self._drain = asyncio.ensure_future(
            drain.Drain(
                window=settings.WEB_DRAIN_SECONDS,
                open_sockets=self._open_websockets,
                close=close,
                busy=self._busy,
                stop=self.stop,
            ).run()
        )

    def _open_websockets(self) -> list[Any]:
        """Open websockets, oldest first (the order daphne registered them)."""
        return [
            protocol
            for protocol, details in self.connections.items()
            if isinstance(protocol, WebSocketProtocol)
            and protocol.state == WebSocketProtocol.STATE_OPEN
            and "disconnected" not in details
        ]

    def _busy(self) -> bool:
        """Whether a connection daphne tracks is not over: a websocket not yet closed (open,
        closing or still in its handshake), an HTTP request not yet answered (an idle
        keep-alive connection has none), or the application of either not yet finished (a
        consumer leaving its streams)."""
        for details in self.connections.values():
            if "disconnected" not in details:
                return True
            application = details.get("application_instance")
            if application is not None and not application.done():
                return True
        return False

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
    sys.exit(WeerServer.exit_status)
