"""/api/v1/auth/: sign-in, lockout, sessions (rotation, re-use, logout), throttling, and the
authorization matrix of every auth endpoint. MFA, profile and passwords: test_auth_account.py;
the concurrent-refresh race: test_auth_concurrency.py."""

from __future__ import annotations

import json
import time
import uuid
from binascii import unhexlify

import pytest
from django.core import mail
from django.core.cache.backends.base import CacheKeyWarning
from django.utils import timezone
from django_otp.oath import TOTP
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle
from rest_framework_simplejwt.tokens import AccessToken
from rest_framework_simplejwt.tokens import RefreshToken as RefreshJWT

from apps.accounts import sessions
from apps.accounts.models import EncryptedTOTPDevice, RefreshToken, Role, TeamMember, User
from apps.accounts.services import add_member
from apps.audit.models import AuditLog
from apps.tenants import services as tenant_services
from tests.api.conftest import Callers
from tests.api.matrix import CALLERS, Row, matrix_test

LOGIN = "/api/v1/auth/login"
MFA_VERIFY = "/api/v1/auth/mfa/verify"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/auth/me"
PASSWORD_CHANGE = "/api/v1/auth/password/change"
PASSWORD_FORGOT = "/api/v1/auth/password/forgot"
PASSWORD_RESET = "/api/v1/auth/password/reset"
MFA_SETUP = "/api/v1/auth/mfa/setup"
MFA_ENABLE = "/api/v1/auth/mfa/enable"
MFA_DISABLE = "/api/v1/auth/mfa/disable"
RECOVERY_CODES = "/api/v1/auth/mfa/recovery-codes"

PASSWORD = "correct-horse-battery"  # tests/conftest.py's users
NEW_PASSWORD = "a-brand-new-passphrase-42"


# --- Shared helpers (test_auth_account.py and test_auth_concurrency.py import them) --------------


@pytest.fixture(autouse=True)
def own_cache_namespace(settings) -> None:
    """Throttle counters and MFA-token nonces live in the Redis cache, which every test run, the
    Celery broker and Channels on this machine share: a key prefix of its own per test isolates a
    test without FLUSHDB (cache.clear() would wipe everyone else's state too)."""
    settings.CACHES = {"default": {**settings.CACHES["default"], "KEY_PREFIX": f"aegis-test-{uuid.uuid4().hex}"}}


# Registered as `member`; the function's own name differs so that a module importing it can take
# `member` as an argument without shadowing the import.
@pytest.fixture(name="member")
def member_fixture(tenant_a) -> User:
    return add_member(tenant=tenant_a, email="mulder@acme.example", password=PASSWORD, name="Fox Mulder",
                      role=Role.TENANT_MEMBER)


def post(client: APIClient, url: str, body: dict | None = None, **extra):
    return client.post(url, body or {}, format="json", **extra)


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details", "requestId"}, body
    return body["error"]


def sign_in(user: User, password: str = PASSWORD, client: APIClient | None = None) -> dict:
    response = post(client or APIClient(), LOGIN, {"email": user.email, "password": password})
    assert response.status_code == 200, response.content
    return response.json()


def bearer(access_token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token}")
    return client


def newest_device(user: User) -> EncryptedTOTPDevice:
    return EncryptedTOTPDevice.objects.filter(user=user).order_by("-created_at").first()


def totp_code(user: User) -> str:
    """The current code of the user's newest TOTP device, as an authenticator app shows it."""
    device = newest_device(user)
    totp = TOTP(unhexlify(device.key.encode()), device.step, 0, device.digits, device.drift)
    totp.time = time.time()
    return str(totp.token()).zfill(device.digits)


def wrong_code(user: User) -> str:
    """A well-formed code the device will refuse (none of the steps its tolerance accepts)."""
    device = newest_device(user)
    totp = TOTP(unhexlify(device.key.encode()), device.step, 0, device.digits, device.drift)
    accepted = set()
    for offset in range(-device.tolerance - 1, device.tolerance + 2):
        totp.time = time.time() + offset * device.step
        accepted.add(totp.token())
    return next(str(n).zfill(device.digits) for n in range(10**device.digits) if n not in accepted)


