"""Reads of the tenant directory for the platform console: the tenant list, a tenant's usage, the
platform dashboard.

Orderings are named as on the wire (camelCase, `-` for descending) and always end with the
primary key, so pages are stable when the sort key ties. Each one is backed by an index of
tenants_tenant (see the model's Meta.indexes and its unique constraints).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from django.db import connection
from django.db.models import BooleanField, Count, Prefetch, Q, QuerySet, Sum
from django.db.models.expressions import RawSQL
from django.db.models.functions import Lower
from django.utils import timezone
from django_tenants.postgresql_backend.base import is_valid_schema_name
from django_tenants.utils import tenant_context

from aegis.ordering import order
from apps.agents.models import Agent, AgentMetrics, AgentStatus
from apps.tenants.models import Domain, Tenant

# wire name -> expression; each backed by an index: tenants_created_idx (and tenants_status_created_idx /
# tenants_plan_created_idx with a status or plan filter), the unique index on lower(company_name), slug's.
TENANT_ORDERINGS = {"createdAt": "created_at", "companyName": Lower("company_name"), "slug": "slug"}
DEFAULT_TENANT_ORDERING = "-createdAt"

# Tenants whose schema holds live agent data: provisioning/failed ones have none yet, decommissioned
# ones are on their way out (and purged ones have no schema at all).
SCHEMA_STATUSES = (Tenant.Status.ACTIVE, Tenant.Status.SUSPENDED)


def with_domains(queryset: QuerySet[Tenant]) -> QuerySet[Tenant]:
    """The tenant's host names, primary first: one extra query per page, whatever its size."""
    return queryset.prefetch_related(
        Prefetch("domains", queryset=Domain.objects.order_by("-is_primary", "domain"), to_attr="domain_list"))


def tenants(*, status: str | None = None, plan: str | None = None, search: str = "",
            ordering: str | None = None) -> QuerySet[Tenant]:
    queryset = Tenant.objects.all()
    if status:
        queryset = queryset.filter(status=status)
    if plan:
        queryset = queryset.filter(plan=plan)
    if search:
        # Substring search over three short columns: a scan of the tenant directory (thousands of
        # rows at most) is cheap; beyond that it wants pg_trgm GIN indexes on the three columns.
        queryset = queryset.filter(Q(company_name__icontains=search) | Q(slug__icontains=search)
                                   | Q(admin_email__icontains=search))
    return with_domains(order(queryset, ordering or DEFAULT_TENANT_ORDERING, TENANT_ORDERINGS))


def tenant_detail(tenant_id) -> QuerySet[Tenant]:
    return with_domains(Tenant.objects.filter(pk=tenant_id))


# --- Usage -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Meter:
    used: int
    limit: int | None  # None: no limit set

    @property
    def remaining(self) -> int | None:
        return None if self.limit is None else max(self.limit - self.used, 0)

    @property
    def exceeded(self) -> bool:
        return self.limit is not None and self.used > self.limit


@dataclass(frozen=True)
class TokenMeter(Meter):
    tokens_in: int = 0
    tokens_out: int = 0


@dataclass(frozen=True)
class Usage:
    tenant_id: object
    period_start: datetime  # inclusive
    period_end: datetime  # exclusive
    agents: Meter
    tokens: TokenMeter
    messages: int
    errors: int
    cost_usd: Decimal
    resource_limits: dict


def month_bounds(now: datetime) -> tuple[datetime, datetime]:
    start = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return start, end


def has_workspace(tenant: Tenant) -> bool:
    """Whether the tenant's schema exists (built by provisioning, dropped by the purge)."""
    return tenant.provisioned_at is not None and tenant.purged_at is None


