"""WeER's persistent model: who uses the service, the hospitals and their live ER state, the
reservation records that connect crews to ERs, and the outbox of events not yet delivered."""

from .clinical import AgeBand, Consciousness, PatientCondition, Sex
from .hospitals import (
    AnnouncementType,
    EmergencyClass,
    ERAnnouncement,
    ERStatus,
    Hospital,
    RegionFreshness,
    SevereIllnessAcceptance,
)
from .idempotency import IdempotentRequest
from .outbox import OutboxEvent
from .reservations import DeclineReason, Reservation, ReservationEvent, ReservationStatus
from .users import Approval, RefreshToken, Role, User

__all__ = [
    "AgeBand",
    "AnnouncementType",
    "Approval",
    "Consciousness",
    "DeclineReason",
    "ERAnnouncement",
    "ERStatus",
    "EmergencyClass",
    "Hospital",
    "IdempotentRequest",
    "OutboxEvent",
    "PatientCondition",
    "RefreshToken",
    "RegionFreshness",
    "Reservation",
    "ReservationEvent",
    "ReservationStatus",
    "Role",
    "SevereIllnessAcceptance",
    "Sex",
    "User",
]
