from datetime import timedelta
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from domain.errors import ValidationFailed
from domain.models import Role
from domain.services.tokens import access_token_issue
from domain.services.users import synthetic_users_ensure


class Command(BaseCommand):
    help = (
        "Create (or reuse) approved synthetic users and write one access token per line, "
        "for operators and load tests."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--hospital", help="hpid; required for --role hospital")
        parser.add_argument("--count", type=int, default=1)
        parser.add_argument("--out", required=True, type=Path, help="file to write, '-' for stdout")
        parser.add_argument(
            "--lifetime",
            type=int,
            default=None,
            help="access token lifetime in seconds (default: ACCESS_TOKEN_LIFETIME)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            users = synthetic_users_ensure(
                role=options["role"], count=options["count"], hospital_hpid=options["hospital"]
            )
        except ValidationFailed as exc:
            raise CommandError(f"{exc.message} {exc.fields}") from exc
        lifetime = timedelta(seconds=options["lifetime"]) if options["lifetime"] else None
        lines = "".join(f"{access_token_issue(user=u, lifetime=lifetime)}\n" for u in users)
        if str(options["out"]) == "-":
            self.stdout.write(lines, ending="")
        else:
            options["out"].write_text(lines)
            self.stderr.write(f"Wrote {len(users)} {options['role']} tokens to {options['out']}")
