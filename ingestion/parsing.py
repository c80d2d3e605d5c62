"""Pure parsing of the NEMC upstream's XML (no I/O): envelopes, pages and records.

The upstream's quirks, all handled here: tags come in any order; an absent or empty tag means
unknown; flags are ``Y`` (yes) or ``N``/``N1``/``불가능`` (no), and ``정보미제공`` / ``-`` /
empty are unknown; counts may be negative (over capacity); the tags registered as mixed
(hv5, hv7, hv42) hold either a count or ``Y``; a ``Y`` in a plain count field is an unknown count;
stray text between elements is ignored. XML is parsed with defusedxml: no entity expansion, no
external entities. A malformed record raises ``RecordRejected`` and never yields partial data.
"""

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from xml.etree.ElementTree import Element, ParseError
from zoneinfo import ZoneInfo

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from domain.bed_fields import BED_FIELDS, STATUS_VALUE_KINDS, Kind
from domain.reports import AcceptanceReport, BedReport, InstitutionReport, MessageReport, Value
from domain.severe_illness import SEVERE_ILLNESS_CATEGORIES
from ingestion.errors import (
    UpstreamMalformed,
    UpstreamQuotaExceeded,
    UpstreamRejected,
    UpstreamUnavailable,
)

KST = ZoneInfo("Asia/Seoul")
_HPID = re.compile(r"^[A-Z][0-9A-Z]{1,9}$")
_YES = {"Y"}
_NO = {"N", "N1", "불가능"}
_UNKNOWN = {"", "-", "정보미제공"}
# resultCodes that are not errors of ours: 03 is "no data", i.e. an empty page.
_NO_DATA = "03"
_QUOTA_CODES = {"22"}
_TRANSIENT_CODES = {"01", "02", "04", "05", "23", "99"}


@dataclass(frozen=True, slots=True)
class Page:
    items: list[dict[str, str]]
    page_no: int
    num_of_rows: int
    total_count: int


class RecordRejected(ValueError):
    """One upstream record is unusable; the rest of the page is not affected."""


def _error_for(code: str, message: str) -> Exception:
    text = f"upstream result {code}: {message}"
    if code in _QUOTA_CODES:
        return UpstreamQuotaExceeded(text, code=code)
    if code in _TRANSIENT_CODES:
        return UpstreamUnavailable(text, code=code)
    return UpstreamRejected(text, code=code)


def _int(text: str | None, what: str) -> int:
    try:
        return int((text or "").strip())
    except ValueError:
        raise UpstreamMalformed(f"{what} is not a number: {text!r}") from None


def parse_page(body: bytes) -> Page:
    """One response of any operation. Raises the typed errors of ``ingestion.errors`` for the
    gateway's ``OpenAPI_ServiceResponse``, a ``resultCode`` other than 00/03, or bad XML."""
    try:
        root = fromstring(body)
    except (ParseError, DefusedXmlException) as exc:
        raise UpstreamMalformed(f"unreadable XML: {exc}") from exc
    if root.tag == "OpenAPI_ServiceResponse":
        code = (root.findtext("cmmMsgHeader/returnReasonCode") or "").strip()
        message = (root.findtext("cmmMsgHeader/returnAuthMsg") or "").strip()
        raise _error_for(code or "gateway", message or "gateway error")
    if root.tag != "response":
        raise UpstreamMalformed(f"unexpected root element <{root.tag}>")
    code = (root.findtext("header/resultCode") or "").strip()
    message = (root.findtext("header/resultMsg") or root.findtext("header/resultMag") or "").strip()
    if code == _NO_DATA:
        return Page(items=[], page_no=1, num_of_rows=0, total_count=0)
    if code != "00":
        raise _error_for(code or "missing", message)
    page_body = root.find("body")
    if page_body is None:
        raise UpstreamMalformed("no <body>")
    items_element = page_body.find("items")
    items = [] if items_element is None else [_item(item) for item in items_element.iter("item")]
    return Page(
        items=items,
        page_no=_int(page_body.findtext("pageNo"), "pageNo"),
        num_of_rows=_int(page_body.findtext("numOfRows"), "numOfRows"),
        total_count=_int(page_body.findtext("totalCount"), "totalCount"),
    )


def _item(element: Element) -> dict[str, str]:
    return {child.tag: (child.text or "").strip() for child in element}


def parse_flag(text: str) -> bool | None:
    value = text.strip().upper() if text.strip().isascii() else text.strip()
    if value in _YES:
        return True
    if value in _NO:
        return False
    if value in _UNKNOWN:
        return None
    raise RecordRejected(f"not a flag: {text!r}")


def parse_count(text: str, *, mixed: bool = False) -> int | bool | None:
    """A count; for mixed fields also ``Y``/``N``. A flag where a plain count is expected is an
    unknown count (the upstream reports availability without a number)."""
    value = text.strip()
    if value in _UNKNOWN:
        return None
    try:
        return int(value)
    except ValueError:
        pass
    flag = parse_flag(value)  # raises for garbage
    return flag if mixed else None


def parse_hvidate(text: str) -> datetime:
    value = text.strip()
    if not re.fullmatch(r"\d{14}", value):
        raise RecordRejected(f"hvidate is not yyyyMMddHHmmss: {text!r}")
    try:
        return datetime.strptime(value, "%Y%m%d%H%M%S").replace(tzinfo=KST)
    except ValueError as exc:
        raise RecordRejected(f"hvidate is not a date: {text!r}") from exc


