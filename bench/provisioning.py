"""Benchmark: time from `POST /api/v1/platform/tenants` to `active`, with real OpenClaw gateways.

How to run (from the repository root; needs `make openclaw` done once):

    .venv/bin/python -m aegis.devservices exec -- .venv/bin/python bench/provisioning.py [--markdown]

`aegis.devservices exec` starts the embedded PostgreSQL/Redis if DATABASE_URL/REDIS_URL are unset.
Options: `--tenants N` (default 3), `--keep-db` (leave the scratch database for inspection),
`--markdown` (also print the table as Markdown, as in docs/performance.md).

What it does:

1. A scratch database `aegis_bench_provisioning` on the server of DATABASE_URL, dropped and
   created afresh (the dev database `aegis` is never touched), migrated by `manage.py
   migrate_platform` in a subprocess. Gateways get their own runtime folder (a temporary
   directory) and ports 19700-19799, so nothing collides with the dev server's gateways.
2. In this process, the local runtime backend and the API through Django's test client, as a
   verified platform admin. Celery runs eagerly: the provisioning task runs when the POST's
   transaction commits, in this process, exactly the code a worker runs (a real worker would add
   its queue latency, a few ms, and could be a dev worker reading the dev database from the
   shared broker: eager mode keeps the bench to itself).
3. N tenants one after another: POST, then the tenant is `active` when the request returns. Each
   phase is timed by wrapping the functions the task calls:

       schema          services.prepare_schema: the template copy and the seeded defaults
       runtime start   runtime services ensure_runtime + start_runtime: port, token, config
                       rendered and validated with OpenClaw's schema, the gateway process spawned
       health wait     wait_until_healthy: until the gateway serves (/health and /readyz)
       rest            everything else: the API request, marking the tenant active, audit rows

   After each tenant its gateway is stopped (one ~650 MB gateway at a time).
4. A table of medians (min, max). Then the cleanup, whatever happened: every bench tenant's runtime
   is removed (processes, state folder, token) and its tenant purged, the runtime folder deleted
   and the scratch database dropped (unless --keep-db).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.support import database_url_with, drop_database, log, migrate_platform, recreate_database  # noqa: E402

SCRATCH_DATABASE = "aegis_bench_provisioning"
PORTS = "19700,19799"
PHASES = ("schema", "runtime start", "health wait", "rest", "total")


def setup(database_url: str, runtime_dir: str) -> None:
    os.environ.update({"DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "aegis.settings.dev",
                       "RUNTIME_DIR": runtime_dir, "RUNTIME_PORT_RANGE": PORTS, "RUNTIME_BACKEND": "local",
                       "TENANT_RUNTIMES_ENABLED": "true", "LOG_LEVEL": "WARNING"})
    log(f"migrate_platform into {SCRATCH_DATABASE}: {migrate_platform():.1f} s")
    import django

    django.setup()
    from aegis.celery import app

    app.conf.task_always_eager = True


class Stopwatch:
    """Wraps functions so each call adds its duration to the current tenant's phase."""

    def __init__(self):
        self.current: dict[str, float] = defaultdict(float)
        self.depth: dict[str, int] = defaultdict(int)

    def wrap(self, owner, name: str, phase: str) -> None:
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            # start_runtime calls ensure_runtime itself: time only the outermost call of a phase.
            self.depth[phase] += 1
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.depth[phase] -= 1
                if not self.depth[phase]:
                    self.current[phase] += time.perf_counter() - started

        setattr(owner, name, timed)


