"""What the configured logging (``settings.LOGGING``) lets through from Celery's task lines."""

import logging

import pytest

TASK_LINE = "Task %s[%s] %s"


@pytest.mark.parametrize("logger_name", ["celery.app.trace", "celery.worker.strategy"])
def test_routine_polls_and_the_relay_are_quiet_but_their_trouble_and_other_tasks_are_not(
    logger_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    celery = logging.getLogger(logger_name)
    celery.info(TASK_LINE, "ingestion.poll_region_beds", "a1", "received")
    celery.info(TASK_LINE, "ingestion.poll_beds", "a2", "succeeded in 0.05s: {'changed': 1}")
    celery.info(TASK_LINE, "outbox.relay", "a3", "received")
    celery.warning(TASK_LINE, "ingestion.poll_region_beds", "a4", "retry: upstream timed out")
    celery.info(TASK_LINE, "reservations.sweep", "a5", "received")
    seen = [r.getMessage() for r in caplog.records if r.name == logger_name]
    assert seen == [
        "Task ingestion.poll_region_beds[a4] retry: upstream timed out",
        "Task reservations.sweep[a5] received",
    ]


def test_beat_sending_a_poll_is_quiet(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    beat = logging.getLogger("celery.beat")
    beat.info("Scheduler: Sending due task %s (%s)", "poll-beds", "ingestion.poll_beds")
    beat.info(
        "Scheduler: Sending due task %s (%s)", "sync-institutions", "ingestion.sync_institutions"
    )
    seen = [r.getMessage() for r in caplog.records if r.name == "celery.beat"]
    assert seen == ["Scheduler: Sending due task sync-institutions (ingestion.sync_institutions)"]
