"""manage.py runtime start|stop|restart|status|logs <slug>: one tenant's OpenClaw gateway, now."""

from __future__ import annotations

from dataclasses import asdict

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.tenants import tasks
from apps.tenants.management.ops import get_tenant, write_json
from apps.tenants.models import Tenant, TenantRuntime
from apps.tenants.runtime.base import RuntimeFailure, get_backend


class Command(BaseCommand):
    help = ("Operate one tenant's runtime synchronously: start (active tenants only; waits until it serves), "
            "stop, restart, status (the live status and the gateway's health JSON) or logs (--tail N lines). "
            "To take a tenant down on purpose, suspend it: a stopped runtime of an active tenant fails its "
            "health checks and raises runtime.unhealthy.")

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["start", "stop", "restart", "status", "logs"])
        parser.add_argument("slug", help="the tenant's slug")
        parser.add_argument("--tail", type=int, default=200, help="log lines to show (logs)")
        parser.add_argument("--json", action="store_true", help="print JSON (start, stop, restart, status)")

    def handle(self, *args, action, slug, tail=200, json=False, **options):
        tenant = get_tenant(slug)
        if action == "logs":
            return self._logs(tenant, tail)
        with tasks.tenant_lock(tenant.pk) as acquired:
            if not acquired:
                raise CommandError(f"another lifecycle task is working on {tenant.slug} right now; try again shortly")
            try:
                getattr(self, f"_{action}")(tenant, json=json)
            except RuntimeFailure as exc:
                raise CommandError(f"{action} failed for {tenant.slug}: {exc}") from exc
        return None

    def _require_active(self, tenant: Tenant, action: str) -> None:
        if tenant.status != Tenant.Status.ACTIVE:
            raise CommandError(f"{tenant.slug} is {tenant.status}: only an active tenant's runtime can {action} "
                               "(reactivate or provision the tenant; its runtime starts then)")

    def _start(self, tenant: Tenant, *, json: bool) -> None:
        self._require_active(tenant, "start")
        tasks.sync_runtime(tenant)
        self._report(tenant, "started", json=json)

    def _restart(self, tenant: Tenant, *, json: bool) -> None:
        self._require_active(tenant, "restart")
        api = tasks.runtime_api()
        api.restart_runtime(tenant)
        api.wait_until_healthy(tenant, timeout=settings.RUNTIME_HEALTH_WAIT_SECONDS)
        self._report(tenant, "restarted", json=json)

    def _stop(self, tenant: Tenant, *, json: bool) -> None:
        if tasks.runtime_api().stop_runtime(tenant) is None:
            raise CommandError(f"{tenant.slug} has no runtime")
        self._report(tenant, "stopped", json=json)
        if tenant.status == Tenant.Status.ACTIVE and not json:
            self.stderr.write(self.style.WARNING(
                f"{tenant.slug} is active: its health checks fail until `runtime start {tenant.slug}`"))

    def _status(self, tenant: Tenant, *, json: bool) -> None:
        status = tasks.runtime_api().runtime_status(tenant)
        if json:
            write_json(self.stdout, {"slug": tenant.slug, **asdict(status)})
            return
        self.stdout.write(f"{tenant.slug}: running={status.running} healthy={status.healthy} "
                          f"cpu={status.cpu_percent}% memory={status.memory_mb} MB uptime={status.uptime_seconds} s")
        write_json(self.stdout, status.details)

    def _report(self, tenant: Tenant, done: str, *, json: bool) -> None:
        runtime = TenantRuntime.objects.filter(tenant=tenant).first()
        outcome = {"slug": tenant.slug, "action": done, "state": runtime.state if runtime else None,
                   "port": runtime.port if runtime else None}
        if json:
            write_json(self.stdout, outcome)
        else:
            self.stdout.write(self.style.SUCCESS(f"{tenant.slug}: {done} (state {outcome['state']}, "
                                                 f"port {outcome['port']})"))

    def _logs(self, tenant: Tenant, tail: int) -> None:
        if tail < 1:
            raise CommandError("--tail must be at least 1")
        runtime = TenantRuntime.objects.select_related("tenant").filter(tenant=tenant).first()
        if runtime is None or runtime.state == TenantRuntime.State.REMOVED:
            raise CommandError(f"{tenant.slug} has no runtime (its logs went with it)")
        try:
            text = get_backend(runtime.backend).logs(runtime, tail=tail)
        except RuntimeFailure as exc:
            raise CommandError(f"cannot read the logs of {tenant.slug}: {exc}") from exc
        self.stdout.write(text or "(the log is empty)")
