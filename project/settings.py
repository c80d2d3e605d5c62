"""WeER settings: every value comes from the environment through one reader (12-factor).

The zero-config demo (``DEMO`` on, as ``bin/start`` runs it, nothing else set) allows demo data
and keys generated once into ``var/secrets.env`` (``project.demo_secrets``); without it the
secrets have no default and a missing one stops the process at start-up. Django's ``DEBUG`` is
another thing, off unless a developer turns it on: it shows settings and tracebacks to whoever
sends a bad request, so the started system never runs with it.
"""

from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured
from limits import parse_many

from project.demo_secrets import demo_secrets


def _default(values: dict[str, str], name: str) -> dict[str, str]:
    """``default=`` for ``env.str`` when ``values`` has ``name`` (the demo's), else nothing:
    the variable is then required."""
    return {"default": values[name]} if name in values else {}


BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").exists():  # else environ logs that it is missing, before logging is set up
    env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
# The demo bin/start runs: demo data (seed_demo), keys generated for this checkout, the pages'
# static files served straight from the apps, cookies over plain http. Never in production.
DEMO = env.bool("DEMO", default=False)
DEMO_SECRETS_FILE = Path(
    env.str("DEMO_SECRETS_FILE", default=str(BASE_DIR / "var" / "secrets.env"))
)
_demo_secrets = demo_secrets(DEMO_SECRETS_FILE) if DEMO else {}
SECRET_KEY = env.str("SECRET_KEY", **_default(_demo_secrets, "SECRET_KEY"))
JWT_SIGNING_KEY = env.str("JWT_SIGNING_KEY", **_default(_demo_secrets, "JWT_SIGNING_KEY"))
JWT_ALGORITHM = env.str("JWT_ALGORITHM", default="HS256")
ACCESS_TOKEN_LIFETIME = timedelta(seconds=env.int("ACCESS_TOKEN_LIFETIME", default=15 * 60))
REFRESH_TOKEN_LIFETIME = timedelta(seconds=env.int("REFRESH_TOKEN_LIFETIME", default=24 * 3600))
# The console's session (started by the log-in page) lasts as long as a login's refresh token.
SESSION_COOKIE_AGE = int(REFRESH_TOKEN_LIFETIME.total_seconds())

# What a Prometheus scraper sends as "Authorization: Bearer <token>" to read /metrics; empty:
# /metrics answers 404.
METRICS_TOKEN = env.str("METRICS_TOKEN", default=_demo_secrets.get("METRICS_TOKEN", ""))

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
# Browser origins allowed to open websockets; clients that send no Origin (tablet apps) are not
# browsers and authenticate by token alone.
WEBSOCKET_ALLOWED_ORIGINS = env.list("WEBSOCKET_ALLOWED_ORIGINS", default=[])

REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
# Every Redis key and pub/sub channel of this deployment starts with weer:<namespace>: (pub/sub
# channels ignore the database number, so deployments sharing a Redis server would otherwise
# hear each other). The default is unique per database: "db<number of REDIS_URL's database>".
_REDIS_DB = (urlsplit(REDIS_URL).path.strip("/") or "0").split("/")[0]
REDIS_NAMESPACE = env.str("REDIS_NAMESPACE", default=f"db{_REDIS_DB}")
REDIS_KEY_PREFIX = f"weer:{REDIS_NAMESPACE}:"
# The realtime engine: the Redis of the streams' counters, history and live channels, or a Redis
# Cluster (redis+cluster://host:port[,host:port...]): realtime.engine. Celery, locks, rate
# limits and metrics stay on REDIS_URL.
REALTIME_REDIS_URL = env.str("REALTIME_REDIS_URL", default=REDIS_URL)

# What delivers the events domain services publish after commit (domain.events): the one
# publishing path. Named here, so that the domain package never imports the realtime one.
EVENTS_PUBLISHER = "realtime.publishing.publish_events"
# Sections the metrics stream adds beside the realtime figures: name → async reader of a Redis
# client (named, like the publisher, so that realtime imports no other package).
REALTIME_METRICS_SECTIONS = {
    "ingestion": "ingestion.metrics.aread_ingestion_metrics",
    "ingestion_regions": "ingestion.region_health.aread_region_health",
}

