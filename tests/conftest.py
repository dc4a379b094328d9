"""Test infrastructure: real PostgreSQL (schemas per tenant) and real Redis.

Two tenants, `tenant_a` and `tenant_b`, are provisioned once per session (committed, with
their schemas). Tests run in the usual rolled-back transaction (`db`), so nothing a test
does to them survives it. Tests that need real transactions (races between threads) must
create their own tenants, since the flush at their end empties the shared ones, and must use
`@pytest.mark.django_db(transaction=True, available_apps=[*settings.INSTALLED_APPS])`: tenant
schemas hold foreign keys into public tables, and only with available_apps does Django's
flush TRUNCATE ... CASCADE.
"""

import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from apps.accounts.models import Role, User
from apps.tenants import schemas, services
from apps.tenants.models import Tenant


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        schemas.migrate_template()


def _session_tenant(name: str) -> Tenant:
    tenant = services.create_tenant(company_name=name, admin_email=f"admin@{name.lower()}.example")
    return services.provision(tenant)


@pytest.fixture(scope="session")
def session_tenants(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        return {"a": _session_tenant("Acme"), "b": _session_tenant("Globex")}


@pytest.fixture
def tenant_a(session_tenants, db) -> Tenant:
    return Tenant.objects.get(pk=session_tenants["a"].pk)


@pytest.fixture
def tenant_b(session_tenants, db) -> Tenant:
    return Tenant.objects.get(pk=session_tenants["b"].pk)


@pytest.fixture(autouse=True)
def _back_to_public_schema():
    yield
    connection.set_schema_to_public()


@pytest.fixture
def in_tenant():
    """`with in_tenant(t): ...` runs the block in t's schema."""
    return tenant_context


@pytest.fixture
def platform_admin(db) -> User:
    return User.objects.create_user("root@aegis.example", "correct-horse-battery", name="Root",
                                    role=Role.PLATFORM_ADMIN)


@pytest.fixture
def tenant_admin(tenant_a) -> User:
    from apps.accounts.services import add_member

    return add_member(tenant=tenant_a, email="boss@acme.example", password="correct-horse-battery",
                      name="Boss", role=Role.TENANT_ADMIN)
