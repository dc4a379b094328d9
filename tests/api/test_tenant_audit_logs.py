"""GET /api/v1/audit-logs: the caller's tenant's audit trail only, newest first, cursor-paginated,
with filters; who may read it."""

from __future__ import annotations

import json
from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.audit.models import AuditLog
from apps.audit.services import record
from apps.tenants.services import suspend
from tests.api.conftest import api_key_client
from tests.api.matrix import Row, matrix_test

URL = "/api/v1/audit-logs"


def entry(tenant, action: str = "agent.created", *, actor=None, at=None, target=None, **fields) -> AuditLog:
    """An audit row as the services write it; `at` fixes its timestamp (created_at is auto_now_add)."""
    if at is None:
        return record(action, tenant=tenant, actor=actor, target=target, **fields)
    with mock.patch("django.utils.timezone.now", return_value=at):
        return record(action, tenant=tenant, actor=actor, target=target, **fields)


def ids(response) -> list[str]:
    return [row["id"] for row in response.json()["data"]]


def error(response) -> dict:
    return response.json()["error"]


# --- Authorization matrix ------------------------------------------------------------------------

ROWS = [
    # Tenant B's admin reads tenant B's own log (test_each_tenant_sees_only_its_own_entries).
    Row("GET", URL, allowed={"tenant_admin", "other_tenant_admin", "api_key:audit:read"},
        extra_callers=("api_key:skills:read", "api_key:team:read", "api_key:tenant:read")),
]
test_matrix = matrix_test(ROWS)


@pytest.mark.django_db
@pytest.mark.parametrize("caller", ["tenant_admin", "api_key:audit:read"])
def test_a_suspended_tenant_is_refused(callers, caller):
    client = callers[caller]
    suspend(callers.tenant_a, reason="Unpaid invoices")
    response = client.get(URL)
    assert response.status_code == 403 and error(response)["code"] == "TENANT_SUSPENDED"


@pytest.mark.django_db
def test_a_member_is_refused(callers):
    response = callers["tenant_member"].get(URL)
    assert response.status_code == 403 and error(response)["code"] == "PERMISSION_DENIED"


# --- Isolation -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_each_tenant_sees_only_its_own_entries(callers, tenant_a, tenant_b):
    mine = [entry(tenant_a, "agent.created"), entry(tenant_a, "agent.updated")]
    theirs = entry(tenant_b, "agent.deleted")
    platform_level = entry(None, "tenant.created")

    a_ids = set(ids(callers["tenant_admin"].get(URL, {"pageSize": 100})))
    b_ids = set(ids(callers["other_tenant_admin"].get(URL, {"pageSize": 100})))

    assert {str(row.pk) for row in mine} <= a_ids
    assert str(theirs.pk) not in a_ids and str(platform_level.pk) not in a_ids
    assert str(theirs.pk) in b_ids
    assert not b_ids & {str(row.pk) for row in mine} and str(platform_level.pk) not in b_ids
    assert AuditLog.objects.filter(pk__in=a_ids).exclude(tenant=tenant_a).count() == 0
    assert AuditLog.objects.filter(pk__in=b_ids).exclude(tenant=tenant_b).count() == 0


@pytest.mark.django_db
def test_filters_cannot_reach_another_tenant(callers, tenant_a):
    admin_a = callers.user("tenant_admin")
    entry(tenant_a, "skill.submitted", actor=admin_a)
    response = callers["other_tenant_admin"].get(URL, {"actor": str(admin_a.pk), "action": "skill.submitted"})
    assert response.status_code == 200 and response.json()["data"] == []


# --- Shape and filters -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_entry_shows_who_did_what_to_what(callers, tenant_a):
    admin = callers.user("tenant_admin")
    row = entry(tenant_a, "agent.updated", actor=admin, target=admin,
                changes={"model_tier": {"before": "fast", "after": "powerful"}})

    data = callers["tenant_admin"].get(URL).json()["data"]

    shown = next(item for item in data if item["id"] == str(row.pk))
    assert shown == {
        "id": str(row.pk), "action": "agent.updated",
        "actor": {"type": "user", "id": str(admin.pk), "label": admin.email},
        "targetType": "accounts.user", "targetId": str(admin.pk),
        "changes": {"modelTier": {"before": "fast", "after": "powerful"}},  # field names as on the wire
        "ip": None, "userAgent": "", "requestId": "",
        "createdAt": row.created_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }


