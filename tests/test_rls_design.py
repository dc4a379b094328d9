"""The row-level-security design (apps/tenants/rls.py, documented in docs/DATABASE_SCHEMA.md) is
valid SQL that isolates tenants. Applied inside the test's transaction, so it is rolled back:
the roles, policies and ENABLE ROW LEVEL SECURITY never outlive the test."""

import uuid
from contextlib import contextmanager

import pytest
from django.db import ProgrammingError
from django.utils import timezone

from apps.accounts.models import ApiKey, Role
from apps.accounts.services import add_member
from apps.audit.services import record
from apps.monitoring.models import Alert, ContainerHealth
from apps.tenants.rls import TENANT_SCOPED_TABLES, policy_sql
from tests.dbtools import execute, fetchall, fetchone, refused_by

pytestmark = pytest.mark.django_db


def test_every_public_table_with_a_tenant_id_is_covered():
    tables = fetchall(
        """
        SELECT c.table_name FROM information_schema.columns c
        JOIN information_schema.tables t USING (table_schema, table_name)
        WHERE c.table_schema = 'public' AND c.column_name = 'tenant_id' AND t.table_type = 'BASE TABLE'
        """
    )
    assert {row[0] for row in tables} == set(TENANT_SCOPED_TABLES)


@pytest.fixture
def roles(db):
    suffix = uuid.uuid4().hex[:8]  # roles are cluster-wide: never collide with a parallel run
    app, platform = f"aegis_app_{suffix}", f"aegis_platform_{suffix}"
    execute(f"CREATE ROLE {app} NOLOGIN; CREATE ROLE {platform} NOLOGIN")
    tables = ", ".join(TENANT_SCOPED_TABLES)
    execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {tables} TO {app}, {platform}")
    execute(policy_sql(app_role=app, platform_role=platform))
    return app, platform


@contextmanager
def acting_as(role: str, tenant_id=None):
    execute(f"SET LOCAL ROLE {role}")
    execute("SELECT set_config('app.tenant_id', %s, true)", [str(tenant_id) if tenant_id else ""])
    try:
        yield
    finally:
        execute("RESET ROLE")


def visible(table: str) -> int:
    return fetchone(f"SELECT count(*) FROM {table}")[0]  # noqa: S608 (fixed names)


@pytest.fixture
def rows(tenant_a, tenant_b):
    for tenant, name in ((tenant_a, "acme"), (tenant_b, "globex")):
        user = add_member(tenant=tenant, email=f"admin@{name}.example", password=None, role=Role.TENANT_ADMIN)
        ApiKey.objects.create(tenant=tenant, name="ci", prefix=f"{name}123", hashed_key="x")
        ContainerHealth.objects.create(tenant=tenant, status="healthy", checked_at=timezone.now())
        Alert.objects.create(tenant=tenant, severity="info", kind="k", message="m", dedup_key=name)
        record("agent.created", actor=user, tenant=tenant)
    record("platform.settings_changed")  # a platform-level row: tenant_id NULL


def test_a_tenant_session_sees_only_its_own_rows(roles, rows, tenant_a, tenant_b):
    app, _ = roles
    expected_a = {table: fetchone(f"SELECT count(*) FROM {table} WHERE tenant_id = %s", [tenant_a.pk])[0]  # noqa: S608
                  for table in TENANT_SCOPED_TABLES}
    with acting_as(app, tenant_a.pk):
        for table in TENANT_SCOPED_TABLES:
            assert visible(table) == expected_a[table], table
        assert fetchall("SELECT DISTINCT tenant_id FROM audit_auditlog") == [(tenant_a.pk,)]


def test_a_tenant_session_cannot_write_into_another_tenant(roles, rows, tenant_a, tenant_b):
    app, _ = roles
    with acting_as(app, tenant_a.pk), refused_by("row-level security", exc=ProgrammingError):
        execute("UPDATE monitoring_alert SET tenant_id = %s", [tenant_b.pk])
    with acting_as(app, tenant_a.pk):  # another tenant's rows are not even there to update
        execute("UPDATE monitoring_alert SET message = 'hijacked' WHERE tenant_id = %s", [tenant_b.pk])
    assert Alert.objects.get(tenant=tenant_b).message == "m"


def test_no_tenant_set_means_no_rows(roles, rows):
    app, _ = roles
    with acting_as(app, None):
        assert all(visible(table) == 0 for table in TENANT_SCOPED_TABLES)


def test_the_platform_role_sees_every_tenant(roles, rows):
    _, platform = roles
    total = {table: visible(table) for table in TENANT_SCOPED_TABLES}
    with acting_as(platform, None):
        assert {table: visible(table) for table in TENANT_SCOPED_TABLES} == total
    assert total["audit_auditlog"] >= 3 and total["accounts_apikey"] == 2
