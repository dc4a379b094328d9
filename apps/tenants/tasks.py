"""Background work of the tenant lifecycle: provisioning, the runtime following the tenant's
status, purging after the grace period, and the sweep of stuck provisionings.

Every task is idempotent, so a redelivery is harmless (acks_late + reject_on_worker_lost: a
worker that dies mid-task leaves its message on the queue, and another worker runs it again).
Each step checks before it acts (schema exists -> skip; runtime running -> skip), so a rerun
finishes what a killed run started. One lifecycle task per tenant runs at a time (`tenant_lock`).
Transient errors (database, a gateway that did not come up) are retried with exponential backoff.

The runtime services (apps/tenants/runtime/services.py) write the AuditLog row of each runtime
step (runtime.created, runtime.started, runtime.stopped, runtime.removed, ...); the tenant
services write those of the status changes.
"""

from __future__ import annotations

import contextlib
import logging

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.utils import timezone

from apps.tenants import services
from apps.tenants.models import Tenant, TenantRuntime
from apps.tenants.runtime.base import RuntimeFailure

logger = logging.getLogger(__name__)

PROVISION_MAX_RETRIES = 4
RUNTIME_MAX_RETRIES = 4
# Worth another try: the database went away, or a gateway did not start or answer in time.
TRANSIENT_ERRORS = (OperationalError, InterfaceError, RuntimeFailure)
# Namespace of the lifecycle advisory locks (two-int form, so no clash with other advisory locks).
_LOCK_CLASS = 0x4165  # "Ae"


def backoff(retries: int) -> int:
    """Seconds before retry number `retries + 1`: 5, 10, 20, 40, ... capped at 5 minutes."""
    return min(5 * 2**retries, 300)


@contextlib.contextmanager
def tenant_lock(tenant_id: str):
    """Serialise lifecycle work on one tenant across workers; yields False if another holds it.

    A session-level advisory lock: PostgreSQL releases it if the worker dies, so a killed worker
    never leaves the tenant locked. Re-entrant within one connection (eager tasks nest safely).
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s))", [_LOCK_CLASS, str(tenant_id)])
        acquired = cursor.fetchone()[0]
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", [_LOCK_CLASS, str(tenant_id)])


def runtime_api():
    """The runtime services (apps/tenants/runtime/services.py): the one boundary these tasks cross
    to reach a gateway, and the one the tests mock."""
    from apps.tenants.runtime import services as runtime_services

    return runtime_services


def _current_status(tenant_id) -> str:
    return Tenant.objects.values_list("status", flat=True).get(pk=tenant_id)


# --- Provisioning ---------------------------------------------------------------------------------------


def provision_steps(tenant: Tenant) -> None:
    """Schema (with seeded defaults) -> runtime created and started -> healthy. Each step is a
    no-op when already done. Marking the tenant active is the caller's last step."""
    services.prepare_schema(tenant)
    if not settings.TENANT_RUNTIMES_ENABLED:
        return
    runtime = runtime_api()
    runtime.ensure_runtime(tenant)
    runtime.start_runtime(tenant)
    runtime.wait_until_healthy(tenant, timeout=settings.RUNTIME_HEALTH_WAIT_SECONDS)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=PROVISION_MAX_RETRIES)
def provision_tenant(self, tenant_id: str) -> str:
    """Provision the tenant and mark it active; returns its status afterwards ("missing" for an
    unknown id, "busy" when another worker kept it locked through every retry).

    A tenant that is no longer provisioning (done, retried, decommissioned) is left alone.
    Transient errors are retried with backoff; when the retries run out, or on any other error,
    the tenant is marked `failed` with the reason and a provisioning.failed alert, and a gateway
    the attempt started is stopped (services.mark_failed). `retry-provisioning` starts over, and
    finds the finished steps done.
    """
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None:
        logger.warning("provision_tenant: no tenant %s", tenant_id)
        return "missing"
    if tenant.status != Tenant.Status.PROVISIONING:
        return tenant.status
    with tenant_lock(tenant_id) as acquired:
        if not acquired:
            # Another delivery (or an ops command) is on it: look again later, when it has most
            # likely finished the job; the stuck-provisioning sweep covers the rest.
            if self.request.retries < self.max_retries:
                raise self.retry(countdown=backoff(self.request.retries))
            return "busy"
        try:
            provision_steps(tenant)
            return services.provision(tenant).status
        except services.TenantStateError:
            # Changed under us (failed by the sweep, decommissioned): whoever changed it decides.
            return _current_status(tenant_id)
        except TRANSIENT_ERRORS as exc:
            if self.request.retries < self.max_retries:
                raise self.retry(exc=exc, countdown=backoff(self.request.retries)) from exc
            return _fail(tenant, f"gave up after {self.request.retries + 1} attempts: {type(exc).__name__}: {exc}")
        except Exception as exc:
            logger.exception("provisioning tenant %s failed", tenant_id)
            return _fail(tenant, f"provisioning failed: {type(exc).__name__}: {exc}")


