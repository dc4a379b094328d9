"""Production: every secret must come from the environment; safe defaults everywhere."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import env

DEBUG = False
SECRET_KEY = env("SECRET_KEY")
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS")
if len(SECRET_KEY) < 50 or not FIELD_ENCRYPTION_KEYS:
    raise ImproperlyConfigured("SECRET_KEY (50+ chars) and FIELD_ENCRYPTION_KEYS are required in production")

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# Outgoing e-mail (invites, password resets): EMAIL_URL, e.g. smtp+tls://user:password@smtp.example.com:587.
vars().update(env.email_url("EMAIL_URL", default="smtp://localhost:25"))

# Channel verification asks Slack / Telegram whether a token works (apps/agents/verifiers.py);
# elsewhere the offline format check is the default.
CHANNEL_VERIFIER = env("CHANNEL_VERIFIER", default="http")
