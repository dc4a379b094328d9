"""/api/v1/platform/audit-logs: every tenant's audit trail, for TOTP-verified platform admins.

A feed: cursor-paginated, newest first over (created_at, id), so a page deep in the history costs
what the first one does (no OFFSET, no COUNT); each filter narrows an index that leads with it.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import viewsets

from aegis.api.pagination import FeedPagination
from aegis.api.permissions import platform
from aegis.api.serializers import validated_query
from aegis.api.wire import datetime_formatter
from apps.audit import selectors
from apps.audit.api.serializers import AuditLogFilterSerializer, PlatformAuditLogSerializer, entry


@extend_schema_view(
    list=extend_schema(
        summary="List audit log entries across all tenants",
        description="Newest first, cursor-paginated: follow `pagination.next` (`?cursor=`) with the same filters. "
                    "Filters combine: `tenant`, `actor` (a user's id), `action` (exact), `from`/`to` (createdAt).",
        tags=["platform-audit"], parameters=[AuditLogFilterSerializer],
        responses={200: PlatformAuditLogSerializer(many=True)}),
)
class PlatformAuditLogViewSet(viewsets.GenericViewSet):
    serializer_class = PlatformAuditLogSerializer
    pagination_class = FeedPagination
    access = {"list": platform()}

    def get_queryset(self):
        filters = validated_query(AuditLogFilterSerializer, self.request.query_params)
        return selectors.entry_rows(
            selectors.audit_logs(tenant_id=filters.get("tenant"), actor_id=filters.get("actor"),
                                 action=filters.get("action"), since=filters.get("from"), until=filters.get("to")),
            with_tenant=True)

    def list(self, request, *args, **kwargs):
        # Rows, not model instances: the same entries PlatformAuditLogSerializer gives.
        page = self.paginate_queryset(self.get_queryset())
        datetime_text = datetime_formatter()
        return self.get_paginated_response([entry(row, with_tenant=True, datetime_text=datetime_text)
                                            for row in page])