def allow_next_code(user: User) -> None:
    """As if the next 30-second step had come and django-otp's back-off had passed: a code is
    accepted once per step, so a test needing several lets time "move" this way."""
    EncryptedTOTPDevice.objects.filter(user=user).update(last_t=-1, drift=0, throttling_failure_count=0,
                                                         throttling_failure_timestamp=None)


def turn_on_mfa(user: User) -> list[str]:
    sessions.start_mfa_setup(user=user)
    codes = sessions.enable_mfa(user=user, code=totp_code(user))
    allow_next_code(user)
    return codes


def mfa_challenge(user: User, password: str = PASSWORD) -> str:
    body = sign_in(user, password)
    assert body["mfaRequired"] is True, body
    return body["mfaToken"]


def audit(action: str, user: User | None = None):
    rows = AuditLog.objects.filter(action=action)
    return rows.filter(target_id=str(user.pk)) if user is not None else rows


def set_rate(monkeypatch, scope: str, rate: str) -> None:
    # DRF reads rates into a class attribute at import; patch that dict (restored after the test).
    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, scope, rate)


@pytest.fixture
def mfa_admin(platform_admin) -> User:
    """A platform admin with TOTP enrolled (they cannot sign in without it)."""
    turn_on_mfa(platform_admin)
    return platform_admin


# --- Login --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_login_returns_a_session_and_the_profile(member):
    response = post(APIClient(), LOGIN, {"email": "Mulder@Acme.example", "password": PASSWORD},
                    HTTP_USER_AGENT="pytest-browser", HTTP_X_REQUEST_ID="req-login-1")

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"accessToken", "refreshToken", "accessExpiresAt", "refreshExpiresAt", "mfaVerified", "user"}
    assert body["mfaVerified"] is False
    assert body["user"] == {
        "id": str(member.pk), "email": "mulder@acme.example", "name": "Fox Mulder", "role": "tenant_member",
        "tenantId": str(member.tenant_id), "mfaEnabled": False,
        "lastLoginAt": body["user"]["lastLoginAt"], "createdAt": body["user"]["createdAt"],
    }
    access = AccessToken(body["accessToken"])
    assert (access["sub"], access["role"], access["tid"], access["mfa"]) == (
        str(member.pk), "tenant_member", str(member.tenant_id), False)
    refresh = RefreshJWT(body["refreshToken"])
    row = RefreshToken.objects.get(jti=refresh["jti"])
    assert (row.user, row.tenant_id, str(row.family), row.user_agent, row.ip, row.revoked_at) == (
        member, member.tenant_id, access["sid"], "pytest-browser", "127.0.0.1", None)
    assert row.expires_at.timestamp() == refresh["exp"]

    member.refresh_from_db()
    assert member.last_login is not None and body["user"]["lastLoginAt"] is not None
    entry = audit("auth.login_succeeded", member).get()
    assert (entry.actor_user, entry.tenant_id, entry.ip, entry.user_agent, entry.request_id) == (
        member, member.tenant_id, "127.0.0.1", "pytest-browser", "req-login-1")
    assert entry.changes == {"method": "password", "mfa_verified": False, "session": str(row.family)}


@pytest.mark.django_db
def test_the_access_token_authenticates_and_a_stale_header_does_not_block_login(member):
    stale = bearer("not-a-jwt")  # e.g. a browser still sending an expired token
    body = sign_in(member, client=stale)

    response = bearer(body["accessToken"]).get(ME)
    assert response.status_code == 200
    assert response.json()["email"] == member.email


