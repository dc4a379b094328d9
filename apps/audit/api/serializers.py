"""Wire shapes of the audit trail: the platform console's cross-tenant feed. A tenant's own feed
(apps.audit.api.tenant_serializers) derives from these, less the tenant."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.audit.models import AuditLog
from apps.tenants.api.serializers import PlatformTenantSummarySerializer

ACTOR_TYPES = ("user", "api_key", "system")


class AuditActorSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=ACTOR_TYPES, help_text="`system`: the platform itself (a task, a command).")
    id = serializers.UUIDField(allow_null=True, help_text="The user's or API key's id; null for the system, or once "
                                                          "the actor has been deleted.")
    label = serializers.CharField(help_text="E-mail or `api-key:<prefix>`, kept when the actor is deleted.")


class PlatformAuditLogSerializer(serializers.ModelSerializer):
    tenant = PlatformTenantSummarySerializer(read_only=True, allow_null=True,
                                             help_text="null: a platform-level action (roles, skill reviews, ...).")
    actor = serializers.SerializerMethodField()
    changes = serializers.JSONField(read_only=True, help_text="What changed: `{field: {before, after}}` for updates, "
                                                              "a snapshot for creations. Secrets are redacted.")
    ip = serializers.IPAddressField(read_only=True, allow_null=True)

    class Meta:
        model = AuditLog
        fields = ["id", "action", "tenant", "actor", "target_type", "target_id", "changes", "ip", "user_agent",
                  "request_id", "created_at"]
        read_only_fields = fields

    @extend_schema_field(AuditActorSerializer)
    def get_actor(self, entry: AuditLog) -> dict:
        # From the row's own columns: no join per entry, and a deleted actor keeps its label.
        if entry.actor_user_id is not None:
            kind, actor_id = "user", entry.actor_user_id
        elif entry.actor_api_key_id is not None:
            kind, actor_id = "api_key", entry.actor_api_key_id
        elif entry.actor_label.startswith("api-key:"):
            kind, actor_id = "api_key", None
        elif entry.actor_label:
            kind, actor_id = "user", None
        else:
            kind, actor_id = "system", None
        return {"type": kind, "id": actor_id, "label": entry.actor_label}


class AuditLogFilterSerializer(serializers.Serializer):
    # Query parameters are not camel-cased by the parser: declared as they appear on the wire.
    tenant = serializers.UUIDField(required=False, help_text="A tenant's id: only entries about that tenant.")
    actor = serializers.UUIDField(required=False, help_text="A user's id: only what that person did.")
    action = serializers.CharField(required=False, allow_blank=True, max_length=100,
                                   help_text="An action, exactly (e.g. `tenant.suspended`).")
    to = serializers.DateTimeField(required=False, help_text="ISO 8601; entries created before it (exclusive).")

    def get_fields(self):
        fields = super().get_fields()
        # `from` is a Python keyword, so it cannot be declared as a class attribute.
        fields["from"] = serializers.DateTimeField(
            required=False, help_text="ISO 8601 (UTC if no offset); entries created at or after it.")
        return fields

    def validate(self, attrs):
        start, end = attrs.get("from"), attrs.get("to")
        if start is not None and end is not None and start >= end:
            raise serializers.ValidationError({"from": ["Must be before `to`."]})
        return attrs
