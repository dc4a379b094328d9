"""Platform console: alerts (list, acknowledge, resolve), a tenant's health samples (cursor feed)
and the fleet view (each runtime's newest sample)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from apps.monitoring import selectors
from apps.monitoring.models import Alert
from tests.api.matrix import named_path
from tests.api.platform_support import (
    PLATFORM,
    assert_queries_do_not_grow_with_the_page,
    audit_rows,
    error,
    ids,
    make_alert,
    make_sample,
    make_tenant,
    platform_matrix,
    platform_row,
)
from tests.dbtools import execute, indexes_used, plan_nodes, plan_of

ALERTS = f"{PLATFORM}/alerts"
FLEET = f"{PLATFORM}/health"
NOW = datetime.now(UTC)


def health_url(tenant) -> str:
    return f"{PLATFORM}/tenants/{tenant.pk}/health"


# --- Authorization matrix ----------------------------------------------------------------------------


def an_open_alert(suffix: str):
    return named_path(f"open_alert_{suffix}", lambda ctx: f"{ALERTS}/{make_alert(ctx.tenant_a).pk}/{suffix}")


def tenant_a_health(ctx) -> str:
    return health_url(ctx.tenant_a)


ROWS = [
    platform_row("GET", ALERTS),
    platform_row("POST", an_open_alert("acknowledge")),
    platform_row("POST", an_open_alert("resolve")),
    platform_row("GET", FLEET),
    platform_row("GET", tenant_a_health),
]
test_matrix, test_refusals, admin = platform_matrix(ROWS)


# --- Alerts --------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_alert_list_filters_and_shape(admin, tenant_a, tenant_b):
    critical = make_alert(tenant_a, severity="critical", kind="runtime.unreachable")
    acked = make_alert(tenant_b, status="acknowledged")
    platform_wide = make_alert(None, severity="info", kind="broker.slow")

    body = admin.get(ALERTS).json()
    assert [row["id"] for row in body["data"]] == [str(platform_wide.pk), str(acked.pk), str(critical.pk)]
    row = body["data"][2]
    assert row["tenant"] == {"id": str(tenant_a.pk), "companyName": "Acme", "slug": "acme", "status": "active"}
    assert (row["severity"], row["kind"], row["status"], row["acknowledgedBy"]) == (
        "critical", "runtime.unreachable", "open", None)
    assert body["data"][0]["tenant"] is None

    assert ids(admin.get(ALERTS, {"status": "acknowledged"})) == [str(acked.pk)]
    assert ids(admin.get(ALERTS, {"severity": "critical"})) == [str(critical.pk)]
    assert ids(admin.get(ALERTS, {"tenant": str(tenant_a.pk)})) == [str(critical.pk)]
    assert ids(admin.get(ALERTS, {"tenant": str(tenant_b.pk), "status": "open"})) == []
    assert ids(admin.get(ALERTS, {"ordering": "createdAt"}))[0] == str(critical.pk)


@pytest.mark.django_db
def test_alert_list_rejects_bad_filters(admin):
    response = admin.get(ALERTS, {"status": "closed", "severity": "fatal", "tenant": "acme", "ordering": "kind"})
    assert (response.status_code, error(response)["code"]) == (400, "VALIDATION_ERROR")
    assert set(error(response)["details"]) == {"status", "severity", "tenant", "ordering"}


@pytest.mark.django_db
def test_alert_list_query_count_does_not_grow_with_the_page(admin, tenant_a, tenant_b, callers):
    handler = callers.user("platform_admin")
    for index in range(12):
        alert = make_alert(tenant_a if index % 2 else tenant_b)
        if index % 3 == 0:
            Alert.objects.filter(pk=alert.pk).update(status="resolved", acknowledged_by=handler,
                                                     resolved_by=handler, resolved_at=NOW)
    assert_queries_do_not_grow_with_the_page(admin, ALERTS, (3, 10))


@pytest.mark.django_db
def test_acknowledge_then_resolve(admin, tenant_a):
    alert = make_alert(tenant_a)
    response = admin.post(f"{ALERTS}/{alert.pk}/acknowledge")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "acknowledged"
    assert body["acknowledgedBy"]["id"] == str(admin.user.pk) and body["acknowledgedAt"] is not None
    assert audit_rows("alert.acknowledged", tenant=tenant_a, actor_user=admin.user).count() == 1

    again = admin.post(f"{ALERTS}/{alert.pk}/acknowledge")
    assert (again.status_code, error(again)["code"]) == (409, "INVALID_STATE")
    assert error(again)["details"]["status"] == "acknowledged"

    response = admin.post(f"{ALERTS}/{alert.pk}/resolve")
    assert (response.status_code, response.json()["status"]) == (200, "resolved")
    assert response.json()["resolvedBy"]["email"] == admin.user.email
    assert audit_rows("alert.resolved", tenant=tenant_a, actor_user=admin.user).count() == 1

    again = admin.post(f"{ALERTS}/{alert.pk}/resolve")
    assert (again.status_code, error(again)["code"]) == (409, "INVALID_STATE")
    assert audit_rows("alert.resolved").count() == 1


@pytest.mark.django_db
def test_platform_wide_alerts_resolve_directly(admin):
    alert = make_alert(None)
    assert admin.post(f"{ALERTS}/{alert.pk}/resolve").json()["status"] == "resolved"
    assert audit_rows("alert.resolved", tenant=None, target_id=str(alert.pk)).count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("verb", ["acknowledge", "resolve"])
def test_unknown_alerts_are_404(admin, verb):
    response = admin.post(f"{ALERTS}/{uuid.uuid4()}/{verb}")
    assert (response.status_code, error(response)["code"]) == (404, "NOT_FOUND")


# --- A tenant's health samples: a cursor feed --------------------------------------------------------------------


@pytest.mark.django_db
def test_health_samples_newest_first_cursor_paged(admin, tenant_a, tenant_b):
    samples = [make_sample(tenant_a, "healthy" if i % 4 else "degraded", checked_at=NOW - timedelta(minutes=i))
               for i in range(7)]
    make_sample(tenant_b, "unhealthy")  # another tenant's: never listed

    first = admin.get(health_url(tenant_a), {"pageSize": 3})
    body = first.json()
    assert [row["id"] for row in body["data"]] == [str(s.pk) for s in samples[:3]]
    assert body["data"][0] == {"id": str(samples[0].pk), "status": "degraded", "cpuPercent": 12.5,
                               "memoryMb": 512.0, "uptimeSeconds": 60, "details": {},
                               "checkedAt": body["data"][0]["checkedAt"]}
    seen = [row["id"] for row in body["data"]]
    cursor = body["pagination"]["next"]
    while cursor:
        body = admin.get(health_url(tenant_a), {"pageSize": 3, "cursor": cursor}).json()
        seen += [row["id"] for row in body["data"]]
        cursor = body["pagination"]["next"]
    assert seen == [str(s.pk) for s in samples]

    window = admin.get(health_url(tenant_a), {"from": (NOW - timedelta(minutes=4)).isoformat(),
                                              "to": (NOW - timedelta(minutes=1)).isoformat()})
    assert ids(window) == [str(s.pk) for s in samples[2:5]]


@pytest.mark.django_db
def test_health_samples_validation_and_unknown_tenant(admin, tenant_a):
    response = admin.get(health_url(tenant_a), {"from": NOW.isoformat(), "to": (NOW - timedelta(hours=1)).isoformat()})
    assert (response.status_code, set(error(response)["details"])) == (400, {"from"})
    response = admin.get(health_url(tenant_a), {"cursor": "garbage"})
    assert (response.status_code, error(response)["code"]) == (404, "NOT_FOUND")
    response = admin.get(f"{PLATFORM}/tenants/{uuid.uuid4()}/health")
    assert (response.status_code, error(response)["code"]) == (404, "NOT_FOUND")


@pytest.mark.django_db
def test_health_samples_query_count_does_not_grow_with_the_page(admin, tenant_a):
    for i in range(12):
        make_sample(tenant_a, checked_at=NOW - timedelta(seconds=i))
    assert_queries_do_not_grow_with_the_page(admin, health_url(tenant_a), (2, 10))


# --- Fleet health: each runtime's newest sample ---------------------------------------------------------------


@pytest.mark.django_db
def test_fleet_shows_each_tenants_newest_sample(admin, tenant_a, tenant_b):
    make_sample(tenant_a, "unhealthy", checked_at=NOW - timedelta(minutes=10))
    newest_a = make_sample(tenant_a, "healthy", checked_at=NOW)
    newest_b = make_sample(tenant_b, "unreachable", checked_at=NOW - timedelta(minutes=1))
    make_sample(tenant_b, "healthy", checked_at=NOW - timedelta(minutes=2))
    make_tenant()  # no sample yet: not listed

    body = admin.get(FLEET).json()
    assert [row["id"] for row in body["data"]] == [str(newest_a.pk), str(newest_b.pk)]  # by company name
    assert body["data"][1]["tenant"]["companyName"] == "Globex"
    assert body["data"][1]["status"] == "unreachable"
    assert body["pagination"]["total"] == 2

    assert ids(admin.get(FLEET, {"status": "unreachable"})) == [str(newest_b.pk)]
    assert ids(admin.get(FLEET, {"status": "unhealthy"})) == []  # an older sample does not count
    assert ids(admin.get(FLEET, {"ordering": "-tenant"})) == [str(newest_b.pk), str(newest_a.pk)]
    assert ids(admin.get(FLEET, {"ordering": "checkedAt"})) == [str(newest_b.pk), str(newest_a.pk)]
    response = admin.get(FLEET, {"status": "dead"})
    assert (response.status_code, set(error(response)["details"])) == (400, {"status"})


@pytest.mark.django_db
def test_fleet_query_count_does_not_grow_with_the_page(admin):
    for _ in range(10):
        tenant = make_tenant()
        make_sample(tenant, checked_at=NOW - timedelta(minutes=1))
        make_sample(tenant)
    assert_queries_do_not_grow_with_the_page(admin, FLEET, (2, 8))


@pytest.mark.django_db
def test_the_latest_sample_per_tenant_is_one_index_probe_per_tenant():
    tenants = [make_tenant() for _ in range(50)]
    execute(
        """
        INSERT INTO monitoring_containerhealth (id, created_at, updated_at, status, details, checked_at, tenant_id)
        SELECT gen_random_uuid(), now(), now(), CASE WHEN g <= 50 THEN 'unhealthy' ELSE 'healthy' END, '{}',
               now() - g * interval '1 minute', (%s::uuid[])[1 + mod(g, 50)]
        FROM generate_series(1, 20000) g
        """,
        [[str(t.pk) for t in tenants]],
    )
    execute("ANALYZE monitoring_containerhealth")
    fleet = selectors.fleet_health()
    plan = plan_of(fleet)
    assert "monitoring_health_tenant_idx" in indexes_used(plan)
    assert "Seq Scan" not in {node["Node Type"] for node in plan_nodes(plan)
                              if node.get("Relation Name") == "monitoring_containerhealth"}
    assert len(fleet) == 50
    assert {sample.status for sample in fleet} == {"unhealthy"}  # each tenant's newest (g <= 50)
