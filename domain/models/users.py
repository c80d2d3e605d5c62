from typing import Any, ClassVar

from django.contrib.auth.models import AbstractUser
from django.contrib.auth.models import UserManager as DjangoUserManager
from django.db import models
from django.db.models import Q


class Role(models.TextChoices):
    AMBULANCE = "ambulance", "Ambulance crew"
    HOSPITAL = "hospital", "Hospital ER staff"
    ADMIN = "admin", "Administrator"


class Approval(models.TextChoices):
    PENDING = "pending", "Pending approval"
    ACTIVE = "active", "Active"
    REJECTED = "rejected", "Rejected"


class UserManager(DjangoUserManager["User"]):
    def create_superuser(
        self, username: str, email: str | None = None, password: str | None = None, **extra: Any
    ) -> "User":
        extra.setdefault("role", Role.ADMIN)
        extra.setdefault("approval", Approval.ACTIVE)
        return super().create_superuser(username, email, password, **extra)


class User(AbstractUser):
    """A person using WeER. Only ``approval == active`` users receive tokens."""

    role = models.CharField(max_length=16, choices=Role.choices)
    approval = models.CharField(max_length=16, choices=Approval.choices, default=Approval.PENDING)
    approval_decided_at = models.DateTimeField(null=True, blank=True)
    approval_decided_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    rejection_reason = models.CharField(max_length=300, blank=True)
    hospital = models.ForeignKey(
        "domain.Hospital",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="staff",
        help_text="The hospital a hospital user works for.",
    )
    agency = models.CharField(max_length=100, blank=True, help_text="Fire station / EMS agency.")
    crew_name = models.CharField(max_length=100, blank=True, help_text="Ambulance unit name.")
    phone = models.CharField(max_length=20, blank=True)
    # Tokens carry the generation they were issued in; a password change starts a new one, so
    # every token issued before it stops working (and sockets opened with them close).
    token_generation = models.PositiveIntegerField(default=0)

    objects: ClassVar[UserManager] = UserManager()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(role__in=Role.values), name="user_role_valid"),
            models.CheckConstraint(
                condition=Q(approval__in=Approval.values), name="user_approval_valid"
            ),
            models.CheckConstraint(
                condition=Q(role=Role.HOSPITAL, hospital__isnull=False)
                | (~Q(role=Role.HOSPITAL) & Q(hospital__isnull=True)),
                name="user_hospital_iff_hospital_role",
            ),
        ]

    @property
    def may_sign_in(self) -> bool:
        return self.is_active and self.approval == Approval.ACTIVE


class RefreshToken(models.Model):
    """One issued refresh token. Each is single-use: refreshing marks it used and issues the next
    one in the same family; presenting a used one again revokes the whole family (theft)."""

    jti = models.CharField(max_length=32, primary_key=True)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="refresh_tokens")
    family = models.CharField(max_length=32, db_index=True)
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Refresh token {self.jti} of user {self.user_id}"
