"""Wire shapes of the agents area (snake_case here; the renderer and parser make them camelCase).

Input serializers only check the shape of a request (types, enums, lengths, unknown fields);
the rules (limits, uniqueness, JSON Schemas, state transitions) live in apps.agents.services
and the models. Output serializers never read a channel's secrets: they show which secrets are
set and their last four characters, from `secret_hints`.

JSON kept verbatim on the wire: a skill install's `config` (keys defined by the skill's own
schema), an activity's `payload`, `assistedUser.preferences`. A channel's `config` is ours, so
its keys are camelCase on the wire and snake_case in storage and in its JSON Schemas.
"""

from __future__ import annotations

from collections.abc import Mapping

from djangorestframework_camel_case.util import camelize, underscoreize
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from aegis.api.serializers import StrictSerializer
from aegis.api.wire import WireDict, camelize_as_configured, datetime_text
from apps.agents import selectors
from apps.agents.json_schemas import ASSISTED_USER, CHANNEL_CONFIG, CHANNEL_SECRETS
from apps.agents.models import (
    AGENT_KEY_PATTERN,
    ActivityKind,
    Agent,
    AgentActivity,
    AgentChannel,
    ChannelType,
    MetricsPeriod,
    ModelTier,
    SkillInstallation,
    ThinkingMode,
)
from apps.agents.resolver import LAYERS
from apps.agents.services import CREATE_STATUSES
from apps.skills.models import Skill

SECRET_MIN_LENGTH = 8  # shorter values would be all but shown by their four-character hint


def wire_name(name: str) -> str:
    return camelize({name: None}).popitem()[0]


def openapi_object(json_schema: dict) -> dict:
    """A stored-JSON Schema as the API shows it: property names camelCase, no `$schema`."""
    schema = {key: value for key, value in json_schema.items() if key != "$schema"}
    if "properties" in schema:
        schema["properties"] = {wire_name(name): (openapi_object(sub) if isinstance(sub, dict) else sub)
                                for name, sub in schema["properties"].items()}
    if "required" in schema:
        schema["required"] = [wire_name(name) for name in schema["required"]]
    return schema


@extend_schema_field(OpenApiTypes.STR)
class CommaSeparatedChoiceField(serializers.Field):
    """`?status=active,paused`: one or more values of an enum."""

    def __init__(self, choices, **kwargs):
        self.allowed = [value for value, _ in choices]
        kwargs["help_text"] = f"{kwargs.get('help_text', '')} Values: {', '.join(self.allowed)}.".strip()
        super().__init__(**kwargs)

    def to_internal_value(self, data) -> list[str]:
        values = [value.strip() for value in str(data).split(",") if value.strip()]
        invalid = [value for value in values if value not in self.allowed]
        if invalid:
            raise serializers.ValidationError(
                f"Unknown value(s) {', '.join(invalid)}; choose from {', '.join(self.allowed)}.")
        return values

    def to_representation(self, value):
        return ",".join(value)


@extend_schema_field(openapi_object(ASSISTED_USER))
class AssistedUserField(serializers.JSONField):
    """The person the agent assists (validated against apps.agents.json_schemas.ASSISTED_USER)."""


# --- Agents ---------------------------------------------------------------------------------------


class ChannelSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = AgentChannel
        fields = ["id", "type", "name", "status"]
        read_only_fields = fields


class InstallSummarySerializer(serializers.ModelSerializer):
    skill_id = serializers.UUIDField(read_only=True)
    slug = serializers.CharField(source="skill.slug", read_only=True)
    name = serializers.CharField(source="skill.name", read_only=True)
    version = serializers.CharField(source="skill.version", read_only=True)

    class Meta:
        model = SkillInstallation
        fields = ["skill_id", "slug", "name", "version", "enabled"]
        read_only_fields = fields


