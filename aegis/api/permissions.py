"""One permission layer for the whole API.

Each view declares, in one place, who may call each of its actions:

    access = {
        "list": members(scope="team:read"),
        "partial_update": admins(scope="team:write"),
    }

Keys are viewset actions (`list`, `retrieve`, `create`, custom `@action` names) or, on a
plain APIView, lower-case HTTP methods. An action with no rule is refused: forgetting to
declare access fails closed.
"""

from __future__ import annotations

from dataclasses import dataclass

from rest_framework import exceptions
from rest_framework.permissions import BasePermission

from aegis.api.exceptions import ApiError, ErrorCode
from apps.accounts.models import Role
from apps.tenants.models import Tenant

TENANT_ROLES = frozenset({Role.TENANT_ADMIN, Role.TENANT_MEMBER})

# Every scope an API key may hold. Keys act for their tenant, never as platform admins.
API_KEY_SCOPES = {
    "agents:read": "Read agents, their configuration, channels and skills",
    "agents:write": "Create, change, pause and delete agents, channels and skill installs",
    "activity:read": "Read agent activity and metrics",
    "skills:read": "Browse the skill marketplace and the Shared Toolbox",
    "skills:write": "Change the Shared Toolbox and submit skills",
    "team:read": "Read team members and invites",
    "team:write": "Invite, change and remove team members",
    "audit:read": "Read this tenant's audit log",
    "tenant:read": "Read the tenant profile, usage and dashboard",
    "tenant:write": "Change the tenant profile and role overrides",
}


@dataclass(frozen=True)
class Rule:
    roles: frozenset[str] = frozenset()
    scope: str | None = None  # API keys holding this scope may call; None: keys may not
    anonymous: bool = False
    needs_tenant_schema: bool = False  # 409 TENANT_NOT_READY until the tenant is provisioned


def anyone() -> Rule:
    return Rule(anonymous=True)


def signed_in() -> Rule:
    """Any person with a valid access token (not API keys)."""
    return Rule(roles=frozenset(Role.values))


def members(scope: str | None = None, *, tenant_schema: bool = False) -> Rule:
    return Rule(roles=TENANT_ROLES, scope=scope, needs_tenant_schema=tenant_schema)


def admins(scope: str | None = None, *, tenant_schema: bool = False) -> Rule:
    return Rule(roles=frozenset({Role.TENANT_ADMIN}), scope=scope, needs_tenant_schema=tenant_schema)


def platform() -> Rule:
    """Platform admins whose token was issued after a TOTP check."""
    return Rule(roles=frozenset({Role.PLATFORM_ADMIN}))


def rule_for(view, method: str) -> Rule | None:
    """The view's rule for a request with this HTTP method (AccessPolicy, and the OpenAPI schema)."""
    action = getattr(view, "action", None) or method.lower()
    if action == "head":
        action = "get"
    return getattr(view, "access", {}).get(action)


class AccessPolicy(BasePermission):
    def has_permission(self, request, view) -> bool:
        rule = rule_for(view, request.method)
        if rule is None:
            method = request.method.lower()
            if method not in view.http_method_names or not hasattr(view, method):
                # No handler for this method (a viewset binds only its mapped ones): 405 for everyone,
                # as the contract says, not the 403 of "no access rule" (the credential is checked first).
                # Only asked here: every method that has a rule has a handler.
                raise exceptions.MethodNotAllowed(request.method)
            return False
        if rule.anonymous:
            return True
        context = request.auth
        if context is None:
            raise exceptions.NotAuthenticated()
        if context.is_api_key:
            if rule.scope is None or rule.scope not in context.scopes:
                needed = rule.scope or "not available to API keys"
                raise ApiError(403, ErrorCode.PERMISSION_DENIED, f"This API key lacks the scope it needs ({needed}).")
        elif context.role not in rule.roles:
            return False
        elif context.role == Role.PLATFORM_ADMIN and not context.mfa_verified:
            raise ApiError(403, ErrorCode.MFA_REQUIRED, "Platform endpoints need a session verified with TOTP.")
        if rule.needs_tenant_schema and context.tenant is not None and context.tenant.status != Tenant.Status.ACTIVE:
            raise ApiError(409, ErrorCode.TENANT_NOT_READY,
                           f"The tenant is {context.tenant.status}; its workspace is not ready yet.")
        return True
