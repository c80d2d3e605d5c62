"""``/metrics``: every server process's realtime figures, the ingestion figures, the outbox
backlog, the hospitals missing an ER screen, and whether this process reaches Redis and the
database, in Prometheus text format. Composed here, where the packages meet, so neither imports
the other. Only for a scraper holding ``METRICS_TOKEN``
(the figures name processes, their memory and the streams in use, which the websocket shows to
administrators only)."""

import hmac
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import MySQLdb  # type: ignore[import-untyped]  # mysqlclient ships no types; stubs not in dev
import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from domain.selectors.outbox import outbox_backlog
from ingestion.metrics import IngestionMetricsCollector
from ingestion.region_health import RegionDataCollector
from realtime.engine import cluster_seeds, is_cluster, sync_engine
from realtime.metrics import PresenceMetricsCollector, RedisMetricsCollector

logger = logging.getLogger(__name__)


class OutboxMetricsCollector(Collector):
    """The outbox backlog, read from the database at scrape time: events of committed changes
    not yet published (more than a moment's worth means Redis is or was unreachable)."""

    def collect(self) -> Iterator[Metric]:
        backlog = outbox_backlog()
        age = 0.0
        if backlog.oldest_created_at is not None:
            age = max(0.0, (timezone.now() - backlog.oldest_created_at).total_seconds())
        yield GaugeMetricFamily(
            "weer_outbox_pending_events", "Committed events not yet published", backlog.pending
        )
        yield GaugeMetricFamily(
            "weer_outbox_oldest_age_seconds", "Age of the oldest unpublished event (0: none)", age
        )


HEALTH_TIMEOUT = 1.0  # seconds: Redis's answer to a ping, the database's connect and SELECT 1
# What each source reads: left out at once (shown down) when the health check found it out of
# reach, instead of waiting on it (the database's read timeout is 30 s) for every scrape.
SOURCE_NEEDS = {
    "realtime": "redis",
    "ingestion": "redis",
    "presence": "redis",
    "ingestion_regions": "database",
    "outbox": "database",
}


class DependencyHealth:
    """Whether this process reaches Redis and the database now: ``REDIS_URL`` (broker, process
    figures, locks: ``redis="main"``), the realtime engine when it is another Redis or a
    cluster (``REALTIME_REDIS_URL``: ``redis="engine"``, every node the cluster lists, each
    with its role), and MariaDB. Each is asked on a connection of its own with a deadline of
    its own (``HEALTH_TIMEOUT``), so that one that stopped answering costs a scrape that long."""

    def __init__(self, redis_url: str, engine_url: str | None = None) -> None:
        self._main = _health_client(redis.Redis.from_url(redis_url))
        self.node = _node_name(self._main)
        self._engine: redis.Redis | redis.RedisCluster | None = None
        self._engine_nodes: dict[str, redis.Redis] = {}  # a cluster's, by address, once seen
        if engine_url is None or engine_url == redis_url:
            return
        options = {"socket_timeout": HEALTH_TIMEOUT, "socket_connect_timeout": HEALTH_TIMEOUT}
        self._engine = sync_engine(engine_url, **options)
        # A cluster's nodes are asked with its first seed's credentials and TLS.
        seed_url = cluster_seeds(engine_url)[0] if is_cluster(engine_url) else engine_url
        self._seed = redis.Redis.from_url(seed_url)

    def check(self) -> tuple[list[Metric], set[str]]:
        """The health figures, and which of ``redis`` (``REDIS_URL``) and ``database``
        answered."""
        figures = _RedisFigures()
        redis_up = figures.add("main", self.node, self._main)
        for node, client in self._engine_clients().items():
            figures.add("engine", node, client)
        database_figures, database_up = _database_figures()
        reached = {name for name, up in (("redis", redis_up), ("database", database_up)) if up}
        return [*figures.families(), *database_figures], reached

    def _engine_clients(self) -> dict[str, redis.Redis]:
        """The engine's nodes to ask: itself when it is one Redis; for a cluster every node in
        its ``CLUSTER NODES`` now (a failed one too, while the cluster lists it), or the last
        ones seen if no node answers that."""
        if self._engine is None:
            return {}
        if isinstance(self._engine, redis.Redis):
            return {_node_name(self._engine): self._engine}
        try:
            listed = self._engine.cluster_nodes()
        except redis.RedisError as exc:
            logger.warning("/metrics: no node of the realtime cluster answers: %r", exc)
            return self._engine_nodes
        nodes: dict[str, redis.Redis] = {}
        for address in sorted(listed):
            host, _, port = address.rpartition(":")
            nodes[address] = self._engine_nodes.get(address) or _health_client(
                self._seed, host=host, port=int(port)
            )
        self._engine_nodes = nodes
        return nodes


