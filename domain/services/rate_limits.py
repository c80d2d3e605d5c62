"""Rate limits: every limit WeER enforces, by name, with its rule from settings, counted in Redis.

Each ``Limit`` is named after its setting (``LIMIT_LOGIN_PER_ACCOUNT`` …), whose value is a
rule in the ``limits`` library's notation: ``"10/minute"``, several joined by ``;``
(``"10/minute;100/hour"``), or ``off``. Counts are moving windows (the ``limits`` library's
``MovingWindowRateLimiter``) in Redis, under ``<REDIS_KEY_PREFIX>limits:``, so every server
process of a deployment shares them and deployments sharing a Redis server do not; a refusal
says when the oldest counted hit leaves the window (``RateLimited.retry_after``).

Failure mode: a limit that cannot be counted because Redis is unreachable or times out (0.5 s)
is **not enforced**: the request is allowed, and the outage is logged once (a warning) until
Redis answers again (an info line). Limits protect the service; they must never be what locks
every crew out of it.

HTTP edges and services call the sync functions; websocket code calls the ``a``-prefixed ones,
which use ``redis.asyncio`` on the running loop.
"""

import asyncio
import hashlib
import ipaddress
import logging
import math
import time
import weakref
from collections.abc import Sequence
from enum import StrEnum
from functools import lru_cache

import redis.asyncio
from django.conf import settings
from limits import RateLimitItem, parse_many
from limits.aio.storage import RedisStorage as AsyncRedisStorage
from limits.aio.strategies import MovingWindowRateLimiter as AsyncMovingWindowRateLimiter
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from domain.errors import RateLimited
from domain.redis_driver import DRIVER_INFO
from domain.redis_turns import TurnPipeline

logger = logging.getLogger(__name__)

REDIS_TIMEOUT_SECONDS = 0.5
ASYNC_CONNECTIONS = 50  # per event loop: counts beyond this many at once wait for one
OFF = "off"
# What a failed count raises: Redis errors (timeouts and refused connections included).
_UNCOUNTABLE = (RedisError, OSError)


class Limit(StrEnum):
    """Every rate limit; the value is the setting that holds its rule."""

    LOGIN_PER_ACCOUNT = "LIMIT_LOGIN_PER_ACCOUNT"  # failed logins per username
    LOGIN_PER_ADDRESS = "LIMIT_LOGIN_PER_ADDRESS"  # login attempts per client address
    SIGNUP_PER_ADDRESS = "LIMIT_SIGNUP_PER_ADDRESS"
    REFRESH_PER_USER = "LIMIT_REFRESH_PER_USER"
    RESERVATIONS_PER_CREW = "LIMIT_RESERVATIONS_PER_CREW"  # reservation requests made
    WS_CONNECTS_PER_USER = "LIMIT_WS_CONNECTS_PER_USER"
    WS_CONNECTS_PER_ADDRESS = "LIMIT_WS_CONNECTS_PER_ADDRESS"
    SUBSCRIBES_PER_USER = "LIMIT_SUBSCRIBES_PER_USER"  # streams subscribed to, any socket


MESSAGES = {
    Limit.LOGIN_PER_ACCOUNT: "Too many failed logins for this account",
    Limit.LOGIN_PER_ADDRESS: "Too many logins from this address",
    Limit.SIGNUP_PER_ADDRESS: "Too many sign-ups from this address",
    Limit.REFRESH_PER_USER: "Too many token refreshes",
    Limit.RESERVATIONS_PER_CREW: "Too many reservation requests",
    Limit.WS_CONNECTS_PER_USER: "Too many connections for this account",
    Limit.WS_CONNECTS_PER_ADDRESS: "Too many connections from this address",
    Limit.SUBSCRIBES_PER_USER: "Too many subscriptions",
}


@lru_cache(maxsize=64)
def rule_items(rule: str) -> tuple[RateLimitItem, ...]:
    """The windows of a rule string; ``()`` for ``off`` (or empty). ``ValueError`` if invalid
    (project/settings.py checks every rule at start-up with this)."""
    if rule.strip().lower() in ("", OFF):
        return ()
    return tuple(parse_many(rule))


