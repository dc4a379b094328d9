"""/ws/v1/platform/: the platform's live events (tenant status changes, alerts, runtime health
of every tenant), for platform admins who signed in with their second factor. Protocol:
aegis.realtime."""

from __future__ import annotations

from rest_framework_simplejwt.tokens import AccessToken

from aegis import events
from aegis.api.exceptions import ErrorCode
from aegis.realtime import CLOSE_FORBIDDEN, EventStreamConsumer, Refusal
from apps.accounts.models import Role


class PlatformConsumer(EventStreamConsumer):
    def stream_for(self, token: AccessToken) -> str:
        if token.get("role") != Role.PLATFORM_ADMIN:
            raise Refusal(CLOSE_FORBIDDEN, ErrorCode.PERMISSION_DENIED, "This stream is for platform admins.")
        if not token.get("mfa"):
            # As for the platform REST API: a platform session without the second factor sees nothing.
            raise Refusal(CLOSE_FORBIDDEN, ErrorCode.MFA_REQUIRED,
                          "Sign in with your second factor to follow the platform stream.")
        return events.PLATFORM_STREAM