def _health_client(client: redis.Redis, **where: Any) -> redis.Redis:
    """A client like ``client`` (or like it but at ``where``: ``host``, ``port``) whose every
    command gives up after ``HEALTH_TIMEOUT``."""
    options = dict(client.connection_pool.connection_kwargs)
    options.update(where, socket_timeout=HEALTH_TIMEOUT, socket_connect_timeout=HEALTH_TIMEOUT)
    options.pop("connection_class", None)
    return redis.Redis(
        connection_pool=redis.ConnectionPool(
            connection_class=client.connection_pool.connection_class, **options
        )
    )


def _node_name(client: redis.Redis) -> str:
    where = client.connection_pool.connection_kwargs
    return f"{where['host']}:{where['port']}" if "host" in where else str(where["path"])


class _RedisFigures:
    """The Redis health families, a sample per node asked: ``weer_redis_up`` and, for a node
    that answered, its ping time and ``INFO``'s figures that tell a failover (``run_id`` and
    ``role``), a restart and a full memory (evictions drop streams' history and counters)."""

    _GAUGES = (
        ("uptime_seconds", "uptime_in_seconds", "Seconds since the Redis server started"),
        ("memory_used_bytes", "used_memory", "Memory Redis uses"),
        ("memory_max_bytes", "maxmemory", "Redis's maxmemory (0: no limit)"),
        ("connected_clients", "connected_clients", "Clients connected to Redis"),
        ("connected_replicas", "connected_slaves", "Replicas connected to this Redis"),
    )

    def __init__(self) -> None:
        labels = ["redis", "node"]
        self.up = GaugeMetricFamily(
            "weer_redis_up", "Whether Redis answered this process's ping (1) or not", labels=labels
        )
        self.seconds = GaugeMetricFamily(
            "weer_redis_ping_seconds", "How long Redis took to answer a ping", labels=labels
        )
        self.server = GaugeMetricFamily(
            "weer_redis_server_info",
            "The Redis server answering (1): a new run_id or role is a restart or a failover",
            labels=[*labels, "role", "run_id", "version"],
        )
        self.gauges = {
            field: GaugeMetricFamily(f"weer_redis_{name}", help_text, labels=labels)
            for name, field, help_text in self._GAUGES
        }
        self.evicted = CounterMetricFamily(
            "weer_redis_evicted_keys", "Keys Redis evicted for memory", labels=labels
        )

    def add(self, purpose: str, node: str, client: redis.Redis) -> bool:
        """Ask ``client`` (the node ``node`` of Redis ``purpose``); whether it answered."""
        try:
            started = time.perf_counter()
            client.ping()
            seconds = time.perf_counter() - started
            info: dict[str, Any] = client.info()
        except redis.RedisError as exc:
            logger.warning("/metrics: Redis (%s) at %s does not answer: %r", purpose, node, exc)
            self.up.add_metric([purpose, node], 0)
            return False
        labels = [purpose, node]
        self.up.add_metric(labels, 1)
        self.seconds.add_metric(labels, seconds)
        self.server.add_metric(
            [*labels, str(info["role"]), str(info["run_id"]), str(info["redis_version"])], 1
        )
        for field, gauge in self.gauges.items():
            gauge.add_metric(labels, float(info.get(field, 0)))
        self.evicted.add_metric(labels, float(info.get("evicted_keys", 0)))
        return True

    def families(self) -> list[Metric]:
        return [self.up, self.seconds, self.server, *self.gauges.values(), self.evicted]


