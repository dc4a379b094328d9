"""/api/v1/auth/: sign-in, sessions, the signed-in person's profile, password and MFA.

Thin views: validate, call apps.accounts.sessions, shape the answer. The endpoints whose
credential travels in the body (login, mfa/verify, refresh, logout, password forgot/reset) ignore
any Authorization header, so a stale access token in the client cannot make them fail.
"""

from __future__ import annotations

import uuid

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import serializers, status
from rest_framework.authentication import get_authorization_header
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import AccessToken

from aegis.api.exceptions import ErrorCode
from aegis.api.permissions import anyone, signed_in
from aegis.api.schema import error_response
from aegis.api.throttling import (
    AccountThrottle,
    LoginAccountThrottle,
    LoginIPThrottle,
    PrincipalRateThrottle,
    body_value,
)
from apps.accounts import sessions
from apps.accounts.api.auth_serializers import (
    LoginSerializer,
    LogoutSerializer,
    MfaChallengeSerializer,
    MfaCodeSerializer,
    MfaDisableSerializer,
    MfaSetupSerializer,
    MfaVerifySerializer,
    PasswordChangeSerializer,
    PasswordForgotSerializer,
    PasswordResetSerializer,
    ProfileSerializer,
    ProfileUpdateSerializer,
    RecoveryCodesSerializer,
    RefreshSerializer,
    TokenPairSerializer,
)

# --- Throttles ----------------------------------------------------------------------------------
# Per account (aegis.api.throttling.AccountThrottle: one `login_account` rate, a bucket per endpoint),
# and LoginIPThrottle's per-IP bucket shared by every credential-guessing endpoint.


class MfaAccountThrottle(AccountThrottle):
    """mfa/verify, per account: the one a genuine, fresh mfaToken names."""

    bucket = "mfa"

    def ident(self, request):
        value = request.data.get("mfa_token") if hasattr(request.data, "get") else None
        return sessions.mfa_token_user_id(value) if isinstance(value, str) and len(value) <= 1000 else None


class PasswordForgotThrottle(AccountThrottle):
    """password/forgot, per e-mail address (no mail-bombing one inbox)."""

    bucket = "forgot"

    def ident(self, request):
        return body_value(request, "email")


class PasswordResetThrottle(AccountThrottle):
    """password/reset, per account (the link's uid)."""

    bucket = "reset"

    def ident(self, request):
        return body_value(request, "uid")


class ReauthThrottle(AccountThrottle):
    """In-session re-checks of a password or code, per signed-in person."""

    bucket = "reauth"

    def ident(self, request):
        actor = getattr(request.auth, "actor", None)
        return str(actor.pk) if actor is not None else None


CREDENTIAL_THROTTLES = [PrincipalRateThrottle, LoginIPThrottle]

# --- Documentation helpers ------------------------------------------------------------------------

SIGN_IN_REFUSALS = error_response(
    403, ErrorCode.ACCOUNT_LOCKED, ErrorCode.MFA_REQUIRED, ErrorCode.TENANT_SUSPENDED,
    ErrorCode.TENANT_DECOMMISSIONED, ErrorCode.PERMISSION_DENIED,
    description="Forbidden: `ACCOUNT_LOCKED` (details.lockedUntil) after too many failures; once the credentials "
                "are right, `MFA_REQUIRED` (a platform admin without TOTP enrolled), `TENANT_SUSPENDED`, "
                "`TENANT_DECOMMISSIONED`, or `PERMISSION_DENIED` (suspended membership)")
SIGNED_IN_403_CODES = (ErrorCode.PERMISSION_DENIED, ErrorCode.MFA_REQUIRED, ErrorCode.TENANT_SUSPENDED,
                       ErrorCode.TENANT_DECOMMISSIONED)
REAUTH_REFUSALS = error_response(403, ErrorCode.ACCOUNT_LOCKED, *SIGNED_IN_403_CODES)

