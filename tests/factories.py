"""factory_boy factories for the models tests create: ``HospitalFactory(hpid=...)`` saves and
returns a ``Hospital``, ``.build(...)`` an unsaved one."""

from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import factory
from django.db.models import Model
from django.utils import timezone

from domain.bed_fields import STATUS_VALUE_KINDS
from domain.models import (
    AgeBand,
    Approval,
    Consciousness,
    ERStatus,
    Hospital,
    PatientCondition,
    Role,
    Sex,
    User,
)
from domain.reports import BedReport, Value

PASSWORD = "correct horse battery staple"

M = TypeVar("M", bound=Model)


class ModelFactory(factory.django.DjangoModelFactory[M]):
    """A Django model factory whose call is typed as what it returns: the saved model."""

    class Meta:
        abstract = True

    if TYPE_CHECKING:
        # factory_boy's metaclass turns the call into create(): it returns the model, not
        # the factory, which the stubs cannot say (and mypy only allows __new__ to say so).
        def __new__(cls, **kwargs: Any) -> M: ...  # type: ignore[misc]


class HospitalFactory(ModelFactory[Hospital]):
    class Meta:
        model = Hospital

    hpid = factory.Sequence(lambda n: f"T{n:07d}")
    name = factory.Sequence(lambda n: f"테스트병원 {n}")
    address = "서울특별시 중구 세종대로 110"
    sido = "서울특별시"
    sigungu = "중구"
    region_code = "11"
    main_phone = "02-000-0000"
    er_phone = "02-000-0119"
    latitude = 37.5665
    longitude = 126.9780
    emergency_class = "G006"


class ERStatusFactory(ModelFactory[ERStatus]):
    class Meta:
        model = ERStatus

    hospital: "factory.SubFactory[ERStatus, Hospital]" = factory.SubFactory(HospitalFactory)
    hvidate = factory.LazyFunction(timezone.now)
    ingested_at = factory.LazyFunction(timezone.now)
    er_general = 5
    er_general_capacity = 20


class UserFactory(ModelFactory[User]):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    role = Role.AMBULANCE
    approval = Approval.ACTIVE
    password: "factory.PostGenerationMethodCall[User, None]" = factory.PostGenerationMethodCall(
        "set_password", PASSWORD
    )

    @factory.post_generation
    def saved(user: User, create: bool, extracted: object, **kwargs: object) -> None:
        if create:
            user.save()


class PatientConditionFactory(ModelFactory[PatientCondition]):
    class Meta:
        model = PatientCondition

    recorded_by: "factory.SubFactory[PatientCondition, User]" = factory.SubFactory(UserFactory)
    sex = Sex.FEMALE
    age_band = AgeBand.Y60_69
    systolic_bp = 150
    diastolic_bp = 90
    pulse = 110
    respiratory_rate = 22
    spo2 = 93
    consciousness = Consciousness.VERBAL
    chief_complaint = "Crushing chest pain for 30 minutes"
    suspected_category = 1


def bed_report(hpid: str, hvidate: datetime, **values: Value) -> BedReport:
    """What the upstream reports for a hospital: ``values`` known, every other field unknown."""
    return BedReport(
        hpid=hpid,
        name="",
        er_phone="",
        hvidate=hvidate,
        values={**dict.fromkeys(STATUS_VALUE_KINDS), **values},
    )
