"""``weer-serve``: run N daphne processes on one port, so a server uses every core it has.

daphne is single-threaded and cannot share a port by itself. This opens one socket per process
on the same address with ``SO_REUSEPORT`` (the kernel spreads new connections evenly over the
listening ones) and starts ``daphne --fd`` on each. The first processes' sockets listen from
the start, so that connections spread over all of them even while they load the application;
a replacement's listens only once it has (``realtime.serving.server``), so that no connection
waits in the backlog of a process still importing Django while the others serve. Each process
has its own hub; they share streams and sequence numbers through Redis, so a client may land on
any of them.

    weer-serve --port 8000 --processes 2 [-- extra daphne options, e.g. --proxy-headers]

SIGTERM makes each process drain (``realtime.serving.drain``): it stops accepting, ``/readyz``
answers 503, its websockets are closed with 1012 (service restart) evenly over
``WEB_DRAIN_SECONDS``, and it exits 0 once they are closed and its HTTP requests answered.
SIGTERM and SIGINT (which stops the processes at once) sent to ``weer-serve`` are passed on to
every process, and it exits once they have.

A process SIGTERMed on its own (a rolling restart of one process) says so to ``weer-serve``
as it starts draining, over a pipe, and a fresh one takes its slot at once, on a fresh socket
on the same port: the clients it closes come back to the others and to the new one. Its exit
is not a death; nor is one that stopped without a word (SIGTERMed while it started, or
SIGINTed: an exit 0, or death by SIGTERM), which is replaced at once too.

A process that dies while the server is not shutting down (a crash, an OOM kill: any other
exit) is logged and replaced by a fresh one, while the others keep serving: its clients reconnect
(1006), the kernel hands them to the live processes, and they resume from the shared history.
Replacements of the dead wait 0.5 s, doubling with each death in the window (up to 8 s), so a
process that cannot start does not spin; if ``--max-deaths`` (5) die within ``--death-window``
(60 s), the server gives up: it stops the others and exits 1, for its supervisor (honcho,
Kubernetes) to see.
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

from realtime.serving.drain import DRAIN_NOTICE_FD, LISTEN_BACKLOG

APPLICATION = "project.asgi:application"


def bound_socket(host: str, port: int, *, listen: bool) -> socket.socket:
    """A socket of the port's ``SO_REUSEPORT`` group, listening or only bound: until it
    listens (its process does so once ready), the kernel hands it no connection."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    if listen:
        sock.listen(LISTEN_BACKLOG)
    sock.set_inheritable(True)
    return sock


MAX_DEATHS = 5  # processes dying within DEATH_WINDOW seconds make the server give up
DEATH_WINDOW = 60.0
FIRST_RESTART_DELAY = 0.5  # doubles with each death in the window
MAX_RESTART_DELAY = 8.0


class _Child:
    """One daphne process, and the read end of the pipe on which it says it started draining
    (``realtime.serving.drain.tell_supervisor``)."""

    def __init__(self, process: "subprocess.Popen[bytes]", notices: int) -> None:
        self.process = process
        self.pid = process.pid
        self._notices: int | None = notices

    def poll(self) -> int | None:
        return self.process.poll()

    def send_signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def draining(self) -> bool:
        """Whether it said it drains (SIGTERM); reads what it wrote, without waiting."""
        if self._notices is None:
            return False
        try:
            return bool(os.read(self._notices, 16))  # b"": it exited without a word
        except BlockingIOError:
            return False

    def forget(self) -> None:
        if self._notices is not None:
            os.close(self._notices)
            self._notices = None


