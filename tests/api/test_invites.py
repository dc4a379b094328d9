"""Invitations: create, list, resend, revoke, accept (and its race)."""

from __future__ import annotations

import re
import threading
import time
import uuid
from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.db import connection, connections
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts import services
from apps.accounts.models import RefreshToken, Role, TeamInvite, TeamMember, User
from apps.accounts.services import add_member, hash_invite_token
from apps.audit.models import AuditLog
from apps.tenants import services as tenant_services
from tests.api.conftest import bearer_client
from tests.api.matrix import CALLERS, Row, matrix_test

INVITES = "/api/v1/team/invites"
ACCEPT = "/api/v1/auth/invites/accept"
PASSWORD = "a-long-unusual-passphrase"
TOKEN_IN_LINK = re.compile(r"#token=([A-Za-z0-9_-]+)")


def token_from(message) -> str:
    tokens = set(TOKEN_IN_LINK.findall(message.body))
    assert len(tokens) == 1, message.body
    return tokens.pop()


def invite(tenant, email: str | None = None, role: str = Role.TENANT_MEMBER) -> tuple[TeamInvite, str]:
    """An invite made by the system, and the token its e-mail carries."""
    created = services.create_invite(tenant=tenant, email=email or f"{uuid.uuid4().hex[:10]}@new.example",
                                     role=role, actor=None)
    return created, token_from(mail.outbox[-1])


def backdate_last_send(invite_: TeamInvite, by: timedelta = timedelta(minutes=2)) -> None:
    TeamInvite.objects.filter(pk=invite_.pk).update(updated_at=timezone.now() - by)


def error(response) -> dict:
    return response.json()["error"]


# --- Authorization matrix ------------------------------------------------------------------------


def invite_path(ctx) -> str:
    return f"{INVITES}/{invite(ctx.tenant_a)[0].pk}"


def resend_path(ctx) -> str:
    created, _ = invite(ctx.tenant_a)
    backdate_last_send(created)
    return f"{INVITES}/{created.pk}/resend"


def new_invite_body(ctx) -> dict:
    return {"email": f"{uuid.uuid4().hex[:10]}@new.example", "role": "tenant_member"}


def accept_body(ctx) -> dict:
    return {"token": invite(ctx.tenant_a)[1], "name": "New Person", "password": PASSWORD}


READ_ONLY_KEY = "api_key:team:read"
# On collection endpoints tenant B's admin works on tenant B's own collection (allowed, and
# test_list_filters_by_status_and_hides_other_tenants shows it never sees tenant A's rows);
# on tenant A's objects it gets 404.
ROWS = [
    Row("GET", INVITES, allowed={"tenant_admin", "other_tenant_admin", READ_ONLY_KEY}),
    Row("POST", INVITES, body=new_invite_body, ok=201,
        allowed={"tenant_admin", "other_tenant_admin", "api_key:team:write"}, extra_callers=(READ_ONLY_KEY,)),
    Row("POST", resend_path, allowed={"tenant_admin", "api_key:team:write"}, extra_callers=(READ_ONLY_KEY,),
        refused={"other_tenant_admin": (404,)}),
    Row("DELETE", invite_path, ok=204, allowed={"tenant_admin", "api_key:team:write"},
        extra_callers=(READ_ONLY_KEY,), refused={"other_tenant_admin": (404,)}),
    # Anonymous by design; a credential sent along is ignored, not checked.
    Row("POST", ACCEPT, body=accept_body, ok=201, allowed=set(CALLERS)),
]
test_matrix = matrix_test(ROWS)