@pytest.mark.django_db
def test_wrong_password_unknown_email_and_inactive_account_get_the_same_answer(member, tenant_a):
    inactive = add_member(tenant=tenant_a, email="gone@acme.example", password=PASSWORD, role=Role.TENANT_MEMBER)
    User.objects.filter(pk=inactive.pk).update(is_active=False)

    answers = [
        post(APIClient(), LOGIN, {"email": member.email, "password": "wrong-password"}),
        post(APIClient(), LOGIN, {"email": "nobody@acme.example", "password": "wrong-password"}),
        post(APIClient(), LOGIN, {"email": inactive.email, "password": PASSWORD}),
    ]

    assert {r.status_code for r in answers} == {401}
    errors = [error_of(r) for r in answers]
    assert {(e["code"], e["message"], json.dumps(e["details"])) for e in errors} == {
        ("INVALID_CREDENTIALS", "The email or password is incorrect.", "{}")}
    assert audit("auth.login_failed", member).get().changes == {
        "email": member.email, "reason": "bad_password", "failed_attempts": 1}
    assert audit("auth.login_failed").filter(changes__email="nobody@acme.example").count() == 1


@pytest.mark.django_db
def test_login_validates_its_body():
    response = post(APIClient(), LOGIN, {"email": "not-an-address"})

    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "VALIDATION_ERROR"
    assert set(error["details"]) == {"email", "password"}


@pytest.mark.django_db
def test_repeated_failures_lock_the_account_and_write_an_audit_row(member, settings):
    threshold = settings.LOGIN_LOCKOUT_THRESHOLD
    for _ in range(threshold - 1):
        assert post(APIClient(), LOGIN, {"email": member.email, "password": "nope-nope"}).status_code == 401

    locking = post(APIClient(), LOGIN, {"email": member.email, "password": "nope-nope"})

    assert locking.status_code == 403
    error = error_of(locking)
    assert error["code"] == "ACCOUNT_LOCKED"
    member.refresh_from_db()
    assert member.locked_until is not None and error["details"]["lockedUntil"] == sessions._iso(member.locked_until)
    locked = audit("auth.account_locked", member).get()
    assert locked.changes == {"locked_until": error["details"]["lockedUntil"], "failed_attempts": threshold}
    assert locked.tenant_id == member.tenant_id

    # While locked, even the right password is refused (and not checked).
    right = post(APIClient(), LOGIN, {"email": member.email, "password": PASSWORD})
    assert right.status_code == 403 and error_of(right)["code"] == "ACCOUNT_LOCKED"

    # Once the period is over, the right password works and the count starts again.
    User.objects.filter(pk=member.pk).update(locked_until=timezone.now() - settings.LOGIN_LOCKOUT_PERIOD)
    sign_in(member)
    member.refresh_from_db()
    assert (member.failed_login_count, member.locked_until) == (0, None)


@pytest.mark.django_db
def test_a_successful_login_resets_the_failure_count(member):
    post(APIClient(), LOGIN, {"email": member.email, "password": "nope-nope"})
    post(APIClient(), LOGIN, {"email": member.email, "password": "nope-nope"})
    member.refresh_from_db()
    assert member.failed_login_count == 2

    sign_in(member)

    member.refresh_from_db()
    assert member.failed_login_count == 0


@pytest.mark.django_db
def test_an_unknown_email_locks_like_a_real_account(settings):
    """ACCOUNT_LOCKED must not reveal that an account exists."""
    answers = [post(APIClient(), LOGIN, {"email": "ghost@acme.example", "password": "nope-nope"})
               for _ in range(settings.LOGIN_LOCKOUT_THRESHOLD + 1)]

    assert [r.status_code for r in answers] == [401] * (settings.LOGIN_LOCKOUT_THRESHOLD - 1) + [403, 403]
    assert {error_of(r)["code"] for r in answers[-2:]} == {"ACCOUNT_LOCKED"}
    assert set(error_of(answers[-1])["details"]) == {"lockedUntil"}


