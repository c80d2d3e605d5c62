from typing import Any

from django.db import models
from django.db.models import Q


class ReservationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"
    EXPIRED = "expired", "Expired"
    COMPLETED = "completed", "Completed"
    WITHDRAWN = "withdrawn", "Withdrawn (another hospital approved)"


class DeclineReason(models.TextChoices):
    NO_BED = "no_bed", "No bed"
    NO_SPECIALIST = "no_specialist", "No specialist"
    EQUIPMENT_UNAVAILABLE = "equipment_unavailable", "Equipment unavailable"
    OVERCROWDED = "overcrowded", "Overcrowded"
    OTHER = "other", "Other"


_DECIDED = [ReservationStatus.APPROVED, ReservationStatus.REJECTED, ReservationStatus.COMPLETED]


class Reservation(models.Model):
    """A crew's request that one hospital take one patient. A multi-hospital request is several
    reservations sharing one ``condition``; each hospital decides its own."""

    crew = models.ForeignKey("domain.User", on_delete=models.PROTECT, related_name="reservations")
    hospital = models.ForeignKey(
        "domain.Hospital", on_delete=models.PROTECT, related_name="reservations"
    )
    condition = models.ForeignKey(
        "domain.PatientCondition", on_delete=models.PROTECT, related_name="reservations"
    )
    status = models.CharField(
        max_length=16, choices=ReservationStatus.choices, default=ReservationStatus.PENDING
    )
    decline_reason = models.CharField(max_length=32, choices=DeclineReason.choices, blank=True)
    decline_note = models.CharField(max_length=500, blank=True)
    decided_by = models.ForeignKey(
        "domain.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(
        null=True, blank=True, help_text="When it was cancelled, expired, withdrawn or completed."
    )
    reminded_at = models.DateTimeField(
        null=True, blank=True, help_text="When the ER was re-alerted for lack of acknowledgement."
    )
    hold_expires_at = models.DateTimeField(
        null=True, blank=True, help_text="An approved reservation holds a bed until then."
    )
    hold_released_at = models.DateTimeField(null=True, blank=True)
    distance_km = models.FloatField(
        null=True, blank=True, help_text="Crew to hospital, as the crow flies."
    )
    eta_minutes = models.PositiveSmallIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["hospital", "status"]),
            models.Index(fields=["status"]),
            # A hospital's newest request, read every second for ER-screen presence.
            models.Index(fields=["hospital", "created_at"]),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["condition", "hospital"], name="reservation_one_per_hospital_per_patient"
            ),
            models.CheckConstraint(
                condition=Q(status__in=ReservationStatus.values), name="reservation_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(decline_reason="") | Q(decline_reason__in=DeclineReason.values),
                name="reservation_decline_reason_valid",
            ),
            models.CheckConstraint(
                condition=(Q(status=ReservationStatus.REJECTED) & ~Q(decline_reason=""))
                | (~Q(status=ReservationStatus.REJECTED) & Q(decline_reason="")),
                name="reservation_reason_iff_rejected",
            ),
            models.CheckConstraint(
                condition=~Q(decline_reason=DeclineReason.OTHER) | ~Q(decline_note=""),
                name="reservation_other_reason_has_note",
            ),
            models.CheckConstraint(
                condition=(
                    Q(status__in=_DECIDED)
                    & Q(decided_at__isnull=False)
                    & Q(decided_by__isnull=False)
                )
                | Q(status=ReservationStatus.PENDING, decided_at__isnull=True)
                | Q(
                    status__in=[
                        ReservationStatus.CANCELLED,
                        ReservationStatus.EXPIRED,
                        ReservationStatus.WITHDRAWN,
                    ]
                ),
                name="reservation_decision_recorded_when_decided",
            ),
            models.CheckConstraint(
                condition=Q(status=ReservationStatus.PENDING, closed_at__isnull=True)
                | ~Q(status=ReservationStatus.PENDING),
                name="reservation_pending_not_closed",
            ),
        ]

    def __str__(self) -> str:
        return f"Reservation {self.pk} → {self.hospital_id} ({self.status})"


class ReservationEvent(models.Model):
    """One transition of a reservation: the immutable audit trail. Rows are only ever added."""

    reservation = models.ForeignKey(Reservation, on_delete=models.PROTECT, related_name="history")
    action = models.CharField(max_length=16)
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16)
    actor = models.ForeignKey(
        "domain.User",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="None: the system (expiry, reminder).",
    )
    actor_role = models.CharField(max_length=16)
    reason = models.CharField(max_length=32, blank=True)
    note = models.CharField(max_length=500, blank=True)
    at = models.DateTimeField()

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.reservation_id}: {self.from_status} → {self.to_status} ({self.action})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise PermissionError("Reservation history is append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise PermissionError("Reservation history is append-only.")
