"""Provisioning as the Celery task does it: schema (with seeded defaults) -> runtime started ->
healthy -> active; idempotent, resumable after a worker dies, retried with backoff, failed with
an alert when it cannot finish, and swept when it is stuck."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.db import OperationalError, connection
from django.utils import timezone
from django.utils.text import slugify
from django_tenants.utils import schema_exists, tenant_context

from apps.agents.models import SkillInstallation
from apps.audit.models import AuditLog
from apps.monitoring.models import Alert
from apps.tenants import services, tasks
from apps.tenants.models import Tenant, TenantRuntime
from apps.tenants.runtime.base import RuntimeFailure
from tests.api.agent_factories import make_skill


class WorkerKilled(BaseException):
    """What a SIGKILLed worker looks like from inside: nothing after it runs, no handler sees it."""


def new_tenant(name: str = "Initech") -> Tenant:
    return services.create_tenant(company_name=name, admin_email=f"it@{slugify(name)}.example")


def provision(tenant: Tenant) -> str:
    return tasks.provision_tenant.apply(args=(str(tenant.pk),)).get()


def actions(tenant: Tenant) -> list[str]:
    return list(AuditLog.objects.filter(tenant=tenant).order_by("created_at", "id").values_list("action", flat=True))


def toolbox_slugs(tenant: Tenant) -> list[str]:
    with tenant_context(tenant):
        return sorted(SkillInstallation.objects.filter(agent__isnull=True).values_list("skill__slug", flat=True))


@pytest.mark.django_db
def test_the_task_builds_the_schema_seeds_defaults_starts_the_runtime_and_marks_active(runtime, settings):
    make_skill("web-search", "1.0.0")
    make_skill("web-search", "1.2.0")
    settings.TENANT_DEFAULT_TOOLBOX = ["web-search"]
    tenant = new_tenant()

    assert provision(tenant) == "active"

    tenant.refresh_from_db()
    assert tenant.provisioned_at is not None and tenant.status_reason == ""
    assert schema_exists(tenant.schema_name)
    with tenant_context(tenant):  # the newest approved version, no settings
        assert list(SkillInstallation.objects.values_list("skill__version", "config")) == [("1.2.0", {})]
    assert [name for name, _ in runtime.calls()] == ["ensure_runtime", "start_runtime", "wait_until_healthy"]
    assert runtime.api.wait_until_healthy.call_args.kwargs == {"timeout": settings.RUNTIME_HEALTH_WAIT_SECONDS}
    assert TenantRuntime.objects.get(tenant=tenant).state == TenantRuntime.State.RUNNING
    assert actions(tenant) == ["tenant.created", "tenant.defaults_seeded", "tenant.provisioned"]


@pytest.mark.django_db
def test_running_the_task_twice_gives_the_same_result(runtime, settings):
    make_skill("web-search")
    settings.TENANT_DEFAULT_TOOLBOX = ["web-search"]
    tenant = new_tenant()
    assert provision(tenant) == "active"
    first = (actions(tenant), toolbox_slugs(tenant), list(TenantRuntime.objects.filter(tenant=tenant).values()))

    assert provision(tenant) == "active"  # a redelivery: nothing left to do, nothing done twice

    assert (actions(tenant), toolbox_slugs(tenant), list(TenantRuntime.objects.filter(tenant=tenant).values())) == first
    assert len(runtime.calls()) == 3


@pytest.mark.django_db
def test_a_worker_killed_between_steps_leaves_a_state_the_rerun_finishes(runtime, settings):
    make_skill("web-search")
    settings.TENANT_DEFAULT_TOOLBOX = ["web-search"]
    tenant = new_tenant()
    runtime.fake.failures["ensure_runtime"] = [WorkerKilled()]  # dies right after the schema step

    with pytest.raises(WorkerKilled):
        provision(tenant)
    tenant.refresh_from_db()
    assert tenant.status == Tenant.Status.PROVISIONING  # nothing claims to be done
    assert schema_exists(tenant.schema_name) and toolbox_slugs(tenant) == ["web-search"]
    assert not TenantRuntime.objects.filter(tenant=tenant).exists()

    assert provision(tenant) == "active"  # acks_late: the message is delivered again

    assert toolbox_slugs(tenant) == ["web-search"]  # the schema step was skipped, not redone
    assert TenantRuntime.objects.filter(tenant=tenant, state="running").count() == 1
    assert actions(tenant) == ["tenant.created", "tenant.defaults_seeded", "tenant.provisioned"]


@pytest.mark.django_db
def test_a_worker_killed_after_starting_the_gateway_is_finished_without_a_second_one(runtime):
    tenant = new_tenant()
    runtime.fake.failures["wait_until_healthy"] = [WorkerKilled()]
    with pytest.raises(WorkerKilled):
        provision(tenant)
    assert TenantRuntime.objects.get(tenant=tenant).state == TenantRuntime.State.RUNNING

    assert provision(tenant) == "active"
    assert TenantRuntime.objects.filter(tenant=tenant).count() == 1
    assert actions(tenant).count("tenant.provisioned") == 1


@pytest.mark.django_db
def test_operational_errors_are_retried_with_exponential_backoff(runtime):
    tenant = new_tenant()
    real = services.prepare_schema
    outage = [OperationalError("server closed the connection unexpectedly")] * 2

    def flaky(tenant):
        if outage:
            raise outage.pop()
        return real(tenant)

    with mock.patch.object(services, "prepare_schema", side_effect=flaky), \
            mock.patch.object(tasks.provision_tenant, "retry", wraps=tasks.provision_tenant.retry) as retry:
        assert provision(tenant) == "active"

    assert [call.kwargs["countdown"] for call in retry.call_args_list] == [5, 10]
    assert [tasks.backoff(n) for n in range(8)] == [5, 10, 20, 40, 80, 160, 300, 300]
    assert not Alert.objects.filter(tenant=tenant).exists()


@pytest.mark.django_db
def test_when_the_retries_run_out_the_tenant_fails_with_the_reason_an_alert_and_its_gateway_stopped(
        runtime, django_capture_on_commit_callbacks):
    tenant = new_tenant()
    runtime.fake.failures["wait_until_healthy"] = [
        RuntimeFailure("the gateway did not become ready within 120 s")] * (tasks.PROVISION_MAX_RETRIES + 1)

    with django_capture_on_commit_callbacks(execute=True):
        assert provision(tenant) == "failed"

    tenant.refresh_from_db()
    assert tenant.status_reason == ("gave up after 5 attempts: RuntimeFailure: the gateway did not become ready "
                                    "within 120 s")
    alert = Alert.objects.get(tenant=tenant)
    assert (alert.kind, alert.severity, alert.status, alert.dedup_key) == (
        "provisioning.failed", "critical", "open", f"provisioning.failed:{tenant.pk}")
    assert runtime.calls()[-1] == ("stop_runtime", tenant.slug)  # nothing half-made keeps running
    assert TenantRuntime.objects.get(tenant=tenant).state == TenantRuntime.State.STOPPED

    # Fixed, retried: the same schema and runtime are reused, and the alert resolves itself.
    with django_capture_on_commit_callbacks(execute=True):
        services.retry_provisioning(tenant)
    tenant.refresh_from_db()
    assert tenant.status == Tenant.Status.ACTIVE
    alert.refresh_from_db()
    assert alert.status == Alert.Status.RESOLVED and alert.resolved_by is None
    assert TenantRuntime.objects.filter(tenant=tenant).count() == 1


@pytest.mark.django_db
def test_a_non_transient_error_fails_at_once(runtime):
    tenant = new_tenant()
    with mock.patch.object(services, "prepare_schema", side_effect=ValueError("template is broken")), \
            mock.patch.object(tasks.provision_tenant, "retry") as retry:
        assert provision(tenant) == "failed"
    retry.assert_not_called()
    tenant.refresh_from_db()
    assert tenant.status_reason == "provisioning failed: ValueError: template is broken"


@pytest.mark.django_db
def test_without_managed_runtimes_provisioning_is_the_schema_only(settings):
    settings.TENANT_RUNTIMES_ENABLED = False
    tenant = new_tenant()
    assert provision(tenant) == "active"
    assert schema_exists(tenant.schema_name)
    assert not TenantRuntime.objects.filter(tenant=tenant).exists()


@pytest.mark.django_db
def test_default_toolbox_entries_that_cannot_be_installed_are_skipped_with_a_warning_alert(runtime, settings):
    make_skill("web-search")
    make_skill("jira", configuration={"type": "object", "required": ["site_url"],
                                      "properties": {"site_url": {"type": "string"}}})
    make_skill("beta-tool", status="pending")
    settings.TENANT_DEFAULT_TOOLBOX = ["web-search", "jira", "beta-tool", "no-such-skill"]
    tenant = new_tenant()

    assert provision(tenant) == "active"  # the platform's configuration does not block onboarding

    assert toolbox_slugs(tenant) == ["web-search"]
    seeded = AuditLog.objects.get(tenant=tenant, action="tenant.defaults_seeded").changes
    assert seeded["toolbox"] == ["web-search"]
    assert set(seeded["skipped"]) == {"jira", "beta-tool", "no-such-skill"}
    alert = Alert.objects.get(kind="provisioning.defaults_skipped")
    assert alert.severity == "warning" and "no-such-skill (no approved version)" in alert.message


@pytest.mark.django_db
def test_a_tenant_that_is_no_longer_provisioning_is_left_alone(runtime):
    tenant = new_tenant()
    services.mark_failed(tenant, reason="operator gave up")
    assert provision(tenant) == "failed"
    assert tasks.provision_tenant.apply(args=("00000000-0000-0000-0000-000000000000",)).get() == "missing"
    assert runtime.calls() == []


def _hold_lock_elsewhere(tenant):
    """Another database session (another worker) holding the tenant's lifecycle lock."""
    other = connection.get_new_connection(connection.get_connection_params())
    other.autocommit = True
    other.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", [tasks._LOCK_CLASS, str(tenant.pk)])
    return other


