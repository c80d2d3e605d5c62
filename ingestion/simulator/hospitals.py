"""A simulated hospital's state: its fixed identity, its current upstream values and messages,
and which upstream tags a beds row may carry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from domain.bed_fields import BED_FIELDS
from ingestion.simulator.protocol import format_date

Value = int | str

FIELDS_BY_TAG: Final = {f.upstream: f for f in BED_FIELDS}
_CAPACITY_TAGS: Final = frozenset(f.capacity_upstream for f in BED_FIELDS if f.capacity_upstream)
# Free-text tags the upstream sometimes sends (on-duty doctor, direct lines); never generated.
_TEXT_TAGS: Final = frozenset({"hvdnm", "hv1", "hv12"})
VALUE_TAGS: Final = frozenset(FIELDS_BY_TAG) | _CAPACITY_TAGS | _TEXT_TAGS


@dataclass(slots=True)
class Message:
    """One current ER (``응급``, code Y000) or severe-illness (``중증``) message."""

    kind: str
    text: str
    code: str
    start: datetime
    end: datetime | None = None

    def as_json(self) -> dict[str, object]:
        return {
            "type": self.kind,
            "message": self.text,
            "code": self.code,
            "start": format_date(self.start),
            "end": format_date(self.end) if self.end else None,
        }


@dataclass(slots=True)
class Hospital:
    """One hospital: its fixed identity and its current upstream values (tag → value)."""

    info: dict[str, object]
    values: dict[str, Value]
    hvidate: datetime
    acceptance: dict[str, str]
    messages: list[Message]
    basic: dict[str, Value]

    @property
    def hpid(self) -> str:
        return str(self.info["hpid"])

    @property
    def region_code(self) -> str:
        return str(self.info["region_code"])

    def as_json(self) -> dict[str, object]:
        return {
            "hpid": self.hpid,
            "name": self.info["name"],
            "region_code": self.region_code,
            "sido": self.info["sido"],
            "sigungu": self.info["sigungu"],
            "hvidate": format_date(self.hvidate),
            "values": dict(sorted(self.values.items())),
            "acceptance": dict(sorted(self.acceptance.items())),
            "messages": [m.as_json() for m in self.messages],
        }
