"""Wire shapes of the tenant's own workspace endpoints: GET dashboard, GET|PATCH tenant, GET
tenant/usage (snake_case here; the renderer and parser make them camelCase).

The settings' shapes (modelDefaults, resourceLimits, usage meters, status counts) are the
platform console's own serializers, reused so each is one OpenAPI component."""

from __future__ import annotations

from collections.abc import Mapping

from rest_framework import serializers

from aegis.api.exceptions import ApiError, ErrorCode
from aegis.api.serializers import StrictSerializer
from apps.agents.api.serializers import wire_name
from apps.monitoring.models import ContainerHealth
from apps.tenants.api.serializers import (
    AgentStatusCountsSerializer,
    AlertSeverityCountsSerializer,
    MeterSerializer,
    ModelDefaultsPatchSerializer,
    ModelDefaultsSerializer,
    PlatformTenantUsageSerializer,
    ResourceLimitsSerializer,
)
from apps.tenants.models import Tenant

# Settings a tenant sees but only the platform changes: sending one is a 403 naming it, not the
# 400 of an unknown field, because a platform admin could make the same change.
PLATFORM_FIELDS = ("plan", "resource_limits", "status", "status_reason", "slug", "admin_email")


class TenantProfileSerializer(serializers.ModelSerializer):
    model_defaults = ModelDefaultsSerializer(read_only=True)
    resource_limits = ResourceLimitsSerializer(
        read_only=True, help_text="Caps of the plan (or negotiated ones). Set by the platform; read-only here.")

    class Meta:
        model = Tenant
        fields = ["id", "company_name", "slug", "plan", "industry", "status", "expected_agent_count",
                  "model_defaults", "resource_limits", "created_at", "updated_at"]
        read_only_fields = fields
        extra_kwargs = {
            "plan": {"help_text": "Set by the platform."},
            "slug": {"help_text": "Names the tenant's workspace; it never changes."},
        }


class TenantProfileUpdateSerializer(StrictSerializer):
    """Only the fields sent change."""

    company_name = serializers.CharField(max_length=200, required=False)
    industry = serializers.CharField(max_length=100, required=False, allow_blank=True)
    expected_agent_count = serializers.IntegerField(min_value=0, max_value=100_000, required=False)
    model_defaults = ModelDefaultsPatchSerializer(
        required=False, help_text="A JSON merge patch (RFC 7386) of modelDefaults: keys given replace, `null` "
                                  "removes one (the platform's default applies again), the rest stays.")

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            refused = [name for name in PLATFORM_FIELDS if name in data]
            if refused:
                names = [wire_name(name) for name in refused]
                raise ApiError(403, ErrorCode.PERMISSION_DENIED,
                               f"Only the platform can change {', '.join(names)}; contact support.",
                               {"fields": names})
        return super().to_internal_value(data)

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError("Give at least one field to change.")
        if "model_defaults" in attrs:
            attrs["model_defaults"] = _plain(attrs["model_defaults"])
        return attrs


def _plain(data):
    """Nested validated data as plain dicts, nulls kept (they remove keys in a merge patch)."""
    return {key: _plain(value) if isinstance(value, Mapping) else value for key, value in data.items()}


# --- Usage -----------------------------------------------------------------------------------------------


class ChannelUsageSerializer(serializers.Serializer):
    total = serializers.IntegerField(help_text="Channels of all agents.")
    connected = serializers.IntegerField(help_text="Channels whose last verification succeeded.")
    busiest_agent = MeterSerializer(help_text="The most channels any one agent has, against "
                                              "resourceLimits.maxChannelsPerAgent.")


class TenantUsageSerializer(PlatformTenantUsageSerializer):
    """The platform's usage of this tenant (apps.tenants.selectors.tenant_usage), plus its channels."""

    channels = ChannelUsageSerializer()


# --- Dashboard -------------------------------------------------------------------------------------------


class DashboardAgentCountsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    by_status = AgentStatusCountsSerializer()


class DashboardMessagesSerializer(serializers.Serializer):
    today = serializers.IntegerField(help_text="Messages received and sent since `since`, from the hourly metrics "
                                               "rollups (they may lag the live activity feed slightly).")
    since = serializers.DateTimeField(help_text="00:00 UTC today.")


class DashboardChannelsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    connected = serializers.IntegerField()


class RuntimeHealthSerializer(serializers.ModelSerializer):
    class Meta:
        model = ContainerHealth
        fields = ["status", "cpu_percent", "memory_mb", "uptime_seconds", "checked_at"]
        read_only_fields = fields


class DashboardAlertsCountSerializer(serializers.Serializer):
    open = serializers.IntegerField(help_text="This tenant's alerts nobody has acknowledged yet.")
    open_by_severity = AlertSeverityCountsSerializer()


class TenantDashboardSerializer(serializers.Serializer):
    agents = DashboardAgentCountsSerializer()
    messages = DashboardMessagesSerializer()
    channels = DashboardChannelsSerializer()
    runtime = RuntimeHealthSerializer(allow_null=True, help_text="The newest health sample of the tenant's "
                                                                 "runtime; null before the first one.")
    alerts = DashboardAlertsCountSerializer()
    generated_at = serializers.DateTimeField()
