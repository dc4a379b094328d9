"""Platform console: the tenant directory and lifecycle (/api/v1/platform/tenants...), usage and
the dashboard."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_exists, tenant_context
from djangorestframework_camel_case.util import camelize

from apps.agents.models import AgentMetrics
from apps.tenants import schemas, selectors, services
from apps.tenants.json_schemas import PLAN_RESOURCE_LIMITS
from apps.tenants.models import Tenant
from tests.api.agent_factories import make_agent
from tests.api.matrix import named_path
from tests.api.platform_support import (
    PLATFORM,
    assert_queries_do_not_grow_with_the_page,
    audit_rows,
    error,
    make_alert,
    make_sample,
    make_tenant,
    platform_matrix,
    platform_row,
)
from tests.dbtools import execute, indexes_used, plan_of

TENANTS = f"{PLATFORM}/tenants"
NEW_TENANT = {"companyName": "Initech", "adminEmail": "it@initech.example", "plan": "growth",
              "industry": "Software", "expectedAgentCount": 12}


def tenant_url(tenant: Tenant, suffix: str = "") -> str:
    return f"{TENANTS}/{tenant.pk}{suffix}"


# --- Authorization matrix ----------------------------------------------------------------------------


def _in_state(status: str, suffix: str = ""):
    return named_path(f"{status}_tenant{suffix.replace('/', '_')}", lambda ctx: tenant_url(make_tenant(status), suffix))


def _tenant_a(suffix: str = ""):
    return named_path(f"tenant_a{suffix.replace('/', '_')}", lambda ctx: tenant_url(ctx.tenant_a, suffix))


ROWS = [
    platform_row("GET", f"{PLATFORM}/dashboard"),
    platform_row("GET", TENANTS),
    platform_row("POST", TENANTS, body=NEW_TENANT, ok=202),
    platform_row("GET", _tenant_a()),
    platform_row("PATCH", _in_state("active"), body={"industry": "Retail"}),
    platform_row("DELETE", _in_state("failed"), ok=202),
    platform_row("POST", _in_state("active", "/suspend"), body={"reason": "Unpaid"}),
    platform_row("POST", _in_state("suspended", "/reactivate")),
    platform_row("POST", _in_state("failed", "/retry-provisioning"), ok=202),
    platform_row("GET", _tenant_a("/usage")),
]
test_matrix, test_refusals, admin = platform_matrix(ROWS)


# --- List ------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_list_shows_every_tenant_with_its_settings(admin, tenant_a):
    response = admin.get(TENANTS, {"search": "acme"})
    assert response.status_code == 200
    body = response.json()
    assert body["pagination"] == {"page": 1, "pageSize": 25, "total": 1, "totalPages": 1}
    row = body["data"][0]
    assert row["id"] == str(tenant_a.pk)
    assert (row["companyName"], row["slug"], row["schemaName"], row["status"]) == (
        "Acme", "acme", "t_acme", "active")
    assert row["domains"] == ["acme.tenants.localhost"]
    assert row["resourceLimits"]["maxAgents"] == PLAN_RESOURCE_LIMITS["starter"]["max_agents"]
    assert row["provisionedAt"] is not None and row["purgeAfter"] is None


@pytest.mark.django_db
def test_filters_search_and_ordering(admin, tenant_a, tenant_b):
    zeta = make_tenant("suspended", company_name="Zeta Labs", plan="enterprise", slug="zeta")
    yolo = make_tenant("failed", company_name="yolo Foods", plan="growth", admin_email="ops@yolo-foods.example")

    def ids(**params):
        response = admin.get(TENANTS, params)
        assert response.status_code == 200, response.content
        return [row["id"] for row in response.json()["data"]]

    assert ids(status="suspended") == [str(zeta.pk)]
    assert ids(plan="growth") == [str(yolo.pk)]
    assert ids(status="active", plan="starter", ordering="companyName") == [str(tenant_a.pk), str(tenant_b.pk)]
    assert ids(search="YOLO-FOODS") == [str(yolo.pk)]  # admin e-mail
    assert ids(search="zet") == [str(zeta.pk)]  # slug and name
    assert ids(ordering="-companyName")[:2] == [str(zeta.pk), str(yolo.pk)]  # case-insensitive order
    assert ids()[:2] == [str(yolo.pk), str(zeta.pk)]  # default: newest first
    assert ids(ordering="createdAt")[-1] == str(yolo.pk)


@pytest.mark.django_db
def test_list_rejects_unknown_filter_values(admin):
    response = admin.get(TENANTS, {"status": "gone", "plan": "free", "ordering": "schemaName", "pageSize": 2})
    assert response.status_code == 400
    assert error(response)["code"] == "VALIDATION_ERROR"
    assert set(error(response)["details"]) == {"status", "plan", "ordering"}


@pytest.mark.django_db
def test_list_paginates_and_query_count_does_not_grow_with_the_page(admin):
    for _ in range(10):
        make_tenant()
    assert_queries_do_not_grow_with_the_page(admin, TENANTS, (3, 9), page=1)
    page = admin.get(TENANTS, {"pageSize": 5, "page": 3}).json()
    assert page["pagination"] == {"page": 3, "pageSize": 5, "total": 12, "totalPages": 3}
    assert len(page["data"]) == 2
    assert admin.get(TENANTS, {"page": 99}).status_code == 404


# --- Create: 202, then provisioned in the background -----------------------------------------------------


@pytest.mark.django_db
def test_create_answers_202_provisioning_then_the_task_makes_it_active(admin, django_capture_on_commit_callbacks):
    body = {**NEW_TENANT, "resourceLimits": {"maxAgents": 40},
            "modelDefaults": {"tiers": {"fast": "openai/gpt-5-mini"}}}
    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post(TENANTS, body, format="json")
        assert response.status_code == 202, response.content
        created = response.json()
        assert created["status"] == "provisioning"  # the answer does not wait for the schema
        assert created["provisionedAt"] is None
        assert Tenant.objects.get(pk=created["id"]).status == "provisioning"  # nothing runs before the commit
    # After the commit, provision_tenant.delay ran (eager Celery runs it inline).

    assert response["Location"].endswith(f"{TENANTS}/{created['id']}")
    assert (created["slug"], created["schemaName"], created["domains"]) == (
        "initech", "t_initech", ["initech.tenants.localhost"])
    # Given limits override the plan's defaults key by key.
    assert created["resourceLimits"] == {**camelize(PLAN_RESOURCE_LIMITS["growth"]), "maxAgents": 40}
    assert created["modelDefaults"] == {"tiers": {"fast": "openai/gpt-5-mini"}}

    fetched = admin.get(f"{TENANTS}/{created['id']}").json()
    assert fetched["status"] == "active"
    assert fetched["provisionedAt"] is not None
    tenant = Tenant.objects.get(pk=created["id"])
    assert schema_exists(tenant.schema_name)
    actor = admin.user
    assert audit_rows("tenant.created", tenant=tenant, actor_user=actor).count() == 1
    assert audit_rows("tenant.provisioned", tenant=tenant).count() == 1


@pytest.mark.django_db
def test_a_failed_provisioning_is_recorded_and_can_be_retried(admin, monkeypatch,
                                                                django_capture_on_commit_callbacks):
    real_create_schema = schemas.create_schema

    def broken(schema_name):
        raise RuntimeError("template schema unreachable")

    monkeypatch.setattr(schemas, "create_schema", broken)
    with django_capture_on_commit_callbacks(execute=True):
        created = admin.post(TENANTS, NEW_TENANT, format="json").json()
    tenant = Tenant.objects.get(pk=created["id"])
    assert tenant.status == Tenant.Status.FAILED
    assert "template schema unreachable" in tenant.status_reason
    assert not schema_exists(tenant.schema_name)
    assert audit_rows("tenant.provisioning_failed", tenant=tenant).count() == 1

    monkeypatch.setattr(schemas, "create_schema", real_create_schema)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post(tenant_url(tenant, "/retry-provisioning"))
        assert response.status_code == 202
        assert (response.json()["status"], response.json()["statusReason"]) == ("provisioning", "")
    tenant.refresh_from_db()
    assert tenant.status == Tenant.Status.ACTIVE
    assert schema_exists(tenant.schema_name)
    assert audit_rows("tenant.provisioning_retried", tenant=tenant, actor_user=admin.user).count() == 1


@pytest.mark.django_db
def test_the_provisioning_task_is_idempotent(tenant_a):
    from apps.tenants.tasks import provision_tenant

    before = audit_rows("tenant.provisioned", tenant=tenant_a).count()
    assert provision_tenant.delay(str(tenant_a.pk)).get() == "active"  # a redelivery: nothing to do
    assert provision_tenant.delay(str(uuid.uuid4())).get() == "missing"
    suspended = make_tenant("suspended")
    assert provision_tenant.delay(str(suspended.pk)).get() == "suspended"
    assert audit_rows("tenant.provisioned", tenant=tenant_a).count() == before


@pytest.mark.django_db
@pytest.mark.parametrize(("body", "fields"), [
    ({}, {"companyName", "adminEmail"}),
    ({**NEW_TENANT, "adminEmail": "not-an-address", "plan": "free"}, {"adminEmail", "plan"}),
    ({**NEW_TENANT, "slug": "Bad_Slug"}, {"slug"}),
    ({**NEW_TENANT, "domain": "not a host"}, {"domain"}),
    ({**NEW_TENANT, "status": "active"}, {"status"}),  # read-only: an error, not ignored
    ({**NEW_TENANT, "resourceLimits": {"maxAgents": "many"}}, {"resourceLimits.maxAgents"}),
    ({**NEW_TENANT, "resourceLimits": {"gpus": 2}}, {"resourceLimits.gpus"}),
    ({**NEW_TENANT, "resourceLimits": {"maxAgents": -1}}, {"resourceLimits"}),  # the JSON Schema's range
    ({**NEW_TENANT, "modelDefaults": {"tiers": {"fast": "no slash"}}}, {"modelDefaults"}),
    ({**NEW_TENANT, "expectedAgentCount": -3}, {"expectedAgentCount"}),
])
def test_create_validates_the_body(admin, body, fields):
    response = admin.post(TENANTS, body, format="json")
    assert response.status_code == 400, response.content
    assert error(response)["code"] == "VALIDATION_ERROR"
    assert set(error(response)["details"]) == fields
    assert not Tenant.objects.filter(company_name="Initech").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("body", "field"), [
    ({**NEW_TENANT, "companyName": "ACME"}, "companyName"),  # names are unique in any case
    ({**NEW_TENANT, "slug": "globex"}, "slug"),
    ({**NEW_TENANT, "domain": "acme.tenants.localhost"}, "domain"),
])
def test_create_refuses_taken_names_with_409(admin, tenant_a, tenant_b, body, field):
    response = admin.post(TENANTS, body, format="json")
    assert response.status_code == 409
    assert error(response)["code"] == "CONFLICT"
    assert error(response)["details"]["field"] == field
    assert not audit_rows("tenant.created", tenant__company_name="Initech").exists()


# --- Read, change --------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_unknown_ids_are_404(admin):
    missing = uuid.uuid4()
    for method, suffix in [("get", ""), ("patch", ""), ("delete", ""), ("post", "/suspend"),
                           ("post", "/reactivate"), ("post", "/retry-provisioning"), ("get", "/usage")]:
        response = getattr(admin, method)(f"{TENANTS}/{missing}{suffix}", {"reason": "x"} if method == "post" else {},
                                          format="json")
        assert response.status_code == 404, (method, suffix)
        assert error(response)["code"] == "NOT_FOUND"
    assert admin.get(f"{TENANTS}/not-a-uuid").status_code == 404


@pytest.mark.django_db
def test_patch_changes_fields_and_audits_each_change(admin):
    tenant = make_tenant(company_name="Umbrella", industry="Pharma", resource_limits={"max_agents": 5, "cpus": 1})
    response = admin.patch(tenant_url(tenant), {
        "companyName": "Umbrella Corp", "industry": "", "expectedAgentCount": 7, "adminEmail": "ceo@umbrella.example",
        "resourceLimits": {"maxAgents": 9, "cpus": None}, "modelDefaults": {"thinkingDefault": "high"},
    }, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["companyName"], body["industry"], body["expectedAgentCount"], body["adminEmail"]) == (
        "Umbrella Corp", "", 7, "ceo@umbrella.example")
    assert body["resourceLimits"] == {"maxAgents": 9}  # merge patch: null removed cpus
    assert body["modelDefaults"] == {"thinkingDefault": "high"}

    entry = audit_rows("tenant.updated", tenant=tenant, actor_user=admin.user).get()
    assert entry.changes["company_name"] == {"before": "Umbrella", "after": "Umbrella Corp"}
    assert entry.changes["resource_limits"] == {"before": {"max_agents": 5, "cpus": 1}, "after": {"max_agents": 9}}
    assert set(entry.changes) == {"company_name", "industry", "expected_agent_count", "admin_email",
                                  "resource_limits", "model_defaults"}

    # Changing nothing writes nothing.
    assert admin.patch(tenant_url(tenant), {"industry": ""}, format="json").status_code == 200
    assert audit_rows("tenant.updated", tenant=tenant).count() == 1


@pytest.mark.django_db
def test_a_new_plan_brings_its_limits_unless_limits_are_given(admin):
    tenant = make_tenant(plan="starter", resource_limits={"max_agents": 3})
    body = admin.patch(tenant_url(tenant), {"plan": "enterprise"}, format="json").json()
    assert body["plan"] == "enterprise"
    assert body["resourceLimits"]["maxAgents"] == PLAN_RESOURCE_LIMITS["enterprise"]["max_agents"]
    body = admin.patch(tenant_url(tenant), {"plan": "growth", "resourceLimits": {"maxAgents": 99}},
                       format="json").json()
    assert body["resourceLimits"]["maxAgents"] == 99
    assert body["resourceLimits"]["memoryMb"] == PLAN_RESOURCE_LIMITS["growth"]["memory_mb"]


@pytest.mark.django_db
@pytest.mark.parametrize(("body", "fields"), [
    ({}, {"nonFieldErrors"}),
    ({"slug": "new-slug"}, {"slug"}),
    ({"status": "active"}, {"status"}),
    ({"plan": "platinum"}, {"plan"}),
    ({"resourceLimits": {"memoryMb": 12}}, {"resourceLimits"}),  # below the JSON Schema's minimum
    ({"companyName": ""}, {"companyName"}),
])
def test_patch_validates(admin, body, fields):
    tenant = make_tenant()
    response = admin.patch(tenant_url(tenant), body, format="json")
    assert response.status_code == 400, response.content
    assert set(error(response)["details"]) == fields
    assert not audit_rows("tenant.updated", tenant=tenant).exists()


@pytest.mark.django_db
def test_patch_conflicts(admin, tenant_a):
    tenant = make_tenant()
    response = admin.patch(tenant_url(tenant), {"companyName": "acme"}, format="json")
    assert (response.status_code, error(response)["code"]) == (409, "CONFLICT")
    gone = make_tenant("decommissioned")
    response = admin.patch(tenant_url(gone), {"industry": "x"}, format="json")
    assert (response.status_code, error(response)["code"]) == (409, "INVALID_STATE")
    assert error(response)["details"]["status"] == "decommissioned"


# --- Lifecycle ----------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_suspend_and_reactivate(admin, callers, tenant_a):
    member = callers["tenant_admin"]  # built before the suspension
    assert member.get("/api/v1/team").status_code == 200

    response = admin.post(tenant_url(tenant_a, "/suspend"), {"reason": "Invoices unpaid"}, format="json")
    assert response.status_code == 200, response.content
    assert (response.json()["status"], response.json()["statusReason"]) == ("suspended", "Invoices unpaid")
    assert response.json()["suspendedAt"] is not None
    assert audit_rows("tenant.suspended", tenant=tenant_a, actor_user=admin.user).count() == 1
    refused = member.get("/api/v1/team")
    assert (refused.status_code, error(refused)["code"]) == (403, "TENANT_SUSPENDED")
    assert error(refused)["details"]["reason"] == "Invoices unpaid"

    again = admin.post(tenant_url(tenant_a, "/suspend"), {"reason": "again"}, format="json")
    assert (again.status_code, error(again)["code"]) == (409, "INVALID_STATE")
    assert error(again)["details"] == {"status": "suspended", "allowedFrom": ["active"]}

    response = admin.post(tenant_url(tenant_a, "/reactivate"))
    assert (response.status_code, response.json()["status"], response.json()["statusReason"]) == (200, "active", "")
    assert audit_rows("tenant.reactivated", tenant=tenant_a, actor_user=admin.user).count() == 1
    assert member.get("/api/v1/team").status_code == 200

    again = admin.post(tenant_url(tenant_a, "/reactivate"))
    assert (again.status_code, error(again)["code"]) == (409, "INVALID_STATE")


@pytest.mark.django_db
@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "   "}, {"reason": "x", "until": "tomorrow"}])
def test_suspend_needs_a_reason(admin, body):
    tenant = make_tenant()
    response = admin.post(tenant_url(tenant, "/suspend"), body, format="json")
    assert (response.status_code, error(response)["code"]) == (400, "VALIDATION_ERROR")
    tenant.refresh_from_db()
    assert tenant.status == "active"


@pytest.mark.django_db
@pytest.mark.parametrize(("status", "path"), [
    ("active", "/retry-provisioning"), ("provisioning", "/retry-provisioning"), ("suspended", "/suspend"),
    ("failed", "/suspend"), ("failed", "/reactivate"), ("decommissioned", "/reactivate"),
])
def test_transitions_from_the_wrong_state_are_409(admin, status, path):
    tenant = make_tenant(status)
    response = admin.post(tenant_url(tenant, path), {"reason": "r"}, format="json")
    assert (response.status_code, error(response)["code"]) == (409, "INVALID_STATE")
    assert error(response)["details"]["status"] == status
    tenant.refresh_from_db()
    assert tenant.status == status


@pytest.mark.django_db
def test_delete_decommissions_and_keeps_the_data(admin, tenant_b):
    response = admin.delete(tenant_url(tenant_b))
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "decommissioned"
    assert body["decommissionedAt"] is not None and body["purgeAfter"] > body["decommissionedAt"]
    assert schema_exists(tenant_b.schema_name)  # never an instant DROP SCHEMA
    assert Tenant.objects.filter(pk=tenant_b.pk).exists()
    assert audit_rows("tenant.decommissioned", tenant=tenant_b, actor_user=admin.user).count() == 1

    for status in ("decommissioned", "provisioning"):
        response = admin.delete(tenant_url(make_tenant(status)))
        assert (response.status_code, error(response)["code"]) == (409, "INVALID_STATE")


# --- Usage -------------------------------------------------------------------------------------------------------


def _bucket(agent, period: str, start: datetime, **values) -> AgentMetrics:
    return AgentMetrics.objects.create(agent=agent, period=period, period_start=start, **values)


@pytest.mark.django_db
def test_usage_rolls_up_this_month_against_the_limits(admin, tenant_a):
    tenant_a.resource_limits = {"max_agents": 2, "monthly_token_budget": 1_000}
    tenant_a.save(update_fields=["resource_limits"])
    ava, bob = make_agent(tenant_a, "Ava"), make_agent(tenant_a, "Bob")
    start, _ = selectors.month_bounds(datetime.now(UTC))
    with tenant_context(tenant_a):
        _bucket(ava, "day", start, messages=3, tokens_in=300, tokens_out=400, cost_usd=Decimal("0.5"), errors=1)
        _bucket(bob, "day", start + timedelta(days=1), messages=2, tokens_in=200, tokens_out=250,
                cost_usd=Decimal("0.25"))
        _bucket(ava, "day", start - timedelta(days=1), messages=50, tokens_in=9_999, tokens_out=1)  # last month
        _bucket(ava, "hour", start, messages=3, tokens_in=300, tokens_out=400)  # rolled into the day already

    response = admin.get(tenant_url(tenant_a, "/usage"))
    assert response.status_code == 200, response.content
    usage = response.json()
    assert usage["periodStart"].startswith(start.strftime("%Y-%m-01T00:00:00"))
    assert usage["agents"] == {"used": 2, "limit": 2, "remaining": 0, "exceeded": False}
    assert usage["tokens"] == {"used": 1_150, "limit": 1_000, "remaining": 0, "exceeded": True,
                               "tokensIn": 500, "tokensOut": 650}
    assert (usage["messages"], usage["errors"], usage["costUsd"]) == (5, 1, "0.750000")
    assert usage["resourceLimits"] == {"maxAgents": 2, "monthlyTokenBudget": 1000}


@pytest.mark.django_db
def test_usage_of_an_empty_tenant_and_of_one_without_a_workspace(admin, tenant_b):
    tenant_b.resource_limits = {}
    tenant_b.save(update_fields=["resource_limits"])
    usage = admin.get(tenant_url(tenant_b, "/usage")).json()
    assert usage["agents"] == {"used": 0, "limit": None, "remaining": None, "exceeded": False}
    assert (usage["tokens"]["used"], usage["costUsd"]) == (0, "0.000000")

    response = admin.get(tenant_url(make_tenant("provisioning"), "/usage"))
    assert (response.status_code, error(response)["code"]) == (409, "TENANT_NOT_READY")
    purged = make_tenant("decommissioned", provisioned_at=datetime.now(UTC), purged_at=datetime.now(UTC))
    response = admin.get(tenant_url(purged, "/usage"))
    assert (response.status_code, error(response)["code"]) == (409, "INVALID_STATE")


# --- Dashboard ---------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_dashboard_counts(admin, tenant_a, tenant_b):
    make_tenant("suspended", plan="enterprise")
    make_tenant("failed")
    make_tenant("decommissioned", plan="growth")
    for name, status in [("Ava", "active"), ("Bob", "paused"), ("Cy", "active")]:
        make_agent(tenant_a, name, status=status)
    make_agent(tenant_b, "Dee", status="error")
    make_alert(tenant_a, severity="critical")
    make_alert(tenant_b, severity="warning", status="acknowledged")
    make_alert(None, severity="critical", status="resolved", resolved_at=datetime.now(UTC))
    make_sample(tenant_a, "healthy", checked_at=datetime.now(UTC) - timedelta(minutes=5))
    make_sample(tenant_a, "unreachable")  # the newest sample counts
    make_sample(tenant_b, "degraded")

    with CaptureQueriesContext(connection) as queries:
        response = admin.get(f"{PLATFORM}/dashboard")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["tenants"] == {
        "total": 5,
        "byStatus": {"provisioning": 0, "active": 2, "suspended": 1, "failed": 1, "decommissioned": 1},
        "byPlan": {"starter": 3, "growth": 0, "enterprise": 1},
    }
    assert body["agents"] == {"total": 4, "byStatus": {"draft": 0, "active": 2, "paused": 1, "error": 1}}
    assert body["alerts"] == {"open": 1, "acknowledged": 1,
                              "openBySeverity": {"info": 0, "warning": 0, "critical": 1}}
    assert body["runtimes"] == {"total": 2, "unhealthy": 1, "unknown": 0,
                                "byStatus": {"healthy": 0, "degraded": 1, "unhealthy": 0, "unreachable": 1}}
    # One UNION ALL over the tenant schemas, not a query per tenant.
    union = [q["sql"] for q in queries.captured_queries if "UNION ALL" in q["sql"]]
    assert len(union) == 1 and '"t_acme"."agents_agent"' in union[0] and '"t_globex"."agents_agent"' in union[0]


@pytest.mark.django_db
def test_dashboard_query_count_does_not_grow_with_the_number_of_tenants(admin, tenant_a, tenant_b):
    admin.get(f"{PLATFORM}/dashboard")  # warm-up
    with CaptureQueriesContext(connection) as few:
        admin.get(f"{PLATFORM}/dashboard")
    extra = services.provision(services.create_tenant(company_name="Hooli", admin_email="it@hooli.example"))
    make_agent(extra, "Eve")
    for _ in range(5):
        make_tenant("suspended")  # rows only: their schemas are never read
    with CaptureQueriesContext(connection) as many:
        body = admin.get(f"{PLATFORM}/dashboard").json()
    assert len(few) == len(many)
    assert body["agents"]["total"] == 1


@pytest.mark.django_db
def test_list_orderings_and_filters_use_their_indexes():
    execute(
        """
        INSERT INTO tenants_tenant (id, schema_name, created_at, updated_at, company_name, slug, admin_email,
                                    status, plan, industry, expected_agent_count, model_defaults, resource_limits,
                                    status_reason, suspended_at)
        SELECT gen_random_uuid(), 't_bulk_' || g, now() - g * interval '1 hour', now(), 'Bulk Company ' || g,
               'bulk-' || g, 'admin@bulk' || g || '.example',
               CASE WHEN mod(g, 50) = 0 THEN 'suspended' ELSE 'active' END,
               (ARRAY['starter', 'growth', 'enterprise'])[1 + mod(g, 3)], '', 0, '{}', '{}', '',
               CASE WHEN mod(g, 50) = 0 THEN now() END
        FROM generate_series(1, 20000) g
        """
    )
    execute("ANALYZE tenants_tenant")
    page = slice(0, 25)
    expected = {
        "tenants_created_idx": selectors.tenants(),
        "tenants_tenant_company_name_ci_unique": selectors.tenants(ordering="-companyName"),
        "tenants_tenant_slug_key": selectors.tenants(ordering="slug"),
        "tenants_status_created_idx": selectors.tenants(status="suspended"),
    }
    for index, queryset in expected.items():
        assert index in indexes_used(plan_of(queryset[page])), index
