"""The reservation workflow: a crew asks up to three ERs to take a patient; each ER acknowledges
and decides; the first approval wins and withdraws the others; approvals hold a bed.

Every transition is one transaction that also appends to the audit trail, and after commit
publishes a ``reservation.<action>`` event carrying the reservation's full current state to
``hospital.<hpid>`` and ``crew.<id>`` — never to anyone else. Bed holds change the hospital's
``held`` count, published as ``beds.changed`` like any other bed change.

Locks, always taken in this order so transitions never deadlock: the patient condition (so two
hospitals approving the same patient are serialized and exactly one wins), then the hospital's
status row (so hold counts stay exact), then the reservation rows.
"""

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from domain.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from domain.geo import distance_km
from domain.models import (
    DeclineReason,
    ERStatus,
    Hospital,
    PatientCondition,
    Reservation,
    ReservationEvent,
    ReservationStatus,
    Role,
    User,
)
from domain.selectors.reservations import OPEN_STATUSES, reservation_summary
from realtime.publishing import Event, publish_on_commit
from realtime.streams import beds_streams, crew_stream, hospital_stream

MAX_HOSPITALS_PER_REQUEST = 3


def _events(action: str, reservation: Reservation) -> list[Event]:
    data = reservation_summary(reservation)
    return [
        (hospital_stream(reservation.hospital.hpid), f"reservation.{action}", data),
        (crew_stream(reservation.crew_id), f"reservation.{action}", data),
    ]


def _audit(
    reservation: Reservation,
    *,
    action: str,
    before: str,
    actor: User | None,
    now: datetime,
    reason: str = "",
    note: str = "",
) -> None:
    ReservationEvent.objects.create(
        reservation=reservation,
        action=action,
        from_status=before,
        to_status=reservation.status,
        actor=actor,
        actor_role=actor.role if actor else "system",
        reason=reason,
        note=note,
        at=now,
    )


def held_count(hospital: Hospital) -> int:
    return Reservation.objects.filter(
        hospital=hospital, status=ReservationStatus.APPROVED, hold_released_at__isnull=True
    ).count()


def _held_change(hospital: Hospital, change: int) -> list[Event]:
    """Call with the hospital's status row locked, after the hold has changed."""
    new = held_count(hospital)
    status = ERStatus.objects.filter(hospital=hospital).first()
    data = {
        "hpid": hospital.hpid,
        "changes": {"held": {"old": new - change, "new": new}},
        "hvidate": status.hvidate if status else None,
    }
    return [(stream, "beds.changed", data) for stream in beds_streams(hospital.region_code)]


def _lock_hospital(hospital: Hospital) -> None:
    list(ERStatus.objects.select_for_update().filter(hospital=hospital))


# -- reads -------------------------------------------------------------------------------------


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
        raise NotFound(f"No reservation {reservation_id}.", code="reservation_not_found")
    return reservation


def reservation_history(*, user: User, reservation_id: int) -> QuerySet[ReservationEvent]:
    reservation = reservation_get(user=user, reservation_id=reservation_id)
    return reservation.history.select_related("actor")


# -- the crew's side ---------------------------------------------------------------------------


@transaction.atomic
def reservation_request(
    *,
    crew: User,
    condition: Mapping[str, Any],
    hpids: Sequence[str],
    latitude: float | None = None,
    longitude: float | None = None,
) -> list[Reservation]:
    """Record the patient's condition and send it to one to three hospitals at once."""
    if crew.role != Role.AMBULANCE:
        raise PermissionDenied("Only ambulance crews request reservations.")
    unique = list(dict.fromkeys(hpids))
    if not 1 <= len(unique) <= MAX_HOSPITALS_PER_REQUEST:
        raise ValidationFailed(
            "Send to one to three hospitals.",
            fields={"hospitals": ["Name one to three distinct hpids."]},
        )
    hospitals = {h.hpid: h for h in Hospital.objects.filter(hpid__in=unique)}
    unknown = [hpid for hpid in unique if hpid not in hospitals]
    if unknown:
        raise ValidationFailed(
            "Unknown hospital.", fields={"hospitals": [f"Unknown: {', '.join(unknown)}."]}
        )
    patient = PatientCondition(recorded_by=crew, **condition)
    try:
        patient.full_clean()
    except DjangoValidationError as exc:
        raise ValidationFailed(
            "The patient condition is invalid.", fields=exc.message_dict
        ) from exc
    patient.save()
    now = timezone.now()
    created = []
    for hpid in unique:
        hospital = hospitals[hpid]
        distance = None
        if (
            latitude is not None
            and longitude is not None
            and hospital.latitude is not None
            and hospital.longitude is not None
        ):
            distance = round(
                distance_km(latitude, longitude, hospital.latitude, hospital.longitude), 2
            )
        reservation = Reservation.objects.create(
            crew=crew,
            hospital=hospital,
            condition=patient,
            expires_at=now + timedelta(seconds=settings.RESERVATION_PENDING_SECONDS),
            distance_km=distance,
            eta_minutes=None
            if distance is None
            else max(1, round(distance / settings.RESERVATION_ETA_KMH * 60)),
        )
        _audit(reservation, action="requested", before="", actor=crew, now=now)
        publish_on_commit(_events("requested", reservation))
        created.append(reservation)
    return created


