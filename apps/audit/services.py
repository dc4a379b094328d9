"""Writing the audit trail. Call `record` inside the transaction of the change it describes,
so the change and its audit row commit or roll back together."""

from __future__ import annotations

from typing import Any

from django.db import models

from apps.audit.models import AuditLog

# Keys whose values never reach the audit trail, wherever they appear in `changes`.
SECRET_KEYS = frozenset({"password", "secrets", "token", "key", "bot_token", "app_token", "signing_secret",
                         "webhook_secret", "hashed_key", "token_hash", "code_hash", "mfa_secret"})


def redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ("[redacted]" if k in SECRET_KEYS else redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def request_context(request) -> dict[str, Any]:
    """IP, user agent and request id of an HTTP request (or nothing, outside one)."""
    if request is None:
        return {}
    return {
        "ip": request.META.get("REMOTE_ADDR") or None,
        "user_agent": request.headers.get("User-Agent", "")[:500],
        "request_id": getattr(request, "request_id", "") or request.headers.get("X-Request-ID", "")[:64],
    }


def actor_label(actor) -> str:
    """How the audit trail names an actor, kept even after the actor row is deleted."""
    from apps.accounts.models import ApiKey, User

    if isinstance(actor, User):
        return actor.email
    if isinstance(actor, ApiKey):
        return f"api-key:{actor.prefix}"
    return ""


def record(
    action: str,
    *,
    actor=None,
    tenant=None,
    target: models.Model | None = None,
    changes: dict | None = None,
    request=None,
) -> AuditLog:
    """Append one audit row. `actor` is a User or an ApiKey (None: the system itself)."""
    from apps.accounts.models import ApiKey, User

    entry = AuditLog(
        action=action,
        tenant=tenant,
        actor_user=actor if isinstance(actor, User) else None,
        actor_api_key=actor if isinstance(actor, ApiKey) else None,
        actor_label=actor_label(actor),
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        changes=redact(changes or {}),
        **request_context(request),
    )
    entry.save(force_insert=True)
    return entry


def diff(before: dict, after: dict) -> dict:
    """Field-level {field: {"before": x, "after": y}} for the fields that changed."""
    return {
        field: {"before": before.get(field), "after": after.get(field)}
        for field in sorted(set(before) | set(after))
        if before.get(field) != after.get(field)
    }
