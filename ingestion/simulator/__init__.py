"""An HTTP simulator of the NEMC open API (ErmctInfoInqireService), with a JSON control API.

Run it with ``python -m ingestion.simulator --port 8001``; point ``UPSTREAM_BASE_URL`` at
``http://127.0.0.1:8001/B552657/ErmctInfoInqireService`` and ``UPSTREAM_SERVICE_KEY`` at the
``--service-key`` (default ``simulator-key``).

It speaks the upstream's real XML: the ``<response><header>…</header><body>…</body></response>``
envelope, children of ``<item>`` sorted by plain string comparison of their tag names (uppercase
first, ``hv10`` before ``hv5``), absent tags for unknown values, ``Y``/``N1`` flags, ``<items/>``
for an empty page, the data.go.kr gateway envelope for a bad key and plain ``Unauthorized`` (401)
for a missing one. The hospitals are the project's demo hospitals (``domain.demo_data``); their
bed values are generated deterministically from a seed and then move in a background random walk.

Layout, top to bottom:

* pure rendering: ``render_item``, ``render_page``, ``render_result``, ``render_gateway_error``,
  ``cut_in_element`` and ``paginate`` (strings in, strings out; no state);
* ``Simulator``: hospital state, fault modes, statistics and the random walk, all behind one lock;
  ``Simulator.respond`` answers one API call and ``Simulator.control`` one control call, both
  without any HTTP;
* ``SimulatorServer`` / ``SimulatorHandler``: the thin HTTP layer;
* ``start_simulator`` / ``running_simulator`` for tests, and ``main`` for the command line.

Control API (JSON; bad input answers 400 ``{"error": "..."}``, unknown hpids 404):

* ``GET /_control/health``
* ``GET /_control/hospitals[?region=11]`` and ``GET /_control/hospitals/<hpid>``
* ``PUT /_control/hospitals/<hpid>`` ``{"values": {"hvec": -3, "hvctayn": "N1"},
  "remove": ["hv28"], "hvidate": "20261124120000", "acceptance": {"MKioskTy1": "N1"},
  "messages": [{"type": "응급", "message": "...", "code": "Y000"}]}`` (every key optional;
  ``hvidate`` defaults to now; ``acceptance`` values of ``null`` remove the tag; ``messages``
  replaces the hospital's messages)
* ``GET /_control/faults``, ``POST /_control/faults`` ``{"mode": "http500",
  "operations": [...], "regions": ["11"], "calls": 3, "seconds": 30, "missing": 5,
  "variant": "no_hpid"}`` (all but ``mode`` optional), ``DELETE /_control/faults`` (all) and
  ``DELETE /_control/faults/<id>``
* ``POST /_control/walk`` ``{"interval": 1.0, "fraction": 0.2}`` (interval 0 stops the walk),
  ``POST /_control/walk/step`` (one step now; answers the changed hpids)
* ``GET /_control/stats`` (calls per operation and per outcome), ``DELETE /_control/stats``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import random
import re
import signal
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

from domain.bed_fields import BED_FIELDS, Kind
from domain.demo_data import demo_hospitals
from domain.regions import REGIONS_BY_CODE, Region, region_for_sido
from domain.severe_illness import (
    DISEASE_CODE_CATEGORIES,
    ER_DISEASE_CODE,
    SEVERE_ILLNESS_CATEGORIES,
)

KST: Final = timezone(timedelta(hours=9), "KST")
BASE_PATH: Final = "/B552657/ErmctInfoInqireService/"
CONTROL_PATH: Final = "/_control/"
XML_CONTENT_TYPE: Final = "application/xml;charset=UTF-8"
TEXT_CONTENT_TYPE: Final = "text/plain;charset=UTF-8"
JSON_CONTENT_TYPE: Final = "application/json"
XML_DECLARATION: Final = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
DEFAULT_SERVICE_KEY: Final = "simulator-key"
DEFAULT_SEED: Final = 2026
DATE_FORMAT: Final = "%Y%m%d%H%M%S"

BEDS: Final = "getEmrrmRltmUsefulSckbdInfoInqire"
ACCEPTANCE: Final = "getSrsillDissAceptncPosblInfoInqire"
INSTITUTIONS: Final = "getEgytListInfoInqire"
BASIC_INFO: Final = "getEgytBassInfoInqire"
MESSAGES: Final = "getEmrrmSrsillDissMsgInqire"
OPERATIONS: Final = (BEDS, ACCEPTANCE, INSTITUTIONS, BASIC_INFO, MESSAGES)

FAULT_MODES: Final = (
    "timeout",
    "http500",
    "malformed",
    "code22",
    "code30",
    "truncated",
    "stale_hvidate",
    "bad_record",
)
# Modes that only make sense for some operations; a fault never matches (nor spends a call on)
# an operation outside this set.
_FAULT_OPERATIONS: Final[dict[str, frozenset[str]]] = {
    "stale_hvidate": frozenset({BEDS}),
}
BAD_RECORD_VARIANTS: Final = ("no_hpid", "bad_count")
DEFAULT_TIMEOUT_SECONDS: Final = 30.0

FLAG_YES: Final = "Y"
FLAG_NO: Final = "N1"
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

_FIELDS_BY_TAG: Final = {f.upstream: f for f in BED_FIELDS}
_CAPACITY_TAGS: Final = frozenset(f.capacity_upstream for f in BED_FIELDS if f.capacity_upstream)
# Free-text tags the upstream sometimes sends (on-duty doctor, direct lines); never generated.
_TEXT_TAGS: Final = frozenset({"hvdnm", "hv1", "hv12"})
VALUE_TAGS: Final = frozenset(_FIELDS_BY_TAG) | _CAPACITY_TAGS | _TEXT_TAGS
_ER_TAGS: Final = frozenset({"hvec", "hv28", "hv29", "hv30"})  # may go over capacity
_BASIC_COUNT_TAGS: Final = ("hvec", "hvoc", "hvcc", "hvncc", "hvccc", "hvicc", "hvgc")
_ACCEPTANCE_TAG: Final = re.compile(r"^MKioskTy([1-9]|1[0-9]|2[0-8])(Msg)?$")
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

Fields = Mapping[str, object]


# --------------------------------------------------------------------------------------------
# Pure rendering
# --------------------------------------------------------------------------------------------


def render_item(fields: Fields) -> str:
    """One ``<item>``: a child per field, sorted by plain string comparison of the tag names
    (the upstream's order: uppercase before lowercase, ``hv10`` before ``hv5``), text escaped.
    Fields whose value is ``None`` are left out (an unknown value is an absent tag)."""
    children = "".join(
        f"<{tag}>{escape(str(value))}</{tag}>"
        for tag, value in sorted(fields.items())
        if value is not None
    )
    return f"<item>{children}</item>"


def render_page(
    items: Sequence[Fields], *, page_no: int, num_of_rows: int, total_count: int
) -> str:
    """A successful answer (resultCode 00) holding ``items`` as one page; ``<items/>`` if none."""
    rendered = (
        "<items>" + "".join(render_item(i) for i in items) + "</items>" if items else ("<items/>")
    )
    return (
        f"{XML_DECLARATION}<response>{_header('00', 'NORMAL SERVICE.')}<body>{rendered}"
        f"<numOfRows>{num_of_rows}</numOfRows><pageNo>{page_no}</pageNo>"
        f"<totalCount>{total_count}</totalCount></body></response>"
    )


def render_result(code: str, message: str) -> str:
    """The normal envelope with an error ``resultCode`` and no body (e.g. 22, quota exceeded)."""
    return f"{XML_DECLARATION}<response>{_header(code, message)}</response>"


def render_gateway_error(
    reason_code: int = 30, auth_message: str = "SERVICE_KEY_IS_NOT_REGISTERED_ERROR"
) -> str:
    """The data.go.kr gateway's own error envelope (sent with HTTP 200)."""
    return (
        f"{XML_DECLARATION}<OpenAPI_ServiceResponse><cmmMsgHeader><errMsg>SERVICE ERROR</errMsg>"
        f"<returnAuthMsg>{escape(auth_message)}</returnAuthMsg>"
        f"<returnReasonCode>{reason_code}</returnReasonCode></cmmMsgHeader>"
        "</OpenAPI_ServiceResponse>"
    )


def cut_in_element(xml: str) -> str:
    """``xml`` cut short in the middle of an element: just inside the first tag that starts at or
    after the middle of the document (always unparseable: the root is never closed)."""
    start = xml.find("<", len(xml) // 2)
    if start < 0:
        start = xml.rfind("<")
    return xml[: start + 3]


def paginate(rows: Sequence[Any], page_no: int, num_of_rows: int) -> list[Any]:
    """The rows of 1-based page ``page_no`` of ``num_of_rows`` rows (empty past the end)."""
    start = (page_no - 1) * num_of_rows
    return list(rows[start : start + num_of_rows])


def format_date(moment: datetime) -> str:
    """``moment`` as the upstream's yyyyMMddHHmmss in Korea time."""
    return moment.astimezone(KST).strftime(DATE_FORMAT)


def parse_date(text: str) -> datetime:
    """A yyyyMMddHHmmss Korea-time string as an aware datetime; ValueError if it is not one."""
    if not re.fullmatch(r"\d{14}", text):
        raise ValueError(f"not yyyyMMddHHmmss: {text!r}")
    return datetime.strptime(text, DATE_FORMAT).replace(tzinfo=KST)


def _header(code: str, message: str) -> str:
    return (
        f"<header><resultCode>{escape(code)}</resultCode>"
        f"<resultMsg>{escape(message)}</resultMsg></header>"
    )


# --------------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------------

Value = int | str


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


@dataclass(slots=True)
class Fault:
    """A fault mode; ``None`` filters match everything; ``calls`` (if set) counts down to 0,
    when the fault switches itself off."""

    id: int
    mode: str
    operations: frozenset[str] | None = None
    regions: frozenset[str] | None = None
    calls: int | None = None
    seconds: float = DEFAULT_TIMEOUT_SECONDS
    missing: int | None = None
    variant: str | None = None
    hits: int = 0

    def matches(self, operation: str, region: str | None) -> bool:
        allowed = _FAULT_OPERATIONS.get(self.mode)
        if allowed is not None and operation not in allowed:
            return False
        if self.operations is not None and operation not in self.operations:
            return False
        return self.regions is None or region in self.regions

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "mode": self.mode,
            "operations": sorted(self.operations) if self.operations is not None else None,
            "regions": sorted(self.regions) if self.regions is not None else None,
            "calls": self.calls,
            "seconds": self.seconds,
            "missing": self.missing,
            "variant": self.variant,
            "hits": self.hits,
        }


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


class ControlError(Exception):
    """Bad control input; becomes a JSON error with ``status``."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class _BadRequest(Exception):
    """An API call the upstream would answer with an error resultCode (10 or 11)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class _Query:
    operation: str
    page_no: int
    num_of_rows: int
    region: Region | None = None
    sigungu: str | None = None
    hpid: str | None = None
    name: str | None = None
    unknown_region: bool = False


@dataclass(slots=True)
class _Stats:
    by_operation: dict[str, Counter[str]] = field(default_factory=dict)

    def record(self, operation: str, outcome: str) -> None:
        self.by_operation.setdefault(operation, Counter())[outcome] += 1

    def as_json(self) -> dict[str, object]:
        outcomes: Counter[str] = Counter()
        for counter in self.by_operation.values():
            outcomes.update(counter)
        return {
            "calls": sum(outcomes.values()),
            "operations": {
                op: {"calls": sum(c.values()), "outcomes": dict(sorted(c.items()))}
                for op, c in sorted(self.by_operation.items())
            },
            "outcomes": dict(sorted(outcomes.items())),
        }


def _now() -> datetime:
    return datetime.now(KST)


class Simulator:
    """The simulated upstream: state, faults, statistics and the random walk.

    Contracts:

    * Initial values depend only on ``seed`` and the hospitals (each hospital draws from
      ``random.Random(f"{seed}:{hpid}")``); initial hvidates are 0–30 minutes before creation.
    * Every read and write of the state holds ``self._lock``; rendering happens outside it.
    * ``start()`` starts the background walk thread (a step every ``walk_interval`` seconds,
      none while it is 0); ``close()`` stops it and ends any ``timeout`` fault's sleep early.
    * A walk step changes ``round(len(hospitals) * change_fraction)`` hospitals (at least one if
      the fraction is above 0): 1–3 of each one's reported values (a count moves by ±1..2, a flag
      flips between Y and N1) and sets its hvidate to now.
    * ``hospitals`` (default: ``demo_hospitals()``, whatever the seed) are dicts with the keys of
      ``domain.demo_data.HOSPITAL_KEYS``; ``clock`` gives the current time (aware).
    """

    def __init__(
        self,
        seed: int = DEFAULT_SEED,
        walk_interval: float = 5.0,
        change_fraction: float = 0.1,
        *,
        service_key: str = DEFAULT_SERVICE_KEY,
        hospitals: Sequence[Mapping[str, object]] | None = None,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        _check_walk(walk_interval, change_fraction)
        self.seed = seed
        self.service_key = service_key
        self._clock = clock
        self._lock = threading.Lock()
        self._walk_rng = random.Random(seed)  # noqa: S311 - simulation, not security
        self._walk_interval = float(walk_interval)
        self._change_fraction = float(change_fraction)
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._walker: threading.Thread | None = None
        self._faults: list[Fault] = []
        self._next_fault_id = 1
        self._stats = _Stats()
        created = clock()
        source = demo_hospitals() if hospitals is None else hospitals
        self._hospitals: dict[str, Hospital] = {}
        for info in source:
            hospital = _generate(dict(info), seed, created)
            self._hospitals[hospital.hpid] = hospital

    # ---- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Start the background walk thread (idempotent)."""
        if self._walker is None:
            self._walker = threading.Thread(target=self._walk_loop, name="sim-walk", daemon=True)
            self._walker.start()

    def close(self) -> None:
        """Stop the walk thread and cut short any sleeping ``timeout`` fault."""
        self._closed.set()
        self._wake.set()
        if self._walker is not None:
            self._walker.join(timeout=5)

    def _walk_loop(self) -> None:
        while not self._closed.is_set():
            with self._lock:
                interval = self._walk_interval
            woken = self._wake.wait(interval if interval > 0 else None)
            if self._closed.is_set():
                return
            if woken:
                self._wake.clear()  # settings changed: start a new interval
                continue
            self.walk_step()

    # ---- the walk ------------------------------------------------------------------------

    def set_walk(self, interval: float | None = None, fraction: float | None = None) -> None:
        """Change the walk's interval (0 stops it) and/or the fraction of hospitals it changes."""
        with self._lock:
            new_interval = self._walk_interval if interval is None else float(interval)
            new_fraction = self._change_fraction if fraction is None else float(fraction)
            _check_walk(new_interval, new_fraction)
            self._walk_interval, self._change_fraction = new_interval, new_fraction
        self._wake.set()

    def walk_settings(self) -> dict[str, float]:
        with self._lock:
            return {"interval": self._walk_interval, "fraction": self._change_fraction}

    def walk_step(self) -> list[str]:
        """One step of the random walk now; the hpids it changed, in no particular order."""
        now = self._clock()
        changed: list[str] = []
        with self._lock:
            hospitals = list(self._hospitals.values())
            fraction = self._change_fraction
            count = round(len(hospitals) * fraction)
            if fraction > 0:
                count = min(len(hospitals), max(count, 1))
            for hospital in self._walk_rng.sample(hospitals, count):
                if _perturb(hospital.values, self._walk_rng, attempts=3):
                    hospital.hvidate = now
                    changed.append(hospital.hpid)
        return changed

    # ---- hospitals -----------------------------------------------------------------------

    def hospital(self, hpid: str) -> dict[str, object]:
        """The hospital's current state as JSON; KeyError if unknown."""
        with self._lock:
            return self._hospitals[hpid].as_json()

    def hospital_list(self, region: str | None = None) -> list[dict[str, object]]:
        """Every hospital (of ``region``, a code or 시도 name, if given): hpid, name, region."""
        code = _region_code(region) if region else None
        with self._lock:
            return [
                {"hpid": h.hpid, "name": h.info["name"], "region_code": h.region_code}
                for h in self._hospitals.values()
                if code is None or h.region_code == code
            ]

    def update_hospital(
        self,
        hpid: str,
        values: Mapping[str, object] | None = None,
        remove: Sequence[str] = (),
        hvidate: str | None = None,
        acceptance: Mapping[str, object] | None = None,
        messages: Sequence[Mapping[str, object]] | None = None,
    ) -> dict[str, object]:
        """Set exact upstream values (ints for counts, strings verbatim), remove tags, set the
        hvidate (default now), the acceptance tags and/or the messages; all or nothing.
        ControlError (400) on bad input, (404) for an unknown hpid."""
        new_values = _checked_values(values or {})
        for tag in remove:
            if not isinstance(tag, str) or tag not in VALUE_TAGS:
                raise ControlError(f"remove: unknown tag {tag!r}")
        try:
            moment = parse_date(hvidate) if hvidate is not None else self._clock()
        except (TypeError, ValueError) as exc:
            raise ControlError(f"hvidate: {exc}") from None
        new_acceptance = _checked_acceptance(acceptance or {})
        new_messages = (
            [_checked_message(m, self._clock()) for m in messages] if messages is not None else None
        )
        with self._lock:
            hospital = self._hospitals.get(hpid)
            if hospital is None:
                raise ControlError(f"unknown hpid {hpid!r}", status=404)
            hospital.values.update(new_values)
            for tag in remove:
                hospital.values.pop(tag, None)
            hospital.hvidate = moment
            for tag, text in new_acceptance.items():
                if text is None:
                    hospital.acceptance.pop(tag, None)
                else:
                    hospital.acceptance[tag] = text
            if new_messages is not None:
                hospital.messages = new_messages
            return hospital.as_json()

    # ---- faults and stats ----------------------------------------------------------------

    def add_fault(
        self,
        mode: str,
        operations: Sequence[str] | None = None,
        regions: Sequence[str] | None = None,
        calls: int | None = None,
        seconds: float | None = None,
        missing: int | None = None,
        variant: str | None = None,
    ) -> dict[str, object]:
        """Switch a fault mode on; ControlError on bad input. Answers the fault as JSON."""
        if mode not in FAULT_MODES:
            raise ControlError(f"mode must be one of {', '.join(FAULT_MODES)}")
        if operations is not None and (
            not _is_str_list(operations) or not set(operations) <= set(OPERATIONS)
        ):
            raise ControlError(f"operations must be a list among {', '.join(OPERATIONS)}")
        if regions is not None and not _is_str_list(regions):
            raise ControlError("regions must be a list of region codes or 시도 names")
        codes = frozenset(_region_code(r) for r in regions) if regions is not None else None
        if calls is not None and (not _is_int(calls) or calls < 1):
            raise ControlError("calls must be a positive integer")
        if seconds is not None and (not _is_number(seconds) or seconds < 0):
            raise ControlError("seconds must be a number >= 0")
        if missing is not None and (not _is_int(missing) or missing < 1):
            raise ControlError("missing must be a positive integer")
        if variant is not None and variant not in BAD_RECORD_VARIANTS:
            raise ControlError(f"variant must be one of {', '.join(BAD_RECORD_VARIANTS)}")
        with self._lock:
            fault = Fault(
                id=self._next_fault_id,
                mode=mode,
                operations=frozenset(operations) if operations is not None else None,
                regions=codes,
                calls=calls,
                seconds=DEFAULT_TIMEOUT_SECONDS if seconds is None else float(seconds),
                missing=missing,
                variant=variant,
            )
            self._next_fault_id += 1
            self._faults.append(fault)
            return fault.as_json()

    def faults(self) -> list[dict[str, object]]:
        with self._lock:
            return [f.as_json() for f in self._faults]

    def clear_faults(self, fault_id: int | None = None) -> int:
        """Remove every fault, or the one with ``fault_id``; how many were removed."""
        with self._lock:
            before = len(self._faults)
            self._faults = [f for f in self._faults if fault_id is not None and f.id != fault_id]
            return before - len(self._faults)

    def stats(self) -> dict[str, object]:
        with self._lock:
            return self._stats.as_json()

    def reset_stats(self) -> None:
        with self._lock:
            self._stats = _Stats()

    def _take_fault(self, operation: str, region: str | None) -> Fault | None:
        """A snapshot of the first active fault matching the call, taken after spending one of
        its calls (a fault whose calls run out is removed)."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(operation, region):
                    fault.hits += 1
                    if fault.calls is not None:
                        fault.calls -= 1
                        if fault.calls <= 0:
                            self._faults.remove(fault)
                    return replace(fault)
        return None

    def _record(self, operation: str, outcome: str) -> None:
        with self._lock:
            self._stats.record(operation, outcome)

    # ---- the API -------------------------------------------------------------------------

    def respond(self, operation: str, params: Mapping[str, str]) -> Reply:
        """Answer one API call of ``operation`` with the (decoded) query ``params``, as the
        upstream would, faults included. May sleep (``timeout`` fault); never holds the lock
        while sleeping or rendering."""
        reply = self._respond(operation, params)
        self._record(operation, reply.outcome)
        return reply

    def _respond(self, operation: str, params: Mapping[str, str]) -> Reply:
        key = params.get("serviceKey") or params.get("ServiceKey")
        if not key:
            return Reply.text(401, "Unauthorized", "unauthorized")
        if key != self.service_key:
            return Reply.xml(render_gateway_error(), "key_not_registered")
        if operation not in OPERATIONS:
            return Reply.xml(render_gateway_error(12, "NO_OPENAPI_SERVICE_ERROR"), "no_service")
        try:
            query = self._parse_query(operation, params)
        except _BadRequest as exc:
            return Reply.xml(render_result(exc.code, str(exc)), "bad_request")
        fault = self._take_fault(operation, self._region_of(query))
        mode = fault.mode if fault else None
        if fault is not None and mode == "timeout":
            self._closed.wait(fault.seconds)
        if mode == "http500":
            return Reply.text(500, "Internal Server Error", "http500")
        if mode == "code22":
            xml = render_result("22", "LIMITED NUMBER OF SERVICE REQUESTS EXCEEDS ERROR.")
            return Reply.xml(xml, "code22")
        if mode == "code30":
            return Reply.xml(render_gateway_error(), "code30")
        xml = self._render(query, fault)
        if mode == "malformed":
            xml = cut_in_element(xml)
        return Reply.xml(xml, mode or "ok")

    def _parse_query(self, operation: str, params: Mapping[str, str]) -> _Query:
        query = _Query(
            operation,
            page_no=_positive_param(params, "pageNo", 1),
            num_of_rows=_positive_param(params, "numOfRows", 10),
        )
        if operation in (BEDS, ACCEPTANCE):
            stage1 = params.get("STAGE1", "").strip()
            if not stage1:
                raise _BadRequest("11", "NO MANDATORY REQUEST PARAMETERS ERROR.")
            region = region_for_sido(stage1)
            return replace(
                query,
                region=region,
                unknown_region=region is None,
                sigungu=params.get("STAGE2", "").strip() or None,
            )
        if operation == BASIC_INFO:
            hpid = params.get("HPID", "").strip()
            if not hpid:
                raise _BadRequest("11", "NO MANDATORY REQUEST PARAMETERS ERROR.")
            return replace(query, hpid=hpid)
        hpid = params.get("HPID", "").strip() if operation == MESSAGES else ""
        q0 = params.get("Q0", "").strip()
        region = region_for_sido(q0) if q0 else None
        return replace(
            query,
            hpid=hpid or None,
            region=region,
            unknown_region=bool(q0) and region is None,
            sigungu=params.get("Q1", "").strip() or None,
            name=params.get("QN", "").strip() or None,
        )

    def _region_of(self, query: _Query) -> str | None:
        if query.hpid is not None:
            with self._lock:
                hospital = self._hospitals.get(query.hpid)
            return hospital.region_code if hospital else None
        return query.region.code if query.region else None

    def _selected(self, query: _Query) -> list[Hospital]:
        """The hospitals a query is about, in the simulator's fixed order. Caller holds the lock."""
        if query.hpid is not None:
            hospital = self._hospitals.get(query.hpid)
            return [hospital] if hospital else []
        if query.unknown_region:
            return []
        return [
            h
            for h in self._hospitals.values()
            if (query.region is None or h.region_code == query.region.code)
            and (query.sigungu is None or h.info["sigungu"] == query.sigungu)
            and (query.name is None or query.name in str(h.info["name"]))
        ]

    def _rows(self, query: _Query, stale_rng: random.Random | None) -> list[dict[str, object]]:
        """Every row of the query's answer (without rnum). Caller holds the lock."""
        hospitals = self._selected(query)
        if query.operation == BEDS:
            return [_beds_row(h, stale_rng) for h in hospitals]
        if query.operation == ACCEPTANCE:
            return [_acceptance_row(h) for h in hospitals]
        if query.operation == INSTITUTIONS:
            return [_institution_row(h) for h in hospitals]
        if query.operation == BASIC_INFO:
            return [_basic_row(h) for h in hospitals]
        return [_message_row(h, m) for h in hospitals for m in h.messages]

    def _render(self, query: _Query, fault: Fault | None) -> str:
        mode = fault.mode if fault else None
        # Faults that spoil data draw from their own generator, never from the walk's.
        rng = random.Random(f"{self.seed}:{mode}:{fault.hits if fault else 0}")  # noqa: S311
        with self._lock:
            rows = self._rows(query, rng if mode == "stale_hvidate" else None)
        total = len(rows)
        if fault is not None and mode == "truncated":
            missing = fault.missing if fault.missing is not None else max(1, math.ceil(total / 5))
            rows = rows[: max(0, total - missing)]
        start = (query.page_no - 1) * query.num_of_rows
        page = paginate(rows, query.page_no, query.num_of_rows)
        items: list[dict[str, object]] = []
        for offset, row in enumerate(page):
            item = dict(row)
            if query.operation != BASIC_INFO:
                item["rnum"] = start + offset + 1
            items.append(item)
        if fault is not None and mode == "bad_record" and items:
            index = rng.randrange(len(items))
            variant = fault.variant or BAD_RECORD_VARIANTS[fault.hits % 2]
            items[index] = _garbled(items[index], variant, rng)
        return render_page(
            items, page_no=query.page_no, num_of_rows=query.num_of_rows, total_count=total
        )

    # ---- the control API -----------------------------------------------------------------

    def control(self, method: str, path: str, query: str, body: bytes) -> Reply:
        """Answer one control call (``path`` below ``/_control/``) with JSON."""
        try:
            status, payload = self._control(method, path.strip("/"), query, body)
        except ControlError as exc:
            return Reply.json(exc.status, {"error": str(exc)})
        return Reply.json(status, payload)

    def _control(self, method: str, path: str, query: str, body: bytes) -> tuple[int, object]:
        parts = path.split("/") if path else []
        data = _json_body(body) if method in ("POST", "PUT") else {}
        match (method, parts):
            case ("GET", ["health"]):
                with self._lock:
                    count, faults = len(self._hospitals), len(self._faults)
                return 200, {
                    "status": "ok",
                    "hospitals": count,
                    "faults": faults,
                    "seed": self.seed,
                    "walk": self.walk_settings(),
                }
            case ("GET", ["hospitals"]):
                region = parse_qs(query).get("region", [None])[0]
                return 200, {"hospitals": self.hospital_list(region)}
            case ("GET", ["hospitals", hpid]):
                try:
                    return 200, self.hospital(hpid)
                except KeyError:
                    raise ControlError(f"unknown hpid {hpid!r}", status=404) from None
            case ("PUT", ["hospitals", hpid]):
                _only_keys(data, {"values", "remove", "hvidate", "acceptance", "messages"})
                values = _typed(data, "values", dict)
                remove = _typed(data, "remove", list)
                hvidate = _typed(data, "hvidate", str)
                acceptance = _typed(data, "acceptance", dict)
                messages = _typed(data, "messages", list)
                return 200, self.update_hospital(
                    hpid, values, remove or (), hvidate, acceptance, messages
                )
            case ("GET", ["faults"]):
                return 200, {"faults": self.faults()}
            case ("POST", ["faults"]):
                keys = {"mode", "operations", "regions", "calls", "seconds", "missing", "variant"}
                _only_keys(data, keys)
                return 201, self.add_fault(**data)
            case ("DELETE", ["faults"]):
                return 200, {"removed": self.clear_faults()}
            case ("DELETE", ["faults", fault_id]):
                if not fault_id.isdigit():
                    raise ControlError("fault id must be an integer")
                if not self.clear_faults(int(fault_id)):
                    raise ControlError(f"no fault {fault_id}", status=404)
                return 200, {"removed": 1}
            case ("POST", ["walk"]):
                _only_keys(data, {"interval", "fraction"})
                for key in ("interval", "fraction"):
                    if key in data and not _is_number(data[key]):
                        raise ControlError(f"{key} must be a number")
                try:
                    self.set_walk(data.get("interval"), data.get("fraction"))
                except ValueError as exc:
                    raise ControlError(str(exc)) from None
                return 200, self.walk_settings()
            case ("POST", ["walk", "step"]):
                return 200, {"changed": sorted(self.walk_step())}
            case ("GET", ["stats"]):
                return 200, self.stats()
            case ("DELETE", ["stats"]):
                self.reset_stats()
                return 200, self.stats()
        raise ControlError(f"no control endpoint {method} /_control/{path}", status=404)


# --------------------------------------------------------------------------------------------
# Generation and rows (pure helpers over one hospital)
# --------------------------------------------------------------------------------------------


def _generate(info: dict[str, object], seed: int, now: datetime) -> Hospital:
    """A hospital's initial state, from ``random.Random(f"{seed}:{hpid}")`` alone."""
    rng = random.Random(f"{seed}:{info['hpid']}")  # noqa: S311 - simulation, not security
    klass = str(info.get("emergency_class", "G007"))
    presence = _PRESENCE.get(klass, 0.45)
    values: dict[str, Value] = {}
    for bed_field in BED_FIELDS:
        tag, capacity_tag = bed_field.upstream, bed_field.capacity_upstream
        if tag == "hvec":
            capacity = rng.randint(*_CAPACITY_RANGES["hvs01"])
            values["hvs01"] = capacity
            negative = rng.random() < 0.12
            values["hvec"] = rng.randint(-5, -1) if negative else rng.randint(0, capacity)
        elif bed_field.kind is Kind.FLAG:
            if rng.random() < 0.85:
                values[tag] = FLAG_YES if rng.random() < 0.85 else FLAG_NO
                if capacity_tag and rng.random() < 0.8:
                    values[capacity_tag] = rng.randint(*_capacity_range(capacity_tag))
        elif bed_field.kind is Kind.MIXED:
            if rng.random() < presence:
                capacity = rng.randint(1, 4)
                values[tag] = FLAG_YES if rng.random() < 0.6 else rng.randint(0, capacity)
                if capacity_tag and rng.random() < 0.7:
                    values[capacity_tag] = capacity
        elif rng.random() < presence:
            capacity = rng.randint(*_capacity_range(capacity_tag or ""))
            values[tag] = rng.randint(0, capacity)
            if capacity_tag and rng.random() < 0.9:
                values[capacity_tag] = capacity
    acceptance: dict[str, str] = {}
    yes = _ACCEPTANCE_YES.get(klass, 0.3)
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
    messages: list[Message] = []
    if rng.random() < 0.1:
        for _ in range(rng.randint(1, 2)):
            start = now - timedelta(minutes=rng.randint(10, 600))
            end = start + timedelta(minutes=rng.randint(60, 1440)) if rng.random() < 0.5 else None
            if rng.random() < 0.4:
                messages.append(
                    Message("응급", rng.choice(ER_MESSAGES), ER_DISEASE_CODE, start, end)
                )
            else:
                code = rng.choice(sorted(DISEASE_CODE_CATEGORIES))
                messages.append(Message("중증", rng.choice(SEVERE_MESSAGES), code, start, end))
    beds_total = {"G001": (600, 1200), "G006": (200, 800), "G007": (80, 400)}.get(klass, (30, 200))
    hospital_beds = rng.randint(*beds_total)
    basic: dict[str, Value] = {"dutyHano": hospital_beds, "hpbdn": hospital_beds}
    for basic_tag, capacity_tag in (
        ("hperyn", "hvs01"),
        ("hpgryn", "hvs38"),
        ("hpopyn", "hvs22"),
        ("hpicuyn", "hvs17"),
        ("hpnicuyn", "hvs08"),
        ("hpccuyn", "hvs16"),
        ("hpcuyn", "hvs11"),
    ):
        if capacity_tag in values:
            basic[basic_tag] = values[capacity_tag]
    hvidate = now - timedelta(seconds=rng.randint(0, 30 * 60))
    return Hospital(info, values, hvidate, acceptance, messages, basic)


def _capacity_range(capacity_tag: str) -> tuple[int, int]:
    return _CAPACITY_RANGES.get(capacity_tag, _DEFAULT_CAPACITY_RANGE)


def _perturb(values: dict[str, Value], rng: random.Random, attempts: int = 1) -> bool:
    """Move 1–3 of the reported bed values in place: a count by ±1..2 (within −5 or 0 and its
    capacity), a flag between Y and N1 (also a mixed field's Y). Tries again, up to ``attempts``
    times, while nothing changed (a count stuck at its bounds); True if anything changed."""
    tags = sorted(tag for tag in values if tag in _FIELDS_BY_TAG)
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
            capacity_tag = _FIELDS_BY_TAG[tag].capacity_upstream
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


def _beds_row(hospital: Hospital, stale_rng: random.Random | None) -> dict[str, object]:
    """A getEmrrmRltmUsefulSckbdInfoInqire row; with ``stale_rng``, values moved by a walk
    step and an hvidate one hour older than the current one."""
    values = dict(hospital.values)
    hvidate = hospital.hvidate
    if stale_rng is not None:
        _perturb(values, stale_rng, attempts=5)
        hvidate -= timedelta(hours=1)
    return {
        "dutyName": hospital.info["name"],
        "dutyTel3": hospital.info["er_phone"],
        "hpid": hospital.hpid,
        "phpid": hospital.hpid,
        "hvidate": format_date(hvidate),
        **values,
    }


def _acceptance_row(hospital: Hospital) -> dict[str, object]:
    return {"dutyName": hospital.info["name"], "hpid": hospital.hpid, **hospital.acceptance}


def _institution_row(hospital: Hospital) -> dict[str, object]:
    info = hospital.info
    return {
        "dutyAddr": info["address"],
        "dutyEmcls": info["emergency_class"],
        "dutyEmclsName": info["emergency_class_name"],
        "dutyName": info["name"],
        "dutyTel1": info["main_phone"],
        "dutyTel3": info["er_phone"],
        "hpid": hospital.hpid,
        "wgs84Lat": info["latitude"],
        "wgs84Lon": info["longitude"],
    }


def _basic_row(hospital: Hospital) -> dict[str, object]:
    info = hospital.info
    counts: dict[str, Value] = {
        tag: hospital.values[tag] for tag in _BASIC_COUNT_TAGS if tag in hospital.values
    }
    return {
        "dutyAddr": info["address"],
        "dutyEryn": 1,
        "dutyHayn": 1,
        "dutyName": info["name"],
        "dutyTel1": info["main_phone"],
        "dutyTel3": info["er_phone"],
        "hpid": hospital.hpid,
        "wgs84Lat": info["latitude"],
        "wgs84Lon": info["longitude"],
        **hospital.basic,
        **counts,
    }


def _message_row(hospital: Hospital, message: Message) -> dict[str, object]:
    if message.code == ER_DISEASE_CODE:
        label = "응급실"
    else:
        label = SEVERE_ILLNESS_CATEGORIES[DISEASE_CODE_CATEGORIES[message.code]]
    return {
        "dutyAddr": hospital.info["address"],
        "dutyName": hospital.info["name"],
        "emcOrgCod": hospital.hpid,
        "hpid": hospital.hpid,
        "symBlkMsg": message.text,
        "symBlkMsgTyp": message.kind,
        "symTypCod": message.code,
        "symTypCodMag": label,
        "symBlkSttDtm": format_date(message.start),
        "symBlkEndDtm": format_date(message.end) if message.end else None,
    }


def _garbled(item: dict[str, object], variant: str, rng: random.Random) -> dict[str, object]:
    """``item`` spoiled: without its hpid (``no_hpid``) or with a count that is not a number
    (``bad_count``; falls back to ``no_hpid`` when the item has no count)."""
    counts = sorted(
        tag
        for tag, value in item.items()
        if tag in _FIELDS_BY_TAG and _FIELDS_BY_TAG[tag].kind is Kind.COUNT
    )
    garbled = dict(item)
    if variant == "bad_count" and counts:
        garbled["hvec" if "hvec" in counts else rng.choice(counts)] = "abc"
    else:
        for tag in ("hpid", "phpid", "emcOrgCod"):
            garbled.pop(tag, None)
    return garbled


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------


def _check_walk(interval: float, fraction: float) -> None:
    if not interval >= 0:
        raise ValueError("interval must be >= 0")
    if not 0 <= fraction <= 1:
        raise ValueError("fraction must be between 0 and 1")


def _positive_param(params: Mapping[str, str], name: str, default: int) -> int:
    text = params.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit() or int(text) < 1:
        raise _BadRequest("10", "INVALID REQUEST PARAMETER ERROR.")
    return int(text)


def _region_code(region: str) -> str:
    if region in REGIONS_BY_CODE:
        return region
    found = region_for_sido(region)
    if found is None:
        raise ControlError(f"unknown region {region!r}")
    return found.code


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_str_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _checked_values(values: Mapping[str, object]) -> dict[str, Value]:
    checked: dict[str, Value] = {}
    for tag, value in values.items():
        if tag not in VALUE_TAGS:
            raise ControlError(f"values: unknown tag {tag!r}")
        if not (_is_int(value) or isinstance(value, str)):
            raise ControlError(f"values.{tag}: must be an integer or a string")
        checked[tag] = value  # type: ignore[assignment]
    return checked


def _checked_acceptance(values: Mapping[str, object]) -> dict[str, str | None]:
    checked: dict[str, str | None] = {}
    for tag, value in values.items():
        if not _ACCEPTANCE_TAG.match(tag):
            raise ControlError(f"acceptance: unknown tag {tag!r}")
        if value is not None and not isinstance(value, str):
            raise ControlError(f"acceptance.{tag}: must be a string or null")
        checked[tag] = value
    return checked


def _checked_message(data: object, now: datetime) -> Message:
    if not isinstance(data, dict):
        raise ControlError("messages: each must be an object")
    _only_keys(data, {"type", "message", "code", "start", "end"})
    kind = data.get("type", "응급")
    if kind not in ("응급", "중증"):
        raise ControlError("messages: type must be 응급 or 중증")
    text = data.get("message")
    if not isinstance(text, str) or not text:
        raise ControlError("messages: message must be a non-empty string")
    code = data.get("code", ER_DISEASE_CODE if kind == "응급" else "Y0010")
    if code != ER_DISEASE_CODE and code not in DISEASE_CODE_CATEGORIES:
        raise ControlError(f"messages: unknown code {code!r}")
    try:
        start = parse_date(data["start"]) if data.get("start") is not None else now
        end = parse_date(data["end"]) if data.get("end") is not None else None
    except (TypeError, ValueError) as exc:
        raise ControlError(f"messages: {exc}") from None
    return Message(str(kind), text, str(code), start, end)


def _json_body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ControlError(f"body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ControlError("body must be a JSON object")
    return data


def _only_keys(data: Mapping[str, object], allowed: set[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ControlError(f"unknown keys: {', '.join(unknown)}")


def _typed(data: Mapping[str, Any], key: str, kind: type) -> Any:
    value = data.get(key)
    if value is not None and not isinstance(value, kind):
        raise ControlError(f"{key} must be a {kind.__name__}")
    return value


# --------------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------------

_KEY_IN_TEXT: Final = re.compile(r"((?:service|Service)Key=)[^&\s'\"]*")


class SimulatorServer(ThreadingHTTPServer):
    """A threading HTTP server bound to one ``Simulator``; ``quiet`` silences the request log."""

    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], simulator: Simulator, *, quiet: bool = False
    ) -> None:
        super().__init__(address, SimulatorHandler)
        self.simulator = simulator
        self.quiet = quiet

    @property
    def base_url(self) -> str:
        """``http://host:port`` of the running server."""
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def api_url(self) -> str:
        """The service's base URL, to which ``/<operation>`` is appended."""
        return self.base_url + BASE_PATH.rstrip("/")


class SimulatorHandler(BaseHTTPRequestHandler):
    """Routes ``/B552657/ErmctInfoInqireService/<operation>`` (GET) to ``Simulator.respond`` and
    ``/_control/…`` to ``Simulator.control``; logs one line per request without the key."""

    server: SimulatorServer
    protocol_version = "HTTP/1.1"
    server_version = "WeER-NEMC-Simulator/1.0"
    sys_version = ""

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        length_header = self.headers.get("Content-Length") or "0"
        length = int(length_header) if length_header.isdigit() else 0
        body = self.rfile.read(length) if length > 0 else b""
        simulator = self.server.simulator
        if not length_header.isdigit():
            reply = Reply.text(400, "Bad Request", "bad_request")
            self.close_connection = True
        elif url.path.startswith(CONTROL_PATH):
            reply = simulator.control(method, url.path[len(CONTROL_PATH) :], url.query, body)
        elif url.path.startswith(BASE_PATH):
            if method != "GET":
                reply = Reply.text(405, "Method Not Allowed", "method_not_allowed")
            else:
                params = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
                reply = simulator.respond(url.path[len(BASE_PATH) :].strip("/"), params)
        else:
            reply = Reply.text(404, "Not Found", "not_found")
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (e.g. during a timeout fault)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if isinstance(code, HTTPStatus):
            code = code.value
        self.log_message('"%s" %s', self.requestline, code)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.quiet:
            return
        text = _KEY_IN_TEXT.sub(r"\1***", format % args)
        sys.stderr.write(f"{self.address_string()} [{self.log_date_time_string()}] {text}\n")


def start_simulator(
    port: int = 0, host: str = "127.0.0.1", *, quiet: bool = False, **options: Any
) -> tuple[SimulatorServer, Simulator, threading.Thread]:
    """A simulator serving on ``host:port`` (0: a free port; see ``server.server_address``) in a
    daemon thread, its walk started. ``options`` go to ``Simulator``. Stop it with
    ``stop_simulator``."""
    simulator = Simulator(**options)
    server = SimulatorServer((host, port), simulator, quiet=quiet)
    thread = threading.Thread(target=server.serve_forever, name="sim-http", daemon=True)
    thread.start()
    simulator.start()
    return server, simulator, thread


def stop_simulator(server: SimulatorServer, simulator: Simulator, thread: threading.Thread) -> None:
    """Stop what ``start_simulator`` started."""
    simulator.close()
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@contextlib.contextmanager
def running_simulator(
    port: int = 0, host: str = "127.0.0.1", *, quiet: bool = True, **options: Any
) -> Iterator[tuple[SimulatorServer, Simulator]]:
    """``start_simulator`` as a context manager; stopped on exit."""
    server, simulator, thread = start_simulator(port, host, quiet=quiet, **options)
    try:
        yield server, simulator
    finally:
        stop_simulator(server, simulator, thread)


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: serve until interrupted (Ctrl-C or SIGTERM), then return 0."""
    parser = argparse.ArgumentParser(
        prog="python -m ingestion.simulator",
        description="An HTTP simulator of the NEMC open API (ErmctInfoInqireService).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--walk-interval", type=float, default=5.0, help="seconds; 0 disables")
    parser.add_argument("--change-fraction", type=float, default=0.1)
    parser.add_argument("--service-key", default=DEFAULT_SERVICE_KEY)
    args = parser.parse_args(argv)
    try:
        simulator = Simulator(
            args.seed, args.walk_interval, args.change_fraction, service_key=args.service_key
        )
    except ValueError as exc:
        parser.error(str(exc))
    server = SimulatorServer((args.host, args.port), simulator)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    simulator.start()
    sys.stderr.write(
        f"NEMC simulator: {len(simulator.hospital_list())} hospitals at {server.api_url}/"
        f"<operation>, control at {server.base_url}{CONTROL_PATH} (seed {args.seed})\n"
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.stderr.write("NEMC simulator: stopping\n")
    finally:
        simulator.close()
        server.server_close()
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
