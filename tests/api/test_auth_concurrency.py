"""Races on session tokens, with real concurrent transactions (each thread has its own database
connection). A transactional test empties every table afterwards, so these tests build their own
data and use no shared tenant (a platform admin has none)."""

from __future__ import annotations

import threading

import pytest
from django.conf import settings as django_settings
from django.db import connection
from rest_framework_simplejwt.tokens import RefreshToken as RefreshJWT

from aegis.api.exceptions import ApiError
from apps.accounts import sessions
from apps.accounts.models import RefreshToken, Role, User
from apps.audit.models import AuditLog
from tests.api.test_auth import PASSWORD, own_cache_namespace, totp_code, turn_on_mfa  # noqa: F401 (own_cache_namespace: autouse fixture)

# The flush after each test must TRUNCATE ... CASCADE (tenant schemas hold foreign keys into public
# tables); Django cascades only when available_apps is set (as in test_invites.py).
pytestmark = pytest.mark.django_db(transaction=True, available_apps=[*django_settings.INSTALLED_APPS])


def run_together(count: int, work) -> list[str]:
    """Run `work()` in `count` threads released at the same moment; each result is "ok" or the
    error code it raised."""
    barrier = threading.Barrier(count)
    results: list[str] = []

    def worker():
        try:
            barrier.wait()
            work()
            results.append("ok")
        except ApiError as exc:
            results.append(exc.get_codes())
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(results)


@pytest.fixture
def admin_with_totp() -> tuple[User, list[str]]:
    user = User.objects.create_user("race@aegis.example", PASSWORD, name="Race", role=Role.PLATFORM_ADMIN)
    return user, turn_on_mfa(user)


@pytest.fixture
def signed_in_admin(admin_with_totp) -> tuple[User, sessions.Session]:
    user, _ = admin_with_totp
    challenge = sessions.login(email=user.email, password=PASSWORD)
    return user, sessions.verify_mfa(mfa_token=challenge.mfa_token, code=totp_code(user))


def test_two_concurrent_refreshes_of_one_token_exactly_one_wins(signed_in_admin):
    user, session = signed_in_admin

    results = run_together(2, lambda: sessions.refresh(refresh_token=session.refresh_token))

    assert results == ["ok", "token_reused"]
    original = RefreshToken.objects.get(jti=RefreshJWT(session.refresh_token)["jti"])
    assert RefreshToken.objects.filter(replaces=original).count() == 1  # rotated once, not twice
    # The loser saw a rotated token: the whole session is revoked, the winner's new token too.
    assert not RefreshToken.objects.filter(family=original.family, revoked_at__isnull=True).exists()
    assert AuditLog.objects.filter(action="auth.refresh_token_reused", target_id=str(user.pk)).count() == 1


def test_two_concurrent_uses_of_one_mfa_token_give_one_session(admin_with_totp):
    user, recovery_codes = admin_with_totp
    challenge = sessions.login(email=user.email, password=PASSWORD)

    # Two different recovery codes, so only the MFA token's single use decides.
    codes = iter(recovery_codes[:2])
    lock = threading.Lock()

    def use():
        with lock:
            code = next(codes)
        sessions.verify_mfa(mfa_token=challenge.mfa_token, recovery_code=code)

    results = run_together(2, use)

    assert results == ["ok", "token_invalid"]
    assert RefreshToken.objects.filter(user=user).count() == 1
    assert user.recovery_codes.filter(used_at__isnull=False).count() == 1  # the loser's code is not spent
