"""manage.py provision_tenant: create a tenant and provision it, or resume a tenant's provisioning."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from kombu.exceptions import OperationalError as BrokerError

from aegis.domain import DomainError
from apps.tenants import services
from apps.tenants.management.ops import get_tenant, write_json
from apps.tenants.models import Tenant
from apps.tenants.tasks import provision_tenant


class Command(BaseCommand):
    help = ("Create a tenant and provision it (--company-name, --admin-email), or resume the provisioning of "
            "an existing one by slug: `provisioning` is queued again, `failed` is retried, `active` is left alone. "
            "By default the work is queued for a Celery worker; --wait waits for the outcome, --inline does it "
            "in this process (no worker needed).")

    def add_arguments(self, parser):
        parser.add_argument("slug", nargs="?", help="the tenant to resume, or the slug of the new tenant")
        parser.add_argument("--company-name", help="create a new tenant with this name")
        parser.add_argument("--admin-email", help="the new tenant's admin e-mail (with --company-name)")
        parser.add_argument("--plan", default=Tenant.Plan.STARTER, choices=Tenant.Plan.values)
        parser.add_argument("--industry", default="")
        parser.add_argument("--wait", action="store_true", help="wait until the tenant is active or failed")
        parser.add_argument("--inline", action="store_true", help="provision in this process instead of a worker")
        parser.add_argument("--timeout", type=float, default=None,
                            help="seconds --wait waits (default: PROVISIONING_TIMEOUT)")
        parser.add_argument("--json", action="store_true", help="print the outcome as JSON")

    def handle(self, *args, slug=None, company_name=None, admin_email=None, plan=None, industry="", wait=False,
               inline=False, timeout=None, json=False, **options):
        if company_name:
            if not admin_email:
                raise CommandError("--admin-email is required with --company-name")
            tenant = self._create(company_name=company_name, admin_email=admin_email, slug=slug, plan=plan,
                                  industry=industry)
            queued = self._start(tenant, inline=inline)
        else:
            if not slug:
                raise CommandError("give the slug of a tenant to resume, or --company-name and --admin-email "
                                   "to create one")
            tenant = get_tenant(slug)
            queued = self._resume(tenant, inline=inline)
        if wait and queued:
            limit = timeout if timeout is not None else settings.PROVISIONING_TIMEOUT.total_seconds()
            tenant = self._wait(tenant, limit)
        tenant.refresh_from_db()
        outcome = {"slug": tenant.slug, "id": str(tenant.pk), "status": tenant.status,
                   "statusReason": tenant.status_reason, "queued": queued and not inline}
        if json:
            write_json(self.stdout, outcome)
        else:
            self.stdout.write(f"{tenant.slug}: {tenant.status}" + (f" ({tenant.status_reason})" if tenant.status_reason
                                                                    else "")
                              + (" — queued for a worker" if outcome["queued"] and tenant.status == "provisioning"
                                 else ""))
        if tenant.status == Tenant.Status.FAILED:
            raise CommandError(f"provisioning of {tenant.slug} failed: {tenant.status_reason}")

    def _create(self, **fields) -> Tenant:
        try:
            return services.create_tenant(**{k: v for k, v in fields.items() if v is not None})
        except (ValidationError, DomainError) as exc:
            raise CommandError(f"cannot create the tenant: {_message(exc)}") from exc

    def _start(self, tenant: Tenant, *, inline: bool) -> bool:
        if inline:
            provision_tenant.apply(args=(str(tenant.pk),))
        else:
            try:
                provision_tenant.delay(str(tenant.pk))
            except BrokerError as exc:
                raise _not_queued(tenant, exc) from exc
        return True

    def _resume(self, tenant: Tenant, *, inline: bool) -> bool:
        if tenant.status == Tenant.Status.PROVISIONING:
            return self._start(tenant, inline=inline)
        if tenant.status == Tenant.Status.FAILED:
            # retry_provisioning queues the task after its commit; inline, run it here as well
            # (idempotent and locked per tenant, so a worker picking up the queued one too is harmless).
            try:
                services.retry_provisioning(tenant)
            except BrokerError as exc:  # raised by the queuing after the commit: the tenant is provisioning now
                if not inline:
                    raise _not_queued(tenant, exc) from exc
            if inline:
                provision_tenant.apply(args=(str(tenant.pk),))
            return True
        if tenant.status == Tenant.Status.ACTIVE:
            return False
        raise CommandError(f"{tenant.slug} is {tenant.status}: only provisioning, failed or active tenants can be "
                           "provisioned (reactivate a suspended tenant instead)")

    def _wait(self, tenant: Tenant, timeout: float) -> Tenant:
        deadline = time.monotonic() + timeout
        while True:
            tenant.refresh_from_db()
            if tenant.status != Tenant.Status.PROVISIONING:
                return tenant
            if time.monotonic() >= deadline:
                raise CommandError(f"{tenant.slug} is still provisioning after {timeout:.0f} s: is a Celery worker "
                                   "running? (celery -A aegis worker; or rerun with --inline)")
            time.sleep(1)


def _not_queued(tenant: Tenant, exc: Exception) -> CommandError:
    return CommandError(f"{tenant.slug} is provisioning, but its task could not be queued (is Redis running? {exc}). "
                        f"Provision it in this process with `manage.py provision_tenant {tenant.slug} --inline`, or "
                        "rerun without --inline once the broker is back")


def _message(exc: Exception) -> str:
    if isinstance(exc, ValidationError) and hasattr(exc, "message_dict"):
        return "; ".join(f"{field}: {' '.join(messages)}" for field, messages in exc.message_dict.items())
    return str(exc)