# Realtime: per-stream event history kept for resume (whichever cap is hit first), the send
# buffer a socket may fill before it is closed as too slow, and client message limits.
REALTIME_HISTORY_SECONDS = env.int("REALTIME_HISTORY_SECONDS", default=30 * 60)
REALTIME_HISTORY_MAXLEN = env.int("REALTIME_HISTORY_MAXLEN", default=100_000)
REALTIME_SEND_BUFFER_BYTES = env.int("REALTIME_SEND_BUFFER_BYTES", default=512 * 1024)
REALTIME_MAX_MESSAGE_BYTES = env.int("REALTIME_MAX_MESSAGE_BYTES", default=4096)
REALTIME_MAX_STREAMS_PER_SOCKET = env.int("REALTIME_MAX_STREAMS_PER_SOCKET", default=64)
# On SIGTERM a server process closes its websockets with 1012 evenly over this many seconds,
# then exits (realtime.serving.drain): Kubernetes' grace period must cover it.
_drain_window = env.str("WEB_DRAIN_SECONDS", default="20")
try:  # not env.float, which reads "20s" as 20 and "twenty" as an empty string
    WEB_DRAIN_SECONDS = float(_drain_window)
except ValueError:
    WEB_DRAIN_SECONDS = float("nan")
if not 0 <= WEB_DRAIN_SECONDS <= 3600:
    raise ImproperlyConfigured(f"WEB_DRAIN_SECONDS={_drain_window!r}: seconds, from 0 to 3600")
# ER-screen presence (the metrics stream's "presence" section): a hospital that received a
# reservation within this long needs an ER screen connected, as one with pending ones does.
PRESENCE_RECENT_REQUEST_SECONDS = env.int("PRESENCE_RECENT_REQUEST_SECONDS", default=3600)

UPSTREAM_BASE_URL = env.str(
    "UPSTREAM_BASE_URL", default="http://127.0.0.1:8001/B552657/ErmctInfoInqireService"
)
UPSTREAM_SERVICE_KEY = env.str("UPSTREAM_SERVICE_KEY", default="")
UPSTREAM_TIMEOUT_SECONDS = env.float("UPSTREAM_TIMEOUT_SECONDS", default=10.0)
UPSTREAM_PAGE_SIZE = env.int("UPSTREAM_PAGE_SIZE", default=1000)
# Calls per day the key may make (a development key: 1,000). Polls are paced to spread them.
UPSTREAM_DAILY_CALL_BUDGET = env.int("UPSTREAM_DAILY_CALL_BUDGET", default=1000)

INGEST_BEDS_SECONDS = env.float("INGEST_BEDS_SECONDS", default=30.0)
INGEST_MESSAGES_SECONDS = env.float("INGEST_MESSAGES_SECONDS", default=60.0)
INGEST_ACCEPTANCE_SECONDS = env.float("INGEST_ACCEPTANCE_SECONDS", default=300.0)
INGEST_INSTITUTIONS_SECONDS = env.float("INGEST_INSTITUTIONS_SECONDS", default=24 * 3600.0)
# Reservations: how long a request waits for a decision, when an unacknowledged one is
# re-alerted, how long an approval holds a bed, how often the sweeper runs, and the speed used
# for ETA estimates.
RESERVATION_PENDING_SECONDS = env.int("RESERVATION_PENDING_SECONDS", default=5 * 60)
RESERVATION_REMIND_AFTER_SECONDS = env.int("RESERVATION_REMIND_AFTER_SECONDS", default=60)
RESERVATION_HOLD_SECONDS = env.int("RESERVATION_HOLD_SECONDS", default=30 * 60)
RESERVATION_SWEEP_SECONDS = env.float("RESERVATION_SWEEP_SECONDS", default=5.0)
RESERVATION_ETA_KMH = env.float("RESERVATION_ETA_KMH", default=40.0)
# How long the answer to a request sent with an Idempotency-Key is remembered (at least; a beat
# task deletes older ones every IDEMPOTENCY_FORGET_SECONDS).
IDEMPOTENCY_KEY_SECONDS = env.int("IDEMPOTENCY_KEY_SECONDS", default=24 * 3600)
IDEMPOTENCY_FORGET_SECONDS = 15 * 60.0
# How often beat runs the outbox relay, which publishes the events of committed changes that
# could not be published when they committed (Redis unreachable): the longest they wait once
# Redis is back.
OUTBOX_RELAY_SECONDS = env.float("OUTBOX_RELAY_SECONDS", default=1.0)

