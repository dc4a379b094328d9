"""manage.py purge_decommissioned: purge the decommissioned tenants whose grace period is over."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from apps.tenants.management.ops import Progress, write_json
from apps.tenants.tasks import due_for_purge, purge_one, tenant_lock


class Command(BaseCommand):
    help = ("Purge every decommissioned tenant past its grace period (purge_after): its runtime (process, state, "
            "token), its schema, API keys and invites; the tenant row and its audit trail stay. The beat task "
            "purge_decommissioned does the same hourly. --dry-run lists what would go.")

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="list the tenants that are due, change nothing")
        parser.add_argument("--json", action="store_true", help="print the outcome as JSON")

    def handle(self, *args, dry_run=False, json=False, verbosity=1, **options):
        now = timezone.now()
        due = list(due_for_purge(now))
        results = []
        progress = Progress(self.stdout, len(due), quiet=json or verbosity == 0)
        for tenant in due:
            entry = {"slug": tenant.slug, "id": str(tenant.pk), "purgeAfter": tenant.purge_after}
            if dry_run:
                entry["outcome"] = "would purge"
            else:
                with tenant_lock(tenant.pk) as acquired:
                    if not acquired:
                        entry["outcome"] = "skipped: another task is working on this tenant"
                    else:
                        try:
                            purge_one(tenant)
                            entry["outcome"] = "purged"
                        except Exception as exc:  # report every tenant, then fail at the end
                            entry["outcome"] = f"failed: {type(exc).__name__}: {exc}"
            progress.step(tenant.slug, entry["outcome"],
                          self.style.ERROR if entry["outcome"].startswith("failed") else None)
            results.append(entry)
        if json:
            write_json(self.stdout, {"dryRun": dry_run, "tenants": results})
        elif not due:
            self.stdout.write("no decommissioned tenant is past its grace period")
        failed = [entry["slug"] for entry in results if entry["outcome"].startswith("failed")]
        if failed:
            raise CommandError(f"purging failed for: {', '.join(failed)}")