def _for_crew(user: User, reservation_id: int) -> Reservation:
    reservation = reservation_get(user=user, reservation_id=reservation_id)
    if user.role != Role.AMBULANCE:
        raise PermissionDenied("Only the crew that made the request may do this.")
    return reservation


def _locked(reservation_id: int) -> Reservation:
    """The reservation, with its patient's condition and its hospital locked (in that order)."""
    condition_id = Reservation.objects.values_list("condition_id", flat=True).get(pk=reservation_id)
    PatientCondition.objects.select_for_update().get(pk=condition_id)
    reservation = (
        Reservation.objects.select_for_update()
        .select_related("hospital", "crew", "condition")
        .get(pk=reservation_id)
    )
    _lock_hospital(reservation.hospital)
    return reservation


def _conflict(reservation: Reservation, wanted: str) -> Conflict:
    return Conflict(
        f"The reservation is {reservation.status}; it can no longer be {wanted}.",
        code="reservation_not_" + ("pending" if wanted != "completed" else "approved"),
        current=reservation_summary(reservation),
    )


@transaction.atomic
def reservation_cancel(*, reservation_id: int, by: User) -> Reservation:
    """The crew calls it off (pending or approved); an approved one's bed hold is released."""
    _for_crew(by, reservation_id)
    reservation = _locked(reservation_id)
    if reservation.status not in OPEN_STATUSES:
        raise _conflict(reservation, "cancelled")
    now, before = timezone.now(), reservation.status
    reservation.status = ReservationStatus.CANCELLED
    reservation.closed_at = now
    released = before == ReservationStatus.APPROVED and reservation.hold_released_at is None
    if released:
        reservation.hold_released_at = now
    reservation.save()
    events = _held_change(reservation.hospital, -1) if released else []
    _audit(reservation, action="cancelled", before=before, actor=by, now=now)
    publish_on_commit(_events("cancelled", reservation) + events)
    return reservation


@transaction.atomic
def reservation_complete(*, reservation_id: int, by: User) -> Reservation:
    """The crew has arrived and handed the patient over; the bed hold ends."""
    _for_crew(by, reservation_id)
    reservation = _locked(reservation_id)
    if reservation.status != ReservationStatus.APPROVED:
        raise _conflict(reservation, "completed")
    now = timezone.now()
    reservation.status = ReservationStatus.COMPLETED
    reservation.closed_at = now
    released = reservation.hold_released_at is None
    if released:
        reservation.hold_released_at = now
    reservation.save()
    events = _held_change(reservation.hospital, -1) if released else []
    _audit(reservation, action="completed", before=ReservationStatus.APPROVED, actor=by, now=now)
    publish_on_commit(_events("completed", reservation) + events)
    return reservation


# -- the hospital's side -----------------------------------------------------------------------


def _for_staff(user: User, reservation_id: int) -> Reservation:
    reservation = reservation_get(user=user, reservation_id=reservation_id)
    if user.role != Role.HOSPITAL:
        raise PermissionDenied("Only the addressed hospital's staff may do this.")
    return reservation


@transaction.atomic
def reservation_acknowledge(*, reservation_id: int, by: User) -> Reservation:
    """The ER has seen the request: the crew is told at once. Repeating it changes nothing."""
    _for_staff(by, reservation_id)
    reservation = _locked(reservation_id)
    if reservation.status != ReservationStatus.PENDING:
        raise _conflict(reservation, "acknowledged")
    if reservation.acknowledged_at is None:
        now = timezone.now()
        reservation.acknowledged_at = now
        reservation.save(update_fields=["acknowledged_at", "updated_at"])
        _audit(reservation, action="acknowledged", before=reservation.status, actor=by, now=now)
        publish_on_commit(_events("acknowledged", reservation))
    return reservation


@transaction.atomic
def reservation_approve(*, reservation_id: int, by: User) -> Reservation:
    """Accept the patient. The approval holds a bed, and every other pending request for the
    same patient is withdrawn in this same transaction: of two hospitals approving at once,
    exactly one wins and the other gets ``Conflict`` (409) with its withdrawal."""
    _for_staff(by, reservation_id)
    reservation = _locked(reservation_id)
    if reservation.status != ReservationStatus.PENDING:
        raise _conflict(reservation, "approved")
    now = timezone.now()
    reservation.status = ReservationStatus.APPROVED
    reservation.decided_at = now
    reservation.decided_by = by
    reservation.acknowledged_at = reservation.acknowledged_at or now
    reservation.hold_expires_at = now + timedelta(seconds=settings.RESERVATION_HOLD_SECONDS)
    reservation.save()
    _audit(reservation, action="approved", before=ReservationStatus.PENDING, actor=by, now=now)
    events = _events("decided", reservation) + _held_change(reservation.hospital, +1)
    others = (
        Reservation.objects.select_for_update()
        .select_related("hospital", "crew", "condition")
        .filter(condition_id=reservation.condition_id, status=ReservationStatus.PENDING)
        .exclude(pk=reservation.pk)
    )
    for other in others:
        other.status = ReservationStatus.WITHDRAWN
        other.closed_at = now
        other.save()
        _audit(
            other,
            action="withdrawn",
            before=ReservationStatus.PENDING,
            actor=by,
            now=now,
            note=f"approved by {reservation.hospital.hpid}",
        )
        events += _events("withdrawn", other)
    publish_on_commit(events)
    return reservation


