"""Platform console: the skill review queue (approve, reject) and the role catalog."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.skills.models import AgentRole, Skill
from tests.api.agent_factories import make_role, make_skill
from tests.api.matrix import named_path
from tests.api.platform_support import (
    PLATFORM,
    assert_queries_do_not_grow_with_the_page,
    audit_rows,
    error,
    ids,
    platform_matrix,
    platform_row,
)

QUEUE = f"{PLATFORM}/skills/review"
ROLES = f"{PLATFORM}/roles"


def pending(slug: str | None = None, **fields) -> Skill:
    skill = make_skill(slug or f"skill-{uuid.uuid4().hex[:8]}", status="pending")
    if fields:
        Skill.objects.filter(pk=skill.pk).update(**fields)
        skill.refresh_from_db()
    return skill


# --- Authorization matrix ----------------------------------------------------------------------------


def a_pending_skill(verb: str):
    return named_path(f"pending_skill_{verb}", lambda ctx: f"{PLATFORM}/skills/{pending().pk}/{verb}")


def a_role(ctx) -> str:
    return f"{ROLES}/{make_role('matrix_role').key}"


ROWS = [
    platform_row("GET", QUEUE),
    platform_row("POST", a_pending_skill("approve"), body={}),
    platform_row("POST", a_pending_skill("reject"), body={"reason": "Too broad"}),
    platform_row("GET", ROLES),
    platform_row("POST", ROLES, body={"key": "matrix_new", "name": "Matrix"}, ok=201),
    platform_row("PATCH", a_role, body={"name": "Renamed"}),
]
test_matrix, test_refusals, admin = platform_matrix(ROWS)


# --- Review queue ---------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_queue_lists_pending_versions_oldest_first(admin, callers):
    author = callers.user("tenant_admin")
    first = pending("mailer", capabilities={"permissions": ["mail:send"], "requires_secrets": ["SMTP_PASSWORD"]})
    Skill.objects.filter(pk=first.pk).update(author=author, created_at=timezone.now() - timedelta(hours=1))
    second = pending("ledger")
    Skill.objects.filter(pk=second.pk).update(category="data")
    make_skill("approved-one")  # not pending: not in the queue

    body = admin.get(QUEUE).json()
    assert [row["id"] for row in body["data"]] == [str(first.pk), str(second.pk)]
    row = body["data"][0]
    assert row["author"] == {"id": str(author.pk), "email": author.email, "name": author.name}
    # The skill's own JSON is shown as its author wrote it (keys not camel-cased).
    assert row["capabilities"] == {"permissions": ["mail:send"], "requires_secrets": ["SMTP_PASSWORD"]}
    assert (row["status"], row["reviewedBy"], row["reviewedAt"]) == ("pending", None, None)

    assert ids(admin.get(QUEUE, {"category": "data"})) == [str(second.pk)]
    assert ids(admin.get(QUEUE, {"ordering": "-createdAt"})) == [str(second.pk), str(first.pk)]
    response = admin.get(QUEUE, {"category": "games", "ordering": "name"})
    assert (response.status_code, set(error(response)["details"])) == (400, {"category", "ordering"})


@pytest.mark.django_db
def test_the_queue_query_count_does_not_grow_with_the_page(admin, callers):
    author = callers.user("tenant_admin")
    for _ in range(10):
        Skill.objects.filter(pk=pending().pk).update(author=author)
    assert_queries_do_not_grow_with_the_page(admin, QUEUE, (2, 8))


@pytest.mark.django_db
def test_approve(admin):
    skill = pending()
    response = admin.post(f"{PLATFORM}/skills/{skill.pk}/approve", {"note": "Looks good"}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["reviewNote"], body["reviewedBy"]["id"]) == ("approved", "Looks good",
                                                                               str(admin.user.pk))
    assert audit_rows("skill.approved", actor_user=admin.user, target_id=str(skill.pk), tenant=None).count() == 1
    assert admin.get(QUEUE).json()["data"] == []

    again = admin.post(f"{PLATFORM}/skills/{skill.pk}/approve", {}, format="json")
    assert (again.status_code, error(again)["code"]) == (409, "INVALID_STATE")
    assert error(again)["details"]["status"] == "approved"


@pytest.mark.django_db
def test_reject_needs_a_reason_and_is_final(admin):
    skill = pending()
    url = f"{PLATFORM}/skills/{skill.pk}/reject"
    for body in ({}, {"reason": ""}, {"reason": "  "}, {"reason": "x", "note": "y"}):
        response = admin.post(url, body, format="json")
        assert (response.status_code, error(response)["code"]) == (400, "VALIDATION_ERROR"), body
    skill.refresh_from_db()
    assert skill.status == "pending"

    response = admin.post(url, {"reason": "Asks for every mailbox"}, format="json")
    assert (response.status_code, response.json()["status"]) == (200, "rejected")
    assert response.json()["reviewNote"] == "Asks for every mailbox"
    assert audit_rows("skill.rejected", actor_user=admin.user, target_id=str(skill.pk)).count() == 1

    for verb, body in (("reject", {"reason": "again"}), ("approve", {})):
        response = admin.post(f"{PLATFORM}/skills/{skill.pk}/{verb}", body, format="json")
        assert (response.status_code, error(response)["code"]) == (409, "INVALID_STATE")


@pytest.mark.django_db
@pytest.mark.parametrize("verb", ["approve", "reject"])
def test_unknown_skills_are_404(admin, verb):
    response = admin.post(f"{PLATFORM}/skills/{uuid.uuid4()}/{verb}", {"reason": "x"}, format="json")
    assert (response.status_code, error(response)["code"]) == (404, "NOT_FOUND")


# --- Role catalog ------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_list_roles_by_key(admin):
    make_role("support", default_skills=["helpdesk"], default_settings={"model_tier": "fast"})
    make_role("engineering")
    body = admin.get(ROLES).json()
    keys = [row["key"] for row in body["data"]]
    assert keys == sorted(keys) and {"support", "engineering"} <= set(keys)
    support = next(row for row in body["data"] if row["key"] == "support")
    assert (support["defaultSkills"], support["defaultSettings"]) == (["helpdesk"], {"modelTier": "fast"})


@pytest.mark.django_db
def test_roles_query_count_does_not_grow_with_the_page(admin):
    for index in range(10):
        make_role(f"role_{index}")
    assert_queries_do_not_grow_with_the_page(admin, ROLES, (2, 8))


@pytest.mark.django_db
def test_create_role(admin):
    make_skill("web-search")
    pending("summarizer")  # under review: may already be named (the role follows the newest approved)
    body = {"key": "research", "name": "Research", "description": "Finds sources.",
            "defaultSkills": ["web-search", "summarizer"],
            "defaultSettings": {"modelTier": "powerful", "thinkingMode": "high",
                                "identity": {"theme": "curious", "emoji": "🔎"}}}
    response = admin.post(ROLES, body, format="json")
    assert response.status_code == 201, response.content
    created = response.json()
    assert (created["key"], created["defaultSkills"], created["defaultSettings"]) == (
        "research", ["web-search", "summarizer"], body["defaultSettings"])
    role = AgentRole.objects.get(key="research")
    assert role.default_settings == {"model_tier": "powerful", "thinking_mode": "high",
                                     "identity": {"theme": "curious", "emoji": "🔎"}}
    assert audit_rows("role.created", actor_user=admin.user, target_id=str(role.pk), tenant=None).count() == 1

    again = admin.post(ROLES, {"key": "research", "name": "Again"}, format="json")
    assert (again.status_code, error(again)["code"], error(again)["details"]["field"]) == (409, "CONFLICT", "key")


@pytest.mark.django_db
@pytest.mark.parametrize(("body", "fields"), [
    ({}, {"key", "name"}),
    ({"key": "Bad Key", "name": "x"}, {"key"}),
    ({"key": "ok", "name": "x", "defaultSkills": ["no-such-skill"]}, {"defaultSkills"}),
    ({"key": "ok", "name": "x", "defaultSkills": ["web-search", "web-search"]}, {"defaultSkills"}),
    ({"key": "ok", "name": "x", "defaultSettings": {"modelTier": "huge"}}, {"defaultSettings.modelTier"}),
    ({"key": "ok", "name": "x", "defaultSettings": {"temperature": 2}}, {"defaultSettings.temperature"}),
    ({"key": "ok", "name": "x", "defaultSettings": {"identity": {"emoji": "far-too-long"}}},
     {"defaultSettings.identity.emoji"}),
])
def test_create_role_validates(admin, body, fields):
    make_skill("web-search")
    response = admin.post(ROLES, body, format="json")
    assert (response.status_code, error(response)["code"]) == (400, "VALIDATION_ERROR"), response.content
    assert set(error(response)["details"]) == fields
    assert not AgentRole.objects.filter(key="ok").exists()


@pytest.mark.django_db
def test_patch_role_replaces_defaults_and_audits_the_diff(admin):
    make_skill("calendar")
    make_skill("crm")
    role = make_role("sales", default_skills=["calendar"], default_settings={"model_tier": "fast",
                                                                             "tools_profile": "messaging"})
    response = admin.patch(f"{ROLES}/sales", {"defaultSkills": ["crm", "calendar"],
                                              "defaultSettings": {"thinkingMode": "low"}}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["key"], body["defaultSkills"], body["defaultSettings"]) == (
        "sales", ["crm", "calendar"], {"thinkingMode": "low"})
    entry = audit_rows("role.updated", target_id=str(role.pk), actor_user=admin.user).get()
    assert entry.changes == {
        "default_skills": {"before": ["calendar"], "after": ["crm", "calendar"]},
        "default_settings": {"before": {"model_tier": "fast", "tools_profile": "messaging"},
                             "after": {"thinking_mode": "low"}},
    }
    # Changing nothing writes nothing.
    assert admin.patch(f"{ROLES}/sales", {"defaultSkills": ["crm", "calendar"]}, format="json").status_code == 200
    assert audit_rows("role.updated", target_id=str(role.pk)).count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(("body", "fields"), [
    ({}, {"nonFieldErrors"}),
    ({"key": "renamed"}, {"key"}),
    ({"defaultSkills": ["ghost"]}, {"defaultSkills"}),
    ({"name": ""}, {"name"}),
])
def test_patch_role_validates(admin, body, fields):
    role = make_role("support")
    response = admin.patch(f"{ROLES}/support", body, format="json")
    assert (response.status_code, error(response)["code"]) == (400, "VALIDATION_ERROR"), response.content
    assert set(error(response)["details"]) == fields
    assert not audit_rows("role.updated", target_id=str(role.pk)).exists()


@pytest.mark.django_db
def test_unknown_role_is_404(admin):
    response = admin.patch(f"{ROLES}/no_such_role", {"name": "x"}, format="json")
    assert (response.status_code, error(response)["code"]) == (404, "NOT_FOUND")
