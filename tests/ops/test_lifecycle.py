"""The runtime follows the tenant's status after each transition commits: suspend stops it,
reactivate starts it, decommission stops it, and the purge after the grace period removes it
before dropping the schema; each step leaves its AuditLog row."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_tenants.utils import schema_exists

from apps.audit.models import AuditLog
from apps.monitoring.models import Alert
from apps.tenants import services, tasks
from apps.tenants.models import Tenant, TenantRuntime
from apps.tenants.runtime.base import RuntimeFailure


@pytest.fixture
def live_tenant(runtime, django_capture_on_commit_callbacks) -> Tenant:
    """A tenant provisioned through the API's path (task after commit), its runtime running."""
    with django_capture_on_commit_callbacks(execute=True):
        tenant = services.onboard_tenant(company_name="Hooli", admin_email="it@hooli.example")
    tenant.refresh_from_db()
    assert tenant.status == Tenant.Status.ACTIVE
    runtime.api.reset_mock()
    return tenant


def transition(capture, function, tenant, **kwargs) -> Tenant:
    with capture(execute=True):
        return function(tenant, **kwargs)


@pytest.mark.django_db
def test_suspend_reactivate_decommission_and_purge_drive_the_runtime_in_order(
        live_tenant, runtime, django_capture_on_commit_callbacks):
    capture, slug = django_capture_on_commit_callbacks, live_tenant.slug

    transition(capture, services.suspend, live_tenant, reason="unpaid invoice")
    assert runtime.calls() == [("stop_runtime", slug)]
    transition(capture, services.reactivate, live_tenant)
    assert runtime.calls()[1:] == [("ensure_runtime", slug), ("start_runtime", slug), ("wait_until_healthy", slug)]
    tenant = transition(capture, services.decommission, live_tenant)
    assert runtime.calls()[4:] == [("stop_runtime", slug)]
    assert TenantRuntime.objects.get(tenant=tenant).state == TenantRuntime.State.STOPPED

    assert tasks.purge_decommissioned.apply().get() == []  # inside the grace period: kept
    assert schema_exists(tenant.schema_name)
    Tenant.objects.filter(pk=tenant.pk).update(purge_after=timezone.now() - timedelta(minutes=1))

    assert tasks.purge_decommissioned.apply().get() == [str(tenant.pk)]

    assert runtime.calls()[5:] == [("remove_runtime", slug)]
    tenant.refresh_from_db()
    assert tenant.purged_at is not None and not schema_exists(tenant.schema_name)
    removed = TenantRuntime.objects.get(tenant=tenant)
    assert (removed.state, removed.port, removed.gateway_token) == ("removed", None, "")  # no secret left
    lifecycle = [a for a in AuditLog.objects.filter(tenant=tenant).order_by("created_at", "id")
                 .values_list("action", flat=True) if a.startswith("tenant.")]
    assert lifecycle[-4:] == ["tenant.suspended", "tenant.reactivated", "tenant.decommissioned", "tenant.purged"]
    assert tasks.purge_decommissioned.apply().get() == []  # purged once, never again


@pytest.mark.django_db
def test_the_runtime_task_reads_the_status_when_it_runs(live_tenant, runtime):
    # Suspended, then reactivated before the stop task ran: the late task starts, not stops.
    services.suspend(live_tenant, reason="unpaid")
    services.reactivate(live_tenant)
    assert tasks.sync_tenant_runtime.apply(args=(str(live_tenant.pk),)).get() == "started"
    assert [name for name, _ in runtime.calls()] == ["ensure_runtime", "start_runtime", "wait_until_healthy"]


@pytest.mark.django_db
def test_a_rolled_back_transition_touches_no_runtime(live_tenant, runtime, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(RuntimeError):
        from django.db import transaction

        with transaction.atomic():
            services.suspend(live_tenant, reason="unpaid")
            raise RuntimeError("the request failed after the suspension")
    assert callbacks == [] and runtime.calls() == []
    live_tenant.refresh_from_db()
    assert live_tenant.status == Tenant.Status.ACTIVE


@pytest.mark.django_db
def test_a_runtime_that_will_not_start_raises_an_alert_that_the_next_success_resolves(
        live_tenant, runtime, django_capture_on_commit_callbacks):
    transition(django_capture_on_commit_callbacks, services.suspend, live_tenant, reason="unpaid")
    runtime.fake.failures["start_runtime"] = [RuntimeFailure("port 19100 is in use")] * (tasks.RUNTIME_MAX_RETRIES + 1)

    transition(django_capture_on_commit_callbacks, services.reactivate, live_tenant)

    alert = Alert.objects.get(tenant=live_tenant, kind="runtime.lifecycle_failed")
    assert alert.status == "open" and "port 19100 is in use" in alert.message
    assert tasks.sync_tenant_runtime.apply(args=(str(live_tenant.pk),)).get() == "started"
    alert.refresh_from_db()
    assert alert.status == Alert.Status.RESOLVED


@pytest.mark.django_db
def test_a_failing_purge_keeps_the_tenant_and_alerts(live_tenant, runtime, django_capture_on_commit_callbacks):
    tenant = transition(django_capture_on_commit_callbacks, services.decommission, live_tenant)
    Tenant.objects.filter(pk=tenant.pk).update(purge_after=timezone.now() - timedelta(days=1))
    runtime.fake.failures["remove_runtime"] = [RuntimeFailure("disk is read-only")] * (tasks.RUNTIME_MAX_RETRIES + 1)

    assert tasks.purge_tenant.apply(args=(str(tenant.pk),)).get() == "failed"

    tenant.refresh_from_db()
    assert tenant.purged_at is None and schema_exists(tenant.schema_name)  # schema kept until the runtime is gone
    assert Alert.objects.get(tenant=tenant, kind="purge.failed").status == "open"
    assert tasks.purge_tenant.apply(args=(str(tenant.pk),)).get() == "purged"
    assert Alert.objects.get(tenant=tenant, kind="purge.failed").status == "resolved"


@pytest.mark.django_db
def test_purge_refuses_while_the_runtime_is_still_there(live_tenant, runtime, django_capture_on_commit_callbacks):
    tenant = transition(django_capture_on_commit_callbacks, services.decommission, live_tenant)
    with pytest.raises(services.TenantStateError, match="remove the tenant's runtime before purging"):
        services.purge(tenant, now=tenant.purge_after + timedelta(seconds=1))
    assert schema_exists(tenant.schema_name)
