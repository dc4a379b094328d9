"""The web server's database connection pool never carries one tenant's schema into another
tenant's request (aegis/settings/base.py, DATABASE_POOL_OPTIONS; aegis/asgi.py turns it on).

Requests go through Django's ASGI handler as under uvicorn, each from a thread of its own (a fresh
request context, hence a fresh DatabaseWrapper), against a pool of ONE connection: every request
borrows the very connection the previous one returned. Checked twice: with the pool exactly as
configured (its `reset` puts the default search_path back on every return), and without `reset`,
where django-tenants alone must set the schema before a request's first query.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid

import pytest
from django.conf import settings
from django.core.asgi import get_asgi_application
from django.db import connection
from django_tenants.postgresql_backend.base import DatabaseWrapper

from aegis.api.authentication import issue_access_token
from apps.accounts.models import Role
from apps.accounts.services import add_member
from apps.tenants import services as tenant_services
from tests.api.agent_factories import make_agent

# A transactional test's flush must TRUNCATE ... CASCADE (tenant schemas hold foreign keys into
# public tables): only with available_apps does Django cascade (as in test_invites.py).
pytestmark = pytest.mark.django_db(transaction=True, available_apps=[*settings.INSTALLED_APPS])

APPLICATION = get_asgi_application()


def asgi_get(path: str, token: str) -> tuple[int, dict]:
    """GET through the ASGI handler, from a new thread (a new context: a new DatabaseWrapper)."""
    result = {}

    async def request():
        from asgiref.testing import ApplicationCommunicator

        path_only, _, query = path.partition("?")
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                 "scheme": "http", "path": path_only, "raw_path": path_only.encode(), "query_string": query.encode(),
                 "root_path": "", "client": ("127.0.0.1", 40000), "server": ("testserver", 80),
                 "headers": [(b"host", b"testserver"), (b"authorization", f"Bearer {token}".encode())]}
        communicator = ApplicationCommunicator(APPLICATION, scope)
        await communicator.send_input({"type": "http.request", "body": b"", "more_body": False})
        start = await communicator.receive_output(10)
        body = b""
        while True:
            message = await communicator.receive_output(10)
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await communicator.wait(10)
        result.update(status=start["status"], body=body)

    thread = threading.Thread(target=lambda: asyncio.run(request()))
    thread.start()
    thread.join()
    assert "status" in result, "the request did not complete"
    return result["status"], json.loads(result["body"])


@pytest.fixture
def pooled(request):
    """A pool of one connection, as configured (or without its reset), for the requests' wrappers."""
    def enable(*, reset: bool):
        options = {**settings.DATABASE_POOL_OPTIONS, "min_size": 1, "max_size": 1}
        if not reset:
            options.pop("reset")
        connection.settings_dict.setdefault("OPTIONS", {})["pool"] = options
        return connection.pool

    def disable():
        pool = DatabaseWrapper._connection_pools.pop(connection.alias, None)
        connection.settings_dict["OPTIONS"].pop("pool", None)
        if pool is not None:
            pool.close()

    request.addfinalizer(disable)
    enable.disable = disable
    return enable


def tenant_with_agents(name: str, agents: list[str]):
    tenant = tenant_services.provision(tenant_services.create_tenant(
        company_name=f"{name} {uuid.uuid4().hex[:6]}", admin_email=f"owner@{name.lower()}.example"))
    admin = add_member(tenant=tenant, email=f"admin-{uuid.uuid4().hex[:6]}@{name.lower()}.example",
                       password="correct-horse-battery", name=f"{name} admin", role=Role.TENANT_ADMIN)
    ids = [str(make_agent(tenant, agent).pk) for agent in agents]
    return tenant, str(issue_access_token(admin, mfa_verified=False)), ids


def agent_names(token: str) -> list[str]:
    status, body = asgi_get("/api/v1/agents", token)
    assert status == 200, body
    return [agent["name"] for agent in body["data"]]


def test_pooled_connections_never_carry_a_tenant_into_the_next_request(pooled):
    tenant_a, token_a, ids_a = tenant_with_agents("Alpha", ["Ava", "Abe"])
    tenant_b, token_b, _ = tenant_with_agents("Beta", ["Bob"])

    for reset in (True, False):
        pool = pooled(reset=reset)
        for _ in range(3):  # one connection, A and B taking turns on it
            assert agent_names(token_a) == ["Abe", "Ava"]
            assert agent_names(token_b) == ["Bob"]
            status, _ = asgi_get(f"/api/v1/agents/{ids_a[0]}", token_b)
            assert status == 404  # A's agent, asked for in B's request right after A's
            status, body = asgi_get(f"/api/v1/agents/{ids_a[0]}", token_a)
            assert status == 200 and body["name"] == "Ava"
        stats = pool.get_stats()
        assert stats["pool_max"] == 1 and stats["connections_num"] == 1  # every request shared one connection
        assert stats["requests_num"] >= 12

        # A connection returned while in a tenant's schema (as by code that never resets it)...
        with pool.connection() as raw:
            raw.execute(f'SET search_path = "{tenant_a.schema_name}", public')
        with pool.connection() as raw:
            search_path = raw.execute("SHOW search_path").fetchone()[0]
        # ...comes back with the default path when the pool resets it, and with A's otherwise,
        assert (tenant_a.schema_name not in search_path) is reset
        # ...and B's next request still sees only B's agents.
        assert agent_names(token_b) == ["Bob"]
        pooled.disable()
    assert tenant_b.schema_name != tenant_a.schema_name
