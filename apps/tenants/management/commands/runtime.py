"""manage.py runtime start|stop|restart|status|logs <slug>: one tenant's OpenClaw gateway, now.
`start --all` / `stop --all`: every active tenant's gateway / every gateway that is not stopped."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from kombu.exceptions import OperationalError as BrokerError

from apps.tenants import tasks
from apps.tenants.management.ops import Progress, get_tenant, write_json
from apps.tenants.models import Tenant, TenantRuntime
from apps.tenants.runtime.base import RuntimeFailure, get_backend

ALL_ACTIONS = ("start", "stop")
BUSY = "another lifecycle task is working on it right now; try again shortly"


class Command(BaseCommand):
    help = ("Operate one tenant's runtime synchronously: start (active tenants only; waits until it serves), "
            "stop, restart, status (the live status and the gateway's health JSON) or logs (--tail N lines). "
            "To take a tenant down on purpose, suspend it: a stopped runtime of an active tenant fails its "
            "health checks and raises runtime.unhealthy. `start --all` starts the runtime of every active "
            "tenant (--queue: queue it for the Celery worker and return at once); `stop --all` stops every "
            "runtime that is not stopped already (`make run` does both: its gateways stop with Ctrl-C).")

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        # `runtime stop --json acme`: plain argparse binds the optional slug before the flag, leaves it
        # empty and rejects "acme" as an unrecognized argument; intermixed parsing takes it as the slug.
        parser.parse_args = parser.parse_intermixed_args
        return parser

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["start", "stop", "restart", "status", "logs"])
        parser.add_argument("slug", nargs="?", help="the tenant's slug (or --all)")
        parser.add_argument("--all", action="store_true", dest="all_tenants",
                            help="start: every active tenant's runtime; stop: every runtime not stopped already")
        parser.add_argument("--queue", action="store_true",
                            help="start: queue the start (task sync_tenant_runtime) for the Celery worker and "
                                 "return at once instead of waiting until the gateway serves")
        parser.add_argument("--tail", type=int, default=200, help="log lines to show (logs)")
        parser.add_argument("--json", action="store_true", help="print JSON (start, stop, restart, status)")

    def handle(self, *args, action, slug=None, all_tenants=False, queue=False, tail=200, json=False, verbosity=1,
               **options):
        if all_tenants and action not in ALL_ACTIONS:
            raise CommandError(f"--all goes with start and stop only, not {action}: give a tenant's slug")
        if all_tenants and slug:
            raise CommandError("give a tenant's slug or --all, not both")
        if not all_tenants and not slug:
            raise CommandError(f"which tenant? give its slug, or --all (start and stop): runtime {action} SLUG")
        if queue and action != "start":
            raise CommandError("--queue goes with start only")
        if all_tenants:
            return self._all(action, queue=queue, json=json, quiet=json or verbosity == 0)
        tenant = get_tenant(slug)
        if action == "logs":
            return self._logs(tenant, tail)
        if queue:
            self._require_active(tenant, "start")
            try:
                tasks.sync_tenant_runtime.delay(str(tenant.pk))
            except BrokerError as exc:
                raise CommandError(f"cannot queue the start of {tenant.slug} (is Redis running? {exc}); "
                                   f"`runtime start {tenant.slug}` without --queue starts it in this process") from exc
            return self._report(tenant, "queued", json=json)
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

    def _outcome(self, tenant: Tenant, done: str) -> dict:
        runtime = TenantRuntime.objects.filter(tenant=tenant).first()
        return {"slug": tenant.slug, "action": done, "state": runtime.state if runtime else None,
                "port": runtime.port if runtime else None}

    def _report(self, tenant: Tenant, done: str, *, json: bool) -> None:
        outcome = self._outcome(tenant, done)
        if json:
            write_json(self.stdout, outcome)
        else:
            self.stdout.write(self.style.SUCCESS(f"{tenant.slug}: {done} (state {outcome['state']}, "
                                                 f"port {outcome['port']})"))

    # --- Every tenant (start --all, stop --all) ------------------------------------------------------

    def _all(self, action: str, *, queue: bool, json: bool, quiet: bool) -> None:
        if not settings.TENANT_RUNTIMES_ENABLED:
            if json:
                write_json(self.stdout, {"action": action, "tenants": [], "runtimesEnabled": False})
            else:
                self.stdout.write(f"tenant runtimes are off (TENANT_RUNTIMES_ENABLED): nothing to {action}")
            return
        if action == "start":
            # Every active tenant; one whose runtime runs already keeps it (sync_runtime refreshes it).
            tenants = list(Tenant.objects.filter(status=Tenant.Status.ACTIVE).order_by("slug"))
            one = self._queue_one if queue else self._start_one
        else:
            # Every runtime that is not stopped already, whatever its tenant's status (a gateway
            # that is starting, running or in error, of an active or a suspended tenant).
            tenants = list(Tenant.objects.filter(runtime__isnull=False).exclude(
                runtime__state__in=[TenantRuntime.State.STOPPED, TenantRuntime.State.REMOVED]).order_by("slug"))
            one = self._stop_one
        progress = Progress(self.stdout, len(tenants), quiet=quiet)
        results, left_down = [], []
        for tenant in tenants:
            try:
                done = one(tenant)
            except Exception as exc:  # report every tenant, then fail at the end
                reason = str(exc) if isinstance(exc, RuntimeFailure | CommandError) else f"{type(exc).__name__}: {exc}"
                done = f"failed: {reason}"
            progress.step(tenant.slug, done, self.style.ERROR if done.startswith("failed") else None)
            results.append({**self._outcome(tenant, done.partition(":")[0]), "outcome": done})
            if done == "stopped" and tenant.status == Tenant.Status.ACTIVE:
                left_down.append(tenant.slug)
        if json:
            write_json(self.stdout, {"action": action, **({"queued": queue} if action == "start" else {}),
                                     "tenants": results})
        elif not quiet:
            counts = Counter(result["action"] for result in results)
            self.stdout.write(", ".join(f"{n} {done}" for done, n in sorted(counts.items()))
                              or ("no active tenant" if action == "start" else "no runtime to stop"))
            if left_down:
                self.stderr.write(self.style.WARNING(
                    f"still active, so their health checks fail until `runtime start --all`: {', '.join(left_down)}"))
        failed = [result["slug"] for result in results if result["action"] == "failed"]
        if failed:
            raise CommandError(f"{action} failed for: {', '.join(failed)}")

    def _queue_one(self, tenant: Tenant) -> str:
        tasks.sync_tenant_runtime.delay(str(tenant.pk))
        return "queued"

    def _start_one(self, tenant: Tenant) -> str:
        with tasks.tenant_lock(tenant.pk) as acquired:
            if not acquired:
                raise CommandError(BUSY)
            return tasks.sync_runtime(tenant)

    def _stop_one(self, tenant: Tenant) -> str:
        with tasks.tenant_lock(tenant.pk) as acquired:
            if not acquired:
                raise CommandError(BUSY)
            runtime = TenantRuntime.objects.filter(tenant=tenant).first()
            if runtime is None or runtime.state in (TenantRuntime.State.STOPPED, TenantRuntime.State.REMOVED):
                return "already stopped"  # stopped by someone else since the list was read
            tasks.runtime_api().stop_runtime(tenant)
            return "stopped"

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
