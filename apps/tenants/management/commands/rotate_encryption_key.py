from django.apps import apps
from django.conf import settings
from django.core.management.base import BaseCommand
from django_tenants.utils import schema_context, schema_exists

from aegis.crypto import encrypted_columns, reencrypt_table
from apps.tenants.models import Tenant


def _is_tenant_model(model) -> bool:
    app = model._meta.app_config.name
    return app in settings.TENANT_APPS and app not in settings.SHARED_APPS


class Command(BaseCommand):
    help = ("Re-encrypt every encrypted column (TOTP keys, channel secrets) under the first key of "
            "FIELD_ENCRYPTION_KEYS, in the public schema and every tenant schema. Rotation: prepend the "
            "new key, deploy, run this, then remove the old key.")

    def handle(self, *args, verbosity=1, **options):
        models = [m for m in apps.get_models() if encrypted_columns(m)]
        public = [m for m in models if not _is_tenant_model(m)]
        tenant = [m for m in models if _is_tenant_model(m)]
        for model in public:
            self._rotate("public", model, verbosity)
        # The template holds no secrets; purged tenants have no schema left.
        for schema_name in Tenant.objects.filter(purged_at__isnull=True).values_list("schema_name", flat=True):
            if not schema_exists(schema_name):
                continue
            with schema_context(schema_name):
                for model in tenant:
                    self._rotate(schema_name, model, verbosity)
        self.stdout.write(self.style.SUCCESS("every encrypted value now uses the first FIELD_ENCRYPTION_KEYS key"))

    def _rotate(self, schema_name: str, model, verbosity: int) -> None:
        count = reencrypt_table(model)
        if verbosity:
            self.stdout.write(f"{schema_name}: {model._meta.label}: {count} row(s) re-encrypted")
