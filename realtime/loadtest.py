"""``weer-loadtest``: prove a deployment fans bed changes out to every tablet fast enough.

Opens N authenticated websocket clients spread over several processes (uvloop when installed),
subscribes them, drives events, and measures what every client received: connect rate and
failures, delivery latency from the event's ``ts``, per-event completion (until the last client
has it), deliveries per second, lost events (seq gaps, including events never received) and
duplicates — and optionally a reconnect storm, where a share of the clients drop at once and
resume with ``since``. Prints progress and a report, writes the report as JSON, and exits 1 when
a threshold (``--max-p99-ms``, ``--max-lost``, …) is missed.

Events are driven either by publishing directly through the one publishing path (``--drive
publish``; operators only: it needs the deployment's Redis and settings) or through the real
path (``--drive simulator``: exact values are set on the upstream simulator's control API and
the deployment's own ingestion picks them up, so latency then includes its polling interval).
Tokens come from ``manage.py issue_tokens``.
"""

import argparse
import asyncio
import functools
import json
import math
import multiprocessing
import os
import random
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.request import Request, urlopen

from realtime.loadclient import StreamClient
from realtime.serving.gctuning import tune_for_many_connections

LOST_WAIT_SECONDS = 10.0  # after the last event, how long clients may take before misses count
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
    cpu_seconds: float = 0.0  # this process's CPU from connected to finished


class _Client:
    __slots__ = ("done", "first", "index", "last", "seen", "socket")

    def __init__(self, index: int) -> None:
        self.index = index
        self.socket: StreamClient | None = None
        self.first: int | None = None
        self.last: int | None = None
        self.seen: set[int] = set()
        self.done = False


async def _worker_main(args: dict[str, Any], tokens: list[str], pipe: Connection) -> None:
    report = WorkerReport()
    stream = args["stream"]
    stream_bytes = json.dumps(stream).encode()
    clients = [_Client(i) for i in range(len(tokens))]
    semaphore = asyncio.Semaphore(args["connect_concurrency"])

    async def connect(client: _Client, since: int | None) -> bool:
        async with semaphore:
            try:
                socket = client.socket = await StreamClient.open(
                    f"{args['ws_url']}?token={tokens[client.index]}"
                )
                message: dict[str, Any] = {"type": "subscribe", "streams": [stream]}
                if since is not None:
                    message["since"] = {stream: since}
                socket.send_text(json.dumps(message))
                subscribed = json.loads(await socket.recv())
                if subscribed.get("type") != "subscribed":
                    raise RuntimeError(subscribed)
                if client.first is None:
                    client.first = subscribed["seq"] + 1
                if since is None:
                    await socket.recv()  # the snapshot
            except Exception:  # counted; any failure to connect or subscribe is one
                if client.socket is not None:
                    client.socket.abort()
                return False
            socket.stream_to(functools.partial(receive, client))
            socket.closed.add_done_callback(functools.partial(closed, client))
            return True

    def receive(client: _Client, raw: bytes) -> None:
        now = time.time() * 1000
        # The server's frames start with a fixed envelope; reading seq and ts from it
        # costs a fraction of decoding JSON, which keeps the client from being the limit.
        head = _ENVELOPE.match(raw)
        if head is None or head["stream"] != stream_bytes:
            return
        seq, ts = int(head["seq"]), int(head["ts"])
        if seq in client.seen:
            report.duplicates += 1
            return
        client.seen.add(seq)
        if client.last is None or seq > client.last:
            client.last = seq
        report.deliveries += 1
        latency = now - ts
        report.latencies_ms.append(latency)
        if latency > report.completion.get(seq, -math.inf):
            report.completion[seq] = latency

    def closed(client: _Client, code: "asyncio.Future[int]") -> None:
        if not client.done:
            key = str(code.result())
            report.closed_by_server[key] = report.closed_by_server.get(key, 0) + 1

    started = time.monotonic()
    results = await asyncio.gather(*(connect(c, None) for c in clients))
    report.connect_seconds = time.monotonic() - started
    report.connected = sum(results)
    report.connect_failures = len(results) - report.connected
    live = [c for c, ok in zip(clients, results, strict=True) if ok]
    pipe.send(("ready", report.connected, report.connect_failures, report.connect_seconds))
    cpu_at_ready = time.process_time()

    loop = asyncio.get_running_loop()
    while True:
        command = await loop.run_in_executor(None, pipe.recv)
        if command[0] == "storm":
            share = command[1]
            victims = random.Random(os.getpid()).sample(live, int(len(live) * share))  # noqa: S311
            for client in victims:
                client.done = True
                if client.socket is not None:
                    client.socket.abort()
            await asyncio.gather(*(c.socket.closed for c in victims if c.socket))
            storm_started = time.monotonic()

            async def resume(client: _Client) -> bool:
                client.done = False
                return await connect(client, client.last if client.last is not None else 0)

            outcomes = await asyncio.gather(*(resume(c) for c in victims))
            report.resume_seconds = time.monotonic() - storm_started
            report.resumed = sum(outcomes)
            report.resume_failures = len(outcomes) - report.resumed
            pipe.send(("stormed", report.resumed, report.resume_failures, report.resume_seconds))
        elif command[0] == "finish":
            last_seq = command[1]
            deadline = time.monotonic() + LOST_WAIT_SECONDS
            while time.monotonic() < deadline and any(  # noqa: ASYNC110 - bounded straggler wait
                (c.last or 0) < last_seq for c in live if c.socket and c.socket.is_open
            ):
                await asyncio.sleep(0.1)
            for client in live:
                client.done = True
                report.lost += _missing(client, last_seq)
            report.cpu_seconds = time.process_time() - cpu_at_ready
            pipe.send(("report", asdict(report)))  # before closing, which costs the server CPU
            await asyncio.gather(
                *(c.socket.close() for c in live if c.socket), return_exceptions=True
            )
            return


