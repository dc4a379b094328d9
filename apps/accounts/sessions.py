"""Sign-in, sessions, passwords and MFA: the rules behind /api/v1/auth/.

Plain functions with keyword-only arguments; the views only validate input and shape output.
Each state change happens in one transaction together with its audit row. Where a refusal must
still leave a trace (a failed attempt counted, a reused token's family revoked), the transaction
commits first and the error is raised after it, so the trace survives the refusal.

Sessions: a sign-in starts a *family* (its id is the `sid` claim of every token of the session);
each refresh rotates the refresh token within the family. Presenting a refresh token that was
already rotated or revoked revokes the whole family: one of the two holders is a thief.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import qrcode
import structlog
from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.hashers import make_password
from django.contrib.auth.tokens import default_token_generator
from django.core import signing
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import QuerySet
from django.db.models.functions import Lower
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode
from qrcode.image.svg import SvgPathImage
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import RefreshToken as RefreshJWT
from rest_framework_simplejwt.utils import datetime_from_epoch

from aegis.api.authentication import issue_access_token
from aegis.api.exceptions import ApiError, ErrorCode
from apps.accounts.models import EncryptedTOTPDevice, RecoveryCode, RefreshToken, TeamMember, User
from apps.audit.services import diff, record, request_context
from apps.tenants.models import Tenant

log = structlog.get_logger(__name__)

RECOVERY_CODE_COUNT = 10
# 12 symbols from 31 unambiguous ones (no 0/o, 1/l/i): ~59 bits, so a keyed hash suffices.
RECOVERY_CODE_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
RECOVERY_CODE_LENGTH = 12
MFA_TOKEN_SALT = "aegis.accounts.sessions.mfa-token"  # noqa: S105 (a signing namespace, not a secret)
# How long failures against an unknown e-mail are remembered (see _unknown_account_failure).
UNKNOWN_ACCOUNT_MEMORY_SECONDS = 24 * 60 * 60


@dataclass(frozen=True)
class Session:
    """A signed-in session's tokens, as handed to the client."""

    user: User
    family: uuid.UUID
    access_token: str
    refresh_token: str
    access_expires_at: datetime
    refresh_expires_at: datetime
    mfa_verified: bool


@dataclass(frozen=True)
class MfaChallenge:
    """The password was right and the account has MFA: the second step needs `mfa_token`."""

    mfa_token: str
    expires_at: datetime


@dataclass(frozen=True)
class MfaSetup:
    otpauth_uri: str
    qr_svg: str


# --- Errors ---------------------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _invalid_credentials() -> ApiError:
    # One message for unknown e-mail, deactivated account and wrong password: no enumeration.
    return ApiError(401, ErrorCode.INVALID_CREDENTIALS, "The email or password is incorrect.")


def _locked(until: datetime) -> ApiError:
    return ApiError(403, ErrorCode.ACCOUNT_LOCKED, "Too many failed attempts: the account is locked for a while.",
                    {"lockedUntil": _iso(until)})


def _token_invalid(what: str) -> ApiError:
    return ApiError(401, ErrorCode.TOKEN_INVALID, f"The {what} is invalid, expired or already used; sign in again.")


def _mfa_invalid() -> ApiError:
    return ApiError(401, ErrorCode.MFA_INVALID, "The code is wrong, expired or already used.")


def _not_in_state(message: str) -> ApiError:
    return ApiError(409, ErrorCode.INVALID_STATE, message)


def _field_error(field: str, message: str) -> ValidationError:
    return ValidationError({field: [message]})


# --- Accounts, lockout ------------------------------------------------------------------------


def _users() -> QuerySet[User]:
    return User.objects.select_related("tenant", "membership")


def _active_user_by_email(email: str) -> User | None:
    # Lower(email) is what the unique index covers.
    return (_users().alias(email_lower=Lower("email"))
            .filter(email_lower=email.strip().lower(), is_active=True).first())


