"""Tenant schemas: migrated from an empty database, isolated from each other, copied faithfully
from the template, and dropped only by the decommission -> purge path."""

from datetime import timedelta
from io import StringIO

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.recorder import MigrationRecorder
from django_tenants.utils import schema_context, schema_exists

from apps.agents.models import Agent
from apps.audit.models import AuditLog
from apps.skills.models import AgentRole
from apps.tenants import schemas, services
from apps.tenants.models import Tenant
from tests.dbtools import check_deferred, fetchall

pytestmark = pytest.mark.django_db

TEMPLATE = settings.TENANT_TEMPLATE_SCHEMA


def tenant_tables() -> set[str]:
    """Every table the tenant apps own, plus Django's bookkeeping tables they carry."""
    tenant_only = [app for app in settings.TENANT_APPS if app not in settings.SHARED_APPS]
    tables = {
        model._meta.db_table
        for app in tenant_only
        for model in apps.get_app_config(app.rsplit(".", 1)[-1]).get_models()
    }
    return tables | {"django_migrations", "django_content_type"}


def tables_in(schema: str) -> set[str]:
    return {row[0] for row in fetchall("SELECT tablename FROM pg_tables WHERE schemaname = %s", [schema])}


def migrations_in(schema: str) -> set[tuple[str, str]]:
    return set(fetchall(f'SELECT app, name FROM "{schema}".django_migrations'))  # noqa: S608 (fixed names)


def unapplied_migrations() -> list:
    executor = MigrationExecutor(connection)
    return executor.migration_plan(executor.loader.graph.leaf_nodes())


@pytest.fixture
def agent_role(db) -> AgentRole:
    return AgentRole.objects.get_or_create(key="sales", defaults={"name": "Sales"})[0]


# --- Migrations ----------------------------------------------------------------------------------------


def test_every_migration_is_applied_in_public_template_and_tenant_schemas(tenant_a, tenant_b):
    # The test database itself was built by running every migration from an empty database.
    assert unapplied_migrations() == []
    for schema in (TEMPLATE, tenant_a.schema_name, tenant_b.schema_name):
        with schema_context(schema):
            assert unapplied_migrations() == [], schema


def test_template_and_tenant_schemas_hold_all_tenant_tables_and_the_same_history(tenant_a, tenant_b):
    expected = tenant_tables()
    assert {"agents_agent", "agents_agentchannel", "agents_skillinstallation", "agents_agentactivity",
            "agents_agentmetrics"} <= expected
    for schema in (TEMPLATE, tenant_a.schema_name, tenant_b.schema_name):
        assert tables_in(schema) == expected, schema
    history = migrations_in(TEMPLATE)
    assert ("agents", "0001_initial") in history
    assert migrations_in(tenant_a.schema_name) == history
    assert migrations_in(tenant_b.schema_name) == history


def test_public_schema_holds_no_tenant_tables():
    assert not (tables_in("public") & (tenant_tables() - {"django_migrations", "django_content_type"}))


def test_a_cloned_schema_accepts_future_migrations_and_content_types(tenant_a, in_tenant):
    # The copied history keeps its ids; the identity sequences must have moved past them, or the
    # next migration recorded in this schema would collide with a copied row.
    with in_tenant(tenant_a):
        MigrationRecorder(connection).record_applied("agents", "9999_future")
        ContentType.objects.create(app_label="agents", model="futuremodel")
        ContentType.objects.clear_cache()
        assert ("agents", "9999_future") in migrations_in(tenant_a.schema_name)


# --- Isolation -------------------------------------------------------------------------------------------


def test_a_tenant_never_sees_another_tenants_rows(tenant_a, tenant_b, in_tenant, agent_role):
    with in_tenant(tenant_a):
        a1 = Agent.objects.create(key="assistant", name="Assistant", role=agent_role)
        Agent.objects.create(key="closer", name="Closer", role=agent_role)
    with in_tenant(tenant_b):
        b1 = Agent.objects.create(key="assistant", name="Assistant", role=agent_role)  # same key: own schema

    with in_tenant(tenant_a):
        assert set(Agent.objects.values_list("pk", flat=True)) == {a1.pk, *Agent.objects.filter(key="closer")
                                                                   .values_list("pk", flat=True)}
        assert not Agent.objects.filter(pk=b1.pk).exists()
        assert fetchall("SELECT count(*) FROM agents_agent") == [(2,)]
    with in_tenant(tenant_b):
        assert list(Agent.objects.values_list("pk", flat=True)) == [b1.pk]
        assert not Agent.objects.filter(pk=a1.pk).exists()
        assert fetchall("SELECT count(*) FROM agents_agent") == [(1,)]
    # The public schema has no agents table at all: nothing leaks through the search_path.
    assert fetchall("SELECT to_regclass('public.agents_agent')") == [(None,)]


# --- Creation by copying the template ------------------------------------------------------------------------


