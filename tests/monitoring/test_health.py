"""Health checks: one sample per active tenant per run; HEALTH_FAILURE_THRESHOLD failures in a row
open one runtime.unhealthy alert, refreshed while they last and resolved by a passing check."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.monitoring import health, tasks
from apps.monitoring.models import Alert, ContainerHealth
from apps.tenants.models import Tenant, TenantRuntime
from apps.tenants.runtime.base import RuntimeFailure, RuntimeStatus
from tests.api.platform_support import make_tenant
from tests.ops.fakes import HEALTHY_DETAILS

DOWN = RuntimeStatus(running=False, healthy=False, details={"reason": "the gateway process is not running"})
NOT_SERVING = RuntimeStatus(running=True, healthy=False, cpu_percent=0.5, memory_mb=300.0, uptime_seconds=5,
                            details={"live": False, "ready": False, "serving": False, "failing": []})


def with_runtime(tenant: Tenant) -> Tenant:
    TenantRuntime.objects.create(tenant=tenant, backend="local", port=19900 + TenantRuntime.objects.count(),
                                 gateway_token="t", state=TenantRuntime.State.RUNNING)
    return tenant


@pytest.fixture
def tenant(db, runtime) -> Tenant:
    return with_runtime(make_tenant(slug="acme-health"))


def check(tenant, runtime, status, minute: int) -> ContainerHealth:
    runtime.fake.status = status
    return health.check_tenant(tenant, now=T0 + timedelta(minutes=minute))


T0 = timezone.now().replace(microsecond=0) - timedelta(hours=1)


def unresolved(tenant):
    return Alert.objects.filter(tenant=tenant, kind="runtime.unhealthy").exclude(status="resolved")


@pytest.mark.django_db
def test_the_fan_out_samples_every_active_tenant_with_the_gateway_health_json(runtime):
    active = [with_runtime(make_tenant(slug=f"active-{n}")) for n in range(2)]
    suspended = with_runtime(make_tenant(Tenant.Status.SUSPENDED, slug="asleep"))

    assert tasks.check_runtimes.apply().get() == Tenant.objects.filter(status="active").count()

    assert [slug for name, slug in runtime.calls() if name == "runtime_status" and slug.startswith("active-")] == [
        "active-0", "active-1"]
    samples = ContainerHealth.objects.filter(tenant__in=active).order_by("tenant__slug")
    assert [s.tenant_id for s in samples] == [t.pk for t in active]
    sample = samples[0]
    assert (sample.status, sample.cpu_percent, sample.memory_mb, sample.uptime_seconds) == ("healthy", 2.5, 640.0, 42)
    assert sample.details == HEALTHY_DETAILS  # the gateway's own health JSON is kept
    assert not ContainerHealth.objects.filter(tenant=suspended).exists()


@pytest.mark.django_db
def test_nothing_is_checked_when_runtimes_are_not_managed(settings):
    settings.TENANT_RUNTIMES_ENABLED = False
    make_tenant(slug="unmanaged")
    assert tasks.check_runtimes.apply().get() == 0
    assert not ContainerHealth.objects.exists()


@pytest.mark.parametrize(("status", "expected"), [
    (RuntimeStatus(running=True, healthy=True, details=HEALTHY_DETAILS), "healthy"),
    (RuntimeStatus(running=True, healthy=True, details={**HEALTHY_DETAILS, "ready": False, "failing": ["slack"]}),
     "degraded"),
    (RuntimeStatus(running=True, healthy=True, details={**HEALTHY_DETAILS, "gateway": {"ok": False}}), "degraded"),
    (RuntimeStatus(running=True, healthy=True, details={**HEALTHY_DETAILS, "gateway_error": "timed out"}),
     "degraded"),
    (RuntimeStatus(running=True, healthy=True,
                   details={**HEALTHY_DETAILS, "gateway": {"ok": True, "plugins": {"errors": ["imap"]}}}), "degraded"),
    (NOT_SERVING, "unhealthy"),
    (DOWN, "unreachable"),
])
def test_classification(status, expected):
    assert health.classify(status) == expected


@pytest.mark.django_db
def test_consecutive_failures_open_one_alert_and_recovery_resolves_it(tenant, runtime, settings):
    settings.HEALTH_FAILURE_THRESHOLD = 3
    settings.HEALTH_CHECK_INTERVAL_SECONDS = 60

    check(tenant, runtime, DOWN, 0)
    check(tenant, runtime, NOT_SERVING, 1)
    assert not unresolved(tenant).exists()  # two failures: not yet
    check(tenant, runtime, DOWN, 2)
    alert = unresolved(tenant).get()
    assert (alert.severity, alert.status, alert.dedup_key) == ("critical", "open", f"runtime.unhealthy:{tenant.pk}")
    assert alert.message == ("The runtime of acme-health failed 3 health checks in a row "
                             "(last: unreachable: the gateway process is not running).")

    check(tenant, runtime, NOT_SERVING, 3)
    check(tenant, runtime, NOT_SERVING, 4)
    assert unresolved(tenant).count() == 1  # still one alert, refreshed
    assert unresolved(tenant).get().message.endswith("(last: unhealthy).")

    check(tenant, runtime, RuntimeStatus(running=True, healthy=True, details=HEALTHY_DETAILS), 5)
    alert.refresh_from_db()
    assert alert.status == Alert.Status.RESOLVED and alert.resolved_at is not None and alert.resolved_by is None

    for minute in (6, 7, 8):  # it breaks again: a new alert, the old one stays resolved
        check(tenant, runtime, DOWN, minute)
    assert Alert.objects.filter(tenant=tenant, kind="runtime.unhealthy").count() == 2
    assert [s.status for s in ContainerHealth.objects.filter(tenant=tenant).order_by("checked_at")] == [
        "unreachable", "unhealthy", "unreachable", "unhealthy", "unhealthy", "healthy",
        "unreachable", "unreachable", "unreachable"]


@pytest.mark.django_db
def test_an_acknowledged_alert_stays_acknowledged_while_failures_go_on(tenant, runtime, settings):
    settings.HEALTH_FAILURE_THRESHOLD = 2
    check(tenant, runtime, DOWN, 0)
    check(tenant, runtime, DOWN, 1)
    Alert.objects.filter(tenant=tenant).update(status=Alert.Status.ACKNOWLEDGED)
    check(tenant, runtime, DOWN, 2)
    assert list(unresolved(tenant).values_list("status", flat=True)) == ["acknowledged"]


@pytest.mark.django_db
def test_a_degraded_gateway_is_not_a_failure(tenant, runtime, settings):
    settings.HEALTH_FAILURE_THRESHOLD = 2
    check(tenant, runtime, DOWN, 0)
    check(tenant, runtime, DOWN, 1)
    degraded = RuntimeStatus(running=True, healthy=True, details={**HEALTHY_DETAILS, "failing": ["telegram"]})
    assert check(tenant, runtime, degraded, 2).status == "degraded"
    assert not unresolved(tenant).exists()


@pytest.mark.django_db
def test_old_failures_do_not_count_towards_new_ones(tenant, runtime, settings):
    settings.HEALTH_FAILURE_THRESHOLD = 3
    settings.HEALTH_CHECK_INTERVAL_SECONDS = 60
    check(tenant, runtime, DOWN, 0)
    check(tenant, runtime, DOWN, 1)
    check(tenant, runtime, DOWN, 30)  # after a suspension: the first failure of a new run
    assert not unresolved(tenant).exists()


@pytest.mark.django_db
def test_a_status_call_that_fails_is_recorded_as_unreachable_with_the_error(tenant, runtime):
    runtime.fake.failures["runtime_status"] = [RuntimeFailure("gateway call health failed: timeout")]
    sample = health.check_tenant(tenant)
    assert sample.status == "unreachable"
    assert sample.details == {"error": "RuntimeFailure: gateway call health failed: timeout"}


@pytest.mark.django_db
def test_an_active_tenant_without_a_runtime_gets_one_started(runtime):
    tenant = make_tenant(slug="legacy")  # provisioned before runtimes were managed
    assert tasks.check_tenant_runtime.apply(args=(str(tenant.pk),)).get() == "healthy"
    assert [name for name, _ in runtime.calls()] == [
        "ensure_runtime", "start_runtime", "wait_until_healthy", "runtime_status"]
    assert TenantRuntime.objects.get(tenant=tenant).state == TenantRuntime.State.RUNNING


@pytest.mark.django_db
def test_a_stopped_runtime_of_an_active_tenant_is_reported_not_restarted(tenant, runtime):
    TenantRuntime.objects.filter(tenant=tenant).update(state=TenantRuntime.State.STOPPED)
    runtime.fake.status = DOWN
    assert tasks.check_tenant_runtime.apply(args=(str(tenant.pk),)).get() == "unreachable"
    assert [name for name, _ in runtime.calls()] == ["runtime_status"]
