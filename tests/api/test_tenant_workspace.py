"""The tenant's own workspace: GET dashboard, GET|PATCH tenant, GET tenant/usage.

These endpoints take no ids (the tenant is the credential's), so isolation is proven by content:
tenant B's admin sees B's numbers and profile, and its changes land on B."""

from __future__ import annotations

import json
from datetime import UTC, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.agents.models import AgentChannel, AgentMetrics
from apps.audit.models import AuditLog
from apps.monitoring.models import Alert, ContainerHealth
from apps.tenants.json_schemas import PLAN_RESOURCE_LIMITS
from apps.tenants.models import Tenant
from apps.tenants.selectors import month_bounds
from apps.tenants.services import suspend
from apps.tenants.workspace import day_start
from tests.api.agent_factories import make_agent, make_channel
from tests.api.matrix import Row, matrix_test

pytestmark = pytest.mark.django_db

READERS = frozenset({"tenant_admin", "tenant_member", "other_tenant_admin", "api_key:tenant:read"})
WRITERS = frozenset({"tenant_admin", "other_tenant_admin", "api_key:tenant:write"})
# Scopes that must not be enough (tried on every row on top of matrix.CALLERS).
WRONG_SCOPES = ("api_key:tenant:write", "api_key:tenant:read", "api_key:skills:read", "api_key:agents:read")


def send(client, method: str, path: str, body: dict | None = None):
    return client.generic(method, path, data=json.dumps(body) if body is not None else None,
                          content_type="application/json")


def error(response) -> dict:
    return response.json()["error"]


def stamp(moment) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


ROWS = [
    Row("GET", "/api/v1/dashboard", allowed=READERS, extra_callers=WRONG_SCOPES),
    Row("GET", "/api/v1/tenant", allowed=READERS, extra_callers=WRONG_SCOPES),
    Row("PATCH", "/api/v1/tenant", allowed=WRITERS, body={"industry": "Robotics"}, extra_callers=WRONG_SCOPES),
    Row("GET", "/api/v1/tenant/usage", allowed=READERS, extra_callers=WRONG_SCOPES),
]

test_matrix = matrix_test(ROWS)

SUSPENDED_CALLERS = ("tenant_admin", "tenant_member", "api_key:tenant:read,tenant:write")


@pytest.mark.parametrize("row", ROWS, ids=[row.id() for row in ROWS])
@pytest.mark.parametrize("caller", SUSPENDED_CALLERS)
def test_a_suspended_tenant_is_refused(row, caller, callers):
    client = callers[caller]
    suspend(callers.tenant_a, reason="Unpaid invoices")
    response = send(client, row.method, row.path, row.body)
    assert response.status_code == 403, response.content
    assert error(response)["code"] == "TENANT_SUSPENDED"
    assert error(response)["details"] == {"reason": "Unpaid invoices"}


def test_a_tenant_still_provisioning_has_no_dashboard_or_usage_but_has_a_profile(callers, tenant_a):
    client = callers["tenant_admin"]
    Tenant.objects.filter(pk=tenant_a.pk).update(status=Tenant.Status.PROVISIONING)
    for path in ("/api/v1/dashboard", "/api/v1/tenant/usage"):
        response = client.get(path)
        assert response.status_code == 409 and error(response)["code"] == "TENANT_NOT_READY", response.content
    profile = client.get("/api/v1/tenant")
    assert profile.status_code == 200 and profile.json()["status"] == "provisioning"


# --- Dashboard --------------------------------------------------------------------------------------


