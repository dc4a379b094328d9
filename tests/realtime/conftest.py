"""Live event streams against the real Redis channel layer.

Every test gets its own Redis key prefix (streams and channel-layer groups), so tests never see
each other's events, nor do concurrent runs on the same Redis; the keys are deleted at the end
of the session. Consumers are driven with Channels' WebsocketCommunicator inside
`async_to_sync`: their database calls (database_sync_to_async, thread-sensitive) then run on the
test's own thread and connection, which the transactional database fixture has committed.
"""

from __future__ import annotations

import itertools
import os
import uuid
from dataclasses import dataclass

import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection

from aegis import events
from aegis.api.authentication import issue_access_token
from apps.accounts.models import Role, User
from apps.accounts.services import add_member
from apps.tenants import schemas
from apps.tenants import services as tenant_services
from apps.tenants.models import Tenant

RUN_PREFIX = f"aegis-ws-{os.environ.get('DATABASE_TEST_NAME') or 'test'}-{os.getpid()}"
_test_numbers = itertools.count(1)

# Consumer tests commit for real (the consumer reads on its own hop): transactional database,
# and available_apps so the flush cascades into the tenant schemas' foreign keys.
TRANSACTIONAL = pytest.mark.django_db(transaction=True, available_apps=[*django_settings.INSTALLED_APPS])


@pytest.fixture(scope="session", autouse=True)
def _delete_test_keys():
    yield
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    keys = list(client.scan_iter(match=f"{RUN_PREFIX}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(autouse=True)
def _own_streams(settings, monkeypatch):
    prefix = f"{RUN_PREFIX}-{next(_test_numbers)}"
    layer = settings.CHANNEL_LAYERS["default"]
    settings.CHANNEL_LAYERS = {"default": {**layer, "CONFIG": {**layer["CONFIG"], "prefix": f"{prefix}:channels"}}}
    settings.EVENTS_STREAM_PREFIX = f"{prefix}:events"
    # A Redis-down test leaves the publisher backing off; no other test should inherit that.
    monkeypatch.setattr(events, "_retry_at", 0.0)
    yield
    events._retry_at = 0.0


@dataclass
class World:
    tenant_a: Tenant
    tenant_b: Tenant
    user_a: User
    user_b: User
    platform_admin: User

    def token(self, user: User, *, mfa: bool = False) -> str:
        return str(issue_access_token(user, mfa_verified=mfa))


@pytest.fixture
def world(transactional_db):
    """Two active tenants with one admin each, and a platform admin: committed, with schemas."""
    suffix = uuid.uuid4().hex[:8]

    def tenant(name: str) -> Tenant:
        return tenant_services.provision(tenant_services.create_tenant(
            company_name=f"{name} {suffix}", slug=f"rt-{name.lower()}-{suffix}", admin_email=f"owner@{name}.example"))

    a, b = tenant("Alpha"), tenant("Beta")
    password = "correct-horse-battery-staple"
    created = World(
        tenant_a=a, tenant_b=b,
        user_a=add_member(tenant=a, email=f"admin-{suffix}@alpha.example", password=password, role=Role.TENANT_ADMIN),
        user_b=add_member(tenant=b, email=f"admin-{suffix}@beta.example", password=password, role=Role.TENANT_ADMIN),
        platform_admin=User.objects.create_user(f"root-{suffix}@aegis.example", password, role=Role.PLATFORM_ADMIN),
    )
    yield created
    connection.set_schema_to_public()
    for schema in (a.schema_name, b.schema_name):
        schemas.drop_schema(schema)