EXAMPLE_USER = {
    "id": "3c9d7e1a-5b2f-4e8d-9c1a-2b3c4d5e6f70", "email": "dana@acme.example", "name": "Dana Scully",
    "role": "tenant_admin", "tenantId": "a1b2c3d4-e5f6-4a1b-8c2d-3e4f5a6b7c8d", "mfaEnabled": True,
    "lastLoginAt": "2025-01-02T09:58:12.000000Z", "createdAt": "2024-11-20T14:03:00.000000Z",
}
EXAMPLE_TOKENS = {
    "accessToken": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ0b2tlbl90eXBlIjoiYWNjZXNzIiwic3ViIjoiM2M5ZCIsInJvbGUi"
                   "OiJ0ZW5hbnRfYWRtaW4iLCJtZmEiOnRydWV9.4Xq2c8WmT1o9dQy3bC7vLk0sJfUeR5aHnP6gZtYiMwA",
    "refreshToken": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ0b2tlbl90eXBlIjoicmVmcmVzaCIsInN1YiI6IjNjOWQiLCJzaWQ"
                    "iOiI4ZjE0In0.b3V0LW9mLWJhbmQtZXhhbXBsZS1zaWduYXR1cmUtb25seQ",
    "accessExpiresAt": "2025-01-02T10:08:12.000000Z",
    "refreshExpiresAt": "2025-01-16T09:58:12.000000Z",
    "mfaVerified": True,
    "user": EXAMPLE_USER,
}
EXAMPLE_REQUEST_ID = "5d0c3f6e2b1a4c9d8e7f6a5b4c3d2e1f"


def _error_example(name: str, status_code: int, code: str, message: str, details: dict | None = None):
    return OpenApiExample(name, response_only=True, status_codes=[str(status_code)], value={"error": {
        "code": code, "message": message, "details": details or {}, "requestId": EXAMPLE_REQUEST_ID}})


