import getpass
import os
import sys

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from apps.accounts import services
from apps.accounts.models import User


class Command(BaseCommand):
    help = ("Create a platform admin (an operator of Aegis). The password comes from the environment "
            "variable named by --password-env, or is prompted for on a terminal; it is never a command-line "
            "argument, so it stays out of shell history and the process list.")

    def add_arguments(self, parser):
        parser.add_argument("--email", required=True)
        parser.add_argument("--name", default="")
        parser.add_argument("--password-env", metavar="VAR",
                            help="read the password from this environment variable instead of prompting")
        parser.add_argument("--with-totp", action="store_true",
                            help="also enrol a TOTP device (as `enroll_totp` does) and print its otpauth:// URI "
                                 "once; the console requires the TOTP step")

    def handle(self, *args, email, name, password_env=None, with_totp=False, **options):
        email = email.strip()
        try:
            validate_email(email)
        except ValidationError as exc:
            raise CommandError(f"{email!r} is not a valid e-mail address") from exc
        if User.objects.filter(email__iexact=email).exists():
            raise CommandError(f"a user with e-mail {email} already exists; nothing was changed")

        password = self._password(password_env)
        try:
            validate_password(password, user=User(email=email, name=name))
        except ValidationError as exc:
            raise CommandError("password rejected: " + " ".join(exc.messages)) from exc

        try:
            with transaction.atomic():  # the user and its audit row, or neither
                user = services.create_platform_admin(email=email, password=password, name=name)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        except IntegrityError as exc:  # created by a concurrent run since the check above
            raise CommandError(f"a user with e-mail {email} already exists; nothing was changed") from exc
        self.stdout.write(self.style.SUCCESS(f"platform admin {user.email} created"))
        if with_totp:
            call_command("enroll_totp", email=user.email, stdout=self.stdout, stderr=self.stderr)
        else:
            self.stdout.write(f"The console also needs a TOTP device: manage.py enroll_totp --email {user.email}")

    def _password(self, password_env: str | None) -> str:
        if password_env:
            password = os.environ.get(password_env, "")
            if not password:
                raise CommandError(f"environment variable {password_env} is unset or empty")
            return password
        if not sys.stdin.isatty():
            raise CommandError("no terminal to prompt for a password: pass --password-env VAR")
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Password (again): "):
            raise CommandError("the passwords do not match")
        if not password:
            raise CommandError("the password may not be empty")
        return password