def structure(schema: str) -> dict[str, set]:
    """The schema's columns, indexes, constraints and triggers, with its own name taken out."""
    columns = fetchall(
        """
        SELECT table_name, column_name,
               -- position among live columns: the template keeps the slots of dropped columns
               rank() OVER (PARTITION BY table_name ORDER BY ordinal_position),
               data_type, character_maximum_length, is_nullable, column_default,
               is_identity, identity_generation, is_generated, generation_expression
        FROM information_schema.columns WHERE table_schema = %s
        """,
        [schema],
    )
    indexes = fetchall(
        r"SELECT tablename, indexname, regexp_replace(indexdef, ' ON (ONLY )?\S+\.', ' ON ') "
        "FROM pg_indexes WHERE schemaname = %s",
        [schema],
    )
    constraints = fetchall(
        """
        SELECT t.relname, c.conname, c.contype, c.condeferrable, c.condeferred,
               replace(pg_get_constraintdef(c.oid), quote_ident(%s) || '.', '<self>.')
        FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace
        WHERE n.nspname = %s
        """,
        [schema, schema],
    )
    triggers = fetchall(
        """
        SELECT t.relname, g.tgname FROM pg_trigger g JOIN pg_class t ON t.oid = g.tgrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = %s AND NOT g.tgisinternal
        """,
        [schema],
    )
    return {"columns": set(columns), "indexes": set(indexes), "constraints": set(constraints),
            "triggers": set(triggers)}


def test_a_new_schema_is_structurally_the_template():
    assert schemas.create_schema("t_structure_probe")
    with connection.cursor() as cursor:  # pg_get_constraintdef qualifies names outside search_path
        cursor.execute("SET LOCAL search_path TO pg_catalog")
        template, copy = structure(TEMPLATE), structure("t_structure_probe")
    for part in ("columns", "indexes", "constraints", "triggers"):
        assert len(copy[part]) == len(template[part]), part
        assert copy[part] == template[part], part
    assert len(template["indexes"]) > 20 and len(template["constraints"]) > 20
    # Names matter: later migrations drop and rename indexes and constraints by name.
    assert {name for _, name, _ in copy["indexes"]} >= {"agents_search_idx", "agents_install_agent_skill_unique"}
    assert migrations_in("t_structure_probe") == migrations_in(TEMPLATE)
    assert not schemas.create_schema("t_structure_probe")  # idempotent


def test_foreign_keys_of_a_new_schema_point_into_itself_or_public():
    schemas.create_schema("t_fk_probe")
    targets = fetchall(
        """
        SELECT DISTINCT rn.nspname FROM pg_constraint c
        JOIN pg_namespace n ON n.oid = c.connamespace JOIN pg_class r ON r.oid = c.confrelid
        JOIN pg_namespace rn ON rn.oid = r.relnamespace
        WHERE n.nspname = 't_fk_probe' AND c.contype = 'f'
        """
    )
    assert {row[0] for row in targets} == {"t_fk_probe", "public"}


# --- Dropping: only decommission, then purge after the grace period ---------------------------------------------


def test_the_schema_is_dropped_only_by_decommission_then_purge(in_tenant, agent_role):
    tenant = services.provision(services.create_tenant(company_name="Initech", admin_email="it@initech.example"))
    with in_tenant(tenant):
        Agent.objects.create(key="tps", name="TPS reports", role=agent_role)
    # In real life that agent was committed long before the purge; here, settle its deferred
    # foreign-key check now (PostgreSQL will not drop a table with pending trigger events).
    check_deferred()

    with pytest.raises(services.TenantStateError):  # an active tenant cannot be purged
        services.purge(tenant)
    tenant = services.decommission(tenant)
    assert tenant.status == Tenant.Status.DECOMMISSIONED
    assert tenant.purge_after >= tenant.decommissioned_at + timedelta(days=settings.TENANT_DECOMMISSION_GRACE_DAYS)

    with pytest.raises(services.TenantStateError, match="grace period"):
        services.purge(tenant, now=tenant.purge_after - timedelta(minutes=1))
    assert schema_exists(tenant.schema_name)
    with in_tenant(tenant):  # data still there during the grace period
        assert Agent.objects.filter(key="tps").exists()

    services.purge(tenant, now=tenant.purge_after + timedelta(seconds=1))
    assert not schema_exists(tenant.schema_name)
    kept = Tenant.objects.get(pk=tenant.pk)
    assert kept.purged_at is not None and kept.status == Tenant.Status.DECOMMISSIONED
    assert AuditLog.objects.filter(tenant=kept, action="tenant.purged").exists()


def test_template_and_public_schemas_are_never_dropped():
    for name in ("public", TEMPLATE):
        with pytest.raises(ValueError, match="refusing"):
            schemas.drop_schema(name)


def test_migrate_platform_migrates_live_schemas_and_skips_purged_ones(tenant_a, tenant_b):
    gone = services.provision(services.create_tenant(company_name="Umbrella", admin_email="it@umbrella.example"))
    gone = services.decommission(gone)
    services.purge(gone, now=gone.purge_after + timedelta(seconds=1))  # row kept, schema dropped
    live = [name for name in Tenant.objects.filter(purged_at__isnull=True).values_list("schema_name", flat=True)
            if schema_exists(name)]
    assert {tenant_a.schema_name, tenant_b.schema_name} <= set(live)
    out = StringIO()
    call_command("migrate_platform", verbosity=0, stdout=out)
    assert f"public, template and {len(live)} tenant schema(s) are up to date" in out.getvalue()
    assert not schema_exists(gone.schema_name)