def _lock_end(user: User) -> datetime | None:
    return user.locked_until if user.locked_until and user.locked_until > timezone.now() else None


def _register_failure(*, user: User, reason: str, request, purpose: str | None = None) -> datetime | None:
    """Count one failed credential check against `user`; lock the account at the threshold.

    `purpose` names an in-session re-check (password change, MFA disable...); None is a sign-in.
    Returns the end of the lock when this failure locked the account. The caller must let the
    transaction commit (raise after it), or the count is lost.
    """
    now = timezone.now()
    with transaction.atomic():
        row = User.objects.select_for_update().get(pk=user.pk)
        if row.locked_until and row.locked_until > now:  # a concurrent attempt locked it meanwhile
            return row.locked_until
        row.failed_login_count += 1
        attempts = row.failed_login_count
        locked_until = None
        if attempts >= settings.LOGIN_LOCKOUT_THRESHOLD:
            # The count restarts, so after the lock the account gets a full threshold again.
            locked_until = now + settings.LOGIN_LOCKOUT_PERIOD
            row.locked_until, row.failed_login_count = locked_until, 0
        row.save(update_fields=["failed_login_count", "locked_until", "updated_at"])
        user.failed_login_count, user.locked_until = row.failed_login_count, row.locked_until
        changes = {"reason": reason, "failed_attempts": attempts}
        if purpose is None:
            record("auth.login_failed", tenant=user.tenant, target=user, request=request,
                   changes={"email": user.email, **changes})
        else:
            record("auth.reauthentication_failed", actor=user, tenant=user.tenant, target=user, request=request,
                   changes={"purpose": purpose, **changes})
        if locked_until is not None:
            record("auth.account_locked", tenant=user.tenant, target=user, request=request,
                   changes={"locked_until": _iso(locked_until), "failed_attempts": attempts})
    return locked_until


def _unknown_account_key(email: str) -> str:
    return "auth:unknown-account:" + hashlib.sha256(email.encode()).hexdigest()


def _unknown_account_lock_end(email: str) -> datetime | None:
    timestamp = cache.get(_unknown_account_key(email) + ":locked")
    return datetime.fromtimestamp(timestamp, UTC) if timestamp else None


def _unknown_account_failure(*, email: str, request) -> datetime | None:
    """Failures against an e-mail with no active account lock it exactly like a real one (in the
    cache, not the database), so ACCOUNT_LOCKED does not tell an attacker the account exists."""
    key = _unknown_account_key(email)
    cache.add(key, 0, timeout=UNKNOWN_ACCOUNT_MEMORY_SECONDS)
    try:
        attempts = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=UNKNOWN_ACCOUNT_MEMORY_SECONDS)
        attempts = 1
    locked_until = None
    if attempts >= settings.LOGIN_LOCKOUT_THRESHOLD:
        locked_until = timezone.now() + settings.LOGIN_LOCKOUT_PERIOD
        cache.set(key + ":locked", locked_until.timestamp(), timeout=int(settings.LOGIN_LOCKOUT_PERIOD.total_seconds()))
        cache.delete(key)
    with transaction.atomic():
        record("auth.login_failed", request=request,
               changes={"email": email, "reason": "unknown_or_inactive_account", "failed_attempts": attempts})
    return locked_until