@pytest.mark.django_db
def test_platform_admin_without_totp_is_refused_only_once_the_password_is_right(platform_admin):
    wrong = post(APIClient(), LOGIN, {"email": platform_admin.email, "password": "nope-nope"})
    assert wrong.status_code == 401

    right = post(APIClient(), LOGIN, {"email": platform_admin.email, "password": PASSWORD})

    assert right.status_code == 403
    assert error_of(right)["code"] == "MFA_REQUIRED"
    assert "enroll_totp" in error_of(right)["message"]
    assert not RefreshToken.objects.filter(user=platform_admin).exists()
    assert audit("auth.login_refused", platform_admin).get().changes == {"reason": "mfa_required"}


@pytest.mark.django_db
def test_platform_admin_with_totp_gets_an_mfa_verified_session(mfa_admin):
    token = mfa_challenge(mfa_admin)

    response = post(APIClient(), MFA_VERIFY, {"mfaToken": token, "code": totp_code(mfa_admin)})

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["mfaVerified"] is True
    access = AccessToken(body["accessToken"])
    assert (access["role"], access["tid"], access["mfa"]) == ("platform_admin", None, True)


@pytest.mark.django_db
@pytest.mark.parametrize(("change", "code"), [
    ("tenant_suspended", "TENANT_SUSPENDED"),
    ("tenant_decommissioned", "TENANT_DECOMMISSIONED"),
    ("membership_suspended", "PERMISSION_DENIED"),
])
def test_a_suspended_tenant_or_membership_cannot_sign_in(member, tenant_a, change, code):
    if change == "tenant_suspended":
        tenant_services.suspend(tenant_a, reason="unpaid")
    elif change == "tenant_decommissioned":
        tenant_services.decommission(tenant_a)
    else:
        TeamMember.objects.filter(user=member).update(status=TeamMember.Status.SUSPENDED)

    response = post(APIClient(), LOGIN, {"email": member.email, "password": PASSWORD})

    assert response.status_code == 403
    assert error_of(response)["code"] == code
    assert not RefreshToken.objects.filter(user=member).exists()


# --- Refresh tokens -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_refresh_rotates_the_token_within_its_session(member):
    first = sign_in(member)

    response = post(APIClient(), REFRESH, {"refreshToken": first["refreshToken"]})

    assert response.status_code == 200, response.content
    second = response.json()
    assert second["refreshToken"] != first["refreshToken"] and second["user"]["id"] == str(member.pk)
    old = RefreshToken.objects.get(jti=RefreshJWT(first["refreshToken"])["jti"])
    new = RefreshToken.objects.get(jti=RefreshJWT(second["refreshToken"])["jti"])
    assert old.revoked_at is not None and old.replaced_by == new
    assert new.family == old.family and new.revoked_at is None
    assert AccessToken(second["accessToken"])["sid"] == str(old.family)
    assert bearer(second["accessToken"]).get(ME).status_code == 200


@pytest.mark.django_db
def test_reusing_a_rotated_refresh_token_revokes_its_whole_family(member):
    stolen = sign_in(member)
    other_device = sign_in(member)
    rotated = post(APIClient(), REFRESH, {"refreshToken": stolen["refreshToken"]}).json()

    reuse = post(APIClient(), REFRESH, {"refreshToken": stolen["refreshToken"]}, HTTP_X_REQUEST_ID="req-reuse")

    assert reuse.status_code == 401
    assert error_of(reuse)["code"] == "TOKEN_REUSED"
    family = RefreshToken.objects.get(jti=RefreshJWT(stolen["refreshToken"])["jti"]).family
    assert not RefreshToken.objects.filter(family=family, revoked_at__isnull=True).exists()
    # The legitimate holder's rotated token is dead too: the thief cannot keep the session.
    after = post(APIClient(), REFRESH, {"refreshToken": rotated["refreshToken"]})
    assert after.status_code == 401 and error_of(after)["code"] == "TOKEN_REUSED"
    # Another session of the same account is not touched.
    assert post(APIClient(), REFRESH, {"refreshToken": other_device["refreshToken"]}).status_code == 200

    entry = audit("auth.refresh_token_reused", member).order_by("created_at").first()
    assert (entry.tenant_id, entry.request_id, entry.changes["session"], entry.changes["revoked_tokens"]) == (
        member.tenant_id, "req-reuse", str(family), 1)


