"""The patient condition is checked strictly (issue #13, point 6): vital signs are numbers, not
booleans or strings; free text holds no control characters; the complaint and the note hold no
resident registration numbers (주민등록번호) or phone numbers. Through the JSON API on MariaDB,
and the one validator behind it, by example and by property."""

from typing import TYPE_CHECKING, Any

import pytest
from django.test import Client
from hypothesis import example, given
from hypothesis import strategies as st

from domain.free_text import identifier_problem, text_problem
from domain.models import Hospital, PatientCondition, Role, User
from tests.conftest import bearer
from tests.factories import ERStatusFactory, HospitalFactory, UserFactory

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse as Response

from tests.test_reservations import CONDITION as RESERVATION_CONDITION

JSON = "application/json"
CONDITION: dict[str, Any] = {**RESERVATION_CONDITION, "pre_ktas": 2, "note": ""}


@pytest.fixture
def crew(db: None) -> User:
    return UserFactory(role=Role.AMBULANCE)


def _request(api: Client, crew: User, **changes: Any) -> "Response":
    hpid = ERStatusFactory(hospital=HospitalFactory()).hospital.hpid
    body = {"hospitals": [hpid], "condition": {**CONDITION, **changes}}
    return api.post("/api/reservations", body, content_type=JSON, **bearer(crew))


def _field_errors(response: "Response") -> dict[str, list[str]]:
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    fields: dict[str, list[str]] = error["fields"]
    return fields


@pytest.mark.parametrize("field", ["systolic_bp", "diastolic_bp", "pulse", "spo2", "pre_ktas"])
@pytest.mark.parametrize("value", [True, False, "120", 120.0, "1"])
def test_vital_signs_must_be_integers_not_booleans_or_strings(
    api: Client, crew: User, field: str, value: object
) -> None:
    """``"systolic_bp": true`` was stored as 1 and ``"120"`` accepted: both are 400 now."""
    assert f"condition.{field}" in _field_errors(_request(api, crew, **{field: value}))
    assert not PatientCondition.objects.exists()


@pytest.mark.parametrize("value", [True, [37]])
def test_temperature_takes_a_number_or_a_decimal_string_only(
    api: Client, crew: User, value: object
) -> None:
    """Temperature is documented as a decimal (``"37.8"`` or ``37.8``); a boolean is not one."""
    assert "condition.temperature" in _field_errors(_request(api, crew, temperature=value))


@pytest.mark.django_db
def test_ordinary_condition_is_accepted_with_numbers_and_decimal_strings(
    api: Client, crew: User
) -> None:
    """The documented example still works, and so does a temperature sent as a number."""
    assert _request(api, crew).status_code == 201
    response = _request(api, crew, temperature=38.2, note="BP 120/80, SpO2 93%, 30 min 흉통")
    assert response.status_code == 201, response.content
    assert response.json()[0]["condition"]["temperature"] == "38.2"


@pytest.mark.parametrize(
    ("field", "text"),
    [
        ("chief_complaint", "chest\x00pain"),
        ("note", "seen at 14:30\x00"),
        ("note", "bell\x07"),
        ("note", "escape \x1b[31m"),
        ("chief_complaint", "del\x7f"),
        ("note", "c1 \x85 control"),
    ],
)
def test_control_characters_are_refused(api: Client, crew: User, field: str, text: str) -> None:
    """NUL bytes were stored; no control character (but tab and newline) is accepted now."""
    problems = _field_errors(_request(api, crew, **{field: text}))[f"condition.{field}"]
    assert any("control character" in p for p in problems), problems
    assert not PatientCondition.objects.exists()


@pytest.mark.django_db
def test_tabs_and_newlines_are_ordinary_text(api: Client, crew: User) -> None:
    """A multi-line note is fine."""
    response = _request(api, crew, note="line one\nline two\r\n\tindented")
    assert response.status_code == 201, response.content


@pytest.mark.parametrize(
    "text",
    [
        "환자 주민번호 900101-1234567",
        "RRN 9001011234567 per family",
        "851231-2345678",
        "보호자 010-1234-5678",
        "call 01012345678",
        "010 9876 5432",
        "+82 10-1234-5678",
        "+821012345678",
        "병원 02-123-4567",
        "031-9876-5432 로 연락",
        "(070)1234-5678",
    ],
)
@pytest.mark.parametrize("field", ["note", "chief_complaint"])
def test_identifiers_in_the_free_text_are_refused(
    api: Client, crew: User, field: str, text: str
) -> None:
    """The API says the condition holds no identifiers: a 주민등록번호 or a phone number in
    the note or the complaint is a field error saying so, and nothing is stored."""
    problems = _field_errors(_request(api, crew, **{field: text}))[f"condition.{field}"]
    assert any("identifiers must not be entered" in p for p in problems), problems
    assert not PatientCondition.objects.exists()


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/auth/signup", {"username": "medic9", "password": "x" * 12, "agency": "a\x00"}),
        ("/api/auth/signup", {"username": "medic9", "password": "x" * 12, "crew_name": "\x00"}),
        ("/api/auth/signup", {"username": "medic9", "password": "x" * 12, "phone": "010\x00"}),
    ],
)
def test_other_free_text_fields_refuse_control_characters(
    api: Client, db: None, path: str, body: dict[str, str]
) -> None:
    """The same rule holds for every free-text field of the API's input, not just the
    condition's."""
    body = {"role": "ambulance", **body}
    fields = _field_errors(api.post(path, body, content_type=JSON))
    assert any("control character" in p for problems in fields.values() for p in problems)