class AgentSerializer(serializers.ModelSerializer):
    role = serializers.CharField(source="role_id", read_only=True, help_text="The agent role's key.")
    assisted_user = AssistedUserField(read_only=True)
    model_tier = serializers.ChoiceField(choices=ModelTier.choices, allow_null=True, read_only=True,
                                         help_text="null: inherited (see GET agents/{id}/config).")
    thinking_mode = serializers.ChoiceField(choices=ThinkingMode.choices, allow_null=True, read_only=True,
                                            help_text="OpenClaw thinking level; null: inherited.")
    revision = serializers.IntegerField(read_only=True, help_text="Also the `ETag`; send it back in `If-Match`.")
    channels = ChannelSummarySerializer(many=True, read_only=True)
    skills = InstallSummarySerializer(source="skill_installations", many=True, read_only=True,
                                      help_text="This agent's own skill installs (inherited skills: see config).")

    class Meta:
        model = Agent
        fields = ["id", "key", "name", "role", "status", "status_reason", "model_tier", "thinking_mode",
                  "assisted_user", "description", "revision", "channels", "skills", "created_at", "updated_at"]
        read_only_fields = fields


# The agent list's read path: AgentSerializer's output, built from a selectors.summary_rows() row
# without model instances or field objects (tests/api/test_read_paths.py holds the two equal).
def agent_summary(row: dict, datetime_text=datetime_text) -> WireDict:
    """One agent as AgentSerializer shows it, already in wire form (camelCase keys). For a page,
    pass one `aegis.api.wire.datetime_formatter()` as `datetime_text`."""
    return WireDict({
        "id": str(row["id"]),
        "key": row["key"],
        "name": row["name"],
        "role": row["role_id"],
        "status": row["status"],
        "statusReason": row["status_reason"],
        "modelTier": row["model_tier"],
        "thinkingMode": row["thinking_mode"],
        "assistedUser": camelize_as_configured(row["assisted_user"]),
        "description": row["description"],
        "revision": row["revision"],
        # Built by PostgreSQL as ChannelSummarySerializer and InstallSummarySerializer show them.
        "channels": row["channel_rows"],
        "skills": row["skill_rows"],
        "createdAt": datetime_text(row["created_at"]),
        "updatedAt": datetime_text(row["updated_at"]),
    })


class AgentCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=100)
    key = serializers.RegexField(AGENT_KEY_PATTERN, max_length=64, required=False,
                                 help_text="The agent's id in the OpenClaw runtime; derived from the name if absent. "
                                           "Cannot be changed later.")
    role = serializers.SlugField(max_length=50, help_text="An agent role's key, e.g. `sales`.")
    status = serializers.ChoiceField(choices=CREATE_STATUSES, default=Agent.Status.DRAFT)
    model_tier = serializers.ChoiceField(choices=ModelTier.choices, allow_null=True, required=False)
    thinking_mode = serializers.ChoiceField(choices=ThinkingMode.choices, allow_null=True, required=False)
    assisted_user = AssistedUserField(required=False)
    description = serializers.CharField(allow_blank=True, required=False, max_length=5000)


class AgentUpdateSerializer(StrictSerializer):
    """Only the fields sent change. `modelTier` / `thinkingMode` null: inherit again."""

    name = serializers.CharField(max_length=100, required=False)
    role = serializers.SlugField(max_length=50, required=False)
    model_tier = serializers.ChoiceField(choices=ModelTier.choices, allow_null=True, required=False)
    thinking_mode = serializers.ChoiceField(choices=ThinkingMode.choices, allow_null=True, required=False)
    assisted_user = AssistedUserField(required=False)
    description = serializers.CharField(allow_blank=True, required=False, max_length=5000)


class AgentFilterSerializer(serializers.Serializer):
    search = serializers.CharField(required=False, allow_blank=True, max_length=200,
                                   help_text="Full-text search on name and description (web-search syntax: "
                                             "quotes, `or`, `-word`), ranked by relevance; also matches part of "
                                             "the name.")
    status = CommaSeparatedChoiceField(Agent.Status.choices, required=False,
                                       help_text="One or more statuses, comma-separated.")
    role = serializers.SlugField(required=False, max_length=50, help_text="An agent role's key.")
    ordering = serializers.ChoiceField(choices=selectors.agent_ordering_choices(), required=False,
                                       help_text="Sort key, `-` for descending. Default: name, or relevance with "
                                                 "`search`.")


