"""Team members, invitations and API keys of the caller's tenant. Thin: the rules live in
apps.accounts.services, the reads in apps.accounts.selectors; each viewset declares its
access in one place, and TenantScopedViewSet makes another tenant's ids 404."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.response import Response

from aegis.api.exceptions import ErrorCode
from aegis.api.permissions import admins, members
from aegis.api.schema import error_response
from aegis.api.views import TenantScopedViewSet
from apps.accounts import selectors, services
from apps.accounts.api.team_serializers import (
    ApiKeyCreatedSerializer,
    ApiKeyCreateSerializer,
    ApiKeyFilterSerializer,
    ApiKeySerializer,
    InviteCreateSerializer,
    InviteFilterSerializer,
    InviteSerializer,
    TeamFilterSerializer,
    TeamMemberSerializer,
    TeamMemberUpdateSerializer,
    validated,
)
from apps.accounts.models import ApiKey, TeamInvite, TeamMember

UUID_PATH = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"

# 401/403/404/429 (and 400 for bodies and query parameters) are added by AegisAutoSchema from
# the view's access rules, path and throttles; these are the domain's own errors.
_RANK_403 = error_response(403, ErrorCode.PERMISSION_DENIED,
                           description="Forbidden: `PERMISSION_DENIED` (role or scope, or the target outranks "
                                       "the caller: nobody grants a role above their own; API keys rank as members)")
_LAST_ADMIN_409 = error_response(409, ErrorCode.LAST_ADMIN)
_MAIL_503 = error_response(503, ErrorCode.SERVICE_UNAVAILABLE,
                           description="Service unavailable: `SERVICE_UNAVAILABLE`, the e-mail could not be sent "
                                       "(nothing was changed)")


@extend_schema_view(
    list=extend_schema(summary="List team members", tags=["team"], parameters=[TeamFilterSerializer],
                       description="The tenant's members with their role, status and inviter; search by name or "
                                   "e-mail, filter by role and status.",
                       responses={200: TeamMemberSerializer(many=True)}),
    retrieve=extend_schema(summary="Get a team member", tags=["team"], description="One member of the tenant.",
                           responses={200: TeamMemberSerializer}),
    partial_update=extend_schema(
        summary="Change a member's role or status",
        description="Suspending a member ends their sessions. Nobody may grant a role above their own or change "
                    "someone who outranks them (API keys rank as members). The last active tenant_admin cannot be "
                    "demoted or suspended (409 LAST_ADMIN).",
        tags=["team"], request=TeamMemberUpdateSerializer,
        responses={200: TeamMemberSerializer, 403: _RANK_403, 409: _LAST_ADMIN_409},
        examples=[OpenApiExample("Demote to member", value={"role": "tenant_member"}, request_only=True),
                  OpenApiExample("Suspend", value={"status": "suspended"}, request_only=True)],
    ),
    destroy=extend_schema(
        summary="Remove a member",
        description="Deletes the membership, deactivates the user's account and revokes all their sessions. "
                    "The last active tenant_admin cannot be removed (409 LAST_ADMIN).",
        tags=["team"], responses={204: None, 403: _RANK_403, 409: _LAST_ADMIN_409},
    ),
)
class TeamMemberViewSet(TenantScopedViewSet):
    """The people of the caller's tenant."""

    queryset = TeamMember.objects.all()
    serializer_class = TeamMemberSerializer
    lookup_url_kwarg = "memberId"
    lookup_value_regex = UUID_PATH
    access = {
        "list": members(scope="team:read"),
        "retrieve": members(scope="team:read"),
        "partial_update": admins(scope="team:write"),
        "destroy": admins(scope="team:write"),
    }

    def scoped_queryset(self):
        filters = validated(TeamFilterSerializer, self.request.query_params) if self.action == "list" else {}
        return selectors.team_members(tenant=self.request.auth.tenant, **filters)

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(TeamMemberSerializer(page, many=True).data)

    def retrieve(self, request, *args, **kwargs):
        return Response(TeamMemberSerializer(self.get_object()).data)

    def partial_update(self, request, *args, **kwargs):
        member = self.get_object()
        changes = validated(TeamMemberUpdateSerializer, request.data)
        member = services.update_member(member=member, actor=request.auth.actor, request=request, **changes)
        return Response(TeamMemberSerializer(member).data)

    def destroy(self, request, *args, **kwargs):
        services.remove_member(member=self.get_object(), actor=request.auth.actor, request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


_INVITE_EXAMPLE = {
    "id": "6f1c2a34-9b7e-4c1d-8e2f-0a1b2c3d4e5f",
    "email": "dana@acme.example",
    "role": "tenant_member",
    "status": "pending",
    "invitedBy": {"id": "0b8d5e4c-2f1a-4b3c-9d8e-7f6a5b4c3d2e", "email": "admin@acme.example", "name": "Ada Admin"},
    "expiresAt": "2025-01-08T09:30:00.000000Z",
    "acceptedAt": None,
    "revokedAt": None,
    "createdAt": "2025-01-01T09:30:00.000000Z",
}


@extend_schema_view(
    list=extend_schema(summary="List invitations", tags=["team"], parameters=[InviteFilterSerializer],
                       description="Every invitation of the tenant, newest first; `status` is pending, accepted, "
                                   "revoked or expired (an expired invite replaced by a new one shows as revoked).",
                       responses={200: InviteSerializer(many=True)}),
    create=extend_schema(
        summary="Invite someone by e-mail",
        description="E-mails a single-use link (valid INVITE_LIFETIME, 7 days by default) to "
                    "POST /api/v1/auth/invites/accept. The token is only in the e-mail, never in a response. "
                    "One live invite per address: a pending one gives 409 CONFLICT (details.reason "
                    "`invite_pending`), an expired one is revoked and replaced. An address that already has an "
                    "account gives 409 CONFLICT (details.reason `already_member` or `user_exists`).",
        tags=["team"], request=InviteCreateSerializer,
        responses={201: InviteSerializer, 403: _RANK_403, 409: error_response(409, ErrorCode.CONFLICT),
                   503: _MAIL_503},
        examples=[
            OpenApiExample("Invite a member", value={"email": "dana@acme.example", "role": "tenant_member"},
                           request_only=True),
            OpenApiExample("Invitation sent", value=_INVITE_EXAMPLE, response_only=True, status_codes=["201"]),
            OpenApiExample("Already invited", response_only=True, status_codes=["409"], value={"error": {
                "code": "CONFLICT",
                "message": "dana@acme.example already has a pending invitation; resend or revoke it instead.",
                "details": {"reason": "invite_pending", "inviteId": _INVITE_EXAMPLE["id"]},
                "requestId": "5d0c3f6e2b1a4c9d8e7f6a5b4c3d2e1f"}}),
        ],
    ),
    resend=extend_schema(
        summary="Resend an invitation",
        description="Issues a new token (the previous link stops working) with a fresh expiry and e-mails it. "
                    "At most once a minute per invitation: sooner gives 429 RATE_LIMITED with Retry-After. "
                    "An accepted or revoked invitation gives 409 INVALID_STATE.",
        tags=["team"], request=None,
        responses={200: InviteSerializer, 409: error_response(409, ErrorCode.INVALID_STATE, ErrorCode.CONFLICT),
                   503: _MAIL_503},
    ),
    destroy=extend_schema(
        summary="Revoke an invitation",
        description="Its link stops working. Revoking a revoked invitation is a no-op; an accepted one gives "
                    "409 INVALID_STATE (remove the member instead).",
        tags=["team"], responses={204: None, 409: error_response(409, ErrorCode.INVALID_STATE)},
    ),
)
class TeamInviteViewSet(TenantScopedViewSet):
    """Invitations to join the caller's tenant."""

    queryset = TeamInvite.objects.all()
    serializer_class = InviteSerializer
    lookup_value_regex = UUID_PATH
    access = {
        "list": admins(scope="team:read"),
        "create": admins(scope="team:write"),
        "resend": admins(scope="team:write"),
        "destroy": admins(scope="team:write"),
    }

    def scoped_queryset(self):
        filters = validated(InviteFilterSerializer, self.request.query_params) if self.action == "list" else {}
        return selectors.team_invites(tenant=self.request.auth.tenant, **filters)

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(InviteSerializer(page, many=True).data)

    def create(self, request, *args, **kwargs):
        data = validated(InviteCreateSerializer, request.data)
        invite = services.create_invite(tenant=request.auth.tenant, actor=request.auth.actor, request=request, **data)
        return Response(InviteSerializer(invite).data, status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"])
    def resend(self, request, *args, **kwargs):
        invite = services.resend_invite(invite=self.get_object(), actor=request.auth.actor, request=request)
        return Response(InviteSerializer(invite).data)

    def destroy(self, request, *args, **kwargs):
        services.revoke_invite(invite=self.get_object(), actor=request.auth.actor, request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    list=extend_schema(summary="List API keys", tags=["api-keys"], parameters=[ApiKeyFilterSerializer],
                       description="Prefix, name, scopes and usage; never the key or its hash.",
                       responses={200: ApiKeySerializer(many=True)}),
    create=extend_schema(
        summary="Create an API key",
        description="Returns the full key (`prefix.secret`, field `key`) in this response only; it is stored "
                    "hashed. Use it as `Authorization: Api-Key <key>`. Scopes must be among the documented "
                    "scopes. People only: API keys cannot create keys.",
        tags=["api-keys"], request=ApiKeyCreateSerializer,
        responses={201: ApiKeyCreatedSerializer},
        examples=[OpenApiExample("CI key", request_only=True,
                                 value={"name": "CI deploys", "scopes": ["agents:read", "agents:write"],
                                        "expiresAt": "2026-01-01T00:00:00Z", "rateLimitPerMinute": 120})],
    ),
    destroy=extend_schema(summary="Revoke an API key",
                          description="Takes effect at once: the key's next request gets 401. Idempotent.",
                          tags=["api-keys"], responses={204: None}),
)
class ApiKeyViewSet(TenantScopedViewSet):
    """API keys of the caller's tenant."""

    queryset = ApiKey.objects.all()
    serializer_class = ApiKeySerializer
    lookup_value_regex = UUID_PATH
    # Keys are managed by people only: a key able to mint keys could outlive its own revocation.
    access = {"list": admins(), "create": admins(), "destroy": admins()}

    def scoped_queryset(self):
        filters = validated(ApiKeyFilterSerializer, self.request.query_params) if self.action == "list" else {}
        return selectors.api_keys(tenant=self.request.auth.tenant, **filters)

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(ApiKeySerializer(page, many=True).data)

    def create(self, request, *args, **kwargs):
        data = validated(ApiKeyCreateSerializer, request.data)
        key, raw = services.create_api_key(tenant=request.auth.tenant, actor=request.auth.actor, request=request,
                                           **data)
        key.key = raw  # for this one response only
        return Response(ApiKeyCreatedSerializer(key).data, status=status.HTTP_201_CREATED)

    def destroy(self, request, *args, **kwargs):
        services.revoke_api_key(api_key=self.get_object(), actor=request.auth.actor, request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)
