"""The outbox relay: publishes the events of committed changes, oldest first, at least once.

``domain.events.events_publish_on_commit`` writes events to the outbox in the transaction of
their change and runs ``outbox_relay`` when it commits; a Celery beat task runs it every
``OUTBOX_RELAY_SECONDS`` for whatever a failed publish left. The publisher recognises an event
it was given before by its ``outbox_id`` and publishes nothing again, so at-least-once here is
once for clients (docs/realtime.md § Durable delivery).

One relay at a time: a relay locks the oldest pending rows with ``FOR UPDATE NOWAIT`` and keeps
them locked until it has published and deleted them, so rows go out in id order. A relay that
finds them locked leaves at once rather than wait: the holder is another relay, which looks
again after it is done, or a transaction that has not committed its own rows yet, whose relay
runs when it commits (waiting would hold up the request that committed).
"""

import itertools
import json
import logging
import time

from django.conf import settings
from django.db import OperationalError, transaction
from django.utils.module_loading import import_string

from domain.events import Event
from domain.models import OutboxEvent

logger = logging.getLogger(__name__)

BATCH = 500
# The relay run by a commit stops after this many batches, so that the request that happens to
# commit first after an outage does not deliver the whole backlog before it answers: beat does.
ON_COMMIT_BATCHES = 4
# After a failed publish, relays run by commits in this process leave it to beat for this long:
# while Redis is unreachable (a partition costs each attempt the publisher's timeout) a request
# that commits does not wait for a publish bound to fail. Beat keeps trying every second.
AFTER_FAILURE_SECONDS = 2.0
_failed_at: float | None = None  # this process's last failed publish (monotonic)
_LOCK_WAIT = 1205  # MariaDB/MySQL: "Lock wait timeout exceeded", what NOWAIT raises


class _PublishFailed(Exception):
    pass


def outbox_relay_after_commit() -> int:
    """The relay a commit runs: at most ``ON_COMMIT_BATCHES``, and none within
    ``AFTER_FAILURE_SECONDS`` of a failed publish in this process (beat delivers then)."""
    if _failed_at is not None and time.monotonic() - _failed_at < AFTER_FAILURE_SECONDS:
        return 0
    return outbox_relay(batches=ON_COMMIT_BATCHES)


def outbox_relay(*, batches: int | None = None) -> int:
    """Publish pending outbox events in id order, in batches of ``BATCH``, deleting each batch
    once published, until none are left (or ``batches`` went out); how many were published.

    Never raises for the two expected reasons to stop: the publisher failed (Redis
    unreachable: one warning line, the rows stay for the next try) or the oldest rows are
    locked (by another relay, or by a transaction that has not committed them yet). Database
    errors other than that lock conflict raise.
    """
    publish = import_string(settings.EVENTS_PUBLISHER)
    sent = 0
    for _ in itertools.count() if batches is None else range(batches):
        try:
            with transaction.atomic():
                rows = list(
                    OutboxEvent.objects.select_for_update(nowait=True).order_by("id")[:BATCH]
                )
                if not rows:
                    break
                try:
                    publish([_event(row) for row in rows])
                except Exception as error:
                    raise _PublishFailed from error
                OutboxEvent.objects.filter(id__in=[row.pk for row in rows]).delete()
        except _PublishFailed as failed:
            global _failed_at
            _failed_at = time.monotonic()
            logger.warning(
                "outbox: publishing failed, events from id %s wait for the next try: %s: %s",
                rows[0].pk,
                type(failed.__cause__).__name__,
                failed.__cause__,
            )
            break
        except OperationalError as error:
            if error.args and error.args[0] == _LOCK_WAIT:
                break  # another relay, or a transaction not yet committed, holds the oldest
            raise
        sent += len(rows)
    return sent


def _event(row: OutboxEvent) -> Event:
    return Event(row.stream, row.kind, json.loads(row.data), outbox_id=row.delivery_id)
