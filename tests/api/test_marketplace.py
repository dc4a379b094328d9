"""The skill marketplace, tenant side: browse (newest approved version per slug, full-text search
ranked by relevance, category filter), read one, categories, submit for review, one's own
submissions; who may call each."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.accounts.models import Role
from apps.accounts.services import add_member
from apps.audit.models import AuditLog
from apps.skills.models import Skill
from apps.skills.selectors import semver_key
from apps.tenants.services import suspend
from tests.api.conftest import api_key_client, bearer_client
from tests.api.matrix import Row, matrix_test

SKILLS = "/api/v1/skills"
PASSWORD = "correct-horse-battery-staple"

READERS = frozenset({"tenant_admin", "tenant_member", "api_key:skills:read"})
# The marketplace is shared by every tenant: tenant B's admin browses it too.
ALL_TENANTS_READERS = READERS | {"other_tenant_admin"}
WRONG_SCOPES = ("api_key:skills:write", "api_key:agents:read", "api_key:audit:read")


def make(slug: str, version: str = "1.0.0", *, status: str = Skill.Status.APPROVED, name: str | None = None,
         description: str = "", category: str = Skill.Category.PRODUCTIVITY, author=None, **fields) -> Skill:
    return Skill.objects.create(
        slug=slug, version=version, status=status, name=name or slug.replace("-", " ").title(),
        description=description, category=category, author=author,
        reviewed_at=None if status == Skill.Status.PENDING else timezone.now(), **fields)


def stamp(moment) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def error(response) -> dict:
    return response.json()["error"]


def slugs(response) -> list[tuple[str, str]]:
    return [(item["slug"], item["version"]) for item in response.json()["data"]]


def new_skill_body(**overrides) -> dict:
    body = {
        "name": "Invoice reader",
        "slug": "invoice-reader",
        "version": "1.0.0",
        "category": "data",
        "description": "Extracts totals, dates and vendors from PDF invoices.",
        "capabilities": {"permissions": ["files:read"], "network": False, "requires_secrets": ["OCR_API_KEY"]},
        "configuration": {"type": "object", "properties": {"currency": {"type": "string", "default": "EUR"},
                                                           "max_pages": {"type": "integer", "minimum": 1}},
                          "additionalProperties": False},
    }
    return {**body, **overrides}


# --- Authorization matrix ------------------------------------------------------------------------


def approved_path(ctx) -> str:
    return f"{SKILLS}/{make('matrix-approved').pk}"


def pending_of_a_path(ctx) -> str:
    """A submission of tenant A's admin, still under review: nobody else may read it."""
    return f"{SKILLS}/{make('matrix-pending', status=Skill.Status.PENDING, author=ctx.user('tenant_admin')).pk}"


ROWS = [
    Row("GET", SKILLS, allowed=ALL_TENANTS_READERS, extra_callers=WRONG_SCOPES),
    Row("GET", approved_path, allowed=ALL_TENANTS_READERS, extra_callers=WRONG_SCOPES),
    # The key in the matrix has no creator, so it owns no submission.
    Row("GET", pending_of_a_path, allowed={"tenant_admin"}, extra_callers=("api_key:skills:read",),
        refused={"other_tenant_admin": (404,), "tenant_member": (404,), "api_key:skills:read": (404,)}),
    Row("GET", f"{SKILLS}/categories", allowed=ALL_TENANTS_READERS, extra_callers=WRONG_SCOPES),
    Row("GET", f"{SKILLS}/mine", allowed=ALL_TENANTS_READERS, extra_callers=WRONG_SCOPES),
    Row("POST", SKILLS, body=new_skill_body(), ok=201,
        allowed={"tenant_admin", "other_tenant_admin", "api_key:skills:write"},
        extra_callers=("api_key:skills:read", "api_key:agents:write")),
]
test_matrix = matrix_test(ROWS)

SUSPENDED_CASES = [(row, caller) for row in ROWS
                   for caller in ("tenant_admin", "tenant_member", "api_key:skills:read", "api_key:skills:write")]