# --- Channels -------------------------------------------------------------------------------------


@extend_schema_field({"type": "object", "description": "Settings of the channel's type (keys camelCase).",
                      "anyOf": [dict(openapi_object(schema), title=name) for name, schema in CHANNEL_CONFIG.items()]})
class ChannelConfigField(serializers.JSONField):
    """Channel settings: camelCase on the wire, snake_case where stored and validated."""

    def to_internal_value(self, data):
        data = super().to_internal_value(data)
        if not isinstance(data, dict):
            raise serializers.ValidationError("Expected an object.")
        return underscoreize(data)

    def to_representation(self, value):
        return camelize(value or {})


def _secrets_field(**kwargs) -> serializers.DictField:
    return serializers.DictField(
        child=serializers.CharField(allow_null=True, min_length=SECRET_MIN_LENGTH, max_length=4096),
        help_text="Write-only. Slack: botToken, appToken, signingSecret; Telegram: botToken, webhookSecret; "
                  "web: none. On update, secrets merge: a null value removes that secret.",
        **kwargs)


def _check_secret_names(channel_type: str, secrets: Mapping) -> None:
    allowed = CHANNEL_SECRETS.get(channel_type, [])
    unknown = sorted(set(secrets) - set(allowed))
    if unknown:
        raise serializers.ValidationError({"secrets": [
            f"Unknown secret(s) for {channel_type}: {', '.join(map(wire_name, unknown))}; "
            f"allowed: {', '.join(map(wire_name, allowed)) or 'none'}."]})


class ChannelSerializer(serializers.ModelSerializer):
    agent_id = serializers.UUIDField(read_only=True)
    config = ChannelConfigField(read_only=True)
    enabled = serializers.SerializerMethodField()
    secrets_set = serializers.SerializerMethodField(help_text="Names of the secrets that are set.")
    secret_hints = serializers.SerializerMethodField(help_text="Secret name -> its last four characters.")

    class Meta:
        model = AgentChannel
        fields = ["id", "agent_id", "type", "name", "enabled", "status", "last_error", "verified_at", "config",
                  "secrets_set", "secret_hints", "created_at", "updated_at"]
        read_only_fields = fields
        extra_kwargs = {
            "status": {"help_text": "pending until verified; connected or error after a verification; disabled."},
            "last_error": {"help_text": "Why the last verification failed (never contains a secret)."},
            "verified_at": {"help_text": "When the current secrets last passed verification; null if never."},
        }

    def get_enabled(self, channel: AgentChannel) -> bool:
        return channel.status != AgentChannel.Status.DISABLED

    # Both come from secret_hints (kept by the model for every secret set): the encrypted
    # secrets are never read to render a response.
    def get_secrets_set(self, channel: AgentChannel) -> list[str]:
        return sorted(wire_name(name) for name in (channel.secret_hints or {}))

    @extend_schema_field({"type": "object", "additionalProperties": {"type": "string"}})
    def get_secret_hints(self, channel: AgentChannel) -> dict[str, str]:
        return {wire_name(name): hint for name, hint in sorted((channel.secret_hints or {}).items())}


class ChannelCreateSerializer(StrictSerializer):
    type = serializers.ChoiceField(choices=ChannelType.choices)
    name = serializers.CharField(max_length=100)
    config = ChannelConfigField(required=False)
    secrets = _secrets_field(required=False)

    def validate(self, attrs):
        _check_secret_names(attrs["type"], attrs.get("secrets") or {})
        return attrs


