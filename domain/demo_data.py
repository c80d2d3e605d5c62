"""Deterministic demo data: about 500 realistic Korean emergency hospitals in all 17 시도.

Pure: no Django, and no I/O beyond reading the JSON fixtures shipped in ``domain.fixtures``.
"""

import json
import random
from collections.abc import Iterator
from functools import cache
from importlib.resources import files
from typing import Any, Final, NotRequired, TypedDict, cast

HOSPITAL_KEYS: Final = (
    "hpid",
    "name",
    "address",
    "region_code",
    "sido",
    "sigungu",
    "main_phone",
    "er_phone",
    "latitude",
    "longitude",
    "emergency_class",
    "emergency_class_name",
)
CLASS_NAMES: Final = {
    "G001": "권역응급의료센터",
    "G006": "지역응급의료센터",
    "G007": "지역응급의료기관",
    "G099": "응급의료기관 이외",
}
CLASS_SHARES: Final = (("G001", 0.08), ("G006", 0.25), ("G007", 0.60))
MAX_JITTER: Final = 0.01
NAME_PATTERNS: Final = {
    "G001": ("{}대학교병원", "{}세브란스병원", "{}성모병원", "{}대학교의료원"),
    "G006": (
        "{}성모병원",
        "{}의료원",
        "{}중앙병원",
        "{}기독병원",
        "{}백병원",
        "{}한국병원",
        "{}세브란스병원",
        "{}대학교병원",
    ),
    "G007": (
        "{}병원",
        "{}중앙병원",
        "{}제일병원",
        "{}한마음병원",
        "{}현대병원",
        "{}우리병원",
        "{}센트럴병원",
        "{}성심병원",
        "{}연합병원",
        "{}삼성병원",
        "{}효자병원",
        "{}새길병원",
    ),
    "G099": ("{}병원", "{}연세병원", "{}튼튼병원", "{}열린병원", "{}정형외과병원", "{}재활병원"),
}


class _Sigungu(TypedDict):
    name: str
    latitude: float
    longitude: float
    weight: int
    roads: list[str]
    places: list[str]
    jitter: NotRequired[float]


class _Region(TypedDict):
    region_code: str
    sido: str
    phone_prefix: str
    hospital_count: int
    sigungu: list[_Sigungu]


def _fixture(name: str) -> Any:
    return json.loads((files("domain") / "fixtures" / name).read_text(encoding="utf-8"))


@cache
def _regions() -> tuple[_Region, ...]:
    return tuple(cast(list[_Region], _fixture("demo_geography.json")["regions"]))


@cache
def _real_institutions() -> tuple[dict[str, object], ...]:
    return tuple(cast(list[dict[str, object]], _fixture("real_institutions.json")))


def demo_hospitals(seed: int = 2026) -> list[dict[str, object]]:
    """Real sample institutions first, then synthetic ones; same seed → identical output.

    Every dict has exactly the keys in ``HOSPITAL_KEYS``. Synthetic hospitals draw only on
    ``random.Random(seed)``: their hpids are ``"A" + region_code + "9" + 4 digits`` (unique),
    names are unique across the whole list, each lies within its 시군구's ``jitter`` (at most
    0.01°) of that 시군구's reference point, and its ER phone differs from its main phone.
    """
    rng = random.Random(seed)
    hospitals = [dict(h) for h in _real_institutions()]
    used_names = {str(h["name"]) for h in hospitals}
    slots = [
        (region, place)
        for region in _regions()
        for place, count in zip(
            region["sigungu"],
            _allocate(region["hospital_count"], [p["weight"] for p in region["sigungu"]]),
            strict=True,
        )
        for _ in range(count)
    ]
    classes = _class_sequence(len(slots), rng)
    serials: dict[str, Iterator[int]] = {
        r["region_code"]: iter(rng.sample(range(10_000), r["hospital_count"])) for r in _regions()
    }
    for (region, place), klass in zip(slots, classes, strict=True):
        serial = next(serials[region["region_code"]])
        hospitals.append(_synthesize(rng, region, place, klass, serial, used_names))
    return hospitals


def _synthesize(
    rng: random.Random, region: _Region, place: _Sigungu, klass: str, serial: int, used: set[str]
) -> dict[str, object]:
    code, prefix = region["region_code"], region["phone_prefix"]
    road = rng.choice(place["roads"])
    street = " ".join(filter(None, (region["sido"], place["name"], road)))
    exchange = rng.randint(2000, 3999) if prefix == "02" else rng.randint(200, 999)
    main_line, er_line = rng.sample(range(1000, 10_000), 2)
    limit = round(place.get("jitter", MAX_JITTER) * 1_000_000)
    return {
        "hpid": f"A{code}9{serial:04d}",
        "name": _unique_name(rng, place, klass, used),
        "address": f"{street} {rng.randint(1, 399)}",
        "region_code": code,
        "sido": region["sido"],
        "sigungu": place["name"],
        "main_phone": f"{prefix}-{exchange}-{main_line}",
        "er_phone": f"{prefix}-{exchange}-{er_line}",
        "latitude": round(place["latitude"] + rng.randint(-limit, limit) / 1e6, 6),
        "longitude": round(place["longitude"] + rng.randint(-limit, limit) / 1e6, 6),
        "emergency_class": klass,
        "emergency_class_name": CLASS_NAMES[klass],
    }


def _allocate(total: int, weights: list[int]) -> list[int]:
    """Split ``total`` in proportion to ``weights`` by largest remainder (ties: earlier first)."""
    quotas = [total * w / sum(weights) for w in weights]
    counts = [int(q) for q in quotas]
    by_remainder = sorted(range(len(weights)), key=lambda i: (counts[i] - quotas[i], i))
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _class_sequence(total: int, rng: random.Random) -> list[str]:
    """``total`` emergency classes in ``CLASS_SHARES`` proportions (rest G099), shuffled."""
    classes = [code for code, share in CLASS_SHARES for _ in range(round(total * share))]
    classes += ["G099"] * (total - len(classes))
    rng.shuffle(classes)
    return classes


def _unique_name(rng: random.Random, place: _Sigungu, klass: str, used: set[str]) -> str:
    """A name not yet in ``used`` (which it joins), preferring the patterns of ``klass``."""
    fallback = [p for k, patterns in NAME_PATTERNS.items() if k != klass for p in patterns]
    for patterns in (list(NAME_PATTERNS[klass]), fallback):
        candidates = [pattern.format(stem) for stem in place["places"] for pattern in patterns]
        rng.shuffle(candidates)
        for name in candidates:
            if name not in used:
                used.add(name)
                return name
    raise ValueError(f"no unused hospital name left for {place['name'] or 'the region'}")
