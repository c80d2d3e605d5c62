"""``weer-serve``: run N daphne processes on one port, so a server uses every core it has.

daphne is single-threaded and cannot share a port by itself. This opens one listening socket
per process on the same address with ``SO_REUSEPORT`` (the kernel spreads new connections
evenly over them) and starts ``daphne --fd`` on each. Each process has its own hub; they share
streams and sequence numbers through Redis, so a client may land on any of them.

    weer-serve --port 8000 --processes 2 [-- extra daphne options, e.g. --proxy-headers]

A process that dies while the server is not shutting down (a crash, an OOM kill) is logged and
replaced by a fresh one on a fresh socket on the same port, while the others keep serving: its
clients reconnect, the kernel hands them to the live processes, and they resume from the shared
history. Replacements wait 0.5 s, doubling with each death in the window (up to 8 s), so a
process that cannot start does not spin; if ``--max-deaths`` (5) die within ``--death-window``
(60 s), the server gives up: it stops the others and exits 1, for its supervisor (honcho,
Kubernetes) to see. SIGINT and SIGTERM are passed on to every process, and it exits once they
have.
"""

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence

APPLICATION = "project.asgi:application"


def listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


MAX_DEATHS = 5  # processes dying within DEATH_WINDOW seconds make the server give up
DEATH_WINDOW = 60.0
FIRST_RESTART_DELAY = 0.5  # doubles with each death in the window
MAX_RESTART_DELAY = 8.0


def _start(host: str, port: int, daphne_options: Sequence[str]) -> "subprocess.Popen[bytes]":
    """One daphne process on a listening socket of its own (the kernel adds it to the port's
    ``SO_REUSEPORT`` group); the child holds the only copy of it."""
    sock = listening_socket(host, port)
    try:
        return subprocess.Popen(  # noqa: S603 - our own interpreter and daphne, operator's options
            [
                sys.executable,
                "-m",
                "realtime.serving.server",
                "--fd",
                str(sock.fileno()),
                *daphne_options,
                APPLICATION,
            ],
            pass_fds=(sock.fileno(),),
        )
    finally:
        sock.close()


def _say(message: str) -> None:
    print(f"weer-serve: {message}", file=sys.stderr, flush=True)


class _Supervisor:
    """The server's processes, one per slot; a dead one's slot waits for its replacement."""

    def __init__(
        self,
        start: "Callable[[], subprocess.Popen[bytes]]",
        processes: int,
        max_deaths: int,
        death_window: float,
    ) -> None:
        self._start = start
        self._max_deaths = max_deaths
        self._death_window = death_window
        self.children: list[subprocess.Popen[bytes] | None] = [start() for _ in range(processes)]
        self._restart_at: dict[int, float] = {}  # slot → when its replacement starts
        self._deaths: deque[float] = deque()
        self._signalled: set[int] = set()
        self.stop_signal: int | None = None
        self.status = 0

    def step(self, now: float) -> bool:
        """Look after the processes once; False when every one has stopped for good."""
        if self.stop_signal is None:
            self._replace_the_dead(now)
        if self.stop_signal is None:
            self._start_replacements(now)
            return True
        self._restart_at.clear()
        alive = [child for child in self.children if child is not None and child.poll() is None]
        for child in alive:
            if child.pid not in self._signalled:
                child.send_signal(self.stop_signal)
                self._signalled.add(child.pid)
        return bool(alive)

    def _replace_the_dead(self, now: float) -> None:
        for slot, child in enumerate(self.children):
            if child is None or child.poll() is None:
                continue
            self.children[slot] = None
            self._deaths.append(now)
            while now - self._deaths[0] > self._death_window:
                self._deaths.popleft()
            deaths = len(self._deaths)
            if deaths >= self._max_deaths:
                _say(
                    f"daphne {child.pid} died ({child.returncode}), {deaths} in "
                    f"{self._death_window:g} s: giving up, stopping all"
                )
                self.status = 1
                self.stop_signal = signal.SIGTERM
                return
            delay = min(FIRST_RESTART_DELAY * 2 ** (deaths - 1), MAX_RESTART_DELAY)
            _say(f"daphne {child.pid} died ({child.returncode}); a new one in {delay:g} s")
            self._restart_at[slot] = now + delay

    def _start_replacements(self, now: float) -> None:
        for slot, due in list(self._restart_at.items()):
            if now >= due:
                del self._restart_at[slot]
                child = self.children[slot] = self._start()
                _say(f"daphne {child.pid} started in place of the dead one")


def serve(
    host: str,
    port: int,
    processes: int,
    daphne_options: Sequence[str],
    *,
    max_deaths: int = MAX_DEATHS,
    death_window: float = DEATH_WINDOW,
) -> int:
    """Run ``processes`` daphne processes until a signal stops them (0) or too many die (1)."""
    supervisor = _Supervisor(
        lambda: _start(host, port, daphne_options), processes, max_deaths, death_window
    )

    def stop(signum: int, _frame: object) -> None:
        # Only noted here: the loop passes it on, to the newest children too.
        supervisor.stop_signal = signum

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while supervisor.step(time.monotonic()):
        time.sleep(0.1)
    return supervisor.status


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="weer-serve", description="Run several daphne processes on one port."
    )
    parser.add_argument("-b", "--bind", default="127.0.0.1", help="address to listen on")
    parser.add_argument("-p", "--port", type=int, default=8000)
    parser.add_argument(
        "--processes",
        type=int,
        default=int(os.environ.get("WEB_PROCESSES", "1")),
        help="daphne processes (default: $WEB_PROCESSES or 1)",
    )
    parser.add_argument(
        "--max-deaths",
        type=int,
        default=MAX_DEATHS,
        help=f"give up when this many processes die within --death-window (default {MAX_DEATHS})",
    )
    parser.add_argument(
        "--death-window",
        type=float,
        default=DEATH_WINDOW,
        help=f"seconds (default {DEATH_WINDOW:g})",
    )
    parser.add_argument("daphne_options", nargs="*", help="passed on to daphne (after --)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    options = parser().parse_args(argv)
    if options.processes < 1:
        parser().error("--processes must be at least 1")
    return serve(
        options.bind,
        options.port,
        options.processes,
        options.daphne_options,
        max_deaths=options.max_deaths,
        death_window=options.death_window,
    )


if __name__ == "__main__":
    sys.exit(main())
