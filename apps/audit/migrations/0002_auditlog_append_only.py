"""AuditLog is append-only in the database, not only by convention: UPDATE and DELETE are
refused by a trigger. The single exception is the UPDATE that ON DELETE SET NULL makes when
an actor (user or API key) is deleted: only the actor columns may become NULL, nothing else.
TRUNCATE stays possible for the table owner (test database resets, disaster recovery)."""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION audit_auditlog_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND (to_jsonb(NEW) - 'actor_user_id' - 'actor_api_key_id')
           = (to_jsonb(OLD) - 'actor_user_id' - 'actor_api_key_id')
       AND (NEW.actor_user_id IS NULL OR NEW.actor_user_id = OLD.actor_user_id)
       AND (NEW.actor_api_key_id IS NULL OR NEW.actor_api_key_id = OLD.actor_api_key_id) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_auditlog is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_auditlog_append_only
BEFORE UPDATE OR DELETE ON audit_auditlog
FOR EACH ROW EXECUTE FUNCTION audit_auditlog_append_only();
"""

REVERSE = """
DROP TRIGGER IF EXISTS audit_auditlog_append_only ON audit_auditlog;
DROP FUNCTION IF EXISTS audit_auditlog_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunSQL(sql=FORWARD, reverse_sql=REVERSE)]
