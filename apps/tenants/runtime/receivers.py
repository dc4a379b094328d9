"""Configuration changes -> the tenant's running gateway (connected in apps/tenants/apps.py)."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction


def schedule_config_apply(sender, *, tenant, **kwargs) -> None:
    """Receiver of apps.agents.signals.runtime_config_changed: queue apply_runtime_config for the
    tenant once the current transaction (if any) commits. The signal already fires after the
    change's commit; on_commit also covers a sender inside a later transaction."""
    if not settings.TENANT_RUNTIMES_ENABLED:
        return
    from apps.tenants.tasks import apply_runtime_config

    tenant_id = str(tenant.pk)
    transaction.on_commit(lambda: apply_runtime_config.delay(tenant_id))
