"""aegis.api.authentication.verified_access_token: a token's signature is verified once per
process, its expiry on every use."""

from __future__ import annotations

from datetime import timedelta

import pytest
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import AccessToken
from rest_framework_simplejwt.utils import aware_utcnow

from aegis.api import authentication
from aegis.api.authentication import issue_access_token, verified_access_token
from apps.accounts.models import Role, User

pytestmark = pytest.mark.django_db


@pytest.fixture
def token() -> str:
    user = User.objects.create_user("cache@aegis.example", "correct-horse-battery", name="Cache",
                                    role=Role.PLATFORM_ADMIN)
    return str(issue_access_token(user, mfa_verified=True))


def test_a_token_is_decoded_once_and_gives_what_simplejwt_gives(token):
    authentication._decoded_access_token.cache_clear()
    first, second = verified_access_token(token), verified_access_token(token)
    assert first is second and first.payload == AccessToken(token).payload
    assert authentication._decoded_access_token.cache_info().hits == 1


def test_expiry_is_checked_on_every_use(token, monkeypatch):
    verified_access_token(token)  # cached
    later = aware_utcnow() + timedelta(days=1)
    monkeypatch.setattr(authentication, "aware_utcnow", lambda: later)
    with pytest.raises(TokenError):
        verified_access_token(token)


def test_an_altered_or_foreign_token_is_refused(token, settings):
    verified_access_token(token)
    header, payload, signature = token.split(".")
    altered = f"{header}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    with pytest.raises(TokenError):
        verified_access_token(altered)
    assert authentication._decoded_access_token.cache_info().currsize >= 1
    settings.SIMPLE_JWT = {**settings.SIMPLE_JWT, "ACCESS_TOKEN_LIFETIME": timedelta(minutes=1)}
    assert authentication._decoded_access_token.cache_info().currsize == 0  # verified afresh from now on