@pytest.mark.django_db
@pytest.mark.parametrize(("row", "caller"), SUSPENDED_CASES, ids=[f"{r.id()} as {c}" for r, c in SUSPENDED_CASES])
def test_a_suspended_tenant_is_refused_before_anything_else(row, caller, callers):
    path = row.path(callers) if callable(row.path) else row.path
    client = callers[caller]
    suspend(callers.tenant_a, reason="Unpaid invoices")
    response = client.generic(row.method, path, data=json.dumps(row.body) if row.body else None,
                              content_type="application/json")
    assert response.status_code == 403
    assert error(response)["code"] == "TENANT_SUSPENDED"


# --- Browse ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_list_shows_approved_skills_with_their_public_fields(callers):
    admin = callers.user("tenant_admin")
    mailer = make("mailer", name="Mailer", description="Sends e-mail.", category=Skill.Category.COMMUNICATION,
                  capabilities={"network": True}, author=admin, review_note="Looks good")
    make("drafty", status=Skill.Status.PENDING)
    make("bad", status=Skill.Status.REJECTED, review_note="No.")

    response = callers["tenant_member"].get(SKILLS)

    assert response.status_code == 200
    body = response.json()
    assert body["pagination"] == {"page": 1, "pageSize": 25, "total": 1, "totalPages": 1}
    assert body["data"] == [{
        "id": str(mailer.pk), "slug": "mailer", "name": "Mailer", "version": "1.0.0", "category": "communication",
        "description": "Sends e-mail.", "capabilities": {"network": True}, "status": "approved",
        "mine": False,  # the admin's, not the member's
        "createdAt": stamp(mailer.created_at), "reviewedAt": stamp(mailer.reviewed_at),
    }]
    assert callers["tenant_admin"].get(SKILLS).json()["data"][0]["mine"] is True


@pytest.mark.django_db
def test_the_list_shows_the_newest_approved_version_of_each_slug(callers):
    # Semantic-version precedence, not text order or submission order.
    for version in ("2.0.0", "1.10.0", "1.2.0", "2.0.0-rc.1"):
        make("planner", version)
    make("planner", "3.0.0", status=Skill.Status.PENDING)  # not approved: does not count
    make("planner", "4.0.0", status=Skill.Status.REJECTED)
    make("ledger", "0.9.0")
    make("ledger", "1.0.0-beta.2")  # a pre-release of a higher version outranks an older release
    make("router", "0.1.0")

    response = callers["tenant_member"].get(SKILLS)

    assert slugs(response) == [("ledger", "1.0.0-beta.2"), ("planner", "2.0.0"), ("router", "0.1.0")]
    assert response.json()["pagination"]["total"] == 3


@pytest.mark.django_db
def test_a_release_outranks_its_pre_releases_and_older_versions_stay_readable(callers):
    rc = make("ledger", "1.0.0-rc.1")
    release = make("ledger", "1.0.0")
    old = make("ledger", "0.9.0")
    reader = callers["tenant_member"]

    assert slugs(reader.get(SKILLS)) == [("ledger", "1.0.0")]
    detail = reader.get(f"{SKILLS}/{old.pk}")
    assert detail.status_code == 200
    assert [(v["id"], v["version"]) for v in detail.json()["versions"]] == [
        (str(release.pk), "1.0.0"), (str(rc.pk), "1.0.0-rc.1"), (str(old.pk), "0.9.0")]


def test_semver_key_orders_like_the_specification_for_the_cases_it_supports():
    ordered = ["0.9.0", "1.0.0-alpha", "1.0.0-rc.1", "1.0.0", "1.2.0", "1.10.0", "2.0.0+build.7",
               "18446744073709551616.0.0"]  # beyond bigint: SQL compares numeric[]
    assert sorted(reversed(ordered), key=semver_key) == ordered


@pytest.mark.django_db
def test_sql_and_python_agree_on_the_newest_version_of_huge_numbers(callers):
    make("big", "18446744073709551616.0.0")
    make("big", "9.0.0")
    assert slugs(callers["tenant_member"].get(SKILLS)) == [("big", "18446744073709551616.0.0")]


