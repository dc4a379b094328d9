"""Tenant schemas: a migrated template, and new schemas copied from it in one round trip.

Running every migration for each new tenant costs more with every migration the project
adds. Instead `tenant_template` is migrated once (by `migrate_platform`) and a new schema
is built from it, the way pg_dump would rebuild it:

1. each table with `CREATE TABLE ... (LIKE template INCLUDING ALL EXCLUDING INDEXES)`
   (columns, defaults, generated and identity columns, CHECK and NOT NULL constraints);
2. its primary key, unique and exclusion constraints, and then its other indexes, under the
   template's own names (LIKE would invent new names, and later migrations that drop or
   rename an index or constraint by name would then fail or silently skip tenant schemas);
3. its foreign keys as the catalog states them (into the new schema or into `public`);
4. the migration history and content types, with identity sequences moved past the copied
   ids so the next migration or content type inserted there does not collide.

The cost is that of replaying the schema's DDL, whatever the number of migrations (see
bench/tenant_schema.py and docs/performance.md).
"""

from django.conf import settings
from django.core.management import call_command
from django.db import connection, transaction
from django_tenants.utils import schema_exists

# Rows the template holds that every tenant schema needs too; every other table starts empty.
SEEDED_TABLES = ("django_migrations", "django_content_type")

# Identifiers in the generated SQL come from the catalog or from a validated schema name, and
# are quoted; there are no values to bind (hence the S608 waivers below).

# One catalog round trip: every piece of the template's structure, in the order it is rebuilt.
# Runs with search_path = pg_catalog so every name the catalog prints is schema-qualified.
_CATALOG_SQL = """
WITH tables AS (
    SELECT c.oid, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = %(source)s AND c.relkind IN ('r', 'p')
)
SELECT 0 AS step, quote_ident(%(source)s), NULL, NULL
UNION ALL
SELECT 1, relname, NULL, NULL FROM tables
UNION ALL
SELECT 2, t.relname, con.conname, pg_get_constraintdef(con.oid)
FROM pg_constraint con JOIN tables t ON t.oid = con.conrelid
WHERE con.contype IN ('p', 'u', 'x')
UNION ALL
SELECT 3, t.relname, i.relname, pg_get_indexdef(x.indexrelid)
FROM pg_index x JOIN tables t ON t.oid = x.indrelid JOIN pg_class i ON i.oid = x.indexrelid
WHERE NOT EXISTS (
    SELECT 1 FROM pg_constraint con
    WHERE con.conindid = x.indexrelid AND con.conrelid = x.indrelid AND con.contype IN ('p', 'u', 'x')
)
UNION ALL
SELECT 4, t.relname, con.conname, pg_get_constraintdef(con.oid)
FROM pg_constraint con JOIN tables t ON t.oid = con.conrelid
WHERE con.contype = 'f'
UNION ALL
SELECT 5, t.relname, a.attname, NULL
FROM pg_attribute a JOIN tables t ON t.oid = a.attrelid
WHERE a.attidentity <> '' AND NOT a.attisdropped AND t.relname = ANY(%(seeded)s)
ORDER BY 1, 2, 3
"""


def template_schema() -> str:
    return settings.TENANT_TEMPLATE_SCHEMA


def quote(identifier: str) -> str:
    return connection.ops.quote_name(identifier)


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def migrate_template(verbosity: int = 0) -> None:
    """Create the template schema if needed and bring it up to date with the tenant apps."""
    name = template_schema()
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(name)}")
    call_command("migrate_schemas", schema_name=name, interactive=False, verbosity=verbosity)
    connection.set_schema_to_public()


def _template_catalog(source: str) -> list[tuple]:
    with transaction.atomic(), connection.cursor() as cursor:
        # Qualify every name the catalog prints (nothing may resolve through search_path),
        # then put the caller's search_path back.
        cursor.execute("SELECT current_setting('search_path')")
        search_path = cursor.fetchone()[0]
        cursor.execute("SET LOCAL search_path TO pg_catalog")
        cursor.execute(_CATALOG_SQL, {"source": source, "seeded": list(SEEDED_TABLES)})
        rows = cursor.fetchall()
        cursor.execute("SELECT set_config('search_path', %s, true)", [search_path])
    return rows


def schema_ddl(target: str) -> str:
    """The SQL that builds `target` as a copy of the template (structure plus seeded rows)."""
    source = template_schema()
    rows = _template_catalog(source)
    printed_source = next(row[1] for row in rows if row[0] == 0)  # as pg_get_*def prints it
    tables = [row[1] for row in rows if row[0] == 1]
    if not tables:
        raise RuntimeError(f"template schema {source!r} has no tables: run `manage.py migrate_platform`")
    src, dst = quote(source), quote(target)

    def retarget(definition: str, keyword: str) -> str:
        # Only the table a definition is ON, or REFERENCES, moves to the new schema, and only
        # when it is the template's; references into public stay where they are.
        return definition.replace(f"{keyword} {printed_source}.", f"{keyword} {dst}.", 1)

    statements = [f"CREATE SCHEMA {dst}"]
    statements += [
        f"CREATE TABLE {dst}.{quote(t)} (LIKE {src}.{quote(t)} INCLUDING ALL EXCLUDING INDEXES)" for t in tables
    ]
    for step, table, name, definition in rows:
        if step in (2, 4):  # pg_get_constraintdef: "PRIMARY KEY (id)", "FOREIGN KEY (x) REFERENCES s.t(id) ..."
            definition = retarget(definition, "REFERENCES")
            statements.append(f"ALTER TABLE {dst}.{quote(table)} ADD CONSTRAINT {quote(name)} {definition}")
        elif step == 3:  # pg_get_indexdef: "CREATE INDEX name ON [ONLY] s.t USING ..."
            statements.append(retarget(retarget(definition, "ON"), "ONLY"))
    seeded = [t for t in SEEDED_TABLES if t in tables]
    for table in seeded:
        statements.append(
            f"INSERT INTO {dst}.{quote(table)} OVERRIDING SYSTEM VALUE SELECT * FROM {src}.{quote(table)}"  # noqa: S608
        )
    for step, table, column, _ in rows:
        if step == 5:
            sequence = f"pg_get_serial_sequence({literal(f'{dst}.{quote(table)}')}, {literal(column)})"
            statements.append(
                f"SELECT setval({sequence}, coalesce(max({quote(column)}), 0) + 1, false) FROM {dst}.{quote(table)}"  # noqa: S608
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
