"""Wire shapes of the audit trail: the platform console's cross-tenant feed. A tenant's own feed
(apps.audit.api.tenant_serializers) derives from these, less the tenant."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from aegis.api.wire import WireDict, camelize_as_configured, datetime_text
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
        return actor(entry.actor_user_id, entry.actor_api_key_id, entry.actor_label)


def actor(user_id, api_key_id, label: str) -> dict:
    """From the row's own columns: no join per entry, and a deleted actor keeps its label."""
    if user_id is not None:
        kind, actor_id = "user", user_id
    elif api_key_id is not None:
        kind, actor_id = "api_key", api_key_id
    elif label.startswith("api-key:"):
        kind, actor_id = "api_key", None
    elif label:
        kind, actor_id = "user", None
    else:
        kind, actor_id = "system", None
    return {"type": kind, "id": actor_id, "label": label}


# The feeds' read path: the serializers' output, built from an apps.audit.selectors.entry_rows()
# row without model instances or field objects (tests/api/test_read_paths.py holds them equal).
def entry(row: dict, *, with_tenant: bool, datetime_text=datetime_text) -> WireDict:
    """One entry as PlatformAuditLogSerializer (`with_tenant`) or TenantAuditLogSerializer shows it,
    already in wire form (camelCase keys). For a page, pass one `aegis.api.wire.datetime_formatter()`
    as `datetime_text`."""
    result = WireDict(id=str(row["id"]), action=row["action"])
    if with_tenant:
        tenant_id = row["tenant_id"]
        result["tenant"] = None if tenant_id is None else {
            "id": str(tenant_id), "companyName": row["tenant__company_name"], "slug": row["tenant__slug"],
            "status": row["tenant__status"]}
    actor_fields = actor(row["actor_user_id"], row["actor_api_key_id"], row["actor_label"])
    if actor_fields["id"] is not None:
        actor_fields["id"] = str(actor_fields["id"])
    ip = row["ip"]
    result.update({
        "actor": actor_fields,
        "targetType": row["target_type"],
        "targetId": row["target_id"],
        "changes": camelize_as_configured(row["changes"]),
        "ip": None if ip is None else str(ip),
        "userAgent": row["user_agent"],
        "requestId": row["request_id"],
        "createdAt": datetime_text(row["created_at"]),
    })
    return result


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
