"""One load run: start the client processes, drive events at a fixed rate, merge the report.

Clients are spread over ``--processes`` spawned processes (``loadtest.worker``), each opening
its share of the tokens' sockets and subscribing them to ``--stream``. Once all are connected
the controller drives ``rate × duration`` events (optionally dropping a share of the clients
mid-run: the reconnect storm) and then asks every process for what its clients saw. The
report: connect time and failures, delivery latency from each event's ``ts``, per-event
completion (until the last client has it), deliveries per second, lost events (seq gaps,
including events never received), duplicates, the storm's resume figures, the resumes after
server processes restarted (1012: a rolling deploy during the run) and the CPU used.
"""

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from loadtest.client import StreamClient
from loadtest.drivers import Driver, PublishDriver, SimulatorDriver
from loadtest.report import distribution, percentile, progress
from loadtest.worker import worker_process


@dataclass
class _Crowd:
    """The client processes of a run, connected, and what connecting them took."""

    pipes: list[Connection]
    workers: list[BaseProcess]
    connected: int
    failures: int
    connect_seconds: float

    def ask(self, command: tuple[Any, ...]) -> list[Any]:
        """Send ``command`` to every process, then wait for each one's answer."""
        for pipe in self.pipes:
            pipe.send(command)
        return [pipe.recv() for pipe in self.pipes]


@dataclass
class _Driven:
    """What the controller drove: how many events, over how long, and their seqs."""

    count: int
    seconds: float = 0.0
    last_seq: int = 0
    seqs: set[int] = field(default_factory=set)  # our own events (a deployment has others)
    storm: dict[str, Any] = field(default_factory=dict)


def run(
    options: argparse.Namespace, on_connected: Callable[[], dict[str, Any]] | None = None
) -> dict[str, Any]:
    """One load run with ``options`` (as ``loadtest.cli.parse_options`` gives them);
    ``on_connected`` is called once every client is connected, before any event, and what it
    returns goes into the report under ``at_connected``. Raises ``SystemExit`` when the token
    file has fewer tokens than ``options.clients``."""
    tokens = [t for t in Path(options.tokens).read_text().split() if t][: options.clients]
    if len(tokens) < options.clients:
        raise SystemExit(f"{options.tokens} has {len(tokens)} tokens; {options.clients} needed")
    ws_url = options.url.replace("http", "ws", 1).rstrip("/") + "/ws/"
    crowd = _start_crowd(options, tokens, ws_url)
    at_connected = on_connected() if on_connected else None
    driver: Driver = (
        PublishDriver(options.stream)
        if options.drive == "publish"
        else SimulatorDriver(options.simulator_url, options.hpid)
    )
    server_cpu_at_start = _cpu_seconds(options.server_pids)
    driven = _drive(options, driver, crowd)
    if options.drive == "simulator":  # seqs come from the deployment's ingestion: ask for the head
        time.sleep(options.settle)
        driven.last_seq = asyncio.run(_stream_head(ws_url, tokens[0], options.stream))
    reports = [answer[1] for answer in crowd.ask(("finish", driven.last_seq))]
    server_cpu = _cpu_seconds(options.server_pids) - server_cpu_at_start
    for worker in crowd.workers:
        worker.join(30)
    report = _report(options, reports, crowd, driven, server_cpu)
    if at_connected is not None:
        report["at_connected"] = at_connected
    return report


def _start_crowd(options: argparse.Namespace, tokens: list[str], ws_url: str) -> _Crowd:
    worker_args = {
        "ws_url": ws_url,
        "stream": options.stream,
        "connect_concurrency": options.connect_concurrency,
        "snapshots": None if options.snapshots == "json" else options.snapshots,
    }
    processes = max(1, min(options.processes, len(tokens)))
    context = multiprocessing.get_context("spawn")
    pipes: list[Connection] = []
    workers: list[BaseProcess] = []
    started = time.monotonic()
    for i in range(processes):
        parent, child = context.Pipe()
        worker = context.Process(
            target=worker_process, args=(worker_args, tokens[i::processes], child), daemon=True
        )
        worker.start()
        pipes.append(parent)
        workers.append(worker)
    ready = [pipe.recv() for pipe in pipes]
    crowd = _Crowd(
        pipes,
        workers,
        connected=sum(r[1] for r in ready),
        failures=sum(r[2] for r in ready),
        connect_seconds=time.monotonic() - started,
    )
    progress(
        f"connected {crowd.connected}/{len(tokens)} clients in {crowd.connect_seconds:.1f} s "
        f"({crowd.failures} failures) over {processes} processes"
    )
    return crowd