def _refusal(user: User) -> ApiError | None:
    """Why a correctly authenticated user may not hold a session now (None: they may)."""
    if user.is_platform_admin and not user.mfa_enabled:
        # Platform admins are TOTP-only everywhere (console and API); enrolment is an ops step.
        return ApiError(403, ErrorCode.MFA_REQUIRED,
                        "Platform admins need a TOTP device before they can sign in; ask an operator to run "
                        "`manage.py enroll_totp`.")
    tenant = user.tenant
    if tenant is None:
        return None
    if tenant.status == Tenant.Status.SUSPENDED:
        return ApiError(403, ErrorCode.TENANT_SUSPENDED, "This tenant is suspended; contact support.",
                        {"reason": tenant.status_reason})
    if tenant.status == Tenant.Status.DECOMMISSIONED:
        return ApiError(403, ErrorCode.TENANT_DECOMMISSIONED, "This tenant has been decommissioned.")
    membership = getattr(user, "membership", None)
    if membership is not None and membership.status == TeamMember.Status.SUSPENDED:
        return ApiError(403, ErrorCode.PERMISSION_DENIED, "Your membership of this tenant is suspended.")
    return None


def _refuse_sign_in(*, user: User, refusal: ApiError, request) -> ApiError:
    with transaction.atomic():
        record("auth.login_refused", tenant=user.tenant, target=user, request=request,
               changes={"reason": refusal.get_codes()})
    return refusal


# --- Tokens -------------------------------------------------------------------------------------


def _issue_session(*, user: User, family: uuid.UUID, mfa_verified: bool, request) -> tuple[Session, RefreshToken]:
    """A new access + refresh pair in `family`; the refresh token's jti is recorded. The `mfa`
    claim rides in the signed refresh JWT, so a refresh keeps the session's MFA state."""
    refresh = RefreshJWT.for_user(user)
    refresh["sid"] = str(family)
    refresh["mfa"] = mfa_verified
    context = request_context(request)
    row = RefreshToken.objects.create(
        jti=refresh["jti"], user=user, tenant_id=user.tenant_id, family=family,
        expires_at=datetime_from_epoch(refresh["exp"]),
        user_agent=context.get("user_agent", ""), ip=context.get("ip"),
    )
    access = issue_access_token(user, mfa_verified=mfa_verified)
    access["sid"] = str(family)
    session = Session(user=user, family=family, access_token=str(access), refresh_token=str(refresh),
                      access_expires_at=datetime_from_epoch(access["exp"]), refresh_expires_at=row.expires_at,
                      mfa_verified=mfa_verified)
    return session, row


def _complete_sign_in(*, user: User, method: str, mfa_verified: bool, request, changes: dict | None = None) -> Session:
    now = timezone.now()
    with transaction.atomic():
        # last_login also invalidates outstanding password-reset links (Django hashes it in).
        User.objects.filter(pk=user.pk).update(failed_login_count=0, locked_until=None, last_login=now, updated_at=now)
        user.failed_login_count, user.locked_until, user.last_login = 0, None, now
        session, _ = _issue_session(user=user, family=uuid.uuid4(), mfa_verified=mfa_verified, request=request)
        record("auth.login_succeeded", actor=user, tenant=user.tenant, target=user, request=request,
               changes={"method": method, "mfa_verified": mfa_verified, "session": str(session.family),
                        **(changes or {})})
    return session


def _decode_refresh(raw: str) -> dict:
    try:
        return RefreshJWT(raw).payload  # signature, expiry and token_type == "refresh"
    except TokenError as exc:
        raise _token_invalid("refresh token") from exc


def _revoke(queryset: QuerySet[RefreshToken]) -> int:
    now = timezone.now()
    return queryset.filter(revoked_at__isnull=True).update(revoked_at=now, updated_at=now)


def revoke_sessions(*, user: User, keep_family: uuid.UUID | None = None) -> int:
    """End every session of `user` (but `keep_family`): their refresh tokens stop working at once,
    access tokens already issued expire on their own (ACCESS_TOKEN_LIFETIME). Returns how many
    sessions were live. The caller audits (it knows why)."""
    sessions = RefreshToken.objects.filter(user=user)
    if keep_family is not None:
        sessions = sessions.exclude(family=keep_family)
    return _revoke(sessions)


def _mfa_token_signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=MFA_TOKEN_SALT)


