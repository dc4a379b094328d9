"""Wire shapes of the platform console's skill review queue and role catalog. (The tenant-facing
marketplace has its own module; these carry the `Platform` prefix so the components never clash.)"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from aegis.api.serializers import StrictSerializer
from aegis.ordering import ordering_choices
from apps.accounts.api.team_serializers import UserSummarySerializer
from apps.agents.models import ModelTier, ThinkingMode
from apps.skills import selectors
from apps.skills.json_schemas import ROLE_DEFAULT_SETTINGS
from apps.skills.models import AgentRole, Skill

_ROLE_SETTINGS = ROLE_DEFAULT_SETTINGS["properties"]


@extend_schema_field(OpenApiTypes.OBJECT)
class JsonObjectField(serializers.JSONField):
    """Stored JSON shown verbatim (its keys are not camelCased: they are the skill author's)."""


# --- Review queue -----------------------------------------------------------------------------------------


class PlatformSkillSerializer(serializers.ModelSerializer):
    author = UserSummarySerializer(read_only=True, allow_null=True)
    reviewed_by = UserSummarySerializer(read_only=True, allow_null=True)
    capabilities = JsonObjectField(read_only=True, help_text="What the skill may touch: permissions, tools, "
                                                             "network, requires_secrets.")
    configuration = JsonObjectField(read_only=True, help_text="The JSON Schema of the skill's settings.")

    class Meta:
        model = Skill
        fields = ["id", "name", "slug", "version", "category", "status", "description", "author", "capabilities",
                  "configuration", "review_note", "reviewed_by", "reviewed_at", "created_at", "updated_at"]
        read_only_fields = fields


class ReviewQueueFilterSerializer(serializers.Serializer):
    category = serializers.ChoiceField(choices=Skill.Category.choices, required=False)
    ordering = serializers.ChoiceField(choices=ordering_choices(selectors.REVIEW_ORDERINGS), required=False,
                                       help_text="Sort key; `-` for descending. Default createdAt (oldest first).")


class SkillApproveSerializer(StrictSerializer):
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="",
                                 help_text="Optional note to the author.")


class SkillRejectSerializer(StrictSerializer):
    reason = serializers.CharField(max_length=2000, help_text="Why, for the author: stored as the review note.")


# --- Role catalog ----------------------------------------------------------------------------------------------


class RoleIdentitySerializer(StrictSerializer):
    theme = serializers.CharField(max_length=200, required=False, allow_blank=True)
    emoji = serializers.CharField(max_length=8, required=False, allow_blank=True)


class RoleDefaultSettingsSerializer(StrictSerializer):
    """Defaults of agents in this role (apps/skills/json_schemas.py ROLE_DEFAULT_SETTINGS); absent: inherited."""

    # The models' enums (same values as the JSON Schema's), so the OpenAPI document names them once.
    model_tier = serializers.ChoiceField(choices=ModelTier.choices, required=False)
    thinking_mode = serializers.ChoiceField(choices=ThinkingMode.choices, required=False)
    tools_profile = serializers.ChoiceField(choices=_ROLE_SETTINGS["tools_profile"]["enum"], required=False)
    identity = RoleIdentitySerializer(required=False)


ROLE_KEY_PATTERN = r"^[a-z][a-z0-9_-]*$"


class DefaultSkillsField(serializers.ListField):
    child = serializers.SlugField(max_length=64)

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 100)
        kwargs.setdefault("help_text", "Slugs of marketplace skills (a role follows each one's newest approved "
                                       "version), no repeats.")
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        slugs = super().to_internal_value(data)
        repeated = sorted({slug for slug in slugs if slugs.count(slug) > 1})
        if repeated:
            raise serializers.ValidationError(f"Listed more than once: {', '.join(repeated)}.")
        return slugs


class PlatformRoleSerializer(serializers.ModelSerializer):
    default_settings = RoleDefaultSettingsSerializer(read_only=True)
    default_skills = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = AgentRole
        fields = ["id", "key", "name", "description", "default_skills", "default_settings", "created_at",
                  "updated_at"]
        read_only_fields = fields


class PlatformRoleCreateSerializer(StrictSerializer):
    key = serializers.RegexField(ROLE_KEY_PATTERN, max_length=50,
                                 error_messages={"invalid": "Lower-case letters, digits, `_` and `-`, starting "
                                                            "with a letter."},
                                 help_text="What agents refer to; it never changes.")
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    default_skills = DefaultSkillsField(required=False, default=list)
    default_settings = RoleDefaultSettingsSerializer(required=False, default=dict)


class PlatformRoleUpdateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=100, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    default_skills = DefaultSkillsField(required=False, help_text="Replaces the list.")
    default_settings = RoleDefaultSettingsSerializer(required=False, help_text="Replaces the object.")

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError("Give at least one field to change.")
        return attrs
