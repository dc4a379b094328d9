"""/ws/v1/activity/: a tenant's live events (agent activity, agent status, runtime health, the
tenant's own status), for that tenant's users only. Protocol: aegis.realtime."""

from __future__ import annotations

from rest_framework_simplejwt.tokens import AccessToken

from aegis import events
from aegis.api.exceptions import ErrorCode
from aegis.realtime import CLOSE_FORBIDDEN, EventStreamConsumer, Refusal
from apps.accounts.models import TENANT_ROLES

# Tenant events after which the tenant's sockets must not stay open.
CLOSING_EVENTS = {
    "tenant.suspended": (ErrorCode.TENANT_SUSPENDED, "This tenant has been suspended; contact support."),
    "tenant.decommissioned": (ErrorCode.TENANT_DECOMMISSIONED, "This tenant has been decommissioned."),
}


class ActivityConsumer(EventStreamConsumer):
    def stream_for(self, token: AccessToken) -> str:
        # Only the token's own tenant: there is no way to name another one.
        if token.get("role") not in TENANT_ROLES or not token.get("tid"):
            raise Refusal(CLOSE_FORBIDDEN, ErrorCode.PERMISSION_DENIED,
                          "This stream is for a tenant's users; platform admins use /ws/v1/platform/.")
        return events.tenant_stream(token["tid"])

    def closing_refusal(self, event_type: str) -> Refusal | None:
        if event_type in CLOSING_EVENTS:
            code, message = CLOSING_EVENTS[event_type]
            return Refusal(CLOSE_FORBIDDEN, code, message)
        return None
