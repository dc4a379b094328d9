"""The platform console (Django admin at /admin/): who gets in, what every page shows, and that
every change made through it is audited."""

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY

from aegis.admin import CappedCountPaginator, admin_site
from apps.accounts.models import (
    ApiKey,
    EncryptedTOTPDevice,
    RefreshToken,
    Role,
    TeamInvite,
    TeamMember,
    User,
)
from apps.agents.models import Agent, AgentChannel, SkillInstallation
from apps.audit.models import AuditLog
from apps.audit.services import record
from apps.monitoring.models import Alert, ContainerHealth
from apps.skills.models import AgentRole, Skill
from apps.tenants import services as tenant_services
from apps.tenants.models import Tenant

PASSWORD = "correct-horse-battery"  # the conftest users' password
API_KEY_HASH = "sha512$hashed-api-key-never-shown"
INVITE_HASH = "hashed-invite-token-never-shown"

REGISTERED = [Tenant, User, TeamMember, TeamInvite, ApiKey, RefreshToken, EncryptedTOTPDevice, Skill, AgentRole,
              Alert, ContainerHealth, AuditLog]


def url(model, page, *args, **query):
    path = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{page}", args=args)
    return path + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def otp_login(client, user, device):
    """Log in as if through the console's login form: password, then the TOTP step."""
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


def audit_rows(action, **filters):
    return AuditLog.objects.filter(action=action, **filters)


@pytest.fixture
def totp_device(platform_admin):
    return EncryptedTOTPDevice.objects.create(user=platform_admin, name="phone", confirmed=True)


@pytest.fixture
def console(client, platform_admin, totp_device):
    return otp_login(client, platform_admin, totp_device)


@pytest.fixture
def sales_role(db):
    return AgentRole.objects.create(key="sales", name="Sales")


@pytest.fixture
def pending_skill(platform_admin):
    return Skill.objects.create(name="CRM sync", slug="crm-sync", version="1.0.0", category="sales",
                                description="Syncs deals", author=platform_admin)


@pytest.fixture
def objects(tenant_a, tenant_admin, platform_admin, totp_device, sales_role, pending_skill):
    """One row of every model the console shows."""
    now = timezone.now()
    return {
        Tenant: tenant_a,
        User: tenant_admin,
        TeamMember: TeamMember.objects.get(user=tenant_admin),
        TeamInvite: TeamInvite.objects.create(tenant=tenant_a, email="new@acme.example", role=Role.TENANT_MEMBER,
                                              token_hash=INVITE_HASH, invited_by=tenant_admin,
                                              expires_at=now + timedelta(days=7)),
        ApiKey: ApiKey.objects.create(tenant=tenant_a, name="CI", prefix="ak_test1", hashed_key=API_KEY_HASH,
                                      scopes=["agents:read"], created_by=tenant_admin),
        RefreshToken: RefreshToken.objects.create(jti="jti-1", user=tenant_admin, tenant=tenant_a,
                                                  expires_at=now + timedelta(days=14), ip="10.0.0.1"),
        EncryptedTOTPDevice: totp_device,
        Skill: pending_skill,
        AgentRole: sales_role,
        Alert: Alert.objects.create(tenant=tenant_a, severity="warning", kind="runtime.unhealthy",
                                    message="runtime is not answering", dedup_key="runtime.unhealthy:acme"),
        ContainerHealth: ContainerHealth.objects.create(tenant=tenant_a, status="healthy", cpu_percent=3.5,
                                                        memory_mb=512, uptime_seconds=3600, checked_at=now),
        AuditLog: record("test.event", actor=platform_admin, tenant=tenant_a, target=tenant_a),
    }


# --- every page, and who may see it ---------------------------------------------------------------


def test_the_tests_cover_every_registered_model():
    assert set(admin_site._registry) == set(REGISTERED)


def test_index_renders_for_a_verified_platform_admin(console):
    response = console.get(reverse("admin:index"))
    assert response.status_code == 200
    assert "Aegis platform console" in response.content.decode()


