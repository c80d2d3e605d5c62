"""Applying upstream reports: exact change events through the real publishing path (MariaDB,
Redis), idempotence, ordering by hvidate, freshness."""

from datetime import datetime, timedelta

import pytest
from pytest_django import DjangoCaptureOnCommitCallbacks, Settings

from domain.models import ERAnnouncement, ERStatus, Hospital, SevereIllnessAcceptance
from domain.reports import AcceptanceReport, BedReport, MessageReport, Value
from domain.services.er_status import er_status_apply, region_poll_failed, region_poll_succeeded
from domain.services.hospital_info import acceptance_apply, announcements_apply
from ingestion.parsing import KST
from tests.conftest import StreamEvents
from tests.factories import HospitalFactory, bed_report

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("empty_streams")]

T0 = datetime(2026, 11, 24, 10, 0, tzinfo=KST)


def _report(hpid: str, hvidate: datetime = T0, **values: Value) -> BedReport:
    return bed_report(hpid, hvidate, **values)


@pytest.fixture
def two_hospitals() -> None:
    HospitalFactory(hpid="A1100015", region_code="11")
    HospitalFactory(hpid="A1100001", region_code="11")


def test_changes_publish_only_changed_fields_once(
    two_hospitals: None,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
    stream_events: StreamEvents,
) -> None:
    """First load publishes everything known; a repeat publishes nothing; a change publishes
    exactly that field of that hospital, on the region stream and on beds.all."""
    first = [_report("A1100015", er_general=6, ct=True), _report("A1100001", er_general=-2)]
    with django_capture_on_commit_callbacks(execute=True):
        applied = er_status_apply(region_code="11", reports=first)
    assert sorted(applied.changed) == ["A1100001", "A1100015"]
    assert len(stream_events("beds.11")) == len(stream_events("beds.all")) == 2

    with django_capture_on_commit_callbacks(execute=True):
        again = er_status_apply(region_code="11", reports=first)
    assert again.changed == []
    assert again.unchanged == 2
    assert len(stream_events("beds.11")) == 2

    later = T0 + timedelta(minutes=1)
    second = [_report("A1100015", later, er_general=5, ct=True), _report("A1100001", er_general=-2)]
    with django_capture_on_commit_callbacks(execute=True):
        er_status_apply(region_code="11", reports=second)
    [region_event] = stream_events("beds.11")[2:]
    [all_event] = stream_events("beds.all")[2:]
    assert region_event["type"] == all_event["type"] == "beds.changed"
    assert (
        region_event["data"]
        == all_event["data"]
        == {
            "hpid": "A1100015",
            "changes": {"er_general": {"old": 6, "new": 5}},
            "hvidate": "2026-11-24T01:01:00Z",
        }
    )
    assert region_event["seq"] == stream_events("beds.11")[1]["seq"] + 1
    stored = ERStatus.objects.get(hospital__hpid="A1100015")
    assert stored.values()["er_general"] == 5
    assert stored.values()["ct"] is True
    assert stored.hvidate == later


def test_older_report_never_overwrites(
    two_hospitals: None,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
    stream_events: StreamEvents,
) -> None:
    """A report with an older hvidate than the stored status is ignored entirely."""
    with django_capture_on_commit_callbacks(execute=True):
        er_status_apply(region_code="11", reports=[_report("A1100015", T0, er_general=6)])
    with django_capture_on_commit_callbacks(execute=True):
        applied = er_status_apply(
            region_code="11", reports=[_report("A1100015", T0 - timedelta(hours=1), er_general=0)]
        )
    assert applied.older_skipped == 1
    assert ERStatus.objects.get(hospital__hpid="A1100015").values()["er_general"] == 6
    assert len(stream_events("beds.11")) == 1


def test_fresher_input_time_alone_updates_quietly(
    two_hospitals: None,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
    stream_events: StreamEvents,
) -> None:
    """Same values with a newer hvidate: the stored data age improves, clients get no event."""
    with django_capture_on_commit_callbacks(execute=True):
        er_status_apply(region_code="11", reports=[_report("A1100015", T0, er_general=6)])
        er_status_apply(
            region_code="11", reports=[_report("A1100015", T0 + timedelta(minutes=5), er_general=6)]
        )
    assert ERStatus.objects.get(hospital__hpid="A1100015").hvidate == T0 + timedelta(minutes=5)
    assert len(stream_events("beds.11")) == 1


