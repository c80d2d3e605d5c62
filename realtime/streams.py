"""Stream names and who may join them.

``beds.<region code>`` and ``beds.all``: any active user. ``hospital.<hpid>``: staff of that
hospital. ``crew.<user id>``: that ambulance user. ``metrics``: administrators.
"""

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from domain.models import Role
from domain.regions import REGIONS_BY_CODE

if TYPE_CHECKING:
    from realtime.auth import SocketUser

BEDS_ALL = "beds.all"
METRICS = "metrics"
MAX_STREAM_NAME = 64
_NAME = re.compile(r"^(beds|hospital|crew)\.([A-Za-z0-9_-]{1,32})$")


class StreamKind(StrEnum):
    BEDS = "beds"
    HOSPITAL = "hospital"
    CREW = "crew"
    METRICS = "metrics"


@dataclass(frozen=True, slots=True)
class Stream:
    name: str
    kind: StreamKind
    key: str  # region code or "all", hpid, user id; "" for metrics


def stream_parse(name: object) -> Stream | None:
    """The stream ``name`` denotes, or None if it is not a stream this service has."""
    if not isinstance(name, str) or len(name) > MAX_STREAM_NAME:
        return None
    if name == METRICS:
        return Stream(name, StreamKind.METRICS, "")
    match = _NAME.match(name)
    if match is None:
        return None
    kind, key = StreamKind(match.group(1)), match.group(2)
    if kind is StreamKind.BEDS and key != "all" and key not in REGIONS_BY_CODE:
        return None
    if kind is StreamKind.CREW and not key.isdigit():
        return None
    return Stream(name, kind, key)


def stream_allowed(user: "SocketUser", stream: Stream) -> bool:
    """Whether ``user`` (already known to be active) may receive ``stream``."""
    if stream.kind is StreamKind.BEDS:
        return True
    if stream.kind is StreamKind.HOSPITAL:
        return user.role == Role.HOSPITAL and user.hpid == stream.key
    if stream.kind is StreamKind.CREW:
        return user.role == Role.AMBULANCE and str(user.id) == stream.key
    return user.role == Role.ADMIN


def beds_streams(region_code: str) -> tuple[str, str]:
    """The streams a bed change in ``region_code`` is published to."""
    return f"beds.{region_code}", BEDS_ALL


def hospital_stream(hpid: str) -> str:
    return f"hospital.{hpid}"


def crew_stream(user_id: int) -> str:
    return f"crew.{user_id}"