def _password_fingerprint(user: User) -> str:
    # Ties an MFA token to the password it was earned with: a reset in between voids it.
    return salted_hmac(MFA_TOKEN_SALT, user.password, algorithm="sha256").hexdigest()[:24]


def _read_mfa_token(raw: str) -> dict | None:
    try:
        payload = _mfa_token_signer().unsign_object(raw, max_age=settings.MFA_TOKEN_LIFETIME)
    except signing.BadSignature:  # includes SignatureExpired
        return None
    if not isinstance(payload, dict) or not all(isinstance(payload.get(k), str) for k in ("uid", "nonce", "pwd")):
        return None
    return payload


def mfa_token_user_id(raw: str) -> str | None:
    """The user id an MFA token was issued to, if it is genuine and fresh (for per-account throttling)."""
    payload = _read_mfa_token(raw)
    return payload["uid"] if payload else None


def _mfa_nonce_key(nonce: str) -> str:
    return f"auth:mfa-token-used:{nonce}"


# --- Sign-in ---------------------------------------------------------------------------------------


def login(*, email: str, password: str, request=None) -> Session | MfaChallenge:
    """Check e-mail and password. Gives a session, or an MFA challenge when the account has MFA.

    Raises 401 INVALID_CREDENTIALS (same for every kind of wrong), 403 ACCOUNT_LOCKED with
    `lockedUntil`, or a refusal (MFA_REQUIRED for platform admins without TOTP, TENANT_SUSPENDED,
    TENANT_DECOMMISSIONED, PERMISSION_DENIED for a suspended membership) once the password is right.
    """
    normalized = email.strip().lower()
    user = _active_user_by_email(normalized)
    if user is None:
        if until := _unknown_account_lock_end(normalized):
            raise _locked(until)
        make_password(password)  # spend the time a real check takes: no timing oracle either
        if until := _unknown_account_failure(email=normalized, request=request):
            raise _locked(until)
        raise _invalid_credentials()
    if until := _lock_end(user):
        raise _locked(until)  # the password is not even checked while locked
    if not user.check_password(password):
        if until := _register_failure(user=user, reason="bad_password", request=request):
            raise _locked(until)
        raise _invalid_credentials()
    if refusal := _refusal(user):
        raise _refuse_sign_in(user=user, refusal=refusal, request=request)
    if user.mfa_enabled:
        # The failure count is not reset yet: password-then-wrong-code rounds still add up.
        expires_at = timezone.now() + settings.MFA_TOKEN_LIFETIME
        token = _mfa_token_signer().sign_object(
            {"uid": str(user.pk), "nonce": secrets.token_urlsafe(16), "pwd": _password_fingerprint(user)})
        with transaction.atomic():
            record("auth.mfa_challenged", tenant=user.tenant, target=user, request=request)
        return MfaChallenge(mfa_token=token, expires_at=expires_at)
    return _complete_sign_in(user=user, method="password", mfa_verified=False, request=request)


def verify_mfa(*, mfa_token: str, code: str | None = None, recovery_code: str | None = None,
               request=None) -> Session:
    """Second sign-in step: a TOTP code or an unused recovery code for the MFA token's account.

    The MFA token gives a session once (its nonce is spent in the cache); a wrong code does not
    spend it but counts toward the account's lockout.
    """
    payload = _read_mfa_token(mfa_token)
    user = _users().filter(pk=payload["uid"], is_active=True).first() if payload else None
    nonce_key = _mfa_nonce_key(payload["nonce"]) if payload else ""
    if (user is None or not user.mfa_enabled or payload["pwd"] != _password_fingerprint(user)
            or cache.get(nonce_key) is not None):
        raise _token_invalid("MFA token")
    if until := _lock_end(user):
        raise _locked(until)
    if refusal := _refusal(user):
        raise _refuse_sign_in(user=user, refusal=refusal, request=request)

    error: ApiError | None = None
    session: Session | None = None
    with transaction.atomic():
        # One verification per account at a time: the nonce check and its spending cannot interleave.
        User.objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True).get()
        if cache.get(nonce_key) is not None:
            error = _token_invalid("MFA token")
        else:
            method = "totp" if code else "recovery_code"
            verified = _verify_totp(user, code) if code else _use_recovery_code(user, recovery_code or "")
            if not verified:
                until = _register_failure(user=user, reason=f"bad_{method}", request=request)
                error = _locked(until) if until else _mfa_invalid()
            elif not cache.add(nonce_key, 1, timeout=int(settings.MFA_TOKEN_LIFETIME.total_seconds()) + 1):
                error = _token_invalid("MFA token")
                transaction.set_rollback(True)  # nothing of this attempt stays (a recovery code is not spent)
            else:
                changes = {}
                if method == "recovery_code":
                    changes["recovery_codes_left"] = _recovery_codes_left(user)
                session = _complete_sign_in(user=user, method=method, mfa_verified=True, request=request,
                                            changes=changes)
    if error is not None:
        raise error
    return session