def _missing(client: _Client, last_seq: int) -> int:
    """Events this client should have received (from its first to ``last_seq``) but never did."""
    if client.first is None:
        return 0
    expected = last_seq - client.first + 1
    return max(0, expected - len(client.seen))


def _worker(args: dict[str, Any], tokens: list[str], pipe: Connection) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    tune_for_many_connections()  # a collector pause here would read as server latency
    asyncio.run(_worker_main(args, tokens, pipe))


# -- driving events ----------------------------------------------------------------------------


class _PublishDriver:
    """Publish ``beds.changed`` events straight through the publishing path (operators only)."""

    def __init__(self, stream: str) -> None:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
        import django

        django.setup()
        from realtime.publishing import publish_event

        self._publish = publish_event
        self._stream = stream
        self._n = 0

    def send(self) -> int:
        self._n += 1
        data = {
            "hpid": "LOADTEST",
            "changes": {"er_general": {"old": self._n - 1, "new": self._n}},
            "hvidate": None,
            "padding": "x" * 120,
        }
        return self._publish(self._stream, "beds.changed", data)


class _SimulatorDriver:
    """Set an exact value on the upstream simulator; the deployment's ingestion does the rest."""

    def __init__(self, control_url: str, hpid: str) -> None:
        self._url = f"{control_url.rstrip('/')}/_control/hospitals/{hpid}"
        self._n = 0

    def send(self) -> int:
        self._n += 1
        body = json.dumps({"values": {"hvec": self._n % 40}}).encode()
        request = Request(  # noqa: S310 - the operator's own simulator URL
            self._url,
            data=body,
            method="PUT",
            headers={"Content-Type": "application/json"},
        )
        with urlopen(request, timeout=5):  # noqa: S310
            pass
        return 0


# -- the controller ----------------------------------------------------------------------------


