"""The upstream's daily call quota, shared by every worker through Redis.

Calls are paced across the day: by any moment, at most the day's elapsed share of the budget
(plus a burst of one full cycle) may have been used, so a development key's 1,000 calls last
until midnight instead of running out in the morning. When the upstream says the quota is
exceeded anyway, every poll waits until it resets at midnight, Korea time.
"""

import time
from collections.abc import Callable
from datetime import datetime, timedelta

import redis
from django.conf import settings

from ingestion.parsing import KST

BURST_CALLS = 60  # a full cycle of every operation for all 17 regions, with room for paging
BLOCKED_KEY = settings.REDIS_KEY_PREFIX + "upstream:blocked-until"


class BudgetExhausted(Exception):
    """No call may be made now; try again later (not an upstream failure)."""


def calls_key(now: float) -> str:
    """The Redis counter of the calls made on ``now``'s day (Korea time)."""
    return (
        settings.REDIS_KEY_PREFIX
        + "upstream:calls:"
        + datetime.fromtimestamp(now, KST).strftime("%Y%m%d")
    )


def _next_midnight(now: float) -> float:
    today = datetime.fromtimestamp(now, KST).replace(hour=0, minute=0, second=0, microsecond=0)
    return (today + timedelta(days=1)).timestamp()


class CallBudget:
    def __init__(
        self, client: "redis.Redis", daily_calls: int, clock: Callable[[], float] = time.time
    ) -> None:
        self._redis = client
        self._daily = daily_calls
        self._clock = clock

    def take(self, operation: str) -> None:
        """Count one call, or raise ``BudgetExhausted`` if it would overspend."""
        now = self._clock()
        blocked_until = float(self._redis.get(BLOCKED_KEY) or 0)
        if blocked_until > now:
            raise BudgetExhausted(f"upstream quota exceeded; paused until {blocked_until:.0f}")
        key = calls_key(now)
        used = int(self._redis.incr(key))
        if used == 1:
            self._redis.expire(key, 2 * 86400)
        midnight = _next_midnight(now) - 86400
        allowed = min(self._daily, self._daily * (now - midnight) / 86400 + BURST_CALLS)
        if used > allowed:
            self._redis.decr(key)
            raise BudgetExhausted(f"{operation}: {used - 1} of {self._daily} calls used today")

    def block_until_reset(self) -> float:
        """The upstream reported its quota exceeded: stop calling until next midnight (KST)."""
        now = self._clock()
        until = _next_midnight(now)
        self._redis.set(BLOCKED_KEY, until, ex=int(until - now) + 60)
        return until

    def used_today(self) -> int:
        return int(self._redis.get(calls_key(self._clock())) or 0)

    @property
    def daily_calls(self) -> int:
        return self._daily
