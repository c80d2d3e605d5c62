"""Fault run: N websocket clients on ``beds.all`` and ``hospital.<hpid>`` streams, with bed
changes and reservations flowing, through a Redis restart, a Redis flush, a killed server
process, Redis unreachable and MariaDB down; then every client's state is compared with the
database's. Issue #12's "done when"; method and figures in docs/realtime.md § Fault run.

    .venv/bin/python benchmarks/fault_run.py --clients 2000 --outage-seconds 30 --json r.json

It builds a world of its own on loopback (nothing shared is touched): a private MariaDB
(``tests.mariadb``), migrated and seeded (``seed_demo`` plus synthetic ER staff and crews), a
private redis-server (``tests.conftest.RedisServer``), the upstream simulator, ``weer-serve
--processes 2``, a Celery worker and beat. Every process logs to the run directory
(``--run-dir``, default ``var/fault-run/<time>``) and is stopped at the end, also on Ctrl-C or
failure. Clients follow the protocol exactly (``benchmarks/fault_clients.py``); a driver makes
reservations over HTTP (crews request, ER staff acknowledge, approve or reject, crews complete
or cancel), retrying what faults refuse.

After each fault the run samples the database's state (through the selectors snapshots use)
once a second until every client is live and holds it: that time is the fault's convergence.
At the end it stops the changes, waits for quiescence and compares once more. Exit 0 only if
no client saw a duplicate and none ends different from the database.

A hospital's ``hvidate`` may move on upstream with its values unchanged; that updates the
database without an event (protocol §5), so a client may hold an older ``hvidate`` with the
same values. Such a record is counted apart (``hvidate_behind``), not as a mismatch; any other
difference is one.
"""

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from benchmarks.fault_clients import (  # noqa: E402
    BedRecord,
    FollowingClient,
    Shared,
    bed_record,
    sum_counts,
)
from benchmarks.fault_world import (  # noqa: E402
    LogSays,
    ManagedProcess,
    World,
    children_of,
    cpu_seconds,
    free_port,
    port_answers,
    python,
    world,
)
from loadtest.reservations import CONDITION  # noqa: E402
from tests.mariadb import MariaDBServer, migrate, run_mariadb  # noqa: E402

Json = dict[str, Any]
SIMULATOR_KEY = "fault-run-key"


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)


# -- the world --------------------------------------------------------------------------------


