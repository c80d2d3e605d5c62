"""The monitoring that ships with WeER (monitoring/): the Prometheus alert rules and the Grafana
dashboard load and are well formed, every metric they query exists on a real server's /metrics
(with a real worker's ingestion figures), and the figures added for them count what they say."""

import asyncio
import contextlib
import json
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import promql_parser
import pytest
import redis
import yaml
from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families

from domain.models import Role
from domain.services.reservations import reservation_request
from domain.services.tokens import access_token_issue
from ingestion.simulator import SimulatorServer, running_simulator
from ingestion.tasks import poll_region_beds
from realtime.metrics import PROCESS_KEY_PREFIX, ProcessMetrics, RedisMetricsCollector
from tests.conftest import (
    DaphneServer,
    _free_port,
    metrics_headers,
    read_metrics,
    run_celery_worker,
    run_redis,
    run_server,
)
from tests.factories import HospitalFactory, UserFactory
from tests.mariadb import migrate, run_mariadb
from tests.polling import wait_for
from tests.prometheus_tools import prometheus_tool
from tests.redis_cluster import run_redis_cluster
from tests.test_reservations import CONDITION
from tests.ws import WsClient

ROOT = Path(settings.BASE_DIR)
RULES = ROOT / "monitoring/prometheus/weer-alerts.yaml"
RULE_TESTS = ROOT / "monitoring/prometheus/weer-alerts.test.yaml"
DASHBOARD = ROOT / "monitoring/grafana/weer-dashboard.json"
RUNBOOK = ROOT / "docs/operations.md"
# The runbook (docs/operations.md) links to these by name: exactly these, each once.
ALERTS = {
    "WeerIngestionStalled",
    "WeerERScreenMissing",
    "WeerSlowConsumerSpike",
    "WeerRedisFailover",
    "WeerRedisDown",
    "WeerDatabaseDown",
    "WeerUpstreamQuotaLow",
    "WeerReconnectStorm",
    "WeerPodStuckDraining",
}
SEVERITIES = {"critical", "high", "medium", "low"}  # the runbook's incident levels
# What the dashboard must show (issue 16): a word of each panel's title, lower-cased.
REQUIRED_PANELS = [
    "connections by role",
    "connections by pod",
    "deliveries per second",
    "publish → delivery latency",
    "slow-consumer closes",
    "resumes and snapshots",
    "ingestion age per region",
    "stale regions",
    "er screens missing",
    "redis and database up",
]
# Grafana's own variables, as a query sent to Prometheus has them.
# Which /metrics sources read what: with one of the two out of reach, the others still read.
SOURCES_UP_WITHOUT = {
    "database": {"ingestion": 1, "ingestion_regions": 0, "outbox": 0},
    "redis": {"realtime": 0, "ingestion": 0, "presence": 0, "ingestion_regions": 1, "outbox": 1},
}
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "3h"}


@dataclass(frozen=True)
class Exposition:
    """A real /metrics page: its text and the name of every sample it can hold."""

    text: str
    names: frozenset[str]
    process: str = ""  # the process label of the server read (others of the run report too)


def _sample_names(text: str) -> frozenset[str]:
    """Every series name the page's families hold or, when a family has no sample yet, would
    hold by its type (a counter's ``_total``, a histogram's ``_bucket``, ``_sum``, ``_count``)."""
    suffixes = {
        "counter": ("_total",),
        "gauge": ("",),
        "histogram": ("_bucket", "_sum", "_count"),
        "summary": ("", "_sum", "_count"),
        "info": ("_info",),
    }
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.update(sample.name for sample in family.samples)
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
    return frozenset(names)


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorServer]:
    with running_simulator(walk_interval=0, service_key="e2e-key") as (server, _):
        yield server


@pytest.fixture(scope="module")
def exposition_server(
    django_db_setup: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DaphneServer]:
    """A server of this module's own: its process's counters count only what these tests did
    (the run's other servers report to the same Redis, and show on every /metrics page)."""
    with run_server(
        tmp_path_factory.mktemp("exposition"),
        "-m",
        "realtime.serving.server",
        "project.asgi:application",
    ) as server:
        yield server


