"""API test fixtures: one authenticated client per kind of caller.

`callers` builds, on demand, clients for every role of the authorization matrix:
anonymous, platform_admin (TOTP verified), platform_admin_no_mfa, tenant_admin and
tenant_member of tenant A, tenant_admin of tenant B, and API keys of tenant A.
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from aegis.api.authentication import API_KEY_GENERATOR, issue_access_token
from apps.accounts.models import ApiKey, Role, User
from apps.accounts.services import add_member
from apps.agents.signals import runtime_config_changed
from tests.api.conftest_openapi import openapi_conformance, openapi_unchecked  # noqa: F401 (fixtures)


def bearer_client(user: User, *, mfa_verified: bool = False) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_access_token(user, mfa_verified=mfa_verified)}")
    client.user = user
    return client


def api_key_client(tenant, scopes: list[str], name: str = "test key") -> APIClient:
    raw, prefix, hashed = API_KEY_GENERATOR.generate()
    key = ApiKey.objects.create(tenant=tenant, name=name, prefix=prefix, hashed_key=hashed, scopes=scopes)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    client.api_key = key
    return client


class Callers:
    """Lazily created clients, keyed by the role names used in authorization matrices."""

    PASSWORD = "correct-horse-battery-staple"

    def __init__(self, tenant_a, tenant_b):
        self.tenant_a, self.tenant_b = tenant_a, tenant_b
        self._clients: dict[str, APIClient] = {}

    def user(self, role: str) -> User:
        return self[role].user

    def __getitem__(self, role: str) -> APIClient:
        if role not in self._clients:
            self._clients[role] = self._build(role)
        return self._clients[role]

    def _build(self, role: str) -> APIClient:
        a, b = self.tenant_a, self.tenant_b
        if role == "anonymous":
            return APIClient()
        if role in ("platform_admin", "platform_admin_no_mfa"):
            user = User.objects.create_user(f"{role}@aegis.example", self.PASSWORD, name=role,
                                            role=Role.PLATFORM_ADMIN)
            return bearer_client(user, mfa_verified=role == "platform_admin")
        if role == "tenant_admin":
            return bearer_client(add_member(tenant=a, email="admin@a.example", password=self.PASSWORD,
                                            name="Admin A", role=Role.TENANT_ADMIN))
        if role == "tenant_member":
            return bearer_client(add_member(tenant=a, email="member@a.example", password=self.PASSWORD,
                                            name="Member A", role=Role.TENANT_MEMBER))
        if role == "other_tenant_admin":
            return bearer_client(add_member(tenant=b, email="admin@b.example", password=self.PASSWORD,
                                            name="Admin B", role=Role.TENANT_ADMIN))
        if role.startswith("api_key:"):  # api_key:<scope>[,<scope>...] or api_key: for no scopes
            scopes = [s for s in role.split(":", 1)[1].split(",") if s]
            return api_key_client(a, scopes)
        raise KeyError(role)


@pytest.fixture
def callers(tenant_a, tenant_b) -> Callers:
    return Callers(tenant_a, tenant_b)


@pytest.fixture
def runtime_signals():
    """Every runtime_config_changed sent during the test, as {"sender": ..., **kwargs}."""
    received = []

    def receiver(sender, **kwargs):
        received.append({"sender": sender, **kwargs})

    runtime_config_changed.connect(receiver)
    yield received
    runtime_config_changed.disconnect(receiver)
