"""Rate limits (DRF throttles on the Redis cache). Refusals are 429 RATE_LIMITED with Retry-After."""

import hashlib

from rest_framework.throttling import SimpleRateThrottle


class PrincipalRateThrottle(SimpleRateThrottle):
    """Per API key (each key has its own per-minute limit), else per user, else per IP."""

    scope = "principal"

    def allow_request(self, request, view):
        context = getattr(request, "auth", None)
        if context is not None and getattr(context, "is_api_key", False):
            self.num_requests, self.duration = context.actor.rate_limit_per_minute, 60
        return super().allow_request(request, view)

    def get_cache_key(self, request, view):
        context = getattr(request, "auth", None)
        if context is not None and getattr(context, "is_api_key", False):
            ident = f"key:{context.actor.pk}"
        elif context is not None:
            ident = f"user:{context.actor.pk}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class LoginIPThrottle(SimpleRateThrottle):
    """Credential-guessing endpoints, per client IP."""

    scope = "login_ip"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class LoginAccountThrottle(SimpleRateThrottle):
    """Credential-guessing endpoints, per targeted account (whatever IPs the attempts come from)."""

    scope = "login_account"
    identity_field = "email"

    def get_cache_key(self, request, view):
        identity = request.data.get(self.identity_field) if hasattr(request.data, "get") else None
        if not isinstance(identity, str) or not identity.strip():
            return None
        # Hashed: a body value is no safe cache key as it is (any length, any characters).
        digest = hashlib.sha256(identity.strip().lower().encode()).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": digest}