def _fail(tenant: Tenant, reason: str) -> str:
    try:
        return services.mark_failed(tenant, reason=reason[:2000]).status
    except services.TenantStateError:
        return _current_status(tenant.pk)


@shared_task(acks_late=True)
def fail_stuck_provisioning() -> list[str]:
    """Periodic: fail tenants still `provisioning` PROVISIONING_TIMEOUT after their last change
    (a lost message, a worker that kept dying). A tenant whose lock a worker holds is being
    provisioned right now, so it is not stuck. Returns the slugs it failed."""
    cutoff = timezone.now() - settings.PROVISIONING_TIMEOUT
    minutes = int(settings.PROVISIONING_TIMEOUT.total_seconds() // 60)
    failed = []
    for tenant in Tenant.objects.filter(status=Tenant.Status.PROVISIONING, updated_at__lt=cutoff):
        with tenant_lock(tenant.pk) as acquired:
            if not acquired:
                continue
            try:
                services.mark_failed(tenant, reason=f"provisioning did not finish within {minutes} minutes; "
                                                    "retry it (retry-provisioning) once the cause is fixed")
            except services.TenantStateError:
                continue  # it finished (or changed) between the query and the lock
            failed.append(tenant.slug)
    if failed:
        logger.warning("failed stuck provisioning of %s", ", ".join(failed))
    return failed


# --- The runtime follows the tenant's status ----------------------------------------------------------------


def sync_runtime(tenant: Tenant) -> str:
    """Make the runtime match the tenant's current status: running (and healthy) when active,
    stopped when suspended, failed or decommissioned. Returns what it did."""
    tenant.refresh_from_db()
    runtime = runtime_api()
    if tenant.status == Tenant.Status.ACTIVE:
        runtime.ensure_runtime(tenant)
        runtime.start_runtime(tenant)
        runtime.wait_until_healthy(tenant, timeout=settings.RUNTIME_HEALTH_WAIT_SECONDS)
        return "started"
    if tenant.status == Tenant.Status.PROVISIONING:
        return "left to provisioning"  # provision_tenant drives the runtime itself
    if not TenantRuntime.objects.filter(tenant=tenant).exclude(state=TenantRuntime.State.REMOVED).exists():
        return "no runtime"
    runtime.stop_runtime(tenant)
    return "stopped"


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=RUNTIME_MAX_RETRIES)
def sync_tenant_runtime(self, tenant_id: str) -> str:
    """After a lifecycle transition (suspend, reactivate, decommission, failed provisioning):
    start or stop the runtime. When the retries run out, a runtime.lifecycle_failed alert says
    what is wrong; the next successful sync resolves it."""
    from apps.monitoring.services import auto_resolve

    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None:
        return "missing"
    with tenant_lock(tenant_id) as acquired:
        try:
            if not acquired:
                raise RuntimeFailure("another lifecycle task holds this tenant")
            done = sync_runtime(tenant)
        except Exception as exc:
            return _retry_or_alert(self, exc, tenant=tenant, kind="runtime.lifecycle_failed", severity="critical",
                                   message=f"The runtime of {tenant.slug} could not be brought in line with its "
                                           f"status ({tenant.status})")
    auto_resolve(f"runtime.lifecycle_failed:{tenant.pk}")
    return done


