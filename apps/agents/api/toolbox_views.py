"""/api/v1/toolbox and /api/v1/roles[/{key}]: the tenant-wide layers of every agent's
configuration, the Shared Toolbox (layer 1) and the role catalog with this tenant's overrides
(layer 2). GET agents/{id}/config shows their effect on one agent. Thin: the rules live in
apps.agents.workspace.

Both live in the tenant's schema (switched by authentication), so another tenant's credential
reads and writes its own toolbox and overrides, never these; role keys are the platform's, shared
by every tenant."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from aegis.api.permissions import admins, members
from aegis.api.schema import errors
from aegis.api.serializers import validated_body
from apps.agents import workspace
from apps.agents.api.toolbox_serializers import (
    RoleOverrideUpdateSerializer,
    TenantRoleSerializer,
    ToolboxSerializer,
    ToolboxUpdateSerializer,
)
from apps.agents.workspace import ToolboxEntry
from apps.skills import selectors as skill_selectors
from apps.skills.models import AgentRole

TAG = "configuration layers"


class ToolboxView(APIView):
    access = {
        "get": members("skills:read", tenant_schema=True),
        "put": admins("skills:write", tenant_schema=True),
    }

    @extend_schema(
        summary="Get the Shared Toolbox",
        description="Layer 1 of every agent's configuration: the skills this tenant enables for all its agents, with "
                    "their settings. Agents may switch one off or override its settings (their own skill installs); "
                    "GET agents/{id}/config shows the result.",
        tags=[TAG], responses={200: ToolboxSerializer})
    def get(self, request, *args, **kwargs):
        return Response(ToolboxSerializer({"skills": workspace.toolbox()}).data)

    @extend_schema(
        summary="Replace the Shared Toolbox",
        description="Sets the whole toolbox in one transaction: listed skills are added or changed, the others "
                    "removed. Only approved skills, one version per skill; each `config` is validated against its "
                    "skill's JSON Schema. Errors name the entry: `skills.2.skillId`, `skills.2.config` (400). An "
                    "entry whose new settings would make an agent's own settings of that skill invalid (agents' "
                    "settings merge over the toolbox's) is refused the same way, naming the agent. A replacement "
                    "that changes nothing writes nothing; any other is audited (`toolbox.updated`, the skill slugs "
                    "before and after) and reconfigures the tenant's runtime. At most 200 skills.",
        tags=[TAG], request=ToolboxUpdateSerializer, responses={200: ToolboxSerializer, **errors(400)},
        examples=[OpenApiExample("Calendar for everyone, web search off", request_only=True, value={"skills": [
            {"skillId": "3f0c8a52-5b7e-4a53-9a43-2a6b8f0e6d11", "enabled": True,
             "config": {"provider": "google"}},
            {"skillId": "9b2d4c1e-0f6a-4e8b-8c3d-5e7f9a1b2c3d", "enabled": False}]})])
    def put(self, request, *args, **kwargs):
        data = validated_body(ToolboxUpdateSerializer, request.data)
        rows = workspace.replace_toolbox(
            tenant=request.auth.tenant, entries=[ToolboxEntry(**entry) for entry in data["skills"]],
            actor=request.auth.actor, request=request)
        return Response(ToolboxSerializer({"skills": rows}).data)


ROLE_KEY = OpenApiParameter("key", OpenApiTypes.STR, OpenApiParameter.PATH,
                            description="The role's key in the platform's catalog, e.g. `sales`.")


@extend_schema_view(
    list=extend_schema(
        summary="List roles with this tenant's overrides",
        description="Layer 2: each role of the platform's catalog with its defaults (`platform`), this tenant's "
                    "override (`override`, null when none) and what agents of the role get (`effective`: the "
                    "override's skill list replaces the platform's unless null; its settings win key by key).",
        tags=[TAG], responses={200: TenantRoleSerializer(many=True)}),
    partial_update=extend_schema(
        summary="Override a role's defaults for this tenant",
        description="Only the fields sent change. `defaultSkills`: slugs of approved skills (errors name the index, "
                    "`defaultSkills.1`), or null to inherit the platform's list. `defaultSettings`: an object valid "
                    "against the role settings' JSON Schema, or null (or {}) to inherit the platform's. An override "
                    "that inherits everything is removed. Audited (`role_override.updated` / "
                    "`role_override.cleared`); reconfigures the tenant's runtime.",
        tags=[TAG], parameters=[ROLE_KEY], request=RoleOverrideUpdateSerializer,
        responses={200: TenantRoleSerializer, **errors(400, 404)},
        examples=[OpenApiExample("Sales agents: CRM only, think harder", request_only=True, value={
            "defaultSkills": ["crm"], "defaultSettings": {"thinkingMode": "high"}})]),
)
class TenantRoleViewSet(viewsets.GenericViewSet):
    serializer_class = TenantRoleSerializer
    lookup_field = "key"
    lookup_value_regex = r"[a-z][a-z0-9_-]*"
    access = {
        "list": members("tenant:read", tenant_schema=True),
        "partial_update": admins("tenant:write", tenant_schema=True),
    }

    def get_queryset(self):
        return skill_selectors.roles()

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(TenantRoleSerializer(workspace.role_views(page), many=True).data)

    def partial_update(self, request, *args, **kwargs):
        role = get_object_or_404(AgentRole, key=kwargs["key"])
        changes = validated_body(RoleOverrideUpdateSerializer, request.data)
        workspace.set_role_override(tenant=request.auth.tenant, role=role, changes=changes,
                                    actor=request.auth.actor, request=request)
        [view] = workspace.role_views([role])
        return Response(TenantRoleSerializer(view).data)
