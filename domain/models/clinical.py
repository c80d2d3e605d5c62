from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q

from domain.severe_illness import SUSPECTED_CATEGORY_CHOICES

# Physiologically possible ranges (cardiac arrest included). Values outside are typing errors.
CLINICAL_RANGES: dict[str, tuple[int | Decimal, int | Decimal]] = {
    "systolic_bp": (0, 300),
    "diastolic_bp": (0, 200),
    "pulse": (0, 300),
    "temperature": (Decimal("25.0"), Decimal("45.0")),
    "respiratory_rate": (0, 80),
    "spo2": (0, 100),
    # Pre-KTAS, the Korean prehospital triage scale 119 crews record: 1 (resuscitation) to 5
    # (non-urgent).
    "pre_ktas": (1, 5),
}


def _range_validators(name: str) -> list[MinValueValidator | MaxValueValidator]:
    low, high = CLINICAL_RANGES[name]
    return [MinValueValidator(low), MaxValueValidator(high)]


def _range_constraint(name: str) -> models.CheckConstraint:
    low, high = CLINICAL_RANGES[name]
    return models.CheckConstraint(
        condition=Q(**{f"{name}__isnull": True}) | Q(**{f"{name}__gte": low, f"{name}__lte": high}),
        name=f"condition_{name}_in_range",
    )


class Sex(models.TextChoices):
    MALE = "male", "Male"
    FEMALE = "female", "Female"
    UNKNOWN = "unknown", "Unknown"


class AgeBand(models.TextChoices):
    UNDER_1 = "under_1", "< 1 year"
    Y1_9 = "1_9", "1–9"
    Y10_19 = "10_19", "10–19"
    Y20_29 = "20_29", "20–29"
    Y30_39 = "30_39", "30–39"
    Y40_49 = "40_49", "40–49"
    Y50_59 = "50_59", "50–59"
    Y60_69 = "60_69", "60–69"
    Y70_79 = "70_79", "70–79"
    Y80_89 = "80_89", "80–89"
    Y90_PLUS = "90_plus", "90+"
    UNKNOWN = "unknown", "Unknown"


class Consciousness(models.TextChoices):
    """AVPU scale."""

    ALERT = "alert", "Alert"
    VERBAL = "verbal", "Responds to voice"
    PAIN = "pain", "Responds to pain"
    UNRESPONSIVE = "unresponsive", "Unresponsive"


class PatientCondition(models.Model):
    """A crew's pre-notification of a patient: no names or identifiers, only clinical facts.

    Vital signs are optional (not every crew can measure every one) but must lie in
    ``CLINICAL_RANGES`` when given; the database enforces the same ranges.
    """

    recorded_by = models.ForeignKey(
        "domain.User", on_delete=models.PROTECT, related_name="patient_conditions"
    )
    sex = models.CharField(max_length=8, choices=Sex.choices)
    age_band = models.CharField(max_length=8, choices=AgeBand.choices)
    systolic_bp = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=_range_validators("systolic_bp")
    )
    diastolic_bp = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=_range_validators("diastolic_bp")
    )
    pulse = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=_range_validators("pulse")
    )
    temperature = models.DecimalField(
        max_digits=3,
        decimal_places=1,
        null=True,
        blank=True,
        validators=_range_validators("temperature"),
        help_text="°C",
    )
    respiratory_rate = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=_range_validators("respiratory_rate")
    )
    spo2 = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=_range_validators("spo2"), help_text="%"
    )
    consciousness = models.CharField(max_length=16, choices=Consciousness.choices)
    pre_ktas = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=_range_validators("pre_ktas"),
        help_text="Pre-KTAS level: 1 resuscitation … 5 non-urgent.",
    )
    chief_complaint = models.CharField(max_length=200)
    suspected_category = models.PositiveSmallIntegerField(
        null=True, blank=True, choices=SUSPECTED_CATEGORY_CHOICES
    )
    note = models.TextField(max_length=1000, blank=True, help_text="No names or identifiers.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            *(_range_constraint(name) for name in CLINICAL_RANGES),
            models.CheckConstraint(
                condition=Q(systolic_bp__isnull=True)
                | Q(diastolic_bp__isnull=True)
                | Q(diastolic_bp__lte=F("systolic_bp")),
                name="condition_diastolic_not_above_systolic",
            ),
            models.CheckConstraint(condition=Q(sex__in=Sex.values), name="condition_sex_valid"),
            models.CheckConstraint(
                condition=Q(age_band__in=AgeBand.values), name="condition_age_band_valid"
            ),
            models.CheckConstraint(
                condition=Q(consciousness__in=Consciousness.values),
                name="condition_consciousness_valid",
            ),
            models.CheckConstraint(
                condition=Q(suspected_category__isnull=True)
                | Q(suspected_category__gte=1, suspected_category__lte=27),
                name="condition_suspected_category_valid",
            ),
            models.CheckConstraint(
                condition=~Q(chief_complaint=""), name="condition_chief_complaint_required"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_sex_display()} {self.get_age_band_display()}: {self.chief_complaint}"