def measure(count: int) -> list[dict[str, float]]:
    from rest_framework.test import APIClient

    from aegis.api.authentication import issue_access_token
    from apps.accounts.models import Role, User
    from apps.tenants import services
    from apps.tenants.models import Tenant
    from apps.tenants.runtime import services as runtime_services

    watch = Stopwatch()
    watch.wrap(services, "prepare_schema", "schema")
    watch.wrap(runtime_services, "ensure_runtime", "runtime start")
    watch.wrap(runtime_services, "start_runtime", "runtime start")
    watch.wrap(runtime_services, "wait_until_healthy", "health wait")

    admin = User.objects.create_user("bench@aegis.example", "bench-password-123", name="Bench",
                                     role=Role.PLATFORM_ADMIN)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_access_token(admin, mfa_verified=True)}")
    results = []
    for n in range(1, count + 1):
        watch.current = defaultdict(float)
        body = {"companyName": f"Bench Provisioning {n}", "adminEmail": f"admin@bench-{n}.example"}
        started = time.perf_counter()
        response = client.post("/api/v1/platform/tenants", body, format="json")
        total = time.perf_counter() - started
        if response.status_code != 202:
            raise SystemExit(f"POST answered {response.status_code}: {response.content[:500]!r}")
        tenant = Tenant.objects.get(pk=response.json()["id"])
        if tenant.status != Tenant.Status.ACTIVE:
            raise SystemExit(f"tenant {tenant.slug} is {tenant.status}: {tenant.status_reason}")
        row = dict(watch.current)
        row["total"] = total
        row["rest"] = total - sum(row.get(phase, 0.0) for phase in ("schema", "runtime start", "health wait"))
        results.append(row)
        log(f"{tenant.slug}: active in {total:.2f} s "
            + ", ".join(f"{phase} {row.get(phase, 0.0):.2f} s" for phase in PHASES[:-1]))
        runtime_services.stop_runtime(tenant)  # one gateway at a time
    return results


def cleanup() -> None:
    """Remove every bench tenant's runtime and purge it, even after a failure half-way."""
    from django.utils import timezone

    from apps.tenants import services
    from apps.tenants.models import Tenant
    from apps.tenants.tasks import purge_one

    for tenant in Tenant.objects.filter(purged_at__isnull=True):
        try:
            if tenant.status != Tenant.Status.DECOMMISSIONED:
                if tenant.status == Tenant.Status.PROVISIONING:
                    tenant = services.mark_failed(tenant, reason="bench cleanup")
                tenant = services.decommission(tenant)
            Tenant.objects.filter(pk=tenant.pk).update(purge_after=timezone.now())
            tenant.refresh_from_db()
            purge_one(tenant)
        except Exception as exc:  # keep cleaning the others; the database is dropped anyway
            log(f"cleanup of {tenant.slug} failed: {exc}")


def report(results: list[dict[str, float]], markdown: bool) -> None:
    rows = []
    for phase in PHASES:
        values = [row.get(phase, 0.0) * 1000 for row in results]
        rows.append((phase, statistics.median(values), min(values), max(values)))
    print(f"\nPOST /api/v1/platform/tenants -> active, local backend, n={len(results)} (ms)")
    print(f"{'phase':<15}{'median':>10}{'min':>10}{'max':>10}")
    for phase, median, low, high in rows:
        print(f"{phase:<15}{median:>10.0f}{low:>10.0f}{high:>10.0f}")
    if markdown:
        print("\n| phase | median | min | max | n |\n| --- | ---: | ---: | ---: | ---: |")
        for phase, median, low, high in rows:
            print(f"| {phase} | {median:.0f} ms | {low:.0f} ms | {high:.0f} ms | {len(results)} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=3)
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL")
    if not url:
        sys.exit("DATABASE_URL is not set: run through `python -m aegis.devservices exec --`")
    recreate_database(url, SCRATCH_DATABASE)
    runtime_dir = tempfile.mkdtemp(prefix="aegis-bench-runtimes-")
    try:
        setup(database_url_with(url, SCRATCH_DATABASE), runtime_dir)
        try:
            results = measure(args.tenants)
        finally:
            cleanup()
        report(results, args.markdown)
    finally:
        from django.db import connections

        connections.close_all()
        shutil.rmtree(runtime_dir, ignore_errors=True)
        if not args.keep_db:
            drop_database(url, SCRATCH_DATABASE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
