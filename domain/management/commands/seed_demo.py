from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from domain.services.demo import demo_seed


class Command(BaseCommand):
    help = "Seed demo hospitals, their status and one demo user per role (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--seed", type=int, default=2026)
        parser.add_argument(
            "--force", action="store_true", help="seed even with DEMO off (never in production)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEMO and not options["force"]:
            raise CommandError("seed_demo creates users with known passwords: DEMO only.")
        result = demo_seed(seed=options["seed"])
        self.stdout.write(
            f"Hospitals: {result.hospitals_total} ({result.hospitals_created} new); "
            f"statuses created: {result.statuses_created}."
        )
        self.stdout.write("Demo users (demo only, never in production):")
        for username, password, role in result.users:
            self.stdout.write(f"  {role:<10} {username:<12} password: {password}")