@pytest.mark.django_db
def test_a_decline_note_refuses_control_characters(api: Client, crew: User) -> None:
    """ER staff's free text too: the note of a rejection."""
    made = _request(api, crew).json()[0]
    staff = UserFactory(role=Role.HOSPITAL, hospital=Hospital.objects.get(hpid=made["hpid"]))
    response = api.post(
        f"/api/reservations/{made['id']}/reject",
        {"reason": "other", "note": "full\x00"},
        content_type=JSON,
        **bearer(staff),
    )
    assert "note" in _field_errors(response)


# -- the validator, by property ----------------------------------------------------------------

_SEPARATOR = st.sampled_from(["-", "", " ", "."])
_DIGIT = st.sampled_from("0123456789")


def _digits(count: int) -> st.SearchStrategy[str]:
    return st.text(_DIGIT, min_size=count, max_size=count)


@st.composite
def resident_numbers(draw: st.DrawFn) -> str:
    """A 주민등록번호: YYMMDD, a hyphen or none, a gender/century digit, six more digits."""
    month = draw(st.integers(1, 12))
    day = draw(st.integers(1, 31))
    hyphen = draw(st.sampled_from(["-", ""]))
    gender = draw(st.sampled_from("12345678"))
    return f"{draw(_digits(2))}{month:02d}{day:02d}{hyphen}{gender}{draw(_digits(6))}"


_MOBILE = ["10", "11", "16", "17", "18", "19"]
_AREA = ["2", *(f"{a}{b}" for a in "3456" for b in "12345" if f"{a}{b}" <= "64"), "70"]


@st.composite
def phone_numbers(draw: st.DrawFn) -> str:
    """A Korean mobile or landline number, national or +82, with any usual separators."""
    mobile = draw(st.booleans())
    prefix = draw(st.sampled_from(_MOBILE if mobile else _AREA))
    middle = draw(_digits(draw(st.sampled_from([3, 4]))))
    national = draw(st.booleans())
    lead = "0" if national else draw(st.sampled_from(["+82 ", "+82-", "+82", "+82 0"]))
    first, second = draw(_SEPARATOR), draw(_SEPARATOR)
    return f"{lead}{prefix}{first}{middle}{second}{draw(_digits(4))}"


# Text around an identifier: clinical words in Korean and English, never a digit next to it.
_WORDS = st.sampled_from(
    ["환자", "보호자", "연락처", "흉통", "의식 저하", "chest pain", "call", "son:", "ph.", "(", ")"]
)
_AROUND = st.lists(_WORDS, max_size=4).map(" ".join)


@given(before=_AROUND, identifier=st.one_of(resident_numbers(), phone_numbers()), after=_AROUND)
@example(before="", identifier="900101-1234567", after="")
@example(before="보호자", identifier="+82 10 1234 5678", after="")
def test_an_identifier_anywhere_in_the_text_is_refused(
    before: str, identifier: str, after: str
) -> None:
    """Whatever surrounds it, a generated 주민등록번호 or phone number is found."""
    assert identifier_problem(f"{before} {identifier} {after}") is not None


_CLINICAL = st.sampled_from(
    ["BP 120/80", "BP 90/60", "SpO2 93%", "HR 110", "RR 22", "BT 37.8", "GCS 15", "GCS E2V3M5",
     "30 min", "2 h ago", "chest pain", "흉통", "호흡곤란", "의식 저하", "NRS 8/10", "x3",
     "at 14:30", "on 2024-09-26", "since 09:05", "pupils 3 mm", "glucose 245 mg/dL", "O2 4 L/min",
     "EKG ST elevation V1-V4", "fall from 3 m", "burn 20%", "Hb 7.2", "K 5.9", "pH 7.12"]
)  # fmt: skip


@given(st.lists(_CLINICAL, min_size=1, max_size=12).map(", ".join))
@example("BP 120/80, SpO2 93%, 30 min chest pain")
def test_ordinary_clinical_text_is_accepted(text: str) -> None:
    """Vital signs, times, dates, doses and scores are not mistaken for identifiers."""
    assert identifier_problem(text) is None
    assert text_problem(text) is None


@given(st.text(st.characters(codec="utf-8", exclude_categories=["Cc"]), max_size=50))
def test_text_without_control_characters_passes_the_control_check(text: str) -> None:
    """Only control characters are refused by the control check (any other text passes)."""
    assert text_problem(text, identifiers=False) is None
