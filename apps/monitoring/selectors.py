"""Reads of runtime health and alerts for the platform console.

Every filter and ordering offered here is backed by an index of the model (Meta.indexes):
alerts by status, severity or tenant; health samples by (tenant, checked_at).
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.functions import Lower

from aegis.ordering import order
from apps.monitoring.models import Alert, ContainerHealth, HealthStatus
from apps.tenants.models import Tenant

# monitoring_alert_status_idx / monitoring_alert_severity_idx: (status | severity, -created_at).
ALERT_ORDERINGS = {"createdAt": "created_at"}
DEFAULT_ALERT_ORDERING = "-createdAt"

# Runtime states that need a person: what the dashboard counts as "unhealthy runtimes".
UNHEALTHY = (HealthStatus.UNHEALTHY, HealthStatus.UNREACHABLE)


def alerts(*, status: str | None = None, severity: str | None = None, tenant_id=None,
           ordering: str | None = None) -> QuerySet[Alert]:
    """Alerts with their tenant and the people who handled them joined in: one query per page."""
    queryset = Alert.objects.select_related("tenant", "acknowledged_by", "resolved_by")
    if status:
        queryset = queryset.filter(status=status)
    if severity:
        queryset = queryset.filter(severity=severity)
    if tenant_id:
        queryset = queryset.filter(tenant_id=tenant_id)  # monitoring_alert_tenant_idx (tenant, status)
    return order(queryset, ordering or DEFAULT_ALERT_ORDERING, ALERT_ORDERINGS)


def open_alert_counts() -> dict:
    """Unresolved alerts by status and open ones by severity, from one GROUP BY
    (monitoring_alert_status_idx keeps it to the unresolved rows)."""
    by_severity = {severity: 0 for severity in Alert.Severity.values}
    counts = {Alert.Status.OPEN: 0, Alert.Status.ACKNOWLEDGED: 0}
    rows = (Alert.objects.filter(status__in=list(counts)).order_by()
            .values("status", "severity").annotate(n=Count("pk")))
    for row in rows:
        counts[row["status"]] += row["n"]
        if row["status"] == Alert.Status.OPEN:
            by_severity[row["severity"]] += row["n"]
    return {"open": counts[Alert.Status.OPEN], "acknowledged": counts[Alert.Status.ACKNOWLEDGED],
            "open_by_severity": by_severity}


def health_samples(*, tenant: Tenant, since: datetime | None = None,
                   until: datetime | None = None) -> QuerySet[ContainerHealth]:
    """A tenant's samples; the feed paginator orders them newest first (monitoring_health_tenant_idx)."""
    queryset = ContainerHealth.objects.filter(tenant=tenant)
    if since is not None:
        queryset = queryset.filter(checked_at__gte=since)
    if until is not None:
        queryset = queryset.filter(checked_at__lt=until)
    return queryset


def latest_sample_ids(tenants: QuerySet[Tenant] | None = None) -> QuerySet:
    """The id of each tenant's newest sample: for every tenant row, one probe of
    monitoring_health_tenant_idx (tenant, -checked_at), which stops at the first entry.

    Not `DISTINCT ON (tenant_id) ... ORDER BY tenant_id, checked_at DESC`: that has to visit every
    sample of every tenant, and with history kept PostgreSQL plans it as a sequential scan plus
    a sort of the whole table (tests/api/test_platform_monitoring.py shows the plan). Driving it
    from the tenants costs one index probe per tenant, whatever the history's length."""
    newest = ContainerHealth.objects.filter(tenant=OuterRef("pk")).order_by("-checked_at").values("pk")[:1]
    tenants = Tenant.objects.all() if tenants is None else tenants
    # Tenants with no sample give NULL, which matches nothing in `pk IN (...)`.
    return tenants.order_by().annotate(latest_sample=Subquery(newest)).values("latest_sample")


FLEET_ORDERINGS = {"tenant": Lower("tenant__company_name"), "checkedAt": "checked_at"}
DEFAULT_FLEET_ORDERING = "tenant"


def fleet_health(*, status: str | None = None, ordering: str | None = None) -> QuerySet[ContainerHealth]:
    """The newest sample of each tenant runtime, with its tenant. Filters and orderings apply to that
    one-row-per-tenant set (no more rows than tenants), found by one index probe per tenant."""
    queryset = ContainerHealth.objects.filter(pk__in=latest_sample_ids()).select_related("tenant")
    if status:
        queryset = queryset.filter(status=status)
    return order(queryset, ordering or DEFAULT_FLEET_ORDERING, FLEET_ORDERINGS)


def runtime_health_counts() -> dict:
    """Runtimes of active tenants by the status of their newest sample (`unknown`: no sample yet)."""
    active = Tenant.objects.filter(status=Tenant.Status.ACTIVE)
    by_status = {status: 0 for status in HealthStatus.values}
    rows = (ContainerHealth.objects.filter(pk__in=latest_sample_ids(active)).order_by()
            .values("status").annotate(n=Count("pk")))
    for row in rows:
        by_status[row["status"]] = row["n"]
    sampled = sum(by_status.values())
    total = active.count()
    return {"total": total, "unhealthy": sum(by_status[s] for s in UNHEALTHY), "by_status": by_status,
            "unknown": max(total - sampled, 0)}
