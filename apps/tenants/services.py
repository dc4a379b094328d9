"""Tenant lifecycle. Every function changes state and writes its audit row in one transaction.

provisioning -> active | failed;  failed -> provisioning (retry);  active <-> suspended;
any but provisioning -> decommissioned (runtime stopped, data kept) -> purged after the grace
period (schema dropped, row kept for the audit trail).

Runtimes follow the status after the commit (`_sync_runtime_after_commit`): a Celery task starts
or stops the tenant's gateway, so no process starts or stops inside a database transaction and
a rolled-back transition touches nothing. Provisioning and purging drive the runtime themselves,
step by step (apps/tenants/tasks.py).
"""

from __future__ import annotations

import copy
import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.text import slugify
from django_tenants.utils import tenant_context

from aegis import events
from aegis.domain import Conflict, InvalidState
from apps.audit.services import diff, record
from apps.tenants import schemas
from apps.tenants.json_schemas import PLAN_RESOURCE_LIMITS
from apps.tenants.models import Domain, Tenant, TenantRuntime

logger = logging.getLogger(__name__)

DECOMMISSION_GRACE = timedelta(days=getattr(settings, "TENANT_DECOMMISSION_GRACE_DAYS", 30))


class TenantStateError(InvalidState):
    """The tenant is not in a state that allows the requested transition (API: 409 INVALID_STATE)."""


def schema_name_for(slug: str) -> str:
    return "t_" + slug.replace("-", "_")


def _require_status(tenant: Tenant, *allowed: str, action: str) -> None:
    if tenant.status not in allowed:
        raise TenantStateError(
            f"cannot {action} a tenant that is {tenant.status} (allowed from: {', '.join(allowed)})",
            status=tenant.status, allowed_from=list(allowed),
        )


def _save_with_audit(tenant: Tenant, action: str, *, actor, request, before: dict, fields: list[str]) -> Tenant:
    tenant.save(update_fields=[*fields, "updated_at"])
    record(action, actor=actor, tenant=tenant, target=tenant, request=request,
           changes={f: {"before": before.get(f), "after": str(getattr(tenant, f))} for f in fields})
    events.publish_tenant_change(tenant, action=action, before=before)
    return tenant


def _ensure_name_free(company_name: str, *, exclude=None) -> None:
    taken = Tenant.objects.filter(company_name__iexact=company_name.strip())
    if exclude is not None:
        taken = taken.exclude(pk=exclude)
    if company_name.strip() and taken.exists():
        raise Conflict(f"A tenant named {company_name.strip()!r} already exists.", field="companyName")  # wire name


@transaction.atomic
def create_tenant(*, company_name: str, admin_email: str, plan: str = Tenant.Plan.STARTER, industry: str = "",
                  expected_agent_count: int = 0, slug: str | None = None, domain: str | None = None,
                  model_defaults: dict | None = None, resource_limits: dict | None = None,
                  actor=None, request=None) -> Tenant:
    """Record a new tenant in `provisioning`. Its schema and runtime come from `provision`.

    `resource_limits` overrides the plan's default limits key by key (a JSON merge patch).
    """
    slug = slug or slugify(company_name)[:40]
    domain = domain or f"{slug}.{settings.TENANT_BASE_DOMAIN}"
    # Duplicates are conflicts (409), not invalid input; the unique indexes still settle races.
    _ensure_name_free(company_name)
    if slug and Tenant.objects.filter(Q(slug=slug) | Q(schema_name=schema_name_for(slug))).exists():
        raise Conflict(f"The slug {slug!r} (or its schema name) is taken; choose another slug.", field="slug")
    if Domain.objects.filter(domain=domain).exists():
        raise Conflict(f"The domain {domain!r} is already routed to a tenant.", field="domain")
    tenant = Tenant(
        company_name=company_name.strip(), slug=slug, schema_name=schema_name_for(slug), admin_email=admin_email,
        plan=plan, industry=industry, expected_agent_count=expected_agent_count,
        model_defaults=merge_patch({}, model_defaults or {}),
        resource_limits=merge_patch(PLAN_RESOURCE_LIMITS.get(plan, {}), resource_limits or {}),
    )
    tenant.full_clean()
    tenant.save()
    Domain.objects.create(tenant=tenant, domain=domain, is_primary=True)
    record("tenant.created", actor=actor, tenant=tenant, target=tenant, request=request,
           changes={"company_name": tenant.company_name, "plan": plan, "admin_email": admin_email})
    return tenant


