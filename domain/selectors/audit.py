"""The reservation audit trail for administrators: every transition, filtered and newest first.

Read-only by construction: ``ReservationEvent`` rows are append-only (the model refuses
updates and deletes) and nothing here or in its API writes."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q, QuerySet

from domain.errors import PermissionDenied, ValidationFailed
from domain.models import ReservationEvent, ReservationStatus, Role, User


@dataclass(frozen=True)
class AuditFilters:
    """``hospital``: an hpid, or part of a hospital's name; ``crew``: a crew's username, or
    part of its unit or agency name; ``status``: the status a transition led to;
    ``since``/``until``: the transition's time, inclusive."""

    hospital: str = ""
    crew: str = ""
    status: str = ""
    since: datetime | None = None
    until: datetime | None = None
    reservation_id: int | None = None


def audit_events(*, by: User, filters: AuditFilters) -> QuerySet[ReservationEvent]:
    """Transitions matching ``filters``, newest first. Only administrators read the trail."""
    if by.role != Role.ADMIN or not by.may_sign_in:
        raise PermissionDenied("Only administrators read the audit log.")
    if filters.status and filters.status not in ReservationStatus.values:
        raise ValidationFailed(
            "The filter is invalid.",
            fields={"status": [f"Must be one of: {', '.join(ReservationStatus.values)}."]},
        )
    if filters.since and filters.until and filters.since > filters.until:
        raise ValidationFailed(
            "The filter is invalid.", fields={"until": ["Must not be before since."]}
        )
    events = ReservationEvent.objects.select_related(
        "reservation__hospital", "reservation__crew", "actor"
    ).order_by("-at", "-id")
    if filters.reservation_id is not None:
        events = events.filter(reservation_id=filters.reservation_id)
    if hospital := filters.hospital.strip():
        events = events.filter(
            Q(reservation__hospital__hpid=hospital)
            | Q(reservation__hospital__name__icontains=hospital)
        )
    if crew := filters.crew.strip():
        events = events.filter(
            Q(reservation__crew__username=crew)
            | Q(reservation__crew__crew_name__icontains=crew)
            | Q(reservation__crew__agency__icontains=crew)
        )
    if filters.status:
        events = events.filter(to_status=filters.status)
    if filters.since:
        events = events.filter(at__gte=filters.since)
    if filters.until:
        events = events.filter(at__lte=filters.until)
    return events