def _items(limit: Limit) -> tuple[RateLimitItem, ...]:
    rule: str = getattr(settings, limit.value)
    return rule_items(rule)


def account_key(username: str) -> str:
    """Who a login is for, as a limit key: the username as login matches it (any case), hashed
    so that Redis holds no usernames. Unknown usernames get keys like known ones."""
    return hashlib.sha256(username.strip().casefold().encode()).hexdigest()[:32]


def address_key(address: str | None) -> str:
    """A client address as a limit key: IPv4 as it is, IPv6 by its /64 (one subscriber holds a
    whole /64, and would otherwise have 2^64 addresses to rotate through)."""
    try:
        parsed = ipaddress.ip_address((address or "").strip())
    except ValueError:
        return address or "unknown"
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{parsed}/64", strict=False).network_address) + "/64"
    return str(parsed)


class _Counter:
    """The outage state of one Redis the limits are counted in: warn once when counting fails,
    say so when it works again."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.failing = False
        self.failed_at = 0.0

    def failed(self, exc: BaseException) -> None:
        self.failed_at = time.monotonic()
        if not self.failing:
            self.failing = True
            logger.warning("rate limits not enforced: Redis unreachable (%r)", exc)

    def worked(self) -> None:
        if self.failing:
            self.failing = False
            logger.info("rate limits enforced again: Redis answers")

    def standing_aside(self) -> bool:
        """Whether counting failed within ``AFTER_FAILURE_SECONDS``: then nothing is counted
        (and everything allowed) without asking Redis, so a Redis that stopped answering
        costs each request its timeout at most once in that window."""
        return self.failing and time.monotonic() - self.failed_at < AFTER_FAILURE_SECONDS


AFTER_FAILURE_SECONDS = 2.0


def _key_prefix() -> str:
    return f"{settings.REDIS_KEY_PREFIX}limits"


class _SyncCounter(_Counter):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        storage = RedisStorage(
            url,
            key_prefix=_key_prefix(),
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            retry=Retry(NoBackoff(), 1),  # type: ignore[arg-type]  # passed on to redis.Redis
            driver_info=DRIVER_INFO,  # type: ignore[arg-type]  # passed on to redis
        )
        self.limiter = MovingWindowRateLimiter(storage)


class _AsyncCounter(_Counter):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        # Counts wait (up to the timeout) for one of a bounded set of connections: redis-py's
        # default pool refuses a command beyond 100 at once, and a connect storm has more, so
        # the limits went off (failed open) just when a crowd arrived.
        pool = redis.asyncio.BlockingConnectionPool.from_url(
            url,
            max_connections=ASYNC_CONNECTIONS,
            timeout=REDIS_TIMEOUT_SECONDS,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            retry=Retry(NoBackoff(), 1),
            driver_info=DRIVER_INFO,
        )
        storage = AsyncRedisStorage(
            f"async+{url}",
            implementation="redispy",
            key_prefix=_key_prefix(),
            connection_pool=pool,  # type: ignore[arg-type]  # passed on to redis
        )
        self.limiter = AsyncMovingWindowRateLimiter(storage)
        # Hits go to Redis a turn of the event loop at a time (a connect storm counts hundreds
        # per turn): the moving-window script and key of limits' own ``acquire_entry`` (limits
        # 5.8, pinned), through a pipeline. A refusal still reads its window through ``limiter``.
        self._bridge = storage.bridge
        script = storage.bridge.SCRIPT_ACQUIRE_MOVING_WINDOW
        self._acquire = script.decode() if isinstance(script, bytes) else script
        self._turns = TurnPipeline(redis.asyncio.Redis(connection_pool=pool))

    async def hit(self, item: RateLimitItem, ids: tuple[str, str], cost: int) -> bool:
        """``limiter.hit(item, *ids, cost=cost)``, batched with this turn's other hits."""
        key = self._bridge.prefixed_key(item.key_for(*ids))
        acquired = await self._turns.eval(
            self._acquire, 1, key, time.time(), item.amount, item.get_expiry(), cost
        )
        return bool(acquired)


