from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from aegis.domain import DomainError
from apps.tenants import demo


class Command(BaseCommand):
    help = ("Load the demo data set (platform admin, role catalog, marketplace skills, two tenants with "
            "users, agents, channels and skill installations). Idempotent: only missing rows are created, "
            "existing ones are left as they are. Admin credentials: AEGIS_ADMIN_EMAIL / AEGIS_ADMIN_PASSWORD "
            "(else admin@aegis.local and a password generated and printed once); tenant users' password: "
            "AEGIS_DEMO_PASSWORD (else the documented demo default).")

    def handle(self, *args, **options):
        try:
            demo.run(self.stdout.write)
        except ValidationError as exc:
            raise CommandError("demo data not loaded (nothing was written): " + "; ".join(exc.messages)) from exc
        except (DomainError, ValueError) as exc:
            raise CommandError(f"demo data not loaded (nothing was written): {exc}") from exc
