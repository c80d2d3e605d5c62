"""The accounts behind this process's sockets: their status, read without a database query
per socket, and the closing of a socket whose account lost its access.

A socket's status (``domain.services.account_status.UserStatus``) comes from the cache in Redis
that every process shares (that module says how a change of access replaces it). The lookups
of every socket that connects in one turn of the event loop go together: one ``MGET``, and for
those not cached one database read for them all (two queries), whose statuses are then cached
with one pipelined ``SET NX`` each. Every change of access is published on the ``accounts``
stream, and each hub follows that stream through an ``AccountWatcher``, a member like any
socket. For each change it marks the cached status changed, reads the account from the
database for the next ``STATUS_TTL`` seconds instead of the cache (so a status cached by a read
that raced the change cannot outlive it here either), and closes the affected local sockets:
within moments of the commit, on every process. If the stream has to be resynchronised (Redis
lost events), every local socket's account is checked against the database again.
"""

import asyncio
import contextlib
import json
import logging
import time
from collections import defaultdict
from typing import TYPE_CHECKING, Any, Protocol

from channels.db import database_sync_to_async
from redis.exceptions import RedisError

from domain.errors import ApplicationError, ErrorCode
from domain.events import ACCOUNT_CHANGED, ACCOUNTS, AccountClose
from domain.services.account_status import (
    CHANGED,
    STATUS_TTL,
    STORE_WITHIN,
    UserStatus,
    status_from_json,
    status_json,
    status_key,
    user_statuses_read,
)
from domain.services.tokens import access_admits
from realtime.auth import SocketUser
from realtime.publishing import stream_head
from realtime.sinks import Frame

if TYPE_CHECKING:
    from realtime.hub import Hub

logger = logging.getLogger(__name__)


class Revocable(Protocol):
    """A socket the watcher can close: its user and a way to end it with a reason."""

    @property
    def user(self) -> SocketUser: ...

    async def revoke(self, code: str) -> None: ...


