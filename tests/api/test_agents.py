"""Agents: create, read, change, pause/resume, delete; ETag/If-Match; limits; audit; signal."""

from __future__ import annotations

import json

import pytest
from django.db.models import F
from django_tenants.utils import tenant_context

from aegis.domain import StaleWrite
from apps.agents import services
from apps.agents.models import Agent, AgentActivity
from apps.agents.signals import runtime_config_changed
from apps.audit.models import AuditLog
from tests.api.agent_factories import make_agent, make_role

pytestmark = pytest.mark.django_db

URL = "/api/v1/agents"


def send(client, method: str, path: str, body: dict | None = None, **headers):
    return client.generic(method, path, data=json.dumps(body) if body is not None else None,
                          content_type="application/json", **headers)


def error(response) -> dict:
    return response.json()["error"]


@pytest.fixture
def admin(callers):
    make_role("sales")
    make_role("support")
    return callers["tenant_admin"]


# --- Create ---------------------------------------------------------------------------------------


def test_create_returns_201_with_etag_location_and_a_key_derived_from_the_name(admin, tenant_a):
    response = send(admin, "POST", URL, {
        "name": "Sales Bot", "role": "sales", "thinkingMode": "high", "description": "Qualifies leads",
        "assistedUser": {"name": "Dana", "workingHours": {"start": "09:00", "end": "17:00", "days": ["mon"]},
                         "preferences": {"tone": "dry"}},
    })
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["key"] == "sales-bot"
    assert body["status"] == "draft"
    assert body["revision"] == 1 and response["ETag"] == '"1"'
    assert body["modelTier"] is None and body["thinkingMode"] == "high"
    assert body["channels"] == [] and body["skills"] == []
    assert body["assistedUser"]["workingHours"]["start"] == "09:00"
    assert body["assistedUser"]["preferences"] == {"tone": "dry"}
    assert response["Location"].endswith(f"/api/v1/agents/{body['id']}")
    with tenant_context(tenant_a):
        stored = Agent.objects.get(pk=body["id"])
    assert stored.assisted_user["working_hours"] == {"start": "09:00", "end": "17:00", "days": ["mon"]}


def test_derived_keys_stay_unique(admin):
    first = send(admin, "POST", URL, {"name": "Sales Bot", "role": "sales"}).json()
    second = send(admin, "POST", URL, {"name": "Sales-Bot", "role": "sales"}).json()
    third = send(admin, "POST", URL, {"name": "日本語", "role": "sales"}).json()
    assert (first["key"], second["key"], third["key"]) == ("sales-bot", "sales-bot-2", "agent")


def test_an_agent_may_start_active(admin):
    assert send(admin, "POST", URL, {"name": "Live", "role": "sales", "status": "active"}).json()["status"] == "active"


def test_explicit_key_must_match_the_runtime_pattern_and_be_free(admin):
    bad = send(admin, "POST", URL, {"name": "A", "role": "sales", "key": "Bad Key"})
    assert bad.status_code == 400 and "key" in error(bad)["details"]
    assert send(admin, "POST", URL, {"name": "A", "role": "sales", "key": "ava"}).status_code == 201
    taken = send(admin, "POST", URL, {"name": "B", "role": "sales", "key": "ava"})
    assert taken.status_code == 409
    assert error(taken)["code"] == "CONFLICT" and error(taken)["details"] == {"field": "key"}


def test_names_are_unique_case_insensitively(admin):
    assert send(admin, "POST", URL, {"name": "Ava", "role": "sales"}).status_code == 201
    clash = send(admin, "POST", URL, {"name": "  AVA ", "role": "sales"})
    assert clash.status_code == 409 and error(clash)["details"] == {"field": "name"}


