"""The reservation workflow: a crew asks up to three ERs to take a patient; each ER acknowledges
and decides; the first approval wins and withdraws the others; approvals hold a bed.

Every change to an existing reservation is a ``Move`` of the table below, made by one function,
``_make``, in the transaction of the service that asked for it: lock, check the move is allowed
from the current status, set the fields, save, append to the audit trail, and after commit
publish a ``reservation.<action>`` event carrying the reservation's full current state to
``hospital.<hpid>`` and ``crew.<id>`` — never to anyone else. Bed holds change the hospital's
``held`` count, published as ``beds.changed`` like any other bed change.

Locks, always taken in this order so transitions never deadlock: the patient condition (so two
hospitals approving the same patient are serialized and exactly one wins), then the hospital's
status row (so hold counts stay exact), then the reservation rows.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from domain.errors import Conflict, ErrorCode, PermissionDenied, ValidationFailed
from domain.events import (
    Event,
    ReservationAction,
    beds_changed,
    events_publish_on_commit,
    reservation_changed,
)
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
from domain.selectors.reservations import held_counts, reservation_get, reservation_summary
from domain.services.rate_limits import Limit, rate_limit_hit

MAX_HOSPITALS_PER_REQUEST = 3

PENDING, APPROVED = ReservationStatus.PENDING, ReservationStatus.APPROVED


@dataclass(frozen=True, slots=True)
class Move:
    """One allowed change of a reservation: from which statuses, to which (None: the status
    stays), what the audit trail and the event call it, whether it starts (+1) or ends (-1) a
    bed hold, and, for a move that keeps the status, the one column it writes."""

    action: str  # the audit trail's name for it
    event: ReservationAction
    sources: tuple[ReservationStatus, ...]
    target: ReservationStatus | None = None
    hold: int = 0
    writes: str | None = None  # None: the whole row is saved

    def conflict(self, reservation: Reservation) -> Conflict:
        code = (
            ErrorCode.RESERVATION_NOT_PENDING
            if PENDING in self.sources
            else ErrorCode.RESERVATION_NOT_APPROVED
        )
        return Conflict(
            f"The reservation is {reservation.status}; it can no longer be {self.action}.",
            code=code,
            current=reservation_summary(reservation),
        )


ACKNOWLEDGE = Move(
    "acknowledged", ReservationAction.ACKNOWLEDGED, (PENDING,), writes="acknowledged_at"
)
APPROVE = Move("approved", ReservationAction.DECIDED, (PENDING,), APPROVED, hold=+1)
REJECT = Move("rejected", ReservationAction.DECIDED, (PENDING,), ReservationStatus.REJECTED)
WITHDRAW = Move("withdrawn", ReservationAction.WITHDRAWN, (PENDING,), ReservationStatus.WITHDRAWN)
CANCEL = Move("cancelled", ReservationAction.CANCELLED, (PENDING,), ReservationStatus.CANCELLED)
CANCEL_APPROVED = Move(
    "cancelled", ReservationAction.CANCELLED, (APPROVED,), ReservationStatus.CANCELLED, hold=-1
)
COMPLETE = Move(
    "completed", ReservationAction.COMPLETED, (APPROVED,), ReservationStatus.COMPLETED, hold=-1
)
EXPIRE = Move("expired", ReservationAction.EXPIRED, (PENDING,), ReservationStatus.EXPIRED)
REMIND = Move("reminded", ReservationAction.REMINDER, (PENDING,), writes="reminded_at")
RELEASE_HOLD = Move(
    "hold_expired",
    ReservationAction.HOLD_EXPIRED,
    (APPROVED,),
    hold=-1,
    writes="hold_released_at",
)

_CLOSING = {
    ReservationStatus.WITHDRAWN,
    ReservationStatus.CANCELLED,
    ReservationStatus.COMPLETED,
    ReservationStatus.EXPIRED,
}

Fields = Callable[[Reservation, datetime], None]


def _no_fields(reservation: Reservation, now: datetime) -> None:
    pass


def _make(
    reservation: Reservation,
    move: Move,
    *,
    actor: User | None,
    now: datetime,
    fields: Fields = _no_fields,
    reason: str = "",
    note: str = "",
) -> list[Event]:
    """Make ``move`` on a reservation already locked (``_locked``) whose status allows it: set
    the status and the move's own ``fields``, save, audit; the events to publish on commit."""
    before = reservation.status
    if move.target is not None:
        reservation.status = move.target
    if move.target in _CLOSING:
        reservation.closed_at = now
    releases = move.hold < 0 and reservation.hold_released_at is None
    if releases:
        reservation.hold_released_at = now
    fields(reservation, now)
    if move.writes is None:
        reservation.save()
    else:
        reservation.save(update_fields=[move.writes, "updated_at"])
    _audit(reservation, move.action, before, actor=actor, now=now, reason=reason, note=note)
    events = reservation_changed(action=move.event, reservation=reservation_summary(reservation))
    if move.hold > 0 or releases:
        events += _held_change(reservation.hospital, move.hold)
    return events