@pytest.fixture
def busy_tenant_a(tenant_a, tenant_b):
    """Tenant A: agents in every status, channels (2 of 3 connected), messages today and yesterday,
    two health samples, alerts in every status. Tenant B and the platform: one open alert each."""
    now = timezone.now()
    today = day_start(now)
    ava = make_agent(tenant_a, "Ava", status="active")
    bob = make_agent(tenant_a, "Bob", status="active")
    make_agent(tenant_a, "Cid", status="paused")
    make_agent(tenant_a, "Dot", status="draft")
    make_channel(tenant_a, ava, "Slack", status=AgentChannel.Status.CONNECTED)
    make_channel(tenant_a, ava, "Web", channel_type="web", status=AgentChannel.Status.CONNECTED)
    make_channel(tenant_a, bob, "Slack", status=AgentChannel.Status.ERROR)
    with tenant_context(tenant_a):
        for agent, start, messages in [(ava, today, 7), (ava, today + timedelta(hours=1), 5), (bob, today, 30),
                                       (bob, today - timedelta(hours=1), 1000)]:  # the last is yesterday's
            AgentMetrics.objects.create(agent=agent, period="hour", period_start=start, messages=messages)
        AgentMetrics.objects.create(agent=ava, period="day", period_start=today, messages=42)  # not double-counted
    ContainerHealth.objects.create(tenant=tenant_a, status="healthy", checked_at=now - timedelta(minutes=10))
    latest = ContainerHealth.objects.create(tenant=tenant_a, status="degraded", cpu_percent=91.5, memory_mb=900.0,
                                            uptime_seconds=7200, checked_at=now - timedelta(minutes=1))
    ContainerHealth.objects.create(tenant=tenant_b, status="unreachable", checked_at=now)
    for n, (severity, status) in enumerate([("critical", "open"), ("warning", "open"), ("warning", "acknowledged"),
                                            ("info", "resolved")]):
        Alert.objects.create(tenant=tenant_a, severity=severity, kind="runtime.unhealthy", message="...",
                             status=status, dedup_key=f"a-{n}", resolved_at=now if status == "resolved" else None)
    Alert.objects.create(tenant=tenant_b, severity="info", kind="runtime.unhealthy", message="...", dedup_key="b")
    Alert.objects.create(tenant=None, severity="critical", kind="platform.disk", message="...", dedup_key="p")
    return {"today": today, "latest": latest}


def test_dashboard_counts_this_tenants_agents_messages_channels_runtime_and_alerts(callers, busy_tenant_a):
    response = callers["tenant_member"].get("/api/v1/dashboard")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["agents"] == {"total": 4, "byStatus": {"draft": 1, "active": 2, "paused": 1, "error": 0}}
    assert body["messages"] == {"today": 42, "since": stamp(busy_tenant_a["today"])}
    assert body["channels"] == {"total": 3, "connected": 2}
    latest = busy_tenant_a["latest"]
    assert body["runtime"] == {"status": "degraded", "cpuPercent": 91.5, "memoryMb": 900.0, "uptimeSeconds": 7200,
                               "checkedAt": stamp(latest.checked_at)}
    assert body["alerts"] == {"open": 2, "openBySeverity": {"info": 0, "warning": 1, "critical": 1}}
    assert body["generatedAt"]


def test_another_tenants_dashboard_shows_only_its_own_data(callers, busy_tenant_a):
    body = callers["other_tenant_admin"].get("/api/v1/dashboard").json()
    assert body["agents"]["total"] == 0 and body["messages"]["today"] == 0
    assert body["channels"] == {"total": 0, "connected": 0}
    assert body["runtime"]["status"] == "unreachable"
    assert body["alerts"] == {"open": 1, "openBySeverity": {"info": 1, "warning": 0, "critical": 0}}


def test_dashboard_of_a_new_tenant_is_all_zeros(callers):
    body = callers["api_key:tenant:read"].get("/api/v1/dashboard").json()
    assert body["agents"]["total"] == 0 and body["runtime"] is None and body["alerts"]["open"] == 0


def test_dashboard_queries_do_not_grow_with_the_data(callers, tenant_a):
    client = callers["tenant_member"]
    client.get("/api/v1/dashboard")  # warm-up: one-off lookups

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/api/v1/dashboard").status_code == 200
        return len(queries)

    empty = count()
    now = timezone.now()
    for n in range(15):
        agent = make_agent(tenant_a, f"Agent {n}", status="active")
        make_channel(tenant_a, agent, "Slack", status=AgentChannel.Status.CONNECTED)
        with tenant_context(tenant_a):
            AgentMetrics.objects.create(agent=agent, period="hour", period_start=day_start(now), messages=n)
        ContainerHealth.objects.create(tenant=tenant_a, status="healthy", checked_at=now - timedelta(minutes=n))
        Alert.objects.create(tenant=tenant_a, severity="warning", kind="k", message="m", dedup_key=f"k{n}")
    assert count() == empty