class ChannelUpdateSerializer(StrictSerializer):
    """Only the fields sent change; `config` is replaced as a whole, `secrets` merge."""

    name = serializers.CharField(max_length=100, required=False)
    enabled = serializers.BooleanField(required=False, help_text="false disables the channel; true re-enables it "
                                                                 "(pending until verified).")
    config = ChannelConfigField(required=False)
    secrets = _secrets_field(required=False)

    def validate(self, attrs):
        _check_secret_names(self.context["channel_type"], attrs.get("secrets") or {})
        return attrs


# --- Skill installations --------------------------------------------------------------------------


class SkillSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = Skill
        fields = ["id", "slug", "name", "version", "category"]
        read_only_fields = fields


class SkillInstallationSerializer(serializers.ModelSerializer):
    skill = SkillSummarySerializer(read_only=True)
    agent_id = serializers.UUIDField(read_only=True)
    installed_by = serializers.UUIDField(source="installed_by_id", read_only=True, allow_null=True,
                                         help_text="The user who installed it; null when an API key did.")
    config = serializers.JSONField(read_only=True, help_text="Settings, keys as the skill's schema names them.")

    class Meta:
        model = SkillInstallation
        fields = ["id", "skill", "agent_id", "enabled", "config", "installed_by", "created_at", "updated_at"]
        read_only_fields = fields