@transaction.atomic
def reservation_reject(
    *, reservation_id: int, by: User, reason: str, note: str = ""
) -> Reservation:
    """Decline, with a structured reason (``other`` needs a note)."""
    if reason not in DeclineReason.values:
        raise ValidationFailed(
            "Unknown reason.", fields={"reason": [f"One of {DeclineReason.values}."]}
        )
    if reason == DeclineReason.OTHER and not note.strip():
        raise ValidationFailed("Say why.", fields={"note": ["Required when the reason is other."]})
    _for_staff(by, reservation_id)
    reservation = _locked(reservation_id)
    if reservation.status != ReservationStatus.PENDING:
        raise _conflict(reservation, "rejected")
    now = timezone.now()
    reservation.status = ReservationStatus.REJECTED
    reservation.decided_at = now
    reservation.decided_by = by
    reservation.decline_reason = reason
    reservation.decline_note = note.strip()
    reservation.acknowledged_at = reservation.acknowledged_at or now
    reservation.save()
    _audit(
        reservation,
        action="rejected",
        before=ReservationStatus.PENDING,
        actor=by,
        now=now,
        reason=reason,
        note=reservation.decline_note,
    )
    publish_on_commit(_events("decided", reservation))
    return reservation


# -- time --------------------------------------------------------------------------------------


def reservations_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Expire pending requests past their time, re-alert unacknowledged ones once, and end bed
    holds past theirs. ``now`` is a parameter so the clock can be controlled in tests."""
    now = now or timezone.now()
    counts = {"expired": 0, "reminded": 0, "holds_released": 0}
    due = Reservation.objects.filter(status=ReservationStatus.PENDING, expires_at__lte=now)
    for reservation_id in list(due.values_list("pk", flat=True)):
        counts["expired"] += _expire(reservation_id, now)
    remind_before = now - timedelta(seconds=settings.RESERVATION_REMIND_AFTER_SECONDS)
    unseen = Reservation.objects.filter(
        status=ReservationStatus.PENDING,
        acknowledged_at__isnull=True,
        reminded_at__isnull=True,
        created_at__lte=remind_before,
    )
    for reservation_id in list(unseen.values_list("pk", flat=True)):
        counts["reminded"] += _remind(reservation_id, now)
    lapsed = Reservation.objects.filter(
        status=ReservationStatus.APPROVED, hold_released_at__isnull=True, hold_expires_at__lte=now
    )
    for reservation_id in list(lapsed.values_list("pk", flat=True)):
        counts["holds_released"] += _release_hold(reservation_id, now)
    return counts


@transaction.atomic
def _expire(reservation_id: int, now: datetime) -> int:
    reservation = _locked(reservation_id)
    if reservation.status != ReservationStatus.PENDING or reservation.expires_at > now:
        return 0
    reservation.status = ReservationStatus.EXPIRED
    reservation.closed_at = now
    reservation.save()
    _audit(reservation, action="expired", before=ReservationStatus.PENDING, actor=None, now=now)
    publish_on_commit(_events("expired", reservation))
    return 1


@transaction.atomic
def _remind(reservation_id: int, now: datetime) -> int:
    reservation = _locked(reservation_id)
    if (
        reservation.status != ReservationStatus.PENDING
        or reservation.acknowledged_at
        or reservation.reminded_at
    ):
        return 0
    reservation.reminded_at = now
    reservation.save(update_fields=["reminded_at", "updated_at"])
    _audit(reservation, action="reminded", before=reservation.status, actor=None, now=now)
    publish_on_commit(_events("reminder", reservation))
    return 1


@transaction.atomic
def _release_hold(reservation_id: int, now: datetime) -> int:
    reservation = _locked(reservation_id)
    if (
        reservation.status != ReservationStatus.APPROVED
        or reservation.hold_released_at
        or reservation.hold_expires_at is None
        or reservation.hold_expires_at > now
    ):
        return 0
    reservation.hold_released_at = now
    reservation.save(update_fields=["hold_released_at", "updated_at"])
    _audit(reservation, action="hold_expired", before=reservation.status, actor=None, now=now)
    publish_on_commit(_events("hold_expired", reservation) + _held_change(reservation.hospital, -1))
    return 1
