"""The tenant-wide configuration layers: the Shared Toolbox (GET|PUT toolbox) and the role
catalog with this tenant's overrides (GET roles, PATCH roles/{key}); their effect on
GET agents/{id}/config; audit, runtime signal, isolation, query counts and a write race."""

from __future__ import annotations

import json
import threading
import uuid

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context
from rest_framework.test import APIClient

from aegis.api.authentication import issue_access_token
from apps.accounts.models import Role
from apps.accounts.services import add_member
from apps.agents.models import RoleOverride, SkillInstallation
from apps.audit.models import AuditLog
from apps.tenants import services as tenant_services
from apps.tenants.services import suspend
from tests.api.agent_factories import CALENDAR_SCHEMA, make_agent, make_install, make_role, make_skill
from tests.api.matrix import Row, matrix_test

pytestmark = pytest.mark.django_db

TOOLBOX = "/api/v1/toolbox"
ROLES = "/api/v1/roles"


def send(client, method: str, path: str, body=None):
    return client.generic(method, path, data=json.dumps(body) if body is not None else None,
                          content_type="application/json")


def error(response) -> dict:
    return response.json()["error"]


def entry(skill, enabled: bool = True, config: dict | None = None) -> dict:
    item = {"skillId": str(skill.pk), "enabled": enabled}
    if config is not None:
        item["config"] = config
    return item


def toolbox_slugs(tenant) -> dict[str, tuple]:
    with tenant_context(tenant):
        return {row.skill.slug: (row.skill.version, row.enabled, row.config)
                for row in SkillInstallation.objects.filter(agent__isnull=True).select_related("skill")}


# --- Authorization matrix --------------------------------------------------------------------------------

READERS = {"tenant_admin", "tenant_member", "other_tenant_admin"}
WRITERS = {"tenant_admin", "other_tenant_admin"}
WRONG_SCOPES = ("api_key:skills:read", "api_key:skills:write", "api_key:tenant:read", "api_key:tenant:write",
                "api_key:agents:write")


def matrix_toolbox_body(ctx) -> dict:
    return {"skills": [entry(make_skill("matrix-skill", "1.0.0"))]}


def matrix_role_path(ctx) -> str:
    make_role("sales")
    return f"{ROLES}/sales"


matrix_role_path.__name__ = "roles/{key}"


def matrix_role_body(ctx) -> dict:
    make_skill("matrix-skill", "1.0.0")
    return {"defaultSkills": ["matrix-skill"]}


ROWS = [
    Row("GET", TOOLBOX, allowed=READERS | {"api_key:skills:read"}, extra_callers=WRONG_SCOPES),
    Row("PUT", TOOLBOX, allowed=WRITERS | {"api_key:skills:write"}, body=matrix_toolbox_body,
        extra_callers=WRONG_SCOPES),
    Row("GET", ROLES, allowed=READERS | {"api_key:tenant:read"}, extra_callers=WRONG_SCOPES),
    Row("PATCH", matrix_role_path, allowed=WRITERS | {"api_key:tenant:write"}, body=matrix_role_body,
        extra_callers=WRONG_SCOPES),
]

test_matrix = matrix_test(ROWS)


@pytest.mark.parametrize("row", ROWS, ids=[row.id() for row in ROWS])
@pytest.mark.parametrize("caller", ["tenant_admin", "tenant_member",
                                    "api_key:skills:read,skills:write,tenant:read,tenant:write"])
def test_a_suspended_tenant_is_refused(row, caller, callers):
    path = row.path(callers) if callable(row.path) else row.path
    body = row.body(callers) if callable(row.body) else row.body
    client = callers[caller]
    suspend(callers.tenant_a, reason="Unpaid invoices")
    response = send(client, row.method, path, body)
    assert response.status_code == 403, response.content
    assert error(response)["code"] == "TENANT_SUSPENDED" and error(response)["details"] == {"reason": "Unpaid invoices"}


@pytest.fixture
def admin(callers):
    return callers["tenant_admin"]


