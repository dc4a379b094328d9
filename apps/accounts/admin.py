from django import forms
from django.contrib import admin
from django.contrib.auth.forms import BaseUserCreationForm
from django.core.exceptions import ValidationError

from aegis.admin import AuditedModelAdmin, ReadOnlyModelAdmin, admin_site, adopt
from apps.accounts import services
from apps.accounts.models import (
    TENANT_ROLES,
    ApiKey,
    EncryptedTOTPDevice,
    RefreshToken,
    Role,
    TeamInvite,
    TeamMember,
    User,
)


def _clean_email(form: forms.ModelForm) -> str:
    email = form.cleaned_data["email"].strip().lower()
    # The database's unique index is on lower(email); say so in words instead of naming it.
    if User.objects.filter(email__iexact=email).exclude(pk=form.instance.pk).exists():
        raise ValidationError("A user with this e-mail address already exists.")
    return email


class UserCreationForm(BaseUserCreationForm):
    class Meta:
        model = User
        fields = ("email", "name", "role", "tenant")

    def clean_email(self):
        return _clean_email(self)

    def clean(self):
        cleaned = super().clean()
        role, tenant = cleaned.get("role"), cleaned.get("tenant")
        # The same rule as the database CHECK, with a message that says what to do.
        if role == Role.PLATFORM_ADMIN and tenant is not None:
            self.add_error("tenant", "Platform admins do not belong to a tenant: leave this empty.")
        elif role in TENANT_ROLES and tenant is None:
            self.add_error("tenant", "Tenant admins and members belong to a tenant: choose one.")
        return cleaned


class UserChangeForm(forms.ModelForm):
    class Meta:
        model = User
        fields = ("email", "name", "is_active")

    def clean_email(self):
        return _clean_email(self)


@admin.register(User, site=admin_site)
class UserAdmin(AuditedModelAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    list_display = ("email", "name", "role", "tenant", "is_active", "mfa_enabled", "last_login")
    list_filter = ("role", "is_active", "tenant")
    search_fields = ("email", "name")
    list_select_related = ("tenant",)
    ordering = ("email",)
    # The password hash is never shown; TOTP secrets live in their own table and never appear.
    fieldsets = [
        (None, {"fields": ("email", "name", "is_active")}),
        ("Membership", {"fields": ("role", "tenant")}),
        ("Security", {"fields": ("mfa_enabled", "totp_devices", "last_login", "failed_login_count",
                                 "locked_until")}),
        ("History", {"fields": ("created_at", "updated_at")}),
    ]
    add_fieldsets = [(None, {"fields": ("email", "name", "role", "tenant", "password1", "password2")})]
    # Role and tenant are fixed here once the account exists: membership changes go through the
    # team API (apps.accounts.services.update_member / remove_member), which enforces ranks and
    # never leaves a tenant without an active admin.
    readonly_fields = ("role", "tenant", "mfa_enabled", "totp_devices", "last_login", "failed_login_count",
                       "locked_until", "created_at", "updated_at")

    def get_fieldsets(self, request, obj=None):
        return self.add_fieldsets if obj is None else super().get_fieldsets(request, obj)

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = self.add_form
        return super().get_form(request, obj, **kwargs)

    def has_delete_permission(self, request, obj=None):
        return False  # accounts are deactivated, not deleted: audit rows and installs refer to them

    @admin.display(description="Confirmed TOTP devices")
    def totp_devices(self, obj):
        return EncryptedTOTPDevice.objects.filter(user=obj, confirmed=True).count()

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        # A tenant user comes with a TeamMember row; the services create both together.
        password = form.cleaned_data["password1"]
        if obj.role == Role.PLATFORM_ADMIN:
            user = services.create_platform_admin(email=obj.email, password=password, name=obj.name,
                                                  actor=request.user)
        else:
            user = services.add_member(tenant=obj.tenant, email=obj.email, password=password, name=obj.name,
                                       role=obj.role, actor=request.user, request=request)
        adopt(obj, user)
        return None


@admin.register(TeamMember, site=admin_site)
class TeamMemberAdmin(ReadOnlyModelAdmin):
    """Memberships follow User.role/tenant (the database keeps them equal), so they are edited there."""

    list_display = ("user", "tenant", "role", "status", "joined_at", "last_active_at")
    list_filter = ("role", "status", "tenant")
    search_fields = ("user__email", "user__name")
    list_select_related = ("user", "tenant")
    fields = ("user", "tenant", "role", "status", "invited_by", "joined_at", "last_active_at", "created_at",
              "updated_at")


@admin.register(TeamInvite, site=admin_site)
class TeamInviteAdmin(ReadOnlyModelAdmin):
    list_display = ("email", "tenant", "role", "invited_by", "expires_at", "accepted_at", "revoked_at")
    list_filter = ("role", "tenant")
    search_fields = ("email",)
    list_select_related = ("tenant", "invited_by")
    # An allow-list: token_hash is never displayed.
    fields = ("email", "tenant", "role", "invited_by", "expires_at", "accepted_at", "revoked_at", "created_at")


@admin.register(ApiKey, site=admin_site)
class ApiKeyAdmin(ReadOnlyModelAdmin):
    list_display = ("name", "prefix", "tenant", "created_by", "last_used_at", "expires_at", "revoked_at")
    list_filter = ("tenant",)
    search_fields = ("name", "prefix")
    list_select_related = ("tenant", "created_by")
    # An allow-list: hashed_key is never displayed (the key itself is not stored at all).
    fields = ("name", "prefix", "tenant", "scopes", "rate_limit_per_minute", "created_by", "last_used_at",
              "expires_at", "revoked_at", "created_at")


@admin.register(RefreshToken, site=admin_site)
class RefreshTokenAdmin(ReadOnlyModelAdmin):
    list_display = ("jti", "user", "tenant", "created_at", "expires_at", "revoked_at", "ip")
    list_filter = ("tenant",)
    search_fields = ("=jti", "user__email")
    list_select_related = ("user", "tenant")
    fields = ("jti", "user", "tenant", "family", "created_at", "expires_at", "revoked_at", "replaced_by",
              "user_agent", "ip")


@admin.register(EncryptedTOTPDevice, site=admin_site)
class TOTPDeviceAdmin(ReadOnlyModelAdmin):
    """Who has a second factor. Deleting a device (a lost phone) is the one change allowed here;
    enrolling is `manage.py enroll_totp`, so the secret is only ever shown on the operator's terminal."""

    list_display = ("user", "name", "confirmed", "created_at", "last_used_at", "throttling_failure_count")
    list_filter = ("confirmed",)
    search_fields = ("user__email", "name")
    list_select_related = ("user",)
    fields = ("user", "name", "confirmed", "created_at", "last_used_at", "throttling_failure_count")

    def has_delete_permission(self, request, obj=None):
        return True
