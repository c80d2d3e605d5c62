"""The reservation workflow through the JSON API, on MariaDB, with its events read back from
the real Redis streams they were published to."""

import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from django.db import connection
from django.test import Client
from pytest_django import DjangoCaptureOnCommitCallbacks

from domain.errors import Conflict, ErrorCode
from domain.models import Reservation, ReservationEvent, ReservationStatus, Role, User
from domain.selectors.reservations import reservations_open_snapshot
from domain.services.reservations import reservation_approve, reservations_sweep
from tests.conftest import StreamEvents, bearer
from tests.factories import ERStatusFactory, HospitalFactory, UserFactory

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse as Response

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("empty_streams")]
JSON = "application/json"
CONDITION = {
    "sex": "female",
    "age_band": "60_69",
    "systolic_bp": 150,
    "diastolic_bp": 90,
    "pulse": 110,
    "respiratory_rate": 22,
    "spo2": 93,
    "temperature": "37.8",
    "consciousness": "verbal",
    "chief_complaint": "Crushing chest pain, 30 min",
    "suspected_category": 1,
}
Json = dict[str, Any]


@dataclass(frozen=True)
class World:
    """Who acts in these tests: the staff of three Seoul ERs (HOSPA001, HOSPB001 and HOSPC001,
    three general beds each), two crews and an admin."""

    staff_a: User
    staff_b: User
    staff_c: User
    crew: User  # crew_name "중부 1"
    other_crew: User
    admin: User


@pytest.fixture
def world() -> World:
    """Three hospitals with staff, two crews, one admin."""
    hospitals = {
        key: ERStatusFactory(
            hospital=HospitalFactory(hpid=hpid, latitude=lat, longitude=lon), er_general=3
        ).hospital
        for key, hpid, lat, lon in [
            ("a", "HOSPA001", 37.5796, 126.9990),
            ("b", "HOSPB001", 37.5685, 126.9678),
            ("c", "HOSPC001", 37.4929, 127.0463),
        ]
    }
    staff = {key: UserFactory(role=Role.HOSPITAL, hospital=h) for key, h in hospitals.items()}
    return World(
        staff_a=staff["a"],
        staff_b=staff["b"],
        staff_c=staff["c"],
        crew=UserFactory(role=Role.AMBULANCE, crew_name="중부 1"),
        other_crew=UserFactory(role=Role.AMBULANCE),
        admin=UserFactory(role=Role.ADMIN),
    )


def _request(api: Client, crew: User, hpids: list[str], **extra: object) -> list[Json]:
    body = {
        "hospitals": hpids,
        "condition": CONDITION,
        "latitude": 37.5665,
        "longitude": 126.9780,
        **extra,
    }
    response = api.post("/api/reservations", body, content_type=JSON, **bearer(crew))
    assert response.status_code == 201, response.content
    created: list[Json] = response.json()
    return created


def _act(
    api: Client, user: User, reservation_id: int, action: str, body: Json | None = None
) -> "Response":
    return api.post(
        f"/api/reservations/{reservation_id}/{action}",
        body or {},
        content_type=JSON,
        **bearer(user),
    )


