from django.db import models
from django.db.models import Q


class ReservationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"
    EXPIRED = "expired", "Expired"
    COMPLETED = "completed", "Completed"


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
        null=True, blank=True, help_text="When it was cancelled, expired or completed."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["hospital", "status"]), models.Index(fields=["status"])]
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
                | Q(status__in=[ReservationStatus.CANCELLED, ReservationStatus.EXPIRED]),
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
