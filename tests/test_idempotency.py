"""``Idempotency-Key`` on ``POST /api/reservations`` through the real API on MariaDB: a retried
request gets the first answer and creates nothing, even when the two run at once."""

import threading
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone
from pytest_django import DjangoCaptureOnCommitCallbacks

from domain.errors import ErrorCode
from domain.models import Hospital, IdempotentRequest, Reservation, Role, User
from domain.services.idempotency import idempotent_requests_forget
from domain.tasks import forget_idempotency_keys
from tests.conftest import StreamEvents, bearer
from tests.factories import ERStatusFactory, HospitalFactory, UserFactory
from tests.polling import wait_for

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse as Response

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("empty_streams")]
JSON = "application/json"
CONDITION = {
    "sex": "male",
    "age_band": "70_79",
    "systolic_bp": 90,
    "diastolic_bp": 60,
    "pulse": 120,
    "consciousness": "pain",
    "pre_ktas": 1,
    "chief_complaint": "Sudden right-sided weakness, 40 min",
    "suspected_category": 5,
}
BODY = {"hospitals": ["IDEMP001", "IDEMP002"], "condition": CONDITION}


@pytest.fixture
def crew() -> User:
    """A crew, and the two Seoul ERs it sends to (IDEMP001, IDEMP002)."""
    for hpid in ("IDEMP001", "IDEMP002"):
        ERStatusFactory(hospital=HospitalFactory(hpid=hpid))
    return UserFactory(role=Role.AMBULANCE)


def _post(api: Client, user: User, key: str | None, body: dict[str, Any] = BODY) -> "Response":
    headers = {} if key is None else {"Idempotency-Key": key}
    return api.post("/api/reservations", body, content_type=JSON, headers=headers, **bearer(user))