# --- Create --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_invite_is_created_hashed_and_emailed_with_a_link_never_returned(callers, tenant_a):
    response = callers["tenant_admin"].post(INVITES, {"email": "Dana@Acme.Example", "role": "tenant_admin"},
                                            format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["email"] == "dana@acme.example"
    assert body["role"] == "tenant_admin"
    assert body["status"] == "pending"
    assert body["invitedBy"]["email"] == "admin@a.example"
    assert set(body) == {"id", "email", "role", "status", "invitedBy", "expiresAt", "acceptedAt", "revokedAt",
                         "createdAt"}
    stored = TeamInvite.objects.get(pk=body["id"])
    assert stored.tenant == tenant_a
    assert stored.expires_at - stored.created_at == pytest.approx(settings.INVITE_LIFETIME, abs=timedelta(seconds=5))

    [message] = mail.outbox
    assert message.to == ["dana@acme.example"]
    assert "Acme" in message.subject
    token = token_from(message)
    assert stored.token_hash == hash_invite_token(token)
    assert token not in response.content.decode()
    assert token not in stored.token_hash
    html = message.alternatives[0][0]
    assert f"#token={token}" in html and "Admin A" in html

    entry = AuditLog.objects.get(action="team.invite_created", target_id=str(stored.pk))
    assert entry.tenant == tenant_a and entry.actor_user == callers.user("tenant_admin")
    assert entry.changes["email"] == "dana@acme.example"
    assert token not in str(entry.changes) and stored.token_hash not in str(entry.changes)
    assert entry.request_id


@pytest.mark.django_db
def test_role_defaults_to_member(callers):
    response = callers["tenant_admin"].post(INVITES, {"email": "x@new.example"}, format="json")
    assert response.status_code == 201
    assert response.json()["role"] == "tenant_member"


@pytest.mark.django_db
@pytest.mark.parametrize(("body", "field"), [
    ({"email": "not-an-email"}, "email"),
    ({"role": "tenant_member"}, "email"),
    ({"email": "x@new.example", "role": "platform_admin"}, "role"),
])
def test_invite_validation(callers, body, field):
    response = callers["tenant_admin"].post(INVITES, body, format="json")
    assert response.status_code == 400
    assert error(response)["code"] == "VALIDATION_ERROR"
    assert field in error(response)["details"]
    assert TeamInvite.objects.count() == 0 and not mail.outbox


@pytest.mark.django_db
def test_second_invite_for_a_pending_address_conflicts(callers, tenant_a):
    first, _ = invite(tenant_a, "dup@new.example")
    response = callers["tenant_admin"].post(INVITES, {"email": "DUP@new.example"}, format="json")
    assert response.status_code == 409
    assert error(response)["code"] == "CONFLICT"
    assert error(response)["details"] == {"reason": "invite_pending", "inviteId": str(first.pk)}


@pytest.mark.django_db
def test_an_expired_invite_is_revoked_and_replaced(callers, tenant_a):
    old, old_token = invite(tenant_a, "late@new.example")
    TeamInvite.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(minutes=1))

    response = callers["tenant_admin"].post(INVITES, {"email": "late@new.example"}, format="json")

    assert response.status_code == 201
    old.refresh_from_db()
    assert old.revoked_at is not None
    assert AuditLog.objects.get(action="team.invite_revoked", target_id=str(old.pk)).changes["reason"] == \
        "expired_replaced"
    assert TeamInvite.objects.filter(email="late@new.example", revoked_at__isnull=True).count() == 1
    stale = APIClient().post(ACCEPT, {"token": old_token, "name": "Late", "password": PASSWORD}, format="json")
    assert stale.status_code == 409 and error(stale)["details"]["reason"] == "revoked"


@pytest.mark.django_db
def test_the_same_address_may_be_invited_by_two_tenants(callers, tenant_a, tenant_b):
    invite(tenant_a, "shared@new.example")
    response = callers["other_tenant_admin"].post(INVITES, {"email": "shared@new.example"}, format="json")
    assert response.status_code == 201


@pytest.mark.django_db
def test_address_of_an_existing_account_is_refused(callers, tenant_a, tenant_b):
    add_member(tenant=tenant_a, email="here@a.example", password=PASSWORD)
    add_member(tenant=tenant_b, email="there@b.example", password=PASSWORD)
    admin = callers["tenant_admin"]

    member = admin.post(INVITES, {"email": "HERE@a.example"}, format="json")
    elsewhere = admin.post(INVITES, {"email": "there@b.example"}, format="json")

    assert member.status_code == elsewhere.status_code == 409
    assert error(member)["details"]["reason"] == "already_member"
    assert "already a member" in error(member)["message"]
    assert error(elsewhere)["details"]["reason"] == "user_exists"
    assert "one tenant only" in error(elsewhere)["message"]
    assert TeamInvite.objects.count() == 0


