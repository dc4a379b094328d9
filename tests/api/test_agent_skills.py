"""Skill installs per agent: approved skills only, settings checked by the skill's own schema,
one install per skill, switching off inherited skills, audit."""

from __future__ import annotations

import json

import pytest
from django_tenants.utils import tenant_context

from apps.agents.models import SkillInstallation
from apps.audit.models import AuditLog
from tests.api.agent_factories import (
    CALENDAR_SCHEMA,
    NOT_FOUND_ELSEWHERE,
    READERS,
    WRITERS,
    WRONG_SCOPES,
    agent_path,
    make_install,
    make_skill,
    matrix_agent,
    matrix_install,
    matrix_skill,
    suspended_tenant_test,
)
from tests.api.matrix import Row, matrix_test

pytestmark = pytest.mark.django_db


def send(client, method: str, path: str, body: dict | None = None):
    return client.generic(method, path, data=json.dumps(body) if body is not None else None,
                          content_type="application/json")


def error(response) -> dict:
    return response.json()["error"]


def install_path(ctx) -> str:
    installation = matrix_install(ctx)
    return f"/api/v1/agents/{installation.agent_id}/skills/{installation.skill_id}"


install_path.__name__ = "agents/{id}/skills/{skillId}"

ROWS = [
    Row("GET", agent_path("/skills"), allowed=READERS, refused=NOT_FOUND_ELSEWHERE, extra_callers=WRONG_SCOPES),
    Row("POST", agent_path("/skills"), allowed=WRITERS, ok=201, body=lambda ctx: {"skill": str(matrix_skill(ctx).pk)},
        refused=NOT_FOUND_ELSEWHERE, extra_callers=WRONG_SCOPES),
    Row("PATCH", install_path, allowed=WRITERS, body={"enabled": False}, refused=NOT_FOUND_ELSEWHERE,
        extra_callers=WRONG_SCOPES),
    Row("DELETE", install_path, allowed=WRITERS, ok=204, refused=NOT_FOUND_ELSEWHERE, extra_callers=WRONG_SCOPES),
]

test_matrix = matrix_test(ROWS)
test_suspended_tenant = suspended_tenant_test(ROWS)


@pytest.fixture
def admin(callers):
    return callers["tenant_admin"]


@pytest.fixture
def agent(callers):
    return matrix_agent(callers)


@pytest.fixture
def calendar():
    return make_skill("calendar", "1.2.0", configuration=CALENDAR_SCHEMA, name="Calendar")


def skills_url(agent) -> str:
    return f"/api/v1/agents/{agent.pk}/skills"


def test_install_an_approved_skill(admin, callers, agent, calendar):
    response = send(admin, "POST", skills_url(agent), {"skill": str(calendar.pk),
                                                        "config": {"provider": "google", "minutes": 30}})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["skill"] == {"id": str(calendar.pk), "slug": "calendar", "name": "Calendar", "version": "1.2.0",
                             "category": "productivity"}
    assert body["enabled"] is True and body["config"] == {"provider": "google", "minutes": 30}
    assert body["agentId"] == str(agent.pk) and body["installedBy"] == str(callers.user("tenant_admin").pk)
    listed = admin.get(skills_url(agent)).json()["data"]
    assert [item["skill"]["slug"] for item in listed] == ["calendar"]
    assert admin.get(f"/api/v1/agents/{agent.pk}").json()["skills"][0]["slug"] == "calendar"


def test_only_approved_skills_install(admin, agent):
    pending = make_skill("shell-runner", "0.1.0", status="pending")
    rejected = make_skill("spyware", "0.1.0", status="rejected")
    for skill in (pending, rejected):
        response = send(admin, "POST", skills_url(agent), {"skill": str(skill.pk)})
        assert response.status_code == 400
        assert error(response)["code"] == "VALIDATION_ERROR" and "skill" in error(response)["details"]
    unknown = send(admin, "POST", skills_url(agent), {"skill": "00000000-0000-0000-0000-000000000000"})
    assert unknown.status_code == 400 and "skill" in error(unknown)["details"]
    malformed = send(admin, "POST", skills_url(agent), {"skill": "calendar"})
    assert malformed.status_code == 400 and "skill" in error(malformed)["details"]