def refresh(*, refresh_token: str, request=None) -> Session:
    """Rotate a refresh token: the presented one is revoked and replaced in its family.

    A refresh token that was already rotated or revoked revokes its whole family (401
    TOKEN_REUSED). The row is locked, so of two concurrent refreshes of one token exactly one
    rotates it; the other sees it rotated and is treated as a re-use.
    """
    claims = _decode_refresh(refresh_token)
    error: ApiError | None = None
    session: Session | None = None
    with transaction.atomic():
        row = (RefreshToken.objects.select_for_update(of=("self",))
               .select_related("user__tenant", "user__membership").filter(jti=claims.get("jti")).first())
        if row is None or str(row.user_id) != str(claims.get("sub")) or str(row.family) != str(claims.get("sid")):
            error = _token_invalid("refresh token")
        elif row.revoked_at is not None:
            revoked = _revoke(RefreshToken.objects.filter(family=row.family))
            record("auth.refresh_token_reused", tenant=row.user.tenant, target=row.user, request=request,
                   changes={"session": str(row.family), "revoked_tokens": revoked,
                            "reused_token_revoked_at": _iso(row.revoked_at)})
            error = ApiError(401, ErrorCode.TOKEN_REUSED,
                             "This refresh token was already used: every token of its session has been revoked. "
                             "Sign in again.")
        elif not row.user.is_active or row.expires_at <= timezone.now():
            error = _token_invalid("refresh token")
        elif refusal := _refusal(row.user):
            error = refusal
        else:
            # Turning MFA off downgrades the session at its next refresh.
            mfa_verified = bool(claims.get("mfa")) and row.user.mfa_enabled
            session, new_row = _issue_session(user=row.user, family=row.family, mfa_verified=mfa_verified,
                                              request=request)
            row.revoked_at, row.replaced_by = timezone.now(), new_row
            row.save(update_fields=["revoked_at", "replaced_by", "updated_at"])
    if error is not None:
        raise error
    return session


def logout(*, refresh_token: str, all_devices: bool = False, request=None) -> int:
    """End the session the refresh token belongs to (its family), or with `all_devices` every
    session of its user. Returns how many live sessions were ended. The refresh token is the
    credential, so this works after the access token expired; ending other sessions needs a
    token that is still live."""
    claims = _decode_refresh(refresh_token)
    with transaction.atomic():
        row = (RefreshToken.objects.select_for_update(of=("self",)).select_related("user__tenant")
               .filter(jti=claims.get("jti")).first())
        if row is None or str(row.user_id) != str(claims.get("sub")):
            raise _token_invalid("refresh token")
        if all_devices and row.revoked_at is not None:
            raise _token_invalid("refresh token")
        scope = RefreshToken.objects.filter(user=row.user) if all_devices else RefreshToken.objects.filter(
            family=row.family)
        ended = _revoke(scope)
        record("auth.logged_out", actor=row.user, tenant=row.user.tenant, target=row.user, request=request,
               changes={"all_devices": all_devices, "session": str(row.family), "ended_sessions": ended})
    return ended


