from django.core.management import call_command
from django.core.management.base import BaseCommand

from apps.tenants import schemas
from apps.tenants.models import Tenant


class Command(BaseCommand):
    help = ("Migrate everything: the public schema, the tenant template schema, then every "
            "tenant schema that exists (purged tenants have none). Use this instead of a bare "
            "`migrate_schemas`, which knows nothing of the template.")

    def add_arguments(self, parser):
        parser.add_argument("--executor", default="standard", choices=["standard", "multiprocessing"],
                            help="django-tenants migration executor for the tenant schemas")

    def handle(self, *args, verbosity=1, executor="standard", **options):
        call_command("migrate_schemas", shared=True, interactive=False, verbosity=verbosity)
        schemas.migrate_template(verbosity=verbosity)
        live = Tenant.objects.filter(purged_at__isnull=True).values_list("schema_name", flat=True)
        for schema_name in live:
            if schemas.schema_exists(schema_name):
                call_command("migrate_schemas", schema_name=schema_name, executor=executor,
                             interactive=False, verbosity=verbosity)
        self.stdout.write(self.style.SUCCESS("public, template and tenant schemas are up to date"))
