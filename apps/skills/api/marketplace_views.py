"""The skill marketplace as tenants see it: browse approved skills, read one, the categories,
submit a skill (or a new version) for review, follow one's own submissions. Thin: the reads are
in apps.skills.selectors, the rules in apps.skills.services.

Skills live in the public schema and are shared by every tenant, so this is a plain
GenericViewSet: what a caller may read is "approved, or submitted by the caller", never another
tenant's pending or rejected submission (404, as for an unknown id).

"The caller" for an API key is the person who created the key: submissions made with it are
authored by them and show in their (and the key's) `skills/mine`.
"""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from aegis.api.exceptions import ErrorCode
from aegis.api.permissions import admins, members
from aegis.api.schema import error_response, errors
from aegis.api.serializers import validated_body, validated_query
from apps.skills import selectors, services
from apps.skills.api.marketplace_serializers import (
    CategoryListSerializer,
    CategorySerializer,
    MySubmissionFilterSerializer,
    MySubmissionSerializer,
    SkillDetailSerializer,
    SkillFilterSerializer,
    SkillSerializer,
    SkillSubmitSerializer,
)
from apps.skills.models import Skill

UUID_PATH = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"

SKILLS_READ = members("skills:read")
SKILLS_WRITE = admins("skills:write")

_SUBMIT_EXAMPLE = {
    "name": "Invoice reader",
    "slug": "invoice-reader",
    "version": "1.0.0",
    "category": "data",
    "description": "Extracts totals, dates and vendors from PDF invoices.",
    "capabilities": {"permissions": ["files:read"], "network": False},
    "configuration": {"type": "object", "properties": {"currency": {"type": "string", "default": "EUR"}},
                      "additionalProperties": False},
}


@extend_schema_view(
    list=extend_schema(
        summary="Browse the skill marketplace", tags=["skills"], parameters=[SkillFilterSerializer],
        description="Approved skills, one entry per slug: its newest approved version by semantic-version "
                    "precedence (older approved versions are listed in a skill's `versions` and readable by id). "
                    "`search` ranks by relevance (name weighs more than description).",
        responses={200: SkillSerializer(many=True), **errors(400)}),
    retrieve=extend_schema(
        summary="Get a skill version", tags=["skills"],
        description="Any approved version, or one of the caller's own submissions in any status (with the "
                    "reviewer's note). Another tenant's pending or rejected submission is not found.",
        responses={200: SkillDetailSerializer, **errors(404)}),
    create=extend_schema(
        summary="Submit a skill for review", tags=["skills"], request=SkillSubmitSerializer,
        description="Submits a new skill, or a new version of one this tenant publishes, as `pending`; a platform "
                    "admin approves or rejects it. `configuration` must be a JSON Schema (2020-12) describing an "
                    "object; `capabilities` follows the capabilities schema. The submitter is the author (for an "
                    "API key, the person who created the key).",
        responses={
            201: SkillDetailSerializer, **errors(400),
            409: error_response(409, ErrorCode.CONFLICT, description=(
                "Conflict: `CONFLICT`. `details.reason` is `version_exists` (this slug and version were already "
                "submitted, in any status) or `slug_taken` (the slug has live versions from another publisher).")),
        },
        examples=[
            OpenApiExample("A new skill", value=_SUBMIT_EXAMPLE, request_only=True),
            OpenApiExample("Version already submitted", response_only=True, status_codes=["409"], value={"error": {
                "code": "CONFLICT",
                "message": "Version 1.0.0 of 'invoice-reader' has already been submitted; submit a new version.",
                "details": {"reason": "version_exists", "slug": "invoice-reader", "version": "1.0.0"},
                "requestId": "5d0c3f6e2b1a4c9d8e7f6a5b4c3d2e1f"}}),
        ]),
)
class MarketplaceViewSet(viewsets.GenericViewSet):
    serializer_class = SkillSerializer
    lookup_value_regex = UUID_PATH  # so skills/categories and skills/mine are never taken for an id
    access = {
        "list": SKILLS_READ,
        "retrieve": SKILLS_READ,
        "categories": SKILLS_READ,
        "mine": SKILLS_READ,
        "create": SKILLS_WRITE,
    }

    def owner_id(self):
        """Whose submissions the caller sees as theirs: the user, or an API key's creator."""
        auth = self.request.auth
        return auth.actor.created_by_id if auth.is_api_key else auth.actor.pk

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # OpenAPI generation: no caller
            return Skill.objects.none()
        return selectors.visible_skills(owner_id=self.owner_id())

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if not getattr(self, "swagger_fake_view", False):
            context["owner_id"] = self.owner_id()
        return context

    def _detail(self, skill: Skill) -> dict:
        context = {**self.get_serializer_context(), "versions": selectors.approved_versions(skill.slug)}
        return SkillDetailSerializer(skill, context=context).data

    def list(self, request, *args, **kwargs):
        filters = validated_query(SkillFilterSerializer, request.query_params)
        page = self.paginate_queryset(selectors.marketplace(**filters))
        return self.get_paginated_response(SkillSerializer(page, many=True, context=self.get_serializer_context()).data)

    def retrieve(self, request, *args, **kwargs):
        return Response(self._detail(self.get_object()))

    def create(self, request, *args, **kwargs):
        data = validated_body(SkillSubmitSerializer, request.data)
        auth = request.auth
        author = auth.actor.created_by if auth.is_api_key else auth.actor
        skill = services.submit_skill(tenant=auth.tenant, author=author, actor=auth.actor, request=request, **data)
        response = Response(self._detail(skill), status=status.HTTP_201_CREATED)
        response["Location"] = request.build_absolute_uri(reverse("marketplace-skill-detail", kwargs={"pk": skill.pk}))
        return response

    @extend_schema(
        summary="List skill categories", tags=["skills"],
        description="Every category with the number of approved skills in it, counted as the marketplace list "
                    "shows them (one per slug). Not paginated: the set of categories is fixed and small.",
        responses={200: CategoryListSerializer})
    @action(detail=False, methods=["get"], pagination_class=None)
    def categories(self, request, *args, **kwargs):
        return Response({"data": CategorySerializer(selectors.category_counts(), many=True).data})

    @extend_schema(
        summary="List my skill submissions", tags=["skills"], parameters=[MySubmissionFilterSerializer],
        description="Every skill version the caller submitted, in any status, with the reviewer's note. For an API "
                    "key: the submissions of the person who created it.",
        responses={200: MySubmissionSerializer(many=True), **errors(400)})
    @action(detail=False, methods=["get"])
    def mine(self, request, *args, **kwargs):
        filters = validated_query(MySubmissionFilterSerializer, request.query_params)
        page = self.paginate_queryset(selectors.my_submissions(owner_id=self.owner_id(), **filters))
        return self.get_paginated_response(
            MySubmissionSerializer(page, many=True, context=self.get_serializer_context()).data)