# --- Profile and password ------------------------------------------------------------------------


def update_profile(*, user: User, name: str, request=None) -> User:
    before = {"name": user.name}
    if name == user.name:
        return user
    with transaction.atomic():
        user.name = name
        user.save(update_fields=["name", "updated_at"])
        record("user.profile_updated", actor=user, tenant=user.tenant, target=user, request=request,
               changes=diff(before, {"name": name}))
    return user


def _validate_new_password(password: str, user: User) -> None:
    try:
        password_validation.validate_password(password, user=user)
    except ValidationError as exc:
        raise ValidationError({"new_password": exc.messages}) from exc


def _recheck_password(*, user: User, password: str, purpose: str, request) -> None:
    """An in-session password check: wrong ones count toward the lockout like sign-in attempts
    (a stolen access token must not allow unlimited guessing)."""
    if until := _lock_end(user):
        raise _locked(until)
    if not user.check_password(password):
        field = "current_password" if purpose == "password_change" else "password"
        if until := _register_failure(user=user, reason="bad_password", purpose=purpose, request=request):
            raise _locked(until)
        raise _field_error(field, "The password is not correct.")


def change_password(*, user: User, current_password: str, new_password: str,
                    current_session: uuid.UUID | None = None, request=None) -> int:
    """Change the password; every other session is ended (the current one, if known, stays).
    Returns how many sessions were ended."""
    _recheck_password(user=user, password=current_password, purpose="password_change", request=request)
    _validate_new_password(new_password, user)
    with transaction.atomic():
        user.set_password(new_password)
        user.save(update_fields=["password", "updated_at"])
        ended = revoke_sessions(user=user, keep_family=current_session)
        record("auth.password_changed", actor=user, tenant=user.tenant, target=user, request=request,
               changes={"ended_sessions": ended})
    return ended


def _reset_link(user: User) -> str:
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    return settings.PASSWORD_RESET_URL.format(uid=uid, token=default_token_generator.make_token(user))


def request_password_reset(*, email: str, request=None) -> None:
    """E-mail a reset link when an active account has this address; say nothing either way.

    The link's token is Django's: it expires after PASSWORD_RESET_TIMEOUT and dies as soon as the
    password (or last_login) changes, so it works once.
    """
    user = _active_user_by_email(email)
    if user is None:
        log.info("password_reset_requested_for_unknown_email")
        return
    with transaction.atomic():
        record("auth.password_reset_requested", tenant=user.tenant, target=user, request=request)
    context = {
        "user": user,
        "reset_url": _reset_link(user),
        "valid_minutes": settings.PASSWORD_RESET_TIMEOUT // 60,
    }
    message = EmailMultiAlternatives(
        subject=render_to_string("emails/password_reset_subject.txt", context).strip(),
        body=render_to_string("emails/password_reset.txt", context),
        to=[user.email],
    )
    message.attach_alternative(render_to_string("emails/password_reset.html", context), "text/html")
    try:
        message.send()
    except Exception:  # a mail failure must not answer differently for existing accounts
        log.exception("password_reset_email_failed", user_id=str(user.pk))


def _user_from_uid(uid: str) -> User | None:
    try:
        pk = uuid.UUID(urlsafe_base64_decode(uid).decode())
    except (ValueError, TypeError, UnicodeDecodeError):
        return None
    return _users().filter(pk=pk, is_active=True).first()