@pytest.mark.parametrize("model", REGISTERED, ids=lambda m: m._meta.model_name)
def test_changelist_change_and_add_pages_render(console, objects, platform_admin, model):
    obj = objects[model]
    assert console.get(url(model, "changelist")).status_code == 200
    assert console.get(url(model, "change", obj.pk)).status_code == 200
    request = RequestFactory().get("/")
    request.user = platform_admin
    can_add = admin_site._registry[model].has_add_permission(request)
    assert console.get(url(model, "add")).status_code == (200 if can_add else 403)


def assert_sent_to_the_login_page(client, model, obj) -> None:
    for page in (url(model, "changelist"), url(model, "change", obj.pk)):
        response = client.get(page)
        assert response.status_code == 302, page
        assert response["Location"].startswith(reverse("admin:login")), page


@pytest.mark.parametrize("model", REGISTERED, ids=lambda m: m._meta.model_name)
def test_anonymous_users_are_sent_to_the_login_page(client, objects, model):
    assert_sent_to_the_login_page(client, model, objects[model])


@pytest.mark.parametrize("model", REGISTERED, ids=lambda m: m._meta.model_name)
def test_tenant_users_are_refused_even_with_a_second_factor(client, objects, tenant_admin, model):
    # A TOTP device in the session proves a second factor, not the right to be here.
    device = EncryptedTOTPDevice.objects.create(user=tenant_admin, name="phone", confirmed=True)
    otp_login(client, tenant_admin, device)
    assert_sent_to_the_login_page(client, model, objects[model])


@pytest.mark.parametrize("model", REGISTERED, ids=lambda m: m._meta.model_name)
def test_platform_admins_without_the_otp_step_are_refused(client, objects, platform_admin, model):
    client.force_login(platform_admin)  # password only
    assert_sent_to_the_login_page(client, model, objects[model])


def test_pages_never_show_hashes_or_secrets(console, objects, tenant_admin, totp_device):
    pages = {
        url(ApiKey, "change", objects[ApiKey].pk): [API_KEY_HASH],
        url(ApiKey, "changelist"): [API_KEY_HASH],
        url(TeamInvite, "change", objects[TeamInvite].pk): [INVITE_HASH],
        url(User, "change", tenant_admin.pk): [tenant_admin.password],
        url(User, "changelist"): [tenant_admin.password],
        url(EncryptedTOTPDevice, "change", totp_device.pk): [totp_device.key, _stored_totp_key(totp_device)],
    }
    for page, secrets in pages.items():
        content = console.get(page).content.decode()
        for secret in secrets:
            assert secret not in content, page


def _stored_totp_key(device) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT key FROM {EncryptedTOTPDevice._meta.db_table} WHERE id = %s", [device.pk])  # noqa: S608
        return cursor.fetchone()[0]


# --- the login form ---------------------------------------------------------------------------------


def submit_login(client, user: User, otp_token: str | None = None):
    """The console's login form: e-mail, password and, when given, the TOTP code."""
    form = {"username": user.email, "password": PASSWORD}
    if otp_token is not None:
        form["otp_token"] = otp_token
    return client.post(reverse("admin:login"), form)


def current_code(device: EncryptedTOTPDevice) -> str:
    return f"{device._totp().token():06d}"


def assert_login_refused(client, response, message: str) -> None:
    """The form comes back with `message`, and no session was opened."""
    assert response.status_code == 200
    assert message in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_login_refuses_tenant_users_with_a_clear_message(client, tenant_admin):
    assert_login_refused(client, submit_login(client, tenant_admin), "This console is for platform administrators only")


def test_login_refuses_a_platform_admin_without_a_totp_device_and_says_how_to_enroll(client, platform_admin):
    response = submit_login(client, platform_admin)
    assert_login_refused(client, response, "requires a TOTP authenticator")
    assert "manage.py enroll_totp" in response.content.decode()


def test_login_refuses_a_locked_account(client, platform_admin, totp_device):
    platform_admin.locked_until = timezone.now() + timedelta(minutes=10)
    platform_admin.save(update_fields=["locked_until"])
    response = submit_login(client, platform_admin, current_code(totp_device))
    assert_login_refused(client, response, "locked after repeated failed sign-ins")


def test_login_asks_for_the_totp_code(client, platform_admin, totp_device):
    assert_login_refused(client, submit_login(client, platform_admin), "Please enter your OTP token")