class AccountWatcher:
    """One per hub: caches statuses, keeps the local sockets by user, and acts on the
    ``accounts`` stream (it is that stream's member: ``send`` receives its frames)."""

    def __init__(self, hub: "Hub") -> None:
        self._hub = hub
        self._sockets: defaultdict[int, set[Revocable]] = defaultdict(set)
        self._changed: dict[int, float] = {}  # user → when a change to it was last seen here
        self._lookups: dict[int, asyncio.Future[UserStatus | None]] = {}  # this loop turn's
        self._tasks: set[asyncio.Task[Any]] = set()
        self._following = False

    # -- statuses ---------------------------------------------------------------------------

    async def status(self, user_id: int) -> UserStatus | None:
        """``user_id``'s status (None: no such user), looked up with every other lookup made
        in this turn of the event loop; raises what the database raises if it is needed and
        down."""
        self.follow()
        future = self._lookups.get(user_id)
        if future is None:
            future = self._lookups[user_id] = asyncio.get_running_loop().create_future()
            if len(self._lookups) == 1:
                asyncio.get_running_loop().call_soon(self._look_up_batch)
        return await asyncio.shield(future)

    def _look_up_batch(self) -> None:
        batch, self._lookups = self._lookups, {}
        task = self._spawn(self._read_statuses(batch))
        # Cancelled (the hub closing): so are the lookups it had not answered.
        task.add_done_callback(lambda _: [f.cancel() for f in batch.values()])

    async def _read_statuses(self, batch: "dict[int, asyncio.Future[UserStatus | None]]") -> None:
        started = time.monotonic()
        statuses: dict[int, UserStatus] = {}
        marked = set()  # marked changed in the cache: read the database, cache nothing
        ids = [user_id for user_id in batch if not self._recently_changed(user_id, started)]
        try:
            cached = await self._hub.redis.mget([status_key(u) for u in ids]) if ids else []
        except RedisError:
            cached = [None] * len(ids)  # the database still answers
        for user_id, value in zip(ids, cached, strict=True):
            if value == CHANGED:
                marked.add(user_id)
            elif value is not None:
                statuses[user_id] = status_from_json(value)
        missing = [user_id for user_id in batch if user_id not in statuses]
        read: dict[int, UserStatus] = {}
        if missing:
            try:
                # Not thread-sensitive: batches of a crowd reconnecting are read side by side.
                read = await database_sync_to_async(user_statuses_read, thread_sensitive=False)(
                    user_ids=missing
                )
            except Exception as exc:
                for user_id in missing:
                    _settle(batch.pop(user_id), exception=exc)
            statuses.update(read)
        for user_id, future in batch.items():
            _settle(future, result=statuses.get(user_id))
        if read and time.monotonic() - started < STORE_WITHIN:  # the sockets did not wait for it
            fresh = [s for s in read.values() if not self._recently_changed(s.id, started)]
            await self._cache([s for s in fresh if s.id not in marked])

    async def _cache(self, statuses: list[UserStatus]) -> None:
        if not statuses:
            return
        with contextlib.suppress(RedisError):
            async with self._hub.redis.pipeline(transaction=False) as pipe:
                for status in statuses:
                    pipe.set(status_key(status.id), status_json(status), ex=STATUS_TTL, nx=True)
                await pipe.execute()

    def _recently_changed(self, user_id: int, now: float) -> bool:
        changed = self._changed.get(user_id)
        return changed is not None and now - changed < STATUS_TTL

    # -- sockets ----------------------------------------------------------------------------

    def add(self, socket: Revocable, *, authenticated_at: float) -> None:
        """Keep ``socket`` (authenticated from a status read at ``authenticated_at``) until
        ``discard``. If its account changed since that read, it is checked again at once."""
        user_id = socket.user.id
        self._sockets[user_id].add(socket)
        changed = self._changed.get(user_id)
        if changed is not None and changed >= authenticated_at:
            self._spawn(self._recheck([socket]))

    def discard(self, socket: Revocable) -> None:
        user_id = socket.user.id
        sockets = self._sockets.get(user_id)
        if sockets is not None:
            sockets.discard(socket)
            if not sockets:
                del self._sockets[user_id]

    # -- the accounts stream (this is its member) -------------------------------------------

    def follow(self) -> None:
        """Start following the ``accounts`` stream (once; retried until Redis answers)."""
        if not self._following:
            self._following = True
            self._spawn(self._follow())

    async def _follow(self) -> None:
        backoff = 0.1
        while True:
            try:
                member = await self._hub.join(ACCOUNTS, self, counted=False)
                head = await stream_head(self._hub.streams, ACCOUNTS)
                await self._hub.go_live(ACCOUNTS, member, head)
                return
            except (RedisError, TimeoutError) as exc:
                logger.warning("accounts: cannot follow the stream yet: %r", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    def send(self, frame: Frame) -> bool:
        for text in frame.texts:
            message = json.loads(text)
            if message["type"] == ACCOUNT_CHANGED:
                self._changed_account(message["data"])
            elif message["type"] == "snapshot":  # a resync: events may have been lost
                self._spawn(self._recheck([s for group in self._sockets.values() for s in group]))
        return True

    async def drain(self, seconds: float) -> bool:
        return True

    def detach(self) -> None:
        pass

    def _changed_account(self, change: dict[str, Any]) -> None:
        user_id, close, family = change["user"], change["close"], change["family"]
        self._changed[user_id] = time.monotonic()
        self._spawn(self._forget_cached(user_id))
        if close is None:
            return
        for socket in list(self._sockets.get(user_id, ())):
            if family is None or socket.user.family == family:
                self._spawn(socket.revoke(close))

    async def _forget_cached(self, user_id: int) -> None:
        # Usually marked already by the change's commit. If Redis fails, the status expires;
        # meanwhile this process reads the database instead.
        with contextlib.suppress(RedisError):
            await self._hub.redis.set(status_key(user_id), CHANGED, ex=STATUS_TTL)

    async def _recheck(self, sockets: list[Revocable]) -> None:
        """Close those of ``sockets`` whose tokens their accounts no longer admit."""
        for user_id in {s.user.id for s in sockets}:
            self._changed[user_id] = time.monotonic()
            try:
                status = await self.status(user_id)
            except Exception:
                logger.warning("accounts: cannot check user %s again", user_id, exc_info=True)
                continue
            for socket in [s for s in sockets if s.user.id == user_id]:
                try:
                    access_admits(status, socket.user.claims)
                except ApplicationError as refused:
                    await socket.revoke(_close_reason(refused))

    def _spawn(self, coroutine: Any) -> "asyncio.Task[Any]":
        task: asyncio.Task[Any] = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _close_reason(refused: ApplicationError) -> str:
    if refused.code in (ErrorCode.ACCOUNT_DISABLED, ErrorCode.ACCOUNT_REJECTED):
        return refused.code
    if refused.code == ErrorCode.ACCOUNT_PENDING:
        return AccountClose.DISABLED
    return AccountClose.REVOKED


def _settle(
    future: "asyncio.Future[UserStatus | None]",
    *,
    result: UserStatus | None = None,
    exception: BaseException | None = None,
) -> None:
    if future.done():  # every waiter was cancelled
        return
    if exception is None:
        future.set_result(result)
    else:
        future.set_exception(exception)
        future.exception()  # retrieved here too: waiters may all have gone