def test_request_reaches_exactly_the_addressed_hospitals(
    api: Client,
    world: World,
    stream_events: StreamEvents,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    """Each addressed ER gets reservation.requested with the condition, crew and ETA; the crew
    gets its copies; nobody else gets anything."""
    with django_capture_on_commit_callbacks(execute=True):
        created = _request(api, world.crew, ["HOSPA001", "HOSPB001"])
    assert [r["hpid"] for r in created] == ["HOSPA001", "HOSPB001"]
    assert created[0]["group"] == created[1]["group"]
    assert 2.2 < created[0]["distance_km"] < 2.5  # City Hall to 서울대학교병원
    assert created[0]["eta_minutes"] == 4  # at 40 km/h
    [to_a] = stream_events("hospital.HOSPA001")
    assert to_a["type"] == "reservation.requested"
    assert to_a["data"]["condition"]["chief_complaint"] == CONDITION["chief_complaint"]
    assert to_a["data"]["crew"]["crew_name"] == "중부 1"
    assert to_a["data"]["expires_at"]
    assert len(stream_events("hospital.HOSPB001")) == 1
    assert stream_events("hospital.HOSPC001") == []
    assert [e["data"]["hpid"] for e in stream_events(f"crew.{world.crew.pk}")] == [
        "HOSPA001",
        "HOSPB001",
    ]
    assert stream_events(f"crew.{world.other_crew.pk}") == []


def test_acknowledge_approve_complete_with_holds_and_history(
    api: Client,
    world: World,
    stream_events: StreamEvents,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    """The happy path: seen → approved (others withdrawn, a bed held) → completed (released);
    every transition is in the history with its actor."""
    crew = world.crew
    with django_capture_on_commit_callbacks(execute=True):
        a, b, c = _request(api, crew, ["HOSPA001", "HOSPB001", "HOSPC001"])
        seen = _act(api, world.staff_a, a["id"], "acknowledge")
        again = _act(api, world.staff_a, a["id"], "acknowledge")
        approved = _act(api, world.staff_a, a["id"], "approve")
    assert seen.status_code == again.status_code == approved.status_code == 200
    assert approved.json()["status"] == "approved"
    assert approved.json()["hold_expires_at"]
    crew_events = [e["type"] for e in stream_events(f"crew.{crew.pk}")]
    assert crew_events == ["reservation.requested"] * 3 + [
        "reservation.acknowledged",
        "reservation.decided",
        "reservation.withdrawn",
        "reservation.withdrawn",
    ]
    assert [e["type"] for e in stream_events("hospital.HOSPB001")][-1] == "reservation.withdrawn"
    assert Reservation.objects.get(pk=b["id"]).status == ReservationStatus.WITHDRAWN
    held = [
        e["data"]["changes"]["held"]
        for e in stream_events("beds.11")
        if "held" in e["data"]["changes"]
    ]
    assert held == [{"old": 0, "new": 1}]
    hospital = api.get("/api/hospitals/HOSPA001").json()
    assert hospital["status"]["held"] == 1
    assert hospital["status"]["beds"]["er_general"] == 3

    with django_capture_on_commit_callbacks(execute=True):
        done = _act(api, crew, a["id"], "complete")
    assert done.json()["status"] == "completed"
    assert stream_events(f"crew.{crew.pk}")[-1]["type"] == "reservation.completed"
    assert stream_events("hospital.HOSPA001")[-1]["type"] == "reservation.completed"
    assert api.get("/api/hospitals/HOSPA001").json()["status"]["held"] == 0

    history = api.get(f"/api/reservations/{a['id']}/history", **bearer(crew)).json()
    assert [(h["action"], h["from_status"], h["to_status"], h["actor_role"]) for h in history] == [
        ("requested", "", "pending", "ambulance"),
        ("acknowledged", "pending", "pending", "hospital"),
        ("approved", "pending", "approved", "hospital"),
        ("completed", "approved", "completed", "ambulance"),
    ]
    assert history[2]["actor"] == world.staff_a.username
    assert (
        api.get(f"/api/reservations/{c['id']}/history", **bearer(world.staff_c)).json()[-1][
            "action"
        ]
        == "withdrawn"
    )


def test_reject_needs_a_valid_reason(api: Client, world: World) -> None:
    """Reasons are structured; other needs a note; the crew learns the reason."""
    [a] = _request(api, world.crew, ["HOSPA001"])
    assert _act(api, world.staff_a, a["id"], "reject", {"reason": "bored"}).status_code == 400
    no_note = _act(api, world.staff_a, a["id"], "reject", {"reason": "other"})
    assert no_note.status_code == 400
    assert "note" in no_note.json()["error"]["fields"]
    rejected = _act(api, world.staff_a, a["id"], "reject", {"reason": "no_specialist"})
    assert rejected.status_code == 200
    assert (rejected.json()["status"], rejected.json()["decline_reason"]) == (
        "rejected",
        "no_specialist",
    )


def test_forbidden_and_conflicting_actions(api: Client, world: World) -> None:
    """Role and ownership are enforced (403/404) and only pending requests are decided (409)."""
    [a] = _request(api, world.crew, ["HOSPA001"])
    rid = a["id"]
    assert _act(api, world.crew, rid, "approve").status_code == 403
    assert _act(api, world.admin, rid, "approve").status_code == 403
    not_theirs = _act(api, world.staff_b, rid, "approve")
    assert not_theirs.status_code == 404
    assert not_theirs.json()["error"]["code"] == ErrorCode.RESERVATION_NOT_FOUND
    assert api.get(f"/api/reservations/{rid}", **bearer(world.staff_b)).status_code == 404
    assert _act(api, world.other_crew, rid, "cancel").status_code == 404
    assert _act(api, world.staff_a, rid, "cancel").status_code == 403
    not_approved = _act(api, world.crew, rid, "complete")
    assert not_approved.status_code == 409
    assert not_approved.json()["error"]["code"] == ErrorCode.RESERVATION_NOT_APPROVED
    assert (
        api.post(
            "/api/reservations",
            {"hospitals": ["HOSPA001"], "condition": CONDITION},
            content_type=JSON,
            **bearer(world.staff_a),
        ).status_code
        == 403
    )
    _act(api, world.staff_a, rid, "reject", {"reason": "overcrowded"})
    for user, action in [
        (world.staff_a, "approve"),
        (world.staff_a, "acknowledge"),
        (world.staff_a, "reject"),
        (world.crew, "cancel"),
    ]:
        response = _act(api, user, rid, action, {"reason": "no_bed"})
        assert response.status_code == 409, (action, response.content)
        assert response.json()["error"]["code"] == ErrorCode.RESERVATION_NOT_PENDING
        assert response.json()["error"]["current"]["status"] == "rejected"
    assert api.get(f"/api/reservations/{rid}", **bearer(world.admin)).status_code == 200


def test_lists_are_scoped(api: Client, world: World) -> None:
    """A crew lists its own, a hospital its queue, an admin all; status filters."""
    _request(api, world.crew, ["HOSPA001", "HOSPB001"])
    _request(api, world.other_crew, ["HOSPA001"])

    def ids(user: User, query: str = "") -> int:
        count: int = api.get(f"/api/reservations{query}", **bearer(user)).json()["count"]
        return count

    assert ids(world.crew) == 2
    assert ids(world.other_crew) == 1
    assert ids(world.staff_a) == 2
    assert ids(world.staff_b) == 1
    assert ids(world.staff_c) == 0
    assert ids(world.admin) == 3
    assert ids(world.admin, "?status=approved") == 0
    assert api.get("/api/reservations?status=lost", **bearer(world.admin)).status_code == 400


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"hospitals": ["HOSPA001"] * 0}, "hospitals"),
        ({"hospitals": ["HOSPA001", "HOSPB001", "HOSPC001", "HOSPX001"]}, "hospitals"),
        ({"hospitals": ["NOPE0001"]}, "hospitals"),
        ({"condition": {**CONDITION, "systolic_bp": 400}}, "systolic_bp"),
        ({"condition": {**CONDITION, "systolic_bp": 80, "diastolic_bp": 120}}, "__all__"),
        ({"condition": {**CONDITION, "spo2": 101}}, "spo2"),
        ({"condition": {**CONDITION, "consciousness": "sleepy"}}, "condition.consciousness"),
        ({"condition": {**CONDITION, "pre_ktas": 0}}, "condition.pre_ktas"),
        ({"condition": {**CONDITION, "pre_ktas": 6}}, "condition.pre_ktas"),
        ({"latitude": 91}, "latitude"),
    ],
)
def test_request_validation(api: Client, world: World, change: Json, field: str) -> None:
    """Impossible vitals, unknown or too many hospitals are 400s naming the field."""
    body = {"hospitals": ["HOSPA001"], "condition": CONDITION, **change}
    response = api.post("/api/reservations", body, content_type=JSON, **bearer(world.crew))
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"], response.json()
    assert not Reservation.objects.exists()