# Rate limits (domain.services.rate_limits, README § Configuration): each a rule such as
# "10/minute" (several joined by ";", e.g. "10/minute;100/hour"), or "off". Counted in Redis,
# shared by every process; while Redis is unreachable they are not enforced (fail open).
LIMIT_LOGIN_PER_ACCOUNT = env.str("LIMIT_LOGIN_PER_ACCOUNT", default="10/minute")  # failures
LIMIT_LOGIN_PER_ADDRESS = env.str("LIMIT_LOGIN_PER_ADDRESS", default="30/minute")  # attempts
LIMIT_SIGNUP_PER_ADDRESS = env.str("LIMIT_SIGNUP_PER_ADDRESS", default="20/hour")
LIMIT_REFRESH_PER_USER = env.str("LIMIT_REFRESH_PER_USER", default="10/minute")
LIMIT_RESERVATIONS_PER_CREW = env.str("LIMIT_RESERVATIONS_PER_CREW", default="10/minute")
LIMIT_WS_CONNECTS_PER_USER = env.str("LIMIT_WS_CONNECTS_PER_USER", default="60/minute")
LIMIT_WS_CONNECTS_PER_ADDRESS = env.str("LIMIT_WS_CONNECTS_PER_ADDRESS", default="600/minute")
LIMIT_SUBSCRIBES_PER_USER = env.str("LIMIT_SUBSCRIBES_PER_USER", default="120/minute")
for _name, _rule in list(globals().items()):
    if _name.startswith("LIMIT_") and _rule.strip().lower() not in ("", "off"):
        try:
            parse_many(_rule)
        except ValueError as _invalid:
            raise ImproperlyConfigured(f"{_name}={_rule!r}: {_invalid}") from None
# At most this many of a crew's requests may be pending at once (a request to three ERs is
# three): a domain rule, not a rate (409 too_many_open_reservations).
RESERVATION_MAX_OPEN_PER_CREW = env.int("RESERVATION_MAX_OPEN_PER_CREW", default=6)

# A region whose polls have not succeeded for this long is marked stale (beds.stale).
INGEST_STALE_AFTER_SECONDS = env.float("INGEST_STALE_AFTER_SECONDS", default=15 * 60.0)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.admin",
    "channels",
    "ninja",
    "domain",
    "realtime",
    "ingestion",
    "frontend",
]

