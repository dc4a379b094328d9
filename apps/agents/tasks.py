"""Periodic work on the tenants' agent data (beat schedule: settings.CELERY_BEAT_SCHEDULE): metrics
rolled up from AgentActivity into AgentMetrics, and old activity pruned.

Each beat task fans out one task per tenant; the tenant's task enters its schema itself
(tenant_context), so it does not depend on the schema the message was sent from.

Rollups. One INSERT ... SELECT ... ON CONFLICT DO UPDATE per period computes every bucket of the
window from the raw activity and overwrites what is stored: rerunning gives the same numbers, and
an event that arrives late is counted when its bucket is recomputed. Each hourly run recomputes
the last METRICS_RECOMPUTE_HOURS hourly buckets (the current, partial hour included) and the days
they fall in; `rollup_tenant_metrics(tenant_id, since=...)` recomputes from any point back.

    messages        message_received + message_sent events
    tokens_in/out   sums over every event
    cost_usd        sum over every event
    errors          `error` events
    avg_latency_ms  mean latency of the events that carry one (rounded), None when none does
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from celery import shared_task
from django.conf import settings
from django.db import connection
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django_tenants.utils import tenant_context

from apps.agents.models import ActivityKind, AgentActivity, MetricsPeriod
from apps.monitoring.retention import delete_older_than
from apps.tenants.models import Tenant

logger = logging.getLogger(__name__)

# Tenants whose schema holds agent data that may still change: active ones, and suspended ones
# (their data is kept, and events reported just before the suspension may still arrive).
WITH_DATA = (Tenant.Status.ACTIVE, Tenant.Status.SUSPENDED)

_ROLLUP_SQL = """
INSERT INTO agents_agentmetrics AS m (id, created_at, updated_at, agent_id, period, period_start, messages,
                                      tokens_in, tokens_out, cost_usd, errors, avg_latency_ms)
SELECT gen_random_uuid(), now(), now(), agent_id, %(period)s, bucket, messages, tokens_in, tokens_out, cost_usd,
       errors, avg_latency_ms
FROM (
    SELECT agent_id,
           date_trunc(%(period)s, created_at, 'UTC') AS bucket,
           count(*) FILTER (WHERE kind IN (%(received)s, %(sent)s)) AS messages,
           coalesce(sum(tokens_in), 0) AS tokens_in,
           coalesce(sum(tokens_out), 0) AS tokens_out,
           coalesce(sum(cost_usd), 0) AS cost_usd,
           count(*) FILTER (WHERE kind = %(error)s) AS errors,
           round(avg(latency_ms))::integer AS avg_latency_ms
    FROM agents_agentactivity
    WHERE created_at >= %(start)s
    GROUP BY 1, 2
) AS buckets
ON CONFLICT (agent_id, period, period_start) DO UPDATE
SET messages = EXCLUDED.messages, tokens_in = EXCLUDED.tokens_in, tokens_out = EXCLUDED.tokens_out,
    cost_usd = EXCLUDED.cost_usd, errors = EXCLUDED.errors, avg_latency_ms = EXCLUDED.avg_latency_ms,
    updated_at = EXCLUDED.updated_at
-- An unchanged bucket is not rewritten (no dead row, no updated_at churn).
WHERE (m.messages, m.tokens_in, m.tokens_out, m.cost_usd, m.errors, m.avg_latency_ms)
      IS DISTINCT FROM (EXCLUDED.messages, EXCLUDED.tokens_in, EXCLUDED.tokens_out, EXCLUDED.cost_usd,
                        EXCLUDED.errors, EXCLUDED.avg_latency_ms)
"""


def _floor(moment: datetime, period: str) -> datetime:
    moment = moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0) if period == MetricsPeriod.DAY else moment


def rollup_window(now: datetime | None = None) -> datetime:
    """Start of the oldest hourly bucket the regular run recomputes."""
    now = now or timezone.now()
    return _floor(now, MetricsPeriod.HOUR) - timedelta(hours=max(settings.METRICS_RECOMPUTE_HOURS, 1) - 1)


def rollup(since: datetime) -> dict[str, int]:
    """Recompute, in the current tenant schema, every hourly bucket from the hour of `since` and
    every daily bucket from its day on. Returns the buckets written per period."""
    written = {}
    with connection.cursor() as cursor:
        for period in (MetricsPeriod.HOUR, MetricsPeriod.DAY):
            cursor.execute(_ROLLUP_SQL, {
                "period": period, "start": _floor(since, period), "received": ActivityKind.MESSAGE_RECEIVED,
                "sent": ActivityKind.MESSAGE_SENT, "error": ActivityKind.ERROR,
            })
            written[period] = cursor.rowcount
    return written


@shared_task(acks_late=True)
def rollup_tenant_metrics(tenant_id: str, since: str | None = None) -> dict[str, int] | None:
    """Roll up one tenant's metrics from `since` (ISO 8601; default: the regular window)."""
    tenant = Tenant.objects.filter(pk=tenant_id, status__in=WITH_DATA).first()
    if tenant is None:
        return None
    start = parse_datetime(since) if since else rollup_window()
    if start is None:
        raise ValueError(f"since is not an ISO 8601 date-time: {since!r}")
    with tenant_context(tenant):
        return rollup(start)


@shared_task(acks_late=True)
def rollup_metrics() -> int:
    """Beat, hourly: one rollup task per tenant with agent data. Returns how many it queued."""
    ids = [str(pk) for pk in Tenant.objects.filter(status__in=WITH_DATA).values_list("pk", flat=True)]
    for tenant_id in ids:
        rollup_tenant_metrics.delay(tenant_id)
    return len(ids)


@shared_task(acks_late=True)
def prune_tenant_activity(tenant_id: str) -> int | None:
    """Delete one tenant's AgentActivity older than ACTIVITY_RETENTION_DAYS, in batches (its
    metrics stay: they were rolled up long before)."""
    tenant = Tenant.objects.filter(pk=tenant_id, status__in=WITH_DATA).first()
    if tenant is None:
        return None
    cutoff = timezone.now() - timedelta(days=settings.ACTIVITY_RETENTION_DAYS)
    with tenant_context(tenant):
        deleted = delete_older_than(AgentActivity._meta.db_table, "created_at", cutoff,
                                    batch_size=settings.RETENTION_BATCH_SIZE)
    if deleted:
        logger.info("pruned %d activity rows of %s older than %s", deleted, tenant.slug, cutoff.isoformat())
    return deleted


@shared_task(acks_late=True)
def prune_activity() -> int:
    """Beat, daily: one pruning task per tenant with agent data. Returns how many it queued."""
    ids = [str(pk) for pk in Tenant.objects.filter(status__in=WITH_DATA).values_list("pk", flat=True)]
    for tenant_id in ids:
        prune_tenant_activity.delay(tenant_id)
    return len(ids)
