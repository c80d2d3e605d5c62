"""One client process of a load run: it holds its share of the clients and tallies what they
receive, on commands from the controller (``loadtest.run``) over a pipe.

The conversation, in order: the process connects and subscribes every client, then answers
``("ready", connected, failures, seconds)``; on ``("storm", share)`` it drops that share of its
clients at once, resumes them with ``since`` and answers ``("stormed", resumed, failures,
seconds)``; on ``("finish", last_seq)`` it waits up to ``LOST_WAIT_SECONDS`` for stragglers,
answers ``("report", <WorkerReport as a dict>)`` and closes its sockets. A client that fails
to connect or subscribe is counted, never raised.

A client the server closes with 1012 (service restart: a server process draining, as in a
rolling deploy) comes back as docs/protocol.md §6 says: after a random delay (full jitter,
``loadtest.client.reconnect_delay``), retried with a growing bound if the reconnect fails, it
subscribes with ``since`` and the replay fills in what it missed; the report counts those
closes, resumes and failures and how long each resume took. Any other close by the server is
counted by code and not resumed: what that client misses counts as lost.
"""

import asyncio
import json
import math
import os
import random
import re
import time
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from loadtest.client import SERVICE_RESTART, StreamClient, reconnect_delay
from realtime.serving.gctuning import tune_for_many_connections

LOST_WAIT_SECONDS = 10.0  # after the last event, how long clients may take before misses count
RESTART_ATTEMPTS = 10  # reconnects after a 1012 before the client counts as not resumed
_ENVELOPE = re.compile(
    rb'\{"type":"[^"]*","stream":(?P<stream>"[^"]*"),"seq":(?P<seq>\d+),"ts":(?P<ts>\d+),'
)


@dataclass
class WorkerReport:
    """What one client process saw, merged by the controller."""

    connected: int = 0
    connect_failures: int = 0
    connect_seconds: float = 0.0
    deliveries: int = 0
    duplicates: int = 0
    lost: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    completion: dict[int, float] = field(default_factory=dict)  # seq → slowest latency (ms)
    resumed: int = 0
    resume_failures: int = 0
    resume_seconds: float = 0.0
    closed_by_server: dict[str, int] = field(default_factory=dict)
    # Closes with 1012 (service restart), the clients that resumed after one, those that could
    # not within RESTART_ATTEMPTS, and each resume's time from the close to its `subscribed`.
    restarts: int = 0
    restart_resumed: int = 0
    restart_failures: int = 0
    restart_seconds: list[float] = field(default_factory=list)
    cpu_seconds: float = 0.0  # this process's CPU from connected to finished
    # Payload bytes each subscription with a snapshot received (subscribed + snapshot).
    subscribe_bytes: list[int] = field(default_factory=list)


class _Client:
    """One simulated tablet: its socket, the seqs it has seen, and its process's tally."""

    __slots__ = ("done", "first", "index", "last", "report", "seen", "socket", "stream")

    def __init__(self, index: int, report: WorkerReport, stream: bytes) -> None:
        self.index = index
        self.report = report
        self.stream = stream  # the stream's name as it appears in a frame: JSON, as bytes
        self.socket: StreamClient | None = None
        self.first: int | None = None
        self.last: int | None = None
        self.seen: set[int] = set()
        self.done = False

    def receive(self, raw: bytes) -> None:
        """Count one message: a delivery with its latency from ``ts``, or a duplicate."""
        now = time.time() * 1000
        # The server's frames start with a fixed envelope; reading seq and ts from it
        # costs a fraction of decoding JSON, which keeps the client from being the limit.
        head = _ENVELOPE.match(raw)
        if head is None or head["stream"] != self.stream:
            return
        seq, ts = int(head["seq"]), int(head["ts"])
        report = self.report
        if seq in self.seen:
            report.duplicates += 1
            return
        self.seen.add(seq)
        if self.last is None or seq > self.last:
            self.last = seq
        report.deliveries += 1
        latency = now - ts
        report.latencies_ms.append(latency)
        if latency > report.completion.get(seq, -math.inf):
            report.completion[seq] = latency

    def on_closed(self, code: "asyncio.Future[int]") -> None:
        """Count a close we did not ask for, by close code."""
        if not self.done:
            key = str(code.result())
            self.report.closed_by_server[key] = self.report.closed_by_server.get(key, 0) + 1

    def resume_point(self) -> int:
        """The ``since`` to resume with: the last event received, else the ``subscribed``
        seq of the first subscription (the state its snapshot gave)."""
        if self.last is not None:
            return self.last
        assert self.first is not None, "resumed before it ever subscribed"  # noqa: S101
        return self.first - 1

    def missing(self, last_seq: int) -> int:
        """Events this client should have received (from its first to ``last_seq``) but
        never did."""
        if self.first is None:
            return 0
        expected = last_seq - self.first + 1
        return max(0, expected - len(self.seen))


