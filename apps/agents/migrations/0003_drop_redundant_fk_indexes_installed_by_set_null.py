"""Two schema fixes for the tenant tables.

1. Foreign keys that a composite or unique index already leads with lose their own
   single-column index (the composite serves the FK checks and the cascades equally well,
   and every extra index costs on every insert into activity, the busiest tenant table).
2. SkillInstallation.installed_by is an actor column: ON DELETE SET NULL in the database, so a
   user can be deleted without hunting their installs through every tenant schema. Django
   5.2 cannot declare a database-level on_delete, so the model keeps DO_NOTHING (the deletion
   collector must not look for tenant rows from the public schema) and this migration swaps
   the constraint. Found by column, not by name, so it works in any schema it runs in.
"""

import django.db.models.deletion
from django.db import migrations, models

INSTALLED_BY_SET_NULL = """
DO $$
DECLARE fk name;
BEGIN
    SELECT c.conname INTO fk FROM pg_constraint c
    JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
    WHERE c.conrelid = 'agents_skillinstallation'::regclass AND c.contype = 'f'
      AND cardinality(c.conkey) = 1 AND a.attname = 'installed_by_id';
    IF fk IS NOT NULL THEN
        EXECUTE format('ALTER TABLE agents_skillinstallation DROP CONSTRAINT %I', fk);
    END IF;
END $$;
ALTER TABLE agents_skillinstallation ADD CONSTRAINT agents_install_installed_by_set_null
    FOREIGN KEY (installed_by_id) REFERENCES public.accounts_user (id)
    ON DELETE SET NULL DEFERRABLE INITIALLY DEFERRED;
"""

INSTALLED_BY_NO_ACTION = """
ALTER TABLE agents_skillinstallation DROP CONSTRAINT agents_install_installed_by_set_null;
ALTER TABLE agents_skillinstallation ADD CONSTRAINT agents_skillinstalla_installed_by_id_da1a3ee8_fk_accounts_
    FOREIGN KEY (installed_by_id) REFERENCES public.accounts_user (id) DEFERRABLE INITIALLY DEFERRED;
"""


class Migration(migrations.Migration):

    dependencies = [
        ('agents', '0002_agent_settings_inherit'),
        ('skills', '0002_slug_indexed_by_unique_version'),
    ]

    operations = [
        migrations.AlterField(
            model_name='agent',
            name='role',
            field=models.ForeignKey(db_column='role_key', db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='skills.agentrole', to_field='key'),
        ),
        migrations.AlterField(
            model_name='agentactivity',
            name='agent',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='activities', to='agents.agent'),
        ),
        migrations.AlterField(
            model_name='agentchannel',
            name='agent',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='channels', to='agents.agent'),
        ),
        migrations.AlterField(
            model_name='agentmetrics',
            name='agent',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='metrics', to='agents.agent'),
        ),
        migrations.AlterField(
            model_name='skillinstallation',
            name='agent',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='skill_installations', to='agents.agent'),
        ),
        migrations.RunSQL(sql=INSTALLED_BY_SET_NULL, reverse_sql=INSTALLED_BY_NO_ACTION),
    ]
