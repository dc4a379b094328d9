"""Platform console: the audit trail across tenants (/api/v1/platform/audit-logs), a cursor feed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.audit.models import AuditLog
from apps.audit.services import record
from tests.api.platform_support import PLATFORM, error, ids, platform_matrix, platform_row
from tests.dbtools import execute, indexes_used, plan_nodes, plan_of_sql

FEED = f"{PLATFORM}/audit-logs"

ROWS = [platform_row("GET", FEED)]
test_matrix, test_refusals, admin = platform_matrix(ROWS)


def walk(client, params: dict) -> tuple[list[str], int]:
    """Every id the feed gives, following `next` to the end; and the number of pages."""
    seen, pages, cursor = [], 0, None
    while True:
        response = client.get(FEED, {**params, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.content
        body = response.json()
        seen += [row["id"] for row in body["data"]]
        pages += 1
        cursor = body["pagination"]["next"]
        if cursor is None:
            return seen, pages


@pytest.mark.django_db
def test_entries_across_tenants_with_tenant_and_actor(admin, callers, tenant_a, tenant_b):
    person = callers.user("tenant_admin")
    key = callers["api_key:agents:read"].api_key
    mine = record("agent.created", actor=person, tenant=tenant_a, target=tenant_a, changes={"name": "Ava"})
    theirs = record("apikey.used", actor=key, tenant=tenant_b)
    platform_level = record("role.updated", actor=admin.user, changes={"name": {"before": "a", "after": "b"}})
    system = record("tenant.provisioned", tenant=tenant_b)

    body = admin.get(FEED).json()
    listed = {row["id"]: row for row in body["data"]}
    assert {str(e.pk) for e in (mine, theirs, platform_level, system)} <= set(listed)
    assert body["pagination"] == {"next": None, "pageSize": 50}
    row = listed[str(mine.pk)]
    assert row["tenant"] == {"id": str(tenant_a.pk), "companyName": "Acme", "slug": "acme", "status": "active"}
    assert row["actor"] == {"type": "user", "id": str(person.pk), "label": person.email}
    assert (row["action"], row["targetType"], row["targetId"], row["changes"]) == (
        "agent.created", "tenants.tenant", str(tenant_a.pk), {"name": "Ava"})
    assert listed[str(theirs.pk)]["actor"] == {"type": "api_key", "id": str(key.pk), "label": f"api-key:{key.prefix}"}
    assert listed[str(platform_level.pk)]["tenant"] is None
    assert listed[str(system.pk)]["actor"] == {"type": "system", "id": None, "label": ""}


@pytest.mark.django_db
def test_filters(admin, callers, tenant_a, tenant_b):
    person = callers.user("tenant_admin")
    other = callers.user("other_tenant_admin")
    a1 = record("agent.created", actor=person, tenant=tenant_a)
    a2 = record("agent.deleted", actor=person, tenant=tenant_a)
    b1 = record("agent.created", actor=other, tenant=tenant_b)

    assert ids(admin.get(FEED, {"tenant": str(tenant_a.pk)}))[:2] == [str(a2.pk), str(a1.pk)]
    assert str(b1.pk) not in ids(admin.get(FEED, {"tenant": str(tenant_a.pk)}))
    assert ids(admin.get(FEED, {"actor": str(other.pk)})) == [str(b1.pk)]
    assert ids(admin.get(FEED, {"action": "agent.created", "actor": str(person.pk)})) == [str(a1.pk)]
    assert ids(admin.get(FEED, {"action": "agent.created", "tenant": str(tenant_b.pk)})) == [str(b1.pk)]
    assert ids(admin.get(FEED, {"action": "agent"})) == []  # exact, not a prefix

    start = AuditLog.objects.get(pk=a2.pk).created_at
    end = AuditLog.objects.get(pk=b1.pk).created_at
    window = ids(admin.get(FEED, {"from": start.isoformat(), "to": end.isoformat()}))
    assert window == [str(a2.pk)]  # from is inclusive, to exclusive
    assert ids(admin.get(FEED, {"from": (end + timedelta(seconds=1)).isoformat()})) == []


@pytest.mark.django_db
@pytest.mark.parametrize(("params", "fields"), [
    ({"tenant": "acme"}, {"tenant"}),
    ({"actor": "42"}, {"actor"}),
    ({"from": "yesterday"}, {"from"}),
    ({"from": "2025-02-02T00:00:00Z", "to": "2025-02-01T00:00:00Z"}, {"from"}),
    ({"action": "x" * 101}, {"action"}),
])
def test_filters_are_validated(admin, params, fields):
    response = admin.get(FEED, params)
    assert (response.status_code, error(response)["code"]) == (400, "VALIDATION_ERROR")
    assert set(error(response)["details"]) == fields


@pytest.mark.django_db
def test_a_bad_cursor_is_404(admin):
    response = admin.get(FEED, {"cursor": "not-a-cursor"})
    assert (response.status_code, error(response)["code"]) == (404, "NOT_FOUND")


def insert_entries(count: int, tenants: list, actor_id) -> None:
    """`count` entries, three to a timestamp (ties the cursor must get through), newest g=1."""
    execute(
        """
        INSERT INTO audit_auditlog (id, created_at, actor_label, action, target_type, target_id, changes,
                                    user_agent, request_id, tenant_id, actor_user_id)
        SELECT gen_random_uuid(), %s::timestamptz - (g / 3) * interval '1 second', 'bulk@aegis.example',
               (ARRAY['agent.created', 'agent.updated', 'tenant.updated', 'skill.approved'])[1 + mod(g, 4)],
               'agents.agent', g::text, '{}', '', '', (%s::uuid[])[1 + mod(g, 2)],
               CASE WHEN mod(g, 5) = 0 THEN %s::uuid END
        FROM generate_series(1, %s) g
        """,
        [datetime(2030, 1, 1, tzinfo=UTC), [str(t.pk) for t in tenants], actor_id, count],
    )
    execute("ANALYZE audit_auditlog")


@pytest.mark.django_db
def test_10k_entries_stay_paginated_and_the_cursor_has_no_duplicates_or_gaps(admin, tenant_a, tenant_b):
    insert_entries(10_000, [tenant_a, tenant_b], admin.user.pk)
    expected = [str(pk) for pk in AuditLog.objects.order_by("-created_at", "-id").values_list("pk", flat=True)]
    assert len(expected) >= 10_000

    first = admin.get(FEED).json()
    assert len(first["data"]) == 50 and first["pagination"]["next"]  # never the whole table

    seen, pages = walk(admin, {"pageSize": 100})
    assert len(seen) == len(set(seen))  # no duplicates
    assert seen == expected  # no gaps, newest first
    assert pages == -(-len(expected) // 100)

    # Filtered walks hold the same promise.
    only_a, _ = walk(admin, {"pageSize": 100, "tenant": str(tenant_a.pk), "action": "agent.created"})
    assert only_a == [str(pk) for pk in AuditLog.objects.filter(tenant=tenant_a, action="agent.created")
                      .order_by("-created_at", "-id").values_list("pk", flat=True)]
    assert len(only_a) > 1000


@pytest.mark.django_db
def test_a_deep_page_costs_what_the_first_does(admin, tenant_a, tenant_b):
    insert_entries(10_000, [tenant_a, tenant_b], admin.user.pk)
    admin.get(FEED, {"pageSize": 1})  # warm-up

    def page(cursor=None, size=50):
        with CaptureQueriesContext(connection) as queries:
            response = admin.get(FEED, {"pageSize": size, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200
        feed_sql = [q["sql"] for q in queries.captured_queries if 'FROM "audit_auditlog"' in q["sql"]]
        return response.json(), len(queries), feed_sql

    body, first_count, first_sql = page()
    cursor = body["pagination"]["next"]
    for _ in range(60):  # 3,000 entries deep
        body = admin.get(FEED, {"pageSize": 50, "cursor": cursor}).json()
        cursor = body["pagination"]["next"]
    deep, deep_count, deep_sql = page(cursor)
    _, bigger_count, _ = page(cursor, size=100)

    assert len(deep["data"]) == 50
    assert first_count == deep_count == bigger_count  # no N+1, no COUNT, whatever the depth or size
    assert len(first_sql) == len(deep_sql) == 1  # the tenant is joined in, the actor read from the row
    # Keyset, not OFFSET: the deep page starts from the cursor's position through the index.
    assert '"audit_auditlog"."created_at" <' in deep_sql[0]
    assert " OFFSET 3" not in deep_sql[0] and "OFFSET 30" not in deep_sql[0]
    assert "audit_created_idx" in indexes_used(plan_of_sql(deep_sql[0]))


@pytest.mark.django_db
def test_entries_of_a_deleted_actor_keep_its_label(admin, tenant_a):
    from apps.accounts.models import Role, User

    gone = User.objects.create_user(f"{uuid.uuid4().hex[:8]}@aegis.example", "pw-irrelevant-123",
                                    name="Gone", role=Role.PLATFORM_ADMIN)
    entry = record("role.created", actor=gone)
    gone.delete()
    row = next(row for row in admin.get(FEED).json()["data"] if row["id"] == str(entry.pk))
    assert row["actor"] == {"type": "user", "id": None, "label": gone.email}


@pytest.mark.django_db
def test_every_filter_reads_through_an_index(admin, tenant_a, tenant_b):
    from apps.audit import selectors

    insert_entries(10_000, [tenant_a, tenant_b], admin.user.pk)
    moment = datetime(2030, 1, 1, tzinfo=UTC) - timedelta(minutes=30)
    feeds = {
        "all": selectors.audit_logs(),
        "tenant": selectors.audit_logs(tenant_id=tenant_a.pk),
        "actor": selectors.audit_logs(actor_id=admin.user.pk),
        "action": selectors.audit_logs(action="skill.approved"),
        "range": selectors.audit_logs(since=moment - timedelta(minutes=5), until=moment),
        "combined": selectors.audit_logs(tenant_id=tenant_b.pk, action="agent.updated", until=moment),
    }
    for name, queryset in feeds.items():
        sql, params = queryset.order_by("-created_at", "-id")[:51].query.sql_with_params()
        plan = plan_of_sql(sql, params)
        scans = {node["Node Type"] for node in plan_nodes(plan) if node.get("Relation Name") == "audit_auditlog"}
        assert "Seq Scan" not in scans, (name, scans)
        assert {index for index in indexes_used(plan) if index.startswith("audit_")}, name