@pytest.mark.django_db
def test_an_api_key_may_invite_members_but_not_admins(callers):
    key = callers["api_key:team:write"]
    member = key.post(INVITES, {"email": "m@new.example", "role": "tenant_member"}, format="json")
    admin = key.post(INVITES, {"email": "a@new.example", "role": "tenant_admin"}, format="json")

    assert member.status_code == 201
    assert member.json()["invitedBy"] is None
    assert AuditLog.objects.get(action="team.invite_created").actor_api_key == key.api_key
    assert admin.status_code == 403
    assert error(admin)["code"] == "PERMISSION_DENIED"


@pytest.mark.django_db
def test_a_failed_email_leaves_no_invite(callers, monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("SMTP server unreachable")

    monkeypatch.setattr("django.core.mail.backends.locmem.EmailBackend.send_messages", refuse)
    admin = callers["tenant_admin"]
    admin.raise_request_exception = False  # a 5xx is reported like a crash; the test client would re-raise it
    response = admin.post(INVITES, {"email": "x@new.example"}, format="json")
    assert response.status_code == 503
    assert error(response)["code"] == "SERVICE_UNAVAILABLE"
    assert TeamInvite.objects.count() == 0
    assert not AuditLog.objects.filter(action="team.invite_created").exists()


# --- List ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_list_filters_by_status_and_hides_other_tenants(callers, tenant_a, tenant_b):
    pending, _ = invite(tenant_a, "pending@new.example")
    expired, _ = invite(tenant_a, "expired@new.example")
    TeamInvite.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    revoked, _ = invite(tenant_a, "revoked@new.example")
    services.revoke_invite(invite=revoked, actor=None)
    accepted, token = invite(tenant_a, "accepted@new.example")
    services.accept_invite(token=token, name="Acc", password=PASSWORD)
    theirs, _ = invite(tenant_b, "b-only@new.example")
    admin = callers["tenant_admin"]
    assert [row["id"] for row in callers["other_tenant_admin"].get(INVITES).json()["data"]] == [str(theirs.pk)]

    everything = admin.get(INVITES).json()
    assert everything["pagination"] == {"page": 1, "pageSize": 25, "total": 4, "totalPages": 1}
    assert {row["email"]: row["status"] for row in everything["data"]} == {
        "pending@new.example": "pending", "expired@new.example": "expired",
        "revoked@new.example": "revoked", "accepted@new.example": "accepted"}
    for status, expected in [("pending", pending), ("expired", expired), ("revoked", revoked),
                             ("accepted", accepted)]:
        rows = admin.get(INVITES, {"status": status}).json()["data"]
        assert [row["id"] for row in rows] == [str(expected.pk)], status
    assert [r["email"] for r in admin.get(INVITES, {"search": "REVOK"}).json()["data"]] == ["revoked@new.example"]
    by_email = admin.get(INVITES, {"ordering": "email"}).json()["data"]
    assert [row["email"] for row in by_email] == sorted(row["email"] for row in by_email)


@pytest.mark.django_db
def test_list_rejects_unknown_filter_values(callers):
    response = callers["tenant_admin"].get(INVITES, {"status": "lost", "ordering": "token"})
    assert response.status_code == 400
    assert set(error(response)["details"]) == {"status", "ordering"}


@pytest.mark.django_db
def test_list_query_count_does_not_grow_with_the_page(callers, tenant_a):
    from django.test.utils import CaptureQueriesContext

    admin = callers["tenant_admin"]
    for number in range(6):
        services.create_invite(tenant=tenant_a, email=f"p{number}@new.example", actor=callers.user("tenant_admin"))
    admin.get(INVITES, {"pageSize": 1})  # warm-up: first-request caches
    counts, own = [], []
    for size in (2, 6):
        with CaptureQueriesContext(connection) as queries:
            assert len(admin.get(INVITES, {"pageSize": size}).json()["data"]) == size
        counts.append(len(queries))
        own.append([q["sql"] for q in queries.captured_queries if 'FROM "accounts_teaminvite"' in q["sql"]])
    assert counts[0] == counts[1], counts
    assert [len(sqls) for sqls in own] == [2, 2], own  # COUNT(*) and the page, related rows joined in


# --- Resend --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_resend_rotates_the_token_and_expiry(callers, tenant_a):
    created, old_token = invite(tenant_a, "again@new.example")
    TeamInvite.objects.filter(pk=created.pk).update(expires_at=timezone.now() - timedelta(days=1))  # expired
    backdate_last_send(created)
    mail.outbox.clear()

    response = callers["tenant_admin"].post(f"{INVITES}/{created.pk}/resend")

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "pending"
    new_token = token_from(mail.outbox[0])
    assert new_token != old_token
    created.refresh_from_db()
    assert created.token_hash == hash_invite_token(new_token)
    assert created.expires_at > timezone.now() + settings.INVITE_LIFETIME - timedelta(minutes=1)
    assert AuditLog.objects.filter(action="team.invite_resent", target_id=str(created.pk)).count() == 1

    stale = APIClient().post(ACCEPT, {"token": old_token, "name": "X", "password": PASSWORD}, format="json")
    assert stale.status_code == 400 and "token" in error(stale)["details"]


@pytest.mark.django_db
def test_resend_is_throttled_per_invite(callers, tenant_a):
    created, _ = invite(tenant_a)
    other, _ = invite(tenant_a)
    backdate_last_send(other)
    admin = callers["tenant_admin"]

    too_soon = admin.post(f"{INVITES}/{created.pk}/resend")
    assert too_soon.status_code == 429
    assert error(too_soon)["code"] == "RATE_LIMITED"
    assert 0 < int(too_soon["Retry-After"]) <= 60
    assert error(too_soon)["details"]["retryAfterSeconds"] == int(too_soon["Retry-After"])
    assert admin.post(f"{INVITES}/{other.pk}/resend").status_code == 200  # its own clock

    backdate_last_send(created, by=timedelta(seconds=61))
    assert admin.post(f"{INVITES}/{created.pk}/resend").status_code == 200
    assert admin.post(f"{INVITES}/{created.pk}/resend").status_code == 429  # and the clock restarts


@pytest.mark.django_db
def test_resend_of_a_finished_invite_is_refused(callers, tenant_a):
    revoked, _ = invite(tenant_a)
    services.revoke_invite(invite=revoked, actor=None)
    accepted, token = invite(tenant_a)
    services.accept_invite(token=token, name="Acc", password=PASSWORD)
    for finished, reason in [(revoked, "revoked"), (accepted, "accepted")]:
        backdate_last_send(finished)
        response = callers["tenant_admin"].post(f"{INVITES}/{finished.pk}/resend")
        assert response.status_code == 409
        assert error(response)["code"] == "INVALID_STATE"
        assert error(response)["details"]["reason"] == reason


# --- Revoke --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_revoke_kills_the_link_and_is_idempotent(callers, tenant_a):
    created, token = invite(tenant_a)
    admin = callers["tenant_admin"]

    assert admin.delete(f"{INVITES}/{created.pk}").status_code == 204
    assert admin.delete(f"{INVITES}/{created.pk}").status_code == 204
    assert AuditLog.objects.filter(action="team.invite_revoked", target_id=str(created.pk)).count() == 1

    response = APIClient().post(ACCEPT, {"token": token, "name": "Late", "password": PASSWORD}, format="json")
    assert response.status_code == 409
    assert error(response)["details"]["reason"] == "revoked"
    assert not User.objects.filter(email=created.email).exists()


@pytest.mark.django_db
def test_revoking_an_accepted_invite_is_refused(callers, tenant_a):
    created, token = invite(tenant_a)
    services.accept_invite(token=token, name="In", password=PASSWORD)
    response = callers["tenant_admin"].delete(f"{INVITES}/{created.pk}")
    assert response.status_code == 409
    assert error(response)["code"] == "INVALID_STATE"


@pytest.mark.django_db
def test_another_tenants_invite_is_not_found(callers, tenant_b):
    theirs, _ = invite(tenant_b)
    backdate_last_send(theirs)
    admin = callers["tenant_admin"]
    assert admin.delete(f"{INVITES}/{theirs.pk}").status_code == 404
    assert admin.post(f"{INVITES}/{theirs.pk}/resend").status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


# --- Accept --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_accept_creates_the_user_and_membership(callers, tenant_a):
    inviter = callers.user("tenant_admin")
    created = services.create_invite(tenant=tenant_a, email="new@new.example", role=Role.TENANT_ADMIN, actor=inviter)
    token = token_from(mail.outbox[-1])

    response = APIClient().post(ACCEPT, {"token": token, "name": "New Admin", "password": PASSWORD}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    user = User.objects.get(email="new@new.example")
    assert body == {"id": str(user.pk), "email": "new@new.example", "name": "New Admin", "role": "tenant_admin",
                    "tenantId": str(tenant_a.pk), "mfaEnabled": False, "createdAt": body["createdAt"]}
    assert user.check_password(PASSWORD) and user.is_active
    member = TeamMember.objects.get(user=user)
    assert (member.tenant, member.role, member.status, member.invited_by) == (tenant_a, "tenant_admin", "active",
                                                                              inviter)
    created.refresh_from_db()
    assert created.accepted_at is not None
    entry = AuditLog.objects.get(action="team.invite_accepted")
    assert entry.actor_user == user and entry.tenant == tenant_a and entry.target_id == str(created.pk)
    assert PASSWORD not in str(entry.changes)

    again = APIClient().post(ACCEPT, {"token": token, "name": "Twice", "password": PASSWORD}, format="json")
    assert again.status_code == 409
    assert error(again)["code"] == "INVALID_STATE" and error(again)["details"]["reason"] == "accepted"


@pytest.mark.django_db
def test_expired_invite_cannot_be_accepted(tenant_a):
    created, token = invite(tenant_a)
    TeamInvite.objects.filter(pk=created.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    response = APIClient().post(ACCEPT, {"token": token, "name": "Late", "password": PASSWORD}, format="json")

    assert response.status_code == 409
    assert error(response)["code"] == "INVALID_STATE"
    assert error(response)["details"]["reason"] == "expired"
    assert "expired" in error(response)["message"]
    assert not User.objects.filter(email=created.email).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("body", "fields"), [
    ({}, {"token", "name", "password"}),
    ({"token": "not-a-real-token", "name": "X", "password": PASSWORD}, {"token"}),
])
def test_accept_validation(tenant_a, body, fields):
    response = APIClient().post(ACCEPT, body, format="json")
    assert response.status_code == 400
    assert error(response)["code"] == "VALIDATION_ERROR"
    assert set(error(response)["details"]) == fields


@pytest.mark.django_db
@pytest.mark.parametrize("password", ["short", "password123", "1234567890123", "pending@new.example"])
def test_accept_runs_the_password_validators(tenant_a, password):
    created, token = invite(tenant_a, "pending@new.example")
    response = APIClient().post(ACCEPT, {"token": token, "name": "Weak", "password": password}, format="json")
    assert response.status_code == 400
    assert list(error(response)["details"]) == ["password"]
    created.refresh_from_db()
    assert created.accepted_at is None
    assert not User.objects.filter(email="pending@new.example").exists()


@pytest.mark.django_db
def test_accept_refuses_an_address_that_got_an_account_meanwhile(tenant_a, tenant_b):
    _, token = invite(tenant_a, "busy@new.example")
    add_member(tenant=tenant_b, email="busy@new.example", password=PASSWORD)
    response = APIClient().post(ACCEPT, {"token": token, "name": "Busy", "password": PASSWORD}, format="json")
    assert response.status_code == 409
    assert error(response)["details"]["reason"] == "user_exists"


@pytest.mark.django_db
def test_accepting_revokes_the_addresss_invites_to_other_tenants(tenant_a, tenant_b):
    _, token = invite(tenant_a, "popular@new.example")
    elsewhere, _ = invite(tenant_b, "popular@new.example")

    assert APIClient().post(ACCEPT, {"token": token, "name": "Pop", "password": PASSWORD},
                            format="json").status_code == 201

    elsewhere.refresh_from_db()
    assert elsewhere.revoked_at is not None
    entry = AuditLog.objects.get(action="team.invite_revoked", target_id=str(elsewhere.pk))
    assert entry.tenant == tenant_b and entry.actor_user is None and entry.changes["reason"] == "email_registered"


@pytest.mark.django_db
def test_accept_into_a_suspended_tenant_is_refused(tenant_a):
    _, token = invite(tenant_a)
    tenant_services.suspend(tenant_a, reason="unpaid")
    response = APIClient().post(ACCEPT, {"token": token, "name": "X", "password": PASSWORD}, format="json")
    assert response.status_code == 403
    assert error(response)["code"] == "TENANT_SUSPENDED"


@pytest.mark.django_db
def test_a_removed_member_can_be_invited_back(callers, tenant_a):
    admin = callers["tenant_admin"]
    old = add_member(tenant=tenant_a, email="boomerang@a.example", password=PASSWORD, name="Old Name")
    RefreshToken.objects.create(jti="boomerang", user=old, tenant=tenant_a,
                                expires_at=timezone.now() + timedelta(days=1))
    assert admin.delete(f"/api/v1/team/{old.membership.pk}").status_code == 204

    assert admin.post(INVITES, {"email": "boomerang@a.example", "role": "tenant_admin"},
                      format="json").status_code == 201
    token = token_from(mail.outbox[-1])
    response = APIClient().post(ACCEPT, {"token": token, "name": "New Name", "password": "another-fine-passphrase"},
                                format="json")

    assert response.status_code == 201, response.content
    assert response.json()["id"] == str(old.pk)  # the same account, so the audit trail stays joined up
    old.refresh_from_db()
    assert (old.is_active, old.name, old.role) == (True, "New Name", "tenant_admin")
    assert old.check_password("another-fine-passphrase")
    assert old.membership.role == "tenant_admin"
    assert RefreshToken.objects.get(jti="boomerang").revoked_at is not None  # old sessions stay dead
    assert bearer_client(old).get("/api/v1/team").status_code == 200


# --- The race ------------------------------------------------------------------------------------


def _waiting_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                       "AND wait_event_type = 'Lock'")
        return cursor.fetchone()[0] > 0


def run_two_racing(first, second, *, pause_in, monkeypatch, target: str):
    """Run `first` until it reaches `pause_in` (a function of `target` module, called inside
    its transaction after the row locks are taken) and hold it there; start `second` and wait
    until PostgreSQL reports it blocked on a lock; then let both finish. Returns both results.
    Without the lock, `second` would never block and the wait below would fail the test."""
    module = __import__(target, fromlist=[pause_in])
    original = getattr(module, pause_in)
    reached, release = threading.Event(), threading.Event()
    paused = []

    def pausing(*args, **kwargs):
        if not paused:
            paused.append(threading.current_thread().name)
            reached.set()
            release.wait(timeout=30)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, pause_in, pausing)
    results = {}

    def run(name, call):
        try:
            results[name] = call()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=("first", first), name="first"),
               threading.Thread(target=run, args=("second", second), name="second")]
    threads[0].start()
    assert reached.wait(timeout=30), "the first request never reached its critical section"
    threads[1].start()
    deadline = timezone.now() + timedelta(seconds=30)
    while not _waiting_on_a_lock():
        assert timezone.now() < deadline, "the second request never waited for the first one's lock"
        time.sleep(0.05)
    release.set()
    for thread in threads:
        thread.join(timeout=60)
    assert paused == ["first"]
    return results["first"], results["second"]