def reset_password(*, uid: str, token: str, new_password: str, request=None) -> int:
    """Set a new password from a reset link; ends every session and lifts a lockout (the link
    proves control of the mailbox). Returns how many sessions were ended."""
    invalid = _field_error("token", "The reset link is invalid or has expired; ask for a new one.")
    user = _user_from_uid(uid)
    if user is None:
        raise invalid
    with transaction.atomic():
        # Locked and re-checked: two concurrent uses of one link cannot both pass.
        row = User.objects.select_for_update().get(pk=user.pk)
        if not default_token_generator.check_token(row, token):
            raise invalid
        _validate_new_password(new_password, row)
        row.set_password(new_password)
        row.failed_login_count, row.locked_until = 0, None
        row.save(update_fields=["password", "failed_login_count", "locked_until", "updated_at"])
        ended = revoke_sessions(user=row)
        record("auth.password_reset", actor=row, tenant=user.tenant, target=row, request=request,
               changes={"ended_sessions": ended})
    return ended


# --- MFA -----------------------------------------------------------------------------------------


def _normalize_recovery_code(raw: str) -> str:
    return "".join(raw.split()).replace("-", "").lower()


def _hash_recovery_code(raw: str) -> str:
    # Keyed (SECRET_KEY) and unsalted so the hash can be looked up; fine for ~59-bit random codes.
    return salted_hmac("aegis.accounts.recovery-code", _normalize_recovery_code(raw), algorithm="sha256").hexdigest()


def _new_recovery_codes(user: User) -> list[str]:
    """Replace every recovery code of `user` with a fresh set; the plain codes are returned once."""
    RecoveryCode.objects.filter(user=user).delete()
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = "".join(secrets.choice(RECOVERY_CODE_ALPHABET) for _ in range(RECOVERY_CODE_LENGTH))
        codes.append("-".join(raw[i:i + 4] for i in range(0, RECOVERY_CODE_LENGTH, 4)))
    RecoveryCode.objects.bulk_create([RecoveryCode(user=user, code_hash=_hash_recovery_code(c)) for c in codes])
    return codes


def _use_recovery_code(user: User, raw: str) -> bool:
    # One UPDATE: of two concurrent uses of a code, only one changes a row.
    now = timezone.now()
    return RecoveryCode.objects.filter(user=user, code_hash=_hash_recovery_code(raw), used_at__isnull=True).update(
        used_at=now, updated_at=now) == 1


def _recovery_codes_left(user: User) -> int:
    return RecoveryCode.objects.filter(user=user, used_at__isnull=True).count()


def _verify_totp(user: User, code: str, *, confirmed: bool = True) -> bool:
    """django-otp's check (with its replay guard `last_t` and its own failure back-off)."""
    devices = EncryptedTOTPDevice.objects.select_for_update().filter(user=user, confirmed=confirmed)
    return any(device.verify_token(code) for device in devices)


def start_mfa_setup(*, user: User, request=None) -> MfaSetup:
    """A new, unconfirmed TOTP device (replacing any earlier unconfirmed one). Its secret leaves
    the server only here, inside the otpauth URI and its QR code."""
    with transaction.atomic():
        row = User.objects.select_for_update().get(pk=user.pk)
        if row.mfa_enabled:
            raise _not_in_state("MFA is already enabled; disable it before setting up a new device.")
        replaced = EncryptedTOTPDevice.objects.filter(user=user, confirmed=False).delete()[0]
        device = EncryptedTOTPDevice.objects.create(user=row, name="Authenticator app", confirmed=False)
        record("auth.mfa_setup_started", actor=user, tenant=user.tenant, target=user, request=request,
               changes={"replaced_unconfirmed_devices": replaced})
    uri = device.config_url
    svg = qrcode.make(uri, image_factory=SvgPathImage, border=2).to_string(encoding="unicode")
    return MfaSetup(otpauth_uri=uri, qr_svg=svg)