def parse_hpid(item: dict[str, str]) -> str:
    hpid = item.get("hpid", "").strip()
    if not _HPID.match(hpid):
        raise RecordRejected(f"missing or malformed hpid: {hpid!r}")
    return hpid


_TAG_KINDS: dict[str, tuple[str, Kind]] = {}
for _field in BED_FIELDS:
    _TAG_KINDS[_field.upstream] = (_field.name, _field.kind)
    if _field.capacity_upstream and _field.capacity_name:
        _TAG_KINDS[_field.capacity_upstream] = (_field.capacity_name, Kind.COUNT)


def parse_bed_record(item: dict[str, str]) -> BedReport:
    """One ``getEmrrmRltmUsefulSckbdInfoInqire`` item. Raises ``RecordRejected``."""
    hpid = parse_hpid(item)
    hvidate = parse_hvidate(item.get("hvidate", ""))
    values: dict[str, Value] = dict.fromkeys(STATUS_VALUE_KINDS)
    for tag, text in item.items():
        known = _TAG_KINDS.get(tag)
        if known is None:
            continue
        name, kind = known
        try:
            values[name] = (
                parse_flag(text)
                if kind is Kind.FLAG
                else parse_count(text, mixed=kind is Kind.MIXED)
            )
        except RecordRejected as exc:
            raise RecordRejected(f"{hpid} <{tag}>: {exc}") from None
    return BedReport(
        hpid=hpid,
        name=item.get("dutyName", ""),
        er_phone=item.get("dutyTel3", ""),
        hvidate=hvidate,
        values=values,
    )


def _coordinate(text: str, low: float, high: float, what: str) -> float | None:
    if not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        raise RecordRejected(f"{what} is not a number: {text!r}") from None
    if not low <= value <= high:
        raise RecordRejected(f"{what} out of range: {value}")
    return value


def parse_institution(item: dict[str, str]) -> InstitutionReport:
    """One ``getEgytListInfoInqire`` (or basic-info) item. Raises ``RecordRejected``."""
    hpid = parse_hpid(item)
    name = item.get("dutyName", "")
    if not name:
        raise RecordRejected(f"{hpid}: no dutyName")
    latitude = _coordinate(item.get("wgs84Lat", ""), -90, 90, "wgs84Lat")
    longitude = _coordinate(item.get("wgs84Lon", ""), -180, 180, "wgs84Lon")
    if (latitude is None) != (longitude is None):
        latitude = longitude = None
    return InstitutionReport(
        hpid=hpid,
        name=name,
        address=item.get("dutyAddr", ""),
        main_phone=item.get("dutyTel1", ""),
        er_phone=item.get("dutyTel3", ""),
        latitude=latitude,
        longitude=longitude,
        emergency_class=item.get("dutyEmcls", ""),
    )


def parse_acceptance(item: dict[str, str]) -> AcceptanceReport:
    """One ``getSrsillDissAceptncPosblInfoInqire`` item (current MKioskTy meanings)."""
    hpid = parse_hpid(item)
    accepts: dict[int, bool | None] = {}
    for category in SEVERE_ILLNESS_CATEGORIES:
        try:
            accepts[category] = parse_flag(item.get(f"MKioskTy{category}", ""))
        except RecordRejected as exc:
            raise RecordRejected(f"{hpid} MKioskTy{category}: {exc}") from None
    age_limits = {
        category: item[f"MKioskTy{category}Msg"][:50]
        for category in SEVERE_ILLNESS_CATEGORIES
        if item.get(f"MKioskTy{category}Msg")
    }
    return AcceptanceReport(hpid=hpid, accepts=accepts, age_limits=age_limits)


_MESSAGE_TYPES = {"응급": "er", "중증": "severe"}


def parse_message(item: dict[str, str]) -> MessageReport:
    """One ``getEmrrmSrsillDissMsgInqire`` item. Its fingerprint identifies it across polls."""
    hpid = item.get("hpid") or item.get("emcOrgCod", "")
    hpid = parse_hpid({"hpid": hpid})
    message = item.get("symBlkMsg", "")
    if not message:
        raise RecordRejected(f"{hpid}: empty symBlkMsg")
    message_type = _MESSAGE_TYPES.get(item.get("symBlkMsgTyp", ""))
    if message_type is None:
        raise RecordRejected(f"{hpid}: unknown symBlkMsgTyp {item.get('symBlkMsgTyp')!r}")
    starts = item.get("symBlkSttDtm", "")
    ends = item.get("symBlkEndDtm", "")
    starts_at = parse_hvidate(starts) if starts else None
    ends_at = parse_hvidate(ends) if ends else None
    if starts_at and ends_at and ends_at < starts_at:
        raise RecordRejected(f"{hpid}: message ends before it starts")
    identity = "\x1f".join((hpid, message_type, item.get("symTypCod", ""), starts, message))
    return MessageReport(
        hpid=hpid,
        fingerprint=hashlib.sha256(identity.encode()).hexdigest(),
        message_type=message_type,
        disease_code=item.get("symTypCod", "")[:10],
        disease_name=item.get("symTypCodMag", "")[:100],
        message=message,
        display_flag=item.get("symOutDspYon", "")[:10],
        display_method=item.get("symOutDspMth", "")[:10],
        starts_at=starts_at,
        ends_at=ends_at,
    )
