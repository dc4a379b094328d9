"""/api/v1/platform/skills/... and /api/v1/platform/roles...: the skill review queue and the
platform's role catalog (layer 2 of every agent's configuration). TOTP-verified platform admins.

Thin: decisions and edits (and their audit rows) in apps.skills.services, reads in apps.skills.selectors.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from aegis.api.exceptions import ErrorCode
from aegis.api.permissions import platform
from aegis.api.schema import error_response
from aegis.api.serializers import validated_body, validated_query
from apps.skills import selectors, services
from apps.skills.api.platform_serializers import (
    PlatformRoleCreateSerializer,
    PlatformRoleSerializer,
    PlatformRoleUpdateSerializer,
    PlatformSkillSerializer,
    ReviewQueueFilterSerializer,
    SkillApproveSerializer,
    SkillRejectSerializer,
)
from apps.skills.models import AgentRole, Skill
from apps.tenants.api.views import UUID_PATH

SKILLS_TAG = "platform-skills"
ROLES_TAG = "platform-roles"
SKILL_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The skill version's id.")
ROLE_KEY = OpenApiParameter("key", OpenApiTypes.STR, OpenApiParameter.PATH, description="The role's key.")
_REVIEWED = error_response(409, ErrorCode.INVALID_STATE,
                           description="Conflict: `INVALID_STATE`, the skill version was already reviewed "
                                       "(`details.status`); a decision is final, a change is a new version")


@extend_schema_view(
    list=extend_schema(
        summary="The skill review queue",
        description="Pending skill versions, oldest first (first come, first reviewed).",
        tags=[SKILLS_TAG], parameters=[ReviewQueueFilterSerializer],
        responses={200: PlatformSkillSerializer(many=True)}),
)
class SkillReviewQueueViewSet(viewsets.GenericViewSet):
    serializer_class = PlatformSkillSerializer
    access = {"list": platform()}

    def get_queryset(self):
        return selectors.review_queue(**validated_query(ReviewQueueFilterSerializer, self.request.query_params))

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(PlatformSkillSerializer(page, many=True).data)


class SkillReviewViewSet(viewsets.GenericViewSet):
    queryset = Skill.objects.select_related("author", "reviewed_by").defer("search_vector")
    serializer_class = PlatformSkillSerializer
    lookup_value_regex = UUID_PATH
    access = {"approve": platform(), "reject": platform()}

    def _detail(self, skill: Skill) -> Response:
        return Response(PlatformSkillSerializer(self.get_queryset().get(pk=skill.pk)).data)

    @extend_schema(
        summary="Approve a skill version",
        description="pending -> approved: tenants can install it from now on.",
        tags=[SKILLS_TAG], parameters=[SKILL_ID], request=SkillApproveSerializer,
        responses={200: PlatformSkillSerializer, 409: _REVIEWED})
    @action(detail=True, methods=["post"])
    def approve(self, request, *args, **kwargs):
        skill = self.get_object()
        note = validated_body(SkillApproveSerializer, request.data)["note"]
        return self._detail(services.approve_skill(skill=skill, reviewer=request.auth.actor, note=note,
                                                   request=request))

    @extend_schema(
        summary="Reject a skill version",
        description="pending -> rejected, with the reason the author will see (required).",
        tags=[SKILLS_TAG], parameters=[SKILL_ID], request=SkillRejectSerializer,
        responses={200: PlatformSkillSerializer, 409: _REVIEWED},
        examples=[OpenApiExample("Too broad", request_only=True,
                                 value={"reason": "Asks for write access to every mailbox; scope it down."})])
    @action(detail=True, methods=["post"])
    def reject(self, request, *args, **kwargs):
        skill = self.get_object()
        reason = validated_body(SkillRejectSerializer, request.data)["reason"]
        return self._detail(services.reject_skill(skill=skill, reviewer=request.auth.actor, note=reason,
                                                  request=request))


@extend_schema_view(
    list=extend_schema(summary="List the role catalog", tags=[ROLES_TAG],
                       description="The platform's agent roles with their default skills and settings, by key.",
                       responses={200: PlatformRoleSerializer(many=True)}),
    create=extend_schema(
        summary="Add a role to the catalog",
        description="`defaultSkills` must name marketplace skills (by slug); `defaultSettings` is checked against "
                    "its JSON Schema. A key in use gives 409 CONFLICT.",
        tags=[ROLES_TAG], request=PlatformRoleCreateSerializer,
        responses={201: PlatformRoleSerializer, 409: error_response(409, ErrorCode.CONFLICT)},
        examples=[OpenApiExample("Research role", request_only=True, value={
            "key": "research", "name": "Research", "description": "Finds and summarises sources.",
            "defaultSkills": ["web-search"],
            "defaultSettings": {"modelTier": "powerful", "thinkingMode": "high", "toolsProfile": "full"}})]),
    partial_update=extend_schema(
        summary="Change a role",
        description="Name, description, `defaultSkills` (replaced as a list) or `defaultSettings` (replaced as an "
                    "object); the key never changes. Agents of this role in every tenant follow the new defaults "
                    "unless their tenant overrides them.",
        tags=[ROLES_TAG], parameters=[ROLE_KEY], request=PlatformRoleUpdateSerializer,
        responses={200: PlatformRoleSerializer}),
)
class PlatformRoleViewSet(viewsets.GenericViewSet):
    queryset = AgentRole.objects.all()
    serializer_class = PlatformRoleSerializer
    lookup_field = "key"
    lookup_value_regex = r"[a-z][a-z0-9_-]*"
    access = {"list": platform(), "create": platform(), "partial_update": platform()}

    def get_queryset(self):
        return selectors.roles()

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(PlatformRoleSerializer(page, many=True).data)

    def create(self, request, *args, **kwargs):
        data = validated_body(PlatformRoleCreateSerializer, request.data)
        role = services.create_role(**data, actor=request.auth.actor, request=request)
        return Response(PlatformRoleSerializer(role).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        role = self.get_object()
        changes = validated_body(PlatformRoleUpdateSerializer, request.data)
        role = services.update_role(role=role, changes=changes, actor=request.auth.actor, request=request)
        return Response(PlatformRoleSerializer(role).data)