def schedule_provisioning(tenant: Tenant) -> None:
    """Provision the tenant in a Celery worker once the current transaction commits (never
    before: the worker must see the committed row, and a rolled-back request provisions nothing)."""
    from apps.tenants.tasks import provision_tenant  # the task module imports this one

    tenant_id = str(tenant.pk)
    transaction.on_commit(lambda: provision_tenant.delay(tenant_id))


def _sync_runtime_after_commit(tenant: Tenant) -> None:
    """Once the transition commits, make the runtime match the tenant's status then (running when
    active, stopped otherwise). The task reads the status when it runs, so two quick transitions
    whose tasks run out of order still end in the right state."""
    if not settings.TENANT_RUNTIMES_ENABLED:
        return
    from apps.tenants.tasks import sync_tenant_runtime  # the task module imports this one

    tenant_id = str(tenant.pk)
    transaction.on_commit(lambda: sync_tenant_runtime.delay(tenant_id))


@transaction.atomic
def onboard_tenant(**fields) -> Tenant:
    """`create_tenant`, then provisioning in the background: what the API's POST does."""
    tenant = create_tenant(**fields)
    schedule_provisioning(tenant)
    return tenant


# Settings a platform admin may change after creation (slug and schema name never change).
EDITABLE_FIELDS = ("company_name", "plan", "industry", "expected_agent_count", "model_defaults",
                   "resource_limits", "admin_email")
MERGED_FIELDS = ("model_defaults", "resource_limits")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON Merge Patch: objects merge key by key, `null` removes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _settings_snapshot(tenant: Tenant) -> dict:
    return {field: copy.deepcopy(getattr(tenant, field)) for field in EDITABLE_FIELDS}


@transaction.atomic
def update_tenant(tenant: Tenant, *, changes: dict, actor=None, request=None) -> Tenant:
    """Change a tenant's settings; the audit row lists each changed field's before and after.

    `model_defaults` and `resource_limits` in `changes` are JSON merge patches. A new plan
    without explicit `resource_limits` resets the limits to the new plan's defaults (an upgrade
    must not keep the old plan's caps); with them, the patch applies on top of those defaults.
    A change that changes nothing writes nothing.
    """
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"not editable tenant settings: {sorted(unknown)}")
    tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
    if tenant.status == Tenant.Status.DECOMMISSIONED:
        raise TenantStateError(f"cannot change a tenant that is {tenant.status}", status=tenant.status,
                               allowed_from=[s for s in Tenant.Status.values if s != Tenant.Status.DECOMMISSIONED])
    before = _settings_snapshot(tenant)
    for field, value in changes.items():
        if field in MERGED_FIELDS:
            continue
        setattr(tenant, field, value.strip() if field == "company_name" else value)
    if tenant.plan != before["plan"]:
        tenant.resource_limits = dict(PLAN_RESOURCE_LIMITS.get(tenant.plan, {}))
    for field in MERGED_FIELDS:
        if field in changes:
            setattr(tenant, field, merge_patch(getattr(tenant, field), changes[field]))
    changed = diff(before, _settings_snapshot(tenant))
    if not changed:
        return tenant
    if "company_name" in changed:
        _ensure_name_free(tenant.company_name, exclude=tenant.pk)
    tenant.full_clean()
    tenant.save(update_fields=[*changed, "updated_at"])
    record("tenant.updated", actor=actor, tenant=tenant, target=tenant, request=request, changes=changed)
    return tenant


