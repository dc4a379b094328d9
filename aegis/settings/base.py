"""Settings shared by every environment; values come from the environment (12-factor).

dev.py, test.py and prod.py adjust these; prod.py refuses to start without real secrets.
"""

import warnings
from pathlib import Path
from urllib.parse import unquote

import environ
import structlog

from aegis.dbpool import reset_session

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()

SECRET_KEY = env("SECRET_KEY", default="")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# --- Apps: django-tenants splits them between the public schema and tenant schemas ---------
SHARED_APPS = [
    "django_tenants",
    "apps.tenants",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.admin",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django_otp",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "health_check",
    "django_structlog",
    "apps.accounts",
    "apps.skills",
    "apps.audit",
    "apps.monitoring",
]
TENANT_APPS = [
    "django.contrib.contenttypes",
    "apps.agents",
]
INSTALLED_APPS = list(SHARED_APPS) + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "tenants.Tenant"
TENANT_DOMAIN_MODEL = "tenants.Domain"
# Every query runs with search_path set once per request/task, not before each cursor.
TENANT_LIMIT_SET_CALLS = True
# New tenant schemas are copied from this migrated template (see apps/tenants/schemas.py).
TENANT_TEMPLATE_SCHEMA = "tenant_template"
DATABASE_ROUTERS = ["django_tenants.routers.TenantSyncRouter"]

MIDDLEWARE = [
    "aegis.api.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "apps.tenants.middleware.PublicSchemaMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_structlog.middlewares.RequestMiddleware",
    "aegis.api.middleware.ApiBodySizeLimitMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "aegis.urls"
WSGI_APPLICATION = "aegis.wsgi.application"
ASGI_APPLICATION = "aegis.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Data stores -----------------------------------------------------------------------------
_database = env.db_url("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/aegis")
# A unix-socket host arrives percent-encoded in the URL (the embedded server uses one).
_database["HOST"] = unquote(_database.get("HOST") or "")
_database["ENGINE"] = "django_tenants.postgresql_backend"
# 0: the web process is ASGI, where Django's docs say persistent connections must be off (each
# request runs in its own thread, so kept connections pile up instead of being reused). It must
# stay 0 with the pool below (Django refuses both).
_database["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=0)
_database["CONN_HEALTH_CHECKS"] = True  # with the pool: each connection is checked as it is lent
# A pool of connections per process (Django's psycopg pool): a request borrows one instead of
# opening one (a new PostgreSQL backend, authentication, cold caches: most of a short request's
# time, docs/performance.md). On in the web server only: aegis/asgi.py sets DATABASE_POOL, so
# Celery's forked workers and management commands keep plain connections (a pool does not
# survive a fork). Tenant safety: a borrowed connection may still have the last borrower's
# search_path, but django-tenants sets it before the first query of every request (a new
# DatabaseWrapper per request, and PublicSchemaMiddleware resets it), and `reset` below puts
# the server's default back whenever a connection is returned
# (tests/api/test_connection_pool.py).
DATABASE_POOL_OPTIONS = {
    "min_size": env.int("DATABASE_POOL_MIN_SIZE", default=2),
    "max_size": env.int("DATABASE_POOL_MAX_SIZE", default=20),  # per process; see docs/operations.md
    "timeout": env.float("DATABASE_POOL_TIMEOUT", default=10.0),  # seconds a request waits for one
    "reset": reset_session,
}
if env.bool("DATABASE_POOL", default=False):
    _database.setdefault("OPTIONS", {})["pool"] = dict(DATABASE_POOL_OPTIONS)
# Lets concurrent test runs on one server use separate test databases.
_database["TEST"] = {"NAME": env("DATABASE_TEST_NAME", default=None)}
DATABASES = {"default": _database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
CACHES = {
    "default": {
        # Django's RedisCache with process-wide Redis connections (aegis/cache.py): under ASGI
        # Django makes a new cache object per request.
        "BACKEND": "aegis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "aegis",
    }
}
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        # redis-py 8 reads with a 5 s socket timeout by default: exactly channels_redis's 5 s
        # blocking pop, so an idle consumer's receive would time out and crash its socket.
        # aegis-hub.*: the live-event hubs' channels (aegis/realtime.py). A short queue: behind
        # it, a hub reads the Redis Stream instead of waiting for stale messages.
        "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 15, "socket_connect_timeout": 2}],
                   "prefix": "aegis:channels", "channel_capacity": {"aegis-hub.*": 10}},
    }
}

