"""Reads of reservations."""

from typing import Any

from django.db.models import Count, Q

from domain.models import Reservation, ReservationStatus

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


def held_counts() -> dict[int, int]:
    """Beds held by approved reservations, per hospital id (absent: none)."""
    rows = (
        Reservation.objects.filter(status=ReservationStatus.APPROVED, hold_released_at__isnull=True)
        .values_list("hospital_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    return dict(rows)