# --- Profile -----------------------------------------------------------------------------------------------


def test_profile_shows_the_tenants_settings_with_limits_read_only(callers, tenant_a):
    response = callers["tenant_member"].get("/api/v1/tenant")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["id"], body["companyName"], body["slug"], body["plan"], body["status"]) == (
        str(tenant_a.pk), "Acme", tenant_a.slug, "starter", "active")
    limits = PLAN_RESOURCE_LIMITS["starter"]
    assert body["resourceLimits"]["maxAgents"] == limits["max_agents"]
    assert body["resourceLimits"]["monthlyTokenBudget"] == limits["monthly_token_budget"]
    assert body["modelDefaults"] == {} and body["expectedAgentCount"] == 0
    assert set(body) == {"id", "companyName", "slug", "plan", "industry", "status", "expectedAgentCount",
                         "modelDefaults", "resourceLimits", "createdAt", "updatedAt"}


def test_another_tenants_admin_reads_and_changes_only_its_own_profile(callers, tenant_a, tenant_b):
    other = callers["other_tenant_admin"]
    assert other.get("/api/v1/tenant").json()["companyName"] == "Globex"
    assert send(other, "PATCH", "/api/v1/tenant", {"industry": "Chemicals"}).json()["companyName"] == "Globex"
    tenant_a.refresh_from_db()
    tenant_b.refresh_from_db()
    assert (tenant_a.industry, tenant_b.industry) == ("", "Chemicals")


def test_admin_changes_the_profile_and_the_change_is_audited(callers, tenant_a):
    admin = callers["tenant_admin"]
    response = send(admin, "PATCH", "/api/v1/tenant", {
        "companyName": "Acme Robotics", "industry": "Robotics", "expectedAgentCount": 12,
        "modelDefaults": {"tiers": {"fast": "openai/gpt-5-mini"}, "thinkingDefault": "low"}})
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["companyName"], body["industry"], body["expectedAgentCount"]) == ("Acme Robotics", "Robotics", 12)
    assert body["modelDefaults"] == {"tiers": {"fast": "openai/gpt-5-mini"}, "thinkingDefault": "low"}
    assert callers["tenant_member"].get("/api/v1/tenant").json()["companyName"] == "Acme Robotics"

    row = AuditLog.objects.get(action="tenant.updated", tenant=tenant_a)
    assert row.actor_user_id == callers.user("tenant_admin").pk and row.target_id == str(tenant_a.pk)
    assert row.changes["company_name"] == {"before": "Acme", "after": "Acme Robotics"}
    assert row.changes["model_defaults"] == {"before": {}, "after": {"tiers": {"fast": "openai/gpt-5-mini"},
                                                                     "thinking_default": "low"}}


def test_model_defaults_are_a_merge_patch(callers, tenant_a):
    admin = callers["tenant_admin"]
    send(admin, "PATCH", "/api/v1/tenant", {"modelDefaults": {"tiers": {"fast": "openai/gpt-5-mini",
                                                                        "powerful": "openai/gpt-5"}}})
    response = send(admin, "PATCH", "/api/v1/tenant", {"modelDefaults": {"tiers": {"fast": None},
                                                                         "fallbacks": ["openai/gpt-4o"]}})
    assert response.json()["modelDefaults"] == {"tiers": {"powerful": "openai/gpt-5"}, "fallbacks": ["openai/gpt-4o"]}


def test_an_api_key_is_the_audited_actor(callers, tenant_a):
    client = callers["api_key:tenant:write"]
    assert send(client, "PATCH", "/api/v1/tenant", {"industry": "Retail"}).status_code == 200
    row = AuditLog.objects.get(action="tenant.updated", tenant=tenant_a)
    assert row.actor_api_key_id == client.api_key.pk and row.actor_user_id is None