def _retry_or_alert(task, exc: Exception, *, tenant: Tenant, kind: str, severity: str, message: str) -> str:
    """Retry a transient error with backoff while retries remain; otherwise open (or refresh) the
    alert `kind` for the tenant and give up."""
    from apps.monitoring.services import raise_alert

    if isinstance(exc, TRANSIENT_ERRORS) and task.request.retries < task.max_retries:
        raise task.retry(exc=exc, countdown=backoff(task.request.retries)) from exc
    logger.error("%s: %s", message, exc, exc_info=not isinstance(exc, TRANSIENT_ERRORS))
    raise_alert(kind=kind, severity=severity, tenant=tenant, dedup_key=f"{kind}:{tenant.pk}",
                message=f"{message}: {type(exc).__name__}: {exc}")
    return "failed"


# --- Purging after the grace period --------------------------------------------------------------------------


def due_for_purge(now=None):
    """Decommissioned tenants whose grace period is over and that are not purged yet."""
    return Tenant.objects.filter(status=Tenant.Status.DECOMMISSIONED, purged_at__isnull=True,
                                 purge_after__lte=now or timezone.now()).order_by("purge_after")


def purge_one(tenant: Tenant) -> Tenant:
    """Runtime (process, state folder, port, token) first, then schema and credentials
    (services.purge), each in its own transaction with its AuditLog row. Rerunnable after a crash
    between them: a removed runtime stays removed."""
    if settings.TENANT_RUNTIMES_ENABLED and TenantRuntime.objects.filter(tenant=tenant).exclude(
            state=TenantRuntime.State.REMOVED).exists():
        runtime_api().remove_runtime(tenant)
    return services.purge(tenant)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=RUNTIME_MAX_RETRIES)
def purge_tenant(self, tenant_id: str) -> str:
    """Purge one tenant whose grace period is over (see purge_one); a purge.failed alert when it
    keeps failing (the hourly run tries again)."""
    from apps.monitoring.services import auto_resolve

    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None:
        return "missing"
    with tenant_lock(tenant_id) as acquired:
        if not acquired:
            return "busy"  # the next hourly run tries again
        if not due_for_purge().filter(pk=tenant.pk).exists():
            return "not due"
        try:
            purge_one(tenant)
        except Exception as exc:
            return _retry_or_alert(self, exc, tenant=tenant, kind="purge.failed", severity="warning",
                                   message=f"Purging {tenant.slug} failed (the hourly run tries again)")
    auto_resolve(f"purge.failed:{tenant.pk}")
    return "purged"


@shared_task(acks_late=True)
def purge_decommissioned() -> list[str]:
    """Periodic: one purge_tenant task per tenant past its grace period. Returns their ids."""
    due = [str(pk) for pk in due_for_purge().values_list("pk", flat=True)]
    for tenant_id in due:
        purge_tenant.delay(tenant_id)
    return due


# --- Configuration changes reach the running gateway ---------------------------------------------------------


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=RUNTIME_MAX_RETRIES)
def apply_runtime_config(self, tenant_id: str) -> str:
    """After a committed change to agents, channels, skills, the toolbox or role overrides
    (apps.agents.signals.runtime_config_changed): re-render the tenant's config, validate it and
    hand it to its running gateway (runtime services.apply_runtime_config: "no-runtime",
    "invalid", "unchanged", "reloaded" or "restarted"). Idempotent by config hash, so a burst of
    changes costs one reload and redeliveries nothing. A gateway that keeps refusing the config
    gets a runtime.config_apply_failed alert."""
    from apps.monitoring.services import auto_resolve

    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None:
        return "missing"
    if not settings.TENANT_RUNTIMES_ENABLED:
        return "no-runtime"
    try:
        outcome = runtime_api().apply_runtime_config(tenant)
    except Exception as exc:
        return _retry_or_alert(self, exc, tenant=tenant, kind="runtime.config_apply_failed", severity="warning",
                               message=f"The new configuration of {tenant.slug} could not be applied to its runtime")
    auto_resolve(f"runtime.config_apply_failed:{tenant.pk}")
    return outcome