@pytest.mark.django_db
def test_two_refreshes_of_one_token_exactly_one_wins(member):
    """Sequential form of the race (the threaded one is in test_auth_concurrency.py): the row is
    locked for the rotation, so the second always finds it rotated."""
    session = sign_in(member)

    answers = [post(APIClient(), REFRESH, {"refreshToken": session["refreshToken"]}) for _ in range(2)]

    assert sorted(r.status_code for r in answers) == [200, 401]
    assert RefreshToken.objects.filter(user=member, replaced_by__isnull=False).count() == 1


@pytest.mark.django_db
def test_refresh_refuses_tokens_that_are_not_live_refresh_tokens(member):
    session = sign_in(member)
    forged = RefreshJWT.for_user(member)  # well signed, never issued (no row)
    forged["sid"] = str(uuid.uuid4())

    for token in ("garbage", session["accessToken"], str(forged)):
        response = post(APIClient(), REFRESH, {"refreshToken": token})
        assert response.status_code == 401, token
        assert error_of(response)["code"] == "TOKEN_INVALID"

    User.objects.filter(pk=member.pk).update(is_active=False)
    deactivated = post(APIClient(), REFRESH, {"refreshToken": session["refreshToken"]})
    assert deactivated.status_code == 401 and error_of(deactivated)["code"] == "TOKEN_INVALID"


@pytest.mark.django_db
def test_refresh_keeps_the_session_mfa_state_and_ignores_a_stale_header(member):
    turn_on_mfa(member)
    verified = post(APIClient(), MFA_VERIFY, {"mfaToken": mfa_challenge(member), "code": totp_code(member)}).json()

    response = post(bearer("expired.or.bogus"), REFRESH, {"refreshToken": verified["refreshToken"]})

    assert response.status_code == 200
    assert response.json()["mfaVerified"] is True and AccessToken(response.json()["accessToken"])["mfa"] is True


@pytest.mark.django_db
def test_refresh_is_refused_when_the_tenant_is_suspended(member):
    session = sign_in(member)
    tenant_services.suspend(member.tenant, reason="unpaid")

    response = post(APIClient(), REFRESH, {"refreshToken": session["refreshToken"]})

    assert response.status_code == 403 and error_of(response)["code"] == "TENANT_SUSPENDED"


# --- Logout ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_logout_ends_this_session_only(member):
    this, other = sign_in(member), sign_in(member)
    post(APIClient(), REFRESH, {"refreshToken": this["refreshToken"]})  # the session has two rows now

    response = post(APIClient(), LOGOUT, {"refreshToken": this["refreshToken"]})

    assert response.status_code == 204 and response.content == b""
    family = AccessToken(this["accessToken"])["sid"]
    assert not RefreshToken.objects.filter(family=family, revoked_at__isnull=True).exists()
    assert post(APIClient(), REFRESH, {"refreshToken": other["refreshToken"]}).status_code == 200
    assert audit("auth.logged_out", member).get().changes == {
        "all_devices": False, "session": family, "ended_sessions": 1}


@pytest.mark.django_db
def test_logout_everywhere_ends_every_session_of_the_account(member, tenant_admin):
    sessions_ = [sign_in(member) for _ in range(3)]
    bystander = sign_in(tenant_admin)

    response = post(APIClient(), LOGOUT, {"refreshToken": sessions_[0]["refreshToken"], "allDevices": True})

    assert response.status_code == 204
    assert not RefreshToken.objects.filter(user=member, revoked_at__isnull=True).exists()
    assert RefreshToken.objects.filter(user=tenant_admin, revoked_at__isnull=True).count() == 1
    assert post(APIClient(), REFRESH, {"refreshToken": bystander["refreshToken"]}).status_code == 200
    assert audit("auth.logged_out", member).get().changes["ended_sessions"] == 3


