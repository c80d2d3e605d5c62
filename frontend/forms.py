"""The log-in and sign-up forms of the pages: input checks with messages in the page's language
(Korean first); the rules themselves stay in the domain services the views call."""

import re
from typing import Any

from django import forms
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from domain.errors import NotFound, ValidationFailed
from domain.models import Hospital, ReservationStatus, Role, User
from domain.selectors.hospitals import hospital_get, hospital_search
from frontend.templatetags.console_labels import label

# "서울대학교병원 (A1100017)": what the hospital field's suggestions hold.
_TRAILING_HPID = re.compile(r"\(\s*([A-Za-z0-9]{5,10})\s*\)\s*$")
_LOOKS_LIKE_HPID = re.compile(r"[A-Za-z]\d{7}")
MAX_CHOICES = 10


class LoginForm(forms.Form):
    username = forms.CharField(label=_("아이디"), max_length=150)
    password = forms.CharField(label=_("비밀번호"), max_length=128, strip=False)
    next = forms.CharField(required=False, max_length=300, widget=forms.HiddenInput)


class SignUpForm(forms.Form):
    """A crew's or a hospital staff member's request for an account. Hospital staff name their
    hospital by hpid or by name; a name that matches several hospitals offers them as
    ``hospital_choices`` to pick from."""

    role = forms.ChoiceField(
        label=_("소속"),
        choices=[(Role.AMBULANCE, _("구급대 (119 구급대원)")), (Role.HOSPITAL, _("병원 응급실"))],
        widget=forms.RadioSelect,
    )
    username = forms.CharField(
        label=_("아이디"),
        min_length=3,
        max_length=150,
        help_text=_("3–150자: 영문, 숫자, @ . + - _"),
    )
    password = forms.CharField(
        label=_("비밀번호"),
        min_length=8,
        max_length=128,
        strip=False,
        help_text=_("8자 이상, 흔한 비밀번호나 숫자만으로 된 비밀번호는 안 됩니다."),
    )
    password_again = forms.CharField(label=_("비밀번호 확인"), max_length=128, strip=False)
    hospital = forms.CharField(
        label=_("병원 (이름 또는 기관코드)"),
        required=False,
        max_length=200,
        help_text=_("병원 응급실 직원만: 예) 서울대학교병원 또는 A1100017"),
    )
    agency = forms.CharField(label=_("소속 기관 (소방서 등)"), required=False, max_length=100)
    crew_name = forms.CharField(label=_("구급대 이름"), required=False, max_length=100)
    phone = forms.CharField(label=_("연락처"), required=False, max_length=20)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hospital_choices: list[Hospital] = []
        self.chosen_hospital: Hospital | None = None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        password, again = cleaned.get("password"), cleaned.get("password_again")
        if password and again is not None and password != again:
            self.add_error("password_again", _("비밀번호가 서로 다릅니다."))
        if password and cleaned.get("username"):
            candidate = User(username=cleaned["username"], role=cleaned.get("role", ""))
            try:
                validate_password(password, user=candidate)
            except ValidationError as exc:
                self.add_error("password", exc)
        if cleaned.get("role") == Role.HOSPITAL:
            self.chosen_hospital = self._hospital(cleaned.get("hospital", ""))
        return cleaned

    def _hospital(self, text: str) -> Hospital | None:
        """The one hospital ``text`` names (an hpid, "name (hpid)" or a name), or None with the
        problem added to the field."""
        text = text.strip()
        if not text:
            self.add_error("hospital", _("병원 응급실 직원은 병원을 입력해야 합니다."))
            return None
        hpid_match = _TRAILING_HPID.search(text)
        hpid = hpid_match.group(1) if hpid_match else text
        if hpid_match or _LOOKS_LIKE_HPID.fullmatch(text):
            try:
                return hospital_get(hpid=hpid.upper())
            except NotFound:
                self.add_error("hospital", _("이 기관코드의 병원이 없습니다."))
                return None
        try:
            hits = [hit.hospital for hit in hospital_search(q=text)]
        except ValidationFailed:
            hits = []
        exact = [h for h in hits if h.name == text]
        if len(exact) == 1 or len(hits) == 1:
            return (exact or hits)[0]
        if not hits:
            self.add_error("hospital", _("이 이름의 병원이 없습니다."))
        else:
            self.hospital_choices = hits[:MAX_CHOICES]
            self.add_error(
                "hospital",
                _("여러 병원이 일치합니다. 아래에서 고르거나 기관코드를 입력하세요."),
            )
        return None


class UserFilterForm(forms.Form):
    """The console's account list: by role, by state, by a name."""

    role = forms.ChoiceField(
        label=_("역할"),
        required=False,
        choices=[
            ("", _("전체")),
            (Role.AMBULANCE, _("구급대")),
            (Role.HOSPITAL, _("응급실")),
            (Role.ADMIN, _("관리자")),
        ],
    )
    state = forms.ChoiceField(
        label=_("상태"),
        required=False,
        choices=[
            ("", _("전체")),
            ("active", _("사용 중")),
            ("pending", _("승인 대기")),
            ("rejected", _("거절됨")),
            ("disabled", _("사용 중지")),
        ],
    )
    q = forms.CharField(label=_("이름·아이디·병원"), required=False, max_length=100)


class AuditFilterForm(forms.Form):
    """The audit log's filters: hospital, crew, the status a transition led to, a time range."""

    hospital = forms.CharField(label=_("병원 (이름 또는 hpid)"), required=False, max_length=200)
    crew = forms.CharField(label=_("구급대 (아이디 또는 이름)"), required=False, max_length=150)
    status = forms.ChoiceField(
        label=_("바뀐 상태"),
        required=False,
        choices=lambda: (
            [("", _("전체"))]
            + [(value, label(value, "status")) for value in ReservationStatus.values]
        ),
    )
    since = forms.DateTimeField(
        label=_("시작"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    until = forms.DateTimeField(
        label=_("끝"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", _("끝은 시작보다 뒤여야 합니다."))
        return data
