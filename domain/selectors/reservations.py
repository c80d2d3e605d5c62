"""Reads of reservations."""

from django.db.models import Q

from domain.models import Reservation, ReservationStatus

OPEN_STATUSES = (ReservationStatus.PENDING, ReservationStatus.APPROVED)


def _summary(reservation: Reservation) -> dict[str, object]:
    return {
        "id": reservation.pk,
        "status": reservation.status,
        "hpid": reservation.hospital.hpid,
        "crew": reservation.crew_id,
        "created_at": reservation.created_at,
        "expires_at": reservation.expires_at,
        "acknowledged_at": reservation.acknowledged_at,
        "decided_at": reservation.decided_at,
    }


def reservations_open_snapshot(
    *, hpid: str | None = None, crew_id: int | None = None
) -> list[dict[str, object]]:
    """Open (pending or approved) reservations addressed to a hospital or made by a crew,
    oldest first: the snapshot of ``hospital.<hpid>`` and ``crew.<id>`` streams."""
    scope = Q(hospital__hpid=hpid) if hpid is not None else Q(crew_id=crew_id)
    reservations = (
        Reservation.objects.select_related("hospital")
        .filter(scope, status__in=OPEN_STATUSES)
        .order_by("created_at", "id")
    )
    return [_summary(r) for r in reservations]
