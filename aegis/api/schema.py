"""The OpenAPI side of the API's conventions, shared by every endpoint.

Endpoint authors declare the errors an operation can give next to its success response:

    @extend_schema(summary="Invite a person", request=InviteCreate,
                   responses={201: Invite, **errors(400, 409)})

    @extend_schema(summary="Change a member's role",
                   responses={200: Member, 409: error_response(409, ErrorCode.LAST_ADMIN)})

On top of what a view declares, `AegisAutoSchema` (DRF's DEFAULT_SCHEMA_CLASS) adds the errors
the shared machinery gives, read from the view itself: 401/403 from authentication and the
`access` rules, 409 TENANT_NOT_READY for rules that need the tenant's schema, 404 for paths with
ids and for paginated lists, 400/413/415 for operations with a body, 429 from throttles. It
also sets each operation's security requirement and `x-aegis-access` (who may call it) from the
same `access` rules, which `docs/api-contract.md`'s endpoint table is generated from.

Request bodies of a `StrictSerializer` (which refuses unknown and read-only fields with 400
VALIDATION_ERROR) say so: their request components have `additionalProperties: false`
(`StrictSerializerSchema`). Response components, and request bodies of other serializers, do not.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.pagination import CursorPagination

from aegis.api.exceptions import ErrorCode
from aegis.api.permissions import AccessPolicy, Rule, rule_for
from aegis.api.views import TenantScopedViewSet
from apps.accounts.models import Role

# --- Error codes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErrorCodeDoc:
    status: int
    meaning: str


# Every ErrorCode with its HTTP status and what it means (the table in docs/api-contract.md is
# generated from this; tests/api/test_openapi.py checks it covers every code and that each code
# raised in the source uses the status given here).
ERROR_CODES: dict[str, ErrorCodeDoc] = {
    ErrorCode.VALIDATION_ERROR: ErrorCodeDoc(
        400, "The body or query parameters are invalid. `details` maps each field (camelCase, dotted for "
             "nested fields, `nonFieldErrors` for the object as a whole) to a list of messages."),
    ErrorCode.MALFORMED_REQUEST: ErrorCodeDoc(400, "The body is not valid JSON, or the request is malformed."),
    ErrorCode.NOT_AUTHENTICATED: ErrorCodeDoc(401, "No credential was sent to an endpoint that needs one."),
    ErrorCode.AUTHENTICATION_FAILED: ErrorCodeDoc(
        401, "The credential was refused: an API key that is unknown, revoked or expired."),
    ErrorCode.INVALID_CREDENTIALS: ErrorCodeDoc(
        401, "Wrong email or password (the same answer whether or not the account exists)."),
    ErrorCode.TOKEN_INVALID: ErrorCodeDoc(
        401, "An access, refresh or MFA token that is malformed, expired, revoked or no longer matches the "
             "account (role or tenant changed, account deactivated): sign in again."),
    ErrorCode.TOKEN_REUSED: ErrorCodeDoc(
        401, "A refresh token that was already rotated was used again: its whole session family is revoked."),
    ErrorCode.ACCOUNT_LOCKED: ErrorCodeDoc(
        403, "Too many failed sign-in attempts: the account is locked for a period."),
    ErrorCode.MFA_REQUIRED: ErrorCodeDoc(
        403, "Platform endpoints need a session whose access token was issued after a TOTP check."),
    ErrorCode.MFA_INVALID: ErrorCodeDoc(401, "The TOTP code or recovery code is wrong or already used."),
    ErrorCode.PERMISSION_DENIED: ErrorCodeDoc(
        403, "The caller's role, API-key scope or membership status does not allow this action."),
    ErrorCode.TENANT_SUSPENDED: ErrorCodeDoc(
        403, "The credential's tenant is suspended; `details.reason` says why. Every call is refused."),
    ErrorCode.TENANT_DECOMMISSIONED: ErrorCodeDoc(403, "The credential's tenant has been decommissioned."),
    ErrorCode.NOT_FOUND: ErrorCodeDoc(
        404, "No such endpoint, or no such object for this caller (another tenant's ids are not found)."),
    ErrorCode.METHOD_NOT_ALLOWED: ErrorCodeDoc(405, "The endpoint exists but not with this HTTP method."),
    ErrorCode.NOT_ACCEPTABLE: ErrorCodeDoc(406, "The `Accept` header asks for a media type other than JSON."),
    ErrorCode.CONFLICT: ErrorCodeDoc(
        409, "The request clashes with existing data (a duplicate name or email, a live invite, a race)."),
    ErrorCode.TENANT_NOT_READY: ErrorCodeDoc(
        409, "The tenant is still provisioning (or failed to): endpoints that need its workspace refuse."),
    ErrorCode.LAST_ADMIN: ErrorCodeDoc(
        409, "The change would leave the tenant without an active tenant_admin."),
    ErrorCode.LIMIT_REACHED: ErrorCodeDoc(
        409, "A plan or resource limit would be exceeded (e.g. the plan's number of agents)."),
    ErrorCode.INVALID_STATE: ErrorCodeDoc(
        409, "The object is not in a state that allows this transition (e.g. resolving a resolved alert)."),
    ErrorCode.PRECONDITION_FAILED: ErrorCodeDoc(
        412, "The object changed since the caller read it (stale `If-Match`): re-read and retry."),
    ErrorCode.PAYLOAD_TOO_LARGE: ErrorCodeDoc(
        413, "The body is larger than the configured limit; `details.maxBytes` gives it."),
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: ErrorCodeDoc(415, "The body is not `application/json`."),
    ErrorCode.UNPROCESSABLE: ErrorCodeDoc(
        422, "The request is well-formed and valid field by field but cannot be carried out as a whole."),
    ErrorCode.RATE_LIMITED: ErrorCodeDoc(
        429, "Too many requests: wait for the `Retry-After` header's seconds (also in "
             "`details.retryAfterSeconds`)."),
    ErrorCode.INTERNAL_ERROR: ErrorCodeDoc(
        500, "An unexpected server error; no stack trace is ever returned. Quote `requestId` to support."),
    ErrorCode.SERVICE_UNAVAILABLE: ErrorCodeDoc(503, "A dependency (database, Redis, broker) is unavailable."),
}

ERROR_CODE_VALUES: list[str] = [value for name, value in vars(ErrorCode).items() if name.isupper()]

# What an error status means when an operation gives it (the response's description).
STATUS_DESCRIPTIONS: dict[int, str] = {
    400: "Invalid request",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    412: "Precondition failed",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Unprocessable request",
    429: "Rate limited",
    500: "Internal error",
    503: "Service unavailable",
}


class ErrorBodySerializer(serializers.Serializer):
    code = serializers.ChoiceField(
        choices=[(code, code) for code in ERROR_CODE_VALUES],
        help_text="Stable machine-readable code; see docs/api-contract.md for each code's meaning.")
    message = serializers.CharField(help_text="Human-readable explanation; may change, do not parse it.")
    details = serializers.DictField(
        help_text="Structured context. For VALIDATION_ERROR: field name -> list of messages.")
    request_id = serializers.CharField(
        allow_blank=True, help_text="The request's id, also in the `X-Request-ID` response header.")

    class Meta:
        ref_name = "ErrorBody"


class ErrorResponseSerializer(serializers.Serializer):
    """The one shape of every error on /api/."""

    error = ErrorBodySerializer()

    class Meta:
        ref_name = "ErrorResponse"


def _status_text(status: int, codes) -> str:
    """An error response's description: what the status means, then the codes it gives, if named."""
    text = STATUS_DESCRIPTIONS[status]
    return f"{text}: {', '.join(f'`{code}`' for code in codes)}" if codes else text


