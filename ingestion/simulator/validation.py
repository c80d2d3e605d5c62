"""Checks of control input: ``ControlError`` and the checks that raise it (values, tags, messages,
regions and the walk's settings), shared by the control API and ``Simulator``'s methods."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Final, TypeGuard

from domain.regions import REGIONS_BY_CODE, region_for_sido
from domain.severe_illness import DISEASE_CODE_CATEGORIES, ER_DISEASE_CODE
from ingestion.simulator.hospitals import VALUE_TAGS, Message, Value
from ingestion.simulator.protocol import parse_date

_ACCEPTANCE_TAG: Final = re.compile(r"^MKioskTy([1-9]|1[0-9]|2[0-8])(Msg)?$")


class ControlError(Exception):
    """Bad control input; becomes a JSON error with ``status``."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def check_walk(interval: float, fraction: float) -> None:
    """ValueError unless ``interval`` is >= 0 and ``fraction`` between 0 and 1."""
    if not interval >= 0:
        raise ValueError("interval must be >= 0")
    if not 0 <= fraction <= 1:
        raise ValueError("fraction must be between 0 and 1")


def region_code(region: str) -> str:
    """The code of ``region``, given as a code or a 시도 name; ControlError if it is neither."""
    if region in REGIONS_BY_CODE:
        return region
    found = region_for_sido(region)
    if found is None:
        raise ControlError(f"unknown region {region!r}")
    return found.code


def is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def is_str_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def only_keys(data: Mapping[str, object], allowed: set[str]) -> None:
    """ControlError naming every key of ``data`` outside ``allowed``, if any."""
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ControlError(f"unknown keys: {', '.join(unknown)}")


def checked_values(values: Mapping[str, object]) -> dict[str, Value]:
    """``values`` if each is an integer or a string for a known value tag; else ControlError."""
    checked: dict[str, Value] = {}
    for tag, value in values.items():
        if tag not in VALUE_TAGS:
            raise ControlError(f"values: unknown tag {tag!r}")
        if not (is_int(value) or isinstance(value, str)):
            raise ControlError(f"values.{tag}: must be an integer or a string")
        checked[tag] = value
    return checked


def checked_acceptance(values: Mapping[str, object]) -> dict[str, str | None]:
    """``values`` if each is a string or None for a ``MKioskTy<n>[Msg]`` tag; else ControlError."""
    checked: dict[str, str | None] = {}
    for tag, value in values.items():
        if not _ACCEPTANCE_TAG.match(tag):
            raise ControlError(f"acceptance: unknown tag {tag!r}")
        if value is not None and not isinstance(value, str):
            raise ControlError(f"acceptance.{tag}: must be a string or null")
        checked[tag] = value
    return checked


def checked_message(data: object, now: datetime) -> Message:
    """A message from its control JSON (type 응급 by default, starting ``now`` by default);
    ControlError if any of it is bad."""
    if not isinstance(data, dict):
        raise ControlError("messages: each must be an object")
    only_keys(data, {"type", "message", "code", "start", "end"})
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
