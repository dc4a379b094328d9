"""Who is calling, and for which tenant. The tenant is the one bound to the credential (the
access token's `tid` claim or the API key's tenant), never a host name or header; the
database schema is switched to it here, for the rest of the request.

`request.user` is the User (or, for an API key, an `ApiKeyActor`); `request.auth` is an
`AuthContext` the permission layer and the views read.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from django.core.signals import setting_changed
from django.db import connection
from django.dispatch import receiver
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework_api_key.crypto import KeyGenerator
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import AccessToken
from rest_framework_simplejwt.utils import aware_utcnow

from aegis.api.exceptions import ApiError, ErrorCode
from aegis.precompiled import PrecompiledLookup
from apps.accounts.models import ApiKey, TeamMember, User
from apps.tenants.models import Tenant

API_KEY_GENERATOR = KeyGenerator(prefix_length=8, secret_key_length=32)
# The active user a token names, with its tenant and membership: one query, compiled once per
# process (aegis/precompiled.py: compiling it cost more than running it, on every request).
ACTIVE_USER = PrecompiledLookup(
    lambda pk: User.objects.select_related("tenant", "membership").filter(pk=pk, is_active=True),
    field=User._meta.pk, sample=uuid.UUID(int=0))
LAST_USED_RESOLUTION = timedelta(minutes=1)  # last_used_at is written at most this often


@dataclass(frozen=True)
class AuthContext:
    role: str  # a Role value, or "api_key"
    tenant: Tenant | None
    actor: User | ApiKey  # who the audit trail names
    scopes: frozenset[str] = field(default_factory=frozenset)
    mfa_verified: bool = False

    @property
    def is_api_key(self) -> bool:
        return isinstance(self.actor, ApiKey)


@dataclass(frozen=True)
class ApiKeyActor:
    """Stands in for request.user when an API key calls."""

    api_key: ApiKey
    is_authenticated: bool = True
    is_active: bool = True

    @property
    def pk(self):
        return self.api_key.pk


def bind_tenant(tenant: Tenant | None) -> None:
    """Refuse a tenant that may not be served, then switch to its schema when it has one."""
    if tenant is None:
        connection.set_schema_to_public()
        return
    if tenant.status == Tenant.Status.SUSPENDED:
        raise ApiError(403, ErrorCode.TENANT_SUSPENDED, "This tenant is suspended; contact support.",
                       {"reason": tenant.status_reason})
    if tenant.status == Tenant.Status.DECOMMISSIONED:
        raise ApiError(403, ErrorCode.TENANT_DECOMMISSIONED, "This tenant has been decommissioned.")
    if tenant.status == Tenant.Status.ACTIVE:
        connection.set_tenant(tenant)
    else:  # provisioning or failed: no schema to switch to yet (see AccessPolicy)
        connection.set_schema_to_public()


@functools.lru_cache(maxsize=4096)
def _decoded_access_token(raw: str) -> AccessToken:
    return AccessToken(raw)  # signature, expiry and token type checked; raises TokenError


def verified_access_token(raw: str) -> AccessToken:
    """`AccessToken(raw)`, with the signature of a token string verified once per process: a client
    sends the same token on every request for its lifetime, and decoding it cost a quarter of
    authentication's CPU (docs/performance.md). The expiry is checked again on every use; a token
    with a not-before claim (simplejwt issues none) is never reused. The cache is keyed by the whole
    token string (a forged or altered token is a new key, verified and refused), and emptied when
    the signing settings change."""
    token = _decoded_access_token(raw)
    if "nbf" in token.payload:
        return AccessToken(raw)
    token.check_exp(current_time=aware_utcnow())
    return token


@receiver(setting_changed)
def _forget_verified_tokens(*, setting, **kwargs) -> None:
    if setting in ("SIMPLE_JWT", "SECRET_KEY"):
        _decoded_access_token.cache_clear()


def _credentials(request, keyword: bytes) -> bytes | None:
    """What follows `keyword` (lower case) in the Authorization header; None when the header is
    absent or names another scheme, which leaves the request to the next authentication class."""
    parts = get_authorization_header(request).split()
    if not parts or parts[0].lower() != keyword:
        return None
    if len(parts) != 2:
        raise exceptions.AuthenticationFailed("Malformed Authorization header.", code="token_invalid")
    return parts[1]


def issue_access_token(user: User, *, mfa_verified: bool) -> AccessToken:
    token = AccessToken.for_user(user)
    token["role"] = user.role
    token["tid"] = str(user.tenant_id) if user.tenant_id else None
    token["mfa"] = mfa_verified
    return token


class AccessTokenAuthentication(BaseAuthentication):
    """`Authorization: Bearer <access JWT>` (simplejwt)."""

    keyword = b"bearer"

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'

    def authenticate(self, request):
        raw = _credentials(request, self.keyword)
        if raw is None:
            return None
        try:
            token = verified_access_token(raw.decode())
        except (TokenError, UnicodeDecodeError) as exc:
            raise exceptions.AuthenticationFailed("The access token is invalid or expired.",
                                                  code="token_invalid") from exc
        user = ACTIVE_USER.first(token.get("sub"))
        if user is None or user.role != token.get("role") or str(user.tenant_id or "") != str(token.get("tid") or ""):
            # Deactivated, or role/tenant changed since the token was issued: make them sign in again.
            raise exceptions.AuthenticationFailed("The access token no longer matches the account.",
                                                  code="token_invalid")
        membership = getattr(user, "membership", None) if user.tenant_id else None
        if membership is not None and membership.status == TeamMember.Status.SUSPENDED:
            raise ApiError(403, ErrorCode.PERMISSION_DENIED, "Your membership of this tenant is suspended.")
        bind_tenant(user.tenant)
        context = AuthContext(role=user.role, tenant=user.tenant, actor=user, mfa_verified=bool(token.get("mfa")))
        return user, context


class ApiKeyAuthentication(BaseAuthentication):
    """`Authorization: Api-Key <prefix>.<secret>`: acts as the key's tenant, limited to its scopes."""

    keyword = b"api-key"

    def authenticate(self, request):
        raw = _credentials(request, self.keyword)
        if raw is None:
            return None
        raw_key = raw.decode(errors="replace")
        prefix, _, _secret = raw_key.partition(".")
        key = ApiKey.objects.select_related("tenant").filter(prefix=prefix).first()
        now = timezone.now()
        if (key is None or not API_KEY_GENERATOR.verify(raw_key, key.hashed_key) or key.revoked_at is not None
                or (key.expires_at is not None and key.expires_at <= now)):
            raise exceptions.AuthenticationFailed("The API key is invalid, revoked or expired.",
                                                  code="authentication_failed")
        bind_tenant(key.tenant)
        if key.last_used_at is None or key.last_used_at < now - LAST_USED_RESOLUTION:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        context = AuthContext(role="api_key", tenant=key.tenant, actor=key, scopes=frozenset(key.scopes))
        return ApiKeyActor(key), context

