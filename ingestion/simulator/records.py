"""The upstream's records: the row each operation answers for a hospital, and one page of rows
as the items of an answer."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import timedelta
from typing import Final

from domain.severe_illness import (
    DISEASE_CODE_CATEGORIES,
    ER_DISEASE_CODE,
    SEVERE_ILLNESS_CATEGORIES,
)
from ingestion.simulator.generation import perturb
from ingestion.simulator.hospitals import Hospital, Message, Value
from ingestion.simulator.protocol import (
    ACCEPTANCE,
    BASIC_INFO,
    BEDS,
    INSTITUTIONS,
    format_date,
)
from ingestion.simulator.rendering import paginate

Row = dict[str, object]

_BASIC_COUNT_TAGS: Final = ("hvec", "hvoc", "hvcc", "hvncc", "hvccc", "hvicc", "hvgc")


def operation_rows(
    operation: str, hospitals: Sequence[Hospital], stale_rng: random.Random | None
) -> list[Row]:
    """Every row of ``operation``'s answer about ``hospitals`` (without rnum), in their order:
    one per hospital, or one per current message for the messages operation. ``stale_rng`` is
    for beds rows only (see ``beds_row``). Reads the hospitals' state: hold the lock."""
    if operation == BEDS:
        return [beds_row(h, stale_rng) for h in hospitals]
    if operation == ACCEPTANCE:
        return [acceptance_row(h) for h in hospitals]
    if operation == INSTITUTIONS:
        return [institution_row(h) for h in hospitals]
    if operation == BASIC_INFO:
        return [basic_row(h) for h in hospitals]
    return [message_row(h, m) for h in hospitals for m in h.messages]


def page_items(rows: Sequence[Row], operation: str, page_no: int, num_of_rows: int) -> list[Row]:
    """Page ``page_no`` of ``rows``, each a copy numbered by ``rnum`` (1-based over all pages) as
    the upstream numbers them, except in basic info, which has no rnum."""
    start = (page_no - 1) * num_of_rows
    items: list[Row] = []
    for offset, row in enumerate(paginate(rows, page_no, num_of_rows)):
        item = dict(row)
        if operation != BASIC_INFO:
            item["rnum"] = start + offset + 1
        items.append(item)
    return items


def beds_row(hospital: Hospital, stale_rng: random.Random | None) -> Row:
    """A getEmrrmRltmUsefulSckbdInfoInqire row; with ``stale_rng``, values moved by a walk
    step and an hvidate one hour older than the current one."""
    values = dict(hospital.values)
    hvidate = hospital.hvidate
    if stale_rng is not None:
        perturb(values, stale_rng, attempts=5)
        hvidate -= timedelta(hours=1)
    return {
        "dutyName": hospital.info["name"],
        "dutyTel3": hospital.info["er_phone"],
        "hpid": hospital.hpid,
        "phpid": hospital.hpid,
        "hvidate": format_date(hvidate),
        **values,
    }


def acceptance_row(hospital: Hospital) -> Row:
    return {"dutyName": hospital.info["name"], "hpid": hospital.hpid, **hospital.acceptance}


def institution_row(hospital: Hospital) -> Row:
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


def basic_row(hospital: Hospital) -> Row:
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


def message_row(hospital: Hospital, message: Message) -> Row:
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