def _start(host: str, port: int, daphne_options: Sequence[str], *, listen: bool) -> _Child:
    """One daphne process on a socket of its own (``bound_socket``); the child holds the only
    copy of it, and the write end of a pipe to say it drains."""
    sock = bound_socket(host, port, listen=listen)
    notices, notify = os.pipe()
    os.set_blocking(notices, False)
    try:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and daphne, operator's options
            [
                sys.executable,
                "-m",
                "realtime.serving.server",
                "--fd",
                str(sock.fileno()),
                *daphne_options,
                APPLICATION,
            ],
            pass_fds=(sock.fileno(), notify),
            env={**os.environ, DRAIN_NOTICE_FD: str(notify)},
        )
    except BaseException:
        os.close(notices)
        raise
    finally:
        sock.close()
        os.close(notify)
    return _Child(process, notices)


def _say(message: str) -> None:
    print(f"weer-serve: {message}", file=sys.stderr, flush=True)


class _Supervisor:
    """The server's processes, one per slot; a draining one leaves its slot to a new process at
    once, a dead one's slot waits for its replacement."""

    def __init__(
        self,
        start: Callable[[bool], _Child],
        processes: int,
        max_deaths: int,
        death_window: float,
    ) -> None:
        self._start = start
        self._max_deaths = max_deaths
        self._death_window = death_window
        self.children: list[_Child | None] = [start(True) for _ in range(processes)]
        self.draining: list[_Child] = []  # out of their slots, until they exit
        self._restart_at: dict[int, float] = {}  # slot → when its replacement starts
        self._deaths: deque[float] = deque()
        self._signalled: set[int] = set()
        self.stop_signal: int | None = None
        self.status = 0

    def step(self, now: float) -> bool:
        """Look after the processes once; False when every one has stopped for good."""
        self._reap_the_drained()
        if self.stop_signal is None:
            self._replace_the_gone(now)
        if self.stop_signal is None:
            self._start_replacements(now)
            return True
        self._restart_at.clear()
        alive = [
            child
            for child in (*self.children, *self.draining)
            if child is not None and child.poll() is None
        ]
        for child in alive:  # a draining one ignores SIGTERM; SIGINT stops it at once
            if child.pid not in self._signalled:
                child.send_signal(self.stop_signal)
                self._signalled.add(child.pid)
        return bool(alive)

    def _reap_the_drained(self) -> None:
        for child in list(self.draining):
            if child.poll() is not None:
                self.draining.remove(child)
                child.forget()
                _say(f"daphne {child.pid} drained and stopped ({child.process.returncode})")

    def _replace_the_gone(self, now: float) -> None:
        for slot, child in enumerate(self.children):
            if child is None:
                continue
            if child.poll() is None:
                if child.draining():  # SIGTERMed on its own: a rolling restart of one process
                    self.children[slot] = None
                    self.draining.append(child)
                    self._restart_at[slot] = now
                    _say(f"daphne {child.pid} is draining; a new one in its place")
                continue
            self.children[slot] = None
            child.forget()
            returncode = child.process.returncode
            if returncode in (0, -signal.SIGTERM):  # stopped on purpose, before it said so
                _say(f"daphne {child.pid} stopped ({returncode}); a new one in its place")
                self._restart_at[slot] = now
                continue
            self._deaths.append(now)
            while now - self._deaths[0] > self._death_window:
                self._deaths.popleft()
            deaths = len(self._deaths)
            if deaths >= self._max_deaths:
                _say(
                    f"daphne {child.pid} died ({returncode}), {deaths} in "
                    f"{self._death_window:g} s: giving up, stopping all"
                )
                self.status = 1
                self.stop_signal = signal.SIGTERM
                return
            delay = min(FIRST_RESTART_DELAY * 2 ** (deaths - 1), MAX_RESTART_DELAY)
            _say(f"daphne {child.pid} died ({returncode}); a new one in {delay:g} s")
            self._restart_at[slot] = now + delay

    def _start_replacements(self, now: float) -> None:
        for slot, due in list(self._restart_at.items()):
            if now >= due:
                del self._restart_at[slot]
                child = self.children[slot] = self._start(False)  # listens once ready
                _say(f"daphne {child.pid} started in its place")


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
        lambda listen: _start(host, port, daphne_options, listen=listen),
        processes,
        max_deaths,
        death_window,
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
