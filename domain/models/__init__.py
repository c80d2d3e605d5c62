"""WeER's persistent model: who uses the service, the hospitals and their live ER state, and
the reservation records that connect crews to ERs."""

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
