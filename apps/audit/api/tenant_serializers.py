"""Wire shapes of a tenant's own audit log (snake_case here; the renderer makes them camelCase).

The same entry shape and filters as the platform console's feed (apps.audit.api.serializers),
less the tenant (always the caller's) and plus `targetType`."""

from __future__ import annotations

from rest_framework import serializers

from apps.audit.api.serializers import AuditLogFilterSerializer, PlatformAuditLogSerializer


class TenantAuditFilterSerializer(AuditLogFilterSerializer):
    tenant = None  # always the credential's tenant
    # Query parameters are not camel-cased by the parser: declared as they appear on the wire.
    targetType = serializers.CharField(
        required=False, max_length=50,
        help_text="The kind of object acted on, as entries show it in `targetType` (e.g. `agents.agent`).")


class TenantAuditLogSerializer(PlatformAuditLogSerializer):
    tenant = None  # always the caller's

    class Meta(PlatformAuditLogSerializer.Meta):
        fields = [name for name in PlatformAuditLogSerializer.Meta.fields if name != "tenant"]
        read_only_fields = fields
