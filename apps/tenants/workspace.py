"""A tenant's view of itself: its dashboard, its channel usage, and the profile changes a
tenant_admin may make. Plain functions; the platform's tenant directory and lifecycle live in
apps.tenants.selectors and apps.tenants.services, which these reuse (one usage computation,
one tenant update rule).

Reads of the tenant's agent data enter its schema with `tenant_context`, so they work from any
caller (the tenant API, where authentication already switched to it, or the platform's).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.agents.models import Agent, AgentChannel, AgentMetrics, AgentStatus
from apps.agents.signals import send_runtime_config_changed
from apps.monitoring.models import Alert, ContainerHealth
from apps.tenants import services
from apps.tenants.models import Tenant
from apps.tenants.selectors import Meter

# What a tenant_admin may change of its own tenant. plan, resourceLimits, status, slug and the
# admin e-mail of record are the platform's (PATCH platform/tenants/{id}).
PROFILE_FIELDS = ("company_name", "industry", "expected_agent_count", "model_defaults")


# --- Channels (part of usage) ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ChannelUsage:
    total: int
    connected: int
    busiest_agent: Meter  # the most channels any one agent has, against max_channels_per_agent


def channel_usage(tenant: Tenant) -> ChannelUsage:
    """The tenant's channels, connected ones, and its fullest agent against the per-agent cap.
    Two queries in the tenant's schema (the per-agent count walks agents_channel_agent_type_idx)."""
    with tenant_context(tenant):
        totals = AgentChannel.objects.aggregate(
            total=Count("pk"), connected=Count("pk", filter=Q(status=AgentChannel.Status.CONNECTED)))
        busiest = (AgentChannel.objects.order_by().values("agent_id").annotate(n=Count("pk"))
                   .order_by("-n").values_list("n", flat=True).first())
    return ChannelUsage(total=totals["total"], connected=totals["connected"],
                        busiest_agent=Meter(used=busiest or 0,
                                            limit=(tenant.resource_limits or {}).get("max_channels_per_agent")))


# --- Dashboard -------------------------------------------------------------------------------------------


def day_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def tenant_dashboard(tenant: Tenant, *, now: datetime | None = None) -> dict[str, Any]:
    """The counts a tenant looks at first. Five queries, whatever the number of agents,
    channels, messages or alerts:

    - agents by status: one GROUP BY (agents_status_created_idx);
    - messages today (since 00:00 UTC): the sum of today's hourly AgentMetrics buckets, at most
      24 per agent via agents_metrics_period_idx. Counting AgentActivity message_* rows instead
      would read one index entry per message, growing with traffic; the buckets cost the same on
      a quiet day and a busy one, at the price of the rollup's lag;
    - channels: total and connected, one aggregate;
    - runtime: the newest ContainerHealth sample of this tenant (monitoring_health_tenant_idx);
    - alerts: this tenant's open alerts by severity (monitoring_alert_tenant_idx).
    """
    now = now or timezone.now()
    since = day_start(now)
    with tenant_context(tenant):
        by_status = dict.fromkeys(AgentStatus.values, 0)
        by_status.update(Agent.objects.order_by().values_list("status").annotate(n=Count("pk")))
        messages = AgentMetrics.objects.filter(
            period=AgentMetrics.Period.HOUR, period_start__gte=since, period_start__lt=since + timedelta(days=1),
        ).aggregate(n=Sum("messages"))["n"] or 0
        channels = AgentChannel.objects.aggregate(
            total=Count("pk"), connected=Count("pk", filter=Q(status=AgentChannel.Status.CONNECTED)))
    # Public-schema tables, filtered to this tenant.
    runtime = (ContainerHealth.objects.filter(tenant=tenant).order_by("-checked_at")
               .only("status", "cpu_percent", "memory_mb", "uptime_seconds", "checked_at").first())
    open_by_severity = dict.fromkeys(Alert.Severity.values, 0)
    open_by_severity.update(Alert.objects.filter(tenant=tenant, status=Alert.Status.OPEN).order_by()
                            .values_list("severity").annotate(n=Count("pk")))
    return {
        "agents": {"total": sum(by_status.values()), "by_status": by_status},
        "messages": {"today": messages, "since": since},
        "channels": channels,
        "runtime": runtime,
        "alerts": {"open": sum(open_by_severity.values()), "open_by_severity": open_by_severity},
        "generated_at": now,
    }


# --- Profile ---------------------------------------------------------------------------------------------


@transaction.atomic
def update_profile(*, tenant: Tenant, changes: dict, actor=None, request=None) -> Tenant:
    """A tenant_admin's change to its own tenant: the platform's `update_tenant` (JSON merge patch
    of modelDefaults, validated against its JSON Schema, audited as tenant.updated), limited to
    PROFILE_FIELDS. A modelDefaults change re-renders every agent's model, so it queues
    runtime_config_changed."""
    unknown = set(changes) - set(PROFILE_FIELDS)
    if unknown:
        raise ValueError(f"not tenant profile settings: {sorted(unknown)}")
    # Locked before reading the old defaults, so the comparison below sees no one else's write.
    before = Tenant.objects.select_for_update().values_list("model_defaults", flat=True).get(pk=tenant.pk)
    tenant = services.update_tenant(tenant, changes=changes, actor=actor, request=request)
    if tenant.model_defaults != before:
        send_runtime_config_changed(sender=Tenant, tenant=tenant, agent_id=None, reason="tenant.updated")
    return tenant
