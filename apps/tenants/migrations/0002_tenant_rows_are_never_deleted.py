"""Tenant rows are never deleted: a tenant leaves through decommission -> purge
(apps/tenants/services.py), which drops its schema and keeps the row for the audit trail.

PROTECT on AuditLog.tenant and User.tenant already stops Django from deleting a tenant that has
history or people, but not a raw DELETE, a QuerySet.delete() on a tenant without them, or a
script that first removes the rows that protect it. This trigger refuses every DELETE, whatever
issues it, with SQLSTATE 23001 (restrict_violation, an IntegrityError in Django). TRUNCATE,
which only the table owner can run (test database resets, disaster recovery), stays possible.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION tenants_tenant_refuse_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'tenant % (%) cannot be deleted: decommission it, then purge it after the grace period',
        OLD.slug, OLD.id
        USING ERRCODE = 'restrict_violation',
              HINT = 'apps.tenants.services.decommission() then purge()';
END;
$$;

CREATE TRIGGER tenants_tenant_refuse_delete
BEFORE DELETE ON tenants_tenant
FOR EACH ROW EXECUTE FUNCTION tenants_tenant_refuse_delete();
"""

REVERSE = """
DROP TRIGGER IF EXISTS tenants_tenant_refuse_delete ON tenants_tenant;
DROP FUNCTION IF EXISTS tenants_tenant_refuse_delete();
"""


class Migration(migrations.Migration):
    dependencies = [("tenants", "0001_initial")]

    operations = [migrations.RunSQL(sql=FORWARD, reverse_sql=REVERSE)]