# --- Celery -----------------------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
# CELERY_BEAT_SCHEDULE: at the end of this file, with the settings its tasks read.

# --- Auth -------------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"
OTP_TOTP_ISSUER = "Aegis"

# Field encryption (channel secrets, TOTP keys). The first key encrypts; every key decrypts,
# so a new key is prepended, `rotate_encryption_key` re-encrypts, then the old one is dropped.
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])

# --- I18N / static ------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
STATIC_ROOT = Path(env("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))  # where collectstatic writes
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
# WhiteNoise's file responses are synchronous iterators, which Django under ASGI reads in a
# thread and warns about on every static file. Expected (the admin's assets are small), not a bug.
warnings.filterwarnings("ignore", message="StreamingHttpResponse must consume synchronous iterators")

# --- Logging: structured (JSON in production, readable in development) ----------------------------
LOG_LEVEL = env("LOG_LEVEL", default="INFO")
LOG_JSON = env.bool("LOG_JSON", default=True)


def build_logging(*, json_logs: bool, level: str) -> dict:
    """stdlib logging rendered by structlog: one JSON object per line, or readable console lines.

    dev.py calls this again with its own LOG_JSON, since a module-level dict would keep
    base.py's choice. Records from plain stdlib loggers (Django, Celery) get the same fields
    through `foreign_pre_chain`.
    """
    renderer = structlog.processors.JSONRenderer() if json_logs else structlog.dev.ConsoleRenderer(colors=False)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structured": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    # The console renderer prints tracebacks itself; JSON needs them as a string.
                    *([structlog.processors.format_exc_info] if json_logs else []),
                    renderer,
                ],
                "foreign_pre_chain": [
                    structlog.contextvars.merge_contextvars,
                    structlog.processors.TimeStamper(fmt="iso"),
                    structlog.stdlib.add_logger_name,
                    structlog.stdlib.add_log_level,
                ],
            },
        },
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
        "root": {"handlers": ["console"], "level": level},
    }


LOGGING = build_logging(json_logs=LOG_JSON, level=LOG_LEVEL)
DJANGO_STRUCTLOG_TRUST_UPSTREAM_REQUEST_ID = True  # aegis.api.middleware.RequestIdMiddleware vets it
structlog.configure(
    processors=[
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.filter_by_level,
        structlog.processors.TimeStamper(fmt="iso"),
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
    ],
    logger_factory=structlog.stdlib.LoggerFactory(),
    cache_logger_on_first_use=True,
)

# User.email is unique case-insensitively through a UniqueConstraint on Lower(email), which
# Django's check for a unique USERNAME_FIELD does not recognise.
SILENCED_SYSTEM_CHECKS = ["auth.E003"]

# --- Tenants --------------------------------------------------------------------------------------
TENANT_BASE_DOMAIN = env("TENANT_BASE_DOMAIN", default="tenants.localhost")
TENANT_DECOMMISSION_GRACE_DAYS = env.int("TENANT_DECOMMISSION_GRACE_DAYS", default=30)

from .api import *  # noqa: E402, F403

