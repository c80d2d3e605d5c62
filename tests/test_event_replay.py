"""Snapshot before + events = snapshot after (Zulip's events-system test): a client that took a
stream's snapshot and applied every event since, by the rules of docs/protocol.md, holds what a
fresh snapshot holds, after every step of a realistic sequence of changes. Real MariaDB and the
real publishing path into Redis; the events are read back from the stream's history."""

import functools
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any, cast

import pytest
from django.conf import settings
from django.utils import timezone
from pytest_django import DjangoCaptureOnCommitCallbacks, Settings

from domain.models import DeclineReason, Hospital, Role, User
from domain.selectors.hospitals import er_status_snapshot
from domain.selectors.reservations import reservations_open_snapshot
from domain.services import reservations
from domain.services.er_status import er_status_apply, region_poll_failed, region_poll_succeeded
from realtime.engine import SyncEngine, sync_engine
from realtime.publishing import encode_json, history_key
from tests.factories import (
    ERStatusFactory,
    HospitalFactory,
    PatientConditionFactory,
    UserFactory,
    bed_report,
)

pytestmark = pytest.mark.django_db

Json = dict[str, Any]


@functools.cache
def _engine() -> SyncEngine:
    """One client of the realtime engine for the module (a cluster client left to the garbage
    collector warns of its sockets)."""
    return sync_engine(settings.REALTIME_REDIS_URL)


class StreamReader:
    """Reads a stream's events from its history, each once, in seq order."""

    def __init__(self, stream: str) -> None:
        self._key = history_key(stream)
        self._client = _engine()
        self._client.delete(self._key)
        self._after = "-"

    def new_events(self) -> list[Json]:
        entries = cast(
            list[tuple[bytes, dict[bytes, bytes]]], self._client.xrange(self._key, self._after, "+")
        )
        entries = [e for e in entries if e[0].decode() != self._after]
        if entries:
            self._after = entries[-1][0].decode()
        return [json.loads(fields[b"f"]) for _, fields in entries]


def _wire(data: object) -> Any:
    """``data`` as a client receives it (JSON, times in UTC)."""
    return json.loads(encode_json(data))


# -- beds.<region> ---------------------------------------------------------------------------

# What a client keeps of a hospital's status; data_age_seconds and ingested_at are not carried
# by events (the age is derived at read time; the client derives it from hvidate).
_KEPT = ("hpid", "hvidate", "stale", "held", "beds")


def _beds_state(snapshot: list[Json]) -> dict[str, Json]:
    return {h["hpid"]: {key: h[key] for key in _KEPT} for h in snapshot}


def _apply_bed_event(state: dict[str, Json], event: Json, *, region_stale: bool) -> None:
    data = event["data"]
    if event["type"] == "beds.changed":
        blank = {"hpid": data["hpid"], "hvidate": None, "stale": region_stale, "held": 0}
        hospital = state.setdefault(data["hpid"], {**blank, "beds": {}})
        hospital["hvidate"] = data["hvidate"]
        for name, change in data["changes"].items():
            if name == "held":
                hospital["held"] = change["new"]
            elif change["new"] is None:  # unknown now: absent, never zero
                hospital["beds"].pop(name, None)
            else:
                hospital["beds"][name] = change["new"]
    elif event["type"] == "beds.stale":
        for hpid in data["hpids"]:
            state[hpid]["stale"] = data["stale"]
    # acceptance.changed and announcements.changed are not part of the beds snapshot.


def test_beds_region_snapshot_plus_events_is_the_next_snapshot(
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
    settings: Settings,
) -> None:
    """Bed changes, a new hospital, unknown values, bed holds, staleness and recovery: after
    each, the region's snapshot equals the previous one with the step's events applied."""
    settings.INGEST_STALE_AFTER_SECONDS = 0
    hospital = HospitalFactory(hpid="Z2600001", region_code="26")
    ERStatusFactory(hospital=hospital)
    crew = UserFactory(role=Role.AMBULANCE)
    staff = UserFactory(role=Role.HOSPITAL, hospital=hospital)
    reader = StreamReader("beds.26")
    state = _beds_state(_wire(er_status_snapshot(region_code="26")))
    region_stale = False
    t0 = timezone.now()

    def request() -> int:
        [made] = reservations.reservation_request(
            crew=crew, condition=_condition(), hpids=[hospital.hpid]
        )
        return made.pk

    steps: list[Callable[[], object]] = [
        lambda: er_status_apply(
            region_code="26", reports=[bed_report("Z2600001", t0, er_general=7, ct=True)]
        ),
        lambda: er_status_apply(
            region_code="26",
            reports=[
                bed_report("Z2600001", t0 + timedelta(minutes=1), er_general=6),  # ct unknown now
                bed_report("Z2600002", t0, er_general=-1, mri=False),  # a hospital new to us
            ],
        ),
        lambda: er_status_apply(  # older than what is stored: no change, no event
            region_code="26", reports=[bed_report("Z2600001", t0, er_general=1)]
        ),
        lambda: reservations.reservation_approve(reservation_id=request(), by=staff),
        lambda: region_poll_failed(region_code="26", error="timeout"),
        lambda: region_poll_succeeded(region_code="26"),
    ]
    for step in steps:
        with django_capture_on_commit_callbacks(execute=True):
            step()
        for event in reader.new_events():
            _apply_bed_event(state, event, region_stale=region_stale)
            if event["type"] == "beds.stale":
                region_stale = event["data"]["stale"]
        assert state == _beds_state(_wire(er_status_snapshot(region_code="26"))), step
    assert state["Z2600001"]["held"] == 1


