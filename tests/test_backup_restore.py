"""bin/db-backup-check against real MariaDB: a backup of a seeded database restores every row of
every table, and each way a backup can fail to (rows written after the dump, a dump missing
rows, cut short or unrestorable, a restore that loses rows) fails the check loudly, with its
scratch database dropped all the same."""

import contextlib
import gzip
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone
from pytest_django import Settings

from domain.models import (
    AnnouncementType,
    ERAnnouncement,
    ERStatus,
    Hospital,
    PatientCondition,
    Reservation,
    ReservationEvent,
    Role,
    SevereIllnessAcceptance,
    User,
)
from tests.conftest import _free_port, server_env
from tests.factories import (
    ERStatusFactory,
    HospitalFactory,
    PatientConditionFactory,
    UserFactory,
)

# The script reads what the test wrote through connections of its own: it must be committed.
pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "bin" / "db-backup-check"
# Text a dump must carry byte for byte: quotes, a backslash, a newline and a tab, Korean, an
# emoji, and something that looks like the start of a dumped row.
AWKWARD_TEXT = "흉통 30분\n'quoted' \"double\" back\\slash\ttab 🚑 `tick`; INSERT INTO `x` VALUES ("


@dataclass
class Check:
    """One run of the script: its exit status, output and what it printed per table."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def tables(self) -> dict[str, list[str]]:
        """table → [rows in the database, in the dump, restored, verdict words...]."""
        lines = self.stdout.splitlines()
        assert lines, f"no output:\n{self.stderr}"
        return {
            line.split()[0]: line.split()[1:] for line in lines[1:] if not line.startswith("OK")
        }

    def __str__(self) -> str:
        return f"exit {self.returncode}\n{self.stdout}\n{self.stderr}"


def database_url(*, user: str | None = None, password: str = "") -> str:
    """The test database's URL (as the servers get it), or the same one as another user."""
    url = server_env()["DATABASE_URL"]
    if user is None:
        return url
    parts = urlsplit(url)
    netloc = f"{user}:{quote(password, safe='')}@{parts.hostname}:{parts.port or 3306}"
    return urlunsplit(parts._replace(netloc=netloc))


def scratch_databases() -> list[str]:
    prefix = f"{settings.DATABASES['default']['NAME']}_restore_"
    with connection.cursor() as cursor:
        cursor.execute("SHOW DATABASES")
        return [name for (name,) in cursor.fetchall() if name.startswith(prefix)]


def run_check(*args: str | Path, url: str | None = None) -> Check:
    """Run the script on the test database; whatever it did, its scratch database is gone."""
    before = scratch_databases()
    done = subprocess.run(
        [SCRIPT, *args, url or database_url()],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        check=False,
    )
    check = Check(done.returncode, done.stdout, done.stderr)
    assert scratch_databases() == before, f"a scratch database was left behind:\n{check}"
    return check


