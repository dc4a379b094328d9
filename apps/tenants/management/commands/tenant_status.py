"""manage.py tenant_status: every tenant with its status, runtime and last health sample."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db.models import Count, OuterRef, Q, Subquery
from django.utils import timezone

from apps.monitoring.models import Alert, ContainerHealth
from apps.tenants.management.ops import write_json, write_table
from apps.tenants.models import Tenant


def _age(moment) -> str:
    seconds = int((timezone.now() - moment).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


class Command(BaseCommand):
    help = "A table of tenants: status, runtime state and port, last health check, open alerts."

    def add_arguments(self, parser):
        parser.add_argument("--status", action="append", choices=Tenant.Status.values,
                            help="only tenants in this status (repeatable)")
        parser.add_argument("--all", action="store_true", help="include purged tenants")
        parser.add_argument("--json", action="store_true", help="print JSON instead of a table")

    def handle(self, *args, status=None, all=False, json=False, **options):
        latest = ContainerHealth.objects.filter(tenant=OuterRef("pk")).order_by("-checked_at")
        tenants = (Tenant.objects.select_related("runtime").order_by("slug")
                   .annotate(health_status=Subquery(latest.values("status")[:1]),
                             health_at=Subquery(latest.values("checked_at")[:1]),
                             open_alerts=Count("alerts", filter=~Q(alerts__status=Alert.Status.RESOLVED))))
        if status:
            tenants = tenants.filter(status__in=status)
        if not all:
            tenants = tenants.filter(purged_at__isnull=True)
        rows = [self._row(tenant) for tenant in tenants]
        if json:
            write_json(self.stdout, rows)
            return
        if not rows:
            self.stdout.write("no tenants")
            return
        write_table(self.stdout, ["SLUG", "STATUS", "RUNTIME", "PORT", "HEALTH", "CHECKED", "ALERTS", "COMPANY"], [
            [row["slug"], row["status"], row["runtime"]["state"] if row["runtime"] else None,
             row["runtime"]["port"] if row["runtime"] else None, row["health"]["status"] if row["health"] else None,
             _age(row["health"]["checkedAt"]) if row["health"] else None, row["openAlerts"], row["companyName"]]
            for row in rows
        ])

    def _row(self, tenant: Tenant) -> dict:
        runtime = getattr(tenant, "runtime", None)  # reverse one-to-one: missing row raises, getattr default
        return {
            "id": str(tenant.pk), "slug": tenant.slug, "companyName": tenant.company_name, "status": tenant.status,
            "statusReason": tenant.status_reason,
            "runtime": {"backend": runtime.backend, "state": runtime.state, "port": runtime.port,
                        "startedAt": runtime.started_at, "lastError": runtime.last_error} if runtime else None,
            "health": {"status": tenant.health_status, "checkedAt": tenant.health_at} if tenant.health_status else None,
            "openAlerts": tenant.open_alerts,
        }
