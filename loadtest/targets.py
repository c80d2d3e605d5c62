"""``weer-loadtest --targets``: every fan-out target in one run against a deployment.

Phases, one after another, each with its own clients (the figures of docs/performance.md):

1. **hold**: 10,000 clients on ``loadtest.hold`` connect; the server's memory per connection
   is the growth of its processes' resident memory (from the deployment's ``/metrics``)
   divided by the connections added; then 20 events, one a second, each timed until the last
   of the 10,000 has it.
2. **connect**: 10,000 clients connect and subscribe to the region stream ``beds.11`` (서울,
   its real snapshot), as tablets starting at once do; then **beds.all**: 20 clients subscribe
   to the whole country, for the bytes one subscription costs on the wire. Both ask for
   compressed snapshots as the pages do (``--snapshots``).
3. **sustained**: 1,000 clients on ``loadtest.sustained``, 101 events a second for 30 s
   (101,000 deliveries a second: the target is 100,000).
4. **storm**: 10,000 clients on ``loadtest.storm``, 5 events a second for 20 s; half are
   dropped at once mid-run and resume with ``since``.
5. **reservations**: with 1,000 clients on ``beds.all``, 200 reservation round trips between a
   crew (the first token) and the ER of ``--staff-token``: request → ER screen and decision →
   crew.

Phases 1, 3 and 4 need exact rates, so they publish ``loadtest.tick`` events directly (``--drive
publish``), each to a ``loadtest.<name>`` stream of its own that only load tests use: the
deployment's tablets never see them. Phase 4 publishes nothing itself (its bed-hold changes are
the real workflow's), so its crowd listens where tablets do.

Memory is read on a server that has not held more connections before: run this first after
the server starts, or the growth is understated (freed memory is reused, not returned).
"""

import argparse
import asyncio
import json
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from loadtest.report import progress
from loadtest.reservations import background_clients, measure
from loadtest.run import run

HOLD_STREAM = "loadtest.hold"
SUSTAINED_STREAM = "loadtest.sustained"
STORM_STREAM = "loadtest.storm"
WARM_UP_CLIENTS = 50
HOLD_CLIENTS = 10_000
CONNECT_STREAM = "beds.11"
COUNTRY_STREAM = "beds.all"
COUNTRY_CLIENTS = 20
BETWEEN_PHASES_SECONDS = 5.0  # let the server finish closing the last phase's sockets
REPORT_SECONDS = 2.5  # each server process reports its figures once a second
_METRIC = re.compile(
    r"^(weer_ws_connections|weer_ws_connections_peak|weer_process_resident_memory_bytes)"
    r"\{(.*)\} (\S+)$"
)


@dataclass
class Target:
    figure: str
    goal: str
    measured: str
    met: bool


