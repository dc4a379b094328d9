"""Tenant schemas: a migrated template, and new schemas copied from it in one round trip.

Running every migration for each new tenant costs more with every migration the project
adds. Instead `tenant_template` is migrated once (by `migrate_platform`) and a new schema
is built from it: each table with `CREATE TABLE ... (LIKE template INCLUDING ALL)` (columns,
defaults, generated columns, CHECK constraints, indexes), then its foreign keys as the
catalog states them, then the migration history and content types. The cost is that of
replaying the schema's DDL, whatever the number of migrations (see bench/tenant_schema.py).
"""

from django.conf import settings
from django.core.management import call_command
from django.db import connection, transaction
from django_tenants.utils import schema_exists

# Rows the template holds that every tenant schema needs too; every other table starts empty.
SEEDED_TABLES = ("django_migrations", "django_content_type")


def template_schema() -> str:
    return settings.TENANT_TEMPLATE_SCHEMA


def quote(identifier: str) -> str:
    return connection.ops.quote_name(identifier)


def migrate_template(verbosity: int = 0) -> None:
    """Create the template schema if needed and bring it up to date with the tenant apps."""
    name = template_schema()
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(name)}")
    call_command("migrate_schemas", schema_name=name, interactive=False, verbosity=verbosity)
    connection.set_schema_to_public()


def schema_ddl(target: str) -> str:
    """The SQL that builds `target` as a copy of the template (structure plus seeded rows)."""
    source = template_schema()
    with transaction.atomic(), connection.cursor() as cursor:
        # Qualify every name the catalog prints (nothing may resolve through search_path),
        # then put the caller's search_path back.
        cursor.execute("SELECT current_setting('search_path')")
        search_path = cursor.fetchone()[0]
        cursor.execute("SET LOCAL search_path TO pg_catalog")
        cursor.execute(
            """
            SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = %s AND c.relkind IN ('r', 'p') ORDER BY c.relname
            """,
            [source],
        )
        tables = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            """
            SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)
            FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
            WHERE n.nspname = %s AND c.contype = 'f' ORDER BY 1, 2
            """,
            [source],
        )
        foreign_keys = cursor.fetchall()
        cursor.execute("SELECT set_config('search_path', %s, true)", [search_path])
    if not tables:
        raise RuntimeError(f"template schema {source!r} has no tables: run `manage.py migrate_platform`")
    src, dst = quote(source), quote(target)
    statements = [f"CREATE SCHEMA {dst}"]
    statements += [f"CREATE TABLE {dst}.{quote(t)} (LIKE {src}.{quote(t)} INCLUDING ALL)" for t in tables]
    for table, name, definition in foreign_keys:
        table_name = table.split(".", 1)[1]
        definition = definition.replace(f"REFERENCES {source}.", f"REFERENCES {dst}.")
        statements.append(f"ALTER TABLE {dst}.{table_name} ADD CONSTRAINT {quote(name)} {definition}")
    for table in SEEDED_TABLES:
        if table in tables:
            statements.append(
                f"INSERT INTO {dst}.{quote(table)} OVERRIDING SYSTEM VALUE SELECT * FROM {src}.{quote(table)}"
            )
    return ";\n".join(statements) + ";"


def create_schema(schema_name: str) -> bool:
    """Create a tenant's schema from the template. Idempotent: False if it already exists."""
    with transaction.atomic():
        if schema_exists(schema_name):
            return False
        ddl = schema_ddl(schema_name)
        with connection.cursor() as cursor:
            cursor.execute(ddl)
    return True


def drop_schema(schema_name: str) -> None:
    """Drop a tenant's schema. Only the decommission purge path calls this."""
    if schema_name in {"public", template_schema()}:
        raise ValueError(f"refusing to drop {schema_name!r}")
    with connection.cursor() as cursor:
        cursor.execute(f"DROP SCHEMA IF EXISTS {quote(schema_name)} CASCADE")
