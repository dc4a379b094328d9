"""Alert handling by operators: open -> acknowledged -> resolved (or open -> resolved).

Each function locks the alert, changes it and writes its audit row in one transaction.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.audit.services import record
from apps.monitoring.models import Alert


class AlertStateError(ValidationError):
    """The alert is not in a state that allows the requested transition."""


def _locked(alert: Alert) -> Alert:
    return Alert.objects.select_for_update().get(pk=alert.pk)


@transaction.atomic
def acknowledge_alert(*, alert: Alert, actor, request=None) -> Alert:
    """Someone is on it: the alert stays unresolved but stops asking for attention."""
    alert = _locked(alert)
    if alert.status != Alert.Status.OPEN:
        raise AlertStateError(f"{alert} is {alert.status}; only open alerts can be acknowledged", code="invalid_state")
    alert.status, alert.acknowledged_by, alert.acknowledged_at = Alert.Status.ACKNOWLEDGED, actor, timezone.now()
    alert.save(update_fields=["status", "acknowledged_by", "acknowledged_at", "updated_at"])
    record("alert.acknowledged", actor=actor, tenant=alert.tenant, target=alert, request=request,
           changes={"status": {"before": Alert.Status.OPEN, "after": alert.status}})
    return alert


@transaction.atomic
def resolve_alert(*, alert: Alert, actor, request=None) -> Alert:
    """Close the alert. Its dedup key is free again, so a recurrence opens a new alert."""
    alert = _locked(alert)
    if alert.status == Alert.Status.RESOLVED:
        raise AlertStateError(f"{alert} is already resolved", code="invalid_state")
    before = alert.status
    alert.status, alert.resolved_by, alert.resolved_at = Alert.Status.RESOLVED, actor, timezone.now()
    alert.save(update_fields=["status", "resolved_by", "resolved_at", "updated_at"])
    record("alert.resolved", actor=actor, tenant=alert.tenant, target=alert, request=request,
           changes={"status": {"before": before, "after": alert.status}})
    return alert
