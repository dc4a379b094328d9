"""Benchmark: API throughput and latency under the production ASGI server, at scale, in one run.

How to run (from the repository root):

    .venv/bin/python -m aegis.devservices exec -- .venv/bin/python bench/api_throughput.py

`aegis.devservices exec` starts the embedded PostgreSQL/Redis when DATABASE_URL/REDIS_URL are
unset and exports them; with DATABASE_URL set it uses that server. Options: `--reset` (drop and
rebuild the bench database), `--duration S` (measured seconds per endpoint and round, default 4),
`--warmup S` (default 1), `--rounds N` (default 2, endpoint order reversed every other round),
`--concurrency N` (throughput pass, default 16), `--latency-concurrency N` (latency pass, default 2;
0 skips it), `--workers N` (server processes, default 2), `--only TEXT` (only the endpoints whose
name contains TEXT, plus the baseline), `--profile` (SQL and cProfile of each endpoint in-process,
no server), `--markdown` (also print the tables as Markdown). A first run loads the data (about
2.5 minutes, once); later runs take about 2.5 minutes of measurement.

What it does, in one run:

1. Data, in a SEPARATE database `aegis_bench` on the server of DATABASE_URL (the dev database is
   never touched): created if missing, `manage.py migrate_platform` (a subprocess with
   DATABASE_URL pointing at the bench database), then loaded through the services: the demo data
   set (roles, approved skills, the platform admin), 50 more tenants (create_tenant + provision,
   each with an admin), and the measured tenant "Bench Measured Co": a Shared Toolbox, two role
   overrides, 200 agents with 1-2 channels and 2-3 skill installs each. Then 1,000,000 audit rows
   across the tenants in one server-side INSERT ... SELECT FROM generate_series, and ANALYZE. A
   marker row (table bench_meta) records the finished load: the next run skips straight to the
   measurement (applying new migrations first, if any). A load that did not finish is rebuilt.
2. The app under uvicorn (`aegis.asgi:application`, `--workers 2`, as the Dockerfile runs it) on
   127.0.0.1, settings bench.settings_bench = aegis.settings.prod plus a bench-only URLconf with the
   baseline view (bench/bench_urls.py); the production URLconf is unchanged. DEBUG off, SSL redirect
   off, rate limit 1000000/s, Redis database 14 for the throttle's counters.
3. Once, cached in bench_meta: a cursor 2,000 pages deep in the platform audit feed, found by
   following `pagination.next` from the first page; and a cursor ~950,000 rows deep, built with
   the paginator's own encoding from the row at that offset.
4. For each endpoint, after a warm-up, N keep-alive connections (an asyncio HTTP/1.1 client in
   this process) send requests back to back for a fixed time: requests/s, p50/p99 latency, the
   server's CPU time per request, SQL queries per request (counted in-process). Two passes:
   throughput (16 connections, the server saturated: latency there is mostly queueing) and latency
   (2 connections: one request in flight per worker). Every response must be a 200; any other
   status, timeout or broken connection is counted and reported loudly (exit status 1).

       GET /healthz                                  no SQL, no auth: the server's fixed cost
       baseline        GET /bench/baseline/agents    one SQL query + JsonResponse, same page
       agents          GET /api/v1/agents?pageSize=25              tenant admin JWT
       agent config    GET /api/v1/agents/{id}/config              32 agents in rotation
       audit           GET /api/v1/platform/audit-logs             platform admin JWT, mfa: true
                       ... ?cursor=<2,000 pages deep>  and  ?cursor=<~row 950,000>

5. The tables and PASS/FAIL against the targets: agent list req/s >= 0.5 x the baseline's
   (throughput pass); audit pages p99 < 50 ms at every depth (latency pass). The server is stopped
   at the end, whatever happens. Exit status: 0 targets met, 1 errors, 2 a target missed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import math
import os
import pstats
import signal
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import support  # noqa: E402
from bench.support import log  # noqa: E402

BENCH_DATABASE = "aegis_bench"
# Bump when the data set changes shape: a bench database loaded by another version is rebuilt.
DATA_VERSION = "1"

MEASURED = {"company_name": "Bench Measured Co", "slug": "bench-measured", "admin": "admin@bench-measured.example"}
OTHER_TENANTS = 50
AGENTS = 200
AUDIT_ROWS = 1_000_000
DEEP_PAGES = 2_000  # followed once, then cached
VERY_DEEP_OFFSET = 950_000
CONFIG_AGENTS = 32  # agents whose configuration is fetched, in rotation

TARGET_AGENT_RATIO = 0.5
TARGET_AUDIT_P99_MS = 50.0

BENCH_REDIS_DB = 14  # the throttle's counters go to their own Redis database, not the dev one


# --- The bench database ------------------------------------------------------------------------


def database_exists(url: str, name: str) -> bool:
    with support.admin_connection(url) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


def bench_environment(database_url: str, redis_url: str) -> dict[str, str]:
    """What the bench process, migrate_platform and the server run with (production settings)."""
    redis = urlsplit(redis_url)
    bench_redis = urlunsplit((redis.scheme, redis.netloc, f"/{BENCH_REDIS_DB}", "", ""))
    return {
        **support.server_environment("bench.settings_bench", database_url, bench_redis),
        "CELERY_BROKER_URL": bench_redis,  # nothing the bench does may reach the dev workers' queue
        "DEBUG": "False",
        # DRF's throttle keeps every request time of the window in one cache entry; a per-second
        # window keeps that list short while the throttle still runs on every request.
        "API_RATE_LIMIT": "1000000/s",
        "CHANNEL_VERIFIER": "local",
    }


def read_meta() -> dict | None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('public.bench_meta') IS NOT NULL")
        if not cursor.fetchone()[0]:
            return None
        cursor.execute("SELECT value FROM public.bench_meta WHERE key = 'data'")
        row = cursor.fetchone()
    if row is None:
        return None
    value = row[0] if isinstance(row[0], dict) else json.loads(row[0])
    return value if value.get("version") == DATA_VERSION else None


def write_meta(value: dict) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS public.bench_meta (key text PRIMARY KEY, value jsonb NOT NULL)")
        cursor.execute("INSERT INTO public.bench_meta (key, value) VALUES ('data', %s) "
                       "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", [json.dumps(value)])


def run_migrate_platform(env: dict[str, str]) -> None:
    log(f"migrate_platform: {support.migrate_platform(env):.1f} s")


def pending_migrations(schemas: list[str]) -> list[str]:
    """Migrations on disk not yet recorded in one of these schemas."""
    from django.db import connection
    from django.db.migrations.loader import MigrationLoader

    pending = []
    try:
        for schema in schemas:
            connection.set_schema(schema)
            loader = MigrationLoader(connection, ignore_no_migrations=True)
            missing = set(loader.graph.nodes) - set(loader.applied_migrations)
            pending += [f"{schema}: {app}.{name}" for app, name in sorted(missing)]
    finally:
        connection.set_schema_to_public()
    return pending


# --- Loading the data set ---------------------------------------------------------------------

ROLE_KEYS = ["executive_assistant", "sales", "support", "engineering", "operations", "custom"]
SKILL_CONFIGS = {  # valid against each demo skill's own JSON Schema
    "calendar": {"provider": "google", "default_meeting_minutes": 25},
    "email-triage": {"labels": ["urgent", "follow-up", "fyi"]},
    "crm-lookup": {"provider": "hubspot"},
    "web-search": {"max_results": 5, "safe_search": "moderate"},
    "github": {"organization": "bench-org", "repositories": ["api", "web"]},
    "jira": {"site_url": "https://bench.atlassian.example", "default_project": "OPS"},
    "knowledge-base": {"collections": ["handbook", "it-help"], "cite_sources": True},
}
AGENT_SKILL_SLUGS = ["calendar", "email-triage", "crm-lookup", "github", "jira"]
CHANNEL_SPECS = [
    {"channel_type": "slack", "name": "Slack",
     "config": {"mode": "socket", "team_id": "T0BENCH01", "dm_policy": "pairing"},
     "secrets": {"bot_token": "xoxb-1000000009-2000000009-BenchNotARealSlackToken",
                 "app_token": "xapp-1-A0BENCH0001-3000000009-benchnotarealtoken"}},
    {"channel_type": "telegram", "name": "Telegram",
     "config": {"dm_policy": "allowlist", "allow_from": ["@bench_user"]},
     "secrets": {"bot_token": "100000009:BenchNotARealTelegramToken_000001"}},
    {"channel_type": "web", "name": "Website chat",
     "config": {"allowed_origins": ["https://www.bench.example"], "greeting": "Hello!"}},
]
WORDS = ["Atlas", "Beacon", "Cobalt", "Delta", "Ember", "Falcon", "Granite", "Harbor", "Iris", "Juniper",
         "Kestrel", "Lumen", "Meridian", "Nimbus", "Onyx", "Pioneer", "Quartz", "Raven", "Summit", "Tundra"]
AUDIT_ACTIONS = ["agent.created", "agent.updated", "agent.paused", "agent.resumed", "agent.channel_created",
                 "agent.channel_updated", "agent.skill_installed", "team.member_added", "tenant.updated",
                 "api_key.created"]


def load_data() -> dict:
    """Everything the measurement reads; returns the marker's contents."""
    from django.db import connection, transaction
    from django_tenants.utils import tenant_context

    from apps.accounts import services as accounts
    from apps.accounts.models import Role, User
    from apps.agents import services as agents
    from apps.agents.models import Agent, RoleOverride, SkillInstallation
    from apps.audit.models import AuditLog
    from apps.audit.services import record
    from apps.skills.models import Skill
    from apps.tenants import demo
    from apps.tenants import services as tenants
    from apps.tenants.models import Tenant

    started = time.perf_counter()
    demo.seed()  # roles, approved skills, the platform admin (with TOTP), the two demo tenants
    log(f"demo data: {time.perf_counter() - started:.1f} s")

    step = time.perf_counter()
    for number in range(OTHER_TENANTS):
        tenant = tenants.create_tenant(
            company_name=f"Bench Tenant {number:02d}", admin_email=f"admin@bench-{number:02d}.example",
            plan=("starter", "growth", "enterprise")[number % 3], slug=f"bench-{number:02d}")
        tenant = tenants.provision(tenant)
        accounts.add_member(tenant=tenant, email=f"admin@bench-{number:02d}.example", password=None,
                            name=f"Admin {number:02d}", role=Role.TENANT_ADMIN)
    log(f"{OTHER_TENANTS} tenants created and provisioned: {time.perf_counter() - step:.1f} s")

    step = time.perf_counter()
    tenant = tenants.create_tenant(
        company_name=MEASURED["company_name"], admin_email=MEASURED["admin"], plan=Tenant.Plan.ENTERPRISE,
        slug=MEASURED["slug"], resource_limits={"max_agents": 1000},
        model_defaults={"thinking_default": "medium", "fallbacks": ["openai/gpt-5-mini"]})
    tenant = tenants.provision(tenant)
    admin = accounts.add_member(tenant=tenant, email=MEASURED["admin"], password=None, name="Bench Admin",
                                role=Role.TENANT_ADMIN)
    skills = {skill.slug: skill for skill in Skill.objects.filter(status=Skill.Status.APPROVED)}
    with tenant_context(tenant), transaction.atomic():
        for slug in ("web-search", "knowledge-base"):  # the Shared Toolbox (no write service yet, as in demo.py)
            installation = SkillInstallation(skill=skills[slug], agent=None, config=SKILL_CONFIGS[slug],
                                             installed_by=admin)
            installation.full_clean()
            installation.save()
            record("toolbox.skill_installed", tenant=tenant, actor=admin, target=installation,
                   changes={"slug": slug, "config": SKILL_CONFIGS[slug]})
        for role, values in {"sales": {"default_skills": ["crm-lookup", "web-search", "calendar"],
                                       "default_settings": {"thinking_mode": "medium"}},
                             "support": {"default_settings": {"model_tier": "balanced"}}}.items():
            override = RoleOverride(role_id=role, **values)
            override.full_clean()
            override.save()
            record("role.override_created", tenant=tenant, actor=admin, target=override, changes=values)
        for number in range(AGENTS):
            word = WORDS[number % len(WORDS)]
            status = Agent.Status.DRAFT if number % 5 == 0 else Agent.Status.ACTIVE
            agent = agents.create_agent(
                tenant=tenant, name=f"{word} agent {number:03d}", role=ROLE_KEYS[number % len(ROLE_KEYS)],
                status=status, model_tier=(None, "fast", "balanced", "powerful")[number % 4],
                thinking_mode=(None, "low", "medium", "high")[(number // 4) % 4],
                assisted_user={"name": f"Person {number}", "email": f"person{number}@bench.example",
                               "title": "Manager", "timezone": "Europe/Berlin"} if number % 2 else {},
                description=f"Bench agent {number}: answers questions about {word.lower()} for the team.",
                actor=admin)
            for spec in (CHANNEL_SPECS[number % 3], CHANNEL_SPECS[(number + 1) % 3])[: 1 + number % 2]:
                agents.create_channel(tenant=tenant, agent_id=agent.pk, actor=admin, **spec)
            slugs = [AGENT_SKILL_SLUGS[(number + k) % len(AGENT_SKILL_SLUGS)] for k in range(2 + number % 2)]
            for slug in slugs:
                agents.install_skill(tenant=tenant, agent_id=agent.pk, skill_id=skills[slug].pk,
                                     config=SKILL_CONFIGS[slug], actor=admin)
            if number % 7 == 0:  # switch off an inherited toolbox skill
                agents.install_skill(tenant=tenant, agent_id=agent.pk, skill_id=skills["knowledge-base"].pk,
                                     enabled=False, actor=admin)
            if status == Agent.Status.ACTIVE and number % 9 == 0:
                agents.pause_agent(tenant=tenant, agent_id=agent.pk, actor=admin)
    log(f"measured tenant: {AGENTS} agents with channels and skills: {time.perf_counter() - step:.1f} s")

    step = time.perf_counter()
    live = list(Tenant.objects.filter(status=Tenant.Status.ACTIVE).values_list("pk", flat=True))
    people = {user.tenant_id: user for user in User.objects.filter(role=Role.TENANT_ADMIN, tenant_id__in=live)}
    pairs = [(tenant_id, people.get(tenant_id)) for tenant_id in live]
    table = connection.ops.quote_name(AuditLog._meta.db_table)
    with connection.cursor() as cursor:
        # One statement, generated by the server: tenant g % n (2% platform-level, no tenant), an
        # actor for 90% of rows (the tenant's admin), distinct timestamps 2.5 s apart going back
        # about 29 days from a day ago (the rows the services wrote above stay the newest).
        cursor.execute(f"""
            INSERT INTO {table} (id, created_at, tenant_id, actor_user_id, actor_api_key_id, actor_label, action,
                                 target_type, target_id, changes, ip, user_agent, request_id)
            SELECT gen_random_uuid(),
                   now() - interval '1 day' - g * interval '2.5 seconds',
                   CASE WHEN g %% 50 = 0 THEN NULL ELSE (%(tenants)s::uuid[])[1 + g %% %(n)s] END,
                   CASE WHEN g %% 50 = 0 OR g %% 10 = 1 THEN NULL ELSE (%(users)s::uuid[])[1 + g %% %(n)s] END,
                   NULL,
                   CASE WHEN g %% 50 = 0 OR g %% 10 = 1 THEN '' ELSE (%(labels)s::text[])[1 + g %% %(n)s] END,
                   (%(actions)s::text[])[1 + g %% %(actions_n)s],
                   'agents.agent', gen_random_uuid()::text,
                   jsonb_build_object('name', jsonb_build_object('before', 'Agent ' || g, 'after', 'Agent ' || g + 1),
                                      'revision', jsonb_build_object('before', g %% 40, 'after', g %% 40 + 1)),
                   ('10.' || g %% 256 || '.' || (g / 256) %% 256 || '.' || (g / 65536) %% 256)::inet,
                   'Mozilla/5.0 (X11; Linux x86_64) aegis-bench/1.0',
                   md5(g::text)
            FROM generate_series(1, %(rows)s) AS g
        """, {  # noqa: S608 (a quoted table name; every value is a parameter)
            "tenants": [str(t) for t, _ in pairs], "users": [str(u.pk) if u else None for _, u in pairs],
              "labels": [u.email if u else "" for _, u in pairs], "n": len(pairs), "actions": AUDIT_ACTIONS,
              "actions_n": len(AUDIT_ACTIONS), "rows": AUDIT_ROWS})
        inserted = cursor.rowcount
    log(f"{inserted:,} audit rows inserted: {time.perf_counter() - step:.1f} s")
    step = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    log(f"ANALYZE: {time.perf_counter() - step:.1f} s")
    return {"version": DATA_VERSION, "tenant_id": str(tenant.pk), "loaded_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "load_seconds": round(time.perf_counter() - started, 1)}


def data_summary(tenant) -> dict:
    from django.db import connection
    from django_tenants.utils import tenant_context

    from apps.agents.models import Agent, AgentChannel, SkillInstallation
    from apps.audit.models import AuditLog
    from apps.tenants.models import Tenant

    with tenant_context(tenant):
        agents = Agent.objects.count()
        channels = AgentChannel.objects.count()
        installs = SkillInstallation.objects.filter(agent__isnull=False).count()
        toolbox = SkillInstallation.objects.filter(agent__isnull=True).count()
    connection.set_schema_to_public()
    return {"tenants": Tenant.objects.filter(status=Tenant.Status.ACTIVE).count(), "agents": agents,
            "channels": channels, "agent skill installs": installs, "toolbox skills": toolbox,
            "audit rows": AuditLog.objects.count()}


# --- Cursors for the deep audit pages -----------------------------------------------------------


def constructed_cursor(offset: int) -> str:
    """The feed's cursor just after the row at `offset`, encoded by the paginator itself."""
    from urllib.parse import parse_qs, urlparse

    from rest_framework.pagination import Cursor

    from aegis.api.pagination import FeedPagination
    from apps.audit.models import AuditLog

    created_at = (AuditLog.objects.order_by("-created_at", "-id").values_list("created_at", flat=True)[offset])
    paginator = FeedPagination()
    paginator.base_url = "http://bench/"
    link = paginator.encode_cursor(Cursor(offset=0, reverse=False, position=str(created_at)))
    return parse_qs(urlparse(link).query)[paginator.cursor_query_param][0]


# --- The HTTP client ------------------------------------------------------------------------------


class HttpError(Exception):
    pass


class Connection:
    """One keep-alive HTTP/1.1 connection to the bench server (GET only)."""

    def __init__(self, port: int):
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
        self.reader = self.writer = None

    async def get(self, raw_request: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port, limit=1 << 20)
        try:
            self.writer.write(raw_request)
            head = await self.reader.readuntil(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            status = int(lines[0].split(b" ", 2)[1])
            headers = {}
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(b":")
                    headers[name.strip().lower()] = value.strip()
            if b"content-length" in headers:
                body = await self.reader.readexactly(int(headers[b"content-length"]))
            elif headers.get(b"transfer-encoding", b"").lower() == b"chunked":
                chunks = []
                while True:
                    size = int((await self.reader.readline()).split(b";")[0].strip(), 16)
                    if size == 0:
                        while (await self.reader.readline()) not in (b"\r\n", b""):
                            pass
                        break
                    chunks.append((await self.reader.readexactly(size + 2))[:-2])
                body = b"".join(chunks)
            else:
                body = await self.reader.read()
                await self.close()
            if headers.get(b"connection", b"").lower() == b"close":
                await self.close()
            return status, body
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, IndexError) as exc:
            await self.close()
            raise HttpError(f"{type(exc).__name__}: {exc}") from exc


def raw_get(path: str, token: str | None, port: int) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Accept: application/json",
             "User-Agent: aegis-bench/1.0"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@dataclass
class Endpoint:
    kind: str  # healthz, baseline, agents, config, audit
    name: str
    paths: list[str]  # requests cycle through these
    token: str | None


@dataclass
class Sample:
    latencies: list[float] = field(default_factory=list)  # seconds, 200 responses only
    seconds: float = 0.0
    errors: int = 0
    error_examples: list[str] = field(default_factory=list)
    server_cpu: float = 0.0  # seconds of CPU the server's processes used during the window
    client_cpu: float = 0.0

    def merge(self, other: Sample) -> None:
        self.latencies += other.latencies
        self.seconds += other.seconds
        self.errors += other.errors
        self.error_examples = (self.error_examples + other.error_examples)[:5]
        self.server_cpu += other.server_cpu
        self.client_cpu += other.client_cpu

    @property
    def requests(self) -> int:
        return len(self.latencies) + self.errors

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile(self, fraction: float) -> float:
        if not self.latencies:
            return math.nan
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1)] * 1000


async def drive(endpoint: Endpoint, port: int, concurrency: int, warmup: float, duration: float,
                pids: list[int], max_requests: int = 500_000) -> Sample:
    """`concurrency` connections sending requests back to back: `warmup` seconds discarded, then
    `duration` seconds measured. Bounded by time and by max_requests."""
    requests = [raw_get(path, endpoint.token, port) for path in endpoint.paths]
    sample = Sample()
    sent = 0
    phase = {"measuring": False}

    async def client(index: int) -> None:
        nonlocal sent
        connection = Connection(port)
        position = index
        try:
            while not stop.is_set() and sent < max_requests:
                request = requests[position % len(requests)]
                position += concurrency
                measuring = phase["measuring"]
                began = time.perf_counter()
                try:
                    async with asyncio.timeout(30):
                        status, body = await connection.get(request)
                except (HttpError, TimeoutError) as exc:
                    await connection.close()
                    if measuring:
                        sample.errors += 1
                        sample.error_examples.append(f"{type(exc).__name__}: {exc}")
                    continue
                elapsed = time.perf_counter() - began
                if not (measuring and phase["measuring"]):
                    continue  # started or ended outside the measured window
                sent += 1
                if status == 200:
                    sample.latencies.append(elapsed)
                else:
                    sample.errors += 1
                    if len(sample.error_examples) < 5:
                        sample.error_examples.append(f"HTTP {status}: {body[:200]!r}")
        finally:
            await connection.close()

    stop = asyncio.Event()
    tasks = [asyncio.create_task(client(index)) for index in range(concurrency)]
    await asyncio.sleep(warmup)
    cpu_before, client_before = support.process_cpu_seconds(pids), time.process_time()
    started = time.perf_counter()
    phase["measuring"] = True
    await asyncio.sleep(duration)
    phase["measuring"] = False
    sample.seconds = time.perf_counter() - started
    sample.server_cpu = support.process_cpu_seconds(pids) - cpu_before
    sample.client_cpu = time.process_time() - client_before
    stop.set()
    await asyncio.gather(*tasks)
    return sample


async def fetch_once(path: str, token: str | None, port: int) -> tuple[int, bytes]:
    connection = Connection(port)
    try:
        return await connection.get(raw_get(path, token, port))
    finally:
        await connection.close()


async def follow_cursor(port: int, token: str, pages: int) -> tuple[str, float]:
    """Follow `pagination.next` from the first page, `pages` times; the cursor and mean latency."""
    connection = Connection(port)
    cursor, total = None, 0.0
    try:
        for page in range(pages):
            path = "/api/v1/platform/audit-logs" + (f"?cursor={cursor}" if cursor else "")
            began = time.perf_counter()
            status, body = await connection.get(raw_get(path, token, port))
            total += time.perf_counter() - began
            if status != 200:
                raise RuntimeError(f"following the audit feed: page {page + 1} answered {status}: {body[:300]!r}")
            cursor = json.loads(body)["pagination"]["next"]
            if cursor is None:
                raise RuntimeError(f"the audit feed ended after {page + 1} pages")
    finally:
        await connection.close()
    return cursor, total / pages


# --- In-process checks: SQL per request, profiles ----------------------------------------------------


def in_process(endpoints: list[Endpoint], profile_requests: int = 0) -> dict[str, int]:
    """SQL queries per request of each endpoint (Django's test client, same settings, WSGI path);
    with profile_requests, a cProfile of that many requests and the SQL of one."""
    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="127.0.0.1")
    counts = {}
    for endpoint in endpoints:
        headers = {"HTTP_AUTHORIZATION": f"Bearer {endpoint.token}"} if endpoint.token else {}
        client.get(endpoint.paths[0], **headers)  # warm caches (URL resolver, serializers)
        reset_queries()
        with CaptureQueriesContext(connection) as captured:
            response = client.get(endpoint.paths[0], **headers)
        if response.status_code != 200:
            raise RuntimeError(f"{endpoint.name}: in-process request answered {response.status_code}: "
                               f"{response.content[:300]!r}")
        counts[endpoint.name] = len(captured.captured_queries)
        if profile_requests:
            print(f"\n=== {endpoint.name}: {endpoint.paths[0]} — {len(captured)} SQL queries ===")
            for query in captured.captured_queries:
                print(f"  {float(query['time']) * 1000:6.2f} ms  {query['sql'][:220]}")
            profiler = cProfile.Profile()
            began = time.perf_counter()
            profiler.enable()
            for index in range(profile_requests):
                client.get(endpoint.paths[index % len(endpoint.paths)], **headers)
            profiler.disable()
            per_request = (time.perf_counter() - began) / profile_requests * 1000
            print(f"  {per_request:.2f} ms per request in-process (single thread, profiler on)")
            for sort in ("cumulative", "tottime"):
                out = io.StringIO()
                pstats.Stats(profiler, stream=out).sort_stats(sort).print_stats(25)
                print(f"--- top 25 by {sort} ---")
                print("\n".join(out.getvalue().splitlines()[6:]))
    return counts


