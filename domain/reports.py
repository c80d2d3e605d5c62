"""What the upstream reported, in domain terms: produced by ``ingestion.parsing``, consumed by
the services that apply it. Absent values are None (unknown)."""

from dataclasses import dataclass
from datetime import datetime

Value = int | bool | None


@dataclass(frozen=True, slots=True)
class BedReport:
    """A hospital's full status as the upstream reports it now (absent values are None)."""

    hpid: str
    name: str
    er_phone: str
    hvidate: datetime
    values: dict[str, Value]


@dataclass(frozen=True, slots=True)
class InstitutionReport:
    hpid: str
    name: str
    address: str
    main_phone: str
    er_phone: str
    latitude: float | None
    longitude: float | None
    emergency_class: str


@dataclass(frozen=True, slots=True)
class AcceptanceReport:
    hpid: str
    accepts: dict[int, bool | None]  # category → flag, for every category 1..28
    age_limits: dict[int, str]


@dataclass(frozen=True, slots=True)
class MessageReport:
    hpid: str
    fingerprint: str
    message_type: str  # "er" or "severe"
    disease_code: str
    disease_name: str
    message: str
    display_flag: str
    display_method: str
    starts_at: datetime | None
    ends_at: datetime | None