@pytest.mark.django_db
def test_a_delivery_while_another_worker_holds_the_tenant_waits_and_does_nothing(runtime):
    tenant = new_tenant()
    other = _hold_lock_elsewhere(tenant)
    try:
        with mock.patch.object(tasks.provision_tenant, "retry", wraps=tasks.provision_tenant.retry) as retry:
            assert provision(tenant) == "busy"  # it looked again later, every time in vain
    finally:
        other.close()  # the worker's connection ends: PostgreSQL releases its lock
    assert retry.call_count == tasks.PROVISION_MAX_RETRIES
    assert runtime.calls() == []
    assert provision(tenant) == "active"


@pytest.mark.django_db
def test_the_sweep_fails_tenants_stuck_in_provisioning_past_the_timeout(settings, django_capture_on_commit_callbacks):
    settings.PROVISIONING_TIMEOUT = timedelta(minutes=15)
    stuck, fresh, busy = new_tenant("Stuck Co"), new_tenant("Fresh Co"), new_tenant("Busy Co")
    Tenant.objects.filter(pk__in=[stuck.pk, busy.pk]).update(updated_at=timezone.now() - timedelta(minutes=16))
    other = _hold_lock_elsewhere(busy)  # a worker is on it right now: slow, not stuck
    try:
        assert tasks.fail_stuck_provisioning.apply().get() == ["stuck-co"]
    finally:
        other.close()

    stuck.refresh_from_db()
    assert stuck.status == Tenant.Status.FAILED
    assert stuck.status_reason.startswith("provisioning did not finish within 15 minutes")
    assert Alert.objects.filter(tenant=stuck, kind="provisioning.failed", status="open").count() == 1
    assert Tenant.objects.get(pk=fresh.pk).status == Tenant.Status.PROVISIONING
    assert Tenant.objects.get(pk=busy.pk).status == Tenant.Status.PROVISIONING
    assert tasks.fail_stuck_provisioning.apply().get() == ["busy-co"]  # unlocked and still stuck: now failed