@pytest.mark.django_db
def test_a_dead_refresh_token_cannot_end_other_sessions(member):
    first = sign_in(member)
    post(APIClient(), LOGOUT, {"refreshToken": first["refreshToken"]})
    other = sign_in(member)

    response = post(APIClient(), LOGOUT, {"refreshToken": first["refreshToken"], "allDevices": True})

    assert response.status_code == 401 and error_of(response)["code"] == "TOKEN_INVALID"
    assert post(APIClient(), REFRESH, {"refreshToken": other["refreshToken"]}).status_code == 200
    # Ending the already ended session again is harmless.
    assert post(APIClient(), LOGOUT, {"refreshToken": first["refreshToken"]}).status_code == 204


# --- Throttling ---------------------------------------------------------------------------------


def assert_rate_limited(response) -> None:
    assert response.status_code == 429, response.content
    error = error_of(response)
    assert error["code"] == "RATE_LIMITED"
    assert int(response["Retry-After"]) > 0
    assert error["details"]["retryAfterSeconds"] == int(response["Retry-After"])


@pytest.mark.django_db
def test_login_is_throttled_per_account_whatever_the_ip(member, monkeypatch):
    set_rate(monkeypatch, "login_account", "2/min")
    for ip in ("10.0.0.1", "10.0.0.2"):
        post(APIClient(), LOGIN, {"email": member.email, "password": "nope-nope"}, REMOTE_ADDR=ip)

    assert_rate_limited(post(APIClient(), LOGIN, {"email": member.email, "password": PASSWORD},
                             REMOTE_ADDR="10.0.0.3"))
    # Another account is not affected.
    assert post(APIClient(), LOGIN, {"email": "other@acme.example", "password": "x"}).status_code == 401


@pytest.mark.django_db
def test_the_per_account_bucket_is_keyed_by_a_hash_of_the_address(member, monkeypatch, recwarn):
    # Found by tests/api/test_openapi_fuzz.py: the raw address made the cache key (any length or characters).
    set_rate(monkeypatch, "login_account", "1/min")
    post(APIClient(), LOGIN, {"email": "x" * 300 + "@acme.example", "password": "nope-nope"})
    post(APIClient(), LOGIN, {"email": f" {member.email.upper()} ", "password": "nope-nope"})

    assert_rate_limited(post(APIClient(), LOGIN, {"email": member.email, "password": PASSWORD},
                             REMOTE_ADDR="10.0.0.3"))  # the same account, however the address is spelt
    assert not [w for w in recwarn if issubclass(w.category, CacheKeyWarning)]


@pytest.mark.django_db
def test_login_is_throttled_per_ip_whatever_the_account(monkeypatch):
    set_rate(monkeypatch, "login_ip", "2/min")
    for n in range(2):
        post(APIClient(), LOGIN, {"email": f"user{n}@acme.example", "password": "nope-nope"})

    assert_rate_limited(post(APIClient(), LOGIN, {"email": "user9@acme.example", "password": "nope-nope"}))
    assert post(APIClient(), LOGIN, {"email": "user9@acme.example", "password": "x"},
                REMOTE_ADDR="10.9.9.9").status_code == 401


@pytest.mark.django_db
def test_mfa_verify_is_throttled_per_account(member, monkeypatch):
    turn_on_mfa(member)
    token = mfa_challenge(member)
    set_rate(monkeypatch, "login_account", "2/min")
    for ip in ("10.0.0.1", "10.0.0.2"):
        post(APIClient(), MFA_VERIFY, {"mfaToken": token, "code": wrong_code(member)}, REMOTE_ADDR=ip)

    assert_rate_limited(post(APIClient(), MFA_VERIFY, {"mfaToken": token, "code": totp_code(member)},
                             REMOTE_ADDR="10.0.0.3"))