def test_login_refuses_a_wrong_totp_code(client, platform_admin, totp_device):
    wrong = f"{(int(current_code(totp_device)) + 1) % 1_000_000:06d}"
    response = submit_login(client, platform_admin, wrong)
    assert_login_refused(client, response, "Invalid token")


def test_login_with_password_and_totp_code_opens_the_console(client, platform_admin, totp_device):
    code = current_code(totp_device)
    assert submit_login(client, platform_admin, code).status_code == 302
    assert client.get(reverse("admin:index")).status_code == 200
    assert audit_rows("console.login", actor_user=platform_admin).count() == 1
    # The same code cannot be used twice.
    client.logout()
    submit_login(client, platform_admin, code)
    assert "_auth_user_id" not in client.session


def test_changing_ones_password_in_the_console_is_audited(console, platform_admin):
    response = console.post(reverse("admin:password_change"), {
        "old_password": PASSWORD, "new_password1": "another-long-passphrase-7",
        "new_password2": "another-long-passphrase-7",
    })
    assert response.status_code == 302
    platform_admin.refresh_from_db()
    assert platform_admin.check_password("another-long-passphrase-7")
    assert audit_rows("user.password_changed", actor_user=platform_admin).count() == 1
    assert console.get(reverse("admin:index")).status_code == 200  # still logged in, still verified


# --- tenants: actions, creation, runtime data ----------------------------------------------------------------


def test_suspend_needs_a_reason(console, tenant_a):
    response = console.post(url(Tenant, "changelist"), {"action": "suspend_tenants",
                                                       "_selected_action": [tenant_a.pk], "reason": " "},
                            follow=True)
    tenant_a.refresh_from_db()
    assert tenant_a.status == Tenant.Status.ACTIVE
    assert "Enter the reason for the suspension" in response.content.decode()
    assert not audit_rows("tenant.suspended").exists()


def test_suspend_and_reactivate_change_state_and_are_audited(console, tenant_a, tenant_b, platform_admin):
    console.post(url(Tenant, "changelist"), {"action": "suspend_tenants", "_selected_action": [tenant_a.pk],
                                             "reason": "Unpaid invoices"})
    tenant_a.refresh_from_db()
    tenant_b.refresh_from_db()
    assert (tenant_a.status, tenant_a.status_reason) == (Tenant.Status.SUSPENDED, "Unpaid invoices")
    assert tenant_a.suspended_at is not None
    assert tenant_b.status == Tenant.Status.ACTIVE
    assert audit_rows("tenant.suspended", tenant=tenant_a, actor_user=platform_admin).count() == 1

    response = console.post(url(Tenant, "changelist"),
                            {"action": "reactivate_tenants", "_selected_action": [tenant_a.pk, tenant_b.pk]},
                            follow=True)
    tenant_a.refresh_from_db()
    assert tenant_a.status == Tenant.Status.ACTIVE
    assert audit_rows("tenant.reactivated", tenant=tenant_a, actor_user=platform_admin).count() == 1
    # tenant B was not suspended: the service refuses it and the page says so.
    assert "Not reactivated: Globex: cannot reactivate a tenant that is active" in response.content.decode()
    assert not audit_rows("tenant.reactivated", tenant=tenant_b).exists()


def test_adding_a_tenant_creates_and_provisions_it_through_the_service(console, platform_admin):
    response = console.post(url(Tenant, "add"), {
        "company_name": "Initech", "slug": "", "admin_email": "it@initech.example", "plan": "growth",
        "industry": "Software", "expected_agent_count": 3,
    })
    assert response.status_code == 302, response.content.decode()
    tenant = Tenant.objects.get(company_name="Initech")
    assert (tenant.slug, tenant.schema_name, tenant.status) == ("initech", "t_initech", Tenant.Status.ACTIVE)
    assert tenant.domains.filter(is_primary=True).exists()
    for action in ("tenant.created", "tenant.provisioned", "admin.tenant.added"):
        assert audit_rows(action, tenant=tenant, actor_user=platform_admin).count() == 1, action


