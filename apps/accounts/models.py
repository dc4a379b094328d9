import time
import uuid
from base64 import b32encode
from binascii import unhexlify
from urllib.parse import quote, urlencode

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.db import models
from django.db.models.functions import Lower
from django_otp.models import Device, ThrottlingMixin, TimestampMixin
from django_otp.oath import TOTP
from django_otp.util import random_hex

from aegis.crypto import EncryptedTextField
from aegis.db import BaseModel, enum_check


class Role(models.TextChoices):
    PLATFORM_ADMIN = "platform_admin"
    TENANT_ADMIN = "tenant_admin"
    TENANT_MEMBER = "tenant_member"


TENANT_ROLES = [Role.TENANT_ADMIN, Role.TENANT_MEMBER]


class UserManager(BaseUserManager):
    use_in_migrations = True

    def create_user(self, email, password=None, **fields):
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        user.set_password(password)
        user.full_clean(exclude=["password"])
        user.save(using=self._db)
        return user

    def create_superuser(self, email, password=None, **fields):
        fields.update(role=Role.PLATFORM_ADMIN, tenant=None)
        return self.create_user(email, password, **fields)


class User(AbstractBaseUser, BaseModel):
    """A person. `role` and `tenant` are the source of truth for membership; TeamMember
    copies them and a composite foreign key (see migration 0002) keeps the copy in step."""

    email = models.EmailField(max_length=254)
    name = models.CharField(max_length=200, blank=True)
    role = models.CharField(max_length=20, choices=Role.choices)
    # PROTECT: a tenant with people is decommissioned, never deleted out from under them.
    # No index of its own: accounts_user_tenant_role_idx (tenant, role) leads with it.
    tenant = models.ForeignKey(
        "tenants.Tenant", null=True, blank=True, on_delete=models.PROTECT, related_name="users", db_index=False
    )
    mfa_enabled = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    failed_login_count = models.PositiveSmallIntegerField(default=0)
    locked_until = models.DateTimeField(null=True, blank=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = ["name"]

    class Meta:
        ordering = ["email"]
        constraints = [
            models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique"),
            enum_check("role", Role, table="accounts_user"),
            models.CheckConstraint(
                condition=(
                    models.Q(role=Role.PLATFORM_ADMIN, tenant__isnull=True)
                    | (~models.Q(role=Role.PLATFORM_ADMIN) & models.Q(tenant__isnull=False))
                ),
                name="accounts_user_tenant_iff_not_platform_admin",
            ),
            # Target of TeamMember's composite foreign key (user, tenant, role).
            models.UniqueConstraint(fields=["id", "tenant", "role"], name="accounts_user_id_tenant_role_key"),
        ]
        indexes = [models.Index(fields=["tenant", "role"], name="accounts_user_tenant_role_idx")]

    def __str__(self) -> str:
        return self.email

    @property
    def is_platform_admin(self) -> bool:
        return self.role == Role.PLATFORM_ADMIN

    # The Django admin is the platform console: only platform admins are staff, and inside it
    # they hold every permission (there is no finer-grained console role yet).
    @property
    def is_staff(self) -> bool:
        return self.is_active and self.is_platform_admin

    @property
    def is_superuser(self) -> bool:
        return self.is_staff

    def has_perm(self, perm, obj=None) -> bool:
        return self.is_staff

    def has_perms(self, perm_list, obj=None) -> bool:
        return self.is_staff

    def has_module_perms(self, app_label) -> bool:
        return self.is_staff


class TeamMemberStatus(models.TextChoices):
    ACTIVE = "active"
    SUSPENDED = "suspended"


class MemberRole(models.TextChoices):
    TENANT_ADMIN = Role.TENANT_ADMIN.value
    TENANT_MEMBER = Role.TENANT_MEMBER.value


class TeamMember(BaseModel):
    """A user's membership of a tenant, with its status and history."""

    Status = TeamMemberStatus
    MemberRole = MemberRole

    # Indexed by accounts_team_role_idx (tenant, role, status).
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="members", db_index=False)
    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="membership")
    role = models.CharField(max_length=20, choices=MemberRole.choices)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    invited_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    joined_at = models.DateTimeField(auto_now_add=True)
    last_active_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["joined_at"]
        constraints = [
            enum_check("role", MemberRole, table="accounts_teammember"),
            enum_check("status", TeamMemberStatus, table="accounts_teammember"),
        ]
        indexes = [
            models.Index(fields=["tenant", "role", "status"], name="accounts_team_role_idx"),
            models.Index(fields=["tenant", "-joined_at"], name="accounts_team_joined_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.tenant_id} as {self.role}"


class TeamInvite(BaseModel):
    """An invitation by e-mail. Only a hash of the token is kept; the token goes in the e-mail."""

    # Indexed by accounts_invite_tenant_idx (tenant, -created_at).
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="invites", db_index=False)
    email = models.EmailField()
    role = models.CharField(max_length=20, choices=MemberRole.choices)
    token_hash = models.CharField(max_length=128, unique=True)
    invited_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            enum_check("role", MemberRole, table="accounts_teaminvite"),
            # One live (neither accepted nor revoked) invite per tenant and address.
            models.UniqueConstraint(
                "tenant",
                Lower("email"),
                condition=models.Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="accounts_invite_one_live_per_email",
            ),
            models.CheckConstraint(
                condition=models.Q(accepted_at__isnull=True) | models.Q(revoked_at__isnull=True),
                name="accounts_invite_not_accepted_and_revoked",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="accounts_invite_tenant_idx")]

    def __str__(self) -> str:
        return f"invite {self.email} to {self.tenant_id}"


