"""Wire shapes of /api/v1/auth/ (snake_case here; the renderer/parser make them camelCase).

Secrets in responses: tokens (to their owner), recovery codes (once, when made) and the TOTP
secret (once, inside the otpauth URI at setup). Nothing else secret ever leaves.
"""

from __future__ import annotations

from rest_framework import serializers

from aegis.api.serializers import StrictSerializer
from apps.accounts.models import User

# Generous but bounded: a password is hashed, so its length is not free.
PASSWORD_MAX_LENGTH = 1024
TOTP_CODE = r"^\d{6,8}$"


def password_field(**kwargs) -> serializers.CharField:
    return serializers.CharField(max_length=PASSWORD_MAX_LENGTH, trim_whitespace=False, write_only=True,
                                 style={"input_type": "password"}, **kwargs)


def totp_code_field(**kwargs) -> serializers.RegexField:
    return serializers.RegexField(TOTP_CODE, max_length=8, error_messages={
        "invalid": "Enter the 6-digit code from your authenticator app."}, **kwargs)


class ProfileSerializer(serializers.ModelSerializer):
    """The signed-in person."""

    tenant_id = serializers.UUIDField(read_only=True, allow_null=True,
                                      help_text="The tenant the account belongs to; null for platform admins.")
    last_login_at = serializers.DateTimeField(source="last_login", read_only=True, allow_null=True)

    class Meta:
        model = User
        fields = ["id", "email", "name", "role", "tenant_id", "mfa_enabled", "last_login_at", "created_at"]
        read_only_fields = fields


class ProfileUpdateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200, help_text="Display name (the only field a person changes here).")


class LoginSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = password_field()


class TokenPairSerializer(serializers.Serializer):
    """A session's tokens. Send the access token as `Authorization: Bearer <accessToken>`; when it
    expires, exchange the refresh token at POST /api/v1/auth/refresh (each refresh token works once)."""

    access_token = serializers.CharField()
    refresh_token = serializers.CharField()
    access_expires_at = serializers.DateTimeField()
    refresh_expires_at = serializers.DateTimeField()
    mfa_verified = serializers.BooleanField(
        help_text="Whether this session passed a TOTP or recovery-code check (the access token's `mfa` claim).")
    user = ProfileSerializer()


class MfaChallengeSerializer(serializers.Serializer):
    """The password was right; the account has MFA. Continue at POST /api/v1/auth/mfa/verify."""

    mfa_required = serializers.BooleanField(help_text="Always true.")
    mfa_token = serializers.CharField(help_text="Short-lived and single-use; pass it to mfa/verify.")
    mfa_token_expires_at = serializers.DateTimeField()


class MfaVerifySerializer(serializers.Serializer):
    mfa_token = serializers.CharField(max_length=1000)
    code = totp_code_field(required=False, help_text="A TOTP code. Give this or recoveryCode.")
    recovery_code = serializers.CharField(max_length=64, required=False,
                                          help_text="One of the recovery codes (each works once).")

    def validate(self, attrs):
        if bool(attrs.get("code")) == bool(attrs.get("recovery_code")):
            raise serializers.ValidationError({"code": ["Give either a code or a recoveryCode."]})
        return attrs


class RefreshSerializer(serializers.Serializer):
    refresh_token = serializers.CharField(max_length=2000)


class LogoutSerializer(serializers.Serializer):
    refresh_token = serializers.CharField(max_length=2000)
    all_devices = serializers.BooleanField(default=False,
                                           help_text="End every session of the account, not only this one.")


class PasswordChangeSerializer(serializers.Serializer):
    current_password = password_field()
    new_password = password_field(help_text="Checked by the password validators.")


class PasswordForgotSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)


class PasswordResetSerializer(serializers.Serializer):
    uid = serializers.CharField(max_length=64, help_text="From the reset link.")
    token = serializers.CharField(max_length=128, help_text="From the reset link.")
    new_password = password_field(help_text="Checked by the password validators.")


class MfaSetupSerializer(serializers.Serializer):
    otpauth_uri = serializers.CharField(help_text="otpauth://totp/... for an authenticator app; contains the secret.")
    qr_svg = serializers.CharField(help_text="The same URI as an SVG QR code.")


class MfaCodeSerializer(serializers.Serializer):
    code = totp_code_field()


class MfaDisableSerializer(serializers.Serializer):
    password = password_field()
    code = totp_code_field(required=False, help_text="A TOTP code. Give this or recoveryCode.")
    recovery_code = serializers.CharField(max_length=64, required=False, help_text="An unused recovery code.")

    def validate(self, attrs):
        if bool(attrs.get("code")) == bool(attrs.get("recovery_code")):
            raise serializers.ValidationError({"code": ["Give either a code or a recoveryCode."]})
        return attrs


class RecoveryCodesSerializer(serializers.Serializer):
    recovery_codes = serializers.ListField(
        child=serializers.CharField(),
        help_text="Shown only now: each works once in place of a TOTP code. Store them safely.")
