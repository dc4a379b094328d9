"""Who may call each agent endpoint: the authorization matrix, a suspended tenant, a tenant
still provisioning."""

from __future__ import annotations

import pytest

from apps.accounts.models import Role
from apps.accounts.services import add_member
from apps.tenants import services as tenants
from tests.api.agent_factories import (
    ACTIVITY_READERS,
    NOT_FOUND_ELSEWHERE,
    READERS,
    WRITERS,
    WRONG_SCOPES,
    agent_path,
    make_role,
    suspended_tenant_test,
)
from tests.api.conftest import bearer_client
from tests.api.matrix import Row, matrix_test


def new_agent_body(ctx) -> dict:
    make_role("sales")
    return {"name": "Matrix New", "role": "sales"}


ROWS = [
    Row("GET", "/api/v1/agents", allowed=READERS | {"other_tenant_admin"}, extra_callers=WRONG_SCOPES),
    Row("POST", "/api/v1/agents", allowed=WRITERS | {"other_tenant_admin"}, ok=201, body=new_agent_body,
        extra_callers=WRONG_SCOPES),
    Row("GET", agent_path(), allowed=READERS, refused=NOT_FOUND_ELSEWHERE, extra_callers=WRONG_SCOPES),
    Row("PATCH", agent_path(), allowed=WRITERS, body={"description": "changed"}, refused=NOT_FOUND_ELSEWHERE,
        extra_callers=WRONG_SCOPES),
    Row("DELETE", agent_path(), allowed=WRITERS, ok=204, refused=NOT_FOUND_ELSEWHERE, extra_callers=WRONG_SCOPES),
    Row("POST", agent_path("/pause"), allowed=WRITERS, refused=NOT_FOUND_ELSEWHERE, extra_callers=WRONG_SCOPES),
    Row("POST", agent_path("/resume", status="paused"), allowed=WRITERS, refused=NOT_FOUND_ELSEWHERE,
        extra_callers=WRONG_SCOPES),
    Row("GET", agent_path("/config"), allowed=READERS, refused=NOT_FOUND_ELSEWHERE, extra_callers=WRONG_SCOPES),
    Row("GET", agent_path("/metrics"), allowed=ACTIVITY_READERS, refused=NOT_FOUND_ELSEWHERE,
        extra_callers=WRONG_SCOPES),
    Row("GET", agent_path("/activity"), allowed=ACTIVITY_READERS, refused=NOT_FOUND_ELSEWHERE,
        extra_callers=WRONG_SCOPES),
    Row("GET", "/api/v1/activity", allowed=ACTIVITY_READERS | {"other_tenant_admin"}, extra_callers=WRONG_SCOPES),
]

test_matrix = matrix_test(ROWS)
test_suspended_tenant = suspended_tenant_test(ROWS)


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path"), [("GET", "/api/v1/agents"), ("POST", "/api/v1/agents"),
                                              ("GET", "/api/v1/activity")])
def test_a_tenant_still_provisioning_gets_409_tenant_not_ready(method, path):
    tenant = tenants.create_tenant(company_name="Initech", admin_email="admin@initech.example")
    admin = add_member(tenant=tenant, email="boss@initech.example", password="correct-horse-battery",
                       name="Boss", role=Role.TENANT_ADMIN)
    response = bearer_client(admin).generic(method, path, data="{}", content_type="application/json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "TENANT_NOT_READY"