# A transactional test's flush must TRUNCATE ... CASCADE: tenant schemas hold foreign keys into
# public tables. Django cascades only when available_apps is set, so it names every app.
TRANSACTIONAL = pytest.mark.django_db(transaction=True, available_apps=[*settings.INSTALLED_APPS])


@TRANSACTIONAL
def test_two_concurrent_accepts_exactly_one_wins(monkeypatch):
    # transactional_db empties the shared session tenants when it ends: this test makes its own.
    tenant = tenant_services.provision(tenant_services.create_tenant(
        company_name=f"Race {uuid.uuid4().hex[:6]}", admin_email="owner@race.example"))
    _, token = invite(tenant, "racer@race.example")

    def accept(name):
        return lambda: APIClient().post(ACCEPT, {"token": token, "name": name, "password": PASSWORD}, format="json")

    first, second = run_two_racing(accept("First"), accept("Second"), pause_in="validate_password",
                                   target="apps.accounts.services", monkeypatch=monkeypatch)

    assert first.status_code == 201, first.content
    assert second.status_code == 409, second.content
    assert error(second)["code"] == "INVALID_STATE" and error(second)["details"]["reason"] == "accepted"
    user = User.objects.get(email="racer@race.example")
    assert user.name == "First"
    assert TeamMember.objects.filter(user=user).count() == 1
    assert AuditLog.objects.filter(action="team.invite_accepted").count() == 1