def _database_figures() -> tuple[list[Metric], bool]:
    up = GaugeMetricFamily("weer_database_up", "Whether the database answered (1) or not")
    seconds = GaugeMetricFamily(
        "weer_database_ping_seconds", "How long a new connection and SELECT 1 took"
    )
    try:
        seconds.add_metric([], _timed(_database_ping))
    except Exception as exc:  # any failure means down; the reason goes to the log
        logger.warning("/metrics: the database does not answer: %r", exc)
        up.add_metric([], 0)
        return [up], False
    up.add_metric([], 1)
    return [up, seconds], True


def _timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def _database_ping() -> None:
    """Connect anew and ``SELECT 1``. On MariaDB a connection of its own with short timeouts:
    the request's (reused for ``CONN_MAX_AGE``) would wait the 30 s read timeout on a database
    that stopped answering."""
    if connection.vendor != "mysql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return
    timeout = max(1, round(HEALTH_TIMEOUT))
    params = connection.get_connection_params()
    params.update(connect_timeout=timeout, read_timeout=timeout, write_timeout=timeout)
    database = MySQLdb.connect(**params)
    try:
        cursor = database.cursor()
        cursor.execute("SELECT 1")
        cursor.close()
    finally:
        database.close()


class _Sources(Collector):
    """Every source's figures, each read on its own: a source that cannot be read (Redis or the
    database during an outage, just when the figures matter most) is left out, logged, and
    shown as ``weer_metrics_source_up{source} 0``, instead of failing the whole page. The
    health figures come first, and a source whose dependency did not answer them
    (``SOURCE_NEEDS``) is not tried."""

    def __init__(
        self, sources: dict[str, Collector], health: DependencyHealth | None = None
    ) -> None:
        self._sources = sources
        self._health = health or DependencyHealth(settings.REDIS_URL, settings.REALTIME_REDIS_URL)

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "weer_metrics_source_up",
            "Whether the source's figures could be read for this scrape (1) or not (0)",
            labels=["source"],
        )
        health, reached = self._health.check()
        yield from health
        for name, source in self._sources.items():
            if SOURCE_NEEDS.get(name, "redis") not in reached:
                up.add_metric([name], 0)
                continue
            try:
                figures = list(source.collect())
            except Exception as exc:
                logger.warning("/metrics: cannot read %s: %r", name, exc)
                figures = []
                up.add_metric([name], 0)
            else:
                up.add_metric([name], 1)
            yield from figures
        yield up


_registry = CollectorRegistry(auto_describe=False)
_registry.register(
    _Sources(
        {
            "realtime": RedisMetricsCollector(settings.REDIS_URL, settings.REALTIME_REDIS_URL),
            "ingestion": IngestionMetricsCollector(settings.REDIS_URL),
            "ingestion_regions": RegionDataCollector(),
            "outbox": OutboxMetricsCollector(),
            "presence": PresenceMetricsCollector(settings.REDIS_URL),
        }
    )
)


def prometheus_metrics(request: HttpRequest) -> HttpResponse:
    """The figures, for ``Authorization: Bearer <METRICS_TOKEN>``. Without a ``METRICS_TOKEN``
    configured the page does not exist (404: off unless an operator turns it on); a missing or
    wrong token is a 401 (compared in constant time)."""
    expected = settings.METRICS_TOKEN
    if not expected:
        return HttpResponse("Not found.\n", status=404, content_type="text/plain")
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {expected}".encode()):
        response = HttpResponse(
            "A bearer token (METRICS_TOKEN) is required.\n", status=401, content_type="text/plain"
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(_registry), content_type=CONTENT_TYPE_LATEST)
