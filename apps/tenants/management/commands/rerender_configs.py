"""manage.py rerender_configs: render every active tenant's OpenClaw config again and apply it."""

from __future__ import annotations

from collections import Counter

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.tenants import tasks
from apps.tenants.management.ops import Progress, get_tenant, write_json
from apps.tenants.models import Tenant, TenantRuntime
from apps.tenants.runtime.base import RuntimeFailure

FAILED = ("invalid", "failed")


def validate_only(tenant: Tenant) -> tuple[str, list[str]]:
    """Render and validate with OpenClaw's schema, change nothing: ("valid" | "invalid", errors)."""
    from apps.agents.openclaw.render import render_tenant_config, validate_config

    runtime = TenantRuntime.objects.filter(tenant=tenant).exclude(state=TenantRuntime.State.REMOVED).first()
    if runtime is None:  # never started: render as its first start would (the port only fills a field)
        runtime = TenantRuntime(tenant=tenant, backend=settings.RUNTIME_BACKEND, port=settings.RUNTIME_PORT_RANGE[0])
    errors = validate_config(render_tenant_config(tenant, runtime))
    return ("invalid" if errors else "valid"), errors


class Command(BaseCommand):
    help = ("Re-render every active tenant's OpenClaw configuration from the database, validate it with "
            "OpenClaw's schema and apply it to the running gateway (hot reload, or a restart when it needs a new "
            "secret). After an Aegis upgrade that changes rendering. An invalid config is never applied and "
            "raises runtime.config_invalid. --dry-run validates only.")

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="render and validate only; apply nothing")
        parser.add_argument("--tenant", action="append", metavar="SLUG", help="only this tenant (repeatable)")
        parser.add_argument("--json", action="store_true", help="print the outcome as JSON")

    def handle(self, *args, dry_run=False, tenant=None, json=False, verbosity=1, **options):
        if tenant:
            tenants = [get_tenant(slug) for slug in tenant]
            inactive = [t.slug for t in tenants if t.status != Tenant.Status.ACTIVE]
            if inactive:
                raise CommandError(f"not active: {', '.join(inactive)} (only active tenants run a gateway)")
        else:
            tenants = list(Tenant.objects.filter(status=Tenant.Status.ACTIVE).order_by("slug"))
        progress = Progress(self.stdout, len(tenants), quiet=json or verbosity == 0)
        results = []
        for item in tenants:
            errors: list[str] = []
            try:
                if dry_run:
                    outcome, errors = validate_only(item)
                else:
                    outcome = tasks.runtime_api().apply_runtime_config(item)
            except RuntimeFailure as exc:
                outcome, errors = "failed", [str(exc)]
            except Exception as exc:  # report every tenant, then fail at the end (as runtime --all does)
                outcome, errors = "failed", [f"{type(exc).__name__}: {exc}"]
            progress.step(item.slug, outcome + (f": {errors[0]}" if errors else ""),
                          self.style.ERROR if outcome in FAILED else None)
            results.append({"slug": item.slug, "outcome": outcome, "errors": errors})
        counts = dict(sorted(Counter(result["outcome"] for result in results).items()))
        if json:
            write_json(self.stdout, {"dryRun": dry_run, "counts": counts, "tenants": results})
        else:
            self.stdout.write(", ".join(f"{n} {outcome}" for outcome, n in counts.items()) or "no active tenant")
        bad = [result["slug"] for result in results if result["outcome"] in FAILED]
        if bad:
            raise CommandError(f"config not applied for: {', '.join(bad)}")