def seed() -> dict[str, int]:
    """A few hundred rows over the domain's tables, some with awkward text; returns the rows
    of each table by its name in the database."""
    hospitals = HospitalFactory.create_batch(60)
    for hospital in hospitals:
        ERStatusFactory(hospital=hospital)
    SevereIllnessAcceptance.objects.bulk_create(
        SevereIllnessAcceptance(hospital=hospital, category=category, accepts=category == 1)
        for hospital in hospitals[:30]
        for category in (1, 3)
    )
    ERAnnouncement.objects.bulk_create(
        ERAnnouncement(
            hospital=hospital,
            fingerprint=f"fp-{hospital.hpid}",
            message_type=AnnouncementType.ER,
            message=AWKWARD_TEXT,
        )
        for hospital in hospitals[:20]
    )
    crews = [UserFactory(role=Role.AMBULANCE) for _ in range(12)]
    for hospital in hospitals[:6]:
        UserFactory(role=Role.HOSPITAL, hospital=hospital)
    conditions = [
        PatientConditionFactory(recorded_by=crews[n % len(crews)], chief_complaint=AWKWARD_TEXT)
        for n in range(40)
    ]
    now = timezone.now()
    reservations = Reservation.objects.bulk_create(
        Reservation(
            crew=condition.recorded_by,
            hospital=hospitals[(n + k) % len(hospitals)],
            condition=condition,
            expires_at=now + timedelta(minutes=5),
        )
        for n, condition in enumerate(conditions)
        for k in (0, 1)
    )
    ReservationEvent.objects.bulk_create(
        ReservationEvent(
            reservation=reservation,
            action=action,
            to_status="pending",
            actor=reservation.crew if action == "requested" else None,
            actor_role="ambulance" if action == "requested" else "system",
            note=AWKWARD_TEXT,
            at=now,
        )
        for reservation in reservations
        for action in ("requested", "reminder")
    )
    counts = {
        "domain_hospital": Hospital.objects.count(),
        "domain_erstatus": ERStatus.objects.count(),
        "domain_severeillnessacceptance": SevereIllnessAcceptance.objects.count(),
        "domain_erannouncement": ERAnnouncement.objects.count(),
        "domain_user": User.objects.count(),
        "domain_patientcondition": PatientCondition.objects.count(),
        "domain_reservation": Reservation.objects.count(),
        "domain_reservationevent": ReservationEvent.objects.count(),
    }
    assert sum(counts.values()) > 400, counts
    return counts


def row_lines(lines: list[str], table: str) -> list[int]:
    """The indices of ``table``'s rows in a dump's lines but its last (which ends the INSERT
    statement): mariadb-dump writes ``INSERT INTO `table` VALUES`` and then a row a line."""
    start = lines.index(f"INSERT INTO `{table}` VALUES\n")
    end = next(n for n in range(start, len(lines)) if lines[n].rstrip().endswith(");"))
    assert end - start > 10, "too few rows to damage"
    return list(range(start + 1, end))


@pytest.fixture
def seeded(settings: Settings) -> dict[str, int]:
    # Hashing 18 passwords with the production hasher would take most of the test's time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return seed()


@pytest.fixture
def dump(seeded: dict[str, int], tmp_path: Path) -> Path:
    """A dump of the seeded database, kept by a check that passed."""
    path = tmp_path / "weer.sql"
    check = run_check("--keep-dump", path)
    assert check.returncode == 0, check
    return path


def test_a_backup_restores_every_row_of_every_table(seeded: dict[str, int], tmp_path: Path) -> None:
    """Every table of the database is listed with its rows equal in the database, the dump and
    the restored copy; the dump kept (gzip'd) is complete."""
    kept = tmp_path / "weer.sql.gz"
    check = run_check("--keep-dump", kept)
    assert check.returncode == 0, check
    assert check.stdout.splitlines()[-1].startswith("OK: "), check
    tables = check.tables
    assert set(tables) == set(connection.introspection.table_names()), check
    for table, rows in seeded.items():
        assert tables[table] == [str(rows)] * 3, (table, check)
    assert all(len(figures) == 3 for figures in tables.values()), check  # no verdict anywhere
    text = gzip.decompress(kept.read_bytes()).decode()
    assert text.rstrip().splitlines()[-1].startswith("-- Dump completed"), text[-500:]


def test_rows_written_after_the_dump_fail_the_check(dump: Path, seeded: dict[str, int]) -> None:
    """The database gained and lost rows since the dump: checking that dump fails naming each
    table that differs; with --live it passes and shows them."""
    HospitalFactory.create_batch(3)
    SevereIllnessAcceptance.objects.filter(category=3).delete()

    check = run_check("--dump", dump)

    assert check.returncode == 1, check
    tables = check.tables
    hospitals, acceptances = seeded["domain_hospital"], seeded["domain_severeillnessacceptance"]
    assert tables["domain_hospital"][:4] == [
        str(hospitals + 3),
        str(hospitals),
        str(hospitals),
        "FAILED:",
    ]
    assert tables["domain_severeillnessacceptance"][:4] == [
        str(acceptances - 30),
        str(acceptances),
        str(acceptances),
        "FAILED:",
    ]
    assert "FAILED: 2 of " in check.stderr, check

    live = run_check("--live", "--dump", dump)
    assert live.returncode == 0, live
    assert live.tables["domain_hospital"][3:] == [
        "differs",
        "(--live:",
        "written",
        "since",
        "the",
        "dump)",
    ]
    assert "tables written since the dump: 2" in live.stdout, live


