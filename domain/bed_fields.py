"""What an ER status holds: one registry maps each upstream real-time beds tag to our field.

The registry is the single source for the ``ERStatus`` columns, the upstream parser, the diff,
the API schema and the field names in ``beds.changed`` events. Values are
``int`` (counts; negative means over capacity), ``bool`` (equipment flags) or, for the few
upstream tags that carry either a count or ``Y`` (hv5, hv7, hv42), ``int | bool``.
``None`` always means unknown (the tag was absent), never zero.
"""

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    COUNT = "count"
    FLAG = "flag"
    MIXED = "mixed"


@dataclass(frozen=True, slots=True)
class BedField:
    name: str
    upstream: str
    kind: Kind
    label: str
    capacity_upstream: str | None = None

    @property
    def capacity_name(self) -> str | None:
        return f"{self.name}_capacity" if self.capacity_upstream else None


def _count(name: str, upstream: str, label: str, capacity: str | None = None) -> BedField:
    return BedField(name, upstream, Kind.COUNT, label, capacity)


def _flag(name: str, upstream: str, label: str, capacity: str | None = None) -> BedField:
    return BedField(name, upstream, Kind.FLAG, label, capacity)


def _mixed(name: str, upstream: str, label: str, capacity: str | None = None) -> BedField:
    return BedField(name, upstream, Kind.MIXED, label, capacity)


