"""Celery tasks of the domain: thin wrappers around services."""

from celery import shared_task

from domain.services.reservations import reservations_sweep


@shared_task(name="reservations.sweep")
def sweep_reservations() -> dict[str, int]:
    """Expire, re-alert and release bed holds that are due (runs every few seconds)."""
    return reservations_sweep()