class SkillInstallCreateSerializer(StrictSerializer):
    skill = serializers.UUIDField(help_text="The id of an approved skill version.")
    enabled = serializers.BooleanField(default=True, help_text="false switches off a skill the agent inherits "
                                                               "from the Shared Toolbox or its role.")
    config = serializers.JSONField(required=False, help_text="Settings, validated against the skill's JSON Schema "
                                                             "(merged over the Shared Toolbox's settings).")

    def validate_config(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("Expected an object.")
        return value


class SkillInstallUpdateSerializer(StrictSerializer):
    enabled = serializers.BooleanField(required=False)
    config = serializers.JSONField(required=False, help_text="Replaces the install's settings.")

    def validate_config(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("Expected an object.")
        return value


# --- Effective configuration ----------------------------------------------------------------------


LAYER_HELP = f"The layer that set it: {', '.join(LAYERS)}; null when no layer did."


class SourcedSerializer(serializers.Serializer):
    value = serializers.JSONField(allow_null=True)
    source = serializers.CharField(allow_null=True, help_text=LAYER_HELP)


class EffectiveModelSerializer(serializers.Serializer):
    tier = serializers.ChoiceField(choices=ModelTier.choices)
    tier_source = serializers.CharField(help_text=LAYER_HELP)
    primary = serializers.CharField(help_text="`provider/model`")
    fallbacks = serializers.ListField(child=serializers.CharField())
    source = serializers.CharField(help_text="Where the tier's model came from: tenant (modelDefaults) or platform.")


class ResolvedSkillSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField(allow_null=True)
    version = serializers.CharField(allow_null=True)
    skill_id = serializers.CharField(allow_null=True)
    config = serializers.JSONField(help_text="Settings merged across layers, later layers winning key by key.")
    source = serializers.CharField(help_text="The last layer that set the skill: toolbox, role or agent.")


class EffectiveConfigSerializer(serializers.Serializer):
    agent_id = serializers.CharField(help_text="The agent's key: its id in the OpenClaw runtime.")
    name = serializers.CharField()
    role = serializers.CharField()
    model = EffectiveModelSerializer()
    thinking_mode = SourcedSerializer()
    tools_profile = SourcedSerializer()
    identity = serializers.DictField(child=SourcedSerializer())
    assisted_user = AssistedUserField()
    skills = ResolvedSkillSerializer(many=True, help_text="Enabled skills, as the runtime receives them.")
    disabled_skills = ResolvedSkillSerializer(many=True, help_text="Inherited skills switched off (not sent to the "
                                                                   "runtime), shown with the layer that did it.")


# --- Activity and metrics -------------------------------------------------------------------------


class AgentRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Agent
        fields = ["id", "key", "name"]
        read_only_fields = fields


class ActivitySerializer(serializers.ModelSerializer):
    agent = AgentRefSerializer(read_only=True)
    channel_id = serializers.UUIDField(read_only=True, allow_null=True)
    payload = serializers.JSONField(read_only=True)

    class Meta:
        model = AgentActivity
        fields = ["id", "agent", "channel_id", "kind", "summary", "payload", "tokens_in", "tokens_out", "cost_usd",
                  "latency_ms", "created_at"]
        read_only_fields = fields


class ActivityFilterSerializer(serializers.Serializer):
    kind = CommaSeparatedChoiceField(ActivityKind.choices, required=False,
                                     help_text="One or more kinds, comma-separated.")
    channel = serializers.UUIDField(required=False, help_text="A channel's id.")


class TenantActivityFilterSerializer(ActivityFilterSerializer):
    agent = serializers.UUIDField(required=False, help_text="An agent's id.")


class MetricsQuerySerializer(serializers.Serializer):
    period = serializers.ChoiceField(choices=MetricsPeriod.choices, default=MetricsPeriod.HOUR)
    to = serializers.DateTimeField(required=False, help_text="ISO 8601; exclusive, rounded up to the period. "
                                                             "Default: the end of the current period.")

    def get_fields(self):
        fields = super().get_fields()
        # `from` is a Python keyword, so it cannot be declared as a class attribute.
        fields["from"] = serializers.DateTimeField(
            required=False, help_text="ISO 8601 (UTC if no offset); rounded down to the period. Default: 24 hours "
                                      "(hour) or 30 days (day) before `to`.")
        return fields

    def validate(self, attrs):
        start, end = attrs.get("from"), attrs.get("to")
        for name, moment in (("from", start), ("to", end)):
            if moment is not None and not selectors.METRICS_EARLIEST <= moment <= selectors.METRICS_LATEST:
                raise serializers.ValidationError({name: [
                    f"Must be between {selectors.METRICS_EARLIEST:%Y-%m-%d} and {selectors.METRICS_LATEST:%Y-%m-%d} "
                    "(UTC)."]})
        if start is not None and end is not None and start >= end:
            raise serializers.ValidationError({"from": ["Must be before `to`."]})
        window = selectors.metrics_window(period=attrs["period"], start=start, end=end)
        if window.start >= window.end:
            raise serializers.ValidationError({"from": ["Must be before `to`."]})
        buckets = (window.end - window.start) // selectors.METRICS_STEP[attrs["period"]]
        limit = selectors.METRICS_MAX_BUCKETS[attrs["period"]]
        if buckets > limit:
            raise serializers.ValidationError({"from": [f"At most {limit} {attrs['period']} buckets per request."]})
        return {"window": window}


class MetricsValuesSerializer(serializers.Serializer):
    messages = serializers.IntegerField()
    tokens_in = serializers.IntegerField()
    tokens_out = serializers.IntegerField()
    cost_usd = serializers.DecimalField(max_digits=14, decimal_places=6, help_text="US dollars, a decimal string.")
    errors = serializers.IntegerField()
    avg_latency_ms = serializers.IntegerField(allow_null=True)


class MetricsBucketSerializer(MetricsValuesSerializer):
    period_start = serializers.DateTimeField()


class MetricsSerializer(serializers.Serializer):
    agent_id = serializers.UUIDField()
    period = serializers.ChoiceField(choices=MetricsPeriod.choices)
    to = serializers.DateTimeField(help_text="End of the window (exclusive).")
    buckets = MetricsBucketSerializer(many=True, help_text="Every bucket of the window, oldest first; zeros where "
                                                           "the agent did nothing.")
    totals = MetricsValuesSerializer(help_text="The window's sums; avgLatencyMs weighted by messages.")

    def get_fields(self):
        fields = super().get_fields()
        start = serializers.DateTimeField(help_text="Start of the window (inclusive).")
        return {"agent_id": fields.pop("agent_id"), "period": fields.pop("period"), "from": start, **fields}

