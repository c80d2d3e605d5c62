"""The operator commands: seed_demo and issue_tokens, on the real database."""

from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from pytest_django import Settings

from domain.models import Approval, ERStatus, Hospital, Role, User
from domain.regions import REGIONS
from domain.services.tokens import access_token_authenticate

pytestmark = pytest.mark.django_db


def test_seed_demo_is_idempotent_and_keeps_live_status(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """A second run adds nothing and never overwrites a status that has since changed."""
    settings.DEMO = True
    call_command("seed_demo")
    hospitals = Hospital.objects.count()
    assert 480 <= hospitals <= 520
    assert set(Hospital.objects.values_list("region_code", flat=True)) == {r.code for r in REGIONS}
    assert ERStatus.objects.count() == hospitals
    ERStatus.objects.filter(hospital__hpid="A1100015").update(er_general=-9)

    call_command("seed_demo")
    assert Hospital.objects.count() == hospitals
    assert ERStatus.objects.get(hospital__hpid="A1100015").values()["er_general"] == -9
    printed = capsys.readouterr().out
    for username in ("demo-admin", "demo-crew", "demo-er"):
        assert username in printed
        user = User.objects.get(username=username)
        assert user.approval == Approval.ACTIVE
    demo_er = User.objects.select_related("hospital").get(username="demo-er")
    assert demo_er.hospital is not None
    assert demo_er.hospital.hpid == "A1100015"


def test_seed_demo_refuses_without_demo(settings: Settings) -> None:
    """Known demo passwords never reach a production database by accident, DEBUG or not."""
    settings.DEMO = False
    settings.DEBUG = True
    with pytest.raises(CommandError):
        call_command("seed_demo")
    assert not User.objects.exists()


def test_issue_tokens_creates_then_reuses_users(tmp_path: Path) -> None:
    """N valid tokens for N approved users; a second run reuses the same users."""
    out = tmp_path / "tokens.txt"
    call_command("issue_tokens", "--role", "ambulance", "--count", "25", "--out", str(out))
    tokens = out.read_text().splitlines()
    assert len(tokens) == 25
    users = {access_token_authenticate(token=t).user.pk for t in tokens}
    assert len(users) == 25
    assert User.objects.filter(role=Role.AMBULANCE, approval=Approval.ACTIVE).count() == 25

    call_command("issue_tokens", "--role", "ambulance", "--count", "30", "--out", str(out))
    assert User.objects.filter(role=Role.AMBULANCE).count() == 30
    again = {access_token_authenticate(token=t).user.pk for t in out.read_text().splitlines()}
    assert users < again


def test_issue_tokens_for_hospital_staff(tmp_path: Path) -> None:
    """Hospital tokens belong to staff of the named hospital; an unknown hpid is an error."""
    Hospital.objects.create(
        hpid="A1100015", name="강남세브란스", sido="서울특별시", region_code="11"
    )
    out = tmp_path / "er.txt"
    call_command(
        "issue_tokens",
        "--role",
        "hospital",
        "--hospital",
        "A1100015",
        "--count",
        "3",
        "--out",
        str(out),
    )
    for token in out.read_text().splitlines():
        user = access_token_authenticate(token=token).user
        assert user.hospital is not None
        assert user.hospital.hpid == "A1100015"
    with pytest.raises(CommandError):
        call_command(
            "issue_tokens",
            "--role",
            "hospital",
            "--hospital",
            "NOPE",
            "--count",
            "1",
            "--out",
            str(out),
        )