@pytest.fixture(scope="module")
def exposition(
    exposition_server: DaphneServer,
    simulator: SimulatorServer,
    django_db_blocker: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
) -> Exposition:
    """/metrics of a real server with a socket open (so its process reports), a hospital in
    alarm (a pending request, no ER screen) and a real worker's poll of Seoul done."""
    daphne_server = exposition_server
    process = f'process="{socket.gethostname()}:{daphne_server.process.pid}"'
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        hospital = HospitalFactory()
        crew = UserFactory(role=Role.AMBULANCE)
        reservation_request(crew=crew, condition=CONDITION, hpids=[hospital.hpid])
    with run_celery_worker(tmp_path_factory.mktemp("worker"), simulator):
        poll_region_beds.delay("11")

        async def read_with_a_socket_open() -> str:
            async with WsClient.connect(daphne_server, access_token_issue(user=crew)) as tablet:
                await tablet.subscribe("beds.11")
                return await asyncio.to_thread(
                    wait_for,
                    lambda: _ready(read_metrics(daphne_server.http_url), hospital.hpid, process),
                    "the poll, the process's report and the alarm on /metrics",
                    30,
                )

        text = asyncio.run(read_with_a_socket_open())
    return Exposition(text, _sample_names(text), process)


def _ready(text: str, hpid: str, process: str) -> str | None:
    wanted = (
        'weer_ingestion_region_last_success_timestamp_seconds{region="11"}',
        'weer_er_screen_alarm_pending_requests{hospital="',
        f'weer_ws_connects_total{{{process},role="ambulance"}}',  # this server's own report
    )
    return text if all(part in text for part in wanted) and hpid in text else None


def _rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def _dashboard() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return dashboard


def _panels() -> list[dict[str, Any]]:
    return [panel for panel in _dashboard()["panels"] if panel["type"] != "row"]


