"""Periodic monitoring work (beat schedule: settings.CELERY_BEAT_SCHEDULE): runtime health checks
fanned out per tenant, and pruning of old health samples."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from apps.monitoring import health
from apps.monitoring.models import ContainerHealth
from apps.monitoring.retention import delete_older_than
from apps.tenants.models import Tenant, TenantRuntime

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)
def check_runtimes() -> int:
    """Beat, every HEALTH_CHECK_INTERVAL_SECONDS: one check task per active tenant, so one slow
    gateway delays no other. Each expires after an interval: a stale check is worth nothing
    once the next is queued. Returns how many it queued."""
    if not settings.TENANT_RUNTIMES_ENABLED:
        return 0
    ids = [str(pk) for pk in Tenant.objects.filter(status=Tenant.Status.ACTIVE).values_list("pk", flat=True)]
    for tenant_id in ids:
        check_tenant_runtime.apply_async((tenant_id,), expires=settings.HEALTH_CHECK_INTERVAL_SECONDS)
    return len(ids)


@shared_task(acks_late=True)
def check_tenant_runtime(tenant_id: str) -> str | None:
    """One health sample for one active tenant; returns its status (None: not active any more).

    An active tenant with no runtime at all was provisioned without one (by the admin console or
    seed_demo, which provision synchronously, or while TENANT_RUNTIMES_ENABLED was off): its
    runtime is started. A runtime that exists but is down is reported and alerted on, never
    restarted behind the operators' back (it may have been stopped on purpose, or crash in a loop).
    """
    tenant = Tenant.objects.filter(pk=tenant_id, status=Tenant.Status.ACTIVE).first()
    if tenant is None:
        return None
    if not TenantRuntime.objects.filter(tenant=tenant).exists():
        from apps.tenants.tasks import sync_tenant_runtime

        logger.info("tenant %s is active without a runtime: starting one", tenant.slug)
        sync_tenant_runtime.delay(tenant_id)
    return health.check_tenant(tenant).status


@shared_task(acks_late=True)
def prune_health_samples() -> int:
    """Beat, daily: delete ContainerHealth samples older than HEALTH_RETENTION_DAYS, in batches."""
    cutoff = timezone.now() - timedelta(days=settings.HEALTH_RETENTION_DAYS)
    deleted = delete_older_than(ContainerHealth._meta.db_table, "checked_at", cutoff,
                                batch_size=settings.RETENTION_BATCH_SIZE)
    logger.info("pruned %d health samples older than %s", deleted, cutoff.isoformat())
    return deleted