def tenant_usage(tenant: Tenant, *, now: datetime | None = None) -> Usage:
    """This calendar month (UTC) of the tenant's AgentMetrics against its resourceLimits.

    Reads the daily buckets (agents_metrics_period_idx: period, period_start), which the rollup
    keeps current for today too. Two queries in the tenant's schema; the caller checks
    `has_workspace` first.
    """
    start, end = month_bounds(now or timezone.now())
    limits = tenant.resource_limits or {}
    with tenant_context(tenant):
        agents = Agent.objects.count()
        totals = AgentMetrics.objects.filter(
            period=AgentMetrics.Period.DAY, period_start__gte=start, period_start__lt=end,
        ).aggregate(messages=Sum("messages"), tokens_in=Sum("tokens_in"), tokens_out=Sum("tokens_out"),
                    cost_usd=Sum("cost_usd"), errors=Sum("errors"))
    tokens_in, tokens_out = totals["tokens_in"] or 0, totals["tokens_out"] or 0
    return Usage(
        tenant_id=tenant.pk, period_start=start, period_end=end,
        agents=Meter(used=agents, limit=limits.get("max_agents")),
        tokens=TokenMeter(used=tokens_in + tokens_out, limit=limits.get("monthly_token_budget"),
                          tokens_in=tokens_in, tokens_out=tokens_out),
        messages=totals["messages"] or 0, errors=totals["errors"] or 0,
        cost_usd=totals["cost_usd"] or Decimal("0"), resource_limits=limits,
    )


# --- The platform dashboard ------------------------------------------------------------------------------


def agent_counts_by_status(schema_names: list[str]) -> dict[str, int]:
    """Agents by status across the given tenant schemas, in ONE query (a UNION ALL of per-schema
    GROUP BY counts; agents_status_created_idx can answer each), instead of one query per tenant.
    Schema names come from the tenants table; they are checked and quoted as identifiers all the
    same, because they are spliced into the SQL."""
    counts = {status: 0 for status in AgentStatus.values}
    names = [name for name in schema_names if is_valid_schema_name(name)]
    if not names:
        return counts
    quote = connection.ops.quote_name
    branches = " UNION ALL ".join(
        f"SELECT status, count(*) AS n FROM {quote(name)}.{quote(Agent._meta.db_table)} GROUP BY status"  # noqa: S608
        for name in names
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT status, SUM(n)::bigint FROM ({branches}) AS per_schema GROUP BY status")  # noqa: S608
        for status, total in cursor.fetchall():
            counts[status] = int(total)
    return counts


def tenant_counts() -> tuple[dict[str, int], dict[str, int]]:
    """(by status, by plan), from one GROUP BY over the tenants table."""
    by_status = {status: 0 for status in Tenant.Status.values}
    by_plan = {plan: 0 for plan in Tenant.Plan.values}
    for row in Tenant.objects.order_by().values("status", "plan").annotate(n=Count("pk")):
        by_status[row["status"]] += row["n"]
        if row["status"] != Tenant.Status.DECOMMISSIONED:  # plans of customers still with us
            by_plan[row["plan"]] += row["n"]
    return by_status, by_plan


def live_schemas() -> QuerySet[Tenant]:
    """Tenants whose schema holds live agent data and exists: checked against the catalog in the
    same query, so a schema missing for whatever reason cannot break the UNION ALL."""
    exists = RawSQL("EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = tenants_tenant.schema_name)", [],
                    output_field=BooleanField())
    return Tenant.objects.filter(status__in=SCHEMA_STATUSES, purged_at__isnull=True).alias(
        has_schema=exists).filter(has_schema=True)


def platform_dashboard() -> dict:
    """The counts a platform admin looks at first. Five queries, whatever the number of tenants."""
    from apps.monitoring import selectors as monitoring

    by_status, by_plan = tenant_counts()
    schema_names = list(live_schemas().values_list("schema_name", flat=True))
    agents = agent_counts_by_status(schema_names)
    alerts = monitoring.open_alert_counts()
    runtimes = monitoring.runtime_health_counts()
    return {
        "tenants": {"total": sum(by_status.values()), "by_status": by_status, "by_plan": by_plan},
        "agents": {"total": sum(agents.values()), "by_status": agents},
        "alerts": alerts,
        "runtimes": runtimes,
        "generated_at": timezone.now(),
    }