def error_response(status: int, *codes: str, description: str | None = None) -> OpenApiResponse:
    """One documented error response; `codes` name the ErrorCodes it gives, for the description."""
    if status not in STATUS_DESCRIPTIONS:
        raise ValueError(f"{status} is not an error status of this API")
    unknown = [code for code in codes if code not in ERROR_CODES]
    if unknown:
        raise ValueError(f"unknown error codes {unknown}; add them to ErrorCode and aegis.api.schema.ERROR_CODES")
    return OpenApiResponse(response=ErrorResponseSerializer, description=description or _status_text(status, codes))


def errors(*statuses: int) -> dict[int, OpenApiResponse]:
    """`responses={200: Thing, **errors(400, 404, 409)}`: the error statuses an operation gives."""
    return {status: error_response(status) for status in statuses}


# --- Security schemes ----------------------------------------------------------------------------

BEARER_SCHEME = "BearerAuth"
API_KEY_SCHEME = "ApiKeyAuth"


def access_rule(auto_schema) -> tuple[bool, Rule | None]:
    """(whether the view uses AccessPolicy, the rule for this operation) for a view being documented."""
    view = auto_schema.view
    uses_policy = any(isinstance(permission, AccessPolicy) for permission in view.get_permissions())
    return uses_policy, rule_for(view, auto_schema.method)