@pytest.fixture
def calendar():
    return make_skill("calendar", "1.2.0", configuration=CALENDAR_SCHEMA, name="Calendar")


@pytest.fixture
def search():
    return make_skill("web-search", "3.1.0", name="Web search")


# --- Shared Toolbox ---------------------------------------------------------------------------------------


def test_a_new_tenant_has_an_empty_toolbox(callers):
    response = callers["tenant_member"].get(TOOLBOX)
    assert response.status_code == 200 and response.json() == {"skills": []}


def test_put_sets_the_toolbox_and_get_shows_it(admin, callers, tenant_a, calendar, search):
    response = send(admin, "PUT", TOOLBOX, {"skills": [entry(search, enabled=False),
                                                        entry(calendar, config={"provider": "google"})]})
    assert response.status_code == 200, response.content
    skills = response.json()["skills"]
    assert [(s["skill"]["slug"], s["skillId"], s["enabled"], s["config"]) for s in skills] == [
        ("calendar", str(calendar.pk), True, {"provider": "google"}),
        ("web-search", str(search.pk), False, {})]
    assert skills[0]["skill"] == {"id": str(calendar.pk), "slug": "calendar", "name": "Calendar",
                                  "version": "1.2.0", "category": "productivity"}
    assert skills[0]["installedBy"] == str(callers.user("tenant_admin").pk)
    assert callers["api_key:skills:read"].get(TOOLBOX).json() == response.json()
    assert toolbox_slugs(tenant_a) == {"calendar": ("1.2.0", True, {"provider": "google"}),
                                       "web-search": ("3.1.0", False, {})}

    row = AuditLog.objects.get(action="toolbox.updated", tenant=tenant_a)
    assert row.actor_user_id == callers.user("tenant_admin").pk
    assert row.changes == {"skills": {"before": [], "after": ["calendar", "web-search"]},
                           "added": ["calendar", "web-search"], "removed": [], "changed": {}}


def test_put_replaces_the_whole_set(admin, tenant_a, calendar, search):
    crm = make_skill("crm", "1.0.0")
    send(admin, "PUT", TOOLBOX, {"skills": [entry(calendar, config={"provider": "google"}), entry(search)]})
    kept_row = toolbox_slugs(tenant_a)
    newer = make_skill("calendar", "2.0.0", configuration=CALENDAR_SCHEMA)
    response = send(admin, "PUT", TOOLBOX, {"skills": [entry(newer, config={"provider": "microsoft"}), entry(crm)]})
    assert response.status_code == 200, response.content
    assert toolbox_slugs(tenant_a) == {"calendar": ("2.0.0", True, {"provider": "microsoft"}),
                                       "crm": ("1.0.0", True, {})}
    assert kept_row["calendar"][0] == "1.2.0"
    row = AuditLog.objects.filter(action="toolbox.updated").order_by("-created_at").first()
    assert row.changes == {
        "skills": {"before": ["calendar", "web-search"], "after": ["calendar", "crm"]},
        "added": ["crm"], "removed": ["web-search"],
        "changed": {"calendar": {"version": {"before": "1.2.0", "after": "2.0.0"}, "config": "changed"}}}
    assert "microsoft" not in json.dumps(row.changes)  # settings values stay out of the audit trail

    assert send(admin, "PUT", TOOLBOX, {"skills": []}).json() == {"skills": []}
    assert toolbox_slugs(tenant_a) == {}


def test_a_replacement_that_changes_nothing_writes_nothing(admin, calendar, runtime_signals,
                                                           django_capture_on_commit_callbacks):
    body = {"skills": [entry(calendar, config={"provider": "google"})]}
    with django_capture_on_commit_callbacks(execute=True):
        send(admin, "PUT", TOOLBOX, body)
        before = admin.get(TOOLBOX).json()
        again = send(admin, "PUT", TOOLBOX, body)
    assert again.status_code == 200 and again.json() == before
    assert AuditLog.objects.filter(action="toolbox.updated").count() == 1
    assert len(runtime_signals) == 1


