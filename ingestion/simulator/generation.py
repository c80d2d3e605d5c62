"""A hospital's generated values: its initial state, drawn from a seed, and the random walk's
moves of its bed values."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Final

from domain.bed_fields import BED_FIELDS, BedField, Kind
from domain.severe_illness import (
    DISEASE_CODE_CATEGORIES,
    ER_DISEASE_CODE,
    SEVERE_ILLNESS_CATEGORIES,
)
from ingestion.simulator.hospitals import FIELDS_BY_TAG, Hospital, Message, Value
from ingestion.simulator.protocol import FLAG_NO, FLAG_YES

ACCEPTANCE_VALUES: Final = ("Y", "N1", "N", "불가능", "정보미제공")
AGE_LIMITED_CATEGORIES: Final = (10, 12, 14, 15, 27)
AGE_TEXTS: Final = ("1day", "만 1세 이상", "생후 6개월 이상", "만 15세 미만", "생후 28일 이상")
ER_MESSAGES: Final = (
    "응급실 과밀로 수용 곤란, 이송 전 연락 바랍니다",
    "CT 장비 점검 중",
    "소아 응급환자 진료 불가",
    "정형외과 전문의 부재",
    "응급진료 불가",
)
SEVERE_MESSAGES: Final = (
    "장비부족",
    "전문의 부재",
    "수술 중으로 수용 불가",
    "이송 전 문의 바랍니다",
)

_ER_TAGS: Final = frozenset({"hvec", "hv28", "hv29", "hv30"})  # may go over capacity
_CAPACITY_RANGES: Final[dict[str, tuple[int, int]]] = {
    "hvs01": (4, 40),
    "hvs02": (1, 10),
    "hvs17": (5, 40),
    "hvs22": (3, 25),
    "hvs38": (50, 800),
    "hvs30": (5, 50),
    "hvs31": (1, 10),
    "hvs32": (2, 25),
    "hvs27": (1, 4),
    "hvs28": (1, 3),
    "hvs34": (1, 3),
    "hvs37": (1, 2),
}
_DEFAULT_CAPACITY_RANGE: Final = (1, 8)
# Chance that an optional count is reported, by emergency class (about half overall).
_PRESENCE: Final = {"G001": 0.8, "G006": 0.6, "G007": 0.45, "G099": 0.3}
_ACCEPTANCE_YES: Final = {"G001": 0.75, "G006": 0.55, "G007": 0.3, "G099": 0.15}
_HOSPITAL_BEDS: Final = {"G001": (600, 1200), "G006": (200, 800), "G007": (80, 400)}
_DEFAULT_HOSPITAL_BEDS: Final = (30, 200)
# Basic-info flags that report a ward, by the capacity tag whose value they repeat.
_BASIC_WARD_TAGS: Final = (
    ("hperyn", "hvs01"),
    ("hpgryn", "hvs38"),
    ("hpopyn", "hvs22"),
    ("hpicuyn", "hvs17"),
    ("hpnicuyn", "hvs08"),
    ("hpccuyn", "hvs16"),
    ("hpcuyn", "hvs11"),
)


def generate_hospital(info: dict[str, object], seed: int, now: datetime) -> Hospital:
    """A hospital's initial state, from ``random.Random(f"{seed}:{hpid}")`` alone.

    The steps draw from that one generator in a fixed order (bed values, acceptance, messages,
    basic info, hvidate): reordering them, or any draw within them, changes every hospital."""
    rng = random.Random(f"{seed}:{info['hpid']}")  # noqa: S311 - simulation, not security
    klass = str(info.get("emergency_class", "G007"))
    values = _bed_values(rng, _PRESENCE.get(klass, 0.45))
    acceptance = _acceptance(rng, _ACCEPTANCE_YES.get(klass, 0.3))
    messages = _messages(rng, now)
    basic = _basic_info(rng, klass, values)
    hvidate = now - timedelta(seconds=rng.randint(0, 30 * 60))
    return Hospital(info, values, hvidate, acceptance, messages, basic)


def _bed_values(rng: random.Random, presence: float) -> dict[str, Value]:
    """Every bed field's reported value (and capacity), in ``BED_FIELDS`` order; an optional
    count is reported with probability ``presence``."""
    values: dict[str, Value] = {}
    for bed_field in BED_FIELDS:
        if bed_field.upstream == "hvec":
            values.update(_er_beds(rng))
        elif bed_field.kind is Kind.FLAG:
            values.update(_flag(bed_field, rng))
        elif bed_field.kind is Kind.MIXED:
            values.update(_mixed(bed_field, rng, presence))
        else:
            values.update(_count(bed_field, rng, presence))
    return values


def _er_beds(rng: random.Random) -> dict[str, Value]:
    """The ER's capacity and free beds, always reported; about one ER in eight is over capacity."""
    capacity = rng.randint(*_CAPACITY_RANGES["hvs01"])
    negative = rng.random() < 0.12
    return {
        "hvs01": capacity,
        "hvec": rng.randint(-5, -1) if negative else rng.randint(0, capacity),
    }


