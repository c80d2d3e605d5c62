import time
from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from domain.regions import REGIONS, REGIONS_BY_CODE
from ingestion import polls
from ingestion.budget import BudgetExhausted
from ingestion.errors import UpstreamError


class Command(BaseCommand):
    help = "Run one poll of the upstream now, in this process (no Celery)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--region",
            action="append",
            choices=sorted(REGIONS_BY_CODE),
            help="only these regions (repeatable); default all",
        )
        parser.add_argument("--institutions", action="store_true", help="sync institutions first")
        parser.add_argument("--beds-only", action="store_true", help="skip messages, acceptance")

    def handle(self, *args: Any, **options: Any) -> None:
        codes = options["region"] or [r.code for r in REGIONS]
        steps: list[tuple[str, Callable[[polls.Tools, str], object]]] = [
            ("beds", polls.poll_region_beds)
        ]
        if not options["beds_only"]:
            steps += [
                ("messages", polls.poll_region_messages),
                ("acceptance", polls.poll_region_acceptance),
            ]
        with polls.ingestion_tools() as tools:
            if options["institutions"]:
                synced = polls.sync_institutions(tools)
                self.stdout.write(f"institutions: {_summary(synced)}")
            for code in codes:
                for name, poll in steps:
                    started = time.monotonic()
                    try:
                        result = poll(tools, code)
                    except (UpstreamError, BudgetExhausted) as exc:
                        self.stderr.write(f"{code} {name}: FAILED {type(exc).__name__}: {exc}")
                        continue
                    seconds = time.monotonic() - started
                    self.stdout.write(f"{code} {name}: {_summary(result)} ({seconds:.2f}s)")


def _summary(result: object) -> str:
    changed = getattr(result, "changed", 0)
    changed = len(changed) if isinstance(changed, list) else changed
    return f"changed {changed}, unchanged {getattr(result, 'unchanged', 0)}"
