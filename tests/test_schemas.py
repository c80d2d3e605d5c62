"""Response schemas only shape what selectors and services already read: serializing an answer
runs no database query."""

import pytest
from pytest_django import DjangoAssertNumQueries

from domain.api.reservations import ReservationOut
from domain.api.schemas import HistoryOut, HospitalDetailOut, StatusContext, UserOut
from domain.models import Approval, Role
from domain.selectors.hospitals import hospital_get
from domain.selectors.reservations import reservation_history, reservation_summary
from domain.services.reservations import reservation_request
from domain.services.users import user_approve
from tests.factories import (
    ERStatusFactory,
    HospitalFactory,
    PatientConditionFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def test_serializing_answers_runs_no_queries(
    django_assert_num_queries: DjangoAssertNumQueries,
) -> None:
    """A decided user (with hospital), a hospital's detail, a reservation and its history."""
    hospital = ERStatusFactory(hospital=HospitalFactory(hpid="S1100001")).hospital
    admin = UserFactory(role=Role.ADMIN)
    pending = UserFactory(role=Role.HOSPITAL, hospital=hospital, approval=Approval.PENDING)
    crew = UserFactory(role=Role.AMBULANCE)
    condition = PatientConditionFactory.build()
    fields = ("sex", "age_band", "pulse", "spo2", "consciousness", "chief_complaint")
    [made] = reservation_request(
        crew=crew, condition={f: getattr(condition, f) for f in fields}, hpids=[hospital.hpid]
    )

    decided = user_approve(user_id=pending.pk, by=admin)
    detail = hospital_get(hpid=hospital.hpid)
    summary = reservation_summary(made)
    history = reservation_history(user=crew, reservation_id=made.pk)
    with django_assert_num_queries(0):
        assert UserOut.from_orm(decided).hospital == hospital.hpid
        out = HospitalDetailOut.build_detail(detail, StatusContext(stale_regions=set(), held={}))
        assert out.hpid == hospital.hpid
        assert ReservationOut.model_validate(summary).id == made.pk
        assert [HistoryOut.model_validate(row).actor for row in history] == [crew.username]