def test_a_retry_returns_the_first_answer_and_creates_nothing(
    api: Client,
    crew: User,
    stream_events: StreamEvents,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    """The same key and body again: the same status and body, no second reservation, no second
    event; the replay says it is one."""
    with django_capture_on_commit_callbacks(execute=True):
        first = _post(api, crew, "queued-7f3a")
        second = _post(api, crew, "queued-7f3a")
    assert first.status_code == second.status_code == 201, first.content
    assert first.content == second.content
    assert first["Idempotent-Replayed"] == "false"
    assert second["Idempotent-Replayed"] == "true"
    assert Reservation.objects.count() == 2  # one per addressed hospital, once
    assert len(stream_events("hospital.IDEMP001")) == 1
    assert [r["condition"]["pre_ktas"] for r in second.json()] == [1, 1]


def test_the_body_is_compared_as_json_not_as_bytes(api: Client, crew: User) -> None:
    """Key order and spacing do not make a request different."""
    reordered = {
        "condition": dict(reversed(list(CONDITION.items()))),
        "hospitals": BODY["hospitals"],
    }
    assert _post(api, crew, "k-1").status_code == 201
    assert _post(api, crew, "k-1", reordered).status_code == 201
    assert Reservation.objects.count() == 2


def test_the_same_key_for_a_different_request_is_refused(api: Client, crew: User) -> None:
    """A key reused with another body is 422 idempotency_key_reused, and creates nothing."""
    assert _post(api, crew, "k-2").status_code == 201
    other = {**BODY, "hospitals": ["IDEMP001"]}
    response = _post(api, crew, "k-2", other)
    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert error["code"] == ErrorCode.IDEMPOTENCY_KEY_REUSED
    assert "Idempotency-Key" in error["fields"]
    assert Reservation.objects.count() == 2


def test_keys_belong_to_their_user(api: Client, crew: User) -> None:
    """Another crew's key of the same text is another key; a new key is a new request."""
    other_crew = UserFactory(role=Role.AMBULANCE)
    assert _post(api, crew, "shared-text").status_code == 201
    assert _post(api, other_crew, "shared-text").status_code == 201
    assert _post(api, crew, "another-key").status_code == 201
    assert Reservation.objects.count() == 6


def test_without_a_key_every_request_counts(api: Client, crew: User) -> None:
    """The header is optional; without it nothing is remembered."""
    assert "Idempotent-Replayed" not in _post(api, crew, None)
    assert _post(api, crew, None).status_code == 201
    assert Reservation.objects.count() == 4
    assert not IdempotentRequest.objects.exists()


def test_a_failed_request_is_not_remembered(api: Client, crew: User) -> None:
    """An error answer leaves the key unused: the corrected retry with it runs."""
    wrong = {**BODY, "hospitals": ["NOPE0001"]}
    assert _post(api, crew, "k-3", wrong).status_code == 400
    assert not IdempotentRequest.objects.exists()
    assert _post(api, crew, "k-3").status_code == 201
    assert Reservation.objects.count() == 2


@pytest.mark.parametrize(
    "key", ["", "x" * 201, "키-한글", "tab\there", "new\nline", "\x7f"], ids=repr
)
def test_invalid_keys_are_400(api: Client, crew: User, key: str) -> None:
    """A key must be 1–200 printable ASCII characters."""
    response = _post(api, crew, key)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == ErrorCode.INVALID_IDEMPOTENCY_KEY
    assert "Idempotency-Key" in error["fields"]
    assert not Reservation.objects.exists()


@pytest.mark.parametrize("key", ["x" * 200, "a", " ~!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}"])
def test_printable_ascii_keys_up_to_200_are_accepted(api: Client, crew: User, key: str) -> None:
    """The whole printable ASCII range, from one to 200 characters."""
    assert _post(api, crew, key).status_code == 201


def test_keys_are_kept_24_hours_then_forgotten(api: Client, crew: User) -> None:
    """A day later the key still answers; after that the cleanup forgets it, and the same key
    makes a new request."""
    first = _post(api, crew, "k-4")
    created_at = IdempotentRequest.objects.get().created_at
    assert idempotent_requests_forget(now=created_at + timedelta(hours=24)) == 0
    assert _post(api, crew, "k-4").content == first.content
    assert idempotent_requests_forget(now=created_at + timedelta(hours=24, seconds=1)) == 1
    assert _post(api, crew, "k-4").status_code == 201
    assert Reservation.objects.count() == 4


def test_the_beat_task_forgets_old_keys(api: Client, crew: User) -> None:
    """The periodic task deletes only keys past their retention."""
    _post(api, crew, "old")
    _post(api, crew, "new")
    IdempotentRequest.objects.filter(key="old").update(
        created_at=timezone.now() - timedelta(hours=25)
    )
    assert forget_idempotency_keys() == 1
    assert list(IdempotentRequest.objects.values_list("key", flat=True)) == ["new"]


def _lock_waits() -> int:
    """Transactions of this server currently waiting for a lock."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_state = 'LOCK WAIT'"
        )
        (count,) = cursor.fetchone()
    return int(count)


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_requests_with_one_key_create_one_reservation(crew: User) -> None:
    """Two requests with one key in real concurrent transactions: the second waits for the
    first to commit, then answers with the first's result; one reservation per hospital.

    The test holds a lock on a hospital row, so the first request stops (inside its
    transaction, key claimed) when it inserts the reservation; the second is started only once
    the first waits, and then waits on the key itself."""
    answers: dict[str, Response] = {}

    def send(name: str) -> None:
        try:
            answers[name] = _post(Client(), crew, "concurrent-1")
        finally:
            connection.close()

    first = threading.Thread(target=send, args=("first",))
    second = threading.Thread(target=send, args=("second",))
    with transaction.atomic():
        Hospital.objects.select_for_update().get(hpid="IDEMP002")
        first.start()
        wait_for(lambda: _lock_waits() >= 1, "the first request waiting for the hospital")
        second.start()
        wait_for(lambda: _lock_waits() >= 2, "the second request waiting for the key")
    for thread in (first, second):
        thread.join(timeout=30)
    assert answers["first"].status_code == answers["second"].status_code == 201
    assert answers["first"].content == answers["second"].content
    assert answers["first"]["Idempotent-Replayed"] == "false"
    assert answers["second"]["Idempotent-Replayed"] == "true"
    assert Reservation.objects.count() == 2
    assert IdempotentRequest.objects.count() == 1
