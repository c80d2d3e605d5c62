"""The account statuses servers authenticate sockets with (``tokens.UserStatus``), cached in
Redis and shared by every server process, and the one way a change of access is announced.

A cached status lives at ``<REDIS_KEY_PREFIX>user:<id>`` as JSON for ``STATUS_TTL`` seconds.
A change that affects access (``account_change_publish``) replaces it, as soon as the change
commits and before the request that made it answers, with the marker ``CHANGED`` for
``STATUS_TTL`` seconds; then it publishes ``account.changed`` (through the outbox) so that
every server closes the sockets that lost their access. A reader that finds no status reads
the database and stores what it read only where nothing is (``SET NX``), and only if it read
within ``STORE_WITHIN`` seconds: a read that raced the change can never overwrite its marker,
and no status read before a change outlives it in the cache. Without Redis, readers read the
database (and a marker that could not be written is made up for by each server's own
bypass when the ``account.changed`` event reaches it: ``realtime.accounts``).
"""

import json
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import redis
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from redis.backoff import NoBackoff
from redis.retry import Retry

from domain.events import AccountClose, account_changed, events_publish_on_commit
from domain.models import RefreshToken, User
from domain.redis_driver import DRIVER_INFO

logger = logging.getLogger(__name__)

STATUS_TTL = 60  # seconds a cached status is used, and a change's marker kept
STORE_WITHIN = 5.0  # a status read longer ago than this is not cached: it may predate a change
CHANGED = b"changed"  # the cached value of an account whose access just changed
REDIS_TIMEOUT_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class UserStatus:
    """What deciding whether a user's access token is admitted takes, and what a socket keeps
    of its user. Plain values, so servers can cache it (as JSON) and share it."""

    id: int
    role: str
    hpid: str | None
    approval: str
    is_active: bool
    generation: int
    revoked_families: tuple[str, ...]  # logins revoked within an access token's lifetime


def user_status_of(user: User) -> UserStatus:
    """``user``'s status, with the logins revoked within an access token's lifetime."""
    since = timezone.now() - settings.ACCESS_TOKEN_LIFETIME
    revoked = RefreshToken.objects.filter(user=user, revoked_at__gte=since)
    return UserStatus(
        id=user.pk,
        role=user.role,
        hpid=user.hospital.hpid if user.hospital else None,
        approval=user.approval,
        is_active=user.is_active,
        generation=user.token_generation,
        revoked_families=tuple(sorted(set(revoked.values_list("family", flat=True)))),
    )


READ_BATCH = 500  # ids per query


def user_statuses_read(*, user_ids: Iterable[int]) -> dict[int, UserStatus]:
    """The statuses of those of ``user_ids`` that exist, from the database: two queries per
    ``READ_BATCH`` users however many there are (a crowd of sockets connecting at once)."""
    ids = sorted(set(user_ids))
    since = timezone.now() - settings.ACCESS_TOKEN_LIFETIME
    statuses = {}
    for start in range(0, len(ids), READ_BATCH):
        chunk = ids[start : start + READ_BATCH]
        revoked: defaultdict[int, set[str]] = defaultdict(set)
        for user_id, family in RefreshToken.objects.filter(
            user_id__in=chunk, revoked_at__gte=since
        ).values_list("user_id", "family"):
            revoked[user_id].add(family)
        for user_id, role, hpid, approval, is_active, generation in User.objects.filter(
            pk__in=chunk
        ).values_list("pk", "role", "hospital__hpid", "approval", "is_active", "token_generation"):
            statuses[user_id] = UserStatus(
                id=user_id,
                role=role,
                hpid=hpid,
                approval=approval,
                is_active=is_active,
                generation=generation,
                revoked_families=tuple(sorted(revoked[user_id])),
            )
    return statuses


_clients: dict[str, redis.Redis] = {}  # by REDIS_URL


def status_key(user_id: int) -> str:
    return f"{settings.REDIS_KEY_PREFIX}user:{user_id}"


def status_json(status: UserStatus) -> str:
    return json.dumps(asdict(status))


def status_from_json(raw: bytes | str) -> UserStatus:
    fields = json.loads(raw)
    fields["revoked_families"] = tuple(fields["revoked_families"])
    return UserStatus(**fields)


def account_change_publish(
    *, user_id: int, close: AccountClose | None = None, family: str | None = None
) -> None:
    """Announce, once the current transaction commits, that ``user_id``'s access changed: the
    cached status is replaced by ``CHANGED`` at once, then ``account.changed`` is published
    (with ``close``, the servers close its sockets, or only those of the login ``family``)."""
    transaction.on_commit(lambda: status_cache_mark_changed(user_id))
    events_publish_on_commit(account_changed(user_id=user_id, close=close, family=family))


def status_cache_mark_changed(user_id: int) -> None:
    """Replace ``user_id``'s cached status with ``CHANGED`` (logged, not raised, if Redis is
    unreachable: the event's delivery makes every server bypass the cache instead)."""
    try:
        _redis().set(status_key(user_id), CHANGED, ex=STATUS_TTL)
    except redis.RedisError as exc:
        logger.warning("account %s: cannot mark its cached status changed: %r", user_id, exc)


def _redis() -> redis.Redis:
    client = _clients.get(settings.REDIS_URL)
    if client is None:
        client = _clients[settings.REDIS_URL] = redis.Redis.from_url(
            settings.REDIS_URL,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            retry=Retry(NoBackoff(), 1),
            driver_info=DRIVER_INFO,
        )
    return client
