"""Idempotency keys: a request sent again with the same key gets the first answer and has no
second effect (a tablet resends what it queued offline, possibly twice).

Rules (docs/api.md § Idempotency-Key):

- A key is 1–200 printable ASCII characters, scoped to the user who sends it.
- The first request with a key runs; if it succeeds, its status and body are remembered in the
  same transaction as its effect. A request that fails (an error answer) is not remembered: the
  whole transaction, key included, rolls back, and a retry runs again.
- The same key again with the same request (same operation, same canonical body) gets the
  remembered answer; with a different one it is refused (``Unprocessable``,
  ``idempotency_key_reused``).
- Two concurrent requests with one key: the database's unique (user, key) index makes the
  second one's claim wait until the first commits (then it gets the first's answer) or rolls back
  (then it runs itself). Exactly one effect either way.
- Keys are kept ``IDEMPOTENCY_KEY_SECONDS`` (24 h) and deleted by
  ``idempotent_requests_forget``, run periodically by Celery beat.
"""

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone

from domain.errors import ErrorCode, Unprocessable, ValidationFailed
from domain.models import IdempotentRequest, User

HEADER = "Idempotency-Key"
_VALID_KEY = re.compile(r"[\x20-\x7e]{1,200}")


@dataclass(frozen=True, slots=True)
class Answer:
    """What to answer: an HTTP status and a JSON-compatible body (lists, dicts, strings,
    numbers, booleans, None). ``replayed`` is true when it was remembered from an earlier
    request with the same key."""

    status: int
    body: Any
    replayed: bool = False


def idempotency_key_check(key: str) -> str:
    """``key`` if it is a valid idempotency key; ``ValidationFailed`` (400,
    ``invalid_idempotency_key``) otherwise."""
    if _VALID_KEY.fullmatch(key) is None:
        raise ValidationFailed(
            "The Idempotency-Key is invalid.",
            code=ErrorCode.INVALID_IDEMPOTENCY_KEY,
            fields={HEADER: ["Must be 1–200 printable ASCII characters."]},
        )
    return key


def request_fingerprint(*, operation: str, body: Mapping[str, Any]) -> str:
    """A digest of what a request asks for: its operation and its body, canonicalized (key order
    and whitespace do not matter)."""
    canonical = json.dumps(
        {"operation": operation, "body": body},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        cls=DjangoJSONEncoder,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def idempotent_request_run(
    *,
    user: User,
    key: str,
    operation: str,
    body: Mapping[str, Any],
    run: Callable[[], Answer],
) -> Answer:
    """Run ``run`` once per ``(user, key)``: the first time, in one transaction with the record
    of its answer; on a retry with the same ``operation`` and ``body``, return that answer
    (``replayed``) without running it.

    Raises ``ValidationFailed`` for an invalid key, ``Unprocessable`` (``idempotency_key_reused``)
    when the key was used for a different request, and whatever ``run`` raises (then nothing is
    remembered). A concurrent request with the same key blocks on the database's unique index
    until this one's transaction ends.
    """
    idempotency_key_check(key)
    fingerprint = request_fingerprint(operation=operation, body=body)
    with transaction.atomic():
        try:
            with transaction.atomic():  # a savepoint: a duplicate leaves the outer one usable
                claim = IdempotentRequest.objects.create(
                    user=user, key=key, operation=operation, fingerprint=fingerprint
                )
        except IntegrityError:
            return _remembered(user=user, key=key, fingerprint=fingerprint)
        answer = run()
        claim.status_code = answer.status
        claim.response_body = answer.body
        claim.save(update_fields=["status_code", "response_body"])
    return answer


def _remembered(*, user: User, key: str, fingerprint: str) -> Answer:
    """The committed answer of an earlier request with this key (the claim that failed waited
    for its transaction to commit)."""
    earlier = IdempotentRequest.objects.get(user=user, key=key)
    if earlier.fingerprint != fingerprint or earlier.status_code is None:
        raise Unprocessable(
            "This Idempotency-Key was already used for a different request.",
            code=ErrorCode.IDEMPOTENCY_KEY_REUSED,
            fields={HEADER: ["Already used for a different request; use a new key."]},
        )
    return Answer(status=earlier.status_code, body=earlier.response_body, replayed=True)


def idempotent_requests_forget(*, now: datetime | None = None) -> int:
    """Delete remembered answers older than ``IDEMPOTENCY_KEY_SECONDS``; how many. ``now`` is a
    parameter so the clock can be controlled in tests."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.IDEMPOTENCY_KEY_SECONDS)
    deleted, _ = IdempotentRequest.objects.filter(created_at__lt=cutoff).delete()
    return deleted
