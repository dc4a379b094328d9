"""/api/v1/auth/: the signed-in person's profile, password change, forgotten passwords, and MFA
(setup, enable, sign-in with TOTP and recovery codes, disable, new recovery codes)."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pytest
from django.core import mail
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from apps.accounts.models import EncryptedTOTPDevice, RecoveryCode, RefreshToken, Role, User
from apps.accounts.services import add_member
from apps.audit.models import AuditLog
from tests.api.test_auth import (
    LOGIN,
    ME,
    MFA_DISABLE,
    MFA_ENABLE,
    MFA_SETUP,
    MFA_VERIFY,
    NEW_PASSWORD,
    PASSWORD,
    PASSWORD_CHANGE,
    PASSWORD_FORGOT,
    PASSWORD_RESET,
    RECOVERY_CODES,
    REFRESH,
    allow_next_code,
    audit,
    bearer,
    error_of,
    member_fixture,  # noqa: F401 (fixture)
    mfa_challenge,
    newest_device,
    own_cache_namespace,  # noqa: F401 (autouse fixture)
    post,
    sign_in,
    totp_code,
    turn_on_mfa,
    wrong_code,
)


@pytest.fixture
def member_client(member) -> APIClient:
    return bearer(sign_in(member)["accessToken"])


def assert_field_error(response, field: str) -> None:
    assert response.status_code == 400, response.content
    error = error_of(response)
    assert error["code"] == "VALIDATION_ERROR"
    assert field in error["details"], error


# --- Profile ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_me_shows_the_profile_and_patch_changes_only_the_name(member, member_client):
    shown = member_client.get(ME).json()
    assert set(shown) == {"id", "email", "name", "role", "tenantId", "mfaEnabled", "lastLoginAt", "createdAt"}

    # E-mail and role are not the user's to change: refused by name, not silently dropped.
    refused = member_client.patch(ME, {"name": "Fox W. Mulder", "email": "evil@x.example", "role": "tenant_admin"},
                                  format="json")
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "VALIDATION_ERROR"
    assert {"email", "role"} <= set(refused.json()["error"]["details"])
    member.refresh_from_db()
    assert (member.name, member.email, member.role) == ("Fox Mulder", "mulder@acme.example", "tenant_member")

    response = member_client.patch(ME, {"name": "Fox W. Mulder"}, format="json")

    assert response.status_code == 200
    assert response.json() == {**shown, "name": "Fox W. Mulder"}
    member.refresh_from_db()
    assert (member.name, member.email, member.role) == ("Fox W. Mulder", "mulder@acme.example", "tenant_member")
    entry = audit("user.profile_updated", member).get()
    assert (entry.actor_user, entry.changes) == (member, {"name": {"before": "Fox Mulder", "after": "Fox W. Mulder"}})


@pytest.mark.django_db
def test_patch_me_validates_the_name(member_client):
    assert_field_error(member_client.patch(ME, {"name": ""}, format="json"), "name")
    assert_field_error(member_client.patch(ME, {"name": "x" * 201}, format="json"), "name")


# --- Password change ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_password_change_keeps_this_session_and_ends_the_others(member):
    current = sign_in(member)
    others = [sign_in(member), sign_in(member)]

    response = post(bearer(current["accessToken"]), PASSWORD_CHANGE,
                    {"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD})

    assert response.status_code == 204
    assert post(APIClient(), LOGIN, {"email": member.email, "password": PASSWORD}).status_code == 401
    sign_in(member, NEW_PASSWORD)
    assert post(APIClient(), REFRESH, {"refreshToken": current["refreshToken"]}).status_code == 200
    for other in others:
        assert post(APIClient(), REFRESH, {"refreshToken": other["refreshToken"]}).status_code == 401
    entry = audit("auth.password_changed", member).get()
    assert entry.changes == {"ended_sessions": 2}
    assert PASSWORD not in json.dumps(entry.changes) and NEW_PASSWORD not in json.dumps(entry.changes)


@pytest.mark.django_db
def test_password_change_refuses_a_wrong_current_password_and_counts_it(member, member_client):
    response = post(member_client, PASSWORD_CHANGE, {"currentPassword": "not-it-at-all", "newPassword": NEW_PASSWORD})

    assert_field_error(response, "currentPassword")
    member.refresh_from_db()
    assert member.failed_login_count == 1
    assert audit("auth.reauthentication_failed", member).get().changes == {
        "purpose": "password_change", "reason": "bad_password", "failed_attempts": 1}


@pytest.mark.django_db
def test_password_change_runs_the_password_validators(member, member_client):
    for weak in ("short", "1234567890123", "mulder@acme.example"):
        response = post(member_client, PASSWORD_CHANGE, {"currentPassword": PASSWORD, "newPassword": weak})
        assert_field_error(response, "newPassword")
    member.refresh_from_db()
    assert member.check_password(PASSWORD)


@pytest.mark.django_db
def test_password_change_is_refused_while_the_account_is_locked(member, member_client, settings):
    for _ in range(settings.LOGIN_LOCKOUT_THRESHOLD - 1):
        post(member_client, PASSWORD_CHANGE, {"currentPassword": "not-it-at-all", "newPassword": NEW_PASSWORD})

    locking = post(member_client, PASSWORD_CHANGE, {"currentPassword": "not-it-at-all", "newPassword": NEW_PASSWORD})
    assert locking.status_code == 403 and error_of(locking)["code"] == "ACCOUNT_LOCKED"

    right = post(member_client, PASSWORD_CHANGE, {"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD})
    assert right.status_code == 403 and error_of(right)["code"] == "ACCOUNT_LOCKED"
    assert audit("auth.account_locked", member).count() == 1


# --- Forgotten password -------------------------------------------------------------------------


def reset_link_params(message) -> dict:
    url = re.search(r"https?://\S+", message.body).group(0)
    query = parse_qs(urlparse(url).query)
    return {"uid": query["uid"][0], "token": query["token"][0]}


@pytest.mark.django_db
def test_forgot_password_answers_202_for_every_address_and_mails_only_real_accounts(member, tenant_a):
    inactive = add_member(tenant=tenant_a, email="gone@acme.example", password=PASSWORD, role=Role.TENANT_MEMBER)
    User.objects.filter(pk=inactive.pk).update(is_active=False)

    answers = [post(APIClient(), PASSWORD_FORGOT, {"email": email})
               for email in ("nobody@acme.example", inactive.email, "MULDER@acme.example")]

    assert [(r.status_code, r.content) for r in answers] == [(202, b"")] * 3
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [member.email]
    assert message.subject == "Reset your Aegis password"
    assert "Fox Mulder" in message.body and "60 minutes" in message.body
    html = message.alternatives[0][0]
    params = reset_link_params(message)
    assert params["token"] in html and "&amp;token=" in html  # escaped in HTML, plain in text
    assert audit("auth.password_reset_requested", member).count() == 1
    assert not AuditLog.objects.filter(action="auth.password_reset_requested").exclude(target_id=str(member.pk))


@pytest.mark.django_db
def test_forgot_password_validates_the_address():
    assert_field_error(post(APIClient(), PASSWORD_FORGOT, {"email": "not an address"}), "email")


@pytest.mark.django_db
def test_reset_sets_the_password_ends_sessions_lifts_the_lock_and_works_once(member, settings):
    session = sign_in(member)
    post(APIClient(), PASSWORD_FORGOT, {"email": member.email})
    params = reset_link_params(mail.outbox[0])
    for _ in range(settings.LOGIN_LOCKOUT_THRESHOLD):
        post(APIClient(), LOGIN, {"email": member.email, "password": "nope-nope"})
    member.refresh_from_db()
    assert member.locked_until is not None

    response = post(APIClient(), PASSWORD_RESET, {**params, "newPassword": NEW_PASSWORD})

    assert response.status_code == 204
    assert post(APIClient(), REFRESH, {"refreshToken": session["refreshToken"]}).status_code == 401
    assert not RefreshToken.objects.filter(user=member, revoked_at__isnull=True).exists()
    sign_in(member, NEW_PASSWORD)  # not locked any more
    assert audit("auth.password_reset", member).get().changes == {"ended_sessions": 1}

    again = post(APIClient(), PASSWORD_RESET, {**params, "newPassword": "yet-another-passphrase"})
    assert_field_error(again, "token")


@pytest.mark.django_db
def test_reset_refuses_bad_expired_or_outdated_links_and_weak_passwords(member, settings):
    post(APIClient(), PASSWORD_FORGOT, {"email": member.email})
    params = reset_link_params(mail.outbox[0])

    assert_field_error(post(APIClient(), PASSWORD_RESET, {**params, "token": "1-2", "newPassword": NEW_PASSWORD}),
                       "token")
    assert_field_error(post(APIClient(), PASSWORD_RESET, {"uid": "!!!", "token": params["token"],
                                                           "newPassword": NEW_PASSWORD}), "token")
    assert_field_error(post(APIClient(), PASSWORD_RESET, {**params, "newPassword": "short"}), "newPassword")
    settings.PASSWORD_RESET_TIMEOUT = -1  # every link is past its lifetime
    assert_field_error(post(APIClient(), PASSWORD_RESET, {**params, "newPassword": NEW_PASSWORD}), "token")
    settings.PASSWORD_RESET_TIMEOUT = 3600

    sign_in(member)  # a sign-in after the e-mail voids its link (Django hashes last_login in)

    assert_field_error(post(APIClient(), PASSWORD_RESET, {**params, "newPassword": NEW_PASSWORD}), "token")
    member.refresh_from_db()
    assert member.check_password(PASSWORD)


# --- MFA setup and enabling -----------------------------------------------------------------------


@pytest.mark.django_db
def test_mfa_setup_then_enable_returns_recovery_codes_once(member, member_client):
    setup = post(member_client, MFA_SETUP)

    assert setup.status_code == 200
    body = setup.json()
    assert set(body) == {"otpauthUri", "qrSvg"}
    assert body["otpauthUri"].startswith("otpauth://totp/Aegis%3Amulder%40acme.example?secret=")
    assert body["qrSvg"].startswith("<svg") and "<path" in body["qrSvg"]
    device = newest_device(member)
    assert device.confirmed is False
    assert not User.objects.get(pk=member.pk).mfa_enabled

    enabled = post(member_client, MFA_ENABLE, {"code": totp_code(member)})

    assert enabled.status_code == 200, enabled.content
    codes = enabled.json()["recoveryCodes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(re.fullmatch(r"[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}", c) for c in codes)
    member.refresh_from_db()
    device.refresh_from_db()
    assert member.mfa_enabled and device.confirmed
    stored = list(RecoveryCode.objects.filter(user=member).values_list("code_hash", flat=True))
    assert len(stored) == 10 and not set(codes) & set(stored)  # hashed, never the codes
    entry = audit("auth.mfa_enabled", member).get()
    secret = parse_qs(urlparse(body["otpauthUri"]).query)["secret"][0]
    trail = json.dumps([row.changes for row in AuditLog.objects.all()])
    assert secret not in trail and not any(code in trail for code in codes)
    assert entry.changes["recovery_codes"] == 10
    # The secret is not shown again anywhere.
    assert secret not in json.dumps(member_client.get(ME).json())
    again = post(member_client, MFA_SETUP)
    assert again.status_code == 409 and error_of(again)["code"] == "INVALID_STATE"


@pytest.mark.django_db
def test_a_new_setup_replaces_an_unconfirmed_device(member, member_client):
    first = post(member_client, MFA_SETUP).json()["otpauthUri"]
    second = post(member_client, MFA_SETUP).json()["otpauthUri"]

    assert first != second
    assert EncryptedTOTPDevice.objects.filter(user=member).count() == 1


@pytest.mark.django_db
def test_enable_refuses_a_wrong_code_and_needs_a_setup_first(member, member_client):
    nothing = post(member_client, MFA_ENABLE, {"code": "123456"})
    assert nothing.status_code == 409 and error_of(nothing)["code"] == "INVALID_STATE"

    post(member_client, MFA_SETUP)
    assert_field_error(post(member_client, MFA_ENABLE, {"code": wrong_code(member)}), "code")
    assert_field_error(post(member_client, MFA_ENABLE, {"code": "12ab56"}), "code")
    assert not User.objects.get(pk=member.pk).mfa_enabled


# --- Signing in with MFA ------------------------------------------------------------------------


@pytest.mark.django_db
def test_login_with_mfa_needs_the_second_step(member):
    turn_on_mfa(member)

    challenge = sign_in(member)

    assert set(challenge) == {"mfaRequired", "mfaToken", "mfaTokenExpiresAt"}
    assert not RefreshToken.objects.filter(user=member).exists()
    response = post(APIClient(), MFA_VERIFY, {"mfaToken": challenge["mfaToken"], "code": totp_code(member)})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["mfaVerified"] is True and AccessToken(body["accessToken"])["mfa"] is True
    assert audit("auth.login_succeeded", member).get().changes["method"] == "totp"
    assert audit("auth.mfa_challenged", member).count() == 1


@pytest.mark.django_db
def test_an_mfa_token_gives_one_session_only(member):
    turn_on_mfa(member)
    token = mfa_challenge(member)
    assert post(APIClient(), MFA_VERIFY, {"mfaToken": token, "code": totp_code(member)}).status_code == 200
    allow_next_code(member)

    again = post(APIClient(), MFA_VERIFY, {"mfaToken": token, "code": totp_code(member)})

    assert again.status_code == 401 and error_of(again)["code"] == "TOKEN_INVALID"
    assert RefreshToken.objects.filter(user=member).count() == 1


@pytest.mark.django_db
def test_a_totp_code_works_once(member):
    turn_on_mfa(member)
    code = totp_code(member)
    assert post(APIClient(), MFA_VERIFY, {"mfaToken": mfa_challenge(member), "code": code}).status_code == 200

    replay = post(APIClient(), MFA_VERIFY, {"mfaToken": mfa_challenge(member), "code": code})

    assert replay.status_code == 401 and error_of(replay)["code"] == "MFA_INVALID"


@pytest.mark.django_db
def test_a_wrong_code_can_be_retried_but_counts_toward_the_lockout(member):
    turn_on_mfa(member)
    token = mfa_challenge(member)

    wrong = post(APIClient(), MFA_VERIFY, {"mfaToken": token, "code": wrong_code(member)})

    assert wrong.status_code == 401 and error_of(wrong)["code"] == "MFA_INVALID"
    member.refresh_from_db()
    assert member.failed_login_count == 1
    assert audit("auth.login_failed", member).get().changes["reason"] == "bad_totp"
    allow_next_code(member)  # django-otp's own back-off after a failure
    assert post(APIClient(), MFA_VERIFY, {"mfaToken": token, "code": totp_code(member)}).status_code == 200
    member.refresh_from_db()
    assert member.failed_login_count == 0


@pytest.mark.django_db
def test_repeated_wrong_codes_lock_the_account(member, settings):
    turn_on_mfa(member)
    token = mfa_challenge(member)
    answers = [post(APIClient(), MFA_VERIFY, {"mfaToken": token, "code": wrong_code(member)})
               for _ in range(settings.LOGIN_LOCKOUT_THRESHOLD)]

    assert [r.status_code for r in answers] == [401] * (settings.LOGIN_LOCKOUT_THRESHOLD - 1) + [403]
    assert error_of(answers[-1])["code"] == "ACCOUNT_LOCKED"
    assert audit("auth.account_locked", member).count() == 1
    allow_next_code(member)
    locked = post(APIClient(), MFA_VERIFY, {"mfaToken": token, "code": totp_code(member)})
    assert locked.status_code == 403 and error_of(locked)["code"] == "ACCOUNT_LOCKED"


@pytest.mark.django_db
def test_a_recovery_code_signs_in_once(member):
    codes = turn_on_mfa(member)

    first = post(APIClient(), MFA_VERIFY, {"mfaToken": mfa_challenge(member), "recoveryCode": codes[3].upper()})

    assert first.status_code == 200, first.content
    assert first.json()["mfaVerified"] is True
    assert RecoveryCode.objects.filter(user=member, used_at__isnull=False).count() == 1
    assert audit("auth.login_succeeded", member).get().changes["recovery_codes_left"] == 9
    second = post(APIClient(), MFA_VERIFY, {"mfaToken": mfa_challenge(member), "recoveryCode": codes[3]})
    assert second.status_code == 401 and error_of(second)["code"] == "MFA_INVALID"
    other = post(APIClient(), MFA_VERIFY, {"mfaToken": mfa_challenge(member), "recoveryCode": codes[4]})
    assert other.status_code == 200


@pytest.mark.django_db
def test_mfa_verify_refuses_bad_expired_and_voided_tokens(member, settings):
    turn_on_mfa(member)
    token = mfa_challenge(member)

    cases = {
        "forged": token[:-4] + "AAAA",
        "garbage": "not-a-token",
    }
    for name, value in cases.items():
        response = post(APIClient(), MFA_VERIFY, {"mfaToken": value, "code": totp_code(member)})
        assert response.status_code == 401 and error_of(response)["code"] == "TOKEN_INVALID", name

    settings.MFA_TOKEN_LIFETIME = timedelta(seconds=-1)  # every token is past its lifetime
    expired = post(APIClient(), MFA_VERIFY, {"mfaToken": token, "code": totp_code(member)})
    assert expired.status_code == 401 and error_of(expired)["code"] == "TOKEN_INVALID"
    settings.MFA_TOKEN_LIFETIME = timedelta(minutes=5)

    member.set_password(NEW_PASSWORD)  # a password change voids the pending step
    member.save()
    voided = post(APIClient(), MFA_VERIFY, {"mfaToken": token, "code": totp_code(member)})
    assert voided.status_code == 401 and error_of(voided)["code"] == "TOKEN_INVALID"
    assert not RefreshToken.objects.filter(user=member).exists()


@pytest.mark.django_db
def test_mfa_verify_needs_exactly_one_kind_of_code(member):
    turn_on_mfa(member)
    token = mfa_challenge(member)

    assert_field_error(post(APIClient(), MFA_VERIFY, {"mfaToken": token}), "code")
    assert_field_error(post(APIClient(), MFA_VERIFY, {"mfaToken": token, "code": "123456",
                                                      "recoveryCode": "abcd-efgh-jkmn"}), "code")
    assert_field_error(post(APIClient(), MFA_VERIFY, {"code": "123456"}), "mfaToken")


# --- Turning MFA off, new recovery codes ----------------------------------------------------------


@pytest.mark.django_db
def test_disable_needs_password_and_code_then_removes_everything(member):
    turn_on_mfa(member)
    session = post(APIClient(), MFA_VERIFY, {"mfaToken": mfa_challenge(member), "code": totp_code(member)}).json()
    client = bearer(session["accessToken"])
    allow_next_code(member)

    assert_field_error(post(client, MFA_DISABLE, {"password": "not-it-at-all", "code": totp_code(member)}),
                       "password")
    assert_field_error(post(client, MFA_DISABLE, {"password": PASSWORD, "code": wrong_code(member)}), "code")
    member.refresh_from_db()
    assert member.mfa_enabled and member.failed_login_count == 2
    allow_next_code(member)

    response = post(client, MFA_DISABLE, {"password": PASSWORD, "code": totp_code(member)})

    assert response.status_code == 204
    member.refresh_from_db()
    assert not member.mfa_enabled
    assert not EncryptedTOTPDevice.objects.filter(user=member).exists()
    assert not RecoveryCode.objects.filter(user=member).exists()
    assert audit("auth.mfa_disabled", member).count() == 1
    assert "accessToken" in sign_in(member)  # no second step any more
    # The session that was MFA-verified is downgraded at its next refresh.
    refreshed = post(APIClient(), REFRESH, {"refreshToken": session["refreshToken"]}).json()
    assert refreshed["mfaVerified"] is False


@pytest.mark.django_db
def test_disable_accepts_a_recovery_code_and_refuses_when_mfa_is_off(member, member_client):
    off = post(member_client, MFA_DISABLE, {"password": PASSWORD, "code": "123456"})
    assert off.status_code == 409 and error_of(off)["code"] == "INVALID_STATE"
    codes = turn_on_mfa(member)

    response = post(member_client, MFA_DISABLE, {"password": PASSWORD, "recoveryCode": codes[0]})

    assert response.status_code == 204
    assert audit("auth.mfa_disabled", member).get().changes["with"] == "recovery_code"


@pytest.mark.django_db
def test_platform_admins_cannot_turn_mfa_off(platform_admin):
    turn_on_mfa(platform_admin)
    session = post(APIClient(), MFA_VERIFY, {"mfaToken": mfa_challenge(platform_admin),
                                             "code": totp_code(platform_admin)}).json()
    allow_next_code(platform_admin)

    response = post(bearer(session["accessToken"]), MFA_DISABLE,
                    {"password": PASSWORD, "code": totp_code(platform_admin)})

    assert response.status_code == 403 and error_of(response)["code"] == "PERMISSION_DENIED"
    assert User.objects.get(pk=platform_admin.pk).mfa_enabled


@pytest.mark.django_db
def test_new_recovery_codes_replace_the_old_ones(member, member_client):
    old = turn_on_mfa(member)
    assert_field_error(post(member_client, RECOVERY_CODES, {"code": wrong_code(member)}), "code")
    allow_next_code(member)

    response = post(member_client, RECOVERY_CODES, {"code": totp_code(member)})

    assert response.status_code == 200
    new = response.json()["recoveryCodes"]
    assert len(new) == 10 and not set(new) & set(old)
    refused = post(APIClient(), MFA_VERIFY, {"mfaToken": mfa_challenge(member), "recoveryCode": old[0]})
    assert refused.status_code == 401 and error_of(refused)["code"] == "MFA_INVALID"
    accepted = post(APIClient(), MFA_VERIFY, {"mfaToken": mfa_challenge(member), "recoveryCode": new[0]})
    assert accepted.status_code == 200
    assert audit("auth.recovery_codes_regenerated", member).count() == 1


@pytest.mark.django_db
def test_new_recovery_codes_need_mfa_on(member_client):
    response = post(member_client, RECOVERY_CODES, {"code": "123456"})

    assert response.status_code == 409 and error_of(response)["code"] == "INVALID_STATE"