def enable_mfa(*, user: User, code: str, request=None) -> list[str]:
    """Confirm the device from setup with a code from it; MFA is on from the next sign-in.
    Returns the recovery codes, shown this once."""
    error: ApiError | ValidationError | None = None
    codes: list[str] = []
    with transaction.atomic():
        row = User.objects.select_for_update().get(pk=user.pk)
        device = EncryptedTOTPDevice.objects.filter(user=user, confirmed=False).order_by("-created_at").first()
        if row.mfa_enabled:
            raise _not_in_state("MFA is already enabled.")
        if device is None:
            raise _not_in_state("There is no MFA setup to confirm; start with POST /api/v1/auth/mfa/setup.")
        if not _verify_totp(user, code, confirmed=False):
            # Not a lockout matter (the device is new), but its failure back-off must persist: no raise inside.
            error = _field_error("code", "The code is not valid; check the authenticator app's clock and try again.")
        else:
            EncryptedTOTPDevice.objects.filter(pk=device.pk).update(confirmed=True)
            row.mfa_enabled = True
            row.save(update_fields=["mfa_enabled", "updated_at"])
            codes = _new_recovery_codes(row)
            record("auth.mfa_enabled", actor=user, tenant=user.tenant, target=user, request=request,
                   changes={"mfa_enabled": {"before": False, "after": True}, "recovery_codes": len(codes)})
    if error is not None:
        raise error
    user.mfa_enabled = True
    return codes


def disable_mfa(*, user: User, password: str, code: str | None = None, recovery_code: str | None = None,
                request=None) -> None:
    """Turn MFA off (password and a TOTP or recovery code needed): devices and recovery codes go.
    Platform admins may not: they are TOTP-only; an operator replaces a lost device."""
    if user.is_platform_admin:
        raise ApiError(403, ErrorCode.PERMISSION_DENIED,
                       "Platform admins cannot turn MFA off; an operator can replace the device "
                       "(`manage.py enroll_totp --replace`).")
    if not user.mfa_enabled:
        raise _not_in_state("MFA is not enabled.")
    _recheck_password(user=user, password=password, purpose="mfa_disable", request=request)
    error: ApiError | ValidationError | None = None
    with transaction.atomic():
        row = User.objects.select_for_update().get(pk=user.pk)
        verified = _verify_totp(row, code) if code else _use_recovery_code(row, recovery_code or "")
        if not verified:
            field = "code" if code else "recovery_code"
            until = _register_failure(user=user, reason=f"bad_{'totp' if code else 'recovery_code'}",
                                      purpose="mfa_disable", request=request)
            error = _locked(until) if until else _field_error(field, "The code is wrong or already used.")
        else:
            devices = EncryptedTOTPDevice.objects.filter(user=row).delete()[0]
            RecoveryCode.objects.filter(user=row).delete()
            row.mfa_enabled = False
            row.save(update_fields=["mfa_enabled", "updated_at"])
            record("auth.mfa_disabled", actor=user, tenant=user.tenant, target=user, request=request,
                   changes={"mfa_enabled": {"before": True, "after": False}, "removed_devices": devices,
                            "with": "totp" if code else "recovery_code"})
    if error is not None:
        raise error
    user.mfa_enabled = False


def regenerate_recovery_codes(*, user: User, code: str, request=None) -> list[str]:
    """A fresh set of recovery codes (a TOTP code needed); every earlier code stops working."""
    if not user.mfa_enabled:
        raise _not_in_state("MFA is not enabled.")
    if until := _lock_end(user):
        raise _locked(until)
    error: ApiError | ValidationError | None = None
    codes: list[str] = []
    with transaction.atomic():
        row = User.objects.select_for_update().get(pk=user.pk)
        if not _verify_totp(row, code):
            until = _register_failure(user=user, reason="bad_totp", purpose="recovery_codes", request=request)
            error = _locked(until) if until else _field_error("code", "The code is wrong or already used.")
        else:
            codes = _new_recovery_codes(row)
            record("auth.recovery_codes_regenerated", actor=user, tenant=user.tenant, target=user, request=request,
                   changes={"recovery_codes": len(codes)})
    if error is not None:
        raise error
    return codes
