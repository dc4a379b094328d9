"""API keys: created by tenant admins, shown once, stored hashed, revoked at once."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from aegis.api.authentication import API_KEY_GENERATOR
from aegis.api.permissions import API_KEY_SCOPES
from apps.accounts.models import ApiKey
from apps.accounts.services import create_api_key
from apps.audit.models import AuditLog
from tests.api.matrix import Row, matrix_test

KEYS = "/api/v1/api-keys"
EVERY_SCOPE = "api_key:" + ",".join(sorted(API_KEY_SCOPES))


def error(response) -> dict:
    return response.json()["error"]


def key_of(tenant, **fields) -> tuple[ApiKey, str]:
    fields = {"name": "ops", "scopes": ["team:read"], "actor": None, **fields}
    return create_api_key(tenant=tenant, **fields)


def as_key(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    return client


# --- Authorization matrix ------------------------------------------------------------------------


def a_key(ctx) -> str:
    return f"{KEYS}/{key_of(ctx.tenant_a)[0].pk}"


# Keys are for people to manage: no API key, whatever its scopes, may list, create or revoke them.
ROWS = [
    Row("GET", KEYS, allowed={"tenant_admin", "other_tenant_admin"}, extra_callers=(EVERY_SCOPE,)),
    Row("POST", KEYS, body={"name": "ci", "scopes": ["agents:read"]}, ok=201,
        allowed={"tenant_admin", "other_tenant_admin"}, extra_callers=(EVERY_SCOPE,)),
    Row("DELETE", a_key, ok=204, allowed={"tenant_admin"}, extra_callers=(EVERY_SCOPE,),
        refused={"other_tenant_admin": (404,)}),
]
test_matrix = matrix_test(ROWS)


# --- Create --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_create_shows_the_full_key_once_and_stores_only_its_hash(callers, tenant_a):
    admin = callers["tenant_admin"]
    expires = (timezone.now() + timedelta(days=30)).replace(microsecond=0)

    response = admin.post(KEYS, {"name": " CI deploys ", "scopes": ["agents:write", "agents:read", "agents:read"],
                                 "expiresAt": expires.isoformat(), "rateLimitPerMinute": 120}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    raw = body["key"]
    prefix, _, secret = raw.partition(".")
    assert len(prefix) == 8 and len(secret) == 32
    assert body["prefix"] == prefix
    assert body["name"] == "CI deploys"
    assert body["scopes"] == ["agents:read", "agents:write"]
    assert body["status"] == "active"
    assert body["rateLimitPerMinute"] == 120
    assert body["createdBy"]["email"] == "admin@a.example"
    assert body["lastUsedAt"] is None and body["revokedAt"] is None

    stored = ApiKey.objects.get(pk=body["id"])
    assert stored.tenant == tenant_a and stored.expires_at == expires
    assert raw not in stored.hashed_key and secret not in stored.hashed_key
    assert API_KEY_GENERATOR.verify(raw, stored.hashed_key)

    listed = admin.get(KEYS).json()["data"]
    assert [row["id"] for row in listed] == [body["id"]]
    assert "key" not in listed[0] and "hashedKey" not in listed[0]
    assert raw not in admin.get(KEYS).content.decode() and secret not in admin.get(KEYS).content.decode()

    entry = AuditLog.objects.get(action="api_key.created")
    assert entry.tenant == tenant_a and entry.actor_user == callers.user("tenant_admin")
    assert entry.target_id == str(stored.pk)
    assert secret not in str(entry.changes) and stored.hashed_key not in str(entry.changes)
    assert entry.changes["scopes"] == ["agents:read", "agents:write"]


@pytest.mark.django_db
def test_the_new_key_works_with_its_scopes_only(callers):
    raw = callers["tenant_admin"].post(KEYS, {"name": "reader", "scopes": ["team:read"]}, format="json").json()["key"]
    client = as_key(raw)

    assert client.get("/api/v1/team").status_code == 200
    refused = client.patch(f"/api/v1/team/{callers.user('tenant_admin').membership.pk}", {"status": "suspended"},
                           format="json")
    assert refused.status_code == 403 and "team:write" in error(refused)["message"]
    assert ApiKey.objects.get(prefix=raw.split(".")[0]).last_used_at is not None


@pytest.mark.django_db
def test_default_rate_limit_and_no_expiry(callers):
    body = callers["tenant_admin"].post(KEYS, {"name": "plain", "scopes": ["tenant:read"]}, format="json").json()
    assert body["rateLimitPerMinute"] == 600
    assert body["expiresAt"] is None


@pytest.mark.django_db
@pytest.mark.parametrize(("body", "field", "message"), [
    ({"name": "x", "scopes": ["agents:read", "agents:destroy"]}, "scopes.1", "Unknown scope 'agents:destroy'."),
    ({"name": "x", "scopes": []}, "scopes", None),
    ({"name": "x"}, "scopes", None),
    ({"scopes": ["team:read"]}, "name", None),
    ({"name": "   ", "scopes": ["team:read"]}, "name", None),
    ({"name": "x" * 101, "scopes": ["team:read"]}, "name", None),
    ({"name": "x", "scopes": ["team:read"], "expiresAt": "2001-01-01T00:00:00Z"}, "expiresAt",
     "The expiry must be in the future."),
    ({"name": "x", "scopes": ["team:read"], "rateLimitPerMinute": 0}, "rateLimitPerMinute", None),
    ({"name": "x", "scopes": ["team:read"], "rateLimitPerMinute": 10_001}, "rateLimitPerMinute", None),
])
def test_create_validation(callers, body, field, message):
    response = callers["tenant_admin"].post(KEYS, body, format="json")
    assert response.status_code == 400, response.content
    assert error(response)["code"] == "VALIDATION_ERROR"
    assert field in error(response)["details"], error(response)["details"]
    if message:
        assert error(response)["details"][field] == [message]
    assert ApiKey.objects.count() == 0


# --- List ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_list_filters_by_status_and_is_scoped_to_the_tenant(callers, tenant_a, tenant_b):
    active, _ = key_of(tenant_a, name="active one")
    expired, _ = key_of(tenant_a, name="expired one")
    ApiKey.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    revoked, _ = key_of(tenant_a, name="revoked one")
    ApiKey.objects.filter(pk=revoked.pk).update(revoked_at=timezone.now())
    theirs, _ = key_of(tenant_b, name="tenant b")
    admin = callers["tenant_admin"]

    rows = admin.get(KEYS).json()["data"]
    assert {row["name"]: row["status"] for row in rows} == {"active one": "active", "expired one": "expired",
                                                            "revoked one": "revoked"}
    for status, expected in [("active", active), ("expired", expired), ("revoked", revoked)]:
        assert [row["id"] for row in admin.get(KEYS, {"status": status}).json()["data"]] == [str(expected.pk)]
    assert [row["id"] for row in admin.get(KEYS, {"search": "EXPIRED"}).json()["data"]] == [str(expired.pk)]
    assert [row["id"] for row in admin.get(KEYS, {"search": active.prefix}).json()["data"]] == [str(active.pk)]
    assert [row["id"] for row in callers["other_tenant_admin"].get(KEYS).json()["data"]] == [str(theirs.pk)]
    assert admin.get(KEYS, {"status": "lost"}).status_code == 400


@pytest.mark.django_db
def test_list_query_count_does_not_grow_with_the_page(callers, tenant_a):
    admin = callers["tenant_admin"]
    for number in range(6):
        key_of(tenant_a, name=f"k{number}", actor=callers.user("tenant_admin"))
    admin.get(KEYS, {"pageSize": 1})  # warm-up: first-request caches
    counts, own = [], []
    for size in (2, 6):
        with CaptureQueriesContext(connection) as queries:
            assert len(admin.get(KEYS, {"pageSize": size}).json()["data"]) == size
        counts.append(len(queries))
        own.append([q["sql"] for q in queries.captured_queries if 'FROM "accounts_apikey"' in q["sql"]])
    assert counts[0] == counts[1], counts
    assert [len(sqls) for sqls in own] == [2, 2], own  # COUNT(*) and the page, related rows joined in


# --- Revoke and expiry ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_revoked_key_is_refused_on_its_next_request(callers, tenant_a):
    key, raw = key_of(tenant_a)
    client = as_key(raw)
    assert client.get("/api/v1/team").status_code == 200

    assert callers["tenant_admin"].delete(f"{KEYS}/{key.pk}").status_code == 204

    refused = client.get("/api/v1/team")
    assert refused.status_code == 401
    assert error(refused)["code"] == "AUTHENTICATION_FAILED"
    key.refresh_from_db()
    assert key.revoked_at is not None
    entry = AuditLog.objects.get(action="api_key.revoked")
    assert entry.target_id == str(key.pk) and entry.actor_user == callers.user("tenant_admin")
    # Revoking again changes nothing and writes nothing.
    assert callers["tenant_admin"].delete(f"{KEYS}/{key.pk}").status_code == 204
    assert AuditLog.objects.filter(action="api_key.revoked").count() == 1


@pytest.mark.django_db
def test_an_expired_key_is_refused(tenant_a):
    key, raw = key_of(tenant_a, expires_at=timezone.now() + timedelta(hours=1))
    client = as_key(raw)
    assert client.get("/api/v1/team").status_code == 200

    ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    refused = client.get("/api/v1/team")
    assert refused.status_code == 401
    assert error(refused)["code"] == "AUTHENTICATION_FAILED"


@pytest.mark.django_db
def test_a_wrong_secret_with_a_real_prefix_is_refused(tenant_a):
    key, _ = key_of(tenant_a)
    assert as_key(f"{key.prefix}.{'x' * 32}").get("/api/v1/team").status_code == 401


@pytest.mark.django_db
def test_another_tenants_key_cannot_be_revoked(callers, tenant_b):
    theirs, raw = key_of(tenant_b)
    assert callers["tenant_admin"].delete(f"{KEYS}/{theirs.pk}").status_code == 404
    assert callers["tenant_admin"].delete(f"{KEYS}/{uuid.uuid4()}").status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None
    assert as_key(raw).get("/api/v1/team").status_code == 200


@pytest.mark.django_db
def test_a_key_cannot_create_or_revoke_keys_even_with_every_scope(callers, tenant_a):
    key, _ = key_of(tenant_a)
    client = callers[EVERY_SCOPE]
    for response in (client.post(KEYS, {"name": "child", "scopes": ["team:write"]}, format="json"),
                     client.delete(f"{KEYS}/{key.pk}")):
        assert response.status_code == 403
        assert error(response)["code"] == "PERMISSION_DENIED"
    assert ApiKey.objects.filter(name="child").count() == 0
