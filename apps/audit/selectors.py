"""Reads of the audit trail. The platform console reads all tenants' entries; the feed is paged
by cursor over (created_at, id), newest first (aegis.api.pagination.FeedPagination), so page
1,000 costs what page 1 does.

Each filter narrows an index that leads with it and continues with created_at:
tenant -> audit_tenant_created_idx, actor -> audit_actor_created_idx, action ->
audit_action_created_idx; a date range alone -> audit_created_idx.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from apps.audit.models import AuditLog


def audit_logs(*, tenant_id=None, actor_id=None, action: str | None = None, since: datetime | None = None,
               until: datetime | None = None) -> QuerySet[AuditLog]:
    """Entries with their tenant joined in: one query per page, whatever its size. The actor needs no
    join: each row keeps the actor's ids and label (the label outlives a deleted actor)."""
    queryset = AuditLog.objects.select_related("tenant")
    if tenant_id:
        queryset = queryset.filter(tenant_id=tenant_id)
    if actor_id:
        queryset = queryset.filter(actor_user_id=actor_id)
    if action:
        queryset = queryset.filter(action=action)
    if since is not None:
        queryset = queryset.filter(created_at__gte=since)
    if until is not None:
        queryset = queryset.filter(created_at__lt=until)
    return queryset