def _audit(
    reservation: Reservation,
    action: str,
    before: str,
    *,
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


def _held_change(hospital: Hospital, change: int) -> list[Event]:
    """The hospital's new ``held`` count. Call with its status row locked, after the hold has
    changed."""
    new = held_counts(hospital_ids=[hospital.pk]).get(hospital.pk, 0)
    status = ERStatus.objects.filter(hospital=hospital).first()
    return beds_changed(
        hpid=hospital.hpid,
        region_code=hospital.region_code,
        changes={"held": {"old": new - change, "new": new}},
        hvidate=status.hvidate if status else None,
    )


def _locked(reservation_id: int) -> Reservation:
    """The reservation, after locking its patient's condition, its hospital's status row and
    itself, in that order (the module's lock order)."""
    condition_id, hospital_id = Reservation.objects.values_list("condition_id", "hospital_id").get(
        pk=reservation_id
    )
    PatientCondition.objects.select_for_update().get(pk=condition_id)
    list(ERStatus.objects.select_for_update().filter(hospital_id=hospital_id))
    return (
        Reservation.objects.select_for_update()
        .select_related("hospital", "crew", "condition")
        .get(pk=reservation_id)
    )


def _decide(
    reservation_id: int,
    moves: Sequence[Move],
    *,
    by: User,
    fields: Fields = _no_fields,
    reason: str = "",
    note: str = "",
) -> Reservation:
    """Make whichever of ``moves`` the reservation's status allows, for a person: a status
    that allows none is a ``Conflict`` carrying the reservation's current state."""
    reservation = _locked(reservation_id)
    move = next((m for m in moves if reservation.status in m.sources), None)
    if move is None:
        raise moves[0].conflict(reservation)
    events = _make(
        reservation, move, actor=by, now=timezone.now(), fields=fields, reason=reason, note=note
    )
    events_publish_on_commit(events)
    return reservation


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
    """Record the patient's condition and send it to one to three hospitals at once.

    A crew makes at most ``LIMIT_RESERVATIONS_PER_CREW`` requests in a while (``RateLimited``)
    and has at most ``RESERVATION_MAX_OPEN_PER_CREW`` of its reservations pending at once
    (``Conflict``, ``too_many_open_reservations``): no crew fills the ERs' queues."""
    if crew.role != Role.AMBULANCE:
        raise PermissionDenied("Only ambulance crews request reservations.")
    rate_limit_hit(Limit.RESERVATIONS_PER_CREW, str(crew.pk))
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
    _ensure_open_allowance(crew, len(unique))
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
        distance = _distance(latitude, longitude, hospital)
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
        _audit(reservation, "requested", "", actor=crew, now=now)
        summary = reservation_summary(reservation)
        events_publish_on_commit(
            reservation_changed(action=ReservationAction.REQUESTED, reservation=summary)
        )
        created.append(reservation)
    return created


def _ensure_open_allowance(crew: User, requested: int) -> None:
    """``Conflict`` unless ``requested`` more pending reservations keep the crew within
    ``RESERVATION_MAX_OPEN_PER_CREW``. The crew's row is locked first, so two requests at once
    are counted one after the other (no other transition locks users: no deadlock)."""
    User.objects.select_for_update().filter(pk=crew.pk).values_list("pk").first()
    pending = Reservation.objects.filter(crew=crew, status=PENDING).count()
    allowed = settings.RESERVATION_MAX_OPEN_PER_CREW
    if pending + requested > allowed:
        raise Conflict(
            f"At most {allowed} requests may wait for a decision at once; {pending} do. "
            "Cancel one or wait for the ERs' answers.",
            code=ErrorCode.TOO_MANY_OPEN_RESERVATIONS,
        )


def _distance(latitude: float | None, longitude: float | None, hospital: Hospital) -> float | None:
    if latitude is None or longitude is None:
        return None
    if hospital.latitude is None or hospital.longitude is None:
        return None
    return round(distance_km(latitude, longitude, hospital.latitude, hospital.longitude), 2)


def _for_crew(user: User, reservation_id: int) -> None:
    reservation_get(user=user, reservation_id=reservation_id)  # NotFound unless it is theirs
    if user.role != Role.AMBULANCE:
        raise PermissionDenied("Only the crew that made the request may do this.")


@transaction.atomic
def reservation_cancel(*, reservation_id: int, by: User) -> Reservation:
    """The crew calls it off (pending or approved); an approved one's bed hold is released."""
    _for_crew(by, reservation_id)
    return _decide(reservation_id, [CANCEL, CANCEL_APPROVED], by=by)


@transaction.atomic
def reservation_complete(*, reservation_id: int, by: User) -> Reservation:
    """The crew has arrived and handed the patient over; the bed hold ends."""
    _for_crew(by, reservation_id)
    return _decide(reservation_id, [COMPLETE], by=by)


# -- the hospital's side -----------------------------------------------------------------------


def _for_staff(user: User, reservation_id: int) -> None:
    reservation_get(user=user, reservation_id=reservation_id)  # NotFound unless addressed to it
    if user.role != Role.HOSPITAL:
        raise PermissionDenied("Only the addressed hospital's staff may do this.")


@transaction.atomic
def reservation_acknowledge(*, reservation_id: int, by: User) -> Reservation:
    """The ER has seen the request: the crew is told at once. Repeating it changes nothing."""
    _for_staff(by, reservation_id)
    reservation = _locked(reservation_id)
    if reservation.status not in ACKNOWLEDGE.sources:
        raise ACKNOWLEDGE.conflict(reservation)
    if reservation.acknowledged_at is None:
        events = _make(reservation, ACKNOWLEDGE, actor=by, now=timezone.now(), fields=_acknowledged)
        events_publish_on_commit(events)
    return reservation


def _acknowledged(reservation: Reservation, now: datetime) -> None:
    reservation.acknowledged_at = reservation.acknowledged_at or now


@transaction.atomic
def reservation_approve(*, reservation_id: int, by: User) -> Reservation:
    """Accept the patient. The approval holds a bed, and every other pending request for the
    same patient is withdrawn in this same transaction: of two hospitals approving at once,
    exactly one wins and the other gets ``Conflict`` (409) with its withdrawal."""
    _for_staff(by, reservation_id)

    def approved(reservation: Reservation, now: datetime) -> None:
        _decided(reservation, now, by)
        reservation.hold_expires_at = now + timedelta(seconds=settings.RESERVATION_HOLD_SECONDS)

    reservation = _locked(reservation_id)
    if reservation.status not in APPROVE.sources:
        raise APPROVE.conflict(reservation)
    now = timezone.now()
    events = _make(reservation, APPROVE, actor=by, now=now, fields=approved)
    others = (
        Reservation.objects.select_for_update()
        .select_related("hospital", "crew", "condition")
        .filter(condition_id=reservation.condition_id, status__in=WITHDRAW.sources)
        .exclude(pk=reservation.pk)
    )
    note = f"approved by {reservation.hospital.hpid}"
    for other in others:
        events += _make(other, WITHDRAW, actor=by, now=now, note=note)
    events_publish_on_commit(events)
    return reservation


def _decided(reservation: Reservation, now: datetime, by: User) -> None:
    reservation.decided_at = now
    reservation.decided_by = by
    reservation.acknowledged_at = reservation.acknowledged_at or now


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

    def rejected(reservation: Reservation, now: datetime) -> None:
        _decided(reservation, now, by)
        reservation.decline_reason = reason
        reservation.decline_note = note.strip()

    return _decide(
        reservation_id, [REJECT], by=by, fields=rejected, reason=reason, note=note.strip()
    )


# -- time --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Sweep:
    """A move the clock makes: on the reservations ``due`` at a time, with its own fields."""

    move: Move
    due: Callable[[datetime], Q]
    fields: Fields = _no_fields


def _reminded(reservation: Reservation, now: datetime) -> None:
    reservation.reminded_at = now


def _unseen_since(now: datetime) -> Q:
    created_before = now - timedelta(seconds=settings.RESERVATION_REMIND_AFTER_SECONDS)
    return Q(
        status=PENDING,
        acknowledged_at__isnull=True,
        reminded_at__isnull=True,
        created_at__lte=created_before,
    )


SWEEPS = {
    "expired": _Sweep(EXPIRE, lambda now: Q(status=PENDING, expires_at__lte=now)),
    "reminded": _Sweep(REMIND, _unseen_since, fields=_reminded),
    "holds_released": _Sweep(
        RELEASE_HOLD,
        lambda now: Q(status=APPROVED, hold_released_at__isnull=True, hold_expires_at__lte=now),
    ),
}


def reservations_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Expire pending requests past their time, re-alert unacknowledged ones once, and end bed
    holds past theirs (in that order); how many of each. ``now`` is a parameter so the clock
    can be controlled in tests."""
    now = now or timezone.now()
    counts = {}
    for name, sweep in SWEEPS.items():
        found = list(Reservation.objects.filter(sweep.due(now)).values_list("pk", flat=True))
        counts[name] = sum(_sweep_one(pk, sweep, now) for pk in found)
    return counts


@transaction.atomic
def _sweep_one(reservation_id: int, sweep: _Sweep, now: datetime) -> int:
    """Make the sweep's move if, once locked, the reservation is still due (a person may have
    acted on it since it was found)."""
    reservation = _locked(reservation_id)
    if not Reservation.objects.filter(sweep.due(now), pk=reservation_id).exists():
        return 0
    events = _make(reservation, sweep.move, actor=None, now=now, fields=sweep.fields)
    events_publish_on_commit(events)
    return 1
