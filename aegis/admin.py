"""The platform console: Django admin behind a TOTP check, for platform admins only.

Who gets in (decided here, enforced by django-otp's OTPAdminSite):
- only active platform admins (`User.is_staff`); a tenant user who tries to log in is told
  that the console is for platform administrators only;
- only after a TOTP code from a confirmed `EncryptedTOTPDevice`. A platform admin without one
  is refused at login with the way out: an operator runs `manage.py enroll_totp --email ...`
  (or `create_platform_admin --with-totp` for a new account). The console never shows or
  enrolls secrets itself, so a stolen password alone can never add a second factor.

Everything an admin does here is audited in one place, `AuditedModelAdmin`: Django's own
add/change/delete logging also writes an AuditLog row, and admin actions call the apps'
service functions, which write theirs.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connections, models, transaction
from django.db.models.query import QuerySet
from django.utils import timezone
from django.utils.functional import cached_property
from django_otp import devices_for_user, user_has_device
from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite

from aegis.domain import DomainError
from apps.audit.services import record

NOT_PLATFORM_ADMIN = (
    "This console is for platform administrators only. Tenant administrators and members "
    "manage their organisation through the Aegis app and API."
)
NO_TOTP_DEVICE = (
    "This console requires a TOTP authenticator and your account has none. Ask an operator to run "
    "“python manage.py enroll_totp --email <your e-mail>” and add the otpauth:// link it prints to "
    "your authenticator app, then log in with a code from it."
)


class PlatformAdminAuthenticationForm(OTPAdminAuthenticationForm):
    error_messages = {
        **OTPAdminAuthenticationForm.error_messages,
        "not_platform_admin": NOT_PLATFORM_ADMIN,
        "no_totp_device": NO_TOTP_DEVICE,
        "locked": "This account is locked after repeated failed sign-ins until %(until)s.",
    }

    def confirm_login_allowed(self, user):
        # Runs only once the password is right, so these messages reveal nothing to a guesser;
        # the stock admin form would tell a tenant user their password was wrong.
        if not user.is_platform_admin:
            raise ValidationError(self.error_messages["not_platform_admin"], code="not_platform_admin")
        if user.locked_until and user.locked_until > timezone.now():
            # The lock the API sets after repeated failed sign-ins holds here too.
            raise ValidationError(self.error_messages["locked"], code="locked",
                                  params={"until": f"{user.locked_until:%Y-%m-%d %H:%M} UTC"})
        if not user_has_device(user, confirmed=True):
            raise ValidationError(self.error_messages["no_totp_device"], code="no_totp_device")
        AdminAuthenticationForm.confirm_login_allowed(self, user)

    def _chosen_device(self, user):
        # django-otp asks the user to pick a device before it checks a code (it will not try a
        # code on every device). With a single device there is nothing to pick, so a login is
        # one step: e-mail, password and code together.
        device = super()._chosen_device(user)
        if device is None and not self.cleaned_data.get("otp_device"):
            devices = list(devices_for_user(user, confirmed=True, for_verify=True))
            if len(devices) == 1:
                device = devices[0]
        return device


class PlatformAdminSite(OTPAdminSite):
    site_header = "Aegis platform console"
    site_title = "Aegis"
    index_title = "Fleet administration"
    login_form = PlatformAdminAuthenticationForm

    def login(self, request, extra_context=None):
        response = super().login(request, extra_context)
        if request.method == "POST" and response.status_code == 302 and request.user.is_authenticated:
            record("console.login", actor=request.user, target=request.user, request=request)
        return response

    def password_change(self, request, extra_context=None):
        response = super().password_change(request, extra_context)
        if request.method == "POST" and response.status_code == 302:
            record("user.password_changed", actor=request.user, target=request.user, request=request,
                   changes={"via": "console"})
        return response


admin_site = PlatformAdminSite(name="admin")


class CappedCountPaginator(Paginator):
    """A paginator that never counts a whole large table.

    Django's changelist counts the filtered queryset for its paginator. Here the count stops at
    `cap` rows (`SELECT COUNT(*) FROM (... LIMIT cap + 1)`), and past that an unfiltered list
    uses PostgreSQL's own row estimate (pg_class.reltuples, kept current by autovacuum) while a
    filtered one reports `cap`: narrow the filters to see further back.
    """

    cap = 10_000

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not isinstance(queryset, QuerySet):
            return super().count
        unfiltered = not queryset.query.where
        if unfiltered:
            estimate = self._estimated_rows(queryset)
            if estimate > self.cap:
                return estimate
        exact = queryset.order_by()[: self.cap + 1].count()
        if exact <= self.cap:
            return exact
        return max(self._estimated_rows(queryset), self.cap) if unfiltered else self.cap

    @staticmethod
    def _estimated_rows(queryset: QuerySet) -> int:
        with connections[queryset.db].cursor() as cursor:
            cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)",
                           [queryset.model._meta.db_table])
            row = cursor.fetchone()
        return row[0] if row and row[0] > 0 else -1  # -1: never analysed, no estimate yet


class _AuditEncoder(DjangoJSONEncoder):
    def default(self, o):
        if isinstance(o, models.Model):
            return str(o.pk)
        if isinstance(o, QuerySet):
            return [str(obj.pk) for obj in o]
        try:
            return super().default(o)
        except TypeError:
            return str(o)


def jsonable(value):
    """Form values (model instances, dates, UUIDs, decimals) as plain JSON for AuditLog.changes."""
    return json.loads(json.dumps(value, cls=_AuditEncoder))


def adopt(obj: models.Model, saved: models.Model) -> None:
    """Turn the admin's unsaved form instance into the row a service function just created.

    Creation goes through the apps' services (they keep related rows in step and audit), but
    the admin carries on with its own instance (inlines, logging, redirect), so that instance
    must become the saved row.
    """
    for field in saved._meta.concrete_fields:
        setattr(obj, field.attname, getattr(saved, field.attname))
    obj._state.adding = False
    obj._state.db = saved._state.db


def _tenant_of(obj: models.Model):
    from apps.tenants.models import Tenant

    if isinstance(obj, Tenant):
        return obj
    return obj.tenant if getattr(obj, "tenant_id", None) else None


class AuditedModelAdmin(admin.ModelAdmin):
    """Base of every console ModelAdmin.

    - Each add, change and delete Django admin logs also becomes an AuditLog row
      (`admin.<model>.added|changed|deleted`, with the changed fields before and after).
    - Admin actions run in one transaction, so a change and its audit rows land together.
    - Changelists never count a whole table, and never compute filter facets (each facet is
      a COUNT).
    """

    paginator = CappedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER

    def save_model(self, request, obj, form, change):
        if change:
            # changed_data can name fields whose value did not change (those with callable
            # defaults compare against a hidden initial), so keep only real differences.
            obj._console_changes = {}
            for name in form.changed_data:
                before, after = jsonable(form.initial.get(name)), jsonable(form.cleaned_data.get(name))
                if before != after:
                    obj._console_changes[name] = {"before": before, "after": after}
        super().save_model(request, obj, form, change)

    def log_addition(self, request, obj, message):
        entry = super().log_addition(request, obj, message)
        self._audit(request, obj, "added", summary=message)
        return entry

    def log_change(self, request, obj, message):
        entry = super().log_change(request, obj, message)
        self._audit(request, obj, "changed", summary=message, fields=getattr(obj, "_console_changes", None))
        return entry

    def log_deletions(self, request, queryset):
        entries = super().log_deletions(request, queryset)
        for obj in queryset:
            self._audit(request, obj, "deleted", summary={"deleted": str(obj)})
        return entries

    def _audit(self, request, obj, verb: str, *, summary=None, fields=None) -> None:
        changes = {}
        if fields:
            changes["fields"] = fields
        if summary:
            changes["summary"] = summary
        record(f"admin.{obj._meta.model_name}.{verb}", actor=request.user, tenant=_tenant_of(obj), target=obj,
               changes=jsonable(changes), request=request)

    def response_action(self, request, queryset):
        with transaction.atomic(using=queryset.db):
            return super().response_action(request, queryset)

    def apply_to_each(self, request, queryset, change: Callable[[models.Model], object], *, done: str) -> None:
        """Run a service function on each selected object and report which ones it refused."""
        changed, refused = [], []
        for obj in queryset:
            try:
                change(obj)
            except ValidationError as exc:
                refused.append(f"{obj}: {' '.join(exc.messages)}")
            except DomainError as exc:  # the services' state errors (e.g. suspending a suspended tenant)
                refused.append(f"{obj}: {exc.message}")
            else:
                changed.append(str(obj))
        if changed:
            self.message_user(request, f"{done.capitalize()}: {', '.join(changed)}.", messages.SUCCESS)
        if refused:
            self.message_user(request, f"Not {done}: {'; '.join(refused)}.", messages.WARNING)


class ReadOnlyModelAdmin(AuditedModelAdmin):
    """Rows written only by the platform itself (logs, samples, credentials): look, don't touch."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