@pytest.mark.django_db
def test_password_forgot_and_reset_are_throttled(member, monkeypatch):
    set_rate(monkeypatch, "login_account", "1/min")
    assert post(APIClient(), PASSWORD_FORGOT, {"email": member.email}).status_code == 202
    assert_rate_limited(post(APIClient(), PASSWORD_FORGOT, {"email": member.email}, REMOTE_ADDR="10.0.0.2"))
    assert len(mail.outbox) == 1

    reset = {"uid": "some-uid", "token": "x-y", "newPassword": NEW_PASSWORD}
    assert post(APIClient(), PASSWORD_RESET, reset).status_code == 400
    assert_rate_limited(post(APIClient(), PASSWORD_RESET, reset, REMOTE_ADDR="10.0.0.2"))

    set_rate(monkeypatch, "login_account", "100/min")
    set_rate(monkeypatch, "login_ip", "1/min")
    assert post(APIClient(), PASSWORD_FORGOT, {"email": "a@acme.example"}, REMOTE_ADDR="10.7.7.7").status_code == 202
    assert_rate_limited(post(APIClient(), PASSWORD_FORGOT, {"email": "b@acme.example"}, REMOTE_ADDR="10.7.7.7"))


# --- Authorization matrix -------------------------------------------------------------------------

SIGNED_IN = {"platform_admin", "tenant_admin", "tenant_member", "other_tenant_admin"}
EVERYONE = set(CALLERS)  # credentials are in the body: who calls does not matter


def _member_credentials(ctx: Callers) -> dict:
    return {"email": ctx.user("tenant_member").email, "password": Callers.PASSWORD}


def _mfa_step(ctx: Callers) -> dict:
    user = add_member(tenant=ctx.tenant_a, email="mfa@a.example", password=Callers.PASSWORD, role=Role.TENANT_MEMBER)
    turn_on_mfa(user)
    return {"mfaToken": mfa_challenge(user, Callers.PASSWORD), "code": totp_code(user)}


def _member_refresh_token(ctx: Callers) -> dict:
    session = sessions.login(email=ctx.user("tenant_member").email, password=Callers.PASSWORD)
    return {"refreshToken": session.refresh_token}


def _member_reset_link(ctx: Callers) -> dict:
    from django.contrib.auth.tokens import default_token_generator
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    user = ctx.user("tenant_member")
    return {"uid": urlsafe_base64_encode(force_bytes(user.pk)), "token": default_token_generator.make_token(user),
            "newPassword": NEW_PASSWORD}


ROWS = [
    Row("POST", LOGIN, allowed=EVERYONE, body=_member_credentials),
    Row("POST", MFA_VERIFY, allowed=EVERYONE, body=_mfa_step),
    Row("POST", REFRESH, allowed=EVERYONE, body=_member_refresh_token),
    Row("POST", LOGOUT, allowed=EVERYONE, body=_member_refresh_token, ok=204),
    Row("POST", PASSWORD_FORGOT, allowed=EVERYONE, body={"email": "nobody@nowhere.example"}, ok=202),
    Row("POST", PASSWORD_RESET, allowed=EVERYONE, body=_member_reset_link, ok=204),
    # Platform admins need a TOTP-verified token everywhere: platform_admin_no_mfa is refused (403).
    Row("GET", ME, allowed=SIGNED_IN),
    Row("PATCH", ME, allowed=SIGNED_IN, body={"name": "Renamed"}),
    Row("POST", PASSWORD_CHANGE, allowed=SIGNED_IN, ok=204,
        body={"currentPassword": Callers.PASSWORD, "newPassword": NEW_PASSWORD}),
    Row("POST", MFA_SETUP, allowed=SIGNED_IN),
    # Allowed callers get past authorization to the state check: no setup started / MFA not on.
    Row("POST", MFA_ENABLE, allowed=SIGNED_IN, ok=409, body={"code": "123456"}),
    Row("POST", RECOVERY_CODES, allowed=SIGNED_IN, ok=409, body={"code": "123456"}),
    # Platform admins may not turn MFA off at all (403 from the rule, not the policy).
    Row("POST", MFA_DISABLE, allowed=SIGNED_IN - {"platform_admin"}, ok=409,
        body={"password": Callers.PASSWORD, "code": "123456"}),
]

test_matrix = matrix_test(ROWS)
