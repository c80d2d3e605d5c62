"""What every part of the simulator shares with the real upstream API: the five operations, the
``Y``/``N1`` flags, the upstream's yyyyMMddHHmmss Korea-time dates, and ``Reply``, one answer
before it is sent over HTTP."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Final

KST: Final = timezone(timedelta(hours=9), "KST")
DATE_FORMAT: Final = "%Y%m%d%H%M%S"

BEDS: Final = "getEmrrmRltmUsefulSckbdInfoInqire"
ACCEPTANCE: Final = "getSrsillDissAceptncPosblInfoInqire"
INSTITUTIONS: Final = "getEgytListInfoInqire"
BASIC_INFO: Final = "getEgytBassInfoInqire"
MESSAGES: Final = "getEmrrmSrsillDissMsgInqire"
OPERATIONS: Final = (BEDS, ACCEPTANCE, INSTITUTIONS, BASIC_INFO, MESSAGES)

FLAG_YES: Final = "Y"
FLAG_NO: Final = "N1"

XML_CONTENT_TYPE: Final = "application/xml;charset=UTF-8"
TEXT_CONTENT_TYPE: Final = "text/plain;charset=UTF-8"
JSON_CONTENT_TYPE: Final = "application/json"


def format_date(moment: datetime) -> str:
    """``moment`` as the upstream's yyyyMMddHHmmss in Korea time."""
    return moment.astimezone(KST).strftime(DATE_FORMAT)


def parse_date(text: str) -> datetime:
    """A yyyyMMddHHmmss Korea-time string as an aware datetime; ValueError if it is not one."""
    if not re.fullmatch(r"\d{14}", text):
        raise ValueError(f"not yyyyMMddHHmmss: {text!r}")
    return datetime.strptime(text, DATE_FORMAT).replace(tzinfo=KST)


@dataclass(frozen=True, slots=True)
class Reply:
    """What to send back: status, content type and body; ``outcome`` names it in the stats."""

    status: int
    content_type: str
    body: bytes
    outcome: str

    @classmethod
    def xml(cls, text: str, outcome: str, status: int = 200) -> Reply:
        return cls(status, XML_CONTENT_TYPE, text.encode(), outcome)

    @classmethod
    def text(cls, status: int, text: str, outcome: str) -> Reply:
        return cls(status, TEXT_CONTENT_TYPE, text.encode(), outcome)

    @classmethod
    def json(cls, status: int, payload: object) -> Reply:
        body = json.dumps(payload, ensure_ascii=False).encode()
        return cls(status, JSON_CONTENT_TYPE, body, "control")