def test_adding_a_tenant_with_a_taken_name_is_refused(console, tenant_a):
    response = console.post(url(Tenant, "add"), {
        "company_name": "ACME", "slug": "", "admin_email": "x@acme.example", "plan": "starter",
        "industry": "", "expected_agent_count": 0,
    })
    assert response.status_code == 200
    assert response.context["adminform"].form.errors
    assert Tenant.objects.filter(company_name__iexact="acme").count() == 1


def test_tenant_change_page_links_to_runtime_data(console, tenant_a):
    content = console.get(url(Tenant, "change", tenant_a.pk)).content.decode()
    assert url(Tenant, "runtime_data", tenant_a.pk) in content


def test_runtime_data_shows_this_tenants_agents_only_and_is_audited(
        console, tenant_a, tenant_b, in_tenant, sales_role, pending_skill, platform_admin):
    approved = Skill.objects.create(name="Calendar", slug="calendar", version="2.1.0", status="approved",
                                    reviewed_at=timezone.now())
    with in_tenant(tenant_a):
        agent = Agent.objects.create(key="a1", name="Alpha Agent", role_id="sales")
        AgentChannel.objects.create(agent=agent, type="telegram", name="Sales bot",
                                    secrets={"bot_token": "123456:TOPSECRETVALUE"})
        SkillInstallation.objects.create(skill=approved, agent=None)
    with in_tenant(tenant_b):
        Agent.objects.create(key="b1", name="Bravo Agent", role_id="sales")

    response = console.get(url(Tenant, "runtime_data", tenant_a.pk))
    content = response.content.decode()
    assert response.status_code == 200
    assert "Alpha Agent" in content and "Sales bot" in content and "Calendar 2.1.0" in content
    assert "Shared Toolbox" in content
    assert "Bravo Agent" not in content
    assert "TOPSECRETVALUE" not in content and "…ALUE" in content
    entry = audit_rows("tenant.data_viewed", tenant=tenant_a).get()
    assert entry.actor_user == platform_admin
    assert entry.changes == {"agents": 1, "channels": 1, "installations": 1}
    assert connection.schema_name == "public"


def test_runtime_data_of_a_tenant_without_a_schema(console):
    tenant = tenant_services.create_tenant(company_name="Hooli", admin_email="it@hooli.example")
    response = console.get(url(Tenant, "runtime_data", tenant.pk))
    assert response.status_code == 200
    assert "has no schema" in response.content.decode()
    assert not audit_rows("tenant.data_viewed").exists()


def test_runtime_data_is_behind_the_console_login(client, platform_admin, tenant_a):
    client.force_login(platform_admin)  # no OTP step
    response = client.get(url(Tenant, "runtime_data", tenant_a.pk))
    assert response.status_code == 302
    assert not audit_rows("tenant.data_viewed").exists()


def test_tenants_cannot_be_deleted_from_the_console(console, tenant_a):
    assert console.get(url(Tenant, "delete", tenant_a.pk)).status_code == 403


# --- users ------------------------------------------------------------------------------------------------


def _new_user(**fields):
    return {"email": "new.person@acme.example", "name": "New Person", "password1": "a-long-passphrase-42",
            "password2": "a-long-passphrase-42", **fields}


def test_adding_a_tenant_user_creates_the_membership_too(console, tenant_a, platform_admin):
    response = console.post(url(User, "add"), _new_user(role=Role.TENANT_MEMBER, tenant=tenant_a.pk))
    assert response.status_code == 302, response.content.decode()
    user = User.objects.get(email="new.person@acme.example")
    assert (user.role, user.tenant) == (Role.TENANT_MEMBER, tenant_a)
    assert user.check_password("a-long-passphrase-42")
    assert TeamMember.objects.filter(user=user, tenant=tenant_a, role=Role.TENANT_MEMBER).exists()
    assert audit_rows("admin.user.added", actor_user=platform_admin, tenant=tenant_a, target_id=str(user.pk)).exists()


def test_adding_a_platform_admin(console):
    response = console.post(url(User, "add"), _new_user(email="ops@aegis.example", role=Role.PLATFORM_ADMIN))
    assert response.status_code == 302, response.content.decode()
    user = User.objects.get(email="ops@aegis.example")
    assert user.is_platform_admin and user.tenant is None
    assert not TeamMember.objects.filter(user=user).exists()