@pytest.mark.parametrize(("body", "field"), [
    ({"role": "sales"}, "name"),
    ({"name": "A"}, "role"),
    ({"name": "A", "role": "no-such-role"}, "role"),
    ({"name": "A", "role": "sales", "thinkingMode": "deep"}, "thinkingMode"),
    ({"name": "A", "role": "sales", "modelTier": "gigantic"}, "modelTier"),
    ({"name": "A", "role": "sales", "status": "paused"}, "status"),
    ({"name": "A", "role": "sales", "assistedUser": {"workingHours": {"start": "25:00", "end": "17:00"}}},
     "assistedUser"),
    ({"name": "A", "role": "sales", "assistedUser": {"shoeSize": 44}}, "assistedUser"),
    ({"name": "A", "role": "sales", "colour": "blue"}, "colour"),
])
def test_create_validation_errors_name_the_field(admin, body, field):
    response = send(admin, "POST", URL, body)
    assert response.status_code == 400, response.content
    assert error(response)["code"] == "VALIDATION_ERROR"
    assert field in error(response)["details"], error(response)


def test_the_agent_limit_gives_409_limit_reached(admin, tenant_a):
    tenant_a.resource_limits = {**tenant_a.resource_limits, "max_agents": 2}
    tenant_a.save(update_fields=["resource_limits"])
    make_agent(tenant_a, "One")
    make_agent(tenant_a, "Two")
    response = send(admin, "POST", URL, {"name": "Three", "role": "sales"})
    assert response.status_code == 409
    assert error(response)["code"] == "LIMIT_REACHED"
    assert error(response)["details"] == {"resource": "agents", "limit": 2, "current": 2}
    with tenant_context(tenant_a):
        assert Agent.objects.count() == 2


# --- Read -----------------------------------------------------------------------------------------


def test_retrieve_gives_the_agent_with_its_etag(admin, tenant_a):
    agent = make_agent(tenant_a, "Ava", model_tier="fast")
    response = admin.get(f"{URL}/{agent.pk}")
    assert response.status_code == 200
    assert response.json()["name"] == "Ava" and response.json()["modelTier"] == "fast"
    assert response["ETag"] == '"1"'


def test_unknown_or_malformed_ids_are_404(admin):
    assert admin.get(f"{URL}/00000000-0000-0000-0000-000000000000").status_code == 404
    assert admin.get(f"{URL}/not-a-uuid").json()["error"]["code"] == "NOT_FOUND"


# --- Change ---------------------------------------------------------------------------------------


