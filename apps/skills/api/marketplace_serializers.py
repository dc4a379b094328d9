"""Wire shapes of the skill marketplace, tenant side (snake_case here; the renderer and parser
make them camelCase).

A skill's `capabilities` and `configuration` are JSON kept verbatim on the wire (settings
JSON_CAMEL_CASE ignore_fields): `configuration` is a JSON Schema whose property names are the
skill's own settings keys. Who submitted a skill is not shown to other tenants: `mine` tells the
caller whether it is theirs.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from aegis.api.serializers import StrictSerializer
from aegis.jsonschema import JSONSchemaValidator, validate_is_json_schema
from aegis.ordering import ordering_choices
from apps.skills import selectors
from apps.skills.json_schemas import CAPABILITIES
from apps.skills.models import SEMVER_PATTERN, Skill

CAPABILITIES_OPENAPI = {key: value for key, value in CAPABILITIES.items() if key != "$schema"}
CONFIGURATION_OPENAPI = {
    "type": "object",
    "additionalProperties": True,
    "description": "A JSON Schema (draft 2020-12) of the skill's settings; it must describe an object. "
                   "Installations' `config` is validated against it. Keys are kept verbatim.",
}


@extend_schema_field(CAPABILITIES_OPENAPI)
class CapabilitiesField(serializers.JSONField):
    """What the skill may touch (apps.skills.json_schemas.CAPABILITIES)."""


@extend_schema_field(CONFIGURATION_OPENAPI)
class ConfigurationField(serializers.JSONField):
    """A JSON Schema of an object: the skill's settings."""


# --- Query parameters -------------------------------------------------------------------------------


class SkillFilterSerializer(serializers.Serializer):
    search = serializers.CharField(
        required=False, allow_blank=True, max_length=200,
        help_text="Full-text search over name and description, web-search syntax (`\"exact phrase\"`, `or`, "
                  "`-exclude`), English stemming. Results come best match first unless `ordering` is given.")
    category = serializers.ChoiceField(choices=Skill.Category.choices, required=False)
    ordering = serializers.ChoiceField(
        choices=ordering_choices(selectors.MARKETPLACE_ORDERINGS), required=False,
        help_text="Sort key; `-` for descending. Default: relevance when searching, else `name`.")


class MySubmissionFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Skill.Status.choices, required=False)
    ordering = serializers.ChoiceField(
        choices=ordering_choices(selectors.MY_SUBMISSION_ORDERINGS), required=False,
        help_text="Sort key; `-` for descending. Default `-createdAt` (newest submission first).")


# --- Responses ----------------------------------------------------------------------------------------


class SkillSerializer(serializers.ModelSerializer):
    """A marketplace entry (one version of a skill)."""

    capabilities = CapabilitiesField(read_only=True)
    mine = serializers.SerializerMethodField(help_text="Whether the caller submitted this skill.")

    class Meta:
        model = Skill
        fields = ["id", "slug", "name", "version", "category", "description", "capabilities", "status", "mine",
                  "created_at", "reviewed_at"]
        read_only_fields = fields
        extra_kwargs = {"reviewed_at": {"help_text": "When it was approved (or rejected); null while pending."}}

    def get_mine(self, skill: Skill) -> bool:
        owner_id = self.context.get("owner_id")
        return owner_id is not None and skill.author_id == owner_id


class SkillVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Skill
        fields = ["id", "version", "reviewed_at"]
        read_only_fields = fields


class SkillDetailSerializer(SkillSerializer):
    """One skill version in full, with the other approved versions of its slug."""

    configuration = ConfigurationField(read_only=True)
    review_note = serializers.SerializerMethodField(
        help_text="The reviewer's note; shown to the submitter only (null for everyone else).")
    versions = serializers.SerializerMethodField(
        help_text="Every approved version of this slug, newest first (semantic-version precedence).")

    class Meta(SkillSerializer.Meta):
        fields = [*SkillSerializer.Meta.fields, "configuration", "review_note", "versions"]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_review_note(self, skill: Skill) -> str | None:
        return skill.review_note if self.get_mine(skill) else None

    @extend_schema_field(SkillVersionSerializer(many=True))
    def get_versions(self, skill: Skill) -> list[dict]:
        return SkillVersionSerializer(self.context["versions"], many=True).data


class MySubmissionSerializer(SkillSerializer):
    """One of the caller's submissions, with the review outcome."""

    class Meta(SkillSerializer.Meta):
        fields = [*SkillSerializer.Meta.fields, "review_note", "updated_at"]
        read_only_fields = fields


class CategorySerializer(serializers.Serializer):
    category = serializers.ChoiceField(choices=Skill.Category.choices, help_text="The value `?category=` takes.")
    label = serializers.CharField(help_text="A display name.")
    count = serializers.IntegerField(help_text="Approved skills in it, counted as the list shows them (one per slug).")


class CategoryListSerializer(serializers.Serializer):
    data = CategorySerializer(many=True, help_text="Every category, with zero counts included, in a fixed order.")


# --- Request bodies -----------------------------------------------------------------------------------


class SkillSubmitSerializer(StrictSerializer):
    name = serializers.CharField(max_length=100)
    slug = serializers.SlugField(max_length=64, help_text="Stable identifier of the skill across its versions.")
    version = serializers.RegexField(SEMVER_PATTERN, max_length=64,
                                     help_text="Semantic version; unique per slug (e.g. 1.4.0, 2.0.0-rc.1).",
                                     error_messages={"invalid": "Not a semantic version (e.g. 1.4.0)."})
    category = serializers.ChoiceField(choices=Skill.Category.choices, default=Skill.Category.OTHER)
    description = serializers.CharField(max_length=10_000, required=False, allow_blank=True, default="")
    capabilities = CapabilitiesField(
        required=False, default=dict, validators=[JSONSchemaValidator("apps.skills.json_schemas.CAPABILITIES")])
    configuration = ConfigurationField(
        required=False, validators=[validate_is_json_schema],
        help_text="A JSON Schema of the skill's settings, describing an object. Default: `{\"type\": \"object\"}` "
                  "(no settings).")
