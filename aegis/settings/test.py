"""The test suite: real PostgreSQL and Redis, fast password hashing."""

from .dev import *  # noqa: F403

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CELERY_TASK_ALWAYS_EAGER = True
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,  # noqa: F405
        # Per test database, so concurrent runs on one Redis keep separate rate-limit counters.
        "KEY_PREFIX": "aegis-" + (env("DATABASE_TEST_NAME", default=None) or "test"),  # noqa: F405
    }
}
