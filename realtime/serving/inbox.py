"""The inbox of one connection: what its client sent, until the application reads it.

daphne gives every connection an ``asyncio.Queue``; an empty one is four deques and an
``Event`` (about 2.9 KB), held for the socket's whole life. A websocket receives a message now
and then, so ``Inbox`` (a list made on first use and one waiter) does the same job for a tenth
of that. ``realtime.serving.server`` hands it to daphne. (A module of its own: the server runs
as ``__main__``, whose copy of a class is not the one the consumer imports.)
"""

import asyncio
from typing import Any


class Inbox:
    """The part of ``asyncio.Queue`` daphne uses: ``put_nowait`` and ``get``, unbounded, for
    the one application instance that reads it."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[Any] | None = None
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        if self._items is None:
            self._items = []
        self._items.append(item)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def get(self) -> Any:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.pop(0)


def inbox_kind(receive: object) -> str:
    """Which inbox feeds an application's ``receive``: ``weer`` under WeerServer."""
    return "weer" if isinstance(getattr(receive, "__self__", None), Inbox) else "other"