@pytest.mark.parametrize("level", [1, 2, 3, 4, 5, None])
def test_pre_ktas_levels_reach_the_er(
    api: Client,
    world: World,
    level: int | None,
    stream_events: StreamEvents,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    """Each Pre-KTAS level 1–5, or none, is stored and carried by the answer, the event and the
    hospital's snapshot."""
    with django_capture_on_commit_callbacks(execute=True):
        [created] = _request(
            api, world.crew, ["HOSPA001"], condition={**CONDITION, "pre_ktas": level}
        )
    assert created["condition"]["pre_ktas"] == level
    [event] = stream_events("hospital.HOSPA001")
    assert event["data"]["condition"]["pre_ktas"] == level
    [open_one] = reservations_open_snapshot(hpid="HOSPA001")
    assert open_one["condition"]["pre_ktas"] == level
    detail = api.get(f"/api/reservations/{created['id']}", **bearer(world.staff_a)).json()
    assert detail["condition"]["pre_ktas"] == level


def test_reminder_and_expiry_on_a_controlled_clock(
    api: Client,
    world: World,
    stream_events: StreamEvents,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    """Unseen after the reminder time: one re-alert to the ER and a notice to the crew; past
    its time the request expires for both sides."""
    [a] = _request(api, world.crew, ["HOSPA001"])
    created = Reservation.objects.get(pk=a["id"]).created_at
    with django_capture_on_commit_callbacks(execute=True):
        assert reservations_sweep(now=created + timedelta(seconds=59))["reminded"] == 0
        assert reservations_sweep(now=created + timedelta(seconds=61))["reminded"] == 1
        assert reservations_sweep(now=created + timedelta(seconds=120))["reminded"] == 0
        assert reservations_sweep(now=created + timedelta(seconds=299))["expired"] == 0
        assert reservations_sweep(now=created + timedelta(seconds=301))["expired"] == 1
    for stream in ("hospital.HOSPA001", f"crew.{world.crew.pk}"):
        # The request's own events waited in the outbox (this test ran its commit hooks only
        # from here on): the first relay delivers them ahead of the sweeps'.
        assert [e["type"] for e in stream_events(stream)] == [
            "reservation.requested",
            "reservation.reminder",
            "reservation.expired",
        ]
    assert _act(api, world.staff_a, a["id"], "approve").status_code == 409


def test_acknowledged_requests_get_no_reminder(api: Client, world: World) -> None:
    """An ER that has seen the request is not re-alerted."""
    [a] = _request(api, world.crew, ["HOSPA001"])
    _act(api, world.staff_a, a["id"], "acknowledge")
    created = Reservation.objects.get(pk=a["id"]).created_at
    assert reservations_sweep(now=created + timedelta(seconds=90))["reminded"] == 0


def test_bed_hold_lapses_and_cancel_releases(
    api: Client,
    world: World,
    stream_events: StreamEvents,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    """A hold ends when it lapses (sweep) or when the crew cancels; each shows on the bed
    stream as held going down."""
    with django_capture_on_commit_callbacks(execute=True):
        [a] = _request(api, world.crew, ["HOSPA001"])
        [b] = _request(api, world.crew, ["HOSPA001"])
        _act(api, world.staff_a, a["id"], "approve")
        _act(api, world.staff_a, b["id"], "approve")
    assert api.get("/api/hospitals/HOSPA001").json()["status"]["held"] == 2
    hold_expires_at = Reservation.objects.get(pk=a["id"]).hold_expires_at
    assert hold_expires_at is not None
    lapse = hold_expires_at + timedelta(seconds=1)
    with django_capture_on_commit_callbacks(execute=True):
        assert reservations_sweep(now=lapse)["holds_released"] == 2
    assert api.get("/api/hospitals/HOSPA001").json()["status"]["held"] == 0
    with django_capture_on_commit_callbacks(execute=True):
        [c] = _request(api, world.crew, ["HOSPA001"])
        _act(api, world.staff_a, c["id"], "approve")
        cancelled = _act(api, world.crew, c["id"], "cancel")
    assert cancelled.json()["status"] == "cancelled"
    held = [e["data"]["changes"]["held"]["new"] for e in stream_events("beds.all")]
    assert held == [1, 2, 1, 0, 1, 0]
    assert stream_events(f"crew.{world.crew.pk}")[-1]["type"] == "reservation.cancelled"
    assert [e["type"] for e in stream_events("hospital.HOSPA001")].count(
        "reservation.hold_expired"
    ) == 2


def test_history_cannot_be_edited(api: Client, world: World) -> None:
    """The audit trail is append-only, in the model and in the API."""
    [a] = _request(api, world.crew, ["HOSPA001"])
    entry = ReservationEvent.objects.get(reservation_id=a["id"])
    entry.note = "rewritten"
    with pytest.raises(PermissionError):
        entry.save()
    with pytest.raises(PermissionError):
        entry.delete()
    url = f"/api/reservations/{a['id']}/history"
    assert api.delete(url, **bearer(world.admin)).status_code == 405
    assert api.put(url, {}, content_type=JSON, **bearer(world.admin)).status_code == 405


@pytest.mark.django_db(transaction=True)
def test_simultaneous_approvals_have_exactly_one_winner(world: World) -> None:
    """Two ERs approving the same patient at the same instant, in real concurrent
    transactions: one wins, the other gets a conflict and its request is withdrawn."""
    from domain.services.reservations import reservation_request

    reservations = reservation_request(
        crew=world.crew, condition=CONDITION, hpids=["HOSPA001", "HOSPB001"]
    )
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def approve(staff: User, reservation: Reservation) -> None:
        try:
            barrier.wait()
            reservation_approve(reservation_id=reservation.pk, by=staff)
            outcomes[reservation.hospital.hpid] = "won"
        except Conflict as exc:
            status = (exc.current or {}).get("status")  # a Conflict carries the current state
            outcomes[reservation.hospital.hpid] = f"409 {status}"
        finally:
            connection.close()

    threads = [
        threading.Thread(target=approve, args=(world.staff_a, reservations[0])),
        threading.Thread(target=approve, args=(world.staff_b, reservations[1])),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes.values()) == ["409 withdrawn", "won"], outcomes
    statuses = sorted(Reservation.objects.values_list("status", flat=True))
    assert statuses == ["approved", "withdrawn"]


def test_crew_cancels_a_pending_multi_request(
    api: Client,
    world: World,
    stream_events: StreamEvents,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    """Cancelling one pending request tells that hospital; the others stay pending."""
    with django_capture_on_commit_callbacks(execute=True):
        a, b = _request(api, world.crew, ["HOSPA001", "HOSPB001"])
        cancelled = _act(api, world.crew, a["id"], "cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert stream_events("hospital.HOSPA001")[-1]["type"] == "reservation.cancelled"
    assert [e["type"] for e in stream_events("hospital.HOSPB001")] == ["reservation.requested"]
    assert Reservation.objects.get(pk=b["id"]).status == ReservationStatus.PENDING
    assert _act(api, world.staff_a, a["id"], "acknowledge").status_code == 409
