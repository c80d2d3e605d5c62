"""The simulator's HTTP server: a thin layer that routes ``/B552657/ErmctInfoInqireService/…``
to ``Simulator.respond`` and ``/_control/…`` to ``Simulator.control``, and the helpers that run
it in a thread for tests."""

from __future__ import annotations

import contextlib
import re
import sys
import threading
from collections.abc import Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

from ingestion.simulator.protocol import Reply
from ingestion.simulator.state import Simulator

BASE_PATH: Final = "/B552657/ErmctInfoInqireService/"
CONTROL_PATH: Final = "/_control/"

_KEY_IN_TEXT: Final = re.compile(r"((?:service|Service)Key=)[^&\s'\"]*")


class SimulatorServer(ThreadingHTTPServer):
    """A threading HTTP server bound to one ``Simulator``; ``quiet`` silences the request log."""

    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], simulator: Simulator, *, quiet: bool = False
    ) -> None:
        super().__init__(address, SimulatorHandler)
        self.simulator = simulator
        self.quiet = quiet

    @property
    def base_url(self) -> str:
        """``http://host:port`` of the running server."""
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def api_url(self) -> str:
        """The service's base URL, to which ``/<operation>`` is appended."""
        return self.base_url + BASE_PATH.rstrip("/")


class SimulatorHandler(BaseHTTPRequestHandler):
    """Routes ``/B552657/ErmctInfoInqireService/<operation>`` (GET) to ``Simulator.respond`` and
    ``/_control/…`` to ``Simulator.control``; logs one line per request without the key."""

    server: SimulatorServer
    protocol_version = "HTTP/1.1"
    server_version = "WeER-NEMC-Simulator/1.0"
    sys_version = ""

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        length_header = self.headers.get("Content-Length") or "0"
        length = int(length_header) if length_header.isdigit() else 0
        body = self.rfile.read(length) if length > 0 else b""
        simulator = self.server.simulator
        if not length_header.isdigit():
            reply = Reply.text(400, "Bad Request", "bad_request")
            self.close_connection = True
        elif url.path.startswith(CONTROL_PATH):
            reply = simulator.control(method, url.path[len(CONTROL_PATH) :], url.query, body)
        elif url.path.startswith(BASE_PATH):
            if method != "GET":
                reply = Reply.text(405, "Method Not Allowed", "method_not_allowed")
            else:
                params = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
                reply = simulator.respond(url.path[len(BASE_PATH) :].strip("/"), params)
        else:
            reply = Reply.text(404, "Not Found", "not_found")
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (e.g. during a timeout fault)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if isinstance(code, HTTPStatus):
            code = code.value
        self.log_message('"%s" %s', self.requestline, code)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.quiet:
            return
        text = _KEY_IN_TEXT.sub(r"\1***", format % args)
        sys.stderr.write(f"{self.address_string()} [{self.log_date_time_string()}] {text}\n")


def start_simulator(
    port: int = 0, host: str = "127.0.0.1", *, quiet: bool = False, **options: Any
) -> tuple[SimulatorServer, Simulator, threading.Thread]:
    """A simulator serving on ``host:port`` (0: a free port; see ``server.server_address``) in a
    daemon thread, its walk started. ``options`` go to ``Simulator``. Stop it with
    ``stop_simulator``."""
    simulator = Simulator(**options)
    server = SimulatorServer((host, port), simulator, quiet=quiet)
    thread = threading.Thread(target=server.serve_forever, name="sim-http", daemon=True)
    thread.start()
    simulator.start()
    return server, simulator, thread


def stop_simulator(server: SimulatorServer, simulator: Simulator, thread: threading.Thread) -> None:
    """Stop what ``start_simulator`` started."""
    simulator.close()
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@contextlib.contextmanager
def running_simulator(
    port: int = 0, host: str = "127.0.0.1", *, quiet: bool = True, **options: Any
) -> Iterator[tuple[SimulatorServer, Simulator]]:
    """``start_simulator`` as a context manager; stopped on exit."""
    server, simulator, thread = start_simulator(port, host, quiet=quiet, **options)
    try:
        yield server, simulator
    finally:
        stop_simulator(server, simulator, thread)
