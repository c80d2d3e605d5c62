"""Waiting for a condition instead of sleeping and hoping: poll it until a deadline."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(check: Callable[[], T], *, timeout: float = 10, interval: float = 0.05) -> T:
    """Call ``check`` until it returns something truthy, and return that; fail the test with
    its last value if ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still {value!r} after {timeout} s")
        time.sleep(interval)


async def eventually(
    check: Callable[[], Awaitable[T]], *, timeout: float = 10, interval: float = 0.05
) -> T:
    """``wait_until`` for a coroutine check, without blocking the event loop."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still {value!r} after {timeout} s")
        await asyncio.sleep(interval)
