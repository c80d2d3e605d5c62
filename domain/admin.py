"""Django admin for operators: browse everything; edit accounts and hospitals."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from domain.models import (
    ERAnnouncement,
    ERStatus,
    Hospital,
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


admin.site.register([PatientCondition, SevereIllnessAcceptance, ERAnnouncement])
