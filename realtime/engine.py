"""The realtime engine: the Redis that holds the streams (each one's seq counter, history,
outbox ids and live channel), named by ``REALTIME_REDIS_URL``.

It is either one Redis (``redis://``, ``rediss://``: the default, ``REDIS_URL`` itself) or a
Redis Cluster (``redis+cluster://host:port[,host:port...]``, or ``rediss+cluster://`` with TLS;
the hosts are seeds, the rest of the cluster is discovered). A stream's keys and channel share
its ``{stream}`` hash tag, so each stream lives in one slot of one shard, and its events go out
with sharded pub/sub (``SPUBLISH``/``SSUBSCRIBE``), which a single Redis 7 runs too: one code
path for both. The Celery broker, locks, rate limits, account status and the process metrics
stay on ``REDIS_URL``, a plain Redis (Celery cannot use a cluster as its broker).
"""

from typing import Any, TypeAlias
from urllib.parse import urlsplit, urlunsplit

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
from django.conf import settings

from domain.redis_driver import DRIVER_INFO

_CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}

SyncEngine: TypeAlias = redis.Redis | redis.RedisCluster
AsyncEngine: TypeAlias = redis.asyncio.Redis | redis.asyncio.RedisCluster


def engine_url() -> str:
    return str(settings.REALTIME_REDIS_URL)


def is_cluster(url: str) -> bool:
    return urlsplit(url).scheme in _CLUSTER_SCHEMES


def cluster_seeds(url: str) -> tuple[str, list[tuple[str, int]]]:
    """A cluster URL as a plain one for its first seed (credentials, TLS, options) and the
    (host, port) of every seed. Raises ``ValueError`` for a URL that names no seed, a port
    that is not a number, or a database other than 0 (a cluster has only 0)."""
    parts = urlsplit(url)
    scheme = _CLUSTER_SCHEMES[parts.scheme]
    credentials, _, hosts = parts.netloc.rpartition("@")
    seeds: list[tuple[str, int]] = []
    for host_port in filter(None, hosts.split(",")):
        host, _, port = host_port.rpartition(":") if ":" in host_port else (host_port, "", "6379")
        seeds.append((host.strip("[]"), int(port)))
    if not seeds:
        raise ValueError(f"A Redis Cluster URL names no host: {url!r}")
    if parts.path.strip("/") not in ("", "0"):
        raise ValueError(f"A Redis Cluster has only database 0: {url!r}")
    netloc = f"{credentials}@{hosts.split(',')[0]}" if credentials else hosts.split(",")[0]
    return urlunsplit((scheme, netloc, "", parts.query, "")), seeds


# Read the slot map again on every redirect or connection error, not every 5th: a pipeline counts
# its own errors from 0, so with the default, publishing (a new pipeline per call) kept sending
# to a killed master until its replica's promotion was found by chance (tests/test_redis_cluster).
_CLUSTER_OPTIONS = {"reinitialize_steps": 1}


def sync_engine(url: str, **options: Any) -> SyncEngine:
    """A synchronous client of the engine at ``url`` (one Redis or a cluster)."""
    if not is_cluster(url):
        return redis.Redis.from_url(url, driver_info=DRIVER_INFO, **options)
    plain, seeds = cluster_seeds(url)
    return redis.RedisCluster.from_url(
        plain,
        startup_nodes=[redis.cluster.ClusterNode(host, port) for host, port in seeds],  # type: ignore[no-untyped-call]
        driver_info=DRIVER_INFO,
        **_CLUSTER_OPTIONS,
        **options,
    )


def async_engine(url: str, **options: Any) -> AsyncEngine:
    """An asyncio client of the engine at ``url`` (one Redis or a cluster)."""
    if not is_cluster(url):
        return redis.asyncio.Redis.from_url(url, driver_info=DRIVER_INFO, **options)
    plain, seeds = cluster_seeds(url)
    options.pop("max_connections", None)  # per node in a cluster: its default (2**31) stays
    return redis.asyncio.RedisCluster.from_url(
        plain,
        startup_nodes=[redis.asyncio.cluster.ClusterNode(host, port) for host, port in seeds],
        driver_info=DRIVER_INFO,
        **_CLUSTER_OPTIONS,
        **options,
    )