def test_unknown_hospital_is_created(
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    """A report for an hpid we do not know yet is kept, under a minimal hospital."""
    with django_capture_on_commit_callbacks(execute=True):
        applied = er_status_apply(
            region_code="26",
            reports=[
                BedReport(
                    hpid="A2600099",
                    name="새병원",
                    er_phone="051-000-0000",
                    hvidate=T0,
                    values={"er_general": 3},
                )
            ],
        )
    assert applied.hospitals_created == 1
    hospital = Hospital.objects.get(hpid="A2600099")
    assert (hospital.name, hospital.region_code, hospital.sido) == ("새병원", "26", "부산광역시")
    assert hospital.er_status.values()["er_general"] == 3


def test_staleness_comes_and_goes(
    settings: Settings,
    two_hospitals: None,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
    stream_events: StreamEvents,
) -> None:
    """Failures keep the last state; past the limit the region turns stale (beds.stale true);
    the next good poll clears it (beds.stale false)."""
    with django_capture_on_commit_callbacks(execute=True):
        er_status_apply(region_code="11", reports=[_report("A1100015", er_general=6)])
        region_poll_succeeded(region_code="11")
    settings.INGEST_STALE_AFTER_SECONDS = 3600
    with django_capture_on_commit_callbacks(execute=True):
        assert region_poll_failed(region_code="11", error="timeout") is False
    settings.INGEST_STALE_AFTER_SECONDS = 0
    with django_capture_on_commit_callbacks(execute=True):
        assert region_poll_failed(region_code="11", error="timeout") is True
        assert region_poll_failed(region_code="11", error="timeout") is True  # announced once
    with django_capture_on_commit_callbacks(execute=True):
        region_poll_succeeded(region_code="11")
    stale_events = [e for e in stream_events("beds.11") if e["type"] == "beds.stale"]
    assert [e["data"]["stale"] for e in stale_events] == [True, False]
    assert stale_events[0]["data"]["hpids"] == ["A1100015"]
    assert ERStatus.objects.get(hospital__hpid="A1100015").values()["er_general"] == 6


def test_acceptance_changes(
    two_hospitals: None,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
    stream_events: StreamEvents,
) -> None:
    """Acceptance flags publish acceptance.changed with only the categories that changed."""
    flags: dict[int, bool | None] = dict.fromkeys(range(1, 29), True)
    with django_capture_on_commit_callbacks(execute=True):
        acceptance_apply(reports=[AcceptanceReport("A1100015", flags, {})])
        acceptance_apply(reports=[AcceptanceReport("A1100015", flags, {})])
        acceptance_apply(reports=[AcceptanceReport("A1100015", {**flags, 3: False}, {})])
    events = [e for e in stream_events("beds.11") if e["type"] == "acceptance.changed"]
    assert len(events) == 2
    assert events[1]["data"] == {"hpid": "A1100015", "changes": {"3": {"old": True, "new": False}}}
    assert (
        SevereIllnessAcceptance.objects.get(hospital__hpid="A1100015", category=3).accepts is False
    )


def _message(hpid: str, text: str) -> MessageReport:
    return MessageReport(
        hpid=hpid,
        fingerprint=(hpid + text).ljust(64, "0")[:64],
        message_type="er",
        disease_code="Y000",
        disease_name="응급실",
        message=text,
        display_flag="",
        display_method="",
        starts_at=T0,
        ends_at=None,
    )


def test_announcements_added_and_removed(
    two_hospitals: None,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
    stream_events: StreamEvents,
) -> None:
    """A new message is announced once; one no longer listed is ended and announced removed."""
    with django_capture_on_commit_callbacks(execute=True):
        announcements_apply(region_code="11", reports=[_message("A1100015", "CT 고장")])
        announcements_apply(region_code="11", reports=[_message("A1100015", "CT 고장")])
        announcements_apply(region_code="11", reports=[])
    events = [e for e in stream_events("beds.11") if e["type"] == "announcements.changed"]
    assert len(events) == 2
    assert [a["message"] for a in events[0]["data"]["added"]] == ["CT 고장"]
    assert events[1]["data"]["removed"] == [events[0]["data"]["added"][0]["id"]]
    assert ERAnnouncement.objects.get().ends_at is not None
