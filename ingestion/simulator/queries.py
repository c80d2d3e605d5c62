"""An API call's query: its parameters checked as the upstream checks them, and the hospitals it
is about."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from domain.regions import Region, region_for_sido
from ingestion.simulator.hospitals import Hospital
from ingestion.simulator.protocol import ACCEPTANCE, BASIC_INFO, BEDS, MESSAGES


class BadRequest(Exception):
    """An API call the upstream would answer with an error resultCode (10 or 11)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Query:
    operation: str
    page_no: int
    num_of_rows: int
    region: Region | None = None
    sigungu: str | None = None
    hpid: str | None = None
    name: str | None = None
    unknown_region: bool = False


def parse_query(operation: str, params: Mapping[str, str]) -> Query:
    """The query of one call of ``operation`` (one of ``OPERATIONS``) with the decoded ``params``:
    paging for all; ``STAGE1`` (required) and ``STAGE2`` for beds and acceptance; ``HPID``
    (required) for basic info; ``Q0``, ``Q1``, ``QN`` (and ``HPID`` for messages) for the list
    and messages. BadRequest with code 10 for a bad page number or size, 11 for a missing
    required parameter. An unknown 시도 is no error: the answer is empty."""
    query = Query(
        operation,
        page_no=_positive_param(params, "pageNo", 1),
        num_of_rows=_positive_param(params, "numOfRows", 10),
    )
    if operation in (BEDS, ACCEPTANCE):
        stage1 = params.get("STAGE1", "").strip()
        if not stage1:
            raise BadRequest("11", "NO MANDATORY REQUEST PARAMETERS ERROR.")
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
            raise BadRequest("11", "NO MANDATORY REQUEST PARAMETERS ERROR.")
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


def selected(hospitals: Mapping[str, Hospital], query: Query) -> list[Hospital]:
    """The ``hospitals`` (by hpid, in the simulator's fixed order) that ``query`` is about."""
    if query.hpid is not None:
        hospital = hospitals.get(query.hpid)
        return [hospital] if hospital else []
    if query.unknown_region:
        return []
    return [
        h
        for h in hospitals.values()
        if (query.region is None or h.region_code == query.region.code)
        and (query.sigungu is None or h.info["sigungu"] == query.sigungu)
        and (query.name is None or query.name in str(h.info["name"]))
    ]


def _positive_param(params: Mapping[str, str], name: str, default: int) -> int:
    text = params.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit() or int(text) < 1:
        raise BadRequest("10", "INVALID REQUEST PARAMETER ERROR.")
    return int(text)
