"""TeamMember copies User.tenant and User.role; this composite foreign key makes the database
keep the copy in step (ON UPDATE CASCADE) and refuse any disagreement."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]

    operations = [
        migrations.RunSQL(
            sql="""
                ALTER TABLE accounts_teammember
                ADD CONSTRAINT accounts_teammember_matches_user
                FOREIGN KEY (user_id, tenant_id, role)
                REFERENCES accounts_user (id, tenant_id, role)
                ON UPDATE CASCADE ON DELETE CASCADE
                DEFERRABLE INITIALLY DEFERRED;
            """,
            reverse_sql="ALTER TABLE accounts_teammember DROP CONSTRAINT accounts_teammember_matches_user;",
        ),
    ]
