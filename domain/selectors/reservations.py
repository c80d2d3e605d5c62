"""Reads of reservations: what each user may see, their summaries, history and bed holds."""

from collections.abc import Collection
from typing import Any

from django.db.models import Count, F, Q, QuerySet

from domain.errors import ErrorCode, NotFound, ValidationFailed
from domain.models import Reservation, ReservationStatus, Role, User

OPEN_STATUSES = (ReservationStatus.PENDING, ReservationStatus.APPROVED)
CONDITION_FIELDS = (
    "sex",
    "age_band",
    "systolic_bp",
    "diastolic_bp",
    "pulse",
    "temperature",
    "respiratory_rate",
    "spo2",
    "consciousness",
    "pre_ktas",
    "chief_complaint",
    "suspected_category",
    "note",
)


def reservation_summary(reservation: Reservation) -> dict[str, Any]:
    """The reservation as clients see it, in every event, snapshot and API answer."""
    condition, crew, hospital = reservation.condition, reservation.crew, reservation.hospital
    return {
        "id": reservation.pk,
        "status": reservation.status,
        "hpid": hospital.hpid,
        "hospital_name": hospital.name,
        "group": condition.pk,
        "crew": {
            "id": crew.pk,
            "agency": crew.agency,
            "crew_name": crew.crew_name,
            "phone": crew.phone,
        },
        "condition": {name: getattr(condition, name) for name in CONDITION_FIELDS},
        "distance_km": reservation.distance_km,
        "eta_minutes": reservation.eta_minutes,
        "created_at": reservation.created_at,
        "expires_at": reservation.expires_at,
        "acknowledged_at": reservation.acknowledged_at,
        "reminded_at": reservation.reminded_at,
        "decided_at": reservation.decided_at,
        "decline_reason": reservation.decline_reason or None,
        "decline_note": reservation.decline_note,
        "hold_expires_at": reservation.hold_expires_at,
        "hold_released_at": reservation.hold_released_at,
        "closed_at": reservation.closed_at,
    }


def reservations_open_snapshot(
    *, hpid: str | None = None, crew_id: int | None = None
) -> list[dict[str, Any]]:
    """Open (pending or approved) reservations addressed to a hospital or made by a crew,
    oldest first: the snapshot of ``hospital.<hpid>`` and ``crew.<id>`` streams."""
    scope = Q(hospital__hpid=hpid) if hpid is not None else Q(crew_id=crew_id)
    reservations = (
        Reservation.objects.select_related("hospital", "crew", "condition")
        .filter(scope, status__in=OPEN_STATUSES)
        .order_by("created_at", "id")
    )
    return [reservation_summary(r) for r in reservations]


def held_counts(*, hospital_ids: Collection[int] | None = None) -> dict[int, int]:
    """Beds held by approved reservations, per hospital id (absent: none), of every hospital
    or of ``hospital_ids``."""
    holding = Reservation.objects.filter(
        status=ReservationStatus.APPROVED, hold_released_at__isnull=True
    )
    if hospital_ids is not None:
        holding = holding.filter(hospital_id__in=hospital_ids)
    return dict(holding.values_list("hospital_id").annotate(n=Count("id")).order_by())


def _visible_to(user: User) -> QuerySet[Reservation]:
    reservations = Reservation.objects.select_related("hospital", "crew", "condition")
    if user.role == Role.ADMIN:
        return reservations
    if user.role == Role.HOSPITAL:
        return reservations.filter(hospital=user.hospital)
    return reservations.filter(crew=user)


def reservation_list(*, user: User, status: str | None = None) -> QuerySet[Reservation]:
    """A crew's own reservations, a hospital's queue, or (admins) all; newest first."""
    if status is not None and status not in ReservationStatus.values:
        raise ValidationFailed(
            "Unknown status.", fields={"status": [f"One of {ReservationStatus.values}."]}
        )
    reservations = _visible_to(user)
    return reservations.filter(status=status) if status else reservations


def reservation_get(*, user: User, reservation_id: int) -> Reservation:
    """Raises ``NotFound`` for reservations the user may not see (their existence included)."""
    reservation = _visible_to(user).filter(pk=reservation_id).first()
    if reservation is None:
        raise NotFound(f"No reservation {reservation_id}.", code=ErrorCode.RESERVATION_NOT_FOUND)
    return reservation


def reservation_history(*, user: User, reservation_id: int) -> list[dict[str, Any]]:
    """Every transition of a reservation the user may see, oldest first, as plain values."""
    reservation = reservation_get(user=user, reservation_id=reservation_id)
    rows = reservation.history.values(
        "action", "from_status", "to_status", "actor_role", "reason", "note", "at"
    ).annotate(actor=F("actor__username"))
    return [dict(row) for row in rows]
