"""The test suite: real PostgreSQL and Redis, fast password hashing."""

from .dev import *  # noqa: F403

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CELERY_TASK_ALWAYS_EAGER = True
CACHES = {
    "default": {
        "BACKEND": "aegis.cache.RedisCache",
        "LOCATION": REDIS_URL,  # noqa: F405
        # Per test database, so concurrent runs on one Redis keep separate rate-limit counters.
        "KEY_PREFIX": "aegis-" + (env("DATABASE_TEST_NAME", default=None) or "test"),  # noqa: F405
    }
}
# Provisioning and lifecycle tests mock the runtime boundary; a test that wants a real gateway
# turns this on for itself (each gateway takes about 1 GB and 10-20 s to start).
TENANT_RUNTIMES_ENABLED = False
# Live events and channel-layer groups per test database as well, so concurrent runs (and a dev
# server) on one Redis never receive each other's events (aegis/events.py).
_RUN = env("DATABASE_TEST_NAME", default=None) or "test"  # noqa: F405
CHANNEL_LAYERS = {"default": {**CHANNEL_LAYERS["default"],  # noqa: F405
                              "CONFIG": {**CHANNEL_LAYERS["default"]["CONFIG"], "prefix": f"aegis-{_RUN}:channels"}}}  # noqa: F405
EVENTS_STREAM_PREFIX = f"aegis-{_RUN}:events"
EVENTS_STREAM_TTL = 3600