def service_env(args: argparse.Namespace, database_url: str, redis_url: str) -> dict[str, str]:
    """Settings of every process of the run (and of this one's Django)."""
    return {
        **{k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE",)},
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "DEBUG": "false",
        "SECRET_KEY": args.secret,
        "JWT_SIGNING_KEY": args.secret,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "INFO",
        "UPSTREAM_BASE_URL": f"http://127.0.0.1:{args.simulator_port}/B552657/ErmctInfoInqireService",
        "UPSTREAM_SERVICE_KEY": SIMULATOR_KEY,
        "UPSTREAM_TIMEOUT_SECONDS": "2",
        "UPSTREAM_DAILY_CALL_BUDGET": "100000000",
        "INGEST_BEDS_SECONDS": str(args.poll_seconds),
    }


def configure_django(env: dict[str, str]) -> None:
    """This process's Django on the private database (users, tokens, the reference state)."""
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "project.settings"
    import django

    django.setup()


@dataclass
class Cast:
    """Who takes part: tokens per stream, the driver's crews and ER staff."""

    hpids: list[str]
    beds_tokens: list[str]
    staff_tokens: dict[str, list[str]]
    crew_tokens: list[str]


def make_cast(args: argparse.Namespace) -> Cast:
    """Synthetic users through the domain service (active, no password) and long-lived access
    tokens, as ``manage.py issue_tokens`` makes them."""
    from datetime import timedelta

    from domain.models import ERStatus, Role
    from domain.services.tokens import access_token_issue
    from domain.services.users import synthetic_users_ensure

    rng = random.Random(args.seed)
    hospital_clients = args.clients - args.clients // 2
    beds_clients = args.clients // 2
    all_hpids = sorted(ERStatus.objects.values_list("hospital__hpid", flat=True))
    count = max(1, min(args.hospitals, hospital_clients, len(all_hpids)))
    hpids = sorted(rng.sample(all_hpids, count))
    lifetime = timedelta(hours=12)
    staff: dict[str, list[str]] = {}
    for i, hpid in enumerate(hpids):
        share = hospital_clients // count + (1 if i < hospital_clients % count else 0)
        users = synthetic_users_ensure(role=Role.HOSPITAL, count=share, hospital_hpid=hpid)
        staff[hpid] = [access_token_issue(user=u, lifetime=lifetime) for u in users]
    crews = synthetic_users_ensure(role=Role.AMBULANCE, count=beds_clients + args.crews)
    tokens = [access_token_issue(user=u, lifetime=lifetime) for u in crews]
    return Cast(hpids, tokens[:beds_clients], staff, tokens[beds_clients:])


def start_services(
    args: argparse.Namespace, processes: World, env: dict[str, str]
) -> dict[str, ManagedProcess]:
    """Simulator, Celery worker and beat, and weer-serve: started, and ready."""
    simulator = processes.add(
        "simulator",
        python(
            "-m",
            "ingestion.simulator",
            "--port",
            str(args.simulator_port),
            "--change-fraction",
            str(args.change_fraction),
            "--service-key",
            SIMULATOR_KEY,
        ),
        env,
    )
    simulator.start()
    simulator.wait_until(lambda: port_answers(args.simulator_port), "answering")
    worker = processes.add(
        "worker",
        python("-m", "celery", "-A", "project", "worker", "-l", "INFO", "--concurrency", "2"),
        env,
    )
    ready = LogSays(worker, b"ready.")
    worker.start()
    worker.wait_until(ready, "ready")
    beat = processes.add(
        "beat",
        python(
            "-m",
            "celery",
            "-A",
            "project",
            "beat",
            "-l",
            "INFO",
            "--schedule",
            str(args.run_dir / "celerybeat-schedule"),
        ),
        env,
    )
    beat.start()
    web = processes.add(
        "web",
        python(
            "-m",
            "realtime.serving.serve",
            "-b",
            "127.0.0.1",
            "-p",
            str(args.web_port),
            "--processes",
            "2",
        ),
        env,
    )
    web.start()
    web.wait_until(lambda: port_answers(args.web_port), "answering")
    return {"simulator": simulator, "worker": worker, "beat": beat, "web": web}


# -- the database's state ---------------------------------------------------------------------


@dataclass
class Reference:
    beds: dict[str, BedRecord]
    reservations: dict[str, list[Json]]


def read_reference(hpids: list[str]) -> Reference:
    """The database's current state through the selectors snapshots are made of (on a thread
    of its own: Django's ORM is synchronous)."""
    from django.db import close_old_connections, connection

    from domain.selectors.hospitals import er_status_snapshot
    from domain.selectors.reservations import reservations_open_snapshot
    from realtime.publishing import encode_json

    close_old_connections()
    try:
        beds = json.loads(encode_json(er_status_snapshot(region_code=None)))
        reservations = {
            hpid: json.loads(encode_json(reservations_open_snapshot(hpid=hpid))) for hpid in hpids
        }
    except Exception:
        connection.close()
        raise
    return Reference({h["hpid"]: bed_record(h) for h in beds}, reservations)


def outbox_pending() -> int | None:
    """Rows waiting in the transactional outbox, or None where there is none (main today)."""
    from django.db import connection

    with connection.cursor() as cursor:
        if "domain_outboxevent" not in connection.introspection.table_names(cursor):
            return None
        cursor.execute("SELECT COUNT(*) FROM domain_outboxevent")
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def _bed_verdict(mine: BedRecord | None, theirs: BedRecord) -> str:
    if mine is theirs or mine == theirs:
        return "equal"
    if (
        mine is not None
        and (mine.beds, mine.held, mine.stale) == (theirs.beds, theirs.held, theirs.stale)
        and (mine.hvidate or "") < (theirs.hvidate or "")
    ):
        return "hvidate_behind"  # a newer input time with the same values: no event (§5)
    return "differs"


@dataclass(frozen=True, slots=True)
class ClientView:
    """A client's state at one instant (the records themselves are immutable or replaced,
    never changed, so shallow copies suffice)."""

    index: int
    stream: str
    beds: bool
    live: bool
    phase: str
    bed_state: dict[str, BedRecord]
    reservations: dict[int, Json]

    @classmethod
    def of(cls, client: FollowingClient) -> "ClientView":
        return cls(
            client.index,
            client.stream,
            client.beds,
            client.live,
            client.phase,
            dict(client.bed_state) if client.beds else {},
            {} if client.beds else dict(client.reservations),
        )


class Judge:
    """Compares clients with the database: ``equal``, ``hvidate_behind`` (see the module
    docstring), ``differs`` or ``not_live``.

    The database is read just before and just after the clients are looked at; a change
    committed in between may or may not have reached a client yet, so each hospital's record
    (each ER's list of open reservations) may equal either reading. Records are shared among
    clients, so each distinct record is compared once."""

    def __init__(self, before: Reference, after: Reference) -> None:
        self.references = (before, after) if before != after else (after,)
        self.reference = after
        self._verdicts: dict[tuple[str, int], str] = {}

    def verdict(self, client: ClientView) -> str:
        if not client.live:
            return "not_live"
        if not client.beds:
            hpid = client.stream.split(".", 1)[1]
            mine = sorted(client.reservations.values(), key=lambda r: (r["created_at"], r["id"]))
            equal = any(mine == ref.reservations[hpid] for ref in self.references)
            return "equal" if equal else "differs"
        state = client.bed_state
        if len(state) != len(self.reference.beds):
            return "differs"
        result = "equal"
        for hpid in self.reference.beds:
            record = state.get(hpid)
            key = (hpid, id(record))
            verdict = self._verdicts.get(key)
            if verdict is None:
                verdict = self._verdicts[key] = self._bed_verdict(hpid, record)
            if verdict == "differs":
                return "differs"
            if verdict == "hvidate_behind":
                result = verdict
        return result

    def _bed_verdict(self, hpid: str, record: BedRecord | None) -> str:
        verdicts = {_bed_verdict(record, ref.beds[hpid]) for ref in self.references}
        for verdict in ("equal", "hvidate_behind"):
            if verdict in verdicts:
                return verdict
        return "differs"

    def differences(self, client: ClientView, limit: int = 5) -> list[Json]:
        """What differs, for the report: a few hospitals or reservations."""
        if not client.beds:
            hpid = client.stream.split(".", 1)[1]
            theirs = {r["id"]: r for r in self.reference.reservations[hpid]}
            ids = sorted(set(theirs) | set(client.reservations))
            return [
                {
                    "reservation": rid,
                    "client": _brief(client.reservations.get(rid)),
                    "database": _brief(theirs.get(rid)),
                }
                for rid in ids
                if client.reservations.get(rid) != theirs.get(rid)
            ][:limit]
        out = []
        for hpid in sorted(set(self.reference.beds) | set(client.bed_state)):
            record, reference = client.bed_state.get(hpid), self.reference.beds.get(hpid)
            if reference is None or self._bed_verdict(hpid, record) == "differs":
                out.append(
                    {"hpid": hpid, "client": _record(record), "database": _record(reference)}
                )
        return out[:limit]


def _brief(reservation: Json | None) -> Json | None:
    if reservation is None:
        return None
    keys = ("status", "acknowledged_at", "decided_at", "closed_at", "reminded_at")
    return {key: reservation.get(key) for key in keys}


def _record(record: BedRecord | None) -> Json | None:
    if record is None:
        return None
    return {"hvidate": record.hvidate, "stale": record.stale, "held": record.held}


# -- the reservation driver -------------------------------------------------------------------


@dataclass
class Tracked:
    hpid: str
    crew: int
    status: str = "pending"
    acknowledged: bool = False


class ReservationDriver:
    """A few HTTP requests a second, as crews and ER staff make them. Faults answer 5xx or
    refuse the connection: counted, and the step is tried again later (a request with the same
    ``Idempotency-Key``, so a retry never makes a second one)."""

    def __init__(self, base_url: str, cast: Cast, rate: float, seed: int) -> None:
        self.base_url = base_url
        self.cast = cast
        self.rate = rate
        self.rng = random.Random(seed)
        self.open: dict[int, Tracked] = {}
        # Requests to send again with their Idempotency-Key: (due, key, crew, body, attempts).
        self.retries: list[tuple[float, str, int, Json, int]] = []
        self.counts: Counter[str] = Counter()

    async def run(self) -> None:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=5) as http:
            while True:
                await asyncio.sleep(1 / self.rate)
                try:
                    await self._step(http)
                except httpx.HTTPError as exc:
                    self.counts[f"connection_error:{type(exc).__name__}"] += 1

    def _headers(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def _count(self, what: str, response: httpx.Response) -> None:
        self.counts[f"{what}:{response.status_code}"] += 1

    async def _step(self, http: httpx.AsyncClient) -> None:
        due = [r for r in self.retries if r[0] <= time.monotonic()]
        if due:
            self.retries.remove(due[0])
            _, key, crew, body, attempts = due[0]
            self.counts["request_retried"] += 1
            await self._request(http, key, crew, body, attempts + 1)
        elif len(self.open) < 30 and (not self.open or self.rng.random() < 0.35):
            hpids = self.rng.sample(
                self.cast.hpids, min(len(self.cast.hpids), 1 + (self.rng.random() < 0.3))
            )
            body = {"hospitals": hpids, "condition": CONDITION}
            crew = self.rng.randrange(len(self.cast.crew_tokens))
            await self._request(http, str(uuid.uuid4()), crew, body, 1)
        else:
            rid = self.rng.choice(list(self.open))
            await self._advance(http, rid, self.open[rid])

    async def _request(
        self, http: httpx.AsyncClient, key: str, crew: int, body: Json, attempts: int
    ) -> None:
        headers = {**self._headers(self.cast.crew_tokens[crew]), "Idempotency-Key": key}
        try:
            response = await http.post("/api/reservations", json=body, headers=headers)
        except httpx.HTTPError:
            self._retry_later(key, crew, body, attempts)
            raise
        self._count("request", response)
        if response.status_code == 201:
            for made in response.json():
                self.open[made["id"]] = Tracked(made["hpid"], crew, made["status"])
        elif response.status_code >= 500:
            self._retry_later(key, crew, body, attempts)

    def _retry_later(self, key: str, crew: int, body: Json, attempts: int) -> None:
        """Again in 1, 2, 4 … 15 s (as a tablet's queue would), for at most 5 minutes."""
        if attempts < 30:
            due = time.monotonic() + min(2 ** (attempts - 1), 15)
            self.retries.append((due, key, crew, body, attempts))
        else:
            self.counts["request_given_up"] += 1

    async def _advance(self, http: httpx.AsyncClient, rid: int, tracked: Tracked) -> None:
        staff = self._headers(self.cast.staff_tokens[tracked.hpid][0])
        crew = self._headers(self.cast.crew_tokens[tracked.crew])
        if tracked.status == "pending" and not tracked.acknowledged:
            what, url, headers, body = (
                "acknowledge",
                f"/api/reservations/{rid}/acknowledge",
                staff,
                None,
            )
        elif tracked.status == "pending":
            if self.rng.random() < 0.6:
                what, url, headers, body = (
                    "approve",
                    f"/api/reservations/{rid}/approve",
                    staff,
                    None,
                )
            else:
                what, url, headers = "reject", f"/api/reservations/{rid}/reject", staff
                body = {"reason": "no_bed"}
        elif self.rng.random() < 0.8:
            what, url, headers, body = "complete", f"/api/reservations/{rid}/complete", crew, None
        else:
            what, url, headers, body = "cancel", f"/api/reservations/{rid}/cancel", crew, None
        response = await http.post(url, json=body, headers=headers)
        self._count(what, response)
        if response.status_code == 200:
            self._track(rid, response.json())
        elif response.status_code in (404, 409):  # moved on meanwhile (expired, withdrawn)
            detail = await http.get(f"/api/reservations/{rid}", headers=crew)
            self._count("refresh", detail)
            if detail.status_code == 200:
                self._track(rid, detail.json())

    def _track(self, rid: int, reservation: Json) -> None:
        if reservation["status"] in ("pending", "approved"):
            tracked = self.open[rid]
            tracked.status = reservation["status"]
            tracked.acknowledged = reservation["acknowledged_at"] is not None
        else:
            self.open.pop(rid, None)


# -- faults -----------------------------------------------------------------------------------


@dataclass
class FaultContext:
    args: argparse.Namespace
    redis: Any  # tests.conftest.RedisServer
    database: MariaDBServer
    web: ManagedProcess
    notes: list[str] = field(default_factory=list)


async def fault_redis_restart(ctx: FaultContext) -> None:
    """Redis killed and started again empty (a crash without persistence)."""
    await asyncio.to_thread(ctx.redis.stop)
    await asyncio.to_thread(ctx.redis.start)


async def fault_redis_flush(ctx: FaultContext) -> None:
    """FLUSHALL: every sequence, history and Celery queue gone at once."""
    import redis

    client = redis.Redis.from_url(ctx.redis.url)
    await asyncio.to_thread(client.flushall)
    client.close()


async def fault_server_kill(ctx: FaultContext) -> None:
    """SIGKILL one daphne child of weer-serve. weer-serve on main then stops the other child
    and exits (so that a supervisor restarts it); playing the supervisor, the run starts it
    again on the same port as soon as it has exited, or after 15 s stops what is left of it
    (SIGTERM, then SIGKILL) and starts it again. If weer-serve instead keeps running with all
    its children (it restarts a dead one itself), nothing more is done."""
    process = ctx.web.process
    children = children_of(ctx.web.pid)
    if process is None or not children:
        raise RuntimeError("weer-serve has no children")
    os.kill(children[0], signal.SIGKILL)
    killed = time.monotonic()
    ctx.notes.append(f"SIGKILLed daphne {children[0]} of weer-serve {process.pid}")
    with contextlib.suppress(subprocess.TimeoutExpired):
        await asyncio.to_thread(process.wait, 15)
    if ctx.web.running:
        if len(children_of(process.pid)) >= len(children):
            ctx.notes.append("weer-serve kept running and replaced the child itself")
            return
        ctx.notes.append(
            f"weer-serve still running 15 s later with {children_of(process.pid)} left "
            "(its other daphne had not stopped on SIGTERM): stopped (SIGTERM, SIGKILL after 5 s)"
        )
    else:
        ctx.notes.append(
            f"weer-serve exited ({process.returncode}) {time.monotonic() - killed:.1f} s "
            "after the kill"
        )
    ctx.web.stop(timeout=5)
    ctx.web.start()
    port = ctx.args.web_port
    await asyncio.to_thread(ctx.web.wait_until, lambda: port_answers(port), "answering")
    ctx.notes.append(f"weer-serve started again, answering {time.monotonic() - killed:.1f} s after")


async def fault_redis_outage(ctx: FaultContext) -> None:
    """Redis unreachable for --outage-seconds: shut down saving its data (connections refused
    at once), or with --redis-outage freeze SIGSTOPped (connections hang); then back."""
    if ctx.args.redis_outage == "freeze":
        ctx.redis.process.send_signal(signal.SIGSTOP)
        try:
            await asyncio.sleep(ctx.args.outage_seconds)
        finally:
            ctx.redis.process.send_signal(signal.SIGCONT)
        return
    await asyncio.to_thread(ctx.redis.stop, save=True)
    await asyncio.sleep(ctx.args.outage_seconds)
    await asyncio.to_thread(ctx.redis.start)


async def fault_database_outage(ctx: FaultContext) -> None:
    """MariaDB down for --outage-seconds: killed (crash: connections refused at once), or with
    --db-outage freeze SIGSTOPped; then back (InnoDB recovery keeps what was committed)."""
    if ctx.args.db_outage == "freeze":
        ctx.database.pause()
        try:
            await asyncio.sleep(ctx.args.outage_seconds)
        finally:
            ctx.database.resume()
        return
    await asyncio.to_thread(ctx.database.stop)
    await asyncio.sleep(ctx.args.outage_seconds)
    await asyncio.to_thread(ctx.database.start)


FAULTS: dict[str, Callable[[FaultContext], Awaitable[None]]] = {
    "redis_restart": fault_redis_restart,
    "redis_flush": fault_redis_flush,
    "server_kill": fault_server_kill,
    "redis_outage": fault_redis_outage,
    "database_outage": fault_database_outage,
}


# -- the run ----------------------------------------------------------------------------------


class Run:
    def __init__(
        self,
        args: argparse.Namespace,
        cast: Cast,
        ctx: FaultContext,
        services: dict[str, ManagedProcess],
    ) -> None:
        self.args = args
        self.services = services
        self.driver_task: asyncio.Task[None] | None = None
        self.cast = cast
        self.ctx = ctx
        self.shared = Shared(args.seed)
        self.clients: list[FollowingClient] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.driver = ReservationDriver(
            f"http://127.0.0.1:{args.web_port}", cast, args.reservation_rate, args.seed
        )
        self.results: Json = {"faults": []}
        self.last_views: list[ClientView] = []
        self.last_judge: Judge | None = None
        self.differing: set[tuple[int, str]] = set()  # (client, hpid or reservation id)

    async def connect_clients(self) -> None:
        url = f"ws://127.0.0.1:{self.args.web_port}/ws/"
        plan = [(token, "beds.all") for token in self.cast.beds_tokens]
        for hpid in self.cast.hpids:
            plan += [(token, f"hospital.{hpid}") for token in self.cast.staff_tokens[hpid]]
        random.Random(self.args.seed).shuffle(plan)
        for index, (token, stream) in enumerate(plan):
            client = FollowingClient(index, url, token, stream, self.shared)
            self.clients.append(client)
            self.tasks.append(asyncio.create_task(client.run()))
            await asyncio.sleep(self.args.connect_spread / max(1, len(plan)))
        self.tasks.append(asyncio.create_task(self._watch_silence()))
        waiting = [asyncio.create_task(c.ever_live.wait()) for c in self.clients]
        done, pending = await asyncio.wait(waiting, timeout=180)
        for task in pending:
            task.cancel()
        log(f"clients live: {len(done)} of {len(self.clients)}")

    async def _watch_silence(self) -> None:
        while True:
            await asyncio.sleep(1)
            now = time.monotonic()
            for client in self.clients:
                client.check_silence(now)

    async def judge(self) -> tuple[Counter[str], Judge | None, str | None]:
        """Every client's verdict against the database, read just before and just after the
        clients' states are taken (all at one instant: nothing else runs meanwhile)."""
        try:
            before = await asyncio.to_thread(read_reference, self.cast.hpids)
            views = [ClientView.of(c) for c in self.clients]
            after = await asyncio.to_thread(read_reference, self.cast.hpids)
        except Exception as exc:  # a database that is not back yet
            return Counter(), None, f"{type(exc).__name__}: {exc}"
        judge = Judge(before, after)
        self.last_views, self.last_judge = views, judge
        return Counter(judge.verdict(v) for v in views), judge, None

    async def converge(self, started: float, recovered: float) -> Json:
        """Sample once a second from ``recovered``: converged once every client is live and
        holds the database's state and stays so for --settle-seconds; the figure is when that
        streak began. Not converged if no such streak began within --converge-timeout."""
        deadline = recovered + self.args.converge_timeout
        streak: float | None = None
        samples = flaps = 0
        last: Counter[str] = Counter()
        error: str | None = None
        while True:
            verdicts, _, error = await self.judge()
            now = time.monotonic()
            samples += 1
            if error is None:
                last = verdicts
            if error is None and verdicts["differs"] + verdicts["not_live"] == 0:
                streak = now if streak is None else streak
                if now - streak >= self.args.settle_seconds:
                    break
            else:
                flaps += streak is not None
                streak = None
                if now > deadline:
                    break
            await asyncio.sleep(1)
        repairs = [c.last_repair_at for c in self.clients if c.last_repair_at > started]
        return {
            "converged": streak is not None,
            "after_recovery_s": None if streak is None else round(max(0.0, streak - recovered), 1),
            "last_repair_after_recovery_s": round(max(repairs) - recovered, 1) if repairs else None,
            "clients_repaired": len(repairs),
            "samples": samples,
            "flaps": flaps,
            "verdicts": dict(last),
            "error": error,
        }

    async def fault(self, name: str) -> None:
        before_clients = sum_counts(self.clients).as_json()
        before_driver = Counter(self.driver.counts)
        self.ctx.notes = []
        log(f"fault {name}: start")
        started = time.monotonic()
        await FAULTS[name](self.ctx)
        recovered = time.monotonic()
        log(f"fault {name}: recovered after {recovered - started:.1f} s; converging")
        convergence = await self.converge(started, recovered)
        convergence["new_mismatched_clients"] = self._new_mismatches()
        log(f"fault {name}: {convergence}")
        after = sum_counts(self.clients).as_json()
        driver = Counter(self.driver.counts)
        driver.subtract(before_driver)
        self.results["faults"].append(
            {
                "fault": name,
                "took_s": round(recovered - started, 1),
                "window_s": round(time.monotonic() - started, 1),
                **convergence,
                "notes": self.ctx.notes,
                "clients": _delta(after, before_clients),
                "driver": {k: v for k, v in driver.items() if v},
            }
        )

    def _new_mismatches(self) -> int:
        """Clients that differ from the database in something that did not differ at the end
        of the previous fault's window: what this fault broke (differences carry over)."""
        judge = self.last_judge
        if judge is None:
            return 0
        differing = {
            (view.index, str(item.get("hpid", item.get("reservation"))))
            for view in self.last_views
            if judge.verdict(view) == "differs"
            for item in judge.differences(view, limit=10_000)
        }
        new = {client for client, _ in differing - self.differing}
        self.differing = differing
        return len(new)

    async def quiesce(self) -> Json:
        """Stop every source of events, then wait until none arrives for --quiet-seconds."""
        simulator = f"http://127.0.0.1:{self.args.simulator_port}/_control/walk"
        async with httpx.AsyncClient(timeout=5) as http:
            await http.post(simulator, json={"interval": 0})
        await asyncio.sleep(2 * self.args.poll_seconds + 2)  # the last changes get polled
        if self.driver_task is not None:
            self.driver_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.driver_task
        self.services["beat"].stop()  # no more polls or reservation sweeps
        started = time.monotonic()
        while True:
            await asyncio.sleep(1)
            quiet = time.monotonic() - self.shared.last_event_at
            pending = await asyncio.to_thread(_outbox_pending_safe)
            if quiet >= self.args.quiet_seconds and not pending:
                break
            if time.monotonic() - started > 120:
                log("quiescence: still not quiet after 120 s; comparing anyway")
                break
        return {"waited_s": round(time.monotonic() - started, 1), "outbox_pending": pending}

    async def main(self) -> None:
        await self.connect_clients()
        self.driver_task = asyncio.create_task(self.driver.run())
        now = time.monotonic()
        baseline = await self.converge(now, now)
        log(f"baseline: {baseline}")
        self.results["baseline"] = baseline
        for name in self.args.faults:
            await self.fault(name)
        self.results["quiescence"] = await self.quiesce()
        self.results["cpu_s"] = {
            name: round(cpu_seconds(p.pid), 1) for name, p in self.services.items() if p.running
        }
        verdicts, judge, error = await self.judge()
        if judge is None:
            raise RuntimeError(f"the final reference could not be read: {error}")
        self.results["final"] = {
            "verdicts": dict(verdicts),
            "mismatches": verdicts["differs"] + verdicts["not_live"],
            "examples": [
                {
                    "client": v.index,
                    "stream": v.stream,
                    "phase": v.phase,
                    "differs": judge.differences(v),
                }
                for v in self.last_views
                if judge.verdict(v) in ("differs", "not_live")
            ][:10],
        }
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


def _outbox_pending_safe() -> int | None:
    try:
        return outbox_pending()
    except Exception:  # counted as pending until the database answers
        return -1


def _delta(after: Json, before: Json) -> Json:
    out: Json = {}
    for key, value in after.items():
        if isinstance(value, dict):
            diff = {k: v - before[key].get(k, 0) for k, v in value.items()}
            if any(diff.values()):
                out[key] = {k: v for k, v in diff.items() if v}
        elif value - before[key]:
            out[key] = value - before[key]
    return out


# -- the report -------------------------------------------------------------------------------


def summary(run: Run) -> Json:
    totals = sum_counts(run.clients).as_json()
    streams = Counter("beds.all" if c.beds else "hospital.*" for c in run.clients)
    final = run.results["final"]
    return {
        "clients": len(run.clients),
        "streams": dict(streams),
        "hospitals": len(run.cast.hpids),
        "totals": totals,
        "driver": dict(run.driver.counts),
        "duplicates": totals["duplicates"],
        "mismatches": final["mismatches"],
        "hvidate_behind": final["verdicts"].get("hvidate_behind", 0),
    }


def _reasons(counts: Json) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "-"


def print_table(report: Json) -> None:
    s = report["summary"]
    t = s["totals"]
    rows = [
        ("clients", f"{s['clients']} ({_reasons(s['streams'])}; {s['hospitals']} hospitals)"),
        ("events applied", f"{t['events']:,}"),
        ("duplicates (must be 0)", str(t["duplicates"])),
        ("gaps seen / repaired by snapshot", f"{t['gaps']} / {t['gaps_repaired']}"),
        ("resumes by replay", f"{t['resumes_replay']:,}"),
        ("resumes by snapshot", _reasons(t["resumes_snapshot"])),
        ("snapshots (all, by reason)", _reasons(t["snapshots"])),
        ("reconnects / failed connects", f"{t['reconnects']:,} / {t['connect_failures']:,}"),
        ("unavailable errors", f"{t['unavailable']:,}"),
        ("seq reused (must be 0)", str(t["seq_reused"])),
        ("protocol anomalies", _reasons(t["anomalies"])),
        ("close codes", _reasons({str(k): v for k, v in t["close_codes"].items()})),
        ("final mismatches (must be 0)", str(s["mismatches"])),
        ("hvidate behind, same values", str(s["hvidate_behind"])),
    ]
    width = max(len(name) for name, _ in rows)
    print()
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print()
    print(
        "| fault | took s | converged after recovery s | last repair after recovery s "
        "| newly mismatched clients | reconnects | replays | snapshots by reason | unavailable "
        "| driver errors |"
    )
    print("|---|--:|--:|--:|--:|--:|--:|---|--:|---|")
    timeout = report["options"]["converge_timeout"]
    for fault in [{"fault": "baseline", "took_s": 0, **report["baseline"]}, *report["faults"]]:
        c = fault.get("clients", {})
        converged = (
            fault["after_recovery_s"]
            if fault["converged"]
            else f"**not within {timeout} s**: {_reasons(fault['verdicts'])}"
        )
        errors = {
            k: v for k, v in fault.get("driver", {}).items() if not k.endswith((":200", ":201"))
        }
        print(
            f"| {fault['fault']} | {fault['took_s']} | {converged} "
            f"| {fault['last_repair_after_recovery_s']} "
            f"| {fault.get('new_mismatched_clients', 0)} | {c.get('reconnects', 0)} "
            f"| {c.get('resumes_replay', 0)} | {_reasons(c.get('snapshots', {}))} "
            f"| {c.get('unavailable', 0)} | {_reasons(errors)} |"
        )
    print()


# -- the command line -------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200, help="websocket clients (≥ 2)")
    parser.add_argument("--hospitals", type=int, default=20, help="hospital.* streams followed")
    parser.add_argument("--outage-seconds", type=float, default=30)
    parser.add_argument("--settle-seconds", type=float, default=15)
    parser.add_argument("--converge-timeout", type=float, default=90)
    parser.add_argument("--quiet-seconds", type=float, default=5)
    parser.add_argument("--poll-seconds", type=int, default=5, help="INGEST_BEDS_SECONDS")
    parser.add_argument("--change-fraction", type=float, default=0.02, help="simulator's")
    parser.add_argument("--reservation-rate", type=float, default=3, help="HTTP calls per s")
    parser.add_argument("--crews", type=int, default=4)
    parser.add_argument("--connect-spread", type=float, default=10, help="s to connect all")
    parser.add_argument("--redis-outage", choices=("stop", "freeze"), default="stop")
    parser.add_argument("--db-outage", choices=("crash", "freeze"), default="crash")
    parser.add_argument(
        "--faults",
        default=",".join(FAULTS),
        type=lambda text: [name for name in text.split(",") if name],
        help=f"comma-separated, in order (default: all: {','.join(FAULTS)})",
    )
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--run-dir", type=Path)
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    if args.clients < 2:
        parser.error("--clients must be at least 2")
    unknown = set(args.faults) - set(FAULTS)
    if unknown:
        parser.error(f"unknown faults: {sorted(unknown)}")
    args.run_dir = (
        args.run_dir or ROOT / "var" / "fault-run" / time.strftime("%Y%m%d-%H%M%S")
    ).resolve()
    args.run_dir.mkdir(parents=True, exist_ok=True)
    args.secret = secrets.token_urlsafe(48)
    args.simulator_port = free_port()
    args.web_port = free_port()
    return args


@contextlib.contextmanager
def interrupts_as_keyboard_interrupt() -> Iterator[None]:
    """SIGTERM (and SIGHUP) end the run the way Ctrl-C does: through every ``finally``."""

    def interrupt(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def seed_database(database: MariaDBServer, env: dict[str, str], run_dir: Path) -> None:
    log("migrating and seeding the private MariaDB")
    migrate(database.url, env)
    with (run_dir / "seed.log").open("wb") as out:
        subprocess.run(
            [sys.executable, "manage.py", "seed_demo", "--force"],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=True,
            timeout=600,
        )


def execute(args: argparse.Namespace) -> Json:
    with run_mariadb(args.run_dir / "mariadb") as database:
        placeholder = service_env(args, database.url, "redis://127.0.0.1:1/0")
        configure_django(placeholder)  # Django settings are read once: Redis is set per process
        from tests.conftest import run_redis  # needs Django configured

        seed_database(database, placeholder, args.run_dir)
        cast = make_cast(args)
        log(f"cast: {len(cast.beds_tokens)} tablets, {len(cast.hpids)} ERs, {args.crews} crews")
        (args.run_dir / "redis").mkdir(exist_ok=True)
        with run_redis(args.run_dir / "redis") as redis_server, world(args.run_dir) as processes:
            env = service_env(args, database.url, redis_server.url)
            log(f"starting services (logs in {args.run_dir})")
            services = start_services(args, processes, env)
            warmup = 3 * args.poll_seconds + 5
            log(f"warming up {warmup} s (the first polls apply the simulator's state)")
            time.sleep(warmup)
            ctx = FaultContext(args, redis_server, database, services["web"])
            run = Run(args, cast, ctx, services)
            started = time.monotonic()
            cpu = time.process_time()
            try:
                asyncio.run(run.main())
            finally:
                log(f"run took {time.monotonic() - started:.0f} s")
            report = {
                "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                "machine": {"nproc": os.cpu_count(), "load_average": os.getloadavg()},
                "options": {
                    k: (str(v) if isinstance(v, Path) else v)
                    for k, v in vars(args).items()
                    if k != "secret"
                },
                "baseline": run.results["baseline"],
                "faults": run.results["faults"],
                "quiescence": run.results["quiescence"],
                "service_cpu_s": run.results["cpu_s"],
                "final": run.results["final"],
                "client_process_cpu_s": round(time.process_time() - cpu, 1),
                "web_starts": services["web"].starts,
            }
            report["summary"] = summary(run)
            return report


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    with interrupts_as_keyboard_interrupt():
        try:
            report = execute(args)
        except KeyboardInterrupt:
            log("interrupted: everything the run started is stopped")
            return 130
    print_table(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
        log(f"figures written to {args.json}")
    passed = report["summary"]["duplicates"] == 0 and report["summary"]["mismatches"] == 0
    log("PASS" if passed else "FAIL: duplicates or mismatches (see above)")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