@pytest.mark.django_db
def test_api_key_and_system_actors(callers, tenant_a):
    key = api_key_client(tenant_a, ["audit:read"]).api_key
    by_key = entry(tenant_a, "agent.paused", actor=key)
    by_system = entry(tenant_a, "tenant.provisioned")

    data = {item["id"]: item for item in callers["tenant_admin"].get(URL).json()["data"]}

    assert data[str(by_key.pk)]["actor"] == {"type": "api_key", "id": str(key.pk), "label": f"api-key:{key.prefix}"}
    assert data[str(by_system.pk)]["actor"] == {"type": "system", "id": None, "label": ""}


@pytest.mark.django_db
def test_filters_by_actor_action_target_type_and_time(callers, tenant_a):
    admin, member = callers.user("tenant_admin"), callers.user("tenant_member")
    now = timezone.now()
    early = entry(tenant_a, "agent.created", actor=admin, at=now - timedelta(days=3), target=member)
    middle = entry(tenant_a, "agent.updated", actor=member, at=now - timedelta(days=2))
    late = entry(tenant_a, "agent.updated", actor=admin, at=now - timedelta(days=1))
    client = callers["tenant_admin"]

    def found(**params) -> list[str]:
        response = client.get(URL, params)
        assert response.status_code == 200, response.content
        return [i for i in ids(response) if i in {str(early.pk), str(middle.pk), str(late.pk)}]

    assert found(actor=str(admin.pk)) == [str(late.pk), str(early.pk)]
    assert found(action="agent.updated") == [str(late.pk), str(middle.pk)]
    assert found(targetType="accounts.user") == [str(early.pk)]
    # `from` inclusive, `to` exclusive.
    window = {"from": (now - timedelta(days=2)).isoformat(), "to": (now - timedelta(days=1)).isoformat()}
    assert found(**window) == [str(middle.pk)]
    assert found(actor=str(admin.pk), action="agent.updated", **{"from": (now - timedelta(days=4)).isoformat()}) == [
        str(late.pk)]


@pytest.mark.django_db
@pytest.mark.parametrize(("params", "field"), [
    ({"actor": "someone"}, "actor"),
    ({"from": "yesterday"}, "from"),
    ({"to": "2025-13-45"}, "to"),
    ({"from": "2025-02-01T00:00:00Z", "to": "2025-01-01T00:00:00Z"}, "from"),
    ({"action": "x" * 101}, "action"),
    ({"targetType": "x" * 51}, "targetType"),
])
def test_invalid_filters_are_validation_errors(callers, params, field):
    response = callers["tenant_admin"].get(URL, params)
    assert response.status_code == 400
    assert error(response)["code"] == "VALIDATION_ERROR" and field in error(response)["details"]


@pytest.mark.django_db
def test_submitting_a_skill_shows_in_the_feed_with_the_request(callers):
    admin = callers["tenant_admin"]
    body = {"name": "Pager", "slug": "pager", "version": "1.0.0"}
    submitted = admin.post("/api/v1/skills", json.dumps(body), content_type="application/json",
                           HTTP_USER_AGENT="audit-test")
    assert submitted.status_code == 201

    newest = admin.get(URL, {"action": "skill.submitted"}).json()["data"][0]

    assert newest["targetType"] == "skills.skill" and newest["targetId"] == submitted.json()["id"]
    assert newest["actor"]["id"] == str(callers.user("tenant_admin").pk)
    assert newest["userAgent"] == "audit-test" and newest["requestId"] == submitted["X-Request-ID"]
    assert newest["ip"] == "127.0.0.1"


