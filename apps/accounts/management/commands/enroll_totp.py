import io

import qrcode
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from apps.accounts.models import EncryptedTOTPDevice, User
from apps.audit.services import record


class Command(BaseCommand):
    help = ("Give a platform admin a confirmed TOTP device (the console requires one) and print its "
            "otpauth:// URI once, to add to an authenticator app. The key is stored encrypted. "
            "--replace first removes the admin's existing devices (a lost or new phone).")

    def add_arguments(self, parser):
        parser.add_argument("--email", required=True)
        parser.add_argument("--name", default="authenticator", help="a label for the device")
        parser.add_argument("--replace", action="store_true", help="delete the admin's existing devices first")
        parser.add_argument("--qr", action="store_true", help="also draw the URI as a QR code in the terminal")

    def handle(self, *args, email, name, replace=False, qr=False, **options):
        user = User.objects.filter(email__iexact=email.strip()).first()
        if user is None:
            raise CommandError(f"no user with e-mail {email}")
        if not user.is_platform_admin:
            raise CommandError(f"{user.email} is a {user.role}: the console and its TOTP step are for platform admins")
        if not user.is_active:
            raise CommandError(f"{user.email} is deactivated")

        with transaction.atomic():
            # Lock the admin: two concurrent runs without --replace must not both add a device.
            User.objects.select_for_update().filter(pk=user.pk).first()
            existing = EncryptedTOTPDevice.objects.filter(user=user)
            if existing.exists() and not replace:
                raise CommandError(f"{user.email} already has a TOTP device; use --replace to swap it for a new one")
            removed = existing.delete()[0] if replace else 0
            device = EncryptedTOTPDevice.objects.create(user=user, name=name, confirmed=True)
            if not user.mfa_enabled:
                user.mfa_enabled = True
                user.save(update_fields=["mfa_enabled", "updated_at"])
            record("user.totp_enrolled", target=user, changes={"device": name, "replaced_devices": removed})

        self.stdout.write(self.style.SUCCESS(f"TOTP device “{name}” enrolled for {user.email}."))
        self.stdout.write("Add this URI to the admin's authenticator app (it is the secret, and is shown only now):")
        self.stdout.write(device.config_url)
        if qr:
            code = qrcode.QRCode(border=1)
            code.add_data(device.config_url)
            drawing = io.StringIO()
            code.print_ascii(out=drawing, invert=True)
            self.stdout.write(drawing.getvalue())
