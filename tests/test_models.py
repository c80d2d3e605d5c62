"""Integrity rules that live in the database itself (MariaDB CHECK and UNIQUE constraints)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from domain.models import (
    DeclineReason,
    ERStatus,
    Hospital,
    Reservation,
    ReservationStatus,
    Role,
    User,
)
from tests.factories import HospitalFactory, PatientConditionFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_status_keeps_negative_counts_and_unknowns() -> None:
    """Over-capacity counts stay negative and absent values stay unknown, not zero."""
    hospital = HospitalFactory()
    ERStatus.objects.create(
        hospital=hospital,
        er_general=-6,
        er_general_capacity=15,
        ct=False,
        ward_neurology=True,
        delivery_room=3,
    )
    stored = ERStatus.objects.get(hospital=hospital).values()
    assert stored["er_general"] == -6
    assert stored["ct"] is False
    assert stored["mri"] is None
    assert stored["icu_general"] is None
    assert stored["ward_neurology"] is True
    assert stored["delivery_room"] == 3


def test_hospital_user_needs_a_hospital_and_others_none() -> None:
    """Only hospital staff are tied to a hospital, and they must be."""
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(username="nurse", role=Role.HOSPITAL)
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(username="medic", role=Role.AMBULANCE, hospital=HospitalFactory())
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(username="ghost", role="janitor")


def test_hpid_is_unique() -> None:
    """Two hospitals cannot share an upstream hpid."""
    HospitalFactory(hpid="A1100015")
    with pytest.raises(IntegrityError), transaction.atomic():
        HospitalFactory(hpid="A1100015")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("systolic_bp", 301),
        ("diastolic_bp", 201),
        ("pulse", 301),
        ("temperature", Decimal("45.1")),
        ("temperature", Decimal("24.9")),
        ("respiratory_rate", 81),
        ("spo2", 101),
        ("pre_ktas", 0),
        ("pre_ktas", 6),
    ],
)
def test_vital_signs_outside_clinical_ranges_are_refused(field: str, value: object) -> None:
    """Model validation and the database both refuse impossible vital signs."""
    condition = PatientConditionFactory.build(recorded_by=UserFactory(), **{field: value})
    with pytest.raises(ValidationError) as caught:
        condition.full_clean()
    assert field in caught.value.message_dict
    with pytest.raises(IntegrityError), transaction.atomic():
        condition.save()


def test_cardiac_arrest_values_are_valid() -> None:
    """Zero pulse, BP and respiration are real findings, not errors."""
    condition = PatientConditionFactory(  # saving passes the database's CHECK constraints
        pulse=0, systolic_bp=0, diastolic_bp=0, respiratory_rate=0, spo2=0
    )
    condition.full_clean()  # and so does model validation


def test_diastolic_cannot_exceed_systolic() -> None:
    """A diastolic pressure above the systolic one is a typing error."""
    with pytest.raises(IntegrityError), transaction.atomic():
        PatientConditionFactory(systolic_bp=80, diastolic_bp=120)


def _reservation(**overrides: object) -> Reservation:
    crew = UserFactory(role=Role.AMBULANCE)
    fields = {
        "crew": crew,
        "hospital": HospitalFactory(),
        "condition": PatientConditionFactory(recorded_by=crew),
        "expires_at": timezone.now() + timedelta(minutes=5),
    }
    fields.update(overrides)
    return Reservation(**fields)


def test_reservation_states_are_constrained() -> None:
    """Rejections need a reason, decisions a decider, and one request per hospital per patient."""
    nurse = UserFactory(role=Role.HOSPITAL, hospital=HospitalFactory())
    pending = _reservation()
    pending.save()
    with pytest.raises(IntegrityError), transaction.atomic():
        Reservation.objects.filter(pk=pending.pk).update(
            status=ReservationStatus.REJECTED, decided_at=timezone.now(), decided_by=nurse
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        Reservation.objects.filter(pk=pending.pk).update(status=ReservationStatus.APPROVED)
    with pytest.raises(IntegrityError), transaction.atomic():
        Reservation.objects.filter(pk=pending.pk).update(
            status=ReservationStatus.REJECTED,
            decline_reason=DeclineReason.OTHER,
            decided_at=timezone.now(),
            decided_by=nurse,
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        Reservation.objects.filter(pk=pending.pk).update(status="lost")
    with pytest.raises(IntegrityError), transaction.atomic():
        _reservation(
            crew=pending.crew, hospital=pending.hospital, condition=pending.condition
        ).save()

    Reservation.objects.filter(pk=pending.pk).update(
        status=ReservationStatus.REJECTED,
        decline_reason=DeclineReason.NO_BED,
        decided_at=timezone.now(),
        decided_by=nurse,
    )
    assert Reservation.objects.get(pk=pending.pk).decline_reason == "no_bed"


def test_hospital_coordinates_in_range() -> None:
    """Coordinates are both present and on the globe, or both absent."""
    with pytest.raises(IntegrityError), transaction.atomic():
        Hospital.objects.create(
            hpid="X1", name="x", sido="서울특별시", region_code="11", latitude=95.0, longitude=127.0
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        Hospital.objects.create(
            hpid="X2", name="x", sido="서울특별시", region_code="11", latitude=37.0
        )