def test_a_change_that_changes_nothing_writes_nothing(callers, tenant_a):
    response = send(callers["tenant_admin"], "PATCH", "/api/v1/tenant", {"companyName": "Acme"})
    assert response.status_code == 200
    assert not AuditLog.objects.filter(action="tenant.updated").exists()


@pytest.mark.parametrize(("body", "fields"), [
    ({"plan": "enterprise"}, ["plan"]),
    ({"resourceLimits": {"maxAgents": 1000}}, ["resourceLimits"]),
    ({"status": "active"}, ["status"]),
    ({"industry": "Banking", "plan": "growth", "slug": "acme-2"}, ["plan", "slug"]),
    ({"adminEmail": "boss@acme.example"}, ["adminEmail"]),
])
def test_platform_settings_are_refused_naming_the_field(callers, tenant_a, body, fields):
    response = send(callers["tenant_admin"], "PATCH", "/api/v1/tenant", body)
    assert response.status_code == 403, response.content
    assert error(response)["code"] == "PERMISSION_DENIED" and error(response)["details"] == {"fields": fields}
    for field in fields:
        assert field in error(response)["message"]
    tenant_a.refresh_from_db()
    assert (tenant_a.plan, tenant_a.industry) == ("starter", "")
    assert not AuditLog.objects.filter(action="tenant.updated").exists()


@pytest.mark.parametrize(("body", "field"), [
    ({}, "nonFieldErrors"),
    ({"colour": "blue"}, "colour"),
    ({"createdAt": "2020-01-01T00:00:00Z"}, "createdAt"),
    ({"expectedAgentCount": -1}, "expectedAgentCount"),
    ({"companyName": ""}, "companyName"),
    ({"modelDefaults": {"tiers": {"fast": "not a model"}}}, "modelDefaults"),  # the JSON Schema's pattern
    ({"modelDefaults": {"tiers": {"huge": "openai/gpt-5"}}}, "modelDefaults.tiers.huge"),
    ({"modelDefaults": {"thinkingDefault": "deep"}}, "modelDefaults.thinkingDefault"),
    ({"modelDefaults": {"fallbacks": [f"openai/m{n}" for n in range(6)]}}, "modelDefaults.fallbacks"),
])
def test_invalid_changes_are_refused(callers, tenant_a, body, field):
    response = send(callers["tenant_admin"], "PATCH", "/api/v1/tenant", body)
    assert response.status_code == 400, response.content
    assert error(response)["code"] == "VALIDATION_ERROR" and field in error(response)["details"], error(response)
    tenant_a.refresh_from_db()
    assert tenant_a.model_defaults == {} and tenant_a.expected_agent_count == 0


def test_another_tenants_company_name_is_a_conflict(callers):
    response = send(callers["tenant_admin"], "PATCH", "/api/v1/tenant", {"companyName": "GLOBEX"})
    assert response.status_code == 409 and error(response)["code"] == "CONFLICT"


def test_model_defaults_changes_reconfigure_the_runtime_on_commit(callers, tenant_a, runtime_signals,
                                                                 django_capture_on_commit_callbacks):
    admin = callers["tenant_admin"]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        send(admin, "PATCH", "/api/v1/tenant", {"modelDefaults": {"thinkingDefault": "high"}})
    assert runtime_signals == [] and len(callbacks) == 1  # queued, not sent before the commit
    with django_capture_on_commit_callbacks(execute=True):
        send(admin, "PATCH", "/api/v1/tenant", {"modelDefaults": {"thinkingDefault": "low"}})
        send(admin, "PATCH", "/api/v1/tenant", {"industry": "Retail"})  # not runtime configuration
        send(admin, "PATCH", "/api/v1/tenant", {"modelDefaults": {"thinkingDefault": "low"}})  # no change
        send(admin, "PATCH", "/api/v1/tenant", {"modelDefaults": {"thinkingDefault": "nonsense"}})  # refused
    assert len(runtime_signals) == 1
    assert runtime_signals[0]["sender"] is Tenant and runtime_signals[0]["tenant"] == tenant_a
    assert runtime_signals[0]["agent_id"] is None and runtime_signals[0]["reason"] == "tenant.updated"