@pytest.mark.parametrize(("role", "with_tenant", "message"), [
    (Role.TENANT_MEMBER, False, "Tenant admins and members belong to a tenant"),
    (Role.PLATFORM_ADMIN, True, "Platform admins do not belong to a tenant"),
])
def test_adding_a_user_keeps_role_and_tenant_consistent(console, tenant_a, role, with_tenant, message):
    response = console.post(url(User, "add"), _new_user(role=role, tenant=tenant_a.pk if with_tenant else ""))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not User.objects.filter(email="new.person@acme.example").exists()


def test_adding_a_user_with_a_taken_email_is_refused(console, tenant_admin, tenant_a):
    response = console.post(url(User, "add"), _new_user(email="BOSS@acme.example", role=Role.TENANT_MEMBER,
                                                        tenant=tenant_a.pk))
    assert response.status_code == 200
    assert "A user with this e-mail address already exists." in response.content.decode()


def test_changing_a_user_is_audited_and_leaves_role_and_tenant_alone(console, tenant_admin, tenant_b,
                                                                      platform_admin):
    # Role and tenant are read-only here (membership changes go through the team API's rules),
    # so posting them changes nothing.
    tenant_before = tenant_admin.tenant_id
    response = console.post(url(User, "change", tenant_admin.pk), {
        "email": tenant_admin.email, "name": "The Boss", "is_active": "on",
        "role": Role.PLATFORM_ADMIN, "tenant": tenant_b.pk,
    })
    assert response.status_code == 302, response.content.decode()
    tenant_admin.refresh_from_db()
    assert (tenant_admin.name, tenant_admin.role, tenant_admin.tenant_id) == ("The Boss", Role.TENANT_ADMIN,
                                                                            tenant_before)
    entry = audit_rows("admin.user.changed", target_id=str(tenant_admin.pk)).get()
    assert entry.actor_user == platform_admin
    assert entry.changes["fields"] == {"name": {"before": "Boss", "after": "The Boss"}}


def test_deactivating_a_user(console, tenant_admin):
    response = console.post(url(User, "change", tenant_admin.pk), {"email": tenant_admin.email, "name": "Boss"})
    assert response.status_code == 302
    tenant_admin.refresh_from_db()
    assert not tenant_admin.is_active
    entry = audit_rows("admin.user.changed", target_id=str(tenant_admin.pk)).get()
    assert entry.changes["fields"] == {"is_active": {"before": True, "after": False}}


# --- skills: the review queue -------------------------------------------------------------------------------


def _review(console, action, skills, note=""):
    return console.post(url(Skill, "changelist"),
                        {"action": action, "_selected_action": [s.pk for s in skills], "note": note}, follow=True)


def test_approving_a_skill_records_the_reviewer(console, pending_skill, platform_admin):
    _review(console, "approve_skills", [pending_skill], note="Looks good")
    pending_skill.refresh_from_db()
    assert pending_skill.status == Skill.Status.APPROVED
    assert (pending_skill.reviewed_by, pending_skill.review_note) == (platform_admin, "Looks good")
    assert pending_skill.reviewed_at is not None
    assert audit_rows("skill.approved", actor_user=platform_admin, target_id=str(pending_skill.pk)).count() == 1


def test_rejecting_a_skill_needs_a_note(console, pending_skill, platform_admin):
    response = _review(console, "reject_skills", [pending_skill])
    pending_skill.refresh_from_db()
    assert pending_skill.status == Skill.Status.PENDING
    assert "a note explaining the rejection is required" in response.content.decode()

    _review(console, "reject_skills", [pending_skill], note="Asks for far too many permissions")
    pending_skill.refresh_from_db()
    assert pending_skill.status == Skill.Status.REJECTED
    assert (pending_skill.reviewed_by, pending_skill.review_note) == (platform_admin,
                                                                      "Asks for far too many permissions")
    assert audit_rows("skill.rejected", actor_user=platform_admin, target_id=str(pending_skill.pk)).count() == 1


