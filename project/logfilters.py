"""Logging filters named in ``settings.LOGGING``."""

import logging


class QuietRoutineTasks(logging.Filter):
    """Drop Celery's INFO lines about the tasks beat runs every few seconds (sent, received,
    succeeded): the outbox relay and the upstream polls, 17 regions every 5 s in the demo.
    Their warnings and errors stay, and so does every line about other tasks; how ingestion
    is doing is on ``/metrics`` and ``/readyz`` (docs/ingestion.md)."""

    ROUTINE = (
        "outbox.relay",
        "relay-outbox",
        "ingestion.poll_",  # poll_beds, poll_region_beds, poll_messages, poll_acceptance
        "poll-beds",
        "poll-messages",
        "poll-acceptance",
    )

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO:
            return True
        message = record.getMessage()
        return not any(name in message for name in self.ROUTINE)