def percentile(ordered: Sequence[float], q: float) -> float:
    if not ordered:
        return math.nan
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def run(
    options: argparse.Namespace, on_connected: Callable[[], dict[str, Any]] | None = None
) -> dict[str, Any]:
    """One load run; ``on_connected`` is called once every client is connected, before any
    event, and what it returns goes into the report under ``at_connected``."""
    tokens = [t for t in Path(options.tokens).read_text().split() if t][: options.clients]
    if len(tokens) < options.clients:
        raise SystemExit(f"{options.tokens} has {len(tokens)} tokens; {options.clients} needed")
    ws_url = options.url.replace("http", "ws", 1).rstrip("/") + "/ws/"
    worker_args = {
        "ws_url": ws_url,
        "stream": options.stream,
        "connect_concurrency": options.connect_concurrency,
    }
    processes = max(1, min(options.processes, len(tokens)))
    slices = [tokens[i::processes] for i in range(processes)]
    context = multiprocessing.get_context("spawn")
    pipes, workers = [], []
    started = time.monotonic()
    for part in slices:
        parent, child = context.Pipe()
        worker = context.Process(target=_worker, args=(worker_args, part, child), daemon=True)
        worker.start()
        pipes.append(parent)
        workers.append(worker)
    ready = [pipe.recv() for pipe in pipes]
    connect_seconds = time.monotonic() - started
    connected = sum(r[1] for r in ready)
    failures = sum(r[2] for r in ready)
    _progress(
        f"connected {connected}/{len(tokens)} clients in {connect_seconds:.1f} s "
        f"({failures} failures) over {processes} processes"
    )

    at_connected = on_connected() if on_connected else None
    driver: _PublishDriver | _SimulatorDriver = (
        _PublishDriver(options.stream)
        if options.drive == "publish"
        else _SimulatorDriver(options.simulator_url, options.hpid)
    )
    count = int(options.rate * options.duration)
    driven: set[int] = set()  # seqs of our own events (the deployment may publish others)
    server_cpu_at_start = _cpu_seconds(options.server_pids)
    storm_at = int(count * options.storm_at) if options.storm_percent else -1
    last_seq = 0
    storm: dict[str, Any] = {}
    t0 = time.monotonic()
    for n in range(count):
        if n == storm_at:
            for pipe in pipes:
                pipe.send(("storm", options.storm_percent / 100))
            results = [pipe.recv() for pipe in pipes]
            storm = {
                "dropped_percent": options.storm_percent,
                "resumed": sum(r[1] for r in results),
                "resume_failures": sum(r[2] for r in results),
                "all_resumed_within_s": round(max(r[3] for r in results), 2),
            }
            _progress(f"reconnect storm: {storm}")
        seq = driver.send()
        if seq:
            driven.add(seq)
        last_seq = seq or last_seq
        if n and n % max(1, int(options.rate)) == 0:
            _progress(f"{n}/{count} events sent")
        delay = t0 + (n + 1) / options.rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    send_seconds = time.monotonic() - t0
    if options.drive == "simulator":  # seqs come from the deployment's ingestion: ask for the head
        time.sleep(options.settle)
        last_seq = asyncio.run(_stream_head(ws_url, tokens[0], options.stream))
    for pipe in pipes:
        pipe.send(("finish", last_seq))
    reports = [pipe.recv()[1] for pipe in pipes]
    server_cpu = _cpu_seconds(options.server_pids) - server_cpu_at_start
    for worker in workers:
        worker.join(30)
    report = _report(
        options,
        reports,
        connected,
        failures,
        connect_seconds,
        count,
        send_seconds,
        storm,
        server_cpu,
        driven,
    )
    if at_connected is not None:
        report["at_connected"] = at_connected
    return report


