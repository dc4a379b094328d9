"""Signals of the agents app.

`runtime_config_changed` fires after a committed change that can alter what a tenant's
OpenClaw runtime is configured with: an agent (created, edited, paused, resumed, deleted), one
of its channels, or one of its skill installations. Receivers get:

    sender   the model class that changed (Agent, AgentChannel or SkillInstallation)
    tenant   the Tenant whose runtime configuration is affected
    agent_id the agent's id (a UUID)
    reason   the audit action of the change, e.g. "agent.updated"

It is sent through `transaction.on_commit`, so receivers never see a change that later rolls
back, and with `send_robust`: the change is already committed when it fires, so a failing
receiver is logged rather than turned into an error for the caller who made the change. The
tenant runtime work connects the receiver that re-renders and reloads the runtime's config.
"""

from __future__ import annotations

import logging
from uuid import UUID

from django.db import transaction
from django.dispatch import Signal

logger = logging.getLogger(__name__)

runtime_config_changed = Signal()


def send_runtime_config_changed(*, sender: type, tenant, agent_id: UUID, reason: str) -> None:
    """Queue `runtime_config_changed` for when the current transaction commits."""

    def send() -> None:
        for receiver, result in runtime_config_changed.send_robust(sender=sender, tenant=tenant, agent_id=agent_id,
                                                                   reason=reason):
            if isinstance(result, Exception):
                logger.error("runtime_config_changed receiver %r failed for tenant %s", receiver, tenant.pk,
                             exc_info=result)

    transaction.on_commit(send)
