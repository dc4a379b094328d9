"""Shared pieces of the platform console's API tests (tests/api/test_platform_*.py): objects the
rows need, and the authorization matrix of /api/v1/platform/, where only a platform admin with
a TOTP-verified session gets in."""

from __future__ import annotations

import json
import uuid
from datetime import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.audit.models import AuditLog
from apps.monitoring.models import Alert, ContainerHealth
from apps.tenants.models import Tenant
from tests.api.matrix import Row, matrix_test

PLATFORM = "/api/v1/platform"
ADMIN_ONLY = frozenset({"platform_admin"})
# Every kind of caller that is not a verified platform admin, and the refusal each one gets.
REFUSALS = {
    "anonymous": (401, "NOT_AUTHENTICATED"),
    "platform_admin_no_mfa": (403, "MFA_REQUIRED"),
    "tenant_admin": (403, "PERMISSION_DENIED"),
    "tenant_member": (403, "PERMISSION_DENIED"),
    "other_tenant_admin": (403, "PERMISSION_DENIED"),
    "api_key:": (403, "PERMISSION_DENIED"),
    "api_key:tenant:read,tenant:write,audit:read,skills:write": (403, "PERMISSION_DENIED"),
}


def error(response) -> dict:
    return response.json()["error"]


def ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["data"]]


def assert_queries_do_not_grow_with_the_page(client, url: str, sizes: tuple[int, int], **params) -> None:
    """A bigger page costs no more queries than a smaller one (no N+1). A warm-up request fills the
    first-request caches first, so they do not count against the smaller page."""
    client.get(url, {**params, "pageSize": 1})
    counts = []
    for size in sizes:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url, {**params, "pageSize": size})
        assert len(response.json()["data"]) == size, response.content[:300]
        counts.append(len(queries))
    assert counts[0] == counts[1], counts


def make_tenant(status: str = Tenant.Status.ACTIVE, **fields) -> Tenant:
    """A tenant row in any state, without a schema (enough for every endpoint but usage)."""
    slug = fields.pop("slug", None) or f"t-{uuid.uuid4().hex[:10]}"
    now = timezone.now()
    defaults = {
        "company_name": f"Company {slug}", "admin_email": f"admin@{slug}.example", "status": status,
        "suspended_at": now if status == Tenant.Status.SUSPENDED else None,
        "purge_after": now if status == Tenant.Status.DECOMMISSIONED else None,
        "status_reason": "boom" if status == Tenant.Status.FAILED else "",
        "resource_limits": {"max_agents": 5, "monthly_token_budget": 1000},
    }
    return Tenant.objects.create(slug=slug, schema_name="t_" + slug.replace("-", "_"), **{**defaults, **fields})


def make_alert(tenant: Tenant | None = None, **fields) -> Alert:
    defaults = {"severity": Alert.Severity.WARNING, "kind": "runtime.unhealthy", "message": "Runtime unhealthy",
                "dedup_key": f"alert:{uuid.uuid4().hex}"}
    return Alert.objects.create(tenant=tenant, **{**defaults, **fields})


def make_sample(tenant: Tenant, status: str = "healthy", *, checked_at: datetime | None = None,
                **fields) -> ContainerHealth:
    return ContainerHealth.objects.create(tenant=tenant, status=status, checked_at=checked_at or timezone.now(),
                                          **{"cpu_percent": 12.5, "memory_mb": 512.0, "uptime_seconds": 60, **fields})


def audit_rows(action: str, **filters):
    return AuditLog.objects.filter(action=action, **filters)


def platform_row(method: str, path, **fields) -> Row:
    """A matrix row of a platform endpoint: only a verified platform admin gets in."""
    return Row(method, path, allowed=ADMIN_ONLY, **fields)


def platform_matrix(rows: list[Row]):
    """What a platform test module starts with, for its platform-only rows: (the matrix test, a test
    that each refusal carries the right code, the `admin` fixture: the verified platform admin's client)."""
    for row in rows:
        assert row.allowed == ADMIN_ONLY, row.id()
    test_matrix = matrix_test(rows)
    cases = [(row, caller) for row in rows for caller in REFUSALS]

    @pytest.mark.django_db
    @pytest.mark.parametrize(("row", "caller"), cases, ids=[f"{r.id()} as {c}" for r, c in cases])
    def test_refusals(row: Row, caller: str, callers):
        path = row.path(callers) if callable(row.path) else row.path
        body = row.body(callers) if callable(row.body) else row.body
        response = callers[caller].generic(row.method, path, data=None if body is None else json.dumps(body),
                                           content_type="application/json")
        status, code = REFUSALS[caller]
        assert (response.status_code, error(response)["code"]) == (status, code), response.content[:300]

    @pytest.fixture
    def admin(callers):
        return callers["platform_admin"]

    return test_matrix, test_refusals, admin