def run_targets(options: argparse.Namespace) -> int:
    """Run every phase (module docstring), print the report as JSON and a verdict per target;
    0 when every target is met, else 1. Raises ``SystemExit`` without ``--staff-token``."""
    if options.staff_token is None:
        raise SystemExit("--targets needs --staff-token (a token of an ER staff user)")
    phases: dict[str, Any] = {}

    def phase(name: str, stream: str, **overrides: Any) -> argparse.Namespace:
        progress(f"phase {name}: {dict(stream=stream, **overrides)}")
        settings = {**vars(options), "storm_percent": 0.0, **overrides}
        return argparse.Namespace(**{**settings, "drive": "publish", "stream": stream})

    def connect_only(name: str, stream: str, clients: int) -> dict[str, Any]:
        """Clients connect and subscribe to a real stream; nothing is published."""
        progress(f"phase {name}: {clients} clients on {stream}")
        settings = {**vars(options), "storm_percent": 0.0, "clients": clients, "rate": 1}
        settings.update(drive="simulator", stream=stream, duration=0, settle=0)
        return run(argparse.Namespace(**settings))

    run(phase("warm-up", HOLD_STREAM, clients=WARM_UP_CLIENTS, rate=1, duration=1))
    time.sleep(REPORT_SECONDS)
    metrics_token = (
        options.metrics_token_file.read_text().strip() if options.metrics_token_file else ""
    )
    before = server_memory(options.url, metrics_token)

    def memory_at_connected() -> dict[str, Any]:
        time.sleep(REPORT_SECONDS)
        after = server_memory(options.url, metrics_token)
        added = after["connections"] - before["connections"]
        # Memory that earlier sockets used is reused, not returned: growth only tells the
        # cost of a socket on a server that has not held more than the warm-up's before.
        fresh = before["peak_connections"] <= WARM_UP_CLIENTS
        return {
            "before": before,
            "after": after,
            "server_was_fresh": fresh,
            "bytes_per_connection": round((after["rss_bytes"] - before["rss_bytes"]) / added)
            if added > 0 and fresh
            else None,
        }

    phases["hold"] = run(
        phase("hold", HOLD_STREAM, clients=HOLD_CLIENTS, rate=1, duration=20),
        on_connected=memory_at_connected,
    )
    time.sleep(BETWEEN_PHASES_SECONDS)
    phases["connect"] = connect_only("connect", CONNECT_STREAM, HOLD_CLIENTS)
    time.sleep(BETWEEN_PHASES_SECONDS)
    phases["country"] = connect_only("beds.all", COUNTRY_STREAM, COUNTRY_CLIENTS)
    time.sleep(BETWEEN_PHASES_SECONDS)
    phases["sustained"] = run(
        phase("sustained", SUSTAINED_STREAM, clients=1000, rate=101, duration=30)
    )
    time.sleep(BETWEEN_PHASES_SECONDS)
    phases["storm"] = run(
        phase(
            "storm",
            STORM_STREAM,
            clients=10_000,
            rate=5,
            duration=20,
            storm_percent=50,
            storm_at=0.5,
        )
    )
    time.sleep(BETWEEN_PHASES_SECONDS)
    progress("phase reservations: 200 round trips, 1,000 clients on beds.all")
    phases["reservations"] = _reservations(options)

    targets = _verdicts(phases)
    report = {"targets": [asdict(t) for t in targets], "phases": phases}
    text = json.dumps(report, indent=2)
    print(text)
    if options.json:
        options.json.write_text(text)
    width = max(len(t.figure) for t in targets)
    for t in targets:
        verdict = "met" if t.met else "MISSED"
        progress(f"{t.figure:<{width}}  {verdict:<6}  {t.measured}  (target: {t.goal})")
    return 0 if all(t.met for t in targets) else 1


def _reservations(options: argparse.Namespace) -> dict[str, Any]:
    tokens = Path(options.tokens).read_text().split()
    staff_token = options.staff_token.read_text().split()[0]
    me = httpx.get(
        f"{options.url}/api/auth/me", headers={"Authorization": f"Bearer {staff_token}"}
    ).json()
    args = argparse.Namespace(
        url=options.url.rstrip("/"),
        crew_token=tokens[0],
        staff_token=staff_token,
        hpid=me["hospital"],
        rounds=200,
    )
    with background_clients(args.url, tokens[1:1001]):
        return asyncio.run(measure(args))


def server_memory(url: str, metrics_token: str) -> dict[str, Any]:
    """Open sockets and resident memory, summed over the deployment's server processes (its
    /metrics, read with ``metrics_token``)."""
    headers = {"Authorization": f"Bearer {metrics_token}"}
    response = httpx.get(f"{url.rstrip('/')}/metrics", headers=headers, timeout=10)
    text = response.raise_for_status().text
    totals = dict.fromkeys(("weer_ws_connections", "weer_ws_connections_peak"), 0.0)
    totals["weer_process_resident_memory_bytes"] = 0.0
    processes = set()
    for line in text.splitlines():
        match = _METRIC.match(line)
        if match is None:
            continue
        name, labels, value = match.groups()
        processes.add(labels.split('process="', 1)[1].split('"', 1)[0])
        totals[name] += float(value)
    return {
        "connections": int(totals["weer_ws_connections"]),
        "peak_connections": int(totals["weer_ws_connections_peak"]),
        "rss_bytes": int(totals["weer_process_resident_memory_bytes"]),
        "processes": len(processes),
    }


