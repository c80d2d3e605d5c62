"""ER-screen presence: which hospitals have a screen watching their requests, and which need one
and have none (an alarm: a request sent there now would go unseen). Pure decisions; the figures
come from ``domain.selectors.presence`` (the database) and the server processes' counts
(``realtime.presence``).

An ER screen is a hospital user's socket subscribed to its own ``hospital.<hpid>`` stream.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from domain.events import Receiver, Stream, StreamKind, stream_allowed


@dataclass(frozen=True, slots=True)
class HospitalDemand:
    """A hospital with its reservation figures: what it asks of an ER screen."""

    hpid: str
    name: str
    region_code: str
    pending: int  # reservations waiting for its decision
    last_request_at: datetime | None  # its newest reservation's creation; None: never had one


def er_screen_hpid(receiver: Receiver, stream: Stream) -> str | None:
    """The hpid whose ER screen ``receiver``'s subscription to ``stream`` is, or None when it
    is not one (another stream, or one the receiver may not receive)."""
    if stream.kind is StreamKind.HOSPITAL and stream_allowed(receiver, stream):
        return stream.key
    return None


def er_screen_needed(
    *, pending: int, last_request_at: datetime | None, now: datetime, recent: timedelta
) -> bool:
    """Whether a hospital needs an ER screen: it has requests waiting, or received one within
    ``recent`` of ``now`` (more are likely to follow)."""
    return pending > 0 or (last_request_at is not None and now - last_request_at <= recent)


def er_screen_alarm(
    *,
    screens: int,
    pending: int,
    last_request_at: datetime | None,
    now: datetime,
    recent: timedelta,
) -> bool:
    """Whether to raise the alarm for a hospital: it needs an ER screen (``er_screen_needed``)
    and none is connected."""
    return screens <= 0 and er_screen_needed(
        pending=pending, last_request_at=last_request_at, now=now, recent=recent
    )


def presence_report(
    *,
    hospitals: Sequence[HospitalDemand],
    screens: Mapping[str, int],
    last_screen_at: Mapping[str, int],
    now: datetime,
    recent: timedelta,
) -> dict[str, Any]:
    """The ``presence`` section of ``metrics.snapshot`` (docs/protocol.md §5).

    ``hospitals``: at least every hospital with a screen or needing one (others are left
    out); ``screens``: connected ER screens by hpid; ``last_screen_at``: when a screen of each
    hpid was last seen, unix ms. Times in the result are unix ms; a hospital with screens was
    seen ``now``. Alarms first, then by name."""
    now_ms = unix_ms(now)
    rows: list[dict[str, Any]] = []
    for hospital in hospitals:
        count = screens.get(hospital.hpid, 0)
        needed = er_screen_needed(
            pending=hospital.pending,
            last_request_at=hospital.last_request_at,
            now=now,
            recent=recent,
        )
        if count <= 0 and not needed:
            continue
        rows.append(
            {
                "hpid": hospital.hpid,
                "name": hospital.name,
                "region_code": hospital.region_code,
                "screens": count,
                "last_screen_at": now_ms if count > 0 else last_screen_at.get(hospital.hpid),
                "pending": hospital.pending,
                "last_request_at": None
                if hospital.last_request_at is None
                else unix_ms(hospital.last_request_at),
                "alarm": er_screen_alarm(
                    screens=count,
                    pending=hospital.pending,
                    last_request_at=hospital.last_request_at,
                    now=now,
                    recent=recent,
                ),
            }
        )
    rows.sort(key=lambda row: (not row["alarm"], row["name"], row["hpid"]))
    return {
        "hospitals": rows,
        "alarms": sum(1 for row in rows if row["alarm"]),
        "with_screen": sum(1 for row in rows if row["screens"] > 0),
    }


def unix_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