def test_a_dump_missing_rows_fails_the_check(dump: Path, seeded: dict[str, int]) -> None:
    """Five rows taken out of the dump restore as five rows fewer than the database holds."""
    lines = dump.read_text().splitlines(keepends=True)
    for n in reversed(row_lines(lines, "domain_reservationevent")[10:15]):
        del lines[n]
    dump.write_text("".join(lines))

    check = run_check("--dump", dump)

    assert check.returncode == 1, check
    rows = seeded["domain_reservationevent"]
    assert check.tables["domain_reservationevent"][:4] == [
        str(rows),
        str(rows - 5),
        str(rows - 5),
        "FAILED:",
    ]


def test_a_dump_without_its_rows_fails_the_check(seeded: dict[str, int]) -> None:
    """mariadb-dump told (through --dump-option) to leave the rows out makes a dump that restores
    without an error and holds nothing: every seeded table fails."""
    check = run_check("--dump-option=--no-data")

    assert check.returncode == 1, check
    for table, rows in seeded.items():
        assert check.tables[table][:4] == [str(rows), "0", "0", "FAILED:"], (table, check)


@pytest.mark.parametrize("cut", ["between two statements", "inside the gzip stream"])
def test_a_dump_cut_short_fails_the_check(dump: Path, cut: str) -> None:
    """A dump that stops early fails, even where what is left restores without an error."""
    text = dump.read_text()
    if cut == "between two statements":
        # Right after a row halfway through: what is left restores without an error.
        lines = text.splitlines(keepends=True)
        half = lines[: len(lines) // 2]
        end = max(n for n, line in enumerate(half) if line.rstrip().endswith(");"))
        target = dump
        target.write_text("".join(lines[: end + 1]))
        expected = "the dump is cut short"
    else:
        target = dump.with_suffix(".sql.gz")
        packed = gzip.compress(text.encode())
        target.write_bytes(packed[: len(packed) // 2])
        expected = "cannot read the dump"

    check = run_check("--dump", target)

    assert check.returncode == 1, check
    assert expected in check.stderr, check


@pytest.mark.parametrize("damage", ["a broken statement", "a row twice"])
def test_a_dump_that_does_not_restore_fails_the_check(dump: Path, damage: str) -> None:
    """A dump the server refuses halfway fails with the server's error."""
    lines = dump.read_text().splitlines(keepends=True)
    n = row_lines(lines, "domain_hospital")[5]
    if damage == "a broken statement":
        lines[n] = "(" + lines[n]
    else:
        lines.insert(n, lines[n])
    dump.write_text("".join(lines))

    check = run_check("--dump", dump)

    assert check.returncode == 1, check
    # 1064 (syntax); a duplicate shows at the COMMIT of the table's bulk load (1180) or at once
    assert "the restore failed: ERROR 1" in check.stderr, check


LOSE_A_ROW = "DELETE FROM `domain_reservationevent` LIMIT 1;\n"


def test_a_restore_that_loses_rows_fails_even_live(dump: Path, seeded: dict[str, int]) -> None:
    """--live forgives the database for moving on, never the restore for losing a dumped row."""
    text = dump.read_text()
    trailer = text.index("/*!40101 SET SQL_MODE=@OLD_SQL_MODE */")
    dump.write_text(text[:trailer] + LOSE_A_ROW + text[trailer:])

    check = run_check("--live", "--dump", dump)

    assert check.returncode == 1, check
    rows = seeded["domain_reservationevent"]
    assert check.tables["domain_reservationevent"][:4] == [
        str(rows),
        str(rows),
        str(rows - 1),
        "FAILED:",
    ]
    assert "the restore does not hold the dump's rows" in check.stdout, check


@contextlib.contextmanager
def backup_user(password: str) -> Iterator[str]:
    """A MariaDB user with exactly the grants docs/operations.md gives the backup check."""
    database = settings.DATABASES["default"]["NAME"]
    user = f"weer_backup_test_{secrets.token_hex(4)}"
    scratch = database.replace("_", "\\_") + "\\_restore\\_%"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE USER '{user}'@'%%' IDENTIFIED BY %s", [password])
        try:
            # No parameters, so no %-formatting: '%' is the host wildcard as it stands.
            cursor.execute(f"GRANT SELECT, SHOW VIEW, TRIGGER ON `{database}`.* TO '{user}'@'%'")
            cursor.execute(f"GRANT ALL PRIVILEGES ON `{scratch}`.* TO '{user}'@'%'")
            yield user
        finally:
            cursor.execute(f"DROP USER '{user}'@'%'")


def test_the_documented_grants_are_enough(seeded: dict[str, int]) -> None:
    """A user with only the grants the runbook lists, and a password full of URL and option-file
    metacharacters, passes the check."""
    runbook = (ROOT / "docs" / "operations.md").read_text()
    assert "GRANT SELECT, SHOW VIEW, TRIGGER ON `weer`.* TO 'weer_backup'@" in runbook
    assert "GRANT ALL PRIVILEGES ON `weer\\_restore\\_%`.* TO 'weer_backup'@" in runbook
    password = "p@ss:w/rd\"'\\#;%+ 비밀 " + secrets.token_hex(4)
    with backup_user(password) as user:
        check = run_check(url=database_url(user=user, password=password))
    assert check.returncode == 0, check
    assert check.tables["domain_hospital"] == [str(seeded["domain_hospital"])] * 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dump"], "--dump needs a file"),
        (["--frobnicate", "URL"], "unknown option --frobnicate"),
        (["postgres://root@127.0.0.1/weer"], "not a MariaDB URL"),
        (["mysql://root:%zz@127.0.0.1/weer"], "bad %-escape in the URL's password"),
        (["mysql://root@127.0.0.1/weer?ssl=true"], "pass client options after --"),
        (["mysql://root@127.0.0.1:3306"], "the URL names no database"),
        (["mysql://root@127.0.0.1:{free_port}/weer"], "cannot reach database weer at 127.0.0.1:"),
        (["--dump", "/nonexistent/weer.sql", "URL"], "no such readable file"),
        (["--dump", "{tmp}/a.sql", "--keep-dump", "{tmp}/b.sql", "URL"], "not both"),
        (["--keep-dump", "/nonexistent/b.sql", "URL"], "its directory does not exist"),
        (["--dump", "{tmp}/a.sql", "--dump-option=--no-data", "URL"], "not with --dump"),
    ],
)
def test_bad_input_is_refused_before_anything_is_checked(
    args: list[str], message: str, tmp_path: Path
) -> None:
    """Bad usage, a bad URL or an unreachable server: exit 2 with a message saying which."""
    (tmp_path / "a.sql").write_text("-- Dump completed\n")
    argv = [
        arg.replace("URL", database_url())
        .replace("{tmp}", str(tmp_path))
        .replace("{free_port}", str(_free_port()))
        for arg in args
    ]
    done = subprocess.run(
        [SCRIPT, *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert message in done.stderr, done.stderr
    assert done.stdout == ""


def test_no_database_url_is_a_usage_error() -> None:
    """With no argument and no DATABASE_URL the script says what it needs."""
    done = subprocess.run(
        [SCRIPT],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 2
    assert "no database: give DATABASE_URL" in done.stderr
