"""Team members: list, read, change role or status, remove; ranks and the last-admin rule."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from aegis.api.exceptions import ApiError
from apps.accounts.models import RefreshToken, Role, TeamMember, User
from apps.accounts.services import add_member, update_member
from apps.audit.models import AuditLog
from apps.tenants import services as tenant_services
from tests.api.conftest import bearer_client
from tests.api.matrix import Row, matrix_test
from tests.api.test_invites import run_two_racing
from tests.dbtools import check_deferred

TEAM = "/api/v1/team"
PASSWORD = "correct-horse-battery-staple"


def member_of(tenant, role: str = Role.TENANT_MEMBER, **fields) -> TeamMember:
    email = fields.pop("email", None) or f"{uuid.uuid4().hex[:10]}@team.example"
    return add_member(tenant=tenant, email=email, password=PASSWORD, role=role, **fields).membership


def error(response) -> dict:
    return response.json()["error"]


def session_of(user: User) -> RefreshToken:
    return RefreshToken.objects.create(jti=uuid.uuid4().hex, user=user, tenant=user.tenant,
                                       expires_at=timezone.now() + timedelta(days=1))


# --- Authorization matrix ------------------------------------------------------------------------


def a_member(ctx) -> str:
    return f"{TEAM}/{member_of(ctx.tenant_a).pk}"


ROWS = [
    # Tenant B's admin reads tenant B's own team (test_list_is_scoped_to_the_callers_tenant).
    Row("GET", TEAM, allowed={"tenant_admin", "tenant_member", "other_tenant_admin", "api_key:team:read"},
        extra_callers=("api_key:agents:read",)),
    Row("GET", a_member, allowed={"tenant_admin", "tenant_member", "api_key:team:read"},
        refused={"other_tenant_admin": (404,)}),
    Row("PATCH", a_member, body={"status": "suspended"}, allowed={"tenant_admin", "api_key:team:write"},
        extra_callers=("api_key:team:read",), refused={"other_tenant_admin": (404,)}),
    Row("DELETE", a_member, ok=204, allowed={"tenant_admin", "api_key:team:write"},
        extra_callers=("api_key:team:read",), refused={"other_tenant_admin": (404,)}),
]
test_matrix = matrix_test(ROWS)


# --- List ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_list_shows_members_with_their_profile(callers, tenant_a):
    admin = callers.user("tenant_admin")
    member = member_of(tenant_a, name="Zed Member", invited_by=admin)

    response = callers["tenant_member"].get(TEAM)

    assert response.status_code == 200
    body = response.json()
    assert body["pagination"] == {"page": 1, "pageSize": 25, "total": 3, "totalPages": 1}
    row = next(row for row in body["data"] if row["id"] == str(member.pk))
    assert row == {
        "id": str(member.pk), "userId": str(member.user_id), "email": member.user.email, "name": "Zed Member",
        "role": "tenant_member", "status": "active", "mfaEnabled": False,
        "invitedBy": {"id": str(admin.pk), "email": admin.email, "name": admin.name},
        "joinedAt": row["joinedAt"], "lastActiveAt": None, "lastLoginAt": None,
    }


@pytest.mark.django_db
def test_list_is_scoped_to_the_callers_tenant(callers, tenant_a, tenant_b):
    mine = member_of(tenant_a)
    theirs = member_of(tenant_b)
    ids_a = {row["id"] for row in callers["tenant_admin"].get(TEAM).json()["data"]}
    ids_b = {row["id"] for row in callers["other_tenant_admin"].get(TEAM).json()["data"]}
    assert str(mine.pk) in ids_a and str(theirs.pk) not in ids_a
    assert str(theirs.pk) in ids_b and str(mine.pk) not in ids_b


@pytest.mark.django_db
def test_search_filters_and_ordering(callers, tenant_a):
    admin = callers["tenant_admin"]
    alice = member_of(tenant_a, name="Alice Archer", email="alice@acme.example")
    bob = member_of(tenant_a, name="Bob Baker", email="bob@builders.example", role=Role.TENANT_ADMIN)
    update_member(member=bob, status="suspended", actor=None)

    def ids(**params):
        response = admin.get(TEAM, params)
        assert response.status_code == 200, response.content
        return [row["id"] for row in response.json()["data"]]

    assert ids(search="ALICE") == [str(alice.pk)]
    assert ids(search="builders") == [str(bob.pk)]
    assert set(ids(role="tenant_admin")) == {str(bob.pk), str(callers.user("tenant_admin").membership.pk)}
    assert ids(status="suspended") == [str(bob.pk)]
    assert ids(role="tenant_member", search="alice") == [str(alice.pk)]
    names = [row["name"] for row in admin.get(TEAM, {"ordering": "-name"}).json()["data"]]
    assert names == sorted(names, reverse=True)
    assert ids(ordering="email")[0] == str(callers.user("tenant_admin").membership.pk)  # admin@a.example


@pytest.mark.django_db
def test_list_rejects_unknown_filter_values(callers):
    response = callers["tenant_admin"].get(TEAM, {"role": "platform_admin", "status": "gone", "ordering": "password"})
    assert response.status_code == 400
    assert error(response)["code"] == "VALIDATION_ERROR"
    assert set(error(response)["details"]) == {"role", "status", "ordering"}


@pytest.mark.django_db
def test_list_paginates(callers, tenant_a):
    for _ in range(4):
        member_of(tenant_a)
    page = callers["tenant_admin"].get(TEAM, {"pageSize": 2, "page": 3}).json()
    assert page["pagination"] == {"page": 3, "pageSize": 2, "total": 5, "totalPages": 3}
    assert len(page["data"]) == 1


@pytest.mark.django_db
def test_list_query_count_does_not_grow_with_the_page(callers, tenant_a):
    admin = callers["tenant_admin"]
    inviter = callers.user("tenant_admin")
    for _ in range(7):
        member_of(tenant_a, invited_by=inviter)
    admin.get(TEAM, {"pageSize": 1})  # warm-up: first-request caches
    counts, own = [], []
    for size in (2, 8):
        with CaptureQueriesContext(connection) as queries:
            response = admin.get(TEAM, {"pageSize": size})
        assert len(response.json()["data"]) == size
        counts.append(len(queries))
        own.append([q["sql"] for q in queries.captured_queries if 'FROM "accounts_teammember"' in q["sql"]])
    assert counts[0] == counts[1], counts
    assert [len(sqls) for sqls in own] == [2, 2], own  # COUNT(*) and the page, related rows joined in


@pytest.mark.django_db
def test_retrieve_one_member(callers, tenant_a):
    member = member_of(tenant_a)
    response = callers["api_key:team:read"].get(f"{TEAM}/{member.pk}")
    assert response.status_code == 200
    assert response.json()["email"] == member.user.email


@pytest.mark.django_db
def test_unknown_and_malformed_ids_are_not_found(callers):
    admin = callers["tenant_admin"]
    assert admin.get(f"{TEAM}/{uuid.uuid4()}").status_code == 404
    assert admin.patch(f"{TEAM}/not-a-uuid", {"role": "tenant_member"}, format="json").status_code == 404


# --- Change ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_admin_changes_a_role_in_user_and_membership_together(callers, tenant_a):
    member = member_of(tenant_a)
    old_token_client = bearer_client(member.user)
    assert old_token_client.get(TEAM).status_code == 200

    response = callers["tenant_admin"].patch(f"{TEAM}/{member.pk}", {"role": "tenant_admin"}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["role"] == "tenant_admin"
    member.refresh_from_db()
    member.user.refresh_from_db()
    assert member.role == member.user.role == "tenant_admin"
    check_deferred()  # the composite foreign key agrees, as it will at commit
    entry = AuditLog.objects.get(action="team.member_updated", target_id=str(member.pk))
    assert entry.actor_user == callers.user("tenant_admin") and entry.tenant == tenant_a
    assert entry.changes["role"] == {"before": "tenant_member", "after": "tenant_admin"}
    assert entry.ip == "127.0.0.1" and entry.request_id
    # A token carries the role it was issued with: the old one is refused, a fresh one works.
    assert old_token_client.get(TEAM).status_code == 401
    assert bearer_client(member.user).patch(f"{TEAM}/{member.pk}", {"status": "active"},
                                            format="json").status_code == 200


@pytest.mark.django_db
def test_suspending_ends_sessions_and_reactivating_restores_access(callers, tenant_a):
    member = member_of(tenant_a)
    session = session_of(member.user)
    admin = callers["tenant_admin"]

    response = admin.patch(f"{TEAM}/{member.pk}", {"status": "suspended"}, format="json")

    assert response.status_code == 200 and response.json()["status"] == "suspended"
    session.refresh_from_db()
    assert session.revoked_at is not None
    blocked = bearer_client(member.user).get(TEAM)
    assert blocked.status_code == 403 and error(blocked)["code"] == "PERMISSION_DENIED"
    assert AuditLog.objects.get(action="team.member_updated").changes["sessions_revoked"] == 1

    assert admin.patch(f"{TEAM}/{member.pk}", {"status": "active"}, format="json").status_code == 200
    assert bearer_client(member.user).get(TEAM).status_code == 200


@pytest.mark.django_db
def test_no_change_is_not_audited(callers, tenant_a):
    member = member_of(tenant_a)
    response = callers["tenant_admin"].patch(f"{TEAM}/{member.pk}", {"role": "tenant_member"}, format="json")
    assert response.status_code == 200
    assert not AuditLog.objects.filter(action="team.member_updated").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("body", "field"), [
    ({}, "nonFieldErrors"),
    ({"role": "platform_admin"}, "role"),
    ({"status": "deleted"}, "status"),
])
def test_change_validation(callers, tenant_a, body, field):
    member = member_of(tenant_a)
    response = callers["tenant_admin"].patch(f"{TEAM}/{member.pk}", body, format="json")
    assert response.status_code == 400
    assert list(error(response)["details"]) == [field]


@pytest.mark.django_db
@pytest.mark.parametrize("change", [{"role": "tenant_member"}, {"status": "suspended"}])
def test_the_last_active_admin_cannot_be_demoted_or_suspended(callers, change):
    admin = callers["tenant_admin"]
    own = callers.user("tenant_admin").membership

    response = admin.patch(f"{TEAM}/{own.pk}", change, format="json")

    assert response.status_code == 409
    assert error(response)["code"] == "LAST_ADMIN"
    own.refresh_from_db()
    assert (own.role, own.status) == ("tenant_admin", "active")


@pytest.mark.django_db
def test_a_suspended_admin_does_not_count(callers, tenant_a):
    other = member_of(tenant_a, role=Role.TENANT_ADMIN)
    admin = callers["tenant_admin"]
    own = callers.user("tenant_admin").membership
    assert admin.patch(f"{TEAM}/{other.pk}", {"status": "suspended"}, format="json").status_code == 200

    assert admin.patch(f"{TEAM}/{own.pk}", {"role": "tenant_member"}, format="json").status_code == 409
    assert admin.delete(f"{TEAM}/{own.pk}").status_code == 409
    # With a second active admin, demoting oneself is fine.
    assert admin.patch(f"{TEAM}/{other.pk}", {"status": "active"}, format="json").status_code == 200
    assert admin.patch(f"{TEAM}/{own.pk}", {"role": "tenant_member"}, format="json").status_code == 200


@pytest.mark.django_db
def test_members_and_api_keys_rank_below_admins(callers, tenant_a):
    other_admin = member_of(tenant_a, role=Role.TENANT_ADMIN)
    member = member_of(tenant_a)
    key = callers["api_key:team:write"]

    promote = key.patch(f"{TEAM}/{member.pk}", {"role": "tenant_admin"}, format="json")
    touch_admin = key.patch(f"{TEAM}/{other_admin.pk}", {"status": "suspended"}, format="json")
    remove_admin = key.delete(f"{TEAM}/{other_admin.pk}")
    for refused in (promote, touch_admin, remove_admin):
        assert refused.status_code == 403, refused.content
        assert error(refused)["code"] == "PERMISSION_DENIED"

    assert key.patch(f"{TEAM}/{member.pk}", {"status": "suspended"}, format="json").status_code == 200
    assert AuditLog.objects.get(action="team.member_updated").actor_api_key == key.api_key
    assert callers["tenant_member"].patch(f"{TEAM}/{member.pk}", {"status": "active"},
                                          format="json").status_code == 403


@pytest.mark.django_db
def test_another_tenants_member_cannot_be_changed_or_removed(callers, tenant_b):
    theirs = member_of(tenant_b)
    admin = callers["tenant_admin"]
    assert admin.get(f"{TEAM}/{theirs.pk}").status_code == 404
    assert admin.patch(f"{TEAM}/{theirs.pk}", {"status": "suspended"}, format="json").status_code == 404
    assert admin.delete(f"{TEAM}/{theirs.pk}").status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == "active" and theirs.user.is_active


# --- Remove ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_removing_deletes_the_membership_deactivates_the_user_and_ends_sessions(callers, tenant_a):
    member = member_of(tenant_a, role=Role.TENANT_ADMIN)
    user = member.user
    sessions = [session_of(user), session_of(user)]
    their_client = bearer_client(user)

    response = callers["tenant_admin"].delete(f"{TEAM}/{member.pk}")

    assert response.status_code == 204 and response.content == b""
    assert not TeamMember.objects.filter(pk=member.pk).exists()
    user.refresh_from_db()
    assert user.is_active is False
    assert all(RefreshToken.objects.get(pk=s.pk).revoked_at is not None for s in sessions)
    assert their_client.get(TEAM).status_code == 401
    entry = AuditLog.objects.get(action="team.member_removed")
    assert entry.target_id == str(user.pk) and entry.tenant == tenant_a
    assert entry.changes == {"email": user.email, "role": "tenant_admin", "status": "active",
                             "member_id": str(member.pk), "sessions_revoked": 2}


@pytest.mark.django_db
def test_the_last_active_admin_cannot_be_removed(callers):
    own = callers.user("tenant_admin").membership
    response = callers["tenant_admin"].delete(f"{TEAM}/{own.pk}")
    assert response.status_code == 409 and error(response)["code"] == "LAST_ADMIN"
    assert TeamMember.objects.filter(pk=own.pk).exists()


# --- Two demotions at once ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True, available_apps=[*settings.INSTALLED_APPS])  # see test_invites.TRANSACTIONAL
def test_two_concurrent_demotions_leave_one_admin(monkeypatch):
    tenant = tenant_services.provision(tenant_services.create_tenant(
        company_name=f"Duel {uuid.uuid4().hex[:6]}", admin_email="owner@duel.example"))
    ann = member_of(tenant, role=Role.TENANT_ADMIN, email="ann@duel.example")
    ben = member_of(tenant, role=Role.TENANT_ADMIN, email="ben@duel.example")

    def step_down(admin: TeamMember):
        token_client = bearer_client(admin.user)
        return lambda: token_client.patch(f"{TEAM}/{admin.pk}", {"role": "tenant_member"}, format="json")

    # Both admins step down at once: alone, either may; together they would leave nobody.
    first, second = run_two_racing(step_down(ann), step_down(ben), pause_in="_require_another_active_admin",
                                   target="apps.accounts.services", monkeypatch=monkeypatch)

    assert first.status_code == 200, first.content
    assert second.status_code == 409, second.content
    assert error(second)["code"] == "LAST_ADMIN"
    assert list(TeamMember.objects.filter(tenant=tenant, role=Role.TENANT_ADMIN, status="active")
                .values_list("user__email", flat=True)) == ["ben@duel.example"]
    assert User.objects.get(email="ann@duel.example").role == Role.TENANT_MEMBER


@pytest.mark.django_db
def test_anonymous_gets_401_in_the_error_shape():
    response = APIClient().get(TEAM)
    assert response.status_code == 401
    assert error(response)["code"] == "NOT_AUTHENTICATED"


@pytest.mark.django_db
def test_an_admin_demoted_meanwhile_ranks_as_a_member(tenant_a):
    ann = member_of(tenant_a, role=Role.TENANT_ADMIN)
    member_of(tenant_a, role=Role.TENANT_ADMIN)
    carl = member_of(tenant_a)
    ann_as_authenticated = User.objects.get(pk=ann.user_id)  # loaded by a request still in flight
    update_member(member=ann, role=Role.TENANT_MEMBER, actor=None)

    with pytest.raises(ApiError) as refused:
        update_member(member=carl, role=Role.TENANT_ADMIN, actor=ann_as_authenticated)

    assert refused.value.status_code == 403
    carl.refresh_from_db()
    assert carl.role == Role.TENANT_MEMBER