@pytest.mark.django_db
def test_category_filter_and_orderings(callers):
    make("zeta-crm", name="Zeta CRM", category=Skill.Category.SALES)
    make("alpha-crm", name="Alpha CRM", category=Skill.Category.SALES)
    make("pager", name="Pager", category=Skill.Category.OPERATIONS)
    reader = callers["tenant_member"]

    assert slugs(reader.get(SKILLS, {"category": "sales"})) == [("alpha-crm", "1.0.0"), ("zeta-crm", "1.0.0")]
    assert slugs(reader.get(SKILLS, {"category": "sales", "ordering": "-name"})) == [
        ("zeta-crm", "1.0.0"), ("alpha-crm", "1.0.0")]
    assert slugs(reader.get(SKILLS, {"ordering": "-createdAt"})) == [
        ("pager", "1.0.0"), ("alpha-crm", "1.0.0"), ("zeta-crm", "1.0.0")]
    assert reader.get(SKILLS, {"category": "security"}).json()["data"] == []


@pytest.mark.django_db
def test_invalid_query_parameters_are_validation_errors(callers):
    reader = callers["tenant_member"]
    response = reader.get(SKILLS, {"category": "astrology", "ordering": "popularity", "pageSize": 25})
    assert response.status_code == 400
    assert error(response)["code"] == "VALIDATION_ERROR"
    assert set(error(response)["details"]) == {"category", "ordering"}
    assert reader.get(SKILLS, {"search": "x" * 201}).status_code == 400


# --- Search ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_search_ranks_the_better_match_first(callers):
    make("mailer", name="Mailer", description="Sends e-mail; can attach an invoice to a message.")
    make("invoice-reader", name="Invoice reader", description="Reads invoices and extracts invoice totals.")
    make("calendar", name="Calendar", description="Books meetings.")
    make("old-invoices", "1.0.0", name="Invoice archive", status=Skill.Status.PENDING)
    reader = callers["tenant_member"]

    response = reader.get(SKILLS, {"search": "invoices"})  # stemmed: matches "invoice" too

    assert response.status_code == 200
    # The name (weight A) and repeated mentions outrank one mention in a description (weight B).
    assert slugs(response) == [("invoice-reader", "1.0.0"), ("mailer", "1.0.0")]
    assert response.json()["pagination"]["total"] == 2


@pytest.mark.django_db
def test_search_takes_web_search_syntax_and_an_explicit_ordering(callers):
    make("mailer", name="Mailer", description="Sends e-mail; can attach an invoice.")
    make("invoice-reader", name="Invoice reader", description="Reads invoices.")
    make("invoice-mailer", name="Invoice mailer", description="Sends invoices by e-mail.")
    reader = callers["tenant_member"]

    assert slugs(reader.get(SKILLS, {"search": "invoice -mailer"})) == [("invoice-reader", "1.0.0")]
    assert slugs(reader.get(SKILLS, {"search": '"invoice reader"'})) == [("invoice-reader", "1.0.0")]
    assert slugs(reader.get(SKILLS, {"search": "invoice", "ordering": "name"})) == [
        ("invoice-mailer", "1.0.0"), ("invoice-reader", "1.0.0"), ("mailer", "1.0.0")]
    # Only stop words: an empty query, which matches nothing rather than everything.
    assert reader.get(SKILLS, {"search": "the"}).json()["data"] == []


@pytest.mark.django_db
def test_search_and_category_combine(callers):
    make("crm-notes", name="CRM notes", category=Skill.Category.SALES)
    make("support-notes", name="Support notes", category=Skill.Category.SUPPORT)
    response = callers["tenant_member"].get(SKILLS, {"search": "notes", "category": "support"})
    assert slugs(response) == [("support-notes", "1.0.0")]


