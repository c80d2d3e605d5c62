"""Graceful drain: what SIGTERM does to one server process (``realtime.serving.server``).

1. ``/readyz`` answers 503 ``{"status": "draining"}`` (on connections still open to it; new
   ones cannot reach it, next).
2. It stops accepting: its listening socket is closed, so the kernel hands new connections to
   the port's other processes (``weer-serve``); in Kubernetes the pod has left the Service's
   endpoints by then (the manifests' ``preStop`` sleep).
3. It closes its websockets with 1012 (service restart), evenly over ``WEB_DRAIN_SECONDS``:
   of the N open when it starts, the k-th is closed at (k-1)/N of the window, so its clients
   come back elsewhere at a steady pace (each after its own random delay, docs/protocol.md
   §6) instead of all at once. Sockets that open meanwhile (handshakes already under way) are
   counted in and closed on the same schedule.
4. Once no websocket is left, no HTTP request is in flight and the application has finished
   with each (a consumer leaving its streams), it stops, and the process exits 0. A request
   or a close handshake that outlasts the window by ``FINISH_SECONDS`` is cut off (logged).

Under ``weer-serve`` the process says it drains as it starts (``tell_supervisor``), so that a
new process takes its place at once (``realtime.serving.serve``).

A second SIGTERM changes nothing; SIGINT still stops the process at once, and a SIGTERM before
the process runs (while it loads the application) ends it, as by default. The Kubernetes grace
period must cover the ``preStop`` sleep, the window and ``FINISH_SECONDS``.
"""

import asyncio
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

logger = logging.getLogger(__name__)

# The environment variable through which weer-serve hands each child the write end of a pipe,
# to be told when the child drains: plumbing between two processes, not a setting.
DRAIN_NOTICE_FD = "WEER_SERVE_DRAIN_FD"
LISTEN_BACKLOG = 1024  # of each process's socket (weer-serve's, or the process's own listen)

TICK_SECONDS = 0.05  # how often the schedule is looked at: 20 rounds of closes a second
FINISH_SECONDS = 10.0  # after the window: the longest wait for close handshakes and requests

_draining = False


def draining() -> bool:
    """Whether this process is draining (so ``/readyz`` says it is not ready)."""
    return _draining


def tell_supervisor() -> None:
    """Tell weer-serve, if it started this process, that it drains (once)."""
    fd = os.environ.pop(DRAIN_NOTICE_FD, None)
    if fd is None:
        return
    try:
        os.write(int(fd), b"draining")
        os.close(int(fd))
    except (OSError, ValueError):  # weer-serve is gone, or it was not weer-serve's variable
        logger.warning("could not tell weer-serve that this process drains")


def closes_due(*, elapsed: float, window: float, closed: int, still_open: int) -> int:
    """How many of the ``still_open`` sockets to close now, ``elapsed`` seconds into a
    ``window``, with ``closed`` closed so far: of the N = ``closed`` + ``still_open``, the
    k-th is due once ``elapsed`` passes (k-1)/N of the window; all are due at its end."""
    if still_open <= 0:
        return 0
    if window <= 0 or elapsed >= window:
        return still_open
    total = closed + still_open
    return max(0, min(still_open, math.ceil(total * elapsed / window) - closed))


class Drain:
    """One process's drain: ``run`` closes the sockets ``open_sockets`` lists (oldest first)
    with ``close`` on the schedule of ``closes_due``, waits while ``busy`` (a websocket not yet
    gone, an HTTP request in flight), then calls ``stop``."""

    def __init__(
        self,
        *,
        window: float,
        open_sockets: Callable[[], Sequence[Any]],
        close: Callable[[Any], None],
        busy: Callable[[], bool],
        stop: Callable[[], None],
    ) -> None:
        self._window = window
        self._open_sockets = open_sockets
        self._close = close
        self._busy = busy
        self._stop = stop

    async def run(self) -> None:
        global _draining
        _draining = True
        started = time.monotonic()
        closed = 0
        logger.info(
            "SIGTERM: draining %d websockets over %g s (not accepting; /readyz 503)",
            len(self._open_sockets()),
            self._window,
        )
        while True:
            elapsed = time.monotonic() - started
            sockets = self._open_sockets()
            due = closes_due(
                elapsed=elapsed, window=self._window, closed=closed, still_open=len(sockets)
            )
            for socket in sockets[:due]:
                self._close(socket)
            closed += due
            if not self._busy():
                logger.info("drained: %d websockets closed in %.1f s", closed, elapsed)
                break
            if elapsed >= self._window + FINISH_SECONDS:
                logger.warning(
                    "drain: %.0f s past its window, connections are still open (a close "
                    "handshake or an HTTP request): stopping anyway",
                    FINISH_SECONDS,
                )
                break
            await asyncio.sleep(TICK_SECONDS)
        self._stop()