# --- Cursor paging -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_feed_pages_by_cursor_newest_first_and_stays_stable_under_inserts(callers, tenant_a):
    base = timezone.now() - timedelta(hours=1)
    created = [entry(tenant_a, f"agent.step_{n}", at=base + timedelta(minutes=n)) for n in range(7)]
    client = callers["tenant_admin"]
    params = {"pageSize": 3}

    first = client.get(URL, {**params}).json()
    assert first["pagination"]["pageSize"] == 3 and first["pagination"]["next"]
    seen = [row["id"] for row in first["data"]]
    # A new entry arrives between pages: it must neither shift nor repeat what follows.
    late = entry(tenant_a, "agent.late")
    cursor = first["pagination"]["next"]
    while cursor:
        page = client.get(URL, {**params, "cursor": cursor}).json()
        seen += [row["id"] for row in page["data"]]
        cursor = page["pagination"]["next"]

    assert len(seen) == len(set(seen)) and str(late.pk) not in seen
    # (The feed also holds the rows that set up the callers, newer than these.)
    created_ids = {str(row.pk) for row in created}
    assert [i for i in seen if i in created_ids] == [str(row.pk) for row in reversed(created)]
    assert client.get(URL, params).json()["data"][0]["id"] == str(late.pk)


@pytest.mark.django_db
def test_entries_with_the_same_timestamp_are_neither_lost_nor_repeated(callers, tenant_a):
    moment = timezone.now() - timedelta(minutes=5)
    created = {str(entry(tenant_a, "agent.bulk", at=moment).pk) for _ in range(5)}
    client = callers["tenant_admin"]
    seen, cursor = [], None
    while True:
        page = client.get(URL, {"pageSize": 2, "action": "agent.bulk", **({"cursor": cursor} if cursor else {})})
        seen += ids(page)
        cursor = page.json()["pagination"]["next"]
        if not cursor:
            break
    assert sorted(seen) == sorted(created)


@pytest.mark.django_db
def test_a_malformed_cursor_is_not_found(callers):
    response = callers["tenant_admin"].get(URL, {"cursor": "not-a-cursor"})
    assert response.status_code == 404 and error(response)["code"] == "NOT_FOUND"


@pytest.mark.django_db
def test_queries_per_page_do_not_grow_with_the_page_size(callers, tenant_a):
    admin = callers.user("tenant_admin")
    key = api_key_client(tenant_a, ["audit:read"]).api_key
    for n in range(30):
        entry(tenant_a, "agent.updated", actor=admin if n % 2 else key)
    client = callers["tenant_admin"]
    client.get(URL)

    for params in ({}, {"action": "agent.updated", "actor": str(admin.pk)}):
        counts = {}
        for size in (5, 14):
            with CaptureQueriesContext(connection) as queries:
                response = client.get(URL, {**params, "pageSize": size})
            assert response.status_code == 200 and len(response.json()["data"]) == size
            counts[size] = len(queries)
        assert counts[5] == counts[14], (params, counts)


@pytest.mark.django_db
def test_ten_thousand_entries_stay_paginated(callers, tenant_a, tenant_b):
    base = timezone.now() - timedelta(days=30)
    rows = [AuditLog(tenant=tenant_a if n % 2 else tenant_b, action="agent.updated", actor_label="bulk")
            for n in range(10_000)]
    with mock.patch("django.utils.timezone.now", side_effect=[base + timedelta(seconds=n) for n in range(10_000)]):
        AuditLog.objects.bulk_create(rows, batch_size=2_500)
    client = callers["tenant_admin"]

    first = client.get(URL).json()
    assert len(first["data"]) == 50 and first["pagination"] == {"next": first["pagination"]["next"], "pageSize": 50}
    assert first["pagination"]["next"]
    capped = client.get(URL, {"pageSize": 1000}).json()
    assert len(capped["data"]) == 100 and capped["pagination"]["pageSize"] == 100
    # Deep in the feed: follow the cursor 10 pages of 100 (1,000 of tenant A's 5,000 entries).
    cursor, seen = capped["pagination"]["next"], len(capped["data"])
    for _ in range(9):
        page = client.get(URL, {"pageSize": 100, "cursor": cursor}).json()
        seen += len(page["data"])
        cursor = page["pagination"]["next"]
    assert seen == 1_000 and cursor
