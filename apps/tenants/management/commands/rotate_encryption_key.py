from cryptography.fernet import InvalidToken
from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import schema_context, schema_exists

from aegis.crypto import encrypted_columns, fernet, reencrypt_table
from apps.tenants.models import Tenant


def _is_tenant_model(model) -> bool:
    app = model._meta.app_config.name
    return app in settings.TENANT_APPS and app not in settings.SHARED_APPS


class Command(BaseCommand):
    help = ("Re-encrypt every encrypted column (TOTP keys, channel secrets) under the first key of "
            "FIELD_ENCRYPTION_KEYS, in the public schema and every tenant schema. Rotation: prepend the "
            "new key, deploy, run this, then remove the old key.")

    def handle(self, *args, verbosity=1, **options):
        try:
            fernet()
        except (ImproperlyConfigured, ValueError, TypeError) as exc:
            raise CommandError(f"FIELD_ENCRYPTION_KEYS is not usable, nothing was re-encrypted: {exc}") from exc
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
        try:
            count = reencrypt_table(model)  # one transaction per table: a failed table is left as it was
        except InvalidToken as exc:
            raise CommandError(
                f"{schema_name}: {model._meta.label}: a stored value cannot be decrypted with any key of "
                "FIELD_ENCRYPTION_KEYS (was an old key removed before this rotation ran?). This table was left "
                "unchanged and the ones after it were not reached; put the old key back (after the new one) and "
                "run the command again: re-encrypting twice is harmless") from exc
        if verbosity:
            self.stdout.write(f"{schema_name}: {model._meta.label}: {count} row(s) re-encrypted")