# --- Tenant runtimes (apps/tenants/runtime/) --------------------------------------------------------
RUNTIME_BACKEND = env("RUNTIME_BACKEND", default="local")
RUNTIME_DIR = Path(env("RUNTIME_DIR", default=str(BASE_DIR / ".data" / "runtimes")))
OPENCLAW_HOME = Path(env("OPENCLAW_HOME", default=str(BASE_DIR / ".data" / "openclaw")))
RUNTIME_PORT_RANGE = tuple(env.list("RUNTIME_PORT_RANGE", cast=int, default=[19100, 19999]))
RUNTIME_DOCKER_IMAGE = env("RUNTIME_DOCKER_IMAGE", default="ghcr.io/openclaw/openclaw:2026.9.6")
# Stopping a gateway: SIGTERM, then SIGKILL after this long (a gateway whose channels cannot reach
# their APIs otherwise drains for 325 s; see apps/agents/openclaw/README.md, Stopping).
RUNTIME_STOP_GRACE_SECONDS = env.float("RUNTIME_STOP_GRACE_SECONDS", default=15.0)

# --- Provisioning, monitoring and retention (apps/*/tasks.py; runbook: docs/operations.md) -----------------
from datetime import timedelta  # noqa: E402

from celery.schedules import crontab  # noqa: E402

# Off: provisioning and lifecycle changes leave runtimes alone and health checks skip them (the
# control plane without gateways). The test settings turn it off so that the suite starts a
# gateway only where a test asks for one: each takes about 1 GB and 10-20 s.
TENANT_RUNTIMES_ENABLED = env.bool("TENANT_RUNTIMES_ENABLED", default=True)
# A tenant still `provisioning` this long after its last change is failed by the sweep.
PROVISIONING_TIMEOUT = timedelta(minutes=env.int("PROVISIONING_TIMEOUT_MINUTES", default=15))
# How long provisioning and reactivation wait for a started gateway to answer its readiness probe.
RUNTIME_HEALTH_WAIT_SECONDS = env.int("RUNTIME_HEALTH_WAIT_SECONDS", default=120)
# Skill slugs every new tenant's Shared Toolbox starts with (newest approved version, no settings).
TENANT_DEFAULT_TOOLBOX = env.list("TENANT_DEFAULT_TOOLBOX", default=[])
HEALTH_CHECK_INTERVAL_SECONDS = env.int("HEALTH_CHECK_INTERVAL_SECONDS", default=60)
# Consecutive failed checks (unhealthy or unreachable) before a runtime.unhealthy alert opens.
HEALTH_FAILURE_THRESHOLD = env.int("HEALTH_FAILURE_THRESHOLD", default=3)
HEALTH_RETENTION_DAYS = env.int("HEALTH_RETENTION_DAYS", default=14)
ACTIVITY_RETENTION_DAYS = env.int("ACTIVITY_RETENTION_DAYS", default=90)
RETENTION_BATCH_SIZE = env.int("RETENTION_BATCH_SIZE", default=5000)
# Each hourly rollup recomputes this many hourly buckets back (events that arrive late) and the
# days they fall in.
METRICS_RECOMPUTE_HOURS = env.int("METRICS_RECOMPUTE_HOURS", default=3)
# Audit logs are never pruned (append-only, enforced by a trigger): there is no retention setting.

CELERY_BEAT_SCHEDULE = {
    "check-runtime-health": {
        "task": "apps.monitoring.tasks.check_runtimes",
        "schedule": float(HEALTH_CHECK_INTERVAL_SECONDS),
        # A check that waited longer than one interval in the queue is stale: the next one is due.
        "options": {"expires": float(HEALTH_CHECK_INTERVAL_SECONDS)},
    },
    "fail-stuck-provisioning": {"task": "apps.tenants.tasks.fail_stuck_provisioning", "schedule": 300.0},
    "purge-decommissioned": {"task": "apps.tenants.tasks.purge_decommissioned", "schedule": crontab(minute=20)},
    "rollup-agent-metrics": {"task": "apps.agents.tasks.rollup_metrics", "schedule": crontab(minute=5)},
    "prune-health-samples": {"task": "apps.monitoring.tasks.prune_health_samples",
                             "schedule": crontab(hour=3, minute=15)},
    "prune-agent-activity": {"task": "apps.agents.tasks.prune_activity", "schedule": crontab(hour=3, minute=30)},
}
