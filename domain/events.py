"""Who receives which event and what it carries: the streams, the event kinds, the payloads.

Domain services describe what happened as events built here and hand them to
``events_publish_on_commit``, which writes them to the outbox in the services' transaction. Once
it commits, the outbox relay (``domain.services.outbox``) hands them to the one publishing path,
which gives each event its stream's next sequence number and delivers it
(``realtime.publishing``, named by ``settings.EVENTS_PUBLISHER`` so that the domain never imports
the realtime package: realtime depends on the domain, not the other way round).
docs/protocol.md is the contract for all of it; docs/realtime.md says how delivery is made sure.

Streams: ``beds.<region code>`` and ``beds.all`` (any active user), ``hospital.<hpid>`` (staff
of that hospital), ``crew.<user id>`` (that ambulance user), ``metrics`` (administrators) and
``loadtest.<name>`` (any active user; only ``weer-loadtest --drive publish`` publishes there, so
a load test never shows fake bed changes to real tablets).
"""

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, NamedTuple, Protocol

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

from domain.models import OutboxEvent, Role
from domain.regions import REGIONS_BY_CODE

# -- streams -----------------------------------------------------------------------------------

BEDS_ALL = "beds.all"
METRICS = "metrics"
# Changes to accounts that servers must act on (close a revoked user's sockets, forget what they
# cached): followed by every server's hub, received by no client.
ACCOUNTS = "accounts"
MAX_STREAM_NAME = 64
_NAME = re.compile(r"^(beds|hospital|crew|loadtest)\.([A-Za-z0-9_-]{1,32})$")


class StreamKind(StrEnum):
    BEDS = "beds"
    HOSPITAL = "hospital"
    CREW = "crew"
    METRICS = "metrics"
    LOADTEST = "loadtest"
    ACCOUNTS = "accounts"


@dataclass(frozen=True, slots=True)
class Stream:
    name: str
    kind: StreamKind
    key: str  # region code or "all", hpid, user id, load test name; "" for metrics


def stream_parse(name: object) -> Stream | None:
    """The stream ``name`` denotes, or None if it is not a stream this service has."""
    if not isinstance(name, str) or len(name) > MAX_STREAM_NAME:
        return None
    if name == METRICS:
        return Stream(name, StreamKind.METRICS, "")
    if name == ACCOUNTS:
        return Stream(name, StreamKind.ACCOUNTS, "")
    match = _NAME.match(name)
    if match is None:
        return None
    kind, key = StreamKind(match.group(1)), match.group(2)
    if kind is StreamKind.BEDS and key != "all" and key not in REGIONS_BY_CODE:
        return None
    if kind is StreamKind.CREW and not key.isdigit():
        return None
    return Stream(name, kind, key)


class Receiver(Protocol):
    """What access to a stream depends on: the user's id, role and (ER staff) hospital."""

    @property
    def id(self) -> int: ...
    @property
    def role(self) -> str: ...
    @property
    def hpid(self) -> str | None: ...


def stream_allowed(receiver: Receiver, stream: Stream) -> bool:
    """Whether ``receiver`` (already known to be an active user) may receive ``stream``."""
    if stream.kind in (StreamKind.BEDS, StreamKind.LOADTEST):
        return True
    if stream.kind is StreamKind.HOSPITAL:
        return receiver.role == Role.HOSPITAL and receiver.hpid == stream.key
    if stream.kind is StreamKind.CREW:
        return receiver.role == Role.AMBULANCE and str(receiver.id) == stream.key
    if stream.kind is StreamKind.ACCOUNTS:
        return False
    return receiver.role == Role.ADMIN


def beds_streams(region_code: str) -> tuple[str, str]:
    """The streams a change at a hospital in ``region_code`` is published to."""
    return f"beds.{region_code}", BEDS_ALL


def hospital_stream(hpid: str) -> str:
    return f"hospital.{hpid}"


def crew_stream(user_id: int) -> str:
    return f"crew.{user_id}"


def loadtest_stream(name: str) -> str:
    return f"loadtest.{name}"


# -- event kinds -------------------------------------------------------------------------------

BEDS_CHANGED = "beds.changed"
BEDS_STALE = "beds.stale"
ACCEPTANCE_CHANGED = "acceptance.changed"
ANNOUNCEMENTS_CHANGED = "announcements.changed"
METRICS_SNAPSHOT = "metrics.snapshot"
ACCOUNT_CHANGED = "account.changed"
LOADTEST_TICK = "loadtest.tick"


class ReservationAction(StrEnum):
    """What happened to a reservation; its event kind is ``reservation.<action>``."""

    REQUESTED = "requested"
    ACKNOWLEDGED = "acknowledged"
    REMINDER = "reminder"
    DECIDED = "decided"  # approved or rejected: the status says which
    WITHDRAWN = "withdrawn"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    EXPIRED = "expired"
    HOLD_EXPIRED = "hold_expired"

    @property
    def kind(self) -> str:
        return f"reservation.{self.value}"


# -- events ------------------------------------------------------------------------------------


