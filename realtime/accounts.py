"""The accounts behind this process's sockets: their status, cached so that authenticating a
socket costs no database query, and the closing of a socket whose account lost its access.

A socket's user status (``domain.services.tokens.UserStatus``) is cached in Redis as JSON at
``weer:<namespace>:user:<id>`` for ``STATUS_TTL`` seconds and shared by every process; a miss
reads it from the database once. Every change that takes access away (disable, reject, log-out,
new password) is published on the ``accounts`` stream with the change itself (the outbox), and
each hub follows that stream through an ``AccountWatcher``, a member like any socket. For each
change it drops the cached status, reads the account from the database for the next
``STATUS_TTL`` seconds instead of the cache (so a status cached by a read that raced the change
cannot outlive it), and closes the affected local sockets: within moments of the commit, on
every process. If the stream has to be resynchronised (Redis lost events), every local socket's
account is checked against the database again.
"""

import asyncio
import contextlib
import json
import logging
import time
from collections import defaultdict
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Protocol

from channels.db import database_sync_to_async
from django.conf import settings
from redis.exceptions import RedisError

from domain.errors import ApplicationError, ErrorCode
from domain.events import ACCOUNT_CHANGED, ACCOUNTS, AccountClose
from domain.services.tokens import UserStatus, access_admits, user_status_read
from realtime.auth import SocketUser
from realtime.publishing import stream_head
from realtime.sinks import Frame

if TYPE_CHECKING:
    from realtime.hub import Hub

logger = logging.getLogger(__name__)

STATUS_TTL = 60  # seconds a cached status is used; also how long a change bypasses the cache


def status_key(user_id: int) -> str:
    return f"{settings.REDIS_KEY_PREFIX}user:{user_id}"


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
        self._tasks: set[asyncio.Task[Any]] = set()
        self._following = False

    # -- statuses ---------------------------------------------------------------------------

    async def status(self, user_id: int) -> UserStatus | None:
        """``user_id``'s status from the cache, or from the database (then cached)."""
        self.follow()
        started = time.monotonic()
        if not self._recently_changed(user_id, started):
            try:
                cached = await self._hub.redis.get(status_key(user_id))
            except RedisError:
                cached = None  # the database still answers
            if cached is not None:
                return _status_from_json(cached)
        # Not thread-sensitive: a crowd reconnecting at once is read on several threads.
        status = await database_sync_to_async(user_status_read, thread_sensitive=False)(
            user_id=user_id
        )
        if status is not None and not self._recently_changed(user_id, started):
            with contextlib.suppress(RedisError):
                await self._hub.redis.set(status_key(user_id), _status_json(status), ex=STATUS_TTL)
        return status

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
                head = await stream_head(self._hub.redis, ACCOUNTS)
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
        # If Redis fails it expires; meanwhile this process reads the database instead.
        with contextlib.suppress(RedisError):
            await self._hub.redis.delete(status_key(user_id))

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

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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


def _status_json(status: UserStatus) -> str:
    return json.dumps(asdict(status))


def _status_from_json(raw: bytes | str) -> UserStatus:
    fields = json.loads(raw)
    fields["revoked_families"] = tuple(fields["revoked_families"])
    return UserStatus(**fields)