# --- Detail ---------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_detail_shows_configuration_and_versions_but_not_someone_elses_review_note(callers):
    admin = callers.user("tenant_admin")
    configuration = {"type": "object", "properties": {"calendar_id": {"type": "string"}}, "required": ["calendar_id"]}
    skill = make("calendar", "1.1.0", author=admin, review_note="Approved with thanks",
                 configuration=configuration, capabilities={"permissions": ["calendar:write"]})

    response = callers["tenant_member"].get(f"{SKILLS}/{skill.pk}")

    assert response.status_code == 200
    body = response.json()
    assert body["configuration"] == configuration  # verbatim: the skill's own keys are not camel-cased
    assert body["capabilities"] == {"permissions": ["calendar:write"]}
    assert body["mine"] is False and body["reviewNote"] is None
    assert body["versions"] == [{"id": str(skill.pk), "version": "1.1.0",
                                 "reviewedAt": stamp(skill.reviewed_at)}]
    mine = callers["tenant_admin"].get(f"{SKILLS}/{skill.pk}").json()
    assert mine["mine"] is True and mine["reviewNote"] == "Approved with thanks"


@pytest.mark.django_db
def test_own_submissions_are_readable_in_any_status_and_nobody_elses(callers, tenant_a):
    admin = callers.user("tenant_admin")
    colleague = add_member(tenant=tenant_a, email="other-admin@a.example", password=PASSWORD, name="Other",
                           role=Role.TENANT_ADMIN)
    rejected = make("mine", "1.0.0", status=Skill.Status.REJECTED, author=admin, review_note="Needs a schema")
    theirs = make("theirs", "1.0.0", status=Skill.Status.PENDING, author=colleague)

    own = callers["tenant_admin"].get(f"{SKILLS}/{rejected.pk}")
    assert own.status_code == 200
    assert own.json()["status"] == "rejected" and own.json()["reviewNote"] == "Needs a schema"
    assert own.json()["versions"] == []  # no approved version of that slug yet
    # Not even a colleague of the same tenant sees another's submission under review.
    for client in (callers["tenant_admin"], callers["other_tenant_admin"], callers["tenant_member"]):
        response = client.get(f"{SKILLS}/{theirs.pk}")
        assert response.status_code == 404 and error(response)["code"] == "NOT_FOUND"
    assert bearer_client(colleague).get(f"{SKILLS}/{theirs.pk}").status_code == 200


@pytest.mark.django_db
def test_unknown_and_malformed_ids_are_not_found(callers):
    reader = callers["tenant_member"]
    assert reader.get(f"{SKILLS}/00000000-0000-0000-0000-000000000000").status_code == 404
    response = reader.get(f"{SKILLS}/not-a-uuid")
    assert response.status_code == 404 and error(response)["code"] == "NOT_FOUND"


# --- Categories -------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_categories_count_approved_skills_as_the_list_shows_them(callers):
    make("crm", "1.0.0", category=Skill.Category.SALES)
    make("crm", "1.1.0", category=Skill.Category.SALES)  # one slug: counted once
    make("quotes", category=Skill.Category.SALES)
    make("pager", category=Skill.Category.OPERATIONS)
    make("pending-one", status=Skill.Status.PENDING, category=Skill.Category.SECURITY)
    make("rejected-one", status=Skill.Status.REJECTED, category=Skill.Category.SECURITY)

    response = callers["tenant_member"].get(f"{SKILLS}/categories")

    assert response.status_code == 200
    data = response.json()["data"]
    assert [row["category"] for row in data] == list(Skill.Category.values)  # all of them, zeros included
    counts = {row["category"]: row["count"] for row in data}
    assert counts == {**dict.fromkeys(Skill.Category.values, 0), "sales": 2, "operations": 1}
    assert data[0] == {"category": "productivity", "label": "Productivity", "count": 0}


@pytest.mark.django_db
def test_categories_do_not_depend_on_the_path_order(callers):
    # skills/categories and skills/mine are routes of their own, never read as a skill id.
    assert callers["tenant_member"].get(f"{SKILLS}/categories").status_code == 200
    assert callers["tenant_member"].get(f"{SKILLS}/mine").status_code == 200