def _valid(serializer_class: type[serializers.Serializer], request, **kwargs) -> dict:
    serializer = serializer_class(data=request.data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _session_response(session: sessions.Session) -> Response:
    return Response(TokenPairSerializer(session).data)


def _current_session(request) -> uuid.UUID | None:
    """The session (`sid` claim) of the access token this request was authenticated with."""
    parts = get_authorization_header(request).split()
    try:
        return uuid.UUID(str(AccessToken(parts[1].decode()).get("sid")))
    except (IndexError, TokenError, UnicodeDecodeError, ValueError):
        return None


# --- Sign-in and sessions -----------------------------------------------------------------------


class LoginView(APIView):
    authentication_classes = ()
    access = {"post": anyone()}
    throttle_classes = [*CREDENTIAL_THROTTLES, LoginAccountThrottle]

    @extend_schema(
        summary="Sign in with e-mail and password",
        description=(
            "Returns a session's tokens, or — when the account has MFA on — `{mfaRequired: true, mfaToken}`: "
            "continue with POST /api/v1/auth/mfa/verify within the token's lifetime (5 minutes).\n\n"
            "Wrong e-mail and wrong password get the same 401. After LOGIN_LOCKOUT_THRESHOLD (5) consecutive "
            "failures the account is locked for LOGIN_LOCKOUT_PERIOD (15 minutes): 403 `ACCOUNT_LOCKED` with "
            "`details.lockedUntil`; while locked the password is not checked. Throttled per IP and per e-mail."),
        tags=["auth"],
        auth=[],
        request=LoginSerializer,
        responses={
            200: PolymorphicProxySerializer(component_name="LoginResult",
                                            serializers=[TokenPairSerializer, MfaChallengeSerializer],
                                            resource_type_field_name=None),
            401: error_response(401, ErrorCode.INVALID_CREDENTIALS),
            403: SIGN_IN_REFUSALS,
        },
        examples=[
            OpenApiExample("Credentials", request_only=True,
                           value={"email": "dana@acme.example", "password": "a-long-unusual-passphrase"}),
            OpenApiExample("Signed in", response_only=True, status_codes=["200"],
                           value={**EXAMPLE_TOKENS, "mfaVerified": False, "user": {**EXAMPLE_USER,
                                                                                  "mfaEnabled": False}}),
            OpenApiExample("MFA required", response_only=True, status_codes=["200"],
                           value={"mfaRequired": True, "mfaToken": "eyJ1aWQiOiIzYzlkIn0:1tT2kq:Zx3pQ8rW",
                                  "mfaTokenExpiresAt": "2025-01-02T10:03:12.000000Z"}),
            _error_example("Wrong credentials", 401, ErrorCode.INVALID_CREDENTIALS,
                           "The email or password is incorrect."),
            _error_example("Locked", 403, ErrorCode.ACCOUNT_LOCKED,
                           "Too many failed attempts: the account is locked for a while.",
                           {"lockedUntil": "2025-01-02T10:13:12.000000Z"}),
        ],
    )
    def post(self, request):
        data = _valid(LoginSerializer, request)
        result = sessions.login(email=data["email"], password=data["password"], request=request)
        if isinstance(result, sessions.MfaChallenge):
            return Response(MfaChallengeSerializer({"mfa_required": True, "mfa_token": result.mfa_token,
                                                    "mfa_token_expires_at": result.expires_at}).data)
        return _session_response(result)


class MfaVerifyView(APIView):
    authentication_classes = ()
    access = {"post": anyone()}
    throttle_classes = [*CREDENTIAL_THROTTLES, MfaAccountThrottle]

    @extend_schema(
        summary="Complete sign-in with a TOTP or recovery code",
        description=(
            "Second step of a sign-in that returned `mfaRequired`. Give `code` (TOTP) or `recoveryCode` "
            "(each recovery code works once). The tokens carry `mfa: true`. The mfaToken gives one session: "
            "a wrong code may be retried with it, but wrong codes count toward the account's lockout."),
        tags=["auth"],
        auth=[],
        request=MfaVerifySerializer,
        responses={
            200: TokenPairSerializer,
            401: error_response(401, ErrorCode.TOKEN_INVALID, ErrorCode.MFA_INVALID, description=(
                "Not authenticated: `MFA_INVALID` (wrong or used code; retry) or `TOKEN_INVALID` (the mfaToken "
                "is forged, expired or already gave a session; sign in again)")),
            403: SIGN_IN_REFUSALS,
        },
        examples=[
            OpenApiExample("TOTP code", request_only=True,
                           value={"mfaToken": "eyJ1aWQiOiIzYzlkIn0:1tT2kq:Zx3pQ8rW", "code": "492039"}),
            OpenApiExample("Recovery code", request_only=True,
                           value={"mfaToken": "eyJ1aWQiOiIzYzlkIn0:1tT2kq:Zx3pQ8rW", "recoveryCode": "k7pq-3mzx-h2cd"}),
            OpenApiExample("Signed in", response_only=True, status_codes=["200"], value=EXAMPLE_TOKENS),
            _error_example("Wrong code", 401, ErrorCode.MFA_INVALID, "The code is wrong, expired or already used."),
        ],
    )
    def post(self, request):
        data = _valid(MfaVerifySerializer, request)
        session = sessions.verify_mfa(mfa_token=data["mfa_token"], code=data.get("code"),
                                      recovery_code=data.get("recovery_code"), request=request)
        return _session_response(session)


class RefreshView(APIView):
    authentication_classes = ()
    access = {"post": anyone()}

    @extend_schema(
        summary="Rotate a refresh token for a new token pair",
        description=(
            "The refresh token given is spent and a new pair returned (same session, same `mfaVerified`). "
            "Presenting a refresh token a second time — after it was rotated or the session ended — revokes "
            "every token of its session (401 `TOKEN_REUSED`): one of the two holders must be a thief. Clients "
            "must therefore refresh one at a time (single-flight); of two concurrent refreshes of one token "
            "exactly one succeeds and the session then ends."),
        tags=["auth"],
        auth=[],
        request=RefreshSerializer,
        responses={
            200: TokenPairSerializer,
            401: error_response(401, ErrorCode.TOKEN_INVALID, ErrorCode.TOKEN_REUSED),
            403: error_response(403, ErrorCode.MFA_REQUIRED, ErrorCode.TENANT_SUSPENDED,
                                ErrorCode.TENANT_DECOMMISSIONED, ErrorCode.PERMISSION_DENIED),
        },
        examples=[
            OpenApiExample("Refresh", request_only=True, value={"refreshToken": EXAMPLE_TOKENS["refreshToken"]}),
            OpenApiExample("Rotated", response_only=True, status_codes=["200"], value=EXAMPLE_TOKENS),
            _error_example("Re-used", 401, ErrorCode.TOKEN_REUSED,
                           "This refresh token was already used: every token of its session has been revoked. "
                           "Sign in again."),
        ],
    )
    def post(self, request):
        data = _valid(RefreshSerializer, request)
        return _session_response(sessions.refresh(refresh_token=data["refresh_token"], request=request))


class LogoutView(APIView):
    authentication_classes = ()
    access = {"post": anyone()}

    @extend_schema(
        summary="Sign out (this session or all)",
        description=(
            "Ends the session the refresh token belongs to; with `allDevices: true`, every session of the "
            "account (that needs a refresh token that is still live). The refresh token is the credential, so "
            "this works after the access token expired. Access tokens already issued stay valid until they "
            "expire (minutes)."),
        tags=["auth"],
        auth=[],
        request=LogoutSerializer,
        responses={204: OpenApiResponse(description="Signed out."),
                   401: error_response(401, ErrorCode.TOKEN_INVALID)},
        examples=[OpenApiExample("Everywhere", request_only=True,
                                 value={"refreshToken": EXAMPLE_TOKENS["refreshToken"], "allDevices": True})],
    )
    def post(self, request):
        data = _valid(LogoutSerializer, request)
        sessions.logout(refresh_token=data["refresh_token"], all_devices=data["all_devices"], request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- The signed-in person -------------------------------------------------------------------------


class MeView(APIView):
    access = {"get": signed_in(), "patch": signed_in()}

    @extend_schema(summary="The signed-in person", tags=["auth"], responses={200: ProfileSerializer},
                   examples=[OpenApiExample("Profile", response_only=True, value=EXAMPLE_USER)])
    def get(self, request):
        return Response(ProfileSerializer(request.user).data)

    @extend_schema(summary="Change the signed-in person's name", tags=["auth"], request=ProfileUpdateSerializer,
                   responses={200: ProfileSerializer},
                   examples=[OpenApiExample("Rename", request_only=True, value={"name": "Dana K. Scully"})])
    def patch(self, request):
        data = _valid(ProfileUpdateSerializer, request, partial=True)
        user = request.user
        if "name" in data:
            user = sessions.update_profile(user=user, name=data["name"], request=request)
        return Response(ProfileSerializer(user).data)


class PasswordChangeView(APIView):
    access = {"post": signed_in()}
    throttle_classes = [PrincipalRateThrottle, ReauthThrottle]

    @extend_schema(
        summary="Change the password",
        description=(
            "Needs the current password (a wrong one is a `VALIDATION_ERROR` on `currentPassword` and counts "
            "toward the lockout). The new one must pass the password validators (`VALIDATION_ERROR` on "
            "`newPassword`). Every other session is ended; this one stays."),
        tags=["auth"],
        request=PasswordChangeSerializer,
        responses={204: OpenApiResponse(description="Changed."), 403: REAUTH_REFUSALS},
    )
    def post(self, request):
        data = _valid(PasswordChangeSerializer, request)
        sessions.change_password(user=request.user, current_password=data["current_password"],
                                 new_password=data["new_password"], current_session=_current_session(request),
                                 request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PasswordForgotView(APIView):
    authentication_classes = ()
    access = {"post": anyone()}
    throttle_classes = [*CREDENTIAL_THROTTLES, PasswordForgotThrottle]

    @extend_schema(
        summary="Ask for a password-reset e-mail",
        description=(
            "Always 202, whether or not an account has this address (no account enumeration). When an active "
            "account has it, a link with `uid` and `token` is e-mailed; the link expires after "
            "PASSWORD_RESET_TIMEOUT (1 hour) and works once."),
        tags=["auth"],
        auth=[],
        request=PasswordForgotSerializer,
        responses={202: OpenApiResponse(description="Accepted; an e-mail is sent if the address has an account.")},
        examples=[OpenApiExample("Forgot", request_only=True, value={"email": "dana@acme.example"})],
    )
    def post(self, request):
        data = _valid(PasswordForgotSerializer, request)
        sessions.request_password_reset(email=data["email"], request=request)
        return Response(status=status.HTTP_202_ACCEPTED)


class PasswordResetView(APIView):
    authentication_classes = ()
    access = {"post": anyone()}
    throttle_classes = [*CREDENTIAL_THROTTLES, PasswordResetThrottle]

    @extend_schema(
        summary="Set a new password from a reset link",
        description=(
            "`uid` and `token` come from the e-mailed link. An invalid, expired or used link is a "
            "`VALIDATION_ERROR` on `token`. Every session of the account is ended and a lockout lifted; MFA, "
            "if on, is still asked at the next sign-in."),
        tags=["auth"],
        auth=[],
        request=PasswordResetSerializer,
        responses={204: OpenApiResponse(description="The password is changed; sign in with it.")},
        examples=[OpenApiExample("Reset", request_only=True, value={
            "uid": "M2M5ZDdlMWEtNWIyZi00ZThkLTljMWEtMmIzYzRkNWU2Zjcw",
            "token": "cd2k1q-4f0b1f5c0b3d7e9a2c4e6f8a0b2d4f6a", "newPassword": "another-long-passphrase"})],
    )
    def post(self, request):
        data = _valid(PasswordResetSerializer, request)
        sessions.reset_password(uid=data["uid"], token=data["token"], new_password=data["new_password"],
                                request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- MFA ------------------------------------------------------------------------------------------


class MfaSetupView(APIView):
    access = {"post": signed_in()}

    @extend_schema(
        summary="Start MFA setup: a new TOTP secret",
        description=(
            "Creates an unconfirmed TOTP device (replacing an earlier unconfirmed one) and returns its "
            "otpauth URI and the same as an SVG QR code: the only time the secret leaves the server. Confirm "
            "with POST /api/v1/auth/mfa/enable."),
        tags=["auth"],
        request=None,
        responses={200: MfaSetupSerializer, 409: error_response(409, ErrorCode.INVALID_STATE)},
    )
    def post(self, request):
        setup = sessions.start_mfa_setup(user=request.user, request=request)
        return Response(MfaSetupSerializer(setup).data)


class MfaEnableView(APIView):
    access = {"post": signed_in()}

    @extend_schema(
        summary="Turn MFA on with a code from the new device",
        description=(
            "Confirms the device from mfa/setup (a wrong code is a `VALIDATION_ERROR` on `code`). Returns ten "
            "recovery codes, shown only now. Sign-ins ask for a code from then on; this session is unchanged."),
        tags=["auth"],
        request=MfaCodeSerializer,
        responses={200: RecoveryCodesSerializer, 409: error_response(409, ErrorCode.INVALID_STATE)},
        examples=[OpenApiExample("Codes", response_only=True, status_codes=["200"],
                                 value={"recoveryCodes": ["k7pq-3mzx-h2cd", "9wfe-tj4r-8bna", "…"]})],
    )
    def post(self, request):
        data = _valid(MfaCodeSerializer, request)
        codes = sessions.enable_mfa(user=request.user, code=data["code"], request=request)
        return Response(RecoveryCodesSerializer({"recovery_codes": codes}).data)


class MfaDisableView(APIView):
    access = {"post": signed_in()}
    throttle_classes = [PrincipalRateThrottle, ReauthThrottle]

    @extend_schema(
        summary="Turn MFA off",
        description=(
            "Needs the password and a TOTP `code` or a `recoveryCode`; wrong ones are `VALIDATION_ERROR`s on "
            "their field and count toward the lockout. Removes the devices and recovery codes. Platform admins "
            "may not turn MFA off (403 `PERMISSION_DENIED`)."),
        tags=["auth"],
        request=MfaDisableSerializer,
        responses={204: OpenApiResponse(description="MFA is off."), 403: REAUTH_REFUSALS,
                   409: error_response(409, ErrorCode.INVALID_STATE)},
    )
    def post(self, request):
        data = _valid(MfaDisableSerializer, request)
        sessions.disable_mfa(user=request.user, password=data["password"], code=data.get("code"),
                             recovery_code=data.get("recovery_code"), request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class RecoveryCodesView(APIView):
    access = {"post": signed_in()}
    throttle_classes = [PrincipalRateThrottle, ReauthThrottle]

    @extend_schema(
        summary="Replace the recovery codes",
        description=("Needs a TOTP code (a wrong one is a `VALIDATION_ERROR` on `code` and counts toward the "
                     "lockout). Every earlier recovery code stops working; the new ones are shown only now."),
        tags=["auth"],
        request=MfaCodeSerializer,
        responses={200: RecoveryCodesSerializer, 403: REAUTH_REFUSALS,
                   409: error_response(409, ErrorCode.INVALID_STATE)},
    )
    def post(self, request):
        data = _valid(MfaCodeSerializer, request)
        codes = sessions.regenerate_recovery_codes(user=request.user, code=data["code"], request=request)
        return Response(RecoveryCodesSerializer({"recovery_codes": codes}).data)