def _intact(phase: dict[str, Any]) -> bool:
    """Every client of the phase got every event once: none lost, none twice."""
    return bool(phase["lost"] == 0 and phase["duplicates"] == 0)


def _verdicts(phases: dict[str, Any]) -> list[Target]:
    """Each target of issue 15 (docs/performance.md § Summary) against what the phases saw."""
    hold, sustained, storm = phases["hold"], phases["sustained"], phases["storm"]
    connect, country = phases["connect"], phases["country"]
    memory = hold["at_connected"]["bytes_per_connection"]
    resumed = storm["reconnect_storm"]
    country_bytes = country["bytes_per_subscription"]["max"]
    reservations = phases["reservations"]
    to_screen = reservations["request_to_er_screen_ms"]["p99"]
    to_crew = reservations["decision_to_crew_ms"]["p99"]
    return [
        Target(
            f"10,000 authenticated clients connected, on {CONNECT_STREAM} with its snapshot",
            "<= 5 s, 0 failures",
            f"{connect['connected']:,} in {connect['connect_seconds']} s, "
            f"{connect['connect_failures']} failures",
            connect["connected"] == HOLD_CLIENTS
            and connect["connect_seconds"] <= 5
            and connect["connect_failures"] == 0,
        ),
        Target(
            f"bytes on the wire to subscribe to {COUNTRY_STREAM}",
            "<= 100 KB (subscribed + snapshot)",
            f"{country_bytes / 1000:.1f} KB ({country['snapshots']} snapshots)"
            if country_bytes is not None
            else "no snapshot received",
            country_bytes is not None
            and country_bytes <= 100_000
            and country["connect_failures"] == 0,
        ),
        Target(
            "server memory per idle subscribed socket",
            "<= 14 KB",
            f"{memory / 1000:.1f} KB"
            if memory is not None
            else "not measured: the server held more sockets before; restart it and run again",
            memory is not None and memory <= 14_000,
        ),
        Target(
            "reconnect storm, half of 10,000 dropped at once",
            "all resumed within 5 s, 0 lost, 0 duplicated",
            f"{resumed['resumed']:,} resumed in {resumed['all_resumed_within_s']} s, "
            f"{resumed['resume_failures']} failed, {storm['lost']} lost, "
            f"{storm['duplicates']} duplicated",
            resumed["resume_failures"] == 0
            and resumed["all_resumed_within_s"] <= 5
            and _intact(storm),
        ),
        Target(
            "one event to 10,000 connected clients",
            "last client has it within 150 ms (p99 over 20 events)",
            f"p99 {hold['completion_ms']['p99']} ms over {hold['events']} events, "
            f"{hold['lost']} lost, {hold['duplicates']} duplicated",
            hold["connected"] == HOLD_CLIENTS
            and hold["completion_ms"]["p99"] <= 150
            and _intact(hold),
        ),
        Target(
            "sustained fan-out, 1,000 clients on one stream",
            ">= 100,000 deliveries/s, p99 <= 100 ms, 0 lost, 0 duplicated",
            f"{sustained['deliveries_per_s']:,.0f}/s, p99 {sustained['latency_ms']['p99']} ms, "
            f"{sustained['lost']} lost, {sustained['duplicates']} duplicated",
            sustained["deliveries_per_s"] >= 100_000
            and sustained["latency_ms"]["p99"] <= 100
            and _intact(sustained),
        ),
        Target(
            "request -> ER screen, decision -> crew (1,000 clients connected)",
            "p99 <= 100 ms",
            f"p99 {to_screen} ms and {to_crew} ms",
            to_screen <= 100 and to_crew <= 100,
        ),
    ]
