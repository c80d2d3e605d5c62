"""The zero-config demo: seeded hospitals with plausible live status and one user per role."""

import random
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from domain.bed_fields import BED_FIELDS, Kind
from domain.demo_data import demo_hospitals
from domain.models import Approval, ERStatus, Hospital, Role, SevereIllnessAcceptance, User
from domain.severe_illness import SEVERE_ILLNESS_CATEGORIES

DEMO_HOSPITAL_HPID = "A1100015"
DEMO_USERS: tuple[tuple[str, str, str], ...] = (
    ("demo-admin", "weer-demo-admin", Role.ADMIN),
    ("demo-crew", "weer-demo-crew", Role.AMBULANCE),
    ("demo-er", "weer-demo-er", Role.HOSPITAL),
)
DEMO_CREW = {"agency": "서울 중부소방서", "crew_name": "중부 119 구급대 1"}
# Shares of hospitals reporting each kind of value, so the demo looks like real data with gaps.
_ALWAYS_REPORTED = {"er_general", "ct", "ambulance"}


@dataclass(frozen=True, slots=True)
class DemoSeedResult:
    hospitals_created: int
    hospitals_total: int
    statuses_created: int
    users: tuple[tuple[str, str, str], ...]


def _demo_status_values(rng: random.Random) -> dict[str, object]:
    values: dict[str, object] = {}
    for field in BED_FIELDS:
        if field.name not in _ALWAYS_REPORTED and rng.random() < 0.45:
            continue
        if field.kind is Kind.FLAG:
            values[field.name] = rng.random() < 0.8
            if field.capacity_name:
                values[field.capacity_name] = rng.randint(1, 6)
            continue
        capacity = rng.randint(4, 40) if field.name == "er_general" else rng.randint(1, 20)
        available = capacity - rng.randint(0, capacity + 4)  # may go negative: over capacity
        values[field.name] = True if field.kind is Kind.MIXED and rng.random() < 0.3 else available
        if field.capacity_name:
            values[field.capacity_name] = capacity
    return values


@transaction.atomic
def demo_seed(*, seed: int = 2026) -> DemoSeedResult:
    """Idempotent: hospitals are upserted by hpid; statuses and acceptance flags are created
    only where none exist (live data is never overwritten); demo users are created once and
    their passwords reset to the printed demo ones."""
    now = timezone.now()
    created = 0
    hospitals: list[Hospital] = []
    for row in demo_hospitals(seed):
        fields = {k: v for k, v in row.items() if k not in ("hpid", "emergency_class_name")}
        hospital, was_created = Hospital.objects.update_or_create(hpid=row["hpid"], defaults=fields)
        created += was_created
        hospitals.append(hospital)

    with_status = set(ERStatus.objects.values_list("hospital_id", flat=True))
    statuses = []
    for hospital in hospitals:
        if hospital.pk in with_status:
            continue
        rng = random.Random(f"{seed}:{hospital.hpid}")
        statuses.append(
            ERStatus(
                hospital=hospital,
                hvidate=now - timedelta(minutes=rng.randint(0, 40)),
                ingested_at=now,
                **_demo_status_values(rng),
            )
        )
    ERStatus.objects.bulk_create(statuses, batch_size=500)

    with_flags = set(
        SevereIllnessAcceptance.objects.values_list("hospital_id", flat=True).distinct()
    )
    flags: list[SevereIllnessAcceptance] = []
    for hospital in hospitals:
        if hospital.pk in with_flags:
            continue
        rng = random.Random(f"{seed}:{hospital.hpid}:acceptance")
        flags.extend(
            SevereIllnessAcceptance(
                hospital=hospital,
                category=category,
                accepts=None if rng.random() < 0.1 else rng.random() < 0.7,
            )
            for category in SEVERE_ILLNESS_CATEGORIES
        )
    SevereIllnessAcceptance.objects.bulk_create(flags, batch_size=1000)

    demo_hospital = Hospital.objects.get(hpid=DEMO_HOSPITAL_HPID)
    for username, password, role in DEMO_USERS:
        is_admin = role == Role.ADMIN
        fields = {
            "role": role,
            "approval": Approval.ACTIVE,
            "hospital": demo_hospital if role == Role.HOSPITAL else None,
            "is_staff": is_admin,
            "is_superuser": is_admin,
            **(DEMO_CREW if role == Role.AMBULANCE else {}),
        }
        user, _ = User.objects.update_or_create(
            username=username,
            defaults=fields,
            create_defaults={**fields, "approval_decided_at": now},
        )
        user.set_password(password)
        user.save(update_fields=["password"])
    return DemoSeedResult(
        hospitals_created=created,
        hospitals_total=len(hospitals),
        statuses_created=len(statuses),
        users=DEMO_USERS,
    )