# --- Usage ------------------------------------------------------------------------------------------------


@pytest.fixture
def used_tenant_a(tenant_a, tenant_b):
    """This month: 2 agents' daily buckets; last month's and hourly ones must not count."""
    start, _ = month_bounds(timezone.now())
    ava = make_agent(tenant_a, "Ava")
    bob = make_agent(tenant_a, "Bob")
    for n in range(3):
        make_channel(tenant_a, ava, f"Slack {n}", status="connected" if n else "pending")
    make_channel(tenant_a, bob, "Web", channel_type="web")
    with tenant_context(tenant_a):
        for agent, day, values in [(ava, 0, (10, 1000, 500, "0.50", 1)), (bob, 0, (5, 200, 100, "0.25", 0)),
                                   (ava, -1, (99, 99999, 99999, "9.99", 9))]:
            messages, tokens_in, tokens_out, cost, errors = values
            AgentMetrics.objects.create(agent=agent, period="day", period_start=start + timedelta(days=day),
                                        messages=messages, tokens_in=tokens_in, tokens_out=tokens_out,
                                        cost_usd=Decimal(cost), errors=errors)
        AgentMetrics.objects.create(agent=ava, period="hour", period_start=start, messages=10, tokens_in=1000)
    make_agent(tenant_b, "Other")
    return tenant_a


def test_usage_is_this_months_rollups_against_the_limits(callers, used_tenant_a):
    response = callers["tenant_member"].get("/api/v1/tenant/usage")
    assert response.status_code == 200, response.content
    body = response.json()
    limits = PLAN_RESOURCE_LIMITS["starter"]
    assert body["agents"] == {"used": 2, "limit": limits["max_agents"], "remaining": limits["max_agents"] - 2,
                              "exceeded": False}
    assert body["tokens"] == {"used": 1800, "tokensIn": 1200, "tokensOut": 600,
                              "limit": limits["monthly_token_budget"],
                              "remaining": limits["monthly_token_budget"] - 1800, "exceeded": False}
    assert (body["messages"], body["errors"], Decimal(body["costUsd"])) == (15, 1, Decimal("0.75"))
    assert body["channels"] == {"total": 4, "connected": 2, "busiestAgent": {
        "used": 3, "limit": limits["max_channels_per_agent"], "remaining": 0, "exceeded": False}}
    start, end = month_bounds(timezone.now())
    assert (body["periodStart"], body["periodEnd"]) == (stamp(start), stamp(end))
    assert body["resourceLimits"]["maxAgents"] == limits["max_agents"]


def test_usage_is_the_platforms_computation(callers, used_tenant_a):
    """One implementation: the tenant sees what GET platform/tenants/{id}/usage shows, plus channels."""
    mine = callers["tenant_admin"].get("/api/v1/tenant/usage").json()
    platform = callers["platform_admin"].get(f"/api/v1/platform/tenants/{used_tenant_a.pk}/usage").json()
    assert {key: value for key, value in mine.items() if key != "channels"} == platform


def test_another_tenants_usage_is_its_own(callers, used_tenant_a):
    body = callers["other_tenant_admin"].get("/api/v1/tenant/usage").json()
    assert body["agents"]["used"] == 1 and body["tokens"]["used"] == 0 and body["channels"]["total"] == 0


def test_usage_queries_do_not_grow_with_the_data(callers, tenant_a):
    client = callers["tenant_member"]
    client.get("/api/v1/tenant/usage")

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/api/v1/tenant/usage").status_code == 200
        return len(queries)

    empty = count()
    start, _ = month_bounds(timezone.now())
    for n in range(5):
        agent = make_agent(tenant_a, f"Agent {n}")
        make_channel(tenant_a, agent, "Slack")
        with tenant_context(tenant_a):
            AgentMetrics.objects.bulk_create([AgentMetrics(agent=agent, period="day", messages=1,
                                                           period_start=start + timedelta(days=day))
                                              for day in range(20)])
    assert count() == empty
