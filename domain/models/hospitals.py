from typing import Any

from django.db import models
from django.db.models import Q

from domain.bed_fields import STATUS_VALUE_KINDS, Kind
from domain.regions import REGION_CODE_CHOICES
from domain.severe_illness import SEVERE_ILLNESS_CATEGORIES


class EmergencyClass(models.TextChoices):
    REGIONAL_CENTER = "G001", "권역응급의료센터"
    LOCAL_CENTER = "G006", "지역응급의료센터"
    LOCAL_INSTITUTION = "G007", "지역응급의료기관"
    OTHER = "G099", "응급의료기관 이외"


class Hospital(models.Model):
    """An emergency medical institution as the upstream lists it, keyed by its ``hpid``."""

    hpid = models.CharField(max_length=10, unique=True)
    name = models.CharField(max_length=200)
    address = models.CharField(max_length=300, blank=True)
    sido = models.CharField(max_length=20, help_text="시도 as written upstream.")
    sigungu = models.CharField(max_length=30, blank=True)
    region_code = models.CharField(max_length=2, choices=REGION_CODE_CHOICES, db_index=True)
    main_phone = models.CharField(max_length=20, blank=True)
    er_phone = models.CharField(max_length=20, blank=True)
    latitude = models.FloatField(null=True, blank=True)
    longitude = models.FloatField(null=True, blank=True)
    emergency_class = models.CharField(max_length=4, choices=EmergencyClass.choices, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["hpid"]
        indexes = [models.Index(fields=["latitude", "longitude"])]
        constraints = [
            models.CheckConstraint(
                condition=(Q(latitude__isnull=True) & Q(longitude__isnull=True))
                | (
                    Q(latitude__isnull=False, latitude__gte=-90, latitude__lte=90)
                    & Q(longitude__isnull=False, longitude__gte=-180, longitude__lte=180)
                ),
                name="hospital_coordinates_both_or_none_in_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.hpid})"


def _status_value_field(kind: Kind) -> "models.Field[Any, Any]":
    if kind is Kind.FLAG:
        return models.BooleanField(null=True, blank=True)
    if kind is Kind.MIXED:
        return models.JSONField(null=True, blank=True)
    return models.IntegerField(null=True, blank=True)


class ERStatus(models.Model):
    """The current ER status of one hospital: one nullable column per ``bed_fields`` value.

    ``None`` is unknown (absent upstream), never zero; counts may be negative (over capacity).
    """

    hospital = models.OneToOneField(
        Hospital, primary_key=True, on_delete=models.CASCADE, related_name="er_status"
    )
    hvidate = models.DateTimeField(null=True, blank=True, help_text="Upstream last input time.")
    ingested_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "ER status"
        verbose_name_plural = "ER statuses"

    def __str__(self) -> str:
        return f"ER status of {self.hospital_id}"

    def values(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in STATUS_VALUE_KINDS}


for _name, _kind in STATUS_VALUE_KINDS.items():
    ERStatus.add_to_class(_name, _status_value_field(_kind))


class SevereIllnessAcceptance(models.Model):
    """Whether a hospital currently accepts one severe-illness category (``MKioskTyN``)."""

    hospital = models.ForeignKey(Hospital, on_delete=models.CASCADE, related_name="acceptances")
    category = models.PositiveSmallIntegerField(choices=list(SEVERE_ILLNESS_CATEGORIES.items()))
    accepts = models.BooleanField(null=True, blank=True, help_text="None: not reported.")
    age_limit = models.CharField(max_length=50, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["hospital", "category"], name="acceptance_one_per_category"
            ),
            models.CheckConstraint(
                condition=Q(category__gte=1, category__lte=28), name="acceptance_category_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.hospital_id} category {self.category}: {self.accepts}"


class AnnouncementType(models.TextChoices):
    ER = "er", "응급"
    SEVERE = "severe", "중증"


class ERAnnouncement(models.Model):
    """An ER or severe-illness message a hospital publishes (``symBlkMsg``)."""

    hospital = models.ForeignKey(Hospital, on_delete=models.CASCADE, related_name="announcements")
    fingerprint = models.CharField(
        max_length=64, unique=True, help_text="Identity across polls (hash of its upstream key)."
    )
    message_type = models.CharField(max_length=8, choices=AnnouncementType.choices)
    disease_code = models.CharField(max_length=10, blank=True, help_text="symTypCod")
    disease_name = models.CharField(max_length=100, blank=True, help_text="symTypCodMag")
    message = models.TextField()
    display_flag = models.CharField(max_length=10, blank=True, help_text="symOutDspYon")
    display_method = models.CharField(max_length=10, blank=True, help_text="symOutDspMth")
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    first_seen_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(message_type__in=AnnouncementType.values),
                name="announcement_type_valid",
            ),
            models.CheckConstraint(
                condition=Q(ends_at__isnull=True)
                | Q(starts_at__isnull=True)
                | Q(ends_at__gte=models.F("starts_at")),
                name="announcement_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.hospital_id} [{self.message_type}] {self.message[:40]}"


class RegionFreshness(models.Model):
    """How current a region's bed data is: the outcome of its latest upstream polls."""

    region_code = models.CharField(max_length=2, choices=REGION_CODE_CHOICES, unique=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=200, blank=True)
    stale_since = models.DateTimeField(
        null=True, blank=True, help_text="Set while polls have failed for too long."
    )

    def __str__(self) -> str:
        return f"{self.region_code}: last success {self.last_success_at}"