_sync_counters: dict[str, _SyncCounter] = {}
_PerLoop = dict[str, _AsyncCounter]
_async_counters: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _PerLoop]" = (
    weakref.WeakKeyDictionary()
)


def _sync_counter() -> _SyncCounter:
    url = settings.REDIS_URL
    counter = _sync_counters.get(url)
    if counter is None:
        counter = _sync_counters[url] = _SyncCounter(url)
    return counter


def _async_counter() -> _AsyncCounter:
    """One per event loop (a ``redis.asyncio`` connection belongs to the loop it was made on)."""
    of_loop = _async_counters.setdefault(asyncio.get_running_loop(), {})
    counter = of_loop.get(settings.REDIS_URL)
    if counter is None:
        counter = of_loop[settings.REDIS_URL] = _AsyncCounter(settings.REDIS_URL)
    return counter


def _refusal(limit: Limit, reset_at: float) -> RateLimited:
    retry_after = max(1, math.ceil(reset_at - time.time()))
    return RateLimited(f"{MESSAGES[limit]}; try again in {retry_after} s.", retry_after=retry_after)


def _full(
    counter: _SyncCounter, items: Sequence[RateLimitItem], ids: tuple[str, str], cost: int
) -> RateLimitItem | None:
    return next((i for i in items if not counter.limiter.test(i, *ids, cost=cost)), None)


def rate_limit_hit(limit: Limit, key: str, *, cost: int = 1) -> None:
    """Count ``cost`` hits of ``limit`` for ``key``; ``RateLimited`` (nothing counted in the
    window that is full) if that is more than the limit allows."""
    items = _items(limit)
    if not items:
        return
    counter = _sync_counter()
    if counter.standing_aside():
        return
    ids = (limit.name.lower(), key)
    try:
        for item in items:
            if not counter.limiter.hit(item, *ids, cost=cost):
                stats = counter.limiter.get_window_stats(item, *ids)
                counter.worked()
                raise _refusal(limit, stats.reset_time)
    except _UNCOUNTABLE as exc:
        counter.failed(exc)
        return
    counter.worked()


def rate_limit_check(limit: Limit, key: str) -> None:
    """``RateLimited`` if ``limit`` has no hit left for ``key``, counting nothing: for limits
    that count only failures (``rate_limit_record`` them), checked before the costly work."""
    items = _items(limit)
    if not items:
        return
    counter = _sync_counter()
    if counter.standing_aside():
        return
    ids = (limit.name.lower(), key)
    try:
        full = _full(counter, items, ids, 1)
        if full is not None:
            stats = counter.limiter.get_window_stats(full, *ids)
            counter.worked()
            raise _refusal(limit, stats.reset_time)
    except _UNCOUNTABLE as exc:
        counter.failed(exc)
        return
    counter.worked()


def rate_limit_record(limit: Limit, key: str) -> None:
    """Count one hit of ``limit`` for ``key`` without refusing anything (a failure that
    ``rate_limit_check`` will see next time)."""
    items = _items(limit)
    if not items:
        return
    counter = _sync_counter()
    if counter.standing_aside():
        return
    try:
        for item in items:
            counter.limiter.hit(item, limit.name.lower(), key)
    except _UNCOUNTABLE as exc:
        counter.failed(exc)
        return
    counter.worked()


async def arate_limit_hit(limit: Limit, key: str, *, cost: int = 1) -> RateLimited | None:
    """``rate_limit_hit`` for async code, returning the refusal instead of raising it."""
    items = _items(limit)
    if not items:
        return None
    counter = _async_counter()
    if counter.standing_aside():
        return None
    ids = (limit.name.lower(), key)
    try:
        for item in items:
            if not await counter.hit(item, ids, cost):
                stats = await counter.limiter.get_window_stats(item, *ids)
                counter.worked()
                return _refusal(limit, stats.reset_time)
    except _UNCOUNTABLE as exc:
        counter.failed(exc)
        return None
    counter.worked()
    return None