def test_patch_changes_only_the_fields_sent_and_null_means_inherit(admin, tenant_a):
    agent = make_agent(tenant_a, "Ava", model_tier="powerful", description="keep me")
    response = send(admin, "PATCH", f"{URL}/{agent.pk}", {"name": "Ava 2", "modelTier": None, "role": "support"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["name"], body["modelTier"], body["role"], body["description"]) == ("Ava 2", None, "support", "keep me")
    assert body["revision"] == 2 and response["ETag"] == '"2"'
    assert body["key"] == agent.key  # the runtime id never changes


def test_patch_refuses_key_status_and_unknown_fields(admin, tenant_a):
    agent = make_agent(tenant_a, "Ava")
    response = send(admin, "PATCH", f"{URL}/{agent.pk}", {"key": "other", "status": "active", "nmae": "x"})
    assert response.status_code == 400
    assert set(error(response)["details"]) == {"key", "status", "nmae"}


def test_patch_to_a_taken_name_is_409(admin, tenant_a):
    make_agent(tenant_a, "Ava")
    bob = make_agent(tenant_a, "Bob")
    assert send(admin, "PATCH", f"{URL}/{bob.pk}", {"name": "ava"}).status_code == 409


def test_patch_with_the_current_etag_succeeds_and_a_stale_one_is_412(admin, tenant_a):
    agent = make_agent(tenant_a, "Ava")
    etag = admin.get(f"{URL}/{agent.pk}")["ETag"]
    first = send(admin, "PATCH", f"{URL}/{agent.pk}", {"description": "first"}, HTTP_IF_MATCH=etag)
    assert first.status_code == 200 and first["ETag"] == '"2"'
    stale = send(admin, "PATCH", f"{URL}/{agent.pk}", {"description": "second"}, HTTP_IF_MATCH=etag)
    assert stale.status_code == 412
    assert error(stale)["code"] == "PRECONDITION_FAILED"
    assert error(stale)["details"] == {"currentRevision": 2}
    with tenant_context(tenant_a):
        assert Agent.objects.get(pk=agent.pk).description == "first"  # the stale write changed nothing


def test_patch_without_if_match_is_allowed_and_still_bumps_the_revision(admin, tenant_a):
    agent = make_agent(tenant_a, "Ava")
    response = send(admin, "PATCH", f"{URL}/{agent.pk}", {"description": "x"})
    assert response.status_code == 200 and response.json()["revision"] == 2
    assert send(admin, "PATCH", f"{URL}/{agent.pk}", {"description": "y"}, HTTP_IF_MATCH="*").json()["revision"] == 3
    assert send(admin, "PATCH", f"{URL}/{agent.pk}", {"description": "z"}, HTTP_IF_MATCH='W/"3"').status_code == 200


def test_a_malformed_if_match_is_400(admin, tenant_a):
    agent = make_agent(tenant_a, "Ava")
    response = send(admin, "PATCH", f"{URL}/{agent.pk}", {"description": "x"}, HTTP_IF_MATCH='"abc"')
    assert response.status_code == 400 and "ifMatch" in error(response)["details"]


def test_a_patch_that_changes_nothing_writes_nothing(admin, tenant_a):
    agent = make_agent(tenant_a, "Ava", description="same")
    response = send(admin, "PATCH", f"{URL}/{agent.pk}", {"description": "same"})
    assert response.status_code == 200 and response.json()["revision"] == 1
    assert not AuditLog.objects.filter(action="agent.updated").exists()


def _racing_loader(monkeypatch, tenant, agent):
    """The service's first read returns the agent as it was before another writer changed it:
    exactly what it sees when that writer commits between its read and its compare-and-set."""
    with tenant_context(tenant):
        before = Agent.objects.get(pk=agent.pk)
        Agent.objects.filter(pk=agent.pk).update(revision=F("revision") + 1, description="theirs")
    original = services._load_agent
    reads = []

    def load(agent_id, *, lock=False):
        reads.append(agent_id)
        return before if len(reads) == 1 else original(agent_id, lock=lock)

    monkeypatch.setattr(services, "_load_agent", load)


def test_a_lost_compare_and_set_without_if_match_reapplies_the_change_on_the_new_revision(monkeypatch, tenant_a):
    agent = make_agent(tenant_a, "Ava")
    _racing_loader(monkeypatch, tenant_a, agent)
    with tenant_context(tenant_a):
        updated = services.update_agent(tenant=tenant_a, agent_id=agent.pk, changes={"name": "Ours"})
        stored = Agent.objects.get(pk=agent.pk)
    assert (stored.name, stored.description, stored.revision) == ("Ours", "theirs", 3)  # neither update lost
    assert updated.revision == 3


def test_a_lost_compare_and_set_with_if_match_is_a_stale_write(monkeypatch, tenant_a):
    agent = make_agent(tenant_a, "Ava")
    _racing_loader(monkeypatch, tenant_a, agent)
    with tenant_context(tenant_a):
        with pytest.raises(StaleWrite) as caught:
            services.update_agent(tenant=tenant_a, agent_id=agent.pk, changes={"name": "Ours"}, expected_revision=1)
        stored = Agent.objects.get(pk=agent.pk)
    assert caught.value.details == {"current_revision": 2}
    assert (stored.name, stored.description) == ("Ava", "theirs")


# --- Lifecycle ------------------------------------------------------------------------------------


def test_resume_activates_a_draft_and_pause_resume_toggle(admin, tenant_a):
    agent = make_agent(tenant_a, "Ava")
    refused = admin.post(f"{URL}/{agent.pk}/pause")
    assert refused.status_code == 409
    assert error(refused)["code"] == "INVALID_STATE" and error(refused)["details"]["status"] == "draft"

    resumed = admin.post(f"{URL}/{agent.pk}/resume")
    assert resumed.status_code == 200 and resumed.json()["status"] == "active" and resumed["ETag"] == '"2"'
    assert admin.post(f"{URL}/{agent.pk}/resume").status_code == 409
    paused = admin.post(f"{URL}/{agent.pk}/pause")
    assert paused.json()["status"] == "paused"
    assert admin.post(f"{URL}/{agent.pk}/resume").json()["status"] == "active"

    with tenant_context(tenant_a):
        changes = list(AgentActivity.objects.filter(agent=agent, kind="status_changed")
                       .order_by("created_at").values_list("payload", flat=True))
    assert changes == [{"from": "draft", "to": "active"}, {"from": "active", "to": "paused"},
                       {"from": "paused", "to": "active"}]


def test_pause_honours_if_match(admin, tenant_a):
    agent = make_agent(tenant_a, "Ava", status="active")
    assert admin.post(f"{URL}/{agent.pk}/pause", HTTP_IF_MATCH='"7"').status_code == 412
    assert admin.post(f"{URL}/{agent.pk}/pause", HTTP_IF_MATCH='"1"').status_code == 200


def test_delete_removes_the_agent_and_honours_if_match(admin, tenant_a):
    agent = make_agent(tenant_a, "Ava")
    assert admin.delete(f"{URL}/{agent.pk}", HTTP_IF_MATCH='"5"').status_code == 412
    assert admin.delete(f"{URL}/{agent.pk}").status_code == 204
    assert admin.get(f"{URL}/{agent.pk}").status_code == 404
    assert admin.delete(f"{URL}/{agent.pk}").status_code == 404


# --- Audit and the runtime signal -----------------------------------------------------------------


def test_every_agent_mutation_writes_an_audit_row_naming_the_actor(admin, callers, tenant_a):
    user = callers.user("tenant_admin")
    agent_id = send(admin, "POST", URL, {"name": "Ava", "role": "sales"}).json()["id"]
    send(admin, "PATCH", f"{URL}/{agent_id}", {"description": "new"})
    admin.post(f"{URL}/{agent_id}/resume")
    admin.post(f"{URL}/{agent_id}/pause")
    admin.delete(f"{URL}/{agent_id}")
    rows = AuditLog.objects.filter(target_id=agent_id).order_by("created_at")
    assert [row.action for row in rows] == ["agent.created", "agent.updated", "agent.resumed", "agent.paused",
                                            "agent.deleted"]
    assert all(row.actor_user_id == user.pk and row.tenant_id == tenant_a.pk for row in rows)
    assert rows[1].changes == {"description": {"before": "", "after": "new"}}
    assert rows[4].changes["name"] == "Ava"  # what was deleted


def test_an_api_key_is_the_audited_actor_of_its_changes(callers):
    make_role("sales")
    client = callers["api_key:agents:write"]
    agent_id = send(client, "POST", URL, {"name": "Keyed", "role": "sales"}).json()["id"]
    row = AuditLog.objects.get(action="agent.created", target_id=agent_id)
    assert row.actor_api_key_id == client.api_key.pk and row.actor_user_id is None


def test_runtime_config_changed_is_sent_on_commit_only(admin, tenant_a, runtime_signals,
                                                       django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        agent_id = send(admin, "POST", URL, {"name": "Ava", "role": "sales"}).json()["id"]
    assert runtime_signals == [] and len(callbacks) == 1  # nothing before the commit
    with django_capture_on_commit_callbacks(execute=True):
        send(admin, "PATCH", f"{URL}/{agent_id}", {"thinkingMode": "low"})
        send(admin, "PATCH", f"{URL}/{agent_id}", {"thinkingMode": "nonsense"})  # refused: no signal
    assert len(runtime_signals) == 1
    signal = runtime_signals[0]
    assert signal["sender"] is Agent and signal["tenant"] == tenant_a
    assert str(signal["agent_id"]) == agent_id and signal["reason"] == "agent.updated"


def test_a_failing_receiver_does_not_fail_the_committed_change(admin, tenant_a, django_capture_on_commit_callbacks):
    def broken(sender, **kwargs):
        raise RuntimeError("runtime down")

    runtime_config_changed.connect(broken)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = send(admin, "POST", URL, {"name": "Ava", "role": "sales"})
    finally:
        runtime_config_changed.disconnect(broken)
    assert response.status_code == 201