MIDDLEWARE = [
    # Each request's id, on its log lines and in its answer's X-Request-ID.
    "project.logs.RequestIdMiddleware",
    # Outermost: every error answer under /api/ (a refused Host, ninja's 405, Django's 500
    # page) leaves in the API's JSON error shape.
    "project.middleware.ApiErrorShapeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files straight from the process (daphne), before anything that needs a session:
    # WhiteNoise (frontend.middleware says why the subclass).
    "frontend.middleware.StaticFilesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The pages' language: the user's choice (/i18n/setlang/ sets a cookie), else the browser's
    # Accept-Language, else LANGUAGE_CODE (Korean).
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Innermost, so that it sees a view's exception first: a database outage is a 503.
    "project.middleware.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "project.urls"
ASGI_APPLICATION = "project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'weer.sqlite3'}")
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.mysql":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "charset": "utf8mb4",
            "init_command": (
                "SET sql_mode='STRICT_ALL_TABLES,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO'"
            ),
            "isolation_level": "read committed",
            # A database that stops answering (a partition, a frozen server) fails the query
            # instead of holding a request thread or a task forever: the API answers 503.
            "connect_timeout": env.int("DATABASE_CONNECT_TIMEOUT_SECONDS", default=5),
            "read_timeout": env.int("DATABASE_READ_TIMEOUT_SECONDS", default=30),
            "write_timeout": env.int("DATABASE_READ_TIMEOUT_SECONDS", default=30),
        }
    )
    DATABASES["default"]["TEST"] = {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"}
else:
    # The demo's SQLite file is written by the web server and the Celery worker at once.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "domain.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# JSON bodies are small (sign-up, reservations); anything larger is refused with a 400.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=64 * 1024)

# Korean first, English available. Template strings are written in Korean (the msgids) and
# translated to English in frontend/locale/en (compiled .mo committed beside the .po).
LANGUAGE_CODE = "ko"
LANGUAGES = [("ko", "한국어"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "frontend" / "locale"]
TIME_ZONE = "Asia/Seoul"
USE_I18N = True
USE_TZ = True

# Static files: `manage.py collectstatic` copies every app's static files (the pages' bundle in
# frontend/static/frontend/dist/ once `npm run build` made it, the admin's, /api/docs' Swagger
# UI) into STATIC_ROOT, and WhiteNoise serves them. In production they are content-hashed and
# compressed (frontend.storage.StaticStorage: a file missing from the build is linked unhashed
# rather than failing the page). In the demo (and with DEBUG), files are served unhashed straight
# from the apps' static directories (WhiteNoise's finders, re-read on each request), so a
# rebuild shows at once without collectstatic.
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
_STATIC_FROM_APPS = DEBUG or DEMO
WHITENOISE_USE_FINDERS = _STATIC_FROM_APPS
WHITENOISE_AUTOREFRESH = _STATIC_FROM_APPS
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if _STATIC_FROM_APPS
        else "frontend.storage.StaticStorage"
    },
}

# The map of the pages: with no tile server configured they draw the built-in Korea outline
# only (nothing is fetched from outside). A URL template such as
# https://tile.example.org/{z}/{x}/{y}.png adds real tiles; the attribution its licence asks
# for is shown on the map.
MAP_TILE_URL = env.str("MAP_TILE_URL", default="")
MAP_TILE_ATTRIBUTION = env.str("MAP_TILE_ATTRIBUTION", default="")

# No Channels channel layer: events fan out through realtime.hub (Redis pub/sub + Streams), see
# docs/realtime.md for why.

CELERY_BROKER_URL = REDIS_URL
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULE = {
    "poll-beds": {"task": "ingestion.poll_beds", "schedule": INGEST_BEDS_SECONDS},
    "poll-messages": {"task": "ingestion.poll_messages", "schedule": INGEST_MESSAGES_SECONDS},
    "poll-acceptance": {"task": "ingestion.poll_acceptance", "schedule": INGEST_ACCEPTANCE_SECONDS},
    "sweep-reservations": {
        "task": "reservations.sweep",
        "schedule": RESERVATION_SWEEP_SECONDS,
    },
    # A run that has waited longer than its period is dropped (the next one does its work), so a
    # worker busy with a long poll does not run a queue of them afterwards.
    "relay-outbox": {
        "task": "outbox.relay",
        "schedule": OUTBOX_RELAY_SECONDS,
        "options": {"expires": OUTBOX_RELAY_SECONDS},
    },
    "forget-idempotency-keys": {
        "task": "idempotency.forget",
        "schedule": IDEMPOTENCY_FORGET_SECONDS,
    },
    "sync-institutions": {
        "task": "ingestion.sync_institutions",
        "schedule": INGEST_INSTITUTIONS_SECONDS,
    },
}

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")  # or "json": one JSON object per line
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r}: use plain or json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"()": "project.logs.PlainLines"},
        "json": {"()": "project.logs.JsonLines"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # httpx logs each request's full URL at INFO, service key included: keep it quiet.
    "loggers": {
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        # The outbox relay runs every second: Celery's INFO lines about sending, receiving and
        # finishing it would bury everything else. Other tasks keep theirs (retries included).
        **{
            name: {"filters": ["quiet_routine_tasks"]}
            for name in ("celery.beat", "celery.worker.strategy", "celery.app.trace")
        },
    },
    "filters": {"quiet_routine_tasks": {"()": "project.logfilters.QuietRoutineTasks"}},
}

if not (DEBUG or DEMO):  # the demo is plain http on loopback
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