def _cpu_seconds(pids: Sequence[int]) -> float:
    """CPU time (user + system) used so far by these local processes, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def _report(
    options: argparse.Namespace,
    reports: list[dict[str, Any]],
    connected: int,
    failures: int,
    connect_seconds: float,
    count: int,
    send_seconds: float,
    storm: dict[str, Any],
    server_cpu: float,
    driven: set[int],
) -> dict[str, Any]:
    latencies = sorted(x for r in reports for x in r["latencies_ms"])
    slowest: dict[int, float] = {}
    for r in reports:
        for seq, latency in r["completion"].items():
            slowest[int(seq)] = max(slowest.get(int(seq), -math.inf), latency)
    # Completion is per event this run drove; a live deployment's own events (ingestion) count
    # in latency, deliveries, lost and duplicates but are not "one event sent to N clients".
    completion = sorted(v for seq, v in slowest.items() if not driven or seq in driven)
    deliveries = sum(r["deliveries"] for r in reports)
    expected = connected * count if options.drive == "publish" else None
    closed: dict[str, int] = {}
    for r in reports:
        for code, n in r["closed_by_server"].items():
            closed[code] = closed.get(code, 0) + n
    return {
        "clients": options.clients,
        "processes": options.processes,
        "stream": options.stream,
        "drive": options.drive,
        "connected": connected,
        "connect_failures": failures,
        "connect_seconds": round(connect_seconds, 2),
        "events": count,
        "rate_per_s": options.rate,
        "deliveries": deliveries,
        "expected_deliveries": expected,
        "deliveries_per_s": round(deliveries / max(send_seconds, 1e-9), 1),
        "lost": sum(r["lost"] for r in reports),
        "duplicates": sum(r["duplicates"] for r in reports),
        "latency_ms": {
            "p50": percentile(latencies, 0.5),
            "p95": percentile(latencies, 0.95),
            "p99": percentile(latencies, 0.99),
            "max": round(latencies[-1], 1) if latencies else math.nan,
            "mean": round(statistics.mean(latencies), 1) if latencies else math.nan,
        },
        "completion_ms": {
            "p50": percentile(completion, 0.5),
            "p99": percentile(completion, 0.99),
            "max": round(completion[-1], 1) if completion else math.nan,
        },
        "closed_by_server": closed,
        "reconnect_storm": storm or None,
        "cpu_seconds": {  # while events were sent (CPU seconds, not wall time)
            "clients": round(sum(r["cpu_seconds"] for r in reports), 2),
            "server": round(server_cpu, 2) if options.server_pids else None,
            "wall": round(send_seconds, 2),
        },
    }


async def _stream_head(ws_url: str, token: str, stream: str) -> int:
    socket = await StreamClient.open(f"{ws_url}?token={token}")
    try:
        socket.send_text(json.dumps({"type": "subscribe", "streams": [stream]}))
        return int(json.loads(await socket.recv())["seq"])
    finally:
        await socket.close()


def _progress(text: str) -> None:
    print(f"[weer-loadtest] {text}", file=sys.stderr, flush=True)


def _failed_thresholds(report: dict[str, Any], options: argparse.Namespace) -> list[str]:
    problems = []
    if options.max_p99_ms is not None and not report["latency_ms"]["p99"] <= options.max_p99_ms:
        problems.append(f"p99 {report['latency_ms']['p99']} ms > {options.max_p99_ms} ms")
    if options.max_lost is not None and report["lost"] > options.max_lost:
        problems.append(f"lost {report['lost']} > {options.max_lost}")
    if options.max_duplicates is not None and report["duplicates"] > options.max_duplicates:
        problems.append(f"duplicates {report['duplicates']} > {options.max_duplicates}")
    if report["connect_failures"] > options.max_connect_failures:
        problems.append(f"{report['connect_failures']} connect failures")
    storm = report["reconnect_storm"]
    if storm and storm["resume_failures"]:
        problems.append(f"{storm['resume_failures']} clients failed to resume")
    return problems


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="weer-loadtest", description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default="http://127.0.0.1:8000", help="the deployment")
    p.add_argument("--tokens", required=True, help="file of access tokens, one per line")
    p.add_argument("--clients", type=int, default=1000)
    p.add_argument("--processes", type=int, default=os.cpu_count() or 2, help="client processes")
    p.add_argument("--stream", default="beds.all")
    p.add_argument("--drive", choices=["publish", "simulator"], default="publish")
    p.add_argument("--simulator-url", default="http://127.0.0.1:8001")
    p.add_argument("--hpid", default="A1100015", help="hospital changed in simulator mode")
    p.add_argument("--rate", type=float, default=20.0, help="events per second")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of events")
    p.add_argument("--connect-concurrency", type=int, default=200, help="per process")
    p.add_argument(
        "--settle",
        type=float,
        default=10.0,
        help="simulator mode: seconds to let ingestion catch up after the last change",
    )
    p.add_argument(
        "--storm-percent",
        type=float,
        default=0.0,
        help="drop this share of clients at once, mid-run, and resume them",
    )
    p.add_argument("--storm-at", type=float, default=0.5, help="when, as a share of the run")
    p.add_argument("--max-p99-ms", type=float)
    p.add_argument("--max-lost", type=int)
    p.add_argument("--max-duplicates", type=int, default=0)
    p.add_argument("--max-connect-failures", type=int, default=0)
    p.add_argument("--json", type=Path, help="write the report here too")
    p.add_argument(
        "--targets",
        action="store_true",
        help="run every target scenario of docs/performance.md in turn and check each "
        "(needs 10,000 tokens in --tokens and --staff-token); other scenario options are ignored",
    )
    p.add_argument(
        "--staff-token",
        type=Path,
        help="--targets: file with an ER staff token, for the reservation round trips",
    )
    p.add_argument(
        "--server-pids",
        type=lambda text: [int(pid) for pid in text.split(",") if pid],
        default=[],
        help="comma-separated ids of server processes on this machine: report their CPU too",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    options = parser().parse_args(argv)
    if options.targets:
        from realtime.loadtest_targets import run_targets

        return run_targets(options)
    report = run(options)
    text = json.dumps(report, indent=2)
    print(text)
    if options.json:
        options.json.write_text(text)
    problems = _failed_thresholds(report, options)
    for problem in problems:
        _progress(f"THRESHOLD MISSED: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