# --- Submit --------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_submitting_creates_a_pending_version_authored_by_the_caller_and_audited(callers, tenant_a):
    admin = callers["tenant_admin"]

    response = admin.post(SKILLS, new_skill_body(), format="json", HTTP_USER_AGENT="pytest-agent")

    assert response.status_code == 201, response.content
    body = response.json()
    skill = Skill.objects.get(pk=body["id"])
    assert skill.status == Skill.Status.PENDING and skill.author == callers.user("tenant_admin")
    assert skill.reviewed_at is None and skill.slug == "invoice-reader" and skill.category == "data"
    assert response["Location"].endswith(f"{SKILLS}/{skill.pk}")
    assert body["status"] == "pending" and body["mine"] is True and body["reviewNote"] == ""
    assert body["configuration"] == new_skill_body()["configuration"]
    assert body["capabilities"] == new_skill_body()["capabilities"]  # requires_secrets kept verbatim
    assert body["versions"] == []

    entry = AuditLog.objects.get(action="skill.submitted")
    assert entry.tenant_id == tenant_a.pk and entry.actor_user == callers.user("tenant_admin")
    assert (entry.target_type, entry.target_id) == ("skills.skill", str(skill.pk))
    assert entry.changes == {"slug": "invoice-reader", "version": "1.0.0", "name": "Invoice reader",
                             "category": "data", "status": "pending"}
    assert entry.user_agent == "pytest-agent" and entry.request_id == response["X-Request-ID"]

    # Under review: not in the marketplace, but in the author's own list.
    assert admin.get(SKILLS).json()["data"] == []
    assert [item["id"] for item in admin.get(f"{SKILLS}/mine").json()["data"]] == [str(skill.pk)]


