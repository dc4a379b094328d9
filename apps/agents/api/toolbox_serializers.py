"""Wire shapes of the Shared Toolbox (layer 1) and the role catalog with this tenant's overrides
(layer 2). snake_case here; the renderer and parser make them camelCase, except a skill's
`config`, whose keys are the skill author's and stay verbatim.

Input serializers check the shape only; the rules (approved skills, one version per skill, each
skill's JSON Schema, approved role skills) live in apps.agents.workspace."""

from __future__ import annotations

from collections.abc import Mapping

from rest_framework import serializers

from aegis.api.serializers import StrictSerializer
from apps.agents.api.serializers import SkillSummarySerializer
from apps.agents.workspace import TOOLBOX_MAX_SKILLS
from apps.skills.api.platform_serializers import DefaultSkillsField, RoleDefaultSettingsSerializer
from apps.skills.models import Skill


def _plain(data):
    return {key: _plain(value) if isinstance(value, Mapping) else value for key, value in data.items()}


class JsonObjectField(serializers.JSONField):
    def to_internal_value(self, data):
        data = super().to_internal_value(data)
        if not isinstance(data, dict):
            raise serializers.ValidationError("Expected an object.")
        return data


# --- Shared Toolbox ----------------------------------------------------------------------------------


class ToolboxSkillSerializer(serializers.Serializer):
    skill_id = serializers.UUIDField(help_text="The installed skill version's id.")
    skill = SkillSummarySerializer()
    enabled = serializers.BooleanField(help_text="false: listed, but off for agents unless their role or the "
                                                 "agent itself switches it on.")
    config = serializers.JSONField(help_text="Settings every agent inherits, keys as the skill's schema names them.")
    installed_by = serializers.UUIDField(source="installed_by_id", allow_null=True,
                                         help_text="Who installed this version; null when an API key did.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class ToolboxSerializer(serializers.Serializer):
    skills = ToolboxSkillSerializer(many=True, help_text="By slug. An entry's skillId, enabled and config are what "
                                                         "PUT takes back.")


class ToolboxEntrySerializer(StrictSerializer):
    skill_id = serializers.UUIDField(help_text="The id of an approved skill version (one version per skill).")
    enabled = serializers.BooleanField(default=True)
    config = JsonObjectField(required=False, default=dict,
                             help_text="Settings, validated against the skill's own JSON Schema.")


class ToolboxUpdateSerializer(StrictSerializer):
    skills = ToolboxEntrySerializer(many=True, max_length=TOOLBOX_MAX_SKILLS,
                                    help_text="The whole toolbox: skills not listed are removed.")


# --- Roles ----------------------------------------------------------------------------------------------


class RoleDefaultsSerializer(serializers.Serializer):
    default_skills = serializers.ListField(child=serializers.CharField(), help_text="Skill slugs.")
    default_settings = RoleDefaultSettingsSerializer()


class RoleOverrideSerializer(serializers.Serializer):
    default_skills = serializers.ListField(child=serializers.CharField(), allow_null=True,
                                           help_text="Replaces the platform's list; null: the platform's list "
                                                     "applies.")
    default_settings = RoleDefaultSettingsSerializer(help_text="Win over the platform's settings key by key "
                                                               "(`identity` as a whole).")
    updated_at = serializers.DateTimeField()


class ResolvedRoleSkillSerializer(serializers.ModelSerializer):
    skill_id = serializers.UUIDField(source="pk")

    class Meta:
        model = Skill
        fields = ["slug", "skill_id", "name", "version"]
        read_only_fields = fields


class EffectiveRoleDefaultsSerializer(RoleDefaultsSerializer):
    default_skills_source = serializers.ChoiceField(choices=["platform", "tenant"], source="skills_source",
                                                    help_text="Whose list applies.")
    skills = ResolvedRoleSkillSerializer(many=True, help_text="What agents of the role get: the newest approved "
                                                              "version of each default skill.")
    unavailable_skills = serializers.ListField(child=serializers.CharField(),
                                               help_text="Default skills with no approved version: agents get none.")


class TenantRoleSerializer(serializers.Serializer):
    """A platform role with this tenant's override and the result, as agents of the role get it."""

    key = serializers.CharField(source="role.key")
    name = serializers.CharField(source="role.name")
    description = serializers.CharField(source="role.description")
    platform = RoleDefaultsSerializer(source="role", help_text="The platform's defaults.")
    override = RoleOverrideSerializer(allow_null=True, help_text="This tenant's override; null: none.")
    effective = EffectiveRoleDefaultsSerializer(source="*", help_text="Platform defaults with the override applied "
                                                                       "(what the resolver uses).")


class RoleOverrideUpdateSerializer(StrictSerializer):
    """Only the fields sent change; null returns a field to the platform's defaults."""

    default_skills = DefaultSkillsField(
        required=False, allow_null=True,
        help_text="Slugs of approved skills; replaces the platform's list. null: inherit the platform's list.")
    default_settings = RoleDefaultSettingsSerializer(
        required=False, allow_null=True,
        help_text="Replaces the override's settings; each key given wins over the platform's. null or {}: inherit "
                  "them all.")

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError("Give defaultSkills, defaultSettings or both.")
        if attrs.get("default_settings") is not None:
            attrs["default_settings"] = _plain(attrs["default_settings"])
        return attrs
