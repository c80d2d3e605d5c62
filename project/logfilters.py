"""Logging filters named in ``settings.LOGGING``."""

import logging


class QuietRoutineTasks(logging.Filter):
    """Drop Celery's INFO lines that say the tasks beat runs every few seconds were sent,
    received or succeeded: the outbox relay and the upstream polls, 17 regions every 5 s in the
    demo. Their retries, warnings and errors stay, and so does every line about other tasks;
    how ingestion is doing is on ``/metrics`` and ``/readyz`` (docs/ingestion.md)."""

    ROUTINE = (
        "outbox.relay",
        "relay-outbox",
        "ingestion.poll_",  # poll_beds, poll_region_beds, poll_messages, poll_acceptance
        "poll-beds",
        "poll-messages",
        "poll-acceptance",
    )

    # Only these lines are routine; Celery's others (a retry and its cause, at INFO) stay.
    ROUTINE_LINES = ("] received", "] succeeded in ", "Sending due task")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO:
            return True
        message = record.getMessage()
        return not (
            any(line in message for line in self.ROUTINE_LINES)
            and any(name in message for name in self.ROUTINE)
        )
