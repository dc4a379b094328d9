"""Alert handling by operators: open -> acknowledged -> resolved (or open -> resolved).

Each function locks the alert, changes it and writes its audit row in one transaction.
"""

from __future__ import annotations

import uuid

from django.db import connection, transaction
from django.utils import timezone

from aegis import events
from aegis.domain import InvalidState
from apps.audit.services import record
from apps.monitoring.models import Alert


class AlertStateError(InvalidState):
    """The alert is not in a state that allows the requested transition (API: 409 INVALID_STATE)."""


def _locked(alert: Alert) -> Alert:
    return Alert.objects.select_for_update().get(pk=alert.pk)


@transaction.atomic
def acknowledge_alert(*, alert: Alert, actor, request=None) -> Alert:
    """Someone is on it: the alert stays unresolved but stops asking for attention."""
    alert = _locked(alert)
    if alert.status != Alert.Status.OPEN:
        raise AlertStateError(f"{alert} is {alert.status}; only open alerts can be acknowledged", status=alert.status)
    alert.status, alert.acknowledged_by, alert.acknowledged_at = Alert.Status.ACKNOWLEDGED, actor, timezone.now()
    alert.save(update_fields=["status", "acknowledged_by", "acknowledged_at", "updated_at"])
    record("alert.acknowledged", actor=actor, tenant=alert.tenant, target=alert, request=request,
           changes={"status": {"before": Alert.Status.OPEN, "after": alert.status}})
    return events.publish_alert(alert, "alert.acknowledged")


@transaction.atomic
def resolve_alert(*, alert: Alert, actor, request=None) -> Alert:
    """Close the alert. Its dedup key is free again, so a recurrence opens a new alert."""
    alert = _locked(alert)
    if alert.status == Alert.Status.RESOLVED:
        raise AlertStateError(f"{alert} is already resolved", status=alert.status)
    before = alert.status
    alert.status, alert.resolved_by, alert.resolved_at = Alert.Status.RESOLVED, actor, timezone.now()
    alert.save(update_fields=["status", "resolved_by", "resolved_at", "updated_at"])
    record("alert.resolved", actor=actor, tenant=alert.tenant, target=alert, request=request,
           changes={"status": {"before": before, "after": alert.status}})
    return events.publish_alert(alert, "alert.resolved")


# --- Alerts raised and cleared by the system (provisioning, health checks, config rendering) -------------

# One statement, so two workers raising the same key at once still leave one unresolved alert:
# the partial unique index monitoring_alert_one_open_per_key is the arbiter (its predicate is
# repeated in ON CONFLICT ... WHERE so PostgreSQL can infer it).
_UPSERT_ALERT = """
INSERT INTO monitoring_alert (id, created_at, updated_at, tenant_id, severity, kind, message, status, dedup_key)
VALUES (%(id)s, %(now)s, %(now)s, %(tenant_id)s, %(severity)s, %(kind)s, %(message)s, 'open', %(dedup_key)s)
ON CONFLICT (dedup_key) WHERE NOT (status = 'resolved')
DO UPDATE SET message = EXCLUDED.message, severity = EXCLUDED.severity, updated_at = EXCLUDED.updated_at
RETURNING id
"""


def raise_alert(*, kind: str, severity: str, message: str, dedup_key: str, tenant=None) -> Alert:
    """Open an alert for `dedup_key`, or refresh the unresolved one (its message and severity;
    an acknowledged alert stays acknowledged). Safe to call on every failed check."""
    if severity not in Alert.Severity.values:
        raise ValueError(f"unknown alert severity {severity!r}")
    with connection.cursor() as cursor:
        cursor.execute(_UPSERT_ALERT, {
            "id": uuid.uuid4(), "now": timezone.now(), "tenant_id": getattr(tenant, "pk", tenant),
            "severity": severity, "kind": kind, "message": message, "dedup_key": dedup_key,
        })
        alert_id = cursor.fetchone()[0]
    return events.alert_raised(Alert.objects.get(pk=alert_id))


@transaction.atomic
def auto_resolve(dedup_key: str) -> Alert | None:
    """Resolve the unresolved alert for `dedup_key` because its cause went away (no actor: the
    system). None when nothing was unresolved."""
    alert = Alert.objects.select_for_update().exclude(status=Alert.Status.RESOLVED).filter(dedup_key=dedup_key).first()
    if alert is None:
        return None
    before = alert.status
    alert.status, alert.resolved_at = Alert.Status.RESOLVED, timezone.now()
    alert.save(update_fields=["status", "resolved_at", "updated_at"])
    record("alert.resolved", tenant=alert.tenant, target=alert,
           changes={"status": {"before": before, "after": alert.status}, "automatic": True})
    return events.publish_alert(alert, "alert.resolved")
