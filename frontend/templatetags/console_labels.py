"""The console's words for stored values (statuses, actions, roles, reasons), Korean first."""

from django import template
from django.utils.translation import gettext_lazy as _

register = template.Library()

_LABELS = {
    "status": {
        "pending": _("대기"),
        "approved": _("수락"),
        "rejected": _("거절"),
        "cancelled": _("취소"),
        "expired": _("만료"),
        "completed": _("도착 완료"),
        "withdrawn": _("철회 (다른 병원 수락)"),
    },
    "action": {
        "requested": _("요청"),
        "acknowledged": _("확인"),
        "reminded": _("재알림"),
        "approved": _("수락"),
        "rejected": _("거절"),
        "withdrawn": _("철회"),
        "cancelled": _("취소"),
        "completed": _("도착 완료"),
        "expired": _("만료"),
        "hold_expired": _("병상 보류 만료"),
    },
    "role": {
        "ambulance": _("구급대"),
        "hospital": _("응급실"),
        "admin": _("관리자"),
        "system": _("시스템"),
    },
    "reason": {
        "no_bed": _("병상 없음"),
        "no_specialist": _("전문의 부재"),
        "equipment_unavailable": _("장비 사용 불가"),
        "overcrowded": _("과밀"),
        "other": _("기타"),
    },
}


@register.filter
def label(value: str, kind: str) -> str:
    """``{{ event.to_status|label:"status" }}``: the word for a stored value, or the value."""
    if not value:
        return ""
    return str(_LABELS[kind].get(value, value))


@register.simple_tag
def status_choices() -> list[tuple[str, str]]:
    return [(value, str(text)) for value, text in _LABELS["status"].items()]