BED_FIELDS: tuple[BedField, ...] = (
    # Emergency room
    _count("er_general", "hvec", "응급실 일반", "hvs01"),
    _count("er_pediatric", "hv28", "응급실 소아", "hvs02"),
    _count("er_negative_isolation", "hv29", "응급실 음압격리", "hvs03"),
    _count("er_general_isolation", "hv30", "응급실 일반격리", "hvs04"),
    _count("isolation_zone_negative", "hv13", "격리진료구역 음압격리", "hvs46"),
    _count("isolation_zone_general", "hv14", "격리진료구역 일반격리", "hvs47"),
    _count("pediatric_negative_isolation", "hv15", "소아음압격리", "hvs48"),
    _count("pediatric_general_isolation", "hv16", "소아일반격리", "hvs49"),
    _count("cohort_isolation", "hv27", "코호트 격리", "hvs59"),
    _count("trauma_resuscitation", "hv60", "외상소생실", "hvs60"),
    _count("trauma_care_zone", "hv61", "외상환자진료구역", "hvs61"),
    # Intensive care
    _count("icu_general", "hvicc", "[중환자실] 일반", "hvs17"),
    _count("icu_medical", "hv2", "[중환자실] 내과", "hvs06"),
    _count("icu_surgical", "hv3", "[중환자실] 외과", "hvs07"),
    _count("icu_neurology", "hvcc", "[중환자실] 신경과", "hvs11"),
    _count("icu_neurosurgery", "hv6", "[중환자실] 신경외과", "hvs12"),
    _count("icu_neonatal", "hvncc", "[중환자실] 신생아", "hvs08"),
    _count("icu_thoracic", "hvccc", "[중환자실] 흉부외과", "hvs16"),
    _count("icu_pediatric", "hv32", "[중환자실] 소아", "hvs09"),
    _count("icu_cardiac", "hv34", "[중환자실] 심장내과", "hvs15"),
    _count("icu_burn", "hv8", "[중환자실] 화상", "hvs13"),
    _count("icu_trauma", "hv9", "[중환자실] 외상", "hvs14"),
    _count("icu_negative_isolation", "hv35", "[중환자실] 음압격리", "hvs18"),
    _mixed("icu_drug", "hv7", "약물중환자"),
    _count("emergency_icu", "hv31", "[응급전용] 중환자실", "hvs05"),
    _count("emergency_icu_pediatric", "hv33", "[응급전용] 소아중환자실", "hvs10"),
    _count("emergency_icu_negative_isolation", "hv17", "[응급전용] 중환자실 음압격리", "hvs50"),
    _count("emergency_icu_general_isolation", "hv18", "[응급전용] 중환자실 일반격리", "hvs51"),
    # Operating rooms and other treatment rooms
    _count("operating_room", "hvoc", "[기타] 수술실", "hvs22"),
    _count("trauma_operating_room", "hv39", "[기타] 외상전용 수술실", "hvs23"),
    _mixed("delivery_room", "hv42", "[기타] 분만실", "hvs26"),
    _count("burn_treatment_room", "hv43", "[기타] 화상전용처치실", "hvs36"),
    # Wards
    _count("ward_general", "hvgc", "[입원실] 일반", "hvs38"),
    _count("ward_orthopedic", "hv4", "외과입원실(정형외과)"),
    _mixed("ward_neurology", "hv5", "신경과입원실"),
    _count("ward_trauma", "hv38", "[입원실] 외상전용", "hvs21"),
    _count("ward_psychiatric_closed", "hv40", "[입원실] 정신과 폐쇄병동", "hvs24"),
    _count("ward_negative_isolation", "hv41", "[입원실] 음압격리", "hvs25"),
    _count("emergency_ward", "hv36", "[응급전용] 입원실", "hvs19"),
    _count("emergency_ward_pediatric", "hv37", "[응급전용] 소아입원실", "hvs20"),
    _count("emergency_ward_negative_isolation", "hv19", "[응급전용] 입원실 음압격리", "hvs52"),
    _count("emergency_ward_general_isolation", "hv21", "[응급전용] 입원실 일반격리", "hvs53"),
    # Infectious-disease beds
    _count("infection_icu", "hv22", "감염병 전담병상 중환자실", "hvs54"),
    _count("infection_icu_negative", "hv23", "감염병 전담병상 중환자실 내 음압격리", "hvs55"),
    _count("infection_severe", "hv24", "[감염] 중증", "hvs56"),
    _count("infection_semi_severe", "hv25", "[감염] 준-중증", "hvs57"),
    _count("infection_moderate", "hv26", "[감염] 중등증", "hvs58"),
    # Equipment and services
    _flag("ct", "hvctayn", "CT", "hvs27"),
    _flag("mri", "hvmriayn", "MRI", "hvs28"),
    _flag("angio", "hvangioayn", "혈관촬영기", "hvs29"),
    _flag("ventilator", "hvventiayn", "인공호흡기", "hvs30"),
    _flag("ventilator_premature", "hvventisoayn", "인공호흡기 조산아", "hvs31"),
    _flag("incubator", "hvincuayn", "인큐베이터", "hvs32"),
    _flag("crrt", "hvcrrtayn", "CRRT", "hvs33"),
    _flag("ecmo", "hvecmoayn", "ECMO", "hvs34"),
    _flag("hypothermia", "hvhypoayn", "중심체온조절유도기", "hvs35"),
    _flag("hyperbaric_oxygen", "hvoxyayn", "고압산소치료기", "hvs37"),
    _flag("ventilator_pediatric", "hv10", "VENTI(소아)"),
    _flag("incubator_pediatric", "hv11", "인큐베이터(보육기)"),
    _flag("ambulance", "hvamyn", "구급차 가용"),
)

BED_FIELDS_BY_NAME: dict[str, BedField] = {f.name: f for f in BED_FIELDS}

# Every stored value, in display order: each field followed by its capacity when it has one.
STATUS_VALUE_KINDS: dict[str, Kind] = {}
for _field in BED_FIELDS:
    STATUS_VALUE_KINDS[_field.name] = _field.kind
    if _field.capacity_name:
        STATUS_VALUE_KINDS[_field.capacity_name] = Kind.COUNT

# Equipment a crew can require with ``needs=`` on the hospital search.
EQUIPMENT_NEEDS: tuple[str, ...] = tuple(
    f.name for f in BED_FIELDS if f.kind is Kind.FLAG and f.name != "ambulance"
)
