"""Reads of the outbox: how much committed change still waits to be published."""

from dataclasses import dataclass
from datetime import datetime

from domain.models import OutboxEvent


@dataclass(frozen=True, slots=True)
class OutboxBacklog:
    pending: int
    oldest_created_at: datetime | None  # None when nothing is pending


def outbox_backlog() -> OutboxBacklog:
    """Pending events and when the oldest was written. Cheap while the outbox is near empty, as
    it is whenever Redis is reachable: a count of its rows and one primary-key lookup."""
    oldest = OutboxEvent.objects.order_by("id").values_list("created_at", flat=True).first()
    if oldest is None:
        return OutboxBacklog(0, None)
    return OutboxBacklog(OutboxEvent.objects.count(), oldest)