def test_a_reviewed_skill_cannot_be_reviewed_again(console, pending_skill):
    _review(console, "approve_skills", [pending_skill])
    response = _review(console, "reject_skills", [pending_skill], note="changed my mind")
    pending_skill.refresh_from_db()
    assert pending_skill.status == Skill.Status.APPROVED
    assert "only pending skills can be reviewed" in response.content.decode()
    assert not audit_rows("skill.rejected").exists()


def test_the_review_queue_filters_on_status(console, pending_skill):
    Skill.objects.create(name="Old one", slug="old-one", version="0.1.0", status="approved",
                         reviewed_at=timezone.now())
    response = console.get(url(Skill, "changelist", status__exact="pending"))
    assert [s.pk for s in response.context["cl"].result_list] == [pending_skill.pk]


# --- alerts -----------------------------------------------------------------------------------------


def test_acknowledging_and_resolving_alerts(console, objects, platform_admin, tenant_a):
    alert = objects[Alert]
    console.post(url(Alert, "changelist"), {"action": "acknowledge_alerts", "_selected_action": [alert.pk]})
    alert.refresh_from_db()
    assert (alert.status, alert.acknowledged_by) == (Alert.Status.ACKNOWLEDGED, platform_admin)
    assert alert.acknowledged_at is not None
    assert audit_rows("alert.acknowledged", actor_user=platform_admin, tenant=tenant_a).count() == 1

    console.post(url(Alert, "changelist"), {"action": "resolve_alerts", "_selected_action": [alert.pk]})
    alert.refresh_from_db()
    assert (alert.status, alert.resolved_by) == (Alert.Status.RESOLVED, platform_admin)
    assert alert.resolved_at is not None
    assert audit_rows("alert.resolved", actor_user=platform_admin, tenant=tenant_a).count() == 1


def test_an_acknowledged_alert_cannot_be_acknowledged_again(console, objects):
    alert = objects[Alert]
    console.post(url(Alert, "changelist"), {"action": "acknowledge_alerts", "_selected_action": [alert.pk]})
    response = console.post(url(Alert, "changelist"),
                            {"action": "acknowledge_alerts", "_selected_action": [alert.pk]}, follow=True)
    assert "only open alerts can be acknowledged" in response.content.decode()
    assert audit_rows("alert.acknowledged").count() == 1


# --- generic console changes are audited ------------------------------------------------------------------


def test_adding_and_changing_through_the_console_is_audited(console, platform_admin):
    fields = {"key": "support", "name": "Support", "description": "", "default_skills": "ticketing",
              "default_settings": "{}"}
    assert console.post(url(AgentRole, "add"), fields).status_code == 302
    role = AgentRole.objects.get(key="support")
    added = audit_rows("admin.agentrole.added", target_id=str(role.pk)).get()
    assert added.actor_user == platform_admin

    fields.update(name="Customer support")
    del fields["key"]  # read-only once created
    assert console.post(url(AgentRole, "change", role.pk), fields).status_code == 302
    changed = audit_rows("admin.agentrole.changed", target_id=str(role.pk)).get()
    assert changed.actor_user == platform_admin
    assert changed.changes["fields"] == {"name": {"before": "Support", "after": "Customer support"}}


def test_deleting_a_totp_device_is_audited(console, platform_admin, tenant_admin):
    lost = EncryptedTOTPDevice.objects.create(user=platform_admin, name="lost phone", confirmed=True)
    response = console.post(url(EncryptedTOTPDevice, "delete", lost.pk), {"post": "yes"})
    assert response.status_code == 302
    assert not EncryptedTOTPDevice.objects.filter(pk=lost.pk).exists()
    assert audit_rows("admin.encryptedtotpdevice.deleted", actor_user=platform_admin,
                      target_id=str(lost.pk)).count() == 1


# --- the audit log --------------------------------------------------------------------------------------


def test_the_audit_log_is_read_only(console, objects):
    entry = objects[AuditLog]
    assert console.get(url(AuditLog, "add")).status_code == 403
    assert console.post(url(AuditLog, "delete", entry.pk), {"post": "yes"}).status_code == 403
    content = console.get(url(AuditLog, "change", entry.pk)).content.decode()
    assert 'name="_save"' not in content


