"""Reads for ER-screen presence: the hospitals that have a screen or need one, with their
reservation figures (the decisions are ``domain.presence``'s)."""

from collections.abc import Collection
from datetime import datetime

from django.db.models import Count, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce

from domain.models import Hospital, Reservation, ReservationStatus
from domain.presence import HospitalDemand


def presence_hospitals(
    *, hpids: Collection[str], requested_since: datetime
) -> list[HospitalDemand]:
    """The hospitals named in ``hpids`` (those with ER screens) and those with pending
    reservations or a reservation created at or after ``requested_since``, each with its
    pending count and its newest reservation's creation time. One query; each hospital's
    figures are two index lookups (``hospital, status`` and ``hospital, created_at``)."""
    pending = (
        Reservation.objects.filter(hospital=OuterRef("pk"), status=ReservationStatus.PENDING)
        .order_by()
        .values("hospital")
        .annotate(n=Count("pk"))
        .values("n")
    )
    newest = (
        Reservation.objects.filter(hospital=OuterRef("pk"))
        .order_by("-created_at")
        .values("created_at")[:1]
    )
    rows = (
        Hospital.objects.annotate(
            pending=Coalesce(Subquery(pending), Value(0), output_field=IntegerField()),
            last_request_at=Subquery(newest),
        )
        .filter(
            Q(hpid__in=list(hpids)) | Q(pending__gt=0) | Q(last_request_at__gte=requested_since)
        )
        .order_by()
        .values_list("hpid", "name", "region_code", "pending", "last_request_at")
    )
    return [HospitalDemand(*row) for row in rows]
