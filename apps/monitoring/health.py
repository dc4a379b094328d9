"""Runtime health: one ContainerHealth sample per check, and the alert that consecutive failed
checks open (and a passing check resolves).

A sample's status says what the check saw:

    healthy      the gateway runs, is live and ready, and its health JSON reports no problem
    degraded     it serves, but something in it is wrong: readiness fails on a channel account
                 (a customer's broken Slack token), its health JSON reports ok: false or plugin
                 errors, or the health call itself failed: some agents may not be answering
    unhealthy    the process or container runs, but the gateway is not serving (not live, or
                 not ready for a reason other than channel accounts)
    unreachable  no gateway to ask (not running, no runtime, or the status call itself failed)

`unhealthy` and `unreachable` are failures. HEALTH_FAILURE_THRESHOLD failures in a row open one
runtime.unhealthy alert per tenant (dedup key `runtime.unhealthy:<tenant id>`), refreshed while
they go on; the first passing sample (healthy or degraded) resolves it.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from aegis import events
from apps.monitoring.models import Alert, ContainerHealth
from apps.monitoring.services import auto_resolve, raise_alert
from apps.tenants.models import Tenant, TenantRuntime
from apps.tenants.runtime.base import RuntimeStatus

logger = logging.getLogger(__name__)

FAILING = frozenset({ContainerHealth.Status.UNHEALTHY, ContainerHealth.Status.UNREACHABLE})


def alert_key(tenant_id) -> str:
    return f"runtime.unhealthy:{tenant_id}"


def problems(details: dict[str, Any]) -> list[str]:
    """What a serving gateway reports as wrong: the backend's probes (details["failing"]: readiness
    checks that fail) and the gateway's own health JSON (details["gateway"], `openclaw gateway health`)."""
    found = []
    if details.get("failing"):
        found.append(f"readiness failing: {', '.join(map(str, details['failing']))}")
    if details.get("gateway_error"):
        found.append(f"health call failed: {details['gateway_error']}")
    health = details.get("gateway") if isinstance(details.get("gateway"), dict) else {}
    if health.get("ok") is False:
        found.append("gateway reports ok: false")
    plugins = health.get("plugins")
    if isinstance(plugins, dict) and plugins.get("errors"):
        found.append(f"plugin errors: {plugins['errors']}")
    channels = health.get("channels")
    entries = channels.items() if isinstance(channels, dict) else enumerate(channels or [])
    for name, channel in entries:
        if not isinstance(channel, dict):
            continue
        error = channel.get("error") or channel.get("lastError")
        if channel.get("ok") is False or error:
            found.append(f"channel {channel.get('id') or name}: {error or 'not ok'}")
    return found


def classify(status: RuntimeStatus) -> str:
    if not status.running:
        return ContainerHealth.Status.UNREACHABLE
    if not status.healthy:
        return ContainerHealth.Status.UNHEALTHY
    return ContainerHealth.Status.DEGRADED if problems(status.details or {}) else ContainerHealth.Status.HEALTHY


def probe(tenant: Tenant) -> RuntimeStatus:
    """The runtime's status; a failing status call is itself an answer (unreachable, with the error)."""
    from apps.tenants.tasks import runtime_api

    try:
        return runtime_api().runtime_status(tenant)
    except Exception as exc:  # the gateway is a third-party process: any failure means "cannot tell"
        logger.warning("runtime status of %s failed: %s", tenant.slug, exc)
        return RuntimeStatus(running=False, healthy=False, details={"error": f"{type(exc).__name__}: {exc}"})


def check_tenant(tenant: Tenant, *, now=None) -> ContainerHealth:
    """Probe the tenant's runtime, record the sample, open or resolve the alert; returns the sample."""
    now = now or timezone.now()
    if TenantRuntime.objects.filter(tenant=tenant).exclude(state=TenantRuntime.State.REMOVED).exists():
        status = probe(tenant)
    else:
        status = RuntimeStatus(running=False, healthy=False, details={"error": "the tenant has no runtime"})
    previous = ContainerHealth.objects.filter(tenant=tenant).values_list("status", flat=True).first()
    with transaction.atomic():
        sample = ContainerHealth.objects.create(
            tenant=tenant, status=classify(status), cpu_percent=status.cpu_percent, memory_mb=status.memory_mb,
            uptime_seconds=status.uptime_seconds, details=status.details or {}, checked_at=now,
        )
        evaluate(tenant, now=now)
        events.publish_health_change(tenant, previous, sample.status, sample)
    return sample


def evaluate(tenant: Tenant, *, now=None) -> Alert | None:
    """Open (or refresh) the tenant's runtime.unhealthy alert after HEALTH_FAILURE_THRESHOLD failed
    samples in a row; resolve it after a passing one. Only recent samples count (twice the time
    the threshold takes), so failures from before a suspension do not add to new ones."""
    now = now or timezone.now()
    threshold = settings.HEALTH_FAILURE_THRESHOLD
    window = timedelta(seconds=2 * threshold * settings.HEALTH_CHECK_INTERVAL_SECONDS)
    recent = list(ContainerHealth.objects.filter(tenant=tenant, checked_at__gt=now - window, checked_at__lte=now)
                  .order_by("-checked_at").values("status", "details")[:threshold])
    if not recent:
        return None
    if recent[0]["status"] not in FAILING:
        return auto_resolve(alert_key(tenant.pk))
    if len(recent) < threshold or any(sample["status"] not in FAILING for sample in recent):
        return None
    last = recent[0]
    details = last["details"] if isinstance(last["details"], dict) else {}
    reason = details.get("error") or details.get("reason")
    return raise_alert(
        kind="runtime.unhealthy", severity=Alert.Severity.CRITICAL, tenant=tenant, dedup_key=alert_key(tenant.pk),
        message=f"The runtime of {tenant.slug} failed {threshold} health checks in a row "
                f"(last: {last['status']}{f': {reason}' if reason else ''}).",
    )