@pytest.mark.django_db
def test_configuration_defaults_to_a_schema_without_settings(callers):
    body = new_skill_body()
    del body["configuration"], body["capabilities"], body["category"], body["description"]
    response = callers["tenant_admin"].post(SKILLS, body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["configuration"] == {"type": "object"}
    assert response.json()["capabilities"] == {} and response.json()["category"] == "other"


@pytest.mark.django_db
@pytest.mark.parametrize(("overrides", "field"), [
    ({"version": "1.0"}, "version"),
    ({"version": "01.0.0"}, "version"),
    ({"slug": "Not a slug!"}, "slug"),
    ({"name": ""}, "name"),
    ({"category": "astrology"}, "category"),
    ({"configuration": {"type": "nonsense"}}, "configuration"),  # not a JSON Schema
    ({"configuration": {"type": "array", "items": {"type": "string"}}}, "configuration"),  # not an object
    ({"configuration": ["type", "object"]}, "configuration"),
    ({"capabilities": {"permissions": ["Read Everything"]}}, "capabilities"),
    ({"capabilities": {"root_access": True}}, "capabilities"),
    ({"capabilities": "all"}, "capabilities"),
    ({"status": "approved"}, "status"),  # nobody approves their own skill
    ({"author": "00000000-0000-0000-0000-000000000000"}, "author"),
])
def test_invalid_submissions_are_validation_errors(callers, overrides, field):
    response = callers["tenant_admin"].post(SKILLS, new_skill_body(**overrides), format="json")
    assert response.status_code == 400, response.content
    assert error(response)["code"] == "VALIDATION_ERROR"
    assert field in error(response)["details"], error(response)
    assert not Skill.objects.exists() and not AuditLog.objects.filter(action="skill.submitted").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("configuration", [
    {"type": "object", "properties": {"note": {"type": "string", "default": "a\x00b"}}},
    {"type": "object", "properties": {"a\x00b": {"type": "string"}}},  # in a key too
])
def test_a_nul_character_in_json_is_refused_not_a_server_error(callers, configuration):
    # Found by tests/api/test_openapi_fuzz.py: PostgreSQL's jsonb cannot store \u0000 (a 500 before).
    response = callers["tenant_admin"].post(SKILLS, new_skill_body(configuration=configuration), format="json")
    assert response.status_code == 400, response.content
    assert error(response)["code"] == "MALFORMED_REQUEST"
    assert not Skill.objects.exists()


@pytest.mark.django_db
def test_missing_fields_are_listed(callers):
    response = callers["tenant_admin"].post(SKILLS, {}, format="json")
    assert response.status_code == 400
    assert set(error(response)["details"]) == {"name", "slug", "version"}


@pytest.mark.django_db
def test_the_same_slug_and_version_twice_is_a_conflict_whatever_its_status(callers):
    admin = callers.user("tenant_admin")
    make("invoice-reader", "1.0.0", status=Skill.Status.REJECTED, author=admin)

    response = callers["tenant_admin"].post(SKILLS, new_skill_body(), format="json")

    assert response.status_code == 409
    assert error(response)["code"] == "CONFLICT"
    assert error(response)["details"] == {"reason": "version_exists", "slug": "invoice-reader", "version": "1.0.0"}
    assert Skill.objects.count() == 1


@pytest.mark.django_db
def test_a_new_version_of_the_tenants_own_skill_is_accepted(callers, tenant_a):
    colleague = add_member(tenant=tenant_a, email="publisher@a.example", password=PASSWORD, name="Pub",
                           role=Role.TENANT_ADMIN)
    make("invoice-reader", "1.0.0", author=colleague)

    response = callers["tenant_admin"].post(SKILLS, new_skill_body(version="1.1.0"), format="json")

    assert response.status_code == 201, response.content
    assert [v["version"] for v in response.json()["versions"]] == ["1.0.0"]


@pytest.mark.django_db
def test_another_publishers_slug_cannot_be_taken_over(callers, platform_admin):
    make("invoice-reader", "1.0.0", author=callers.user("tenant_admin"))
    make("web-search", "3.1.0", author=None)  # a platform skill
    make("calendar", "1.0.0", author=platform_admin, status=Skill.Status.PENDING)

    other = callers["other_tenant_admin"]
    for slug in ("invoice-reader", "web-search", "calendar"):
        response = other.post(SKILLS, new_skill_body(slug=slug, version="9.0.0"), format="json")
        assert response.status_code == 409, (slug, response.content)
        assert error(response)["details"] == {"reason": "slug_taken", "slug": slug}


@pytest.mark.django_db
def test_rejected_versions_do_not_claim_a_slug(callers):
    make("invoice-reader", "1.0.0", status=Skill.Status.REJECTED, author=callers.user("tenant_admin"))
    response = callers["other_tenant_admin"].post(SKILLS, new_skill_body(version="2.0.0"), format="json")
    assert response.status_code == 201, response.content


@pytest.mark.django_db
def test_a_tenant_member_cannot_submit(callers):
    response = callers["tenant_member"].post(SKILLS, new_skill_body(), format="json")
    assert response.status_code == 403 and error(response)["code"] == "PERMISSION_DENIED"
    assert not Skill.objects.exists()


@pytest.mark.django_db
def test_an_api_key_submits_for_its_creator_and_the_audit_names_the_key(callers, tenant_a):
    admin = callers.user("tenant_admin")
    client = api_key_client(tenant_a, ["skills:read", "skills:write"])
    client.api_key.created_by = admin
    client.api_key.save(update_fields=["created_by"])

    response = client.post(SKILLS, new_skill_body(), format="json")

    assert response.status_code == 201, response.content
    skill = Skill.objects.get(pk=response.json()["id"])
    assert skill.author == admin
    entry = AuditLog.objects.get(action="skill.submitted")
    assert entry.actor_api_key == client.api_key and entry.actor_user is None and entry.tenant_id == tenant_a.pk
    # The key and its creator both see it as theirs.
    assert [item["id"] for item in client.get(f"{SKILLS}/mine").json()["data"]] == [str(skill.pk)]
    assert callers["tenant_admin"].get(f"{SKILLS}/{skill.pk}").json()["mine"] is True


@pytest.mark.django_db
def test_a_key_without_a_creator_owns_nothing(callers, tenant_a):
    """A key whose creator is gone must not match every skill without an author."""
    make("platform-pending", status=Skill.Status.PENDING, author=None)
    client = api_key_client(tenant_a, ["skills:read"])
    assert client.get(f"{SKILLS}/mine").json()["data"] == []
    assert client.get(f"{SKILLS}/{Skill.objects.get().pk}").status_code == 404


# --- My submissions ------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_mine_lists_every_status_with_the_review_note_newest_first(callers, tenant_b):
    admin = callers.user("tenant_admin")
    first = make("one", status=Skill.Status.APPROVED, author=admin, review_note="Welcome")
    second = make("two", status=Skill.Status.REJECTED, author=admin, review_note="Too broad")
    third = make("three", status=Skill.Status.PENDING, author=admin)
    make("someone-elses", status=Skill.Status.PENDING, author=callers.user("other_tenant_admin"))

    response = callers["tenant_admin"].get(f"{SKILLS}/mine")

    assert response.status_code == 200
    data = response.json()["data"]
    assert [item["id"] for item in data] == [str(third.pk), str(second.pk), str(first.pk)]
    assert [(item["status"], item["reviewNote"]) for item in data] == [
        ("pending", ""), ("rejected", "Too broad"), ("approved", "Welcome")]
    assert all(item["mine"] for item in data)
    filtered = callers["tenant_admin"].get(f"{SKILLS}/mine", {"status": "rejected"}).json()["data"]
    assert [item["id"] for item in filtered] == [str(second.pk)]
    assert callers["tenant_admin"].get(f"{SKILLS}/mine", {"status": "lost"}).status_code == 400
    # Tenant B's admin sees only their own; a member who never submitted sees none.
    assert [item["slug"] for item in callers["other_tenant_admin"].get(f"{SKILLS}/mine").json()["data"]] == [
        "someone-elses"]
    assert callers["tenant_member"].get(f"{SKILLS}/mine").json()["data"] == []


# --- Cost: queries per page, size of the table --------------------------------------------------------------------


@pytest.mark.django_db
def test_queries_per_page_do_not_grow_with_the_page_size(callers):
    admin = callers.user("tenant_admin")
    for n in range(30):
        make(f"skill-{n:02d}", description=f"Tool number {n}", author=admin)
        make(f"skill-{n:02d}", "0.9.0", author=admin)
    client = callers["tenant_admin"]
    client.get(SKILLS)  # warm up: the first request of a client loads what later ones reuse

    for url, params in ((SKILLS, {}), (SKILLS, {"search": "tool", "category": "productivity"}),
                        (f"{SKILLS}/mine", {})):
        counts = {}
        for size in (5, 20):
            with CaptureQueriesContext(connection) as queries:
                response = client.get(url, {**params, "pageSize": size})
            assert response.status_code == 200 and len(response.json()["data"]) == size
            counts[size] = len(queries)
        assert counts[5] == counts[20], (url, params, counts)


@pytest.mark.django_db
def test_ten_thousand_skills_stay_paginated(callers):
    Skill.objects.bulk_create(
        [Skill(slug=f"bulk-{n:05d}", version="1.0.0", name=f"Bulk {n:05d}", status=Skill.Status.APPROVED,
               reviewed_at=timezone.now(), category=Skill.Category.DATA if n % 2 else Skill.Category.SALES)
         for n in range(10_000)], batch_size=2_500)
    reader = callers["tenant_member"]

    first = reader.get(SKILLS).json()
    assert len(first["data"]) == 25
    assert first["pagination"] == {"page": 1, "pageSize": 25, "total": 10_000, "totalPages": 400}
    assert first["data"][0]["slug"] == "bulk-00000"
    capped = reader.get(SKILLS, {"pageSize": 1000, "page": 50, "category": "data"}).json()
    assert len(capped["data"]) == 100 and capped["pagination"]["pageSize"] == 100
    assert capped["pagination"]["total"] == 5_000 and capped["pagination"]["totalPages"] == 50
    counts = {row["category"]: row["count"] for row in reader.get(f"{SKILLS}/categories").json()["data"]}
    assert counts["data"] == counts["sales"] == 5_000
