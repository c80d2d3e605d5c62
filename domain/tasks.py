"""Celery tasks of the domain: thin wrappers around services."""

from celery import shared_task

from domain.services.idempotency import idempotent_requests_forget
from domain.services.outbox import outbox_relay
from domain.services.reservations import reservations_sweep


@shared_task(name="reservations.sweep")
def sweep_reservations() -> dict[str, int]:
    """Expire, re-alert and release bed holds that are due (runs every few seconds)."""
    return reservations_sweep()


@shared_task(name="idempotency.forget")
def forget_idempotency_keys() -> int:
    """Delete remembered Idempotency-Key answers past their retention (runs every 15 min)."""
    return idempotent_requests_forget()


@shared_task(name="outbox.relay")
def relay_outbox() -> int:
    """Publish what the outbox still holds, e.g. events a commit could not publish while Redis
    was unreachable (runs every OUTBOX_RELAY_SECONDS)."""
    return outbox_relay()