def _seed_defaults(tenant: Tenant) -> None:
    """What a new tenant starts with: the Shared Toolbox of settings.TENANT_DEFAULT_TOOLBOX (newest
    approved version of each slug, no settings); nothing when the list is empty. A slug with no
    approved version, or whose skill needs settings, is skipped with a warning alert rather than
    failing the customer's onboarding over the platform's configuration."""
    slugs = list(dict.fromkeys(settings.TENANT_DEFAULT_TOOLBOX))
    if not slugs:
        return
    from apps.agents.models import SkillInstallation
    from apps.agents.resolver import newest_approved
    from apps.monitoring.services import raise_alert

    skills = newest_approved(slugs)
    skipped = {slug: "no approved version" for slug in slugs if slug not in skills}
    rows = []
    for slug, skill in skills.items():
        row = SkillInstallation(skill=skill, agent=None, enabled=True, config={})
        try:
            row.clean()
        except ValidationError as exc:
            skipped[slug] = "; ".join(exc.messages)
            continue
        rows.append(row)
    with tenant_context(tenant):
        SkillInstallation.objects.bulk_create(rows)
    record("tenant.defaults_seeded", tenant=tenant, target=tenant,
           changes={"toolbox": sorted(row.skill.slug for row in rows), "skipped": skipped})
    if skipped:
        logger.warning("TENANT_DEFAULT_TOOLBOX entries skipped for %s: %s", tenant.slug, skipped)
        raise_alert(kind="provisioning.defaults_skipped", severity="warning", dedup_key="provisioning.defaults_skipped",
                    message=f"TENANT_DEFAULT_TOOLBOX entries not installed (last: {tenant.slug}): "
                            + ", ".join(f"{slug} ({why})" for slug, why in sorted(skipped.items())))


def _create_schema_with_defaults(tenant: Tenant) -> bool:
    """The schema and its seeded defaults, in the caller's transaction: both or neither."""
    created = schemas.create_schema(tenant.schema_name)
    if created:
        _seed_defaults(tenant)
    return created


def prepare_schema(tenant: Tenant) -> bool:
    """Provisioning's first step: the schema copied from the template, with the tenant's defaults.
    Idempotent: False when the schema already exists (its defaults came with it)."""
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
        _require_status(tenant, Tenant.Status.PROVISIONING, action="provision")
        return _create_schema_with_defaults(tenant)


def provision(tenant: Tenant, *, actor=None, request=None) -> Tenant:
    """Create the tenant's schema (idempotent) and mark it active.

    The Celery task (apps.tenants.tasks.provision_tenant) calls `prepare_schema` and starts the
    runtime first; called alone (admin console, seed_demo, tests), it provisions without a runtime.
    """
    from apps.monitoring.services import auto_resolve

    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
        if tenant.status == Tenant.Status.ACTIVE:
            return tenant
        _require_status(tenant, Tenant.Status.PROVISIONING, action="provision")
        _create_schema_with_defaults(tenant)
        before = {"status": tenant.status}
        tenant.status = Tenant.Status.ACTIVE
        tenant.status_reason = ""
        tenant.provisioned_at = timezone.now()
        tenant = _save_with_audit(tenant, "tenant.provisioned", actor=actor, request=request, before=before,
                                  fields=["status", "status_reason", "provisioned_at"])
        auto_resolve(f"provisioning.failed:{tenant.pk}")  # an earlier attempt's alert: fixed now
        return tenant


@transaction.atomic
def mark_failed(tenant: Tenant, *, reason: str, actor=None, request=None) -> Tenant:
    tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
    _require_status(tenant, Tenant.Status.PROVISIONING, action="fail")
    from apps.monitoring.services import raise_alert

    before = {"status": tenant.status}
    tenant.status, tenant.status_reason = Tenant.Status.FAILED, reason
    tenant = _save_with_audit(tenant, "tenant.provisioning_failed", actor=actor, request=request, before=before,
                              fields=["status", "status_reason"])
    raise_alert(kind="provisioning.failed", severity="critical", tenant=tenant,
                dedup_key=f"provisioning.failed:{tenant.pk}", message=f"Provisioning of {tenant.slug} failed: {reason}")
    _sync_runtime_after_commit(tenant)  # a gateway the failed attempt started is stopped
    return tenant