def test_toolbox_changes_reconfigure_the_runtime_on_commit(admin, tenant_a, calendar, runtime_signals,
                                                           django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        send(admin, "PUT", TOOLBOX, {"skills": [entry(calendar, config={"provider": "google"})]})
    assert runtime_signals == [] and len(callbacks) == 1
    with django_capture_on_commit_callbacks(execute=True):
        send(admin, "PUT", TOOLBOX, {"skills": [entry(calendar, config={"provider": "yahoo"})]})  # refused
        send(admin, "PUT", TOOLBOX, {"skills": []})
    assert len(runtime_signals) == 1
    signal = runtime_signals[0]
    assert (signal["sender"], signal["tenant"], signal["agent_id"], signal["reason"]) == (
        SkillInstallation, tenant_a, None, "toolbox.updated")


@pytest.mark.parametrize(("make_entries", "field"), [
    (lambda s: [entry(s["search"]), entry(s["pending"])], "skills.1.skillId"),
    (lambda s: [entry(s["search"]), entry(s["rejected"])], "skills.1.skillId"),
    (lambda s: [{"skillId": str(uuid.uuid4())}], "skills.0.skillId"),
    (lambda s: [{"skillId": "calendar"}], "skills.0.skillId"),
    (lambda s: [entry(s["search"]), entry(s["search"])], "skills.1.skillId"),
    (lambda s: [entry(s["calendar"], config={"provider": "google"}), entry(s["newer"], config={"provider": "google"})],
     "skills.1.skillId"),  # one version per skill
    (lambda s: [entry(s["search"]), entry(s["search2"]), entry(s["calendar"], config={"provider": "yahoo"})],
     "skills.2.config"),
    (lambda s: [entry(s["calendar"])], "skills.0.config"),  # provider is required
    (lambda s: [entry(s["calendar"], config={"provider": "google", "colour": "red"})], "skills.0.config"),
    (lambda s: [entry(s["calendar"], config=["provider"])], "skills.0.config"),
    (lambda s: [{**entry(s["search"]), "version": "3.1.0"}], "skills.0.version"),
    (lambda s: [{"enabled": True}], "skills.0.skillId"),
    (lambda s: None, "skills"),
])
def test_invalid_toolboxes_are_refused_naming_the_entry(admin, tenant_a, calendar, search, make_entries, field):
    skills = {"calendar": calendar, "search": search, "search2": make_skill("crm", "1.0.0"),
              "newer": make_skill("calendar", "2.0.0", configuration=CALENDAR_SCHEMA),
              "pending": make_skill("shell", "0.1.0", status="pending"),
              "rejected": make_skill("spyware", "0.1.0", status="rejected")}
    send(admin, "PUT", TOOLBOX, {"skills": [entry(search)]})
    entries = make_entries(skills)
    response = send(admin, "PUT", TOOLBOX, {} if entries is None else {"skills": entries})
    assert response.status_code == 400, response.content
    assert error(response)["code"] == "VALIDATION_ERROR"
    assert field in error(response)["details"], error(response)["details"]
    assert toolbox_slugs(tenant_a) == {"web-search": ("3.1.0", True, {})}  # all or nothing


def test_a_disabled_entry_needs_no_settings(admin, calendar):
    assert send(admin, "PUT", TOOLBOX, {"skills": [entry(calendar, enabled=False)]}).status_code == 200


def test_a_change_that_would_break_an_agents_own_settings_is_refused(admin, tenant_a, calendar, search):
    """Ava's calendar install names only the calendar: it relies on the toolbox's provider."""
    send(admin, "PUT", TOOLBOX, {"skills": [entry(search), entry(calendar, config={"provider": "google"})]})
    ava = make_agent(tenant_a, "Ava")
    make_install(tenant_a, ava, calendar, config={"calendar": "sales"})

    removal = send(admin, "PUT", TOOLBOX, {"skills": [entry(search)]})
    assert removal.status_code == 400, removal.content
    assert "Ava" in " ".join(error(removal)["details"]["skills"])
    # Version 2 adds a required setting that Ava's pinned version 1.2.0 does not know.
    v2_schema = {**CALENDAR_SCHEMA, "required": ["provider", "region"],
                 "properties": {**CALENDAR_SCHEMA["properties"], "region": {"enum": ["eu", "us"]}}}
    newer = make_skill("calendar", "2.0.0", configuration=v2_schema)
    change = send(admin, "PUT", TOOLBOX, {"skills": [entry(search), entry(newer, config={"provider": "google",
                                                                                          "region": "eu"})]})
    assert change.status_code == 400, change.content
    assert "Ava" in " ".join(error(change)["details"]["skills.1.config"])
    assert toolbox_slugs(tenant_a)["calendar"] == ("1.2.0", True, {"provider": "google"})
    # Switched-off installs carry no settings to break; a compatible change passes.
    ok = send(admin, "PUT", TOOLBOX, {"skills": [entry(search), entry(calendar, config={"provider": "microsoft"})]})
    assert ok.status_code == 200, ok.content


def test_another_tenant_has_its_own_toolbox(callers, tenant_a, tenant_b, calendar, search):
    send(callers["tenant_admin"], "PUT", TOOLBOX, {"skills": [entry(calendar, config={"provider": "google"})]})
    other = callers["other_tenant_admin"]
    assert other.get(TOOLBOX).json() == {"skills": []}
    assert send(other, "PUT", TOOLBOX, {"skills": [entry(search)]}).status_code == 200
    assert set(toolbox_slugs(tenant_a)) == {"calendar"} and set(toolbox_slugs(tenant_b)) == {"web-search"}


def test_toolbox_reads_do_not_grow_with_its_size(callers, tenant_a):
    client = callers["tenant_member"]
    client.get(TOOLBOX)

    def count() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(TOOLBOX)
        return len(response.json()["skills"]), len(queries)

    make_install(tenant_a, None, make_skill("skill-0", "1.0.0"))
    one = count()
    for n in range(1, 20):
        make_install(tenant_a, None, make_skill(f"skill-{n}", "1.0.0"))
    many = count()
    assert (one[0], many[0]) == (1, 20) and one[1] == many[1]


# --- Roles --------------------------------------------------------------------------------------------------


@pytest.fixture
def sales(calendar, search):
    make_skill("crm", "1.0.0", name="CRM")
    make_skill("crm", "1.1.0", name="CRM")
    make_skill("draft-skill", "0.1.0", status="pending")
    return make_role("sales", default_skills=["crm", "web-search", "draft-skill"],
                     default_settings={"thinking_mode": "low", "tools_profile": "messaging",
                                       "identity": {"emoji": "💼", "theme": "sales"}})


def role(client, key: str) -> dict:
    return next(item for item in client.get(ROLES, {"pageSize": 100}).json()["data"] if item["key"] == key)


def test_roles_show_platform_defaults_and_the_effective_values(callers, sales, search):
    response = callers["tenant_member"].get(ROLES)
    assert response.status_code == 200, response.content
    assert response.json()["pagination"]["total"] >= 1
    item = role(callers["tenant_member"], "sales")
    platform = {"defaultSkills": ["crm", "web-search", "draft-skill"],
                "defaultSettings": {"thinkingMode": "low", "toolsProfile": "messaging",
                                    "identity": {"emoji": "💼", "theme": "sales"}}}
    assert (item["name"], item["platform"], item["override"]) == ("Sales", platform, None)
    effective = item["effective"]
    assert (effective["defaultSkills"], effective["defaultSettings"]) == (platform["defaultSkills"],
                                                                          platform["defaultSettings"])
    assert effective["defaultSkillsSource"] == "platform"
    assert [(s["slug"], s["version"]) for s in effective["skills"]] == [("crm", "1.1.0"), ("web-search", "3.1.0")]
    assert effective["skills"][1]["skillId"] == str(search.pk)
    assert effective["unavailableSkills"] == ["draft-skill"]


def test_admin_overrides_a_role_and_sees_the_merge(admin, callers, tenant_a, sales, calendar):
    response = send(admin, "PATCH", f"{ROLES}/sales", {
        "defaultSkills": ["calendar"], "defaultSettings": {"thinkingMode": "high", "identity": {"emoji": "🚀"}}})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["override"]["defaultSkills"] == ["calendar"]
    assert body["override"]["defaultSettings"] == {"thinkingMode": "high", "identity": {"emoji": "🚀"}}
    assert body["effective"]["defaultSkills"] == ["calendar"] and body["effective"]["defaultSkillsSource"] == "tenant"
    # The override's keys win; `identity` is replaced as a whole, as the resolver does.
    assert body["effective"]["defaultSettings"] == {"thinkingMode": "high", "toolsProfile": "messaging",
                                                    "identity": {"emoji": "🚀"}}
    assert body["platform"]["defaultSkills"] == ["crm", "web-search", "draft-skill"]
    assert role(callers["tenant_member"], "sales") == body

    row = AuditLog.objects.get(action="role_override.updated", tenant=tenant_a)
    assert row.actor_user_id == callers.user("tenant_admin").pk and row.target_type == "agents.roleoverride"
    assert row.changes == {"role": "sales",
                           "default_skills": {"before": None, "after": ["calendar"]},
                           "default_settings": {"before": {}, "after": {"thinking_mode": "high",
                                                                        "identity": {"emoji": "🚀"}}}}


def test_only_the_fields_sent_change_and_null_inherits(admin, tenant_a, sales, calendar):
    send(admin, "PATCH", f"{ROLES}/sales", {"defaultSkills": ["calendar"], "defaultSettings": {"modelTier": "fast"}})
    body = send(admin, "PATCH", f"{ROLES}/sales", {"defaultSkills": None}).json()
    assert body["override"]["defaultSkills"] is None and body["override"]["defaultSettings"] == {"modelTier": "fast"}
    assert body["effective"]["defaultSkills"] == ["crm", "web-search", "draft-skill"]
    # An empty list is an override too: no role skills at all.
    body = send(admin, "PATCH", f"{ROLES}/sales", {"defaultSkills": []}).json()
    assert body["effective"]["defaultSkills"] == [] and body["effective"]["defaultSkillsSource"] == "tenant"

    cleared = send(admin, "PATCH", f"{ROLES}/sales", {"defaultSkills": None, "defaultSettings": None})
    assert cleared.status_code == 200 and cleared.json()["override"] is None
    with tenant_context(tenant_a):
        assert not RoleOverride.objects.exists()
    assert AuditLog.objects.filter(action="role_override.cleared", tenant=tenant_a).count() == 1
    # Clearing what is not there changes nothing and records nothing.
    assert send(admin, "PATCH", f"{ROLES}/sales", {"defaultSettings": {}}).status_code == 200
    assert AuditLog.objects.filter(action__startswith="role_override.").count() == 4


@pytest.mark.parametrize(("body", "field"), [
    ({"defaultSkills": ["calendar", "draft-skill"]}, "defaultSkills.1"),  # pending: not approved
    ({"defaultSkills": ["calendar", "nope"]}, "defaultSkills.1"),
    ({"defaultSkills": ["calendar", "calendar"]}, "defaultSkills"),
    ({"defaultSkills": ["Not A Slug"]}, "defaultSkills.0"),
    ({"defaultSkills": "calendar"}, "defaultSkills"),
    ({"defaultSettings": {"thinkingMode": "deep"}}, "defaultSettings.thinkingMode"),
    ({"defaultSettings": {"colour": "red"}}, "defaultSettings.colour"),
    ({"defaultSettings": {"identity": {"emoji": "x" * 9}}}, "defaultSettings.identity.emoji"),
    ({"defaultSettings": "fast"}, "defaultSettings.nonFieldErrors"),
    ({}, "nonFieldErrors"),
    ({"name": "Closers"}, "name"),
])
def test_invalid_overrides_are_refused(admin, tenant_a, sales, calendar, body, field):
    response = send(admin, "PATCH", f"{ROLES}/sales", body)
    assert response.status_code == 400, response.content
    assert error(response)["code"] == "VALIDATION_ERROR" and field in error(response)["details"], error(response)
    with tenant_context(tenant_a):
        assert not RoleOverride.objects.exists()


def test_an_unknown_role_is_not_found(admin):
    response = send(admin, "PATCH", f"{ROLES}/no-such-role", {"defaultSkills": None})
    assert response.status_code == 404 and error(response)["code"] == "NOT_FOUND"


def test_role_overrides_reconfigure_the_runtime_on_commit(admin, tenant_a, sales, runtime_signals,
                                                          django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        send(admin, "PATCH", f"{ROLES}/sales", {"defaultSettings": {"modelTier": "fast"}})
        send(admin, "PATCH", f"{ROLES}/sales", {"defaultSettings": {"modelTier": "fast"}})  # no change
        send(admin, "PATCH", f"{ROLES}/sales", {"defaultSettings": {"modelTier": "huge"}})  # refused
        send(admin, "PATCH", f"{ROLES}/sales", {"defaultSettings": None})
    assert [(s["sender"], s["tenant"], s["agent_id"], s["reason"]) for s in runtime_signals] == [
        (RoleOverride, tenant_a, None, "role_override.updated"),
        (RoleOverride, tenant_a, None, "role_override.cleared")]


def test_an_api_key_is_the_audited_actor(callers, sales, calendar):
    client = callers["api_key:tenant:write"]
    assert send(client, "PATCH", f"{ROLES}/sales", {"defaultSkills": ["calendar"]}).status_code == 200
    row = AuditLog.objects.get(action="role_override.updated")
    assert row.actor_api_key_id == client.api_key.pk and row.actor_user_id is None


def test_another_tenants_overrides_are_its_own(callers, tenant_a, tenant_b, sales, calendar, search):
    send(callers["tenant_admin"], "PATCH", f"{ROLES}/sales", {"defaultSkills": ["calendar"]})
    other = callers["other_tenant_admin"]
    assert role(other, "sales")["override"] is None
    send(other, "PATCH", f"{ROLES}/sales", {"defaultSkills": ["web-search"]})
    assert role(callers["tenant_member"], "sales")["effective"]["defaultSkills"] == ["calendar"]
    assert role(other, "sales")["effective"]["defaultSkills"] == ["web-search"]
    with tenant_context(tenant_b):
        assert RoleOverride.objects.get().default_skills == ["web-search"]


def test_role_reads_do_not_grow_with_the_page(callers, tenant_a, calendar):
    for n in range(30):
        make_role(f"role-{n:02d}", default_skills=["calendar", f"skill-{n}"],
                  default_settings={"model_tier": "fast"})
        make_skill(f"skill-{n}", "1.0.0")
        if n % 2:
            with tenant_context(tenant_a):
                RoleOverride.objects.create(role_id=f"role-{n:02d}", default_skills=[f"skill-{n}"])
    client = callers["tenant_member"]
    client.get(ROLES, {"pageSize": 5})

    counts = {}
    for size in (5, 25):
        with CaptureQueriesContext(connection) as queries:
            response = client.get(ROLES, {"pageSize": size})
        assert len(response.json()["data"]) == size
        counts[size] = len(queries)
    assert counts[5] == counts[25], counts


# --- The effect on an agent's configuration -----------------------------------------------------------------


def test_agent_config_follows_the_toolbox_role_overrides_and_model_defaults(callers, tenant_a, sales, calendar):
    """End to end, through the API only: each tenant-wide layer shows in GET agents/{id}/config."""
    admin = callers["tenant_admin"]
    agent_id = send(admin, "POST", "/api/v1/agents", {"name": "Ava", "role": "sales"}).json()["id"]
    config_url = f"/api/v1/agents/{agent_id}/config"
    before = admin.get(config_url).json()
    assert {s["slug"]: s["source"] for s in before["skills"]} == {"crm": "role", "web-search": "role"}
    assert before["thinkingMode"] == {"value": "low", "source": "role"}

    toolbox = {"skills": [entry(calendar, config={"provider": "google"})]}
    assert send(admin, "PUT", TOOLBOX, toolbox).status_code == 200
    assert send(admin, "PATCH", f"{ROLES}/sales", {
        "defaultSkills": ["crm"], "defaultSettings": {"thinkingMode": "high", "modelTier": "powerful"}}
    ).status_code == 200
    assert send(admin, "PATCH", "/api/v1/tenant", {
        "modelDefaults": {"tiers": {"powerful": "openai/gpt-5"}}}).status_code == 200

    config = callers["tenant_member"].get(config_url).json()
    skills = {s["slug"]: s for s in config["skills"]}
    assert set(skills) == {"calendar", "crm"}
    assert (skills["calendar"]["source"], skills["calendar"]["config"]) == ("toolbox", {"provider": "google"})
    assert (skills["crm"]["source"], skills["crm"]["version"]) == ("role", "1.1.0")
    assert config["thinkingMode"] == {"value": "high", "source": "role"}
    assert config["model"]["tier"] == "powerful" and config["model"]["tierSource"] == "role"
    assert (config["model"]["primary"], config["model"]["source"]) == ("openai/gpt-5", "tenant")

    # GET roles' `effective` is what the resolver applies (identity included, replaced as a whole).
    send(admin, "PATCH", f"{ROLES}/sales", {"defaultSettings": {"identity": {"theme": "closers"}}})
    effective = role(admin, "sales")["effective"]
    config = admin.get(config_url).json()
    assert {key: item["value"] for key, item in config["identity"].items()} == effective["defaultSettings"]["identity"]
    assert config["toolsProfile"]["value"] == effective["defaultSettings"]["toolsProfile"]
    role_skills = sorted(s["slug"] for s in config["skills"] if s["source"] == "role")
    assert role_skills == sorted(s["slug"] for s in effective["skills"])

    # Switching a toolbox skill off (the whole set again, without calendar enabled) reaches the agent.
    send(admin, "PUT", TOOLBOX, {"skills": [entry(calendar, enabled=False, config={"provider": "google"})]})
    config = admin.get(config_url).json()
    assert [(s["slug"], s["source"]) for s in config["disabledSkills"]] == [("calendar", "toolbox")]


# --- A race between two whole-set replacements ----------------------------------------------------------------


@pytest.mark.django_db(transaction=True, available_apps=[*settings.INSTALLED_APPS])
def test_concurrent_replacements_of_an_empty_toolbox_both_apply_in_turn():
    """Without serialisation both would see an empty toolbox and insert the same skill: one would
    fail on the unique index. With it the second runs after the first, on its result."""
    tenant = tenant_services.provision(tenant_services.create_tenant(
        company_name=f"Race {uuid.uuid4().hex[:6]}", admin_email="owner@race.example"))
    admin = add_member(tenant=tenant, email="admin@race.example", password="correct-horse-battery-staple",
                       name="Admin", role=Role.TENANT_ADMIN)
    calendar = make_skill("calendar", "1.2.0", configuration=CALENDAR_SCHEMA)
    crm = make_skill("crm", "1.0.0")
    bodies = [{"skills": [entry(calendar, config={"provider": "google"}), entry(crm)]},
              {"skills": [entry(calendar, config={"provider": "microsoft"})]}]
    token = issue_access_token(admin, mfa_verified=False)
    barrier = threading.Barrier(2)
    statuses = []

    def put(body):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        try:
            barrier.wait()
            statuses.append(send(client, "PUT", TOOLBOX, body).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=put, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert statuses == [200, 200]
    final = toolbox_slugs(tenant)
    assert final in ({"calendar": ("1.2.0", True, {"provider": "google"}), "crm": ("1.0.0", True, {})},
                     {"calendar": ("1.2.0", True, {"provider": "microsoft"})})
    first, second = AuditLog.objects.filter(action="toolbox.updated", tenant=tenant).order_by("created_at")
    assert first.changes["skills"]["before"] == []  # the first saw it empty ...
    assert second.changes["skills"]["before"] == first.changes["skills"]["after"]  # ... the second, its result