def _counts_of_the_audit_table(queries):
    return [q["sql"] for q in queries if "COUNT(" in q["sql"].upper() and "audit_auditlog" in q["sql"]]


@pytest.mark.parametrize("query", [{}, {"action": "test.event1"}, {"tenant__id__exact": "TENANT"}])
def test_the_audit_log_changelist_never_counts_the_whole_table(console, platform_admin, tenant_a, query):
    for i in range(30):
        record(f"test.event{i % 3}", actor=platform_admin, tenant=tenant_a)
    query = {k: str(tenant_a.pk) if v == "TENANT" else v for k, v in query.items()}
    with CaptureQueriesContext(connection) as queries:
        response = console.get(url(AuditLog, "changelist", **query))
    assert response.status_code == 200
    assert response.context["cl"].result_count >= 10
    # Any count is bounded (a LIMIT inside), never a COUNT(*) over the table. Unfiltered, there may
    # be no count at all: PostgreSQL's row estimate stands in once it passes the cap, and ANALYZE
    # of rows other tests rolled back leaves it there (pg_class.reltuples is not transactional).
    counts = _counts_of_the_audit_table(queries.captured_queries)
    assert all("LIMIT" in sql for sql in counts), counts
    assert counts or not query, "a filtered list must count (bounded)"


def test_the_audit_log_uses_the_planners_estimate_on_a_large_table(console, platform_admin, monkeypatch):
    monkeypatch.setattr(CappedCountPaginator, "cap", 10)  # "large" = more rows than the cap
    for i in range(45):
        record(f"test.event{i % 3}", actor=platform_admin)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE audit_auditlog")
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = 'audit_auditlog'::regclass")
        estimate = cursor.fetchone()[0]
    with CaptureQueriesContext(connection) as queries:
        response = console.get(url(AuditLog, "changelist"))
    assert response.status_code == 200
    assert response.context["cl"].result_count == estimate >= 45
    assert _counts_of_the_audit_table(queries.captured_queries) == []

    # Filtered (15 rows) past the cap: the count stops at the cap.
    with CaptureQueriesContext(connection) as queries:
        response = console.get(url(AuditLog, "changelist", action="test.event1"))
    assert response.context["cl"].result_count == 10
    assert all("LIMIT 11" in sql for sql in _counts_of_the_audit_table(queries.captured_queries))


def test_the_action_filter_lists_the_distinct_actions(console, platform_admin):
    for action in ("zeta.done", "alpha.done", "alpha.done"):
        record(action, actor=platform_admin)
    content = console.get(url(AuditLog, "changelist")).content.decode()
    assert "?action=alpha.done" in content and "?action=zeta.done" in content


# --- enroll_totp ---------------------------------------------------------------------------------------------


def test_enroll_totp_creates_a_confirmed_encrypted_device(platform_admin):
    out = io.StringIO()
    call_command("enroll_totp", email=platform_admin.email.upper(), stdout=out)
    device = EncryptedTOTPDevice.objects.get(user=platform_admin)
    assert device.confirmed
    assert device.config_url in out.getvalue()
    assert out.getvalue().count("otpauth://totp/") == 1
    assert _stored_totp_key(device) != device.key  # encrypted at rest
    platform_admin.refresh_from_db()
    assert platform_admin.mfa_enabled
    assert audit_rows("user.totp_enrolled", target_id=str(platform_admin.pk)).count() == 1

    with pytest.raises(CommandError, match="already has a TOTP device"):
        call_command("enroll_totp", email=platform_admin.email, stdout=io.StringIO())
    call_command("enroll_totp", email=platform_admin.email, replace=True, qr=True, stdout=io.StringIO())
    assert EncryptedTOTPDevice.objects.filter(user=platform_admin).exclude(pk=device.pk).count() == 1
    assert not EncryptedTOTPDevice.objects.filter(pk=device.pk).exists()


def test_enroll_totp_is_for_platform_admins_only(tenant_admin):
    with pytest.raises(CommandError, match="for platform admins"):
        call_command("enroll_totp", email=tenant_admin.email, stdout=io.StringIO())
    with pytest.raises(CommandError, match="no user"):
        call_command("enroll_totp", email="nobody@example.com", stdout=io.StringIO())
