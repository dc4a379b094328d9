"""Row-level security for the public tables that carry `tenant_id`: the design, as SQL.

No migration applies this yet; docs/DATABASE_SCHEMA.md ("Row-level security") says why and
what switching it on takes. tests/test_rls_design.py applies exactly this SQL inside a
rolled-back transaction and shows that it isolates tenants, fails closed when no tenant is
set, and lets the platform role through, so the design cannot silently rot.

Runtime contract once enabled: the web/worker database role is a member of `app_role`; each
request or task runs `SELECT set_config('app.tenant_id', '<tenant uuid>', true)` at the start
of its transaction (transaction-scoped, so a pooled connection never carries it over). The
platform console, migrations and fleet-wide jobs use a role that is a member of
`platform_role`.
"""

# Every public table with a tenant_id column (tests/test_rls_design.py keeps this list complete).
TENANT_SCOPED_TABLES = (
    "accounts_user",  # tenant_id NULL for platform admins: invisible to every tenant session
    "accounts_teammember",
    "accounts_teaminvite",
    "accounts_apikey",
    "accounts_refreshtoken",
    "audit_auditlog",  # tenant_id NULL for platform actions
    "monitoring_containerhealth",
    "monitoring_alert",  # tenant_id NULL for platform-wide alerts
    "tenants_domain",
    "tenants_tenantruntime",
)

# NULL when unset or empty, so an unset tenant matches nothing: the policies fail closed.
CURRENT_TENANT = "nullif(current_setting('app.tenant_id', true), '')::uuid"


def policy_sql(*, app_role: str = "aegis_app", platform_role: str = "aegis_platform") -> str:
    statements = []
    for table in TENANT_SCOPED_TABLES:
        statements += [
            f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
            f"CREATE POLICY tenant_isolation ON {table} TO {app_role}\n"
            f"    USING (tenant_id = {CURRENT_TENANT})\n"
            f"    WITH CHECK (tenant_id = {CURRENT_TENANT})",
            f"CREATE POLICY platform_access ON {table} TO {platform_role}\n    USING (true) WITH CHECK (true)",
        ]
    return ";\n".join(statements) + ";"
