"""The caller's tenant's audit log: GET /api/v1/audit-logs.

A feed: newest first, cursor-paginated over (created_at, id) (FeedPagination), so a page deep in
the history costs what the first does. TenantScopedViewSet narrows every query to the
credential's tenant, fail-closed; platform-level entries (no tenant) never show here. The
filters are apps.audit.selectors.audit_logs, shared with the platform's cross-tenant feed.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view

from aegis.api.pagination import FeedPagination
from aegis.api.permissions import admins
from aegis.api.schema import errors
from aegis.api.serializers import validated_query
from aegis.api.views import TenantScopedViewSet
from aegis.api.wire import datetime_formatter
from apps.audit import selectors
from apps.audit.api.serializers import entry
from apps.audit.api.tenant_serializers import TenantAuditFilterSerializer, TenantAuditLogSerializer
from apps.audit.models import AuditLog


@extend_schema_view(list=extend_schema(
    summary="List this tenant's audit log", tags=["audit"], parameters=[TenantAuditFilterSerializer],
    description="Every change made in this tenant (by its people, its API keys, or the platform acting on it), "
                "newest first. Cursor-paginated: pass `pagination.next` back as `?cursor=` (with the same filters) "
                "for the next page; it stays stable while new entries arrive.",
    responses={200: TenantAuditLogSerializer(many=True), **errors(400)}))
class TenantAuditLogViewSet(TenantScopedViewSet):
    queryset = AuditLog.objects.all()
    serializer_class = TenantAuditLogSerializer
    pagination_class = FeedPagination
    access = {"list": admins("audit:read")}

    def scoped_queryset(self):
        filters = validated_query(TenantAuditFilterSerializer, self.request.query_params)
        queryset = selectors.audit_logs(actor_id=filters.get("actor"), action=filters.get("action"),
                                        since=filters.get("from"), until=filters.get("to"))
        if filters.get("targetType"):
            queryset = queryset.filter(target_type=filters["targetType"])
        # The entry shows only the row's own columns: no joins.
        return selectors.entry_rows(queryset, with_tenant=False)

    def list(self, request, *args, **kwargs):
        # Rows, not model instances: the same entries TenantAuditLogSerializer gives.
        page = self.paginate_queryset(self.get_queryset())
        datetime_text = datetime_formatter()
        return self.get_paginated_response([entry(row, with_tenant=False, datetime_text=datetime_text)
                                            for row in page])