class AccessTokenScheme(OpenApiAuthenticationExtension):
    target_class = "aegis.api.authentication.AccessTokenAuthentication"
    name = BEARER_SCHEME

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "An access token from `POST /api/v1/auth/login` (or `mfa/verify`, `refresh`): "
                           "`Authorization: Bearer <token>`. Claims: `sub` (user id), `role`, `tid` (tenant id, "
                           "null for platform admins), `mfa` (TOTP verified in this session).",
        }

    def get_security_requirement(self, auto_schema):
        uses_policy, rule = access_rule(auto_schema)
        if not uses_policy:
            return {self.name: []}
        if rule is not None and rule.anonymous:
            return [{}]  # no credential needed
        if rule is not None and not rule.roles:
            return []  # API keys only
        return {self.name: []}


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "aegis.api.authentication.ApiKeyAuthentication"
    name = API_KEY_SCHEME

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <prefix>.<secret>`: a tenant API key, limited to its scopes "
                           "(each operation's `x-aegis-access.apiKeyScope`).",
        }

    def get_security_requirement(self, auto_schema):
        uses_policy, rule = access_rule(auto_schema)
        if not uses_policy:
            return {self.name: []}
        if rule is None or rule.anonymous or rule.scope is None:
            return []
        return {self.name: []}


# --- Strict request bodies -----------------------------------------------------------------------


class StrictSerializerSchema(OpenApiSerializerExtension):
    """A StrictSerializer's request component: `additionalProperties: false`, as the server refuses
    any field it does not list (unknown or read-only: 400 VALIDATION_ERROR). Only the request
    direction: with COMPONENT_SPLIT_REQUEST the request component (`...Request`, `Patched...Request`)
    is separate from the response one, which stays open (clients must tolerate new response fields).
    The properties are still camelised afterwards by the camel-case postprocessing hook."""

    target_class = "aegis.api.serializers.StrictSerializer"
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        if direction == "request":
            schema["additionalProperties"] = False
        return schema


# --- The schema class ----------------------------------------------------------------------------


def describe_access(uses_policy: bool, rule: Rule | None) -> dict:
    """The `x-aegis-access` extension: who may call an operation."""
    if not uses_policy:
        return {"policy": "custom"}
    if rule is None:
        return {"anonymous": False, "roles": [], "apiKeyScope": None, "nobody": True}
    if rule.anonymous:
        return {"anonymous": True}
    access = {
        "anonymous": False,
        "roles": [role for role in Role.values if role in rule.roles],
        "apiKeyScope": rule.scope,
    }
    if Role.PLATFORM_ADMIN in rule.roles:
        access["mfaVerified"] = True  # platform admins need a TOTP-verified session (AccessPolicy)
    if rule.needs_tenant_schema:
        access["tenantReady"] = True
    return access


def access_sentence(access: dict) -> str:
    """`x-aegis-access` in words (operation descriptions, the contract's endpoint table)."""
    if access.get("policy") == "custom":
        return "Custom permission classes (see the view)."
    if access.get("nobody"):
        return "Nobody: the view declares no access rule for this action."
    if access.get("anonymous"):
        return "Anyone; no credential needed."
    parts = []
    roles = access.get("roles", [])
    if roles:
        parts.append(", ".join(f"`{role}`" + (" (TOTP-verified)" if role == Role.PLATFORM_ADMIN else "")
                               for role in roles))
    scope = access.get("apiKeyScope")
    parts.append(f"API keys with `{scope}`" if scope else "no API keys")
    sentence = "; ".join(parts) + "."
    if access.get("tenantReady"):
        sentence += " 409 `TENANT_NOT_READY` until the tenant is provisioned."
    return sentence


class AegisAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema plus this API's conventions (see the module docstring)."""

    def _docstring_summary(self) -> str | None:
        action = getattr(self.view, getattr(self.view, "action", None) or self.method.lower(), None)
        func = getattr(action, "__func__", action)
        if func is None or getattr(func, "__module__", "rest_framework").startswith("rest_framework"):
            return None  # DRF's generic actions: their docstrings describe nothing
        doc = (inspect.getdoc(func) or "").strip()
        return doc.split("\n", 1)[0].strip().rstrip(".") or None

    def get_summary(self):
        """An explicit `extend_schema(summary=...)` wins; else the first line of the action's own docstring."""
        return self._docstring_summary()

    def get_description(self):
        """The docstring, less its first line when that became the summary."""
        description = super().get_description() or ""
        summary = self.get_summary()
        if summary and summary == self._docstring_summary() and description.startswith(summary):
            description = description.split("\n", 1)[1].strip() if "\n" in description else ""
        return description

    def get_paginated_name(self, serializer_name: str) -> str:
        """Feeds (cursor pagination) have their own list shape, so their own component name."""
        if isinstance(self._get_paginator(), CursorPagination):
            return f"CursorPaginated{serializer_name}List"
        return super().get_paginated_name(serializer_name)

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        uses_policy, rule = access_rule(self)
        access = describe_access(uses_policy, rule)
        operation["x-aegis-access"] = access
        who = f"**Who may call:** {access_sentence(access)}"
        operation["description"] = f"{operation['description']}\n\n{who}" if operation.get("description") else who

        responses = operation["responses"]
        for status, codes in self.implied_errors(operation, uses_policy, rule).items():
            if str(status) not in responses:
                responses[str(status)] = self._error_response_object(status, codes)
        for status, response in responses.items():
            if status == "429":
                response.setdefault("headers", {})["Retry-After"] = {
                    "schema": {"type": "integer"},
                    "description": "Seconds to wait before retrying.",
                }
        operation["responses"] = {status: responses[status] for status in sorted(responses)}
        return operation

    def implied_errors(self, operation: dict, uses_policy: bool, rule: Rule | None) -> dict[int, list[str]]:
        """The errors the shared machinery can give for this operation, status -> codes."""
        implied: dict[int, list[str]] = {}

        def add(status: int, *codes: str) -> None:
            implied.setdefault(status, [])
            implied[status] += [code for code in codes if code not in implied[status]]

        if "requestBody" in operation:
            add(400, ErrorCode.VALIDATION_ERROR, ErrorCode.MALFORMED_REQUEST)
            add(415, ErrorCode.UNSUPPORTED_MEDIA_TYPE)
        if any(parameter.get("in") == "query" for parameter in operation.get("parameters", [])):
            add(400, ErrorCode.VALIDATION_ERROR)
        if self.method in ("POST", "PUT", "PATCH"):
            add(413, ErrorCode.PAYLOAD_TOO_LARGE)

        if self.view.get_authenticators():
            # A credential that is sent is always checked, then its tenant: even on anonymous endpoints.
            add(401, ErrorCode.AUTHENTICATION_FAILED, ErrorCode.TOKEN_INVALID)
            add(403, ErrorCode.TENANT_SUSPENDED, ErrorCode.TENANT_DECOMMISSIONED, ErrorCode.PERMISSION_DENIED)
        if uses_policy:
            if rule is None or not rule.anonymous:
                add(401, ErrorCode.NOT_AUTHENTICATED)
                add(403, ErrorCode.PERMISSION_DENIED)
            if rule is not None and Role.PLATFORM_ADMIN in rule.roles:
                add(403, ErrorCode.MFA_REQUIRED)
            if rule is not None and rule.needs_tenant_schema:
                add(409, ErrorCode.TENANT_NOT_READY)
        elif self.view.get_permissions():
            add(401, ErrorCode.NOT_AUTHENTICATED)
            add(403, ErrorCode.PERMISSION_DENIED)

        if "{" in self.path or isinstance(self.view, TenantScopedViewSet):
            add(404, ErrorCode.NOT_FOUND)  # (a tenant-scoped view is 404 to a caller without a tenant)
        if self.method == "GET" and self._is_list_view() and self._get_paginator():
            add(404, ErrorCode.NOT_FOUND)  # a page or cursor that does not exist
        if self.view.get_throttles():
            add(429, ErrorCode.RATE_LIMITED)
        return implied

    def _error_response_object(self, status: int, codes: list[str]) -> dict:
        component = self.resolve_serializer(ErrorResponseSerializer, "response")
        return {"description": _status_text(status, codes), "content": {"application/json": {"schema": component.ref}}}
