"""The ops commands: what they do on success, and a clear CommandError on bad input."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO
from unittest import mock

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from django_tenants.utils import schema_exists

from apps.tenants import services, tasks
from apps.tenants.models import Tenant, TenantRuntime
from apps.tenants.runtime.base import RuntimeFailure
from tests.api.platform_support import make_sample, make_tenant


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def run_json(*args):
    return json.loads(run(*args, "--json"))


def running(tenant: Tenant) -> Tenant:
    TenantRuntime.objects.create(tenant=tenant, backend="local", port=19950, gateway_token="t",
                                 state=TenantRuntime.State.RUNNING)
    return tenant


# --- provision_tenant ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_provision_tenant_creates_and_provisions(runtime):
    # Eager Celery (test settings): the queued task runs at once, as a worker would.
    outcome = run_json("provision_tenant", "--company-name", "Initech", "--admin-email", "it@initech.example",
                       "--plan", "growth", "--wait")
    tenant = Tenant.objects.get(slug="initech")
    assert outcome == {"slug": "initech", "id": str(tenant.pk), "status": "active", "statusReason": "",
                       "queued": True}
    assert tenant.plan == "growth" and schema_exists(tenant.schema_name)
    assert TenantRuntime.objects.get(tenant=tenant).state == "running"


@pytest.mark.django_db
def test_provision_tenant_resumes_a_failed_or_stuck_tenant(runtime):
    failed = services.create_tenant(company_name="Hooli", admin_email="it@hooli.example")
    services.mark_failed(failed, reason="gateway timeout")
    assert "hooli: active" in run("provision_tenant", "hooli", "--inline")
    stuck = services.create_tenant(company_name="Stuck", admin_email="it@stuck.example")
    assert run_json("provision_tenant", "stuck", "--inline")["status"] == "active"
    assert "hooli: active" in run("provision_tenant", "hooli")  # already active: nothing to do
    assert Tenant.objects.get(pk=stuck.pk).status == "active"


@pytest.mark.django_db
def test_provision_tenant_reports_a_failure_as_an_error(runtime):
    runtime.fake.failures["ensure_runtime"] = [ValueError("no OpenClaw binary")]
    with pytest.raises(CommandError, match="provisioning of acme-two failed: provisioning failed: ValueError"):
        run("provision_tenant", "--company-name", "Acme Two", "--admin-email", "it@acme2.example")


@pytest.mark.django_db
def test_provision_tenant_wait_gives_up_with_a_hint(runtime):
    tenant = services.create_tenant(company_name="Slowpoke", admin_email="it@slowpoke.example")
    with mock.patch.object(tasks.provision_tenant, "delay"), \
            pytest.raises(CommandError, match=r"still provisioning after 0 s: is a Celery worker running"):
        run("provision_tenant", tenant.slug, "--wait", "--timeout", "0")


@pytest.mark.django_db
def test_provision_tenant_broker_down_says_so_and_the_tenant_can_be_resumed_inline(runtime):
    from kombu.exceptions import OperationalError

    refused = OperationalError("Error 111 connecting to localhost:6379. Connection refused.")
    with mock.patch.object(tasks.provision_tenant, "delay", side_effect=refused), \
            pytest.raises(CommandError, match=r"umbrella is provisioning, but its task could not be queued "
                                              r"\(is Redis running\? .*provision_tenant umbrella --inline"):
        run("provision_tenant", "--company-name", "Umbrella", "--admin-email", "it@umbrella.example")
    assert Tenant.objects.get(slug="umbrella").status == "provisioning"
    assert run_json("provision_tenant", "umbrella", "--inline")["status"] == "active"

    running(make_tenant(Tenant.Status.ACTIVE, slug="queued"))
    with mock.patch.object(tasks.sync_tenant_runtime, "delay", side_effect=refused), \
            pytest.raises(CommandError, match=r"cannot queue the start of queued \(is Redis running\?"):
        run("runtime", "start", "queued", "--queue")


@pytest.mark.django_db
@pytest.mark.parametrize(("args", "message"), [
    ((), "give the slug of a tenant to resume"),
    (("no-such-tenant",), "no tenant with slug 'no-such-tenant'"),
    (("--company-name", "Nameless"), "--admin-email is required"),
    (("--company-name", "Acme", "--admin-email", "x@acme.example"), "cannot create the tenant: .*already exists"),
    (("--company-name", "Bad Mail", "--admin-email", "not-an-address"), "admin_email: Enter a valid email"),
])
def test_provision_tenant_bad_input(tenant_a, args, message):
    with pytest.raises(CommandError, match=message):
        run("provision_tenant", *args)


@pytest.mark.django_db
def test_provision_tenant_refuses_a_suspended_tenant(db):
    make_tenant(Tenant.Status.SUSPENDED, slug="asleep")
    with pytest.raises(CommandError, match=r"asleep is suspended: .*reactivate"):
        run("provision_tenant", "asleep")


# --- tenant_status ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_tenant_status_shows_status_runtime_and_last_health(tenant_a, tenant_b):
    running(tenant_a)
    make_sample(tenant_a, "unhealthy", checked_at=timezone.now() - timedelta(days=1))
    make_sample(tenant_a, "degraded", checked_at=timezone.now() - timedelta(minutes=2))
    make_tenant(Tenant.Status.DECOMMISSIONED, slug="gone", purged_at=timezone.now())

    table = run("tenant_status")
    lines = table.splitlines()
    assert lines[0].split() == ["SLUG", "STATUS", "RUNTIME", "PORT", "HEALTH", "CHECKED", "ALERTS", "COMPANY"]
    acme = next(line for line in lines if line.startswith(tenant_a.slug)).split()
    assert acme[:7] == [tenant_a.slug, "active", "running", "19950", "degraded", "2m", "ago"]
    globex = next(line for line in lines if line.startswith(tenant_b.slug)).split()
    assert globex[:5] == [tenant_b.slug, "active", "-", "-", "-"]
    assert "gone" not in table  # purged tenants only with --all

    rows = {row["slug"]: row for row in run_json("tenant_status", "--all")}
    assert rows[tenant_a.slug]["runtime"]["state"] == "running"
    assert rows[tenant_a.slug]["health"]["status"] == "degraded"
    assert rows[tenant_b.slug]["runtime"] is None and "gone" in rows
    assert run("tenant_status", "--status", "failed") == "no tenants\n"


def test_tenant_status_rejects_an_unknown_status():
    with pytest.raises(CommandError, match="invalid choice: 'sleeping'"):
        run("tenant_status", "--status", "sleeping")


# --- runtime -------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_runtime_start_stop_restart_and_status(tenant_a, runtime):
    assert "started (state running" in run("runtime", "start", tenant_a.slug)
    assert run_json("runtime", "stop", tenant_a.slug)["state"] == "stopped"
    assert run_json("runtime", "restart", tenant_a.slug)["state"] == "running"
    status = run_json("runtime", "status", tenant_a.slug)
    assert (status["running"], status["healthy"], status["details"]["serving"]) == (True, True, True)
    assert [name for name, _ in runtime.calls()] == [
        "ensure_runtime", "start_runtime", "wait_until_healthy", "stop_runtime", "restart_runtime",
        "wait_until_healthy", "runtime_status"]


@pytest.mark.django_db
def test_runtime_failures_and_refusals_are_command_errors(tenant_a, runtime):
    runtime.fake.failures["start_runtime"] = [RuntimeFailure("port 19100 is in use")]
    with pytest.raises(CommandError, match="start failed for acme: port 19100 is in use"):
        run("runtime", "start", tenant_a.slug)
    make_tenant(Tenant.Status.SUSPENDED, slug="asleep")
    with pytest.raises(CommandError, match="asleep is suspended: only an active tenant's runtime can start"):
        run("runtime", "start", "asleep")
    with pytest.raises(CommandError, match="asleep has no runtime"):
        run("runtime", "stop", "asleep")
    with pytest.raises(CommandError, match="no tenant with slug 'nobody'"):
        run("runtime", "restart", "nobody")
    with pytest.raises(CommandError, match="invalid choice: 'explode'"):
        run("runtime", "explode", tenant_a.slug)


@pytest.mark.django_db
def test_runtime_takes_the_slug_after_the_options_too(tenant_a, runtime):
    """`runtime stop --json acme`: plain argparse left the slug empty and rejected "acme"."""
    assert json.loads(run("runtime", "start", "--json", tenant_a.slug))["state"] == "running"
    assert json.loads(run("runtime", "stop", "--json", tenant_a.slug))["state"] == "stopped"
    with pytest.raises(CommandError, match="unrecognized arguments: extra"):
        run("runtime", "status", tenant_a.slug, "extra")


def with_runtime(tenant: Tenant, state: str, port: int) -> Tenant:
    TenantRuntime.objects.create(tenant=tenant, backend="local", port=port, gateway_token="t", state=state)
    return tenant


def run_all(*args) -> tuple[str, str, CommandError | None]:
    """stdout, stderr and the CommandError (if any) of a command that reports every tenant, then fails."""
    out, err = StringIO(), StringIO()
    try:
        call_command(*args, stdout=out, stderr=err)
    except CommandError as exc:
        return out.getvalue(), err.getvalue(), exc
    return out.getvalue(), err.getvalue(), None


@pytest.mark.django_db
def test_runtime_stop_all_stops_every_runtime_not_stopped_already(tenant_a, tenant_b, runtime):
    running(tenant_a)
    with_runtime(tenant_b, TenantRuntime.State.STOPPED, 19951)
    with_runtime(make_tenant(Tenant.Status.SUSPENDED, slug="asleep"), TenantRuntime.State.RUNNING, 19952)
    with_runtime(make_tenant(Tenant.Status.ACTIVE, slug="broken"), TenantRuntime.State.ERROR, 19953)
    with_runtime(make_tenant(Tenant.Status.DECOMMISSIONED, slug="gone"), TenantRuntime.State.REMOVED, None)

    out, err, error = run_all("runtime", "stop", "--all")
    assert error is None
    assert out.splitlines() == ["[1/3] acme: stopped", "[2/3] asleep: stopped", "[3/3] broken: stopped", "3 stopped"]
    assert "acme, broken" in err  # active: their health checks fail until they start again
    assert runtime.calls() == [("stop_runtime", "acme"), ("stop_runtime", "asleep"), ("stop_runtime", "broken")]
    states = dict(TenantRuntime.objects.values_list("tenant__slug", "state"))
    assert states == {"acme": "stopped", "globex": "stopped", "asleep": "stopped", "broken": "stopped",
                      "gone": "removed"}

    assert run("runtime", "stop", "--all") == "no runtime to stop\n"
    assert len(runtime.calls()) == 3


@pytest.mark.django_db
def test_runtime_stop_all_reports_a_failure_stops_the_others_and_exits_non_zero(tenant_a, tenant_b, runtime):
    running(tenant_a)
    with_runtime(tenant_b, TenantRuntime.State.RUNNING, 19951)
    runtime.fake.failures["stop_runtime"] = [RuntimeFailure("gateway processes survived SIGKILL: [4242]")]

    out, _, error = run_all("runtime", "stop", "--all")
    assert str(error) == "stop failed for: acme"
    assert out.splitlines()[:2] == ["[1/2] acme: failed: gateway processes survived SIGKILL: [4242]",
                                    "[2/2] globex: stopped"]
    assert runtime.calls() == [("stop_runtime", "acme"), ("stop_runtime", "globex")]
    assert TenantRuntime.objects.get(tenant=tenant_b).state == TenantRuntime.State.STOPPED

    result = run_json("runtime", "stop", "--all")  # the one left running, now stopped
    assert [(row["slug"], row["outcome"], row["state"]) for row in result["tenants"]] == [
        ("acme", "stopped", "stopped")]


@pytest.mark.django_db
def test_runtime_stop_all_skips_a_tenant_another_task_holds(tenant_a, runtime):
    running(tenant_a)
    with mock.patch.object(tasks, "tenant_lock") as lock:
        lock.return_value.__enter__.return_value = False
        out, _, error = run_all("runtime", "stop", "--all")
    assert str(error) == "stop failed for: acme" and "acme: failed: another lifecycle task" in out
    assert runtime.calls() == []


@pytest.mark.django_db
def test_runtime_start_all_queue_queues_one_task_per_active_tenant(tenant_a, tenant_b, runtime):
    make_tenant(Tenant.Status.SUSPENDED, slug="asleep")
    make_tenant(Tenant.Status.PROVISIONING, slug="newco")
    with mock.patch.object(tasks.sync_tenant_runtime, "delay") as delay:
        out = run("runtime", "start", "--all", "--queue")
    assert sorted(call.args for call in delay.call_args_list) == sorted([(str(tenant_a.pk),), (str(tenant_b.pk),)])
    assert out.splitlines() == ["[1/2] acme: queued", "[2/2] globex: queued", "2 queued"]
    assert runtime.calls() == []  # nothing started here: the worker does it


@pytest.mark.django_db
def test_runtime_start_all_starts_every_active_tenant_and_waits(tenant_a, tenant_b, runtime):
    make_tenant(Tenant.Status.SUSPENDED, slug="asleep")
    result = run_json("runtime", "start", "--all")
    assert [(row["slug"], row["outcome"], row["state"]) for row in result["tenants"]] == [
        ("acme", "started", "running"), ("globex", "started", "running")]
    assert runtime.calls() == [("ensure_runtime", "acme"), ("start_runtime", "acme"), ("wait_until_healthy", "acme"),
                               ("ensure_runtime", "globex"), ("start_runtime", "globex"),
                               ("wait_until_healthy", "globex")]


@pytest.mark.django_db
def test_runtime_start_with_queue_for_one_tenant(tenant_a, runtime):
    with mock.patch.object(tasks.sync_tenant_runtime, "delay") as delay:
        assert "acme: queued" in run("runtime", "start", tenant_a.slug, "--queue")
    delay.assert_called_once_with(str(tenant_a.pk))
    make_tenant(Tenant.Status.SUSPENDED, slug="asleep")
    with pytest.raises(CommandError, match="asleep is suspended"):
        run("runtime", "start", "asleep", "--queue")
    assert delay.call_count == 1 and runtime.calls() == []


@pytest.mark.django_db
@pytest.mark.parametrize(("args", "message"), [
    (("start", "acme", "--all"), "give a tenant's slug or --all, not both"),
    (("stop",), "which tenant\\? give its slug, or --all"),
    (("restart", "--all"), "--all goes with start and stop only, not restart"),
    (("status", "--all"), "--all goes with start and stop only, not status"),
    (("logs", "--all"), "--all goes with start and stop only, not logs"),
    (("stop", "--all", "--queue"), "--queue goes with start only"),
])
def test_runtime_all_bad_combinations(tenant_a, runtime, args, message):
    with pytest.raises(CommandError, match=message):
        run("runtime", *args)
    assert runtime.calls() == []


@pytest.mark.django_db
def test_runtime_all_does_nothing_while_tenant_runtimes_are_off(tenant_a, settings):
    settings.TENANT_RUNTIMES_ENABLED = False
    running(tenant_a)
    with mock.patch.object(tasks.sync_tenant_runtime, "delay") as delay, \
            mock.patch.object(tasks, "runtime_api") as api:
        assert run("runtime", "stop", "--all") == (
            "tenant runtimes are off (TENANT_RUNTIMES_ENABLED): nothing to stop\n")
        assert run("runtime", "start", "--all", "--queue") == (
            "tenant runtimes are off (TENANT_RUNTIMES_ENABLED): nothing to start\n")
        assert run_json("runtime", "start", "--all")["tenants"] == []
    assert not delay.called and not api.called
    assert TenantRuntime.objects.get(tenant=tenant_a).state == TenantRuntime.State.RUNNING


@pytest.mark.django_db
def test_runtime_logs_reads_the_gateway_log(tenant_a, settings, tmp_path):
    settings.RUNTIME_DIR = tmp_path
    running(tenant_a)
    log = tmp_path / tenant_a.schema_name / "logs" / "openclaw.log"
    log.parent.mkdir(parents=True)
    log.write_text("".join(json.dumps({"time": f"12:00:0{n}", "message": f"line {n}",
                                       "_meta": {"logLevelName": "INFO"}}) + "\n" for n in range(5)))
    assert run("runtime", "logs", tenant_a.slug, "--tail", "2").splitlines() == [
        "12:00:03 INFO line 3", "12:00:04 INFO line 4"]
    with pytest.raises(CommandError, match="--tail must be at least 1"):
        run("runtime", "logs", tenant_a.slug, "--tail", "0")


@pytest.mark.django_db
def test_runtime_logs_of_a_tenant_without_runtime(tenant_b):
    with pytest.raises(CommandError, match="has no runtime"):
        run("runtime", "logs", tenant_b.slug)


# --- rerender_configs ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_rerender_configs_applies_every_active_tenant(tenant_a, tenant_b, runtime):
    make_tenant(Tenant.Status.SUSPENDED, slug="asleep")
    result = run_json("rerender_configs")
    assert {row["slug"] for row in result["tenants"]} >= {tenant_a.slug, tenant_b.slug}
    assert "asleep" not in {row["slug"] for row in result["tenants"]}
    assert set(result["counts"]) == {"reloaded"} and result["dryRun"] is False
    assert {name for name, _ in runtime.calls()} == {"apply_runtime_config"}


@pytest.mark.django_db
def test_rerender_configs_dry_run_validates_with_openclaws_schema_and_applies_nothing(tenant_a, runtime):
    output = run("rerender_configs", "--dry-run", "--tenant", tenant_a.slug)
    assert output.splitlines() == [f"[1/1] {tenant_a.slug}: valid", "1 valid"]
    assert runtime.calls() == []


@pytest.mark.django_db
def test_rerender_configs_fails_loudly_on_an_invalid_config(tenant_a, runtime):
    with mock.patch("apps.agents.openclaw.render.validate_config", return_value=["agents/entries: bad key"]), \
            pytest.raises(CommandError, match=f"config not applied for: {tenant_a.slug}"):
        run("rerender_configs", "--dry-run", "--tenant", tenant_a.slug)
    runtime.fake.failures["apply_runtime_config"] = [RuntimeFailure("gateway refused the file")]
    with pytest.raises(CommandError, match="config not applied for"):
        run("rerender_configs", "--tenant", tenant_a.slug)


@pytest.mark.django_db
def test_rerender_configs_an_unexpected_error_fails_that_tenant_only(tenant_a, tenant_b, runtime):
    """Not only RuntimeFailure: any error (a render bug, a lost connection) is reported for its
    tenant, the other tenants still get their config, and the command exits non-zero at the end."""
    first, second = sorted([tenant_a.slug, tenant_b.slug])
    runtime.fake.failures["apply_runtime_config"] = [KeyError("channels")]
    out = StringIO()
    with pytest.raises(CommandError, match=f"config not applied for: {first}$"):
        call_command("rerender_configs", "--tenant", first, "--tenant", second, stdout=out, stderr=StringIO())
    assert out.getvalue().splitlines()[:2] == [f"[1/2] {first}: failed: KeyError: 'channels'",
                                               f"[2/2] {second}: reloaded"]
    assert runtime.calls() == [("apply_runtime_config", first), ("apply_runtime_config", second)]


@pytest.mark.django_db
def test_rerender_configs_bad_input(tenant_a):
    with pytest.raises(CommandError, match="no tenant with slug 'nobody'"):
        run("rerender_configs", "--tenant", "nobody")
    make_tenant(Tenant.Status.SUSPENDED, slug="asleep")
    with pytest.raises(CommandError, match="not active: asleep"):
        run("rerender_configs", "--tenant", "asleep")


# --- purge_decommissioned ------------------------------------------------------------------------------------


def decommissioned(name: str, *, days_ago: int) -> Tenant:
    tenant = services.provision(services.create_tenant(company_name=name, admin_email=f"it@{name.lower()}.example"))
    tenant = services.decommission(tenant)
    Tenant.objects.filter(pk=tenant.pk).update(purge_after=timezone.now() - timedelta(days=days_ago))
    return Tenant.objects.get(pk=tenant.pk)


@pytest.mark.django_db
def test_purge_decommissioned_dry_run_then_purge_only_past_the_grace_period(runtime):
    due, waiting = decommissioned("Oldco", days_ago=2), decommissioned("Newco", days_ago=-5)
    running(due)

    dry = run_json("purge_decommissioned", "--dry-run")
    assert [(row["slug"], row["outcome"]) for row in dry["tenants"]] == [("oldco", "would purge")]
    assert schema_exists(due.schema_name) and runtime.calls() == []

    assert run("purge_decommissioned").splitlines() == ["[1/1] oldco: purged"]
    due.refresh_from_db()
    assert due.purged_at is not None and not schema_exists(due.schema_name)
    assert runtime.calls() == [("remove_runtime", "oldco")]
    assert schema_exists(waiting.schema_name) and Tenant.objects.get(pk=waiting.pk).purged_at is None
    assert run("purge_decommissioned") == "no decommissioned tenant is past its grace period\n"


@pytest.mark.django_db
def test_purge_decommissioned_reports_each_failure_and_exits_non_zero(runtime):
    due = running(decommissioned("Oldco", days_ago=2))
    runtime.fake.failures["remove_runtime"] = [RuntimeFailure("disk is read-only")]
    with pytest.raises(CommandError, match="purging failed for: oldco"):
        run("purge_decommissioned")
    assert schema_exists(due.schema_name)


@pytest.mark.django_db
def test_purge_decommissioned_rejects_unknown_options():
    with pytest.raises(CommandError, match="unrecognized arguments: --all-now"):
        run("purge_decommissioned", "--all-now")


# --- rotate_encryption_key -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_rotate_encryption_key_names_an_undecryptable_table_and_leaves_it_unchanged(settings):
    from cryptography.fernet import Fernet
    from django.db import connection

    from apps.accounts.models import EncryptedTOTPDevice, User

    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old_key]
    admin = User.objects.create_user("ops@aegis.example", "x" * 20, role="platform_admin")
    device = EncryptedTOTPDevice.objects.create(user=admin, name="phone", confirmed=True)

    def stored() -> str:  # the token as stored, not decrypted
        with connection.cursor() as cursor:
            cursor.execute("SELECT key FROM accounts_encryptedtotpdevice WHERE id = %s", [device.pk])
            return cursor.fetchone()[0]

    before = stored()
    settings.FIELD_ENCRYPTION_KEYS = [new_key]  # the old key dropped before rotating: a mistake
    with pytest.raises(CommandError, match=r"public: accounts\.EncryptedTOTPDevice: a stored value cannot be "
                                           r"decrypted.*run the command again"):
        call_command("rotate_encryption_key", verbosity=0)
    assert stored() == before

    settings.FIELD_ENCRYPTION_KEYS = ["not-a-fernet-key"]
    with pytest.raises(CommandError, match="FIELD_ENCRYPTION_KEYS is not usable, nothing was re-encrypted"):
        call_command("rotate_encryption_key", verbosity=0)


# --- create_platform_admin -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_create_platform_admin_writes_the_user_and_its_audit_row_or_neither(monkeypatch):
    from django.db import IntegrityError

    from apps.accounts import services as account_services
    from apps.accounts.models import User

    monkeypatch.setenv("OPS_ADMIN_PASSWORD", "Correct-Horse-Battery-9")
    args = ("create_platform_admin", "--email", "ops@aegis.example", "--password-env", "OPS_ADMIN_PASSWORD")
    with mock.patch("apps.accounts.services.record", side_effect=RuntimeError("audit table locked")), \
            pytest.raises(RuntimeError):
        run(*args)
    assert not User.objects.filter(email="ops@aegis.example").exists()  # no admin without its audit row

    # Created by a concurrent run between the existence check and the insert: a clear error.
    with mock.patch.object(account_services, "create_platform_admin",
                           side_effect=IntegrityError("duplicate key value violates unique constraint")), \
            pytest.raises(CommandError, match=r"a user with e-mail ops@aegis\.example already exists"):
        run(*args)