class _Worker:
    def __init__(self, args: dict[str, Any], tokens: list[str], pipe: Connection) -> None:
        self.report = WorkerReport()
        self._url = args["ws_url"]
        if args.get("snapshots"):  # "deflate": as the pages ask (docs/protocol.md §1)
            self._url += f"?snapshots={args['snapshots']}&"
        else:
            self._url += "?"
        self._stream = args["stream"]
        self._tokens = tokens
        self._pipe = pipe
        self._semaphore = asyncio.Semaphore(args["connect_concurrency"])
        stream = json.dumps(self._stream).encode()
        self._clients = [_Client(i, self.report, stream) for i in range(len(tokens))]
        self._live: list[_Client] = []
        self._restarting: set[asyncio.Task[None]] = set()
        self._cpu_at_ready = 0.0

    async def serve(self) -> None:
        """Connect every client, then follow the controller's commands until ``finish``."""
        report = self.report
        started = time.monotonic()
        results = await asyncio.gather(*(self._connect(c, None) for c in self._clients))
        report.connect_seconds = time.monotonic() - started
        report.connected = sum(results)
        report.connect_failures = len(results) - report.connected
        self._live = [c for c, ok in zip(self._clients, results, strict=True) if ok]
        self._pipe.send(
            ("ready", report.connected, report.connect_failures, report.connect_seconds)
        )
        self._cpu_at_ready = time.process_time()
        loop = asyncio.get_running_loop()
        while True:
            command = await loop.run_in_executor(None, self._pipe.recv)
            if command[0] == "storm":
                await self._storm(command[1])
            elif command[0] == "finish":
                await self._finish(command[1])
                return

    async def _connect(self, client: _Client, since: int | None) -> bool:
        async with self._semaphore:
            try:
                socket = client.socket = await StreamClient.open(
                    f"{self._url}token={self._tokens[client.index]}"
                )
                await self._subscribe(client, socket, since)
            except Exception:  # counted; any failure to connect or subscribe is one
                if client.socket is not None:
                    client.socket.abort()
                return False
            socket.stream_to(client.receive)
            socket.closed.add_done_callback(client.on_closed)
            socket.closed.add_done_callback(lambda closed: self._after_close(client, closed))
            return True

    def _after_close(self, client: _Client, closed: "asyncio.Future[int]") -> None:
        """A server process that restarts (1012) gets its clients back elsewhere."""
        if not client.done and closed.result() == SERVICE_RESTART:
            task = asyncio.ensure_future(self._restart(client))
            self._restarting.add(task)
            task.add_done_callback(self._restarting.discard)

    async def _restart(self, client: _Client) -> None:
        """Reconnect after a random delay and resume, as docs/protocol.md §6 says."""
        report = self.report
        report.restarts += 1
        closed_at = time.monotonic()
        for attempt in range(RESTART_ATTEMPTS):
            await asyncio.sleep(reconnect_delay(attempt))
            if client.done:
                return
            if await self._connect(client, client.resume_point()):
                report.restart_resumed += 1
                report.restart_seconds.append(time.monotonic() - closed_at)
                return
        report.restart_failures += 1

    async def _subscribe(self, client: _Client, socket: StreamClient, since: int | None) -> None:
        message: dict[str, Any] = {"type": "subscribe", "streams": [self._stream]}
        if since is not None:
            message["since"] = {self._stream: since}
        socket.send_text(json.dumps(message))
        raw = await socket.recv()
        subscribed = json.loads(raw)
        if subscribed.get("type") != "subscribed":
            raise RuntimeError(subscribed)
        if client.first is None:
            client.first = subscribed["seq"] + 1
        if since is None:
            # The snapshot: text, or compressed (binary; not inflated here: 10,000 clients
            # inflating beds.all would cost the server's cores seconds of CPU).
            snapshot = await socket.recv()
            self.report.subscribe_bytes.append(len(raw) + len(snapshot))

    async def _storm(self, share: float) -> None:
        victims = random.Random(os.getpid()).sample(self._live, int(len(self._live) * share))  # noqa: S311
        for client in victims:
            client.done = True
            if client.socket is not None:
                client.socket.abort()
        await asyncio.gather(*(c.socket.closed for c in victims if c.socket))
        started = time.monotonic()
        outcomes = await asyncio.gather(*(self._resume(c) for c in victims))
        report = self.report
        report.resume_seconds = time.monotonic() - started
        report.resumed = sum(outcomes)
        report.resume_failures = len(outcomes) - report.resumed
        self._pipe.send(("stormed", report.resumed, report.resume_failures, report.resume_seconds))

    async def _resume(self, client: _Client) -> bool:
        client.done = False
        return await self._connect(client, client.resume_point())

    async def _finish(self, last_seq: int) -> None:
        deadline = time.monotonic() + LOST_WAIT_SECONDS
        while time.monotonic() < deadline and (  # noqa: ASYNC110 - bounded straggler wait
            self._restarting
            or any((c.last or 0) < last_seq for c in self._live if c.socket and c.socket.is_open)
        ):
            await asyncio.sleep(0.1)
        for client in self._live:
            client.done = True
            self.report.lost += client.missing(last_seq)
        for task in list(self._restarting):  # not back within the wait: counted as not resumed
            task.cancel()
            self.report.restart_failures += 1
        self.report.cpu_seconds = time.process_time() - self._cpu_at_ready
        self._pipe.send(
            ("report", asdict(self.report))
        )  # before closing: that costs the server CPU
        await asyncio.gather(
            *(c.socket.close() for c in self._live if c.socket), return_exceptions=True
        )


async def _serve(args: dict[str, Any], tokens: list[str], pipe: Connection) -> None:
    await _Worker(args, tokens, pipe).serve()


def worker_process(args: dict[str, Any], tokens: list[str], pipe: Connection) -> None:
    """The client process's entry point (``args``: ``ws_url``, ``stream``,
    ``connect_concurrency``; one client per token); see the module docstring for the pipe."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    tune_for_many_connections()  # a collector pause here would read as server latency
    asyncio.run(_serve(args, tokens, pipe))
