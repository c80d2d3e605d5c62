"""Django admin for operators: browse everything; edit accounts and hospitals."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.http import HttpRequest

from domain.models import (
    ERAnnouncement,
    ERStatus,
    Hospital,
    IdempotentRequest,
    PatientCondition,
    Reservation,
    SevereIllnessAcceptance,
    User,
)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "role", "approval", "hospital", "agency", "date_joined")
    list_filter = ("role", "approval")
    fieldsets = (
        *DjangoUserAdmin.fieldsets,
        ("WeER", {"fields": ("role", "approval", "hospital", "agency", "crew_name", "phone")}),
    )
    raw_id_fields = ("hospital",)


@admin.register(Hospital)
class HospitalAdmin(admin.ModelAdmin):
    list_display = ("hpid", "name", "region_code", "sigungu", "emergency_class")
    list_filter = ("region_code", "emergency_class")
    search_fields = ("hpid", "name", "address")


@admin.register(ERStatus)
class ERStatusAdmin(admin.ModelAdmin):
    list_display = ("hospital", "er_general", "er_general_capacity", "hvidate", "ingested_at")
    raw_id_fields = ("hospital",)


@admin.register(Reservation)
class ReservationAdmin(admin.ModelAdmin):
    list_display = ("id", "crew", "hospital", "status", "created_at")
    list_filter = ("status",)
    raw_id_fields = ("crew", "hospital", "condition", "decided_by")


@admin.register(IdempotentRequest)
class IdempotentRequestAdmin(admin.ModelAdmin):
    """Read-only: a remembered answer is evidence of what a client was told."""

    list_display = ("user", "key", "operation", "status_code", "created_at")
    list_filter = ("operation", "status_code")
    search_fields = ("key", "user__username")
    raw_id_fields = ("user",)

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


admin.site.register([PatientCondition, SevereIllnessAcceptance, ERAnnouncement])