# -- hospital.<hpid> -------------------------------------------------------------------------


def _condition() -> dict[str, Any]:
    fields = PatientConditionFactory.build()
    names = ("sex", "age_band", "pulse", "spo2", "consciousness", "chief_complaint")
    return {name: getattr(fields, name) for name in names}


def _open_reservations(reservations_by_id: dict[int, Json]) -> list[Json]:
    return sorted(reservations_by_id.values(), key=lambda r: (r["created_at"], r["id"]))


def _apply_reservation_event(state: dict[int, Json], event: Json) -> None:
    reservation = event["data"]  # every reservation event carries its full current state
    if reservation["status"] in ("pending", "approved"):
        state[reservation["id"]] = reservation
    else:
        state.pop(reservation["id"], None)


@pytest.fixture
def two_hospitals_and_a_crew() -> tuple[Hospital, User, Hospital, User, User]:
    a = ERStatusFactory(hospital=HospitalFactory(hpid="Z1100001")).hospital
    b = ERStatusFactory(hospital=HospitalFactory(hpid="Z1100002")).hospital
    return (
        a,
        UserFactory(role=Role.HOSPITAL, hospital=a),
        b,
        UserFactory(role=Role.HOSPITAL, hospital=b),
        UserFactory(role=Role.AMBULANCE),
    )


def test_hospital_snapshot_plus_events_is_the_next_snapshot(
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
    two_hospitals_and_a_crew: tuple[Hospital, User, Hospital, User, User],
) -> None:
    """Requests, acknowledgement, a withdrawal by another ER's approval, a rejection, an
    approval, a completion, a cancellation, a reminder and an expiry: after each, the ER's
    open reservations equal the previous ones with the step's events applied."""
    a, staff_a, b, staff_b, crew = two_hospitals_and_a_crew
    reader = StreamReader(f"hospital.{a.hpid}")
    state = {r["id"]: r for r in _wire(reservations_open_snapshot(hpid=a.hpid))}
    made: dict[str, int] = {}

    def request(name: str, *hospitals: Hospital) -> None:
        created = reservations.reservation_request(
            crew=crew, condition=_condition(), hpids=[h.hpid for h in hospitals]
        )
        made[name] = created[0].pk
        if len(created) > 1:
            made[name + "@b"] = created[1].pk

    def sweep_in(seconds: int) -> None:
        reservations.reservations_sweep(now=timezone.now() + timedelta(seconds=seconds))

    steps: list[Callable[[], object]] = [
        lambda: request("both", a, b),
        lambda: reservations.reservation_acknowledge(reservation_id=made["both"], by=staff_a),
        lambda: reservations.reservation_approve(reservation_id=made["both@b"], by=staff_b),
        lambda: request("declined", a),
        lambda: reservations.reservation_reject(
            reservation_id=made["declined"], by=staff_a, reason=DeclineReason.NO_BED
        ),
        lambda: request("taken", a),
        lambda: reservations.reservation_approve(reservation_id=made["taken"], by=staff_a),
        lambda: request("called off", a),
        lambda: reservations.reservation_complete(reservation_id=made["taken"], by=crew),
        lambda: reservations.reservation_cancel(reservation_id=made["called off"], by=crew),
        lambda: request("unseen", a),
        lambda: sweep_in(settings.RESERVATION_REMIND_AFTER_SECONDS + 1),  # a reminder
        lambda: sweep_in(settings.RESERVATION_PENDING_SECONDS + 1),  # an expiry
    ]
    for step in steps:
        with django_capture_on_commit_callbacks(execute=True):
            step()
        for event in reader.new_events():
            _apply_reservation_event(state, event)
        assert _open_reservations(state) == _wire(reservations_open_snapshot(hpid=a.hpid)), step
    assert state == {}
