"""Waiting for a condition instead of sleeping and hoping: poll it until a deadline."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    condition: Callable[[], T | None], what: str, timeout: float = 15, every: float = 0.1
) -> T:
    """Call ``condition`` every ``every`` seconds until it returns something truthy, and return
    that; fail naming ``what`` if ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(every)
    return result


async def eventually(
    condition: Callable[[], Awaitable[T | None]],
    what: str,
    timeout: float = 15,
    every: float = 0.05,
) -> T:
    """``wait_for`` for a coroutine condition, without blocking the event loop."""
    deadline = time.monotonic() + timeout
    while not (result := await condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(every)
    return result