def _drive(options: argparse.Namespace, driver: Driver, crowd: _Crowd) -> _Driven:
    """Send ``rate × duration`` events on schedule (a late one is sent at once, not skipped),
    with the reconnect storm at its share of the run."""
    driven = _Driven(count=int(options.rate * options.duration))
    storm_at = int(driven.count * options.storm_at) if options.storm_percent else -1
    t0 = time.monotonic()
    for n in range(driven.count):
        if n == storm_at:
            driven.storm = _storm(crowd, options.storm_percent)
        seq = driver.send()
        if seq:
            driven.seqs.add(seq)
            driven.last_seq = seq
        if n and n % max(1, int(options.rate)) == 0:
            progress(f"{n}/{driven.count} events sent")
        delay = t0 + (n + 1) / options.rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    driven.seconds = time.monotonic() - t0
    return driven


def _storm(crowd: _Crowd, percent: float) -> dict[str, Any]:
    results = crowd.ask(("storm", percent / 100))
    storm = {
        "dropped_percent": percent,
        "resumed": sum(r[1] for r in results),
        "resume_failures": sum(r[2] for r in results),
        "all_resumed_within_s": round(max(r[3] for r in results), 2),
    }
    progress(f"reconnect storm: {storm}")
    return storm


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
    crowd: _Crowd,
    driven: _Driven,
    server_cpu: float,
) -> dict[str, Any]:
    latencies = sorted(x for r in reports for x in r["latencies_ms"])
    slowest: dict[int, float] = {}
    for r in reports:
        for seq, latency in r["completion"].items():
            slowest[int(seq)] = max(slowest.get(int(seq), -math.inf), latency)
    # Completion is per event this run drove; a live deployment's own events (ingestion) count
    # in latency, deliveries, lost and duplicates but are not "one event sent to N clients".
    completion = sorted(v for seq, v in slowest.items() if not driven.seqs or seq in driven.seqs)
    deliveries = sum(r["deliveries"] for r in reports)
    subscribe_bytes = sorted(n for r in reports for n in r["subscribe_bytes"])
    closed: dict[str, int] = {}
    for r in reports:
        for code, n in r["closed_by_server"].items():
            closed[code] = closed.get(code, 0) + n
    restart_ms = sorted(1000 * x for r in reports for x in r["restart_seconds"])
    return {
        "clients": options.clients,
        "processes": options.processes,
        "stream": options.stream,
        "drive": options.drive,
        "connected": crowd.connected,
        "connect_failures": crowd.failures,
        "connect_seconds": round(crowd.connect_seconds, 2),
        "snapshots": options.snapshots,
        "bytes_per_subscription": {  # payload bytes of subscribed + snapshot
            "subscriptions": len(subscribe_bytes),
            "p50": subscribe_bytes[len(subscribe_bytes) // 2] if subscribe_bytes else None,
            "max": subscribe_bytes[-1] if subscribe_bytes else None,
        },
        "events": driven.count,
        "rate_per_s": options.rate,
        "deliveries": deliveries,
        "expected_deliveries": crowd.connected * driven.count
        if options.drive == "publish"
        else None,
        "deliveries_per_s": round(deliveries / max(driven.seconds, 1e-9), 1),
        "lost": sum(r["lost"] for r in reports),
        "duplicates": sum(r["duplicates"] for r in reports),
        "latency_ms": distribution(latencies),
        "completion_ms": {
            "p50": percentile(completion, 0.5),
            "p99": percentile(completion, 0.99),
            "max": round(completion[-1], 1) if completion else math.nan,
        },
        "closed_by_server": closed,
        "reconnect_storm": driven.storm or None,
        # Closes with 1012 (a server process draining) and the resumes after them, each timed
        # from the close to its `subscribed` (the random delay before the reconnect included).
        "service_restarts": {
            "closed": sum(r["restarts"] for r in reports),
            "resumed": sum(r["restart_resumed"] for r in reports),
            "failures": sum(r["restart_failures"] for r in reports),
            "resume_ms": distribution(restart_ms),
        },
        "cpu_seconds": {  # while events were sent (CPU seconds, not wall time)
            "clients": round(sum(r["cpu_seconds"] for r in reports), 2),
            "server": round(server_cpu, 2) if options.server_pids else None,
            "wall": round(driven.seconds, 2),
        },
    }


async def _stream_head(ws_url: str, token: str, stream: str) -> int:
    """The stream's current seq, from the ``subscribed`` answer of a client of its own."""
    socket = await StreamClient.open(f"{ws_url}?token={token}")
    try:
        socket.send_text(json.dumps({"type": "subscribe", "streams": [stream]}))
        return int(json.loads(await socket.recv())["seq"])
    finally:
        await socket.close()