# --- Report -----------------------------------------------------------------------------------------


def table(rows: list[list[str]], header: list[str], markdown: bool) -> str:
    if markdown:
        return support.markdown_table(header, rows)
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return "\n".join([fmt.format(*header), fmt.format(*("-" * w for w in widths))]
                     + [fmt.format(*row) for row in rows])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reset", action="store_true", help="drop and rebuild the bench database")
    parser.add_argument("--duration", type=float, default=4.0, help="measured seconds per endpoint and round")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16, help="connections of the throughput pass")
    parser.add_argument("--latency-concurrency", type=int, default=2,
                        help="connections of the latency pass (0: skip it)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", metavar="TEXT", help="measure only the endpoints whose name contains TEXT "
                                                       "(and the baseline)")
    parser.add_argument("--profile", action="store_true", help="profile each endpoint in-process, then stop")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    if not (0 < args.duration <= 60 and 0 <= args.warmup <= 30 and 1 <= args.rounds <= 10
            and 1 <= args.concurrency <= 256 and 0 <= args.latency_concurrency <= 256 and 1 <= args.workers <= 16):
        parser.error("out of range: duration 0-60, warmup 0-30, rounds 1-10, concurrency 1-256, workers 1-16")

    source_url, redis_url = support.service_urls()
    if urlsplit(source_url).path.lstrip("/") == BENCH_DATABASE:
        sys.exit(f"DATABASE_URL already names {BENCH_DATABASE}: point it at the dev database's server")
    bench_url = support.database_url_with(source_url, BENCH_DATABASE)
    env = bench_environment(bench_url, redis_url)
    env["LOG_LEVEL"] = os.environ.get("LOG_LEVEL", "INFO")  # the server logs as in production
    os.environ.update(env)
    os.environ["LOG_LEVEL"] = "WARNING"  # this process does not log each in-process request
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks

    rebuild = args.reset or not database_exists(source_url, BENCH_DATABASE)
    if rebuild:
        log(f"creating database {BENCH_DATABASE}" + (" (--reset)" if args.reset else ""))
        support.recreate_database(source_url, BENCH_DATABASE)

    import django

    warnings.filterwarnings("ignore", message="No directory at")  # WhiteNoise: no collectstatic in the bench
    django.setup()
    from django.db import connection, connections

    meta = None if rebuild else read_meta()
    if meta is None:
        if not rebuild:
            log(f"{BENCH_DATABASE} has no finished load of data version {DATA_VERSION}: rebuilding it")
            connections.close_all()
            support.recreate_database(source_url, BENCH_DATABASE)
        run_migrate_platform(env)
        meta = load_data()
        write_meta(meta)
        log(f"data loaded in {meta['load_seconds']} s; marker written (next runs reuse it)")
    else:
        log(f"reusing {BENCH_DATABASE} (loaded {meta['loaded_at']}); --reset rebuilds it")

    from aegis.api.authentication import issue_access_token
    from apps.accounts.models import Role, User
    from apps.agents.models import Agent
    from apps.tenants.models import Tenant

    tenant = Tenant.objects.get(pk=meta["tenant_id"])
    pending = pending_migrations(["public", tenant.schema_name])
    if pending:
        log(f"{len(pending)} migration(s) not applied yet (e.g. {pending[0]}): running migrate_platform")
        connections.close_all()
        run_migrate_platform(env)
    summary = data_summary(tenant)
    log("data: " + ", ".join(f"{value:,} {name}" for name, value in summary.items()))

    tenant_admin = User.objects.get(email__iexact=MEASURED["admin"])
    platform_admin = User.objects.filter(role=Role.PLATFORM_ADMIN, is_active=True).order_by("created_at").first()
    tenant_token = str(issue_access_token(tenant_admin, mfa_verified=False))
    platform_token = str(issue_access_token(platform_admin, mfa_verified=True))
    connection.set_tenant(tenant)
    config_ids = [str(pk) for pk in Agent.objects.order_by("created_at").values_list("pk", flat=True)
                  [: AGENTS : max(1, AGENTS // CONFIG_AGENTS)]][:CONFIG_AGENTS]
    connection.set_schema_to_public()

    if "very_deep_cursor" not in meta:
        meta["very_deep_cursor"] = constructed_cursor(VERY_DEEP_OFFSET)
        write_meta(meta)
    audit = "/api/v1/platform/audit-logs"
    deep_name = f"GET audit-logs, page {DEEP_PAGES + 1:,}"
    endpoints = [
        Endpoint("healthz", "GET /healthz (no SQL, no auth)", ["/healthz"], None),
        Endpoint("baseline", "baseline: 1 SQL query, JsonResponse", ["/bench/baseline/agents"], None),
        Endpoint("agents", "GET agents (page of 25)", ["/api/v1/agents?pageSize=25"], tenant_token),
        Endpoint("config", "GET agents/{id}/config", [f"/api/v1/agents/{pk}/config" for pk in config_ids],
                 tenant_token),
        Endpoint("audit", "GET audit-logs, first page", [audit], platform_token),
        Endpoint("audit", deep_name, [f"{audit}?cursor={meta['deep_cursor']}"] if meta.get("deep_cursor") else [],
                 platform_token),  # without a cached cursor: found once the server is up
        Endpoint("audit", f"GET audit-logs, ~row {VERY_DEEP_OFFSET:,}", [f"{audit}?cursor={meta['very_deep_cursor']}"],
                 platform_token),
    ]
    if args.only:
        endpoints = [e for e in endpoints if e.kind == "baseline" or args.only.lower() in e.name.lower()]
    deep = next((e for e in endpoints if e.name == deep_name), None)
    os.environ["BENCH_TENANT_SCHEMA"] = env["BENCH_TENANT_SCHEMA"] = tenant.schema_name

    if args.profile:
        in_process([endpoint for endpoint in endpoints if endpoint.paths], profile_requests=200)
        return 0
    queries = in_process([endpoint for endpoint in endpoints if endpoint.paths])
    connections.close_all()

    port = support.free_port()
    log_dir = Path(tempfile.mkdtemp(prefix="aegis-bench-"))
    log_path = log_dir / "server.log"
    failed = True
    with open(log_path, "wb") as log_file:
        server = support.start_server(env, port, args.workers, log_file)
        try:
            support.wait_healthy(server, port)
            pids = support.server_pids(server.pid)
            log(f"uvicorn pid {server.pid}, {len(pids) - 1} child process(es), port {port}; log {log_path}")
            if deep is not None and not deep.paths:
                log(f"following the audit feed {DEEP_PAGES:,} pages deep (once; cached in bench_meta)")
                cursor, mean = support.run_async(follow_cursor(port, platform_token, DEEP_PAGES))
                meta["deep_cursor"] = cursor
                write_meta(meta)
                connections.close_all()
                log(f"  done: mean {mean * 1000:.1f} ms per page, one connection")
                deep.paths = [f"{audit}?cursor={cursor}"]
                queries.update(in_process([deep]))
                connections.close_all()

            problems = support.run_async(sanity_checks(endpoints, port))
            for problem in problems:
                log(f"CHECK FAILED: {problem}")

            load_before = os.getloadavg()
            passes = [("throughput", args.concurrency)]
            if args.latency_concurrency:
                passes.append(("latency", args.latency_concurrency))
            results: dict[tuple[str, str], Sample] = {}
            for pass_name, concurrency in passes:
                for round_number in range(args.rounds):
                    order = endpoints if round_number % 2 == 0 else endpoints[::-1]
                    for endpoint in order:
                        sample = support.run_async(drive(endpoint, port, concurrency, args.warmup, args.duration, pids))
                        results.setdefault((pass_name, endpoint.name), Sample()).merge(sample)
                        log(f"{pass_name} round {round_number + 1}: {endpoint.name}: {sample.rate:.0f} req/s, "
                            f"p99 {sample.percentile(0.99):.1f} ms, errors {sample.errors}")
            load_after = os.getloadavg()
            failed = False
        except BaseException:
            log(f"server log kept: {log_path}")
            raise
        finally:
            support.stop_server(server)
            log(f"server stopped (exit status {server.returncode})")
    if failed:
        log(f"server log kept: {log_path}")
        return 1

    errors = sum(sample.errors for sample in results.values())
    print()
    print(f"API throughput: {summary['tenants']} tenants, {summary['agents']} agents in the measured tenant, "
          f"{summary['audit rows']:,} audit rows; uvicorn --workers {args.workers}, prod settings; "
          f"{os.cpu_count()} CPUs; load average {load_before[0]:.2f} before, {load_after[0]:.2f} after")
    client_cpu = sum(sample.client_cpu for sample in results.values())
    measured = sum(sample.seconds for sample in results.values())
    print(f"The load generator (this process) used {client_cpu / measured * 100:.0f}% of one CPU while measuring; "
          "server CPU = the uvicorn processes' user+system time (PostgreSQL's not included).")
    verdicts = []
    for pass_name, concurrency in passes:
        baseline = results[(pass_name, endpoints[[e.kind for e in endpoints].index("baseline")].name)]
        rows = []
        for endpoint in endpoints:
            sample = results[(pass_name, endpoint.name)]
            ratio = sample.rate / baseline.rate if baseline.rate else math.nan
            count = len(sample.latencies)
            rows.append([endpoint.name, f"{sample.rate:,.0f}", f"{sample.percentile(0.50):.1f}",
                         f"{sample.percentile(0.99):.1f}", f"{ratio:.2f}",
                         f"{sample.server_cpu / count * 1000:.1f}" if count else "-",
                         str(queries.get(endpoint.name, "-")), str(sample.errors)])
            if endpoint.kind == "agents" and pass_name == "throughput":
                verdicts.append((f"{endpoint.name}: req/s >= {TARGET_AGENT_RATIO} x baseline "
                                 f"({concurrency} connections)", f"{ratio:.2f}", ratio >= TARGET_AGENT_RATIO))
            if endpoint.kind == "audit" and pass_name == "latency":
                p99 = sample.percentile(0.99)
                verdicts.append((f"{endpoint.name}: p99 < {TARGET_AUDIT_P99_MS:.0f} ms ({concurrency} connections)",
                                 f"{p99:.1f} ms", p99 < TARGET_AUDIT_P99_MS))
        print()
        print(f"{pass_name} pass: {concurrency} concurrent connections, {args.rounds} x {args.duration:g} s per "
              f"endpoint after {args.warmup:g} s warm-up")
        header = ["endpoint", "req/s", "p50 ms", "p99 ms", "x baseline", "server CPU ms/req", "SQL/req", "errors"]
        print(table(rows, header, markdown=False))
        if args.markdown:
            print()
            print(table(rows, header, markdown=True))
    if not args.latency_concurrency:
        print("\n(no latency pass: the audit p99 target is judged on it, see docs/performance.md)")
    print()
    for label, value, ok in verdicts:
        print(f"{'PASS' if ok else 'FAIL'}  {label}: {value}")
    if errors or problems:
        print()
        print(f"!!! {errors} request(s) did not answer 200 and {len(problems)} check(s) failed: "
              "the figures above are not valid !!!")
        for (pass_name, name), sample in results.items():
            for example in sample.error_examples:
                print(f"  {pass_name} / {name}: {example}")
        for problem in problems:
            print(f"  check: {problem}")
        return 1
    with contextlib.suppress(OSError):
        log_path.unlink()
        log_dir.rmdir()
    return 0 if all(ok for _, _, ok in verdicts) else 2


async def sanity_checks(endpoints: list[Endpoint], port: int) -> list[str]:
    """Each endpoint answers 200 with what it should; the baseline shows the API's first page."""
    problems, bodies = [], {}
    for endpoint in endpoints:
        status, body = await fetch_once(endpoint.paths[0], endpoint.token, port)
        if status != 200:
            problems.append(f"{endpoint.name}: HTTP {status}: {body[:300]!r}")
            continue
        bodies[endpoint.name] = json.loads(body)
    by_kind = {endpoint.kind: bodies.get(endpoint.name) for endpoint in endpoints}
    api, baseline = by_kind.get("agents"), by_kind.get("baseline")
    if api is not None:
        agents = api["data"]
        if len(agents) != 25 or api["pagination"]["total"] < AGENTS:
            problems.append(f"agents: {len(agents)} on the page, total {api['pagination']['total']}")
        if not all(agent["channels"] and len(agent["skills"]) >= 2 for agent in agents):
            problems.append("agents: an agent without channels or skills on the page")
        if baseline is not None and [a["id"] for a in agents] != [a["id"] for a in baseline["data"]]:
            problems.append("the baseline does not return the API's first page of agents")
    config = by_kind.get("config")
    if config is not None and not config.get("skills"):
        problems.append("agent config: no skills resolved")
    for endpoint in endpoints:
        page = bodies.get(endpoint.name) if endpoint.kind == "audit" else None
        if page is not None and (len(page["data"]) != 50 or not page["pagination"]["next"]):
            problems.append(f"{endpoint.name}: {len(page['data'])} rows, next {page['pagination']['next']!r}")
    return problems


if __name__ == "__main__":
    sys.exit(main())