class Event(NamedTuple):
    stream: str
    kind: str
    data: Mapping[str, Any]
    # Set by the outbox relay: the event's identity, so that publishing it again (the relay
    # delivers at least once) is recognised and publishes nothing (OutboxEvent.delivery_id).
    outbox_id: str | None = None


def _on_bed_streams(region_code: str, kind: str, data: Mapping[str, Any]) -> list[Event]:
    return [Event(stream, kind, data) for stream in beds_streams(region_code)]


def beds_changed(
    *,
    hpid: str,
    region_code: str,
    changes: Mapping[str, Mapping[str, object]],
    hvidate: datetime | None,
) -> list[Event]:
    """Some of a hospital's bed values changed (``changes``: field → old and new), as of the
    upstream's ``hvidate``; on its region's stream and ``beds.all``."""
    data = {"hpid": hpid, "changes": changes, "hvidate": hvidate}
    return _on_bed_streams(region_code, BEDS_CHANGED, data)


def beds_stale(
    *, region_code: str, stale: bool, since: datetime | None, hpids: Sequence[str]
) -> list[Event]:
    """A region's data became stale (its polls keep failing) or fresh again."""
    data = {"region": region_code, "stale": stale, "since": since, "hpids": list(hpids)}
    return _on_bed_streams(region_code, BEDS_STALE, data)


def acceptance_changed(
    *, hpid: str, region_code: str, changes: Mapping[str, Mapping[str, object]]
) -> list[Event]:
    """A hospital's severe-illness acceptance flags changed (category → old and new)."""
    return _on_bed_streams(region_code, ACCEPTANCE_CHANGED, {"hpid": hpid, "changes": changes})


def announcements_changed(
    *,
    hpid: str,
    region_code: str,
    added: Sequence[Mapping[str, object]],
    removed: Sequence[str],
) -> list[Event]:
    """A hospital's ER messages changed: new ones in full, ended ones by id."""
    data = {"hpid": hpid, "added": list(added), "removed": list(removed)}
    return _on_bed_streams(region_code, ANNOUNCEMENTS_CHANGED, data)


def reservation_changed(
    *, action: ReservationAction, reservation: Mapping[str, Any]
) -> list[Event]:
    """``reservation`` (its summary: the full current state) to the addressed hospital's and
    the requesting crew's streams, and to nobody else."""
    return [
        Event(hospital_stream(reservation["hpid"]), action.kind, reservation),
        Event(crew_stream(reservation["crew"]["id"]), action.kind, reservation),
    ]


class _PayloadEncoder(DjangoJSONEncoder):
    """Times in UTC ("…Z") whatever zone they were made in (the upstream's are KST), as
    clients receive them (realtime.publishing encodes the same way)."""

    def default(self, o: object) -> Any:
        if isinstance(o, datetime) and o.tzinfo is not None:
            o = o.astimezone(UTC)
        return super().default(o)


def _payload_json(data: Mapping[str, Any]) -> str:
    return json.dumps(data, cls=_PayloadEncoder, ensure_ascii=False, separators=(",", ":"))


class AccountClose(StrEnum):
    """Why a changed account's sockets are closed (the ``error`` code they are sent first)."""

    DISABLED = "account_disabled"  # close 4403: do not reconnect
    REJECTED = "account_rejected"  # close 4403
    REVOKED = "token_revoked"  # close 4401: logged out or new password; log in again


def account_changed(
    *, user_id: int, close: AccountClose | None = None, family: str | None = None
) -> list[Event]:
    """Servers forget what they cached of the account; with ``close``, they close its sockets
    (only those opened with tokens of the login ``family``, if given) and refuse new ones."""
    data = {"user": user_id, "close": close, "family": family}
    return [Event(ACCOUNTS, ACCOUNT_CHANGED, data)]


def events_publish_on_commit(events: Sequence[Event]) -> None:
    """Deliver ``events``, in order, once the current transaction commits (at once outside
    one), so that clients never see rolled-back state, and surely: they are written to the
    outbox in the transaction itself (one INSERT), so they exist exactly when the change does.
    After the commit the relay publishes them; if Redis is unreachable then, the transaction
    stays committed and they go out within ``OUTBOX_RELAY_SECONDS`` of its return (beat).

    Raises ``ValueError`` for a stream this service does not have, and ``TypeError`` for data
    JSON cannot encode, before anything is written (both are programming errors, which must
    not become rows that could never be published)."""
    rows = []
    for event in events:
        if stream_parse(event.stream) is None:
            raise ValueError(f"Not a stream: {event.stream!r}")
        rows.append(
            OutboxEvent(stream=event.stream, kind=event.kind, data=_payload_json(event.data))
        )
    if rows:
        OutboxEvent.objects.bulk_create(rows)
        transaction.on_commit(_relay_committed, robust=True)


def _relay_committed() -> None:
    # Imported here: the relay's module builds on this one (its Event), not the other way round.
    from domain.services.outbox import outbox_relay_after_commit

    outbox_relay_after_commit()