def _as_prometheus_gets_it(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def _metric_names(expr: str) -> set[str]:
    """The metric names ``expr`` selects, read by a PromQL parser (raises on bad PromQL)."""
    names: set[str] = set()

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            by_matcher = [m.value for m in node.matchers.matchers if m.name == "__name__"]
            names.update([node.name] if node.name else by_matcher)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def _rule_test_series() -> list[str]:
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    return [series["series"] for test in tests for series in test["input_series"]]


# -- the rules ---------------------------------------------------------------------------------


def test_promtool_checks_the_rules() -> None:
    ran = subprocess.run(
        [str(prometheus_tool("promtool")), "check", "rules", str(RULES)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in ran.stdout


def test_the_rules_fire_when_they_should_and_only_then() -> None:
    """promtool's unit tests of every alert (monitoring/prometheus/weer-alerts.test.yaml):
    each fires on its signs, once however many pods are scraped, with its labels and
    annotations rendered; and stays quiet on near misses."""
    ran = subprocess.run(
        [str(prometheus_tool("promtool")), "test", "rules", RULE_TESTS.name],
        cwd=RULE_TESTS.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    tested = {
        test["alertname"]
        for t in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for test in t["alert_rule_test"]
    }
    assert tested == ALERTS


def test_the_alerts_are_those_the_runbook_names_each_with_a_level_and_its_link() -> None:
    rules = _rules()
    names = [rule["alert"] for rule in rules]
    assert sorted(names) == sorted(ALERTS)
    for rule in rules:
        name = rule["alert"]
        assert rule["labels"]["severity"] in SEVERITIES, name
        assert rule["annotations"]["runbook_url"] == f"docs/operations.md#{name.lower()}"
        assert rule["annotations"]["summary"].strip(), name
        assert rule["annotations"]["description"].strip(), name
        assert _metric_names(rule["expr"]), name  # parses, and queries something


def test_the_runbook_has_a_section_for_each_alert() -> None:
    """Each ``runbook_url`` anchor exists in docs/operations.md, as a heading's GitHub anchor
    or an explicit id, and its table of alerts gives each the level of the rule's severity
    (checked once the runbook exists: another part of issue 16 writes it)."""
    if not RUNBOOK.exists():
        pytest.skip("docs/operations.md is not written yet")
    text = RUNBOOK.read_text()
    headings = {
        re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in text.splitlines()
        if line.startswith("#")
    }
    ids = set(re.findall(r"""(?:id|name)=["']([^"']+)["']""", text))
    missing = sorted(name for name in ALERTS if name.lower() not in headings | ids)
    assert not missing, f"docs/operations.md has no anchor for {missing}"
    # Its table of alerts names the level each starts at: the rule's severity.
    levels = dict(re.findall(r"^\| `(Weer\w+)` \| (\w+)", text, flags=re.MULTILINE))
    severities = {rule["alert"]: rule["labels"]["severity"] for rule in _rules()}
    assert {name: level.lower() for name, level in levels.items()} == severities


# -- the dashboard -----------------------------------------------------------------------------


def test_the_dashboard_loads_with_its_panels_and_a_data_source_variable() -> None:
    dashboard = _dashboard()
    assert dashboard["uid"]
    assert dashboard["title"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    panels = _panels()
    titles = [panel["title"].lower() for panel in panels]
    for required in REQUIRED_PANELS:
        assert any(required in title for title in titles), f"no panel for {required!r}"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels:
        where = panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, where
        grid = panel["gridPos"]
        assert grid["x"] >= 0, where
        assert grid["x"] + grid["w"] <= 24, where
        assert grid["h"] > 0, where
        assert panel["targets"], where
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), where
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"], where
            assert _metric_names(_as_prometheus_gets_it(target["expr"])), where


def test_the_dashboard_panels_do_not_overlap() -> None:
    taken: dict[tuple[int, int], str] = {}
    for panel in _dashboard()["panels"]:
        grid = panel["gridPos"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in taken, f"{panel['title']} overlaps {taken[(x, y)]}"
                taken[(x, y)] = panel["title"]


# -- against a real /metrics -------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_every_metric_queried_is_on_a_real_metrics_page(exposition: Exposition) -> None:
    """Every metric an alert, a panel or a rule test reads is one a real server exports (with
    a real worker's figures): none queries a name that does not exist, which would be silent."""
    queried: dict[str, set[str]] = {}
    for rule in _rules():
        queried[f"alert {rule['alert']}"] = _metric_names(rule["expr"])
    for panel in _panels():
        for target in panel["targets"]:
            names = _metric_names(_as_prometheus_gets_it(target["expr"]))
            queried.setdefault(f"panel {panel['title']!r}", set()).update(names)
    for series in _rule_test_series():
        queried.setdefault("the rules' unit tests", set()).update(_metric_names(series))
    unknown = {
        where: sorted(names - exposition.names)
        for where, names in queried.items()
        if names - exposition.names
    }
    assert not unknown, f"not on /metrics: {unknown}"


@pytest.mark.django_db(transaction=True)
def test_promtool_finds_nothing_to_lint_on_the_metrics_page(exposition: Exposition) -> None:
    ran = subprocess.run(
        [str(prometheus_tool("promtool")), "check", "metrics"],
        input=exposition.text,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr


def _value(text: str, name: str, *labels: str) -> float | None:
    """The value of the first sample of ``name`` whose labels include every one of
    ``labels`` (``'role="ambulance"'``), or None."""
    for line in text.splitlines():
        sample, _, value = line.rpartition(" ")
        if sample.split("{")[0] == name and all(label in sample for label in labels):
            return float(value)
    return None


@pytest.mark.django_db(transaction=True)
def test_the_figures_added_for_the_alerts_count_on_a_real_server(
    exposition: Exposition,
) -> None:
    """The tablet's connect, no drain, no pub/sub reconnect, when the process started, Redis
    and the database reached, the hospital in alarm with its one pending request."""
    text, process = exposition.text, exposition.process
    assert _value(text, "weer_ws_connects_total", process, 'role="ambulance"') == 1
    assert _value(text, "weer_process_draining", process) == 0
    assert _value(text, "weer_hub_pubsub_reconnects_total", process) == 0
    started = _value(text, "weer_process_start_time_seconds", process)
    assert started is not None
    assert time.time() - 3600 < started < time.time()
    assert _value(text, "weer_redis_up") == 1
    assert _value(text, "weer_redis_server_info", 'role="master"') == 1
    assert _value(text, "weer_database_up") == 1
    assert _value(text, "weer_er_screen_alarm_pending_requests", 'region="11"') == 1
    buckets = [
        line
        for line in text.splitlines()
        if "weer_ws_delivery_latency_seconds_bucket" in line and process in line
    ]
    assert len(buckets) == 12
    assert 'le="+Inf"' in buckets[-1]


def test_delivery_latency_is_counted_per_event_from_the_frames_publish_time() -> None:
    """``events_delivered`` puts a run's events in the bucket of the oldest one's age (from
    its ``ts``, Redis's clock at publishing); /metrics shows them as a cumulative histogram.
    A frame without a readable ``ts`` is not counted."""
    metrics = ProcessMetrics()
    now_ms = int(time.time() * 1000)
    metrics.events_delivered(
        b'{"type":"beds.changed","stream":"beds.11","seq":7,"ts":%d,"data":{}}' % (now_ms - 30), 3
    )
    metrics.events_delivered(
        b'{"type":"x","stream":"beds.11","seq":8,"ts":%d,"data":1}' % (now_ms - 2000), 1
    )
    metrics.events_delivered(b'{"type":"x","stream":"beds.11","seq":9,"data":1}', 5)
    metrics.events_delivered(b'{"type":"x","stream":"beds.11","seq":9,"ts":soon,"data":1}', 5)
    client = redis.Redis.from_url(settings.REDIS_URL)
    key = PROCESS_KEY_PREFIX + "monitoring-test:1"
    client.set(key, json.dumps(metrics.as_dict()), px=10_000)
    try:
        families = {f.name: f for f in RedisMetricsCollector(settings.REDIS_URL).collect()}
    finally:
        client.delete(key)
    samples = [
        s
        for s in families["weer_ws_delivery_latency_seconds"].samples
        if s.labels["process"] == "monitoring-test:1"
    ]
    buckets = {s.labels["le"]: s.value for s in samples if s.name.endswith("_bucket")}
    assert (buckets["0.025"], buckets["0.05"], buckets["1.0"], buckets["2.5"]) == (0, 3, 3, 4)
    assert buckets["+Inf"] == 4
    counts = {s.name: s.value for s in samples if not s.name.endswith("_bucket")}
    assert counts["weer_ws_delivery_latency_seconds_count"] == 4
    assert 3 * 0.03 + 2.0 <= counts["weer_ws_delivery_latency_seconds_sum"] < 3 * 0.03 + 2.0 + 1


# -- Redis and the database out of reach -------------------------------------------------------


def _scrape(server: DaphneServer) -> tuple[str, float]:
    """/metrics of ``server`` and how long it took to answer."""
    started = time.monotonic()
    answer = httpx.get(f"{server.http_url}/metrics", headers=metrics_headers(), timeout=30)
    assert answer.status_code == 200, answer.text[:300]
    return answer.text, time.monotonic() - started


def test_a_frozen_redis_or_database_shows_down_within_a_scrape(tmp_path: Path) -> None:
    """A server on a Redis and a MariaDB of the test's own. Each frozen in turn (SIGSTOP: as a
    partition, connections hang instead of failing), /metrics still answers within a few
    seconds (the health checks' own timeouts, the sources needing it not tried): its health
    figure 0, its sources down, the other's figures there. Thawed, both are 1 again."""
    with (
        run_redis(tmp_path) as private_redis,
        run_mariadb(tmp_path / "mariadb") as database,
    ):
        migrate(database.url)
        env = {"REDIS_URL": private_redis.url, "DATABASE_URL": database.url}
        with run_server(
            tmp_path, "-m", "realtime.serving.server", "project.asgi:application", env=env
        ) as server:
            text, _ = _scrape(server)
            assert (_value(text, "weer_redis_up"), _value(text, "weer_database_up")) == (1, 1)

            database.pause()
            try:
                text, seconds = _scrape(server)
            finally:
                database.resume()
            assert seconds < 5, f"/metrics took {seconds:.1f} s with the database frozen"
            assert (_value(text, "weer_redis_up"), _value(text, "weer_database_up")) == (1, 0)
            for source, up in SOURCES_UP_WITHOUT["database"].items():
                assert _value(text, "weer_metrics_source_up", f'source="{source}"') == up
            assert _value(text, "weer_redis_server_info") == 1

            private_redis.pause()
            try:
                text, seconds = _scrape(server)
            finally:
                private_redis.resume()
            assert seconds < 5, f"/metrics took {seconds:.1f} s with Redis frozen"
            assert (_value(text, "weer_redis_up"), _value(text, "weer_database_up")) == (0, 1)
            for source, up in SOURCES_UP_WITHOUT["redis"].items():
                assert _value(text, "weer_metrics_source_up", f'source="{source}"') == up
            assert _value(text, "weer_redis_server_info") is None

            wait_for(
                lambda: (
                    (
                        _value(_scrape(server)[0], "weer_redis_up"),
                        _value(_scrape(server)[0], "weer_database_up"),
                    )
                    == (1, 1)
                ),
                "both up again on /metrics",
            )


# -- a real Prometheus with these rules, a real Redis Cluster failing over ----------------------


def _alerts(url: str) -> list[dict[str, Any]]:
    """Prometheus's alerts now (empty while it starts)."""
    try:
        answer = httpx.get(f"{url}/api/v1/alerts", timeout=5)
    except httpx.TransportError:
        return []
    return list(answer.json()["data"]["alerts"]) if answer.is_success else []


def _query(url: str, promql: str) -> list[dict[str, Any]]:
    try:
        answer = httpx.get(f"{url}/api/v1/query", params={"query": promql}, timeout=5)
    except httpx.TransportError:
        return []
    return list(answer.json()["data"]["result"]) if answer.is_success else []


def _engine_nodes(text: str) -> dict[str, tuple[float, str | None]]:
    """Each realtime-engine node on /metrics: node → (weer_redis_up, its role or None)."""
    nodes: dict[str, tuple[float, str | None]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("redis") != "engine":
                continue
            node = sample.labels["node"]
            up, role = nodes.get(node, (0.0, None))
            if sample.name == "weer_redis_up":
                up = sample.value
            elif sample.name == "weer_redis_server_info":
                role = sample.labels["role"]
            nodes[node] = (up, role)
    return nodes


@contextlib.contextmanager
def _prometheus_with_the_rules(tmp_path: Path, server: DaphneServer) -> Iterator[str]:
    """A real Prometheus (Debian's) evaluating weer-alerts.yaml every second over ``server``'s
    /metrics, scraped every second: yields its URL."""
    port = _free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {
                "job_name": "weer",
                "metrics_path": "/metrics",
                "authorization": {"type": "Bearer", "credentials": settings.METRICS_TOKEN},
                "static_configs": [{"targets": [f"127.0.0.1:{server.port}"]}],
            }
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    command = [
        str(prometheus_tool("prometheus")),
        f"--config.file={tmp_path / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    with (tmp_path / "prometheus.log").open("wb") as log:
        prometheus = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        prometheus.terminate()
        prometheus.wait(timeout=30)


def _named(alerts: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [alert for alert in alerts if alert["labels"]["alertname"] == name]


def _masters(nodes: dict[str, tuple[float, str | None]]) -> set[str]:
    return {node for node, (up, role) in nodes.items() if up and role == "master"}


@pytest.mark.django_db(transaction=True)
def test_a_real_prometheus_with_these_rules_sees_a_cluster_master_fail_over(
    tmp_path: Path,
) -> None:
    """A real server whose realtime engine is a 3-master, 3-replica Redis Cluster shows every
    node with its role; a real Prometheus loads weer-alerts.yaml and scrapes it. Killing a
    master, once its replica is promoted: the dead node is down on /metrics, the promoted one a
    master, and WeerRedisFailover fires in Prometheus (cause primary_changed, on the promoted
    node); WeerRedisDown does not (the cluster still answers). Prometheus runs every panel's
    query of the dashboard too."""
    with (
        run_redis_cluster(tmp_path / "cluster") as cluster,
        run_server(
            tmp_path,
            "-m",
            "realtime.serving.server",
            "project.asgi:application",
            env={"REALTIME_REDIS_URL": cluster.url},
        ) as server,
    ):
        before = _engine_nodes(_scrape(server)[0])
        assert sorted(before) == sorted(f"127.0.0.1:{node.port}" for node in cluster.nodes)
        assert sorted(role or "" for _, role in before.values()) == ["master"] * 3 + ["slave"] * 3
        assert all(up == 1 for up, _ in before.values())
        with _prometheus_with_the_rules(tmp_path, server) as url:
            wait_for(
                lambda: len(_query(url, 'weer_redis_up{redis="engine"} == 1')) == 6,
                f"Prometheus scraping every engine node (log: {tmp_path / 'prometheus.log'})",
                timeout=60,
            )
            assert not _named(_alerts(url), "WeerRedisFailover")

            master = cluster.primaries()[0]
            cluster.kill(master)
            cluster.wait_promoted(master)
            dead = f"127.0.0.1:{master.port}"

            def failed_over() -> dict[str, tuple[float, str | None]] | None:
                nodes = _engine_nodes(_scrape(server)[0])
                return nodes if nodes[dead][0] == 0 and len(_masters(nodes)) == 3 else None

            promoted = _masters(wait_for(failed_over, "three masters, the dead one down"))
            promoted -= _masters(before)
            assert len(promoted) == 1

            def fired() -> list[dict[str, Any]]:
                return [
                    alert
                    for alert in _named(_alerts(url), "WeerRedisFailover")
                    if alert["labels"].get("cause") == "primary_changed"
                    and alert["state"] == "firing"
                ]

            (alert,) = wait_for(fired, "WeerRedisFailover firing in Prometheus", timeout=30)
            assert alert["labels"]["node"] in promoted
            assert alert["labels"]["severity"] == "medium"
            assert not _named(_alerts(url), "WeerRedisDown")
            # Every panel's query, as Grafana sends it, is one Prometheus itself runs.
            for panel in _panels():
                for target in panel["targets"]:
                    expr = _as_prometheus_gets_it(target["expr"])
                    answer = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=10)
                    assert answer.json()["status"] == "success", (panel["title"], answer.text)
