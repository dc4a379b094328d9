from django.core.management import call_command
from django.core.management.base import BaseCommand
from django_tenants.management.commands import SyncCommon
from django_tenants.management.commands.migrate_schemas import GET_EXECUTOR_FUNCTION
from django_tenants.management.commands.migrate_schemas import Command as MigrateSchemas

from apps.tenants import schemas
from apps.tenants.models import Tenant


class _MigrateListedSchemas(MigrateSchemas):
    """`migrate_schemas --tenant`, but over the given schemas only, in one executor run.

    The stock command either takes one schema or every Tenant row; purged tenants keep their
    row but have no schema, which the stock command would fail on. One run over the whole
    list is what lets the multiprocessing/subprocess executors spread schemas over workers.
    """

    def __init__(self, schema_names: list[str], **kwargs):
        super().__init__(**kwargs)
        self.schema_names = schema_names

    def handle(self, *args, **options):
        SyncCommon.handle(self, *args, **options)
        executor = GET_EXECUTOR_FUNCTION(codename=self.executor)(self.args, self.options)
        executor.run_migrations(tenants=list(self.schema_names))


class Command(BaseCommand):
    help = ("Migrate everything: the public schema, the tenant template schema, then every "
            "tenant schema that exists (purged tenants have none). Use this instead of a bare "
            "`migrate_schemas`, which knows nothing of the template.")

    def add_arguments(self, parser):
        parser.add_argument("--executor", default="standard", choices=["standard", "multiprocessing", "subprocess"],
                            help="django-tenants migration executor for the tenant schemas (multiprocessing: "
                                 "TENANT_MULTIPROCESSING_MAX_PROCESSES workers)")

    def handle(self, *args, verbosity=1, executor="standard", **options):
        call_command("migrate_schemas", shared=True, interactive=False, verbosity=verbosity)
        schemas.migrate_template(verbosity=verbosity)
        live = Tenant.objects.filter(purged_at__isnull=True).values_list("schema_name", flat=True)
        existing = [name for name in live if schemas.schema_exists(name)]
        if existing:
            call_command(_MigrateListedSchemas(existing), tenant=True, executor=executor, interactive=False,
                         verbosity=verbosity)
        self.stdout.write(self.style.SUCCESS(
            f"public, template and {len(existing)} tenant schema(s) are up to date"))