@transaction.atomic
def retry_provisioning(tenant: Tenant, *, actor=None, request=None) -> Tenant:
    """failed -> provisioning, and provisioning scheduled again (background, after commit)."""
    tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
    _require_status(tenant, Tenant.Status.FAILED, action="retry provisioning of")
    before = {"status": tenant.status}
    tenant.status, tenant.status_reason = Tenant.Status.PROVISIONING, ""
    tenant = _save_with_audit(tenant, "tenant.provisioning_retried", actor=actor, request=request, before=before,
                              fields=["status", "status_reason"])
    schedule_provisioning(tenant)
    return tenant


@transaction.atomic
def suspend(tenant: Tenant, *, reason: str, actor=None, request=None) -> Tenant:
    tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
    _require_status(tenant, Tenant.Status.ACTIVE, action="suspend")
    if not reason.strip():
        raise ValidationError({"reason": "a reason is required to suspend a tenant"}, code="required")
    before = {"status": tenant.status}
    tenant.status, tenant.status_reason, tenant.suspended_at = Tenant.Status.SUSPENDED, reason, timezone.now()
    _sync_runtime_after_commit(tenant)
    return _save_with_audit(tenant, "tenant.suspended", actor=actor, request=request, before=before,
                            fields=["status", "status_reason", "suspended_at"])


@transaction.atomic
def reactivate(tenant: Tenant, *, actor=None, request=None) -> Tenant:
    tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
    _require_status(tenant, Tenant.Status.SUSPENDED, action="reactivate")
    before = {"status": tenant.status}
    tenant.status, tenant.status_reason, tenant.suspended_at = Tenant.Status.ACTIVE, "", None
    _sync_runtime_after_commit(tenant)
    return _save_with_audit(tenant, "tenant.reactivated", actor=actor, request=request, before=before,
                            fields=["status", "status_reason", "suspended_at"])


@transaction.atomic
def decommission(tenant: Tenant, *, actor=None, request=None) -> Tenant:
    """Step one of deletion: stop serving, keep the data until `purge_after`."""
    tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
    _require_status(tenant, Tenant.Status.ACTIVE, Tenant.Status.SUSPENDED, Tenant.Status.FAILED, action="decommission")
    before = {"status": tenant.status}
    now = timezone.now()
    tenant.status, tenant.decommissioned_at = Tenant.Status.DECOMMISSIONED, now
    tenant.purge_after = now + DECOMMISSION_GRACE
    _sync_runtime_after_commit(tenant)
    return _save_with_audit(tenant, "tenant.decommissioned", actor=actor, request=request, before=before,
                            fields=["status", "decommissioned_at", "purge_after"])


@transaction.atomic
def purge(tenant: Tenant, *, actor=None, request=None, now=None) -> Tenant:
    """Step two: drop the schema and the tenant's credentials once the grace period is over.

    The runtime must be gone first (apps.tenants.tasks.purge_tenant removes it, outside any
    transaction): a purged tenant never leaves a gateway's state or token behind.
    """
    tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
    _require_status(tenant, Tenant.Status.DECOMMISSIONED, action="purge")
    now = now or timezone.now()
    if tenant.purged_at is not None:
        return tenant
    if tenant.purge_after > now:
        raise TenantStateError(f"the grace period runs until {tenant.purge_after:%Y-%m-%d %H:%M} UTC",
                               purge_after=tenant.purge_after.isoformat())
    runtime = TenantRuntime.objects.filter(tenant=tenant).exclude(state=TenantRuntime.State.REMOVED).first()
    if runtime is not None:
        raise TenantStateError("remove the tenant's runtime before purging it (manage.py purge_decommissioned does)",
                               runtime_state=runtime.state)
    schemas.drop_schema(tenant.schema_name)
    tenant.api_keys.all().delete()
    tenant.invites.all().delete()
    tenant.users.update(is_active=False)
    tenant.purged_at = now
    return _save_with_audit(tenant, "tenant.purged", actor=actor, request=request, before={"purged_at": None},
                            fields=["purged_at"])
