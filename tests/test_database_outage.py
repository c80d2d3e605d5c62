"""MariaDB goes down under a running service (a private mariadbd the test kills and starts
again): the API answers 503 in its usual error shape, open sockets keep their live events, new
ones are told to try again later, and ingestion keeps the last good state and catches up."""

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import pytest
from django.conf import settings

from ingestion.simulator import SimulatorServer, running_simulator
from ingestion.tasks import poll_region_beds
from realtime.publishing import publish_event
from tests.conftest import (
    DaphneServer,
    read_metrics,
    run_celery_worker,
    run_server,
    server_env,
)
from tests.mariadb import MariaDBServer, migrate, run_mariadb
from tests.polling import wait_for
from tests.ws import WsClient

SEOUL = "11"


@pytest.fixture(scope="module")
def private_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDBServer]:
    with run_mariadb(tmp_path_factory.mktemp("mariadb")) as db:
        migrate(db.url)
        yield db


@pytest.fixture
def db(private_db: MariaDBServer) -> Iterator[MariaDBServer]:
    """The private database, running; a test may stop it and finds it running again after."""
    if not private_db.running:
        private_db.start()
    yield private_db
    if not private_db.running:
        private_db.start()


@pytest.fixture(scope="module")
def tokens(private_db: MariaDBServer, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Access tokens of active ambulance users of the private database."""
    out = tmp_path_factory.mktemp("tokens") / "tokens.txt"
    subprocess.run(
        [
            sys.executable,
            "manage.py",
            "issue_tokens",
            "--role",
            "ambulance",
            "--count",
            "4",
            "--out",
            str(out),
        ],
        env={**server_env(), "DATABASE_URL": private_db.url},
        cwd=settings.BASE_DIR,
        check=True,
        capture_output=True,
    )
    return out.read_text().split()


@pytest.fixture(scope="module")
def server(
    private_db: MariaDBServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DaphneServer]:
    """weer-serve (one process) on the private database and the test Redis."""
    with run_server(
        tmp_path_factory.mktemp("server"),
        "-m",
        "realtime.serving.serve",
        "--processes",
        "1",
        env={"DATABASE_URL": private_db.url},
    ) as server:
        yield server


def _http(
    server: DaphneServer, path: str, body: object = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    data = None if body is None else json.dumps(body).encode()
    request = Request(f"{server.http_url}{path}", data=data, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except HTTPError as error:
        return error.code, dict(error.headers), error.read()


@pytest.mark.asyncio
async def test_the_api_answers_503_in_its_error_shape_while_the_database_is_down(
    server: DaphneServer, db: MariaDBServer, tokens: list[str]
) -> None:
    """Reads, log-in and bearer-authenticated calls answer 503 ``unavailable`` (JSON, with
    Retry-After), pages a plain 503, readiness 503; all recover when the database returns."""
    bearer = {"Authorization": f"Bearer {tokens[0]}"}
    assert (await asyncio.to_thread(_http, server, "/api/auth/me", None, bearer))[0] == 200
    db.stop()
    calls: list[tuple[str, object, dict[str, str]]] = [
        ("/api/hospitals?lat=37.5665&lon=126.9780", None, {}),
        ("/api/hospitals/A1100015", None, {}),
        ("/api/auth/me", None, bearer),
        ("/api/reservations", None, bearer),
        ("/api/auth/token", {"username": "someone", "password": "secret-enough"}, {}),
    ]
    for path, body, headers in calls:
        status, answer_headers, content = await asyncio.to_thread(
            _http, server, path, body, headers
        )
        assert status == 503, (path, status, content[:300])
        assert answer_headers["Content-Type"].startswith("application/json"), path
        assert int(answer_headers["Retry-After"]) > 0, path
        error = json.loads(content)["error"]
        assert (error["code"], error["fields"]) == ("unavailable", {}), path
        assert error["message"], path
    status, answer_headers, content = await asyncio.to_thread(_http, server, "/signup/")
    assert status == 503, (status, content[:300])
    assert "Retry-After" in answer_headers
    status, _, content = await asyncio.to_thread(_http, server, "/readyz")
    assert status == 503
    assert json.loads(content)["database"].startswith("error")

    db.start()
    await asyncio.to_thread(
        wait_for,
        lambda: _http(server, "/api/auth/me", None, bearer)[0] == 200,
        "the API to answer again",
    )
    status, _, content = await asyncio.to_thread(_http, server, "/readyz")
    assert status == 200, content


def _subscriptions(server: DaphneServer) -> dict[str, float]:
    """``weer_ws_subscriptions`` by stream, summed over the processes, from /metrics."""
    text = read_metrics(server.http_url)
    counts: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("weer_ws_subscriptions{"):
            stream = line.split('stream="', 1)[1].split('"', 1)[0]
            counts[stream] = counts.get(stream, 0) + float(line.rsplit(" ", 1)[1])
    return counts


async def _publish(stream: str, kind: str, data: dict[str, Any]) -> int:
    return await asyncio.to_thread(publish_event, stream, kind, data)


@pytest.mark.asyncio
async def test_open_sockets_keep_their_events_and_new_ones_are_told_to_try_again_later(
    server: DaphneServer, db: MariaDBServer, tokens: list[str]
) -> None:
    """With the database down an open socket still gets every live event; a new socket gets
    ``unavailable`` and close code 4503 (try again later); a subscribe that needs a snapshot
    gets ``unavailable`` for that stream and leaves no subscription behind; all of it works
    again afterwards."""
    async with WsClient.connect(server, tokens[0]) as tablet:
        await tablet.subscribe("beds.all")
        assert (await tablet.next())["type"] == "snapshot"
        await tablet.subscribe("loadtest.outage")
        assert (await tablet.next())["type"] == "snapshot"
        db.stop()

        seq = await _publish("beds.all", "beds.changed", {"hpid": "X1", "changes": {}})
        tick = await _publish("loadtest.outage", "loadtest.tick", {"n": 1})
        assert [(m["stream"], m["seq"]) for m in await tablet.events(2)] == [
            ("beds.all", seq),
            ("loadtest.outage", tick),
        ]

        async with WsClient.connect(server, tokens[1]) as newcomer:
            refusal = await newcomer.next()
            assert (refusal["type"], refusal["code"]) == ("error", "unavailable"), refusal
            assert await newcomer.close_code() == 4503

        await tablet.send({"type": "subscribe", "streams": [f"beds.{SEOUL}"]})
        answers = [await tablet.next(), await tablet.next()]
        assert answers[0] == {
            "type": "subscribed",
            "stream": f"beds.{SEOUL}",
            "seq": answers[0]["seq"],
        }
        assert (answers[1]["type"], answers[1]["code"], answers[1]["stream"]) == (
            "error",
            "unavailable",
            f"beds.{SEOUL}",
        )
        await tablet.assert_nothing_pending()
        await asyncio.to_thread(
            wait_for,
            lambda: (
                _subscriptions(server).get("beds.all") == 1
                and f"beds.{SEOUL}" not in _subscriptions(server)
            ),
            "the failed subscription to leave /metrics",
        )
        seq = await _publish("beds.all", "beds.changed", {"hpid": "X2", "changes": {}})
        assert (await tablet.next())["seq"] == seq

        db.start()
        await asyncio.to_thread(
            wait_for,
            lambda: _http(server, "/readyz")[0] == 200,
            "the server to reach the database again",
        )
        await tablet.subscribe(f"beds.{SEOUL}")  # not "already_subscribed": it was left
        assert (await tablet.next())["type"] == "snapshot"
        async with WsClient.connect(server, tokens[1]) as newcomer:
            await newcomer.subscribe("beds.all")
            assert (await newcomer.next())["type"] == "snapshot"


# -- ingestion ------------------------------------------------------------------------------

SEOUL_STATE = """
    SELECT h.hpid, s.er_general, s.hvidate FROM domain_erstatus s
    JOIN domain_hospital h ON h.id = s.hospital_id WHERE h.region_code = %s ORDER BY h.hpid
"""


def _seoul(db: MariaDBServer) -> dict[str, tuple[object, ...]]:
    """Seoul's stored statuses, hpid → (er_general, hvidate)."""
    connection = db.connect()
    try:
        cursor = connection.cursor()
        cursor.execute(SEOUL_STATE, [SEOUL])
        return {row[0]: tuple(row[1:]) for row in cursor.fetchall()}
    finally:
        connection.close()


def _hospital_ids(db: MariaDBServer) -> dict[str, int]:
    connection = db.connect()
    try:
        cursor = connection.cursor()
        cursor.execute("SELECT hpid, id FROM domain_hospital")
        return {hpid: pk for hpid, pk in cursor.fetchall()}
    finally:
        connection.close()


def _control(simulator: SimulatorServer, path: str, body: object) -> None:
    request = Request(
        f"{simulator.base_url}/_control/{path}",
        data=json.dumps(body).encode(),
        method="PUT",
        headers={"Content-Type": "application/json"},
    )
    urlopen(request, timeout=5).close()


def _lock_waits(db: MariaDBServer) -> int:
    connection = db.connect()
    try:
        cursor = connection.cursor()
        cursor.execute(
            "SELECT COUNT(*) FROM information_schema.innodb_trx WHERE trx_state = 'LOCK WAIT'"
        )
        return int(cursor.fetchone()[0])
    finally:
        connection.close()


def test_ingestion_keeps_the_last_good_state_and_catches_up_when_the_database_returns(
    db: MariaDBServer, tmp_path: Path
) -> None:
    """A region's apply cut off by the database's crash halfway (one hospital created, the
    next write waiting) leaves nothing of itself once the database is back; the poll is
    retried on its own and then stores the whole new state."""
    with (
        running_simulator(walk_interval=0, service_key="e2e-key") as (simulator, _),
        run_celery_worker(tmp_path, simulator, DATABASE_URL=db.url),
    ):
        poll_region_beds.delay(SEOUL)
        wait_for(lambda: len(_seoul(db)) > 40, "the first load of Seoul")
        good = _seoul(db)
        missing, changed = sorted(good)[:2]  # one hospital to be created again, one changed
        ids = _hospital_ids(db)
        old = good[changed][0]
        new = -4 if old != -4 else -5
        _control(simulator, f"hospitals/{changed}", {"values": {"hvec": new}})
        with db.connect() as setup:
            setup.cursor().execute(
                "DELETE FROM domain_erstatus WHERE hospital_id = %s", [ids[missing]]
            )
            setup.cursor().execute("DELETE FROM domain_hospital WHERE id = %s", [ids[missing]])
        before = _seoul(db)
        assert missing not in before

        # Another transaction holds the changed hospital's status row: the apply creates the
        # missing hospital, then waits for that row, and the database dies under it.
        holder = db.connect()
        holder.autocommit(False)
        holder.cursor().execute(
            "SELECT hospital_id FROM domain_erstatus WHERE hospital_id = %s FOR UPDATE",
            [ids[changed]],
        )
        poll_region_beds.delay(SEOUL)
        wait_for(lambda: _lock_waits(db) > 0, "the apply to wait for the held row")
        assert missing in _hospital_ids_uncommitted(db)  # the apply is halfway through
        db.stop()
        worker_log = tmp_path / "worker.log"
        wait_for(lambda: b"OperationalError" in worker_log.read_bytes(), "the poll to fail")

        db.start()
        after = _seoul(db)  # the old state, or (if the retry was quick) all of the new one
        assert after == before or (missing in after and after[changed][0] == new), after
        wait_for(
            lambda: _seoul(db).get(changed, (None,))[0] == new and missing in _seoul(db),
            "the poll to be retried and store the new state",
            timeout=40,
        )
        final = _seoul(db)
        assert set(final) == set(good)
        assert {h: v for h, v in final.items() if h != changed} == {
            h: v for h, v in good.items() if h != changed
        }


def _hospital_ids_uncommitted(db: MariaDBServer) -> set[str]:
    """Every hospital's hpid, including those that transactions under way have created."""
    connection = db.connect()
    try:
        cursor = connection.cursor()
        cursor.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ UNCOMMITTED")
        cursor.execute("SELECT hpid FROM domain_hospital")
        return {row[0] for row in cursor.fetchall()}
    finally:
        connection.close()


def test_a_frozen_database_fails_requests_in_seconds_instead_of_holding_them(
    db: MariaDBServer, tokens: list[str], tmp_path: Path
) -> None:
    """A database that stops answering without closing connections (frozen: a partition, a
    stalled server) fails each API call within its read timeout, as a 503, not a hung
    request; calls succeed again once it answers."""
    bearer = {"Authorization": f"Bearer {tokens[0]}"}
    timeouts = {"DATABASE_READ_TIMEOUT_SECONDS": "2", "DATABASE_CONNECT_TIMEOUT_SECONDS": "2"}
    with run_server(
        tmp_path,
        "-m",
        "realtime.serving.serve",
        "--processes",
        "1",
        env={"DATABASE_URL": db.url, **timeouts},
    ) as frozen_server:
        assert _http(frozen_server, "/api/auth/me", None, bearer)[0] == 200
        db.pause()
        try:
            status, headers, content = _http(frozen_server, "/api/auth/me", None, bearer)
            assert status == 503, content[:300]
            assert json.loads(content)["error"]["code"] == "unavailable"
            assert "Retry-After" in headers
        finally:
            db.resume()
        wait_for(
            lambda: _http(frozen_server, "/api/auth/me", None, bearer)[0] == 200,
            "the API answering again",
        )
