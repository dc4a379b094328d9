"""Rate limits (DRF throttles on the Redis cache). Refusals are 429 RATE_LIMITED with Retry-After."""

import abc
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


def body_value(request, field: str) -> str | None:
    """A non-blank string field of the body, stripped and lower-cased: an account to throttle on."""
    value = request.data.get(field) if hasattr(request.data, "get") else None
    return value.strip().lower() if isinstance(value, str) and value.strip() else None


class AccountThrottle(SimpleRateThrottle, abc.ABC):
    """Credential-guessing endpoints, per targeted account (whatever IPs the attempts come from).

    Every subclass shares the `login_account` rate and keeps its own `bucket` per account, named by
    `ident(request)` (None: not throttled here). LoginIPThrottle adds the per-IP limit.
    """

    scope = "login_account"
    bucket = ""

    @abc.abstractmethod
    def ident(self, request) -> str | None:
        """Who this request targets (None: not throttled here)."""

    def get_cache_key(self, request, view):
        ident = self.ident(request)
        if ident is None:
            return None
        digest = hashlib.sha256(ident.encode()).hexdigest()  # body values are not safe cache keys as they are
        return self.cache_format % {"scope": self.scope, "ident": f"{self.bucket}:{digest}"}


class LoginAccountThrottle(AccountThrottle):
    """login, per e-mail address."""

    bucket = "login"

    def ident(self, request):
        return body_value(request, "email")