class ApiKey(BaseModel):
    """A tenant API key. Only `prefix` and a SHA-512 hash are stored (djangorestframework-api-key's
    KeyGenerator); the full `prefix.secret` is shown once, at creation."""

    # Indexed by accounts_apikey_tenant_idx (tenant, -created_at).
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="api_keys", db_index=False)
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    hashed_key = models.CharField(max_length=200)
    scopes = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    rate_limit_per_minute = models.PositiveIntegerField(default=600)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="accounts_apikey_tenant_idx")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class RefreshToken(BaseModel):
    """An issued refresh token. Rotated on every use; re-use of a rotated one revokes its family."""

    jti = models.CharField(max_length=64, unique=True)
    # Indexed by accounts_refresh_user_idx (user, -created_at).
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="refresh_tokens", db_index=False)
    tenant = models.ForeignKey("tenants.Tenant", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    family = models.UUIDField(default=uuid.uuid4, db_index=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    replaced_by = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replaces"
    )
    user_agent = models.CharField(max_length=500, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "-created_at"], name="accounts_refresh_user_idx")]

    def __str__(self) -> str:
        return self.jti


class RecoveryCode(BaseModel):
    """A one-time MFA recovery code, stored hashed; `used_at` marks it spent."""

    # Indexed by accounts_recovery_user_idx (user, used_at).
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="recovery_codes", db_index=False)
    code_hash = models.CharField(max_length=200)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "used_at"], name="accounts_recovery_user_idx")]


def new_totp_key() -> str:
    return random_hex(20)


class EncryptedTOTPDevice(TimestampMixin, ThrottlingMixin, Device):
    """A TOTP device (django-otp's Device API, its TOTP algorithm and throttling) whose shared
    secret is encrypted at rest; the stock otp_totp model keeps it in clear, so it is not used."""

    # django-otp parses the id in its session key ("accounts.encryptedtotpdevice/<id>") with
    # int(): this table is the one exception to UUID primary keys.
    id = models.BigAutoField(primary_key=True)
    key = EncryptedTextField(default=new_totp_key)  # hex, 20 random bytes
    step = models.PositiveSmallIntegerField(default=30)
    digits = models.PositiveSmallIntegerField(default=6)
    tolerance = models.PositiveSmallIntegerField(default=1)
    drift = models.SmallIntegerField(default=0)
    last_t = models.BigIntegerField(default=-1)  # last accepted time step: a code works once

    class Meta(Device.Meta):
        verbose_name = "TOTP device"
        # Device.user is a ForeignKey and so already indexed; a Meta index on it would be a duplicate.

    def _totp(self) -> TOTP:
        totp = TOTP(unhexlify(self.key.encode()), self.step, 0, self.digits, self.drift)
        totp.time = time.time()
        return totp

    def verify_token(self, token) -> bool:
        allowed, _ = self.verify_is_allowed()
        if not allowed:
            return False
        totp = self._totp()
        try:
            verified = totp.verify(int(token), self.tolerance, self.last_t + 1)
        except (TypeError, ValueError):
            verified = False
        if verified:
            self.last_t = totp.t()
            self.drift = totp.drift
            self.throttle_reset(commit=False)
            self.set_last_used_timestamp(commit=False)
            self.save()
        else:
            self.throttle_increment(commit=True)
        return verified

    def get_throttle_factor(self) -> int:
        return 1

    @property
    def config_url(self) -> str:
        """otpauth:// URI for authenticator apps (Key Uri Format)."""
        issuer = settings.OTP_TOTP_ISSUER.replace(":", "")
        label = quote(f"{issuer}:{self.user.email}")
        secret = b32encode(unhexlify(self.key.encode())).decode().rstrip("=")
        params = urlencode(
            {"secret": secret, "issuer": issuer, "algorithm": "SHA1", "digits": self.digits, "period": self.step}
        )
        return f"otpauth://totp/{label}?{params}"
