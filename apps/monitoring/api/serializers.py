"""Wire shapes of the platform console's alerts and runtime health."""

from __future__ import annotations

from rest_framework import serializers

from aegis.ordering import ordering_choices
from apps.accounts.api.team_serializers import UserSummarySerializer
from apps.monitoring import selectors
from apps.monitoring.models import Alert, ContainerHealth, HealthStatus
from apps.tenants.api.serializers import PlatformTenantSummarySerializer


class PlatformAlertSerializer(serializers.ModelSerializer):
    tenant = PlatformTenantSummarySerializer(read_only=True, allow_null=True,
                                             help_text="null: a platform-wide alert.")
    acknowledged_by = UserSummarySerializer(read_only=True, allow_null=True)
    resolved_by = UserSummarySerializer(read_only=True, allow_null=True)

    class Meta:
        model = Alert
        fields = ["id", "tenant", "severity", "kind", "message", "status", "dedup_key", "acknowledged_by",
                  "acknowledged_at", "resolved_by", "resolved_at", "created_at", "updated_at"]
        read_only_fields = fields


class AlertFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Alert.Status.choices, required=False)
    severity = serializers.ChoiceField(choices=Alert.Severity.choices, required=False)
    tenant = serializers.UUIDField(required=False, help_text="A tenant's id: only that tenant's alerts.")
    ordering = serializers.ChoiceField(choices=ordering_choices(selectors.ALERT_ORDERINGS), required=False,
                                       help_text="Sort key; `-` for descending. Default -createdAt.")


class PlatformHealthSampleSerializer(serializers.ModelSerializer):
    class Meta:
        model = ContainerHealth
        fields = ["id", "status", "cpu_percent", "memory_mb", "uptime_seconds", "details", "checked_at"]
        read_only_fields = fields


class PlatformFleetHealthSerializer(PlatformHealthSampleSerializer):
    tenant = PlatformTenantSummarySerializer(read_only=True)

    class Meta(PlatformHealthSampleSerializer.Meta):
        fields = ["tenant", *PlatformHealthSampleSerializer.Meta.fields]
        read_only_fields = fields


class HealthSampleFilterSerializer(serializers.Serializer):
    to = serializers.DateTimeField(required=False, help_text="ISO 8601; samples checked before this (exclusive).")

    def get_fields(self):
        fields = super().get_fields()
        # `from` is a Python keyword, so it cannot be declared as a class attribute.
        fields["from"] = serializers.DateTimeField(required=False,
                                                   help_text="ISO 8601; samples checked at or after this.")
        return fields

    def validate(self, attrs):
        since, until = attrs.get("from"), attrs.get("to")
        if since is not None and until is not None and since >= until:
            raise serializers.ValidationError({"from": ["Must be before `to`."]})
        return attrs


class FleetHealthFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=HealthStatus.choices, required=False,
                                     help_text="Only runtimes whose newest sample has this status.")
    ordering = serializers.ChoiceField(choices=ordering_choices(selectors.FLEET_ORDERINGS), required=False,
                                       help_text="Sort key; `-` for descending. Default tenant (company name).")