def _flag(bed_field: BedField, rng: random.Random) -> dict[str, Value]:
    drawn: dict[str, Value] = {}
    if rng.random() < 0.85:
        drawn[bed_field.upstream] = FLAG_YES if rng.random() < 0.85 else FLAG_NO
        capacity_tag = bed_field.capacity_upstream
        if capacity_tag and rng.random() < 0.8:
            drawn[capacity_tag] = rng.randint(*_capacity_range(capacity_tag))
    return drawn


def _mixed(bed_field: BedField, rng: random.Random, presence: float) -> dict[str, Value]:
    drawn: dict[str, Value] = {}
    if rng.random() < presence:
        capacity = rng.randint(1, 4)
        drawn[bed_field.upstream] = FLAG_YES if rng.random() < 0.6 else rng.randint(0, capacity)
        capacity_tag = bed_field.capacity_upstream
        if capacity_tag and rng.random() < 0.7:
            drawn[capacity_tag] = capacity
    return drawn


def _count(bed_field: BedField, rng: random.Random, presence: float) -> dict[str, Value]:
    drawn: dict[str, Value] = {}
    if rng.random() < presence:
        capacity_tag = bed_field.capacity_upstream
        capacity = rng.randint(*_capacity_range(capacity_tag or ""))
        drawn[bed_field.upstream] = rng.randint(0, capacity)
        if capacity_tag and rng.random() < 0.9:
            drawn[capacity_tag] = capacity
    return drawn


def _capacity_range(capacity_tag: str) -> tuple[int, int]:
    return _CAPACITY_RANGES.get(capacity_tag, _DEFAULT_CAPACITY_RANGE)


def _acceptance(rng: random.Random, yes: float) -> dict[str, str]:
    """A ``MKioskTy<n>`` tag per severe-illness category (``Y`` with probability ``yes``; the
    last category almost always), some with an age limit in ``MKioskTy<n>Msg``."""
    acceptance: dict[str, str] = {}
    for number in SEVERE_ILLNESS_CATEGORIES:
        tag = f"MKioskTy{number}"
        if number == 28:
            acceptance[tag] = FLAG_YES if rng.random() < 0.9 else FLAG_NO
        elif rng.random() < yes:
            acceptance[tag] = FLAG_YES
            if number in AGE_LIMITED_CATEGORIES and rng.random() < 0.3:
                acceptance[f"{tag}Msg"] = rng.choice(AGE_TEXTS)
        else:
            acceptance[tag] = rng.choices(ACCEPTANCE_VALUES[1:], weights=(80, 5, 5, 10))[0]
    return acceptance


def _messages(rng: random.Random, now: datetime) -> list[Message]:
    """One or two current messages for about one hospital in ten, none for the others."""
    if rng.random() >= 0.1:
        return []
    return [_message(rng, now) for _ in range(rng.randint(1, 2))]


def _message(rng: random.Random, now: datetime) -> Message:
    start = now - timedelta(minutes=rng.randint(10, 600))
    end = start + timedelta(minutes=rng.randint(60, 1440)) if rng.random() < 0.5 else None
    if rng.random() < 0.4:
        return Message("응급", rng.choice(ER_MESSAGES), ER_DISEASE_CODE, start, end)
    code = rng.choice(sorted(DISEASE_CODE_CATEGORIES))
    return Message("중증", rng.choice(SEVERE_MESSAGES), code, start, end)


def _basic_info(rng: random.Random, klass: str, values: dict[str, Value]) -> dict[str, Value]:
    """The basic-info counts: the hospital's beds, and a ward's capacity for each ward reported."""
    hospital_beds = rng.randint(*_HOSPITAL_BEDS.get(klass, _DEFAULT_HOSPITAL_BEDS))
    basic: dict[str, Value] = {"dutyHano": hospital_beds, "hpbdn": hospital_beds}
    for basic_tag, capacity_tag in _BASIC_WARD_TAGS:
        if capacity_tag in values:
            basic[basic_tag] = values[capacity_tag]
    return basic


def perturb(values: dict[str, Value], rng: random.Random, attempts: int = 1) -> bool:
    """Move 1–3 of the reported bed values in place: a count by ±1..2 (within −5 or 0 and its
    capacity), a flag between Y and N1 (also a mixed field's Y). Tries again, up to ``attempts``
    times, while nothing changed (a count stuck at its bounds); True if anything changed."""
    tags = sorted(tag for tag in values if tag in FIELDS_BY_TAG)
    changed = False
    for _ in range(attempts):
        if changed or not tags:
            break
        changed = _perturb_once(values, tags, rng)
    return changed


def _perturb_once(values: dict[str, Value], tags: list[str], rng: random.Random) -> bool:
    changed = False
    for tag in rng.sample(tags, min(len(tags), rng.randint(1, 3))):
        value = values[tag]
        if isinstance(value, int):
            capacity_tag = FIELDS_BY_TAG[tag].capacity_upstream
            capacity = values.get(capacity_tag) if capacity_tag else None
            low = -5 if tag in _ER_TAGS else 0
            high = capacity if isinstance(capacity, int) else value + 2
            delta = rng.choice((-2, -1, 1, 2))
            new = value + delta
            if not low <= new <= max(high, low):
                new = value - delta
            new = min(max(new, min(low, value)), max(high, value))
            if new != value:
                values[tag] = new
                changed = True
        elif value in ("Y", "N", "N1"):
            values[tag] = FLAG_NO if value == FLAG_YES else FLAG_YES
            changed = True
    return changed
