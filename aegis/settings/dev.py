"""Local development: `make run`."""

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env("SECRET_KEY", default="dev-only-insecure-secret-key-change-me-please-0123456789")
# A fixed development key so `make run` data stays readable across restarts. Never used in prod.
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=["ZGV2LW9ubHktZmllbGQta2V5LW5vdC1mb3ItcHJvZCE="])
ALLOWED_HOSTS = ["*"]
LOG_JSON = env.bool("LOG_JSON", default=False)
LOGGING = build_logging(json_logs=LOG_JSON, level=LOG_LEVEL)  # noqa: F405
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
# uvicorn serves no static files: WhiteNoise serves them straight from the apps' static/
# folders (no collectstatic in development) and picks up edits without a restart.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
