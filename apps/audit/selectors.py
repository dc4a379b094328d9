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

# What a feed entry shows (apps.audit.api.serializers.entry), as `entry_rows` reads it.
ENTRY_FIELDS = ("id", "action", "actor_user_id", "actor_api_key_id", "actor_label", "target_type", "target_id",
                "changes", "ip", "user_agent", "request_id", "created_at")
TENANT_FIELDS = ("tenant_id", "tenant__company_name", "tenant__slug", "tenant__status")


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


def entry_rows(queryset: QuerySet[AuditLog], *, with_tenant: bool) -> QuerySet:
    """The entries as dicts (ENTRY_FIELDS, plus TENANT_FIELDS joined in when `with_tenant`): the
    page is read without building model instances. `created_at` and `id` are in every row, as the
    feed's cursor needs them."""
    fields = (*ENTRY_FIELDS, *TENANT_FIELDS) if with_tenant else ENTRY_FIELDS
    return queryset.select_related(None).values(*fields)