@pytest.mark.parametrize("config", [
    {},  # provider is required
    {"provider": "yahoo"},
    {"provider": "google", "minutes": 1},
    {"provider": "google", "colour": "blue"},
    ["provider", "google"],
])
def test_settings_are_validated_against_the_skills_own_schema(admin, agent, calendar, config):
    response = send(admin, "POST", skills_url(agent), {"skill": str(calendar.pk), "config": config})
    assert response.status_code == 400, response.content
    assert "config" in error(response)["details"]


def test_settings_are_validated_merged_over_the_shared_toolbox(admin, agent, calendar, tenant_a):
    make_install(tenant_a, None, calendar, config={"provider": "microsoft"})
    # The toolbox gives the required provider; the agent only overrides the calendar.
    response = send(admin, "POST", skills_url(agent), {"skill": str(calendar.pk), "config": {"calendar": "sales"}})
    assert response.status_code == 201, response.content
    assert response.json()["config"] == {"calendar": "sales"}


def test_enabled_false_switches_off_an_inherited_skill_without_settings(admin, agent, calendar):
    response = send(admin, "POST", skills_url(agent), {"skill": str(calendar.pk), "enabled": False})
    assert response.status_code == 201, response.content
    assert response.json()["enabled"] is False


def test_a_skill_installs_once_per_agent_whatever_the_version(admin, agent, calendar):
    assert send(admin, "POST", skills_url(agent), {"skill": str(calendar.pk),
                                                    "config": {"provider": "google"}}).status_code == 201
    again = send(admin, "POST", skills_url(agent), {"skill": str(calendar.pk), "config": {"provider": "google"}})
    assert again.status_code == 409 and error(again)["code"] == "CONFLICT"
    newer = make_skill("calendar", "2.0.0", configuration=CALENDAR_SCHEMA)
    other_version = send(admin, "POST", skills_url(agent), {"skill": str(newer.pk), "config": {"provider": "google"}})
    assert other_version.status_code == 409
    assert error(other_version)["details"] == {"skillId": str(calendar.pk), "version": "1.2.0"}


def test_patch_enables_disables_and_replaces_settings(admin, agent, calendar):
    send(admin, "POST", skills_url(agent), {"skill": str(calendar.pk), "config": {"provider": "google"}})
    url = f"{skills_url(agent)}/{calendar.pk}"
    disabled = send(admin, "PATCH", url, {"enabled": False})
    assert disabled.status_code == 200 and disabled.json()["enabled"] is False
    replaced = send(admin, "PATCH", url, {"enabled": True, "config": {"provider": "microsoft", "minutes": 45}})
    assert replaced.json()["config"] == {"provider": "microsoft", "minutes": 45}
    invalid = send(admin, "PATCH", url, {"config": {"provider": "aol"}})
    assert invalid.status_code == 400 and "config" in error(invalid)["details"]
    assert send(admin, "PATCH", url, {"skill": str(calendar.pk)}).status_code == 400  # not changeable


def test_delete_and_unknown_installs(admin, agent, calendar, tenant_a):
    send(admin, "POST", skills_url(agent), {"skill": str(calendar.pk), "config": {"provider": "google"}})
    assert admin.delete(f"{skills_url(agent)}/{calendar.pk}").status_code == 204
    assert admin.delete(f"{skills_url(agent)}/{calendar.pk}").status_code == 404
    with tenant_context(tenant_a):
        assert not SkillInstallation.objects.filter(agent=agent).exists()


def test_every_install_mutation_is_audited_and_signals_the_runtime(admin, callers, agent, calendar, runtime_signals,
                                                                   django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        installation_id = send(admin, "POST", skills_url(agent), {"skill": str(calendar.pk),
                                                                   "config": {"provider": "google"}}).json()["id"]
        send(admin, "PATCH", f"{skills_url(agent)}/{calendar.pk}", {"enabled": False})
        admin.delete(f"{skills_url(agent)}/{calendar.pk}")
    rows = AuditLog.objects.filter(target_id=installation_id).order_by("created_at")
    assert [row.action for row in rows] == ["agent.skill_installed", "agent.skill_updated", "agent.skill_uninstalled"]
    assert rows[1].changes == {"enabled": {"before": True, "after": False}}
    assert [signal["reason"] for signal in runtime_signals] == [
        "agent.skill_installed", "agent.skill_updated", "agent.skill_uninstalled"]


def test_an_api_key_install_has_no_installing_user(callers, agent, calendar):
    response = send(callers["api_key:agents:write"], "POST", skills_url(agent),
                    {"skill": str(calendar.pk), "config": {"provider": "google"}})
    assert response.status_code == 201 and response.json()["installedBy"] is None
