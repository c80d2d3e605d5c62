"""Redis scripts called in one turn of the event loop, sent together as one pipeline.

redis-py 8.1's asyncio client costs ~130 µs of CPU per command on this project's machine (a
pool checkout, retry and timeout wrappers, its observability hooks, a task per reply) and
~12 µs per command in a pipeline of 200 (docs/performance.md § Reconnect storms). A crowd of
sockets connecting makes the same few calls each within the same turns (its rate-limit counts,
its stream's head): each call is queued, and the queue goes to Redis once the turn is over.
A call waits at most one turn longer than it would alone.
"""

import asyncio
from typing import Any

import redis.asyncio

_Call = tuple[str, int, tuple[Any, ...], "asyncio.Future[Any]"]


class TurnPipeline:
    """``eval`` as ``redis.asyncio.Redis.eval`` does it, batched per turn of the event loop
    (one per client and loop: a client's connections belong to the loop they were made on).
    Each call gets its own reply or its own error; when the pipeline as a whole fails (Redis
    unreachable, a timeout) every call of the turn raises that error."""

    def __init__(self, client: "redis.asyncio.Redis | redis.asyncio.RedisCluster") -> None:
        self._client = client
        self._queued: list[_Call] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def eval(self, script: str, numkeys: int, *keys_and_args: Any) -> Any:
        loop = asyncio.get_running_loop()
        reply: asyncio.Future[Any] = loop.create_future()
        self._queued.append((script, numkeys, keys_and_args, reply))
        if len(self._queued) == 1:
            loop.call_soon(self._send_turn)
        return await reply

    def _send_turn(self) -> None:
        calls, self._queued = self._queued, []
        task = asyncio.ensure_future(self._send(calls))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, calls: list[_Call]) -> None:
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for script, numkeys, keys_and_args, _ in calls:
                    pipe.eval(script, numkeys, *keys_and_args)
                replies = await pipe.execute(raise_on_error=False)
        except BaseException as exc:
            for *_, reply in calls:
                if not reply.done():
                    if isinstance(exc, asyncio.CancelledError):
                        reply.cancel()
                    else:
                        reply.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (*_, reply), value in zip(calls, replies, strict=True):
            if reply.done():  # its caller was cancelled meanwhile
                continue
            if isinstance(value, Exception):
                reply.set_exception(value)
            else:
                reply.set_result(value)
