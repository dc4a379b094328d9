"""The runtime services (apps/tenants/runtime/services.py) and the config apply on change
(receiver -> apply_runtime_config task), against the fake CLI: states, last_error, audit rows,
port allocation, alerts for invalid configs."""

from __future__ import annotations

import os
import signal
import socket

import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from apps.agents import services as agent_services
from apps.agents.models import AgentChannel
from apps.audit.models import AuditLog
from apps.monitoring.models import Alert
from apps.tenants.models import TenantRuntime
from apps.tenants.runtime import RuntimeFailure, services
from apps.tenants.runtime.local import LocalProcessBackend
from apps.tenants.tasks import apply_runtime_config
from tests.api.agent_factories import make_agent, make_channel, make_role
from tests.runtime.conftest import free_port
from tests.runtime.test_local_backend import wait_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def local_runtimes(settings, fake_openclaw):
    settings.RUNTIME_BACKEND = "local"
    settings.TENANT_RUNTIMES_ENABLED = True
    base = free_port()
    settings.RUNTIME_PORT_RANGE = (base, base + 50)
    return fake_openclaw


def actions(tenant) -> list[str]:
    return list(AuditLog.objects.filter(tenant=tenant, action__startswith="runtime.")
                .order_by("created_at", "id").values_list("action", flat=True))


def test_ensure_runtime_creates_one_row_with_a_port_and_an_encrypted_token(tenant_a, settings):
    runtime = services.ensure_runtime(tenant_a)
    assert runtime.backend == "local" and runtime.state == "stopped"
    low, high = settings.RUNTIME_PORT_RANGE
    assert low <= runtime.port <= high
    assert len(runtime.gateway_token) >= 43
    with connection.cursor() as cursor:
        cursor.execute("SELECT gateway_token FROM tenants_tenantruntime WHERE id = %s", [runtime.pk])
        assert runtime.gateway_token not in cursor.fetchone()[0]  # encrypted at rest
    assert services.ensure_runtime(tenant_a).pk == runtime.pk
    assert actions(tenant_a) == ["runtime.created"]


def test_two_tenants_never_share_a_port_or_a_token(tenant_a, tenant_b):
    a, b = services.ensure_runtime(tenant_a), services.ensure_runtime(tenant_b)
    assert a.port != b.port and a.gateway_token != b.gateway_token


def test_start_wait_stop_remove(tenant_a):
    runtime = services.start_runtime(tenant_a)
    assert runtime.state == "running" and runtime.handle and runtime.started_at and len(runtime.config_hash) == 64
    status = services.wait_until_healthy(tenant_a, timeout=15)
    assert status.running and status.healthy
    assert services.runtime_status(tenant_a, gateway_health=False).healthy
    services.start_runtime(tenant_a)  # idempotent: same process, same start time, no new audit row
    again = TenantRuntime.objects.get(pk=runtime.pk)
    assert (again.handle, again.started_at, again.state) == (runtime.handle, runtime.started_at, "running")

    services.stop_runtime(tenant_a)
    runtime.refresh_from_db()
    assert runtime.state == "stopped" and runtime.handle == ""
    folder = LocalProcessBackend().folder(runtime)
    assert folder.exists()  # state kept

    services.restart_runtime(tenant_a)
    services.wait_until_healthy(tenant_a, timeout=15)
    services.remove_runtime(tenant_a)
    runtime.refresh_from_db()
    assert runtime.state == "removed" and runtime.port is None and runtime.gateway_token == "" and not folder.exists()
    assert services.stop_runtime(tenant_a).state == "removed"  # nothing to stop
    assert actions(tenant_a) == ["runtime.created", "runtime.started", "runtime.stopped",
                                 "runtime.stopped", "runtime.started", "runtime.restarted", "runtime.removed"]

    revived = services.ensure_runtime(tenant_a)  # reprovisioning after a removal: new port and token
    assert revived.pk == runtime.pk and revived.port and revived.gateway_token and revived.state == "stopped"


def test_a_failed_start_is_recorded(tenant_a, local_runtimes):
    local_runtimes.mode("crash")
    with pytest.raises(RuntimeFailure, match="exited right after starting"):
        services.start_runtime(tenant_a)
    runtime = TenantRuntime.objects.get(tenant=tenant_a)
    assert runtime.state == "error" and "fake crash" in runtime.last_error
    assert actions(tenant_a)[-1] == "runtime.start_failed"


def test_a_port_taken_meanwhile_moves_the_runtime_to_a_free_one(tenant_a):
    runtime = services.ensure_runtime(tenant_a)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", runtime.port))
        squatter.listen()
        started = services.start_runtime(tenant_a)
    assert started.port != runtime.port and started.state == "running"
    assert "runtime.port_changed" in actions(tenant_a)
    services.stop_runtime(tenant_a)


def test_a_gateway_that_never_gets_ready_times_out_into_error(tenant_a, local_runtimes):
    local_runtimes.mode("starting")
    services.start_runtime(tenant_a)
    with pytest.raises(RuntimeFailure, match="did not become ready within 2 s"):
        services.wait_until_healthy(tenant_a, timeout=2)
    runtime = TenantRuntime.objects.get(tenant=tenant_a)
    assert runtime.state == "error" and "startup-sidecars" in runtime.last_error
    assert actions(tenant_a)[-1] == "runtime.unhealthy"
    services.stop_runtime(tenant_a)


def test_a_gateway_killed_outside_aegis_is_noticed(tenant_a):
    runtime = services.start_runtime(tenant_a)
    services.wait_until_healthy(tenant_a, timeout=15)
    os.kill(int(runtime.handle), signal.SIGKILL)
    assert wait_for(lambda: not services.runtime_status(tenant_a, gateway_health=False).running)
    runtime.refresh_from_db()
    assert runtime.state == "error" and "exited outside Aegis" in runtime.last_error
    assert actions(tenant_a)[-1] == "runtime.exited"
    services.stop_runtime(tenant_a)  # the helper it left behind


# --- Config changes reach the running gateway --------------------------------------------------------


def test_apply_without_a_running_runtime_records_nothing(tenant_a):
    assert services.apply_runtime_config(tenant_a) == "no-runtime"
    services.ensure_runtime(tenant_a)
    assert services.apply_runtime_config(tenant_a) == "no-runtime"
    assert actions(tenant_a) == ["runtime.created"]


def test_agent_changes_are_applied_after_commit_and_only_when_the_config_changes(
        tenant_a, django_capture_on_commit_callbacks):
    make_role("sales")
    runtime = services.start_runtime(tenant_a)
    services.wait_until_healthy(tenant_a, timeout=15)
    backend = LocalProcessBackend()
    first = runtime.config_hash
    assert apply_runtime_config.delay(str(tenant_a.pk)).get() == "unchanged"

    with django_capture_on_commit_callbacks(execute=True), tenant_context(tenant_a):
        agent = agent_services.create_agent(tenant=tenant_a, name="Ava", role="sales", status="active")
    runtime.refresh_from_db()
    assert runtime.config_hash != first and runtime.handle
    assert backend.gateway_call(runtime, "agents.list") == {"agents": [{"id": agent.key}]}
    applied = AuditLog.objects.filter(tenant=tenant_a, action="runtime.config_applied").get()
    assert applied.changes["how"] == "reloaded"

    with django_capture_on_commit_callbacks(execute=True), tenant_context(tenant_a):
        agent_services.pause_agent(tenant=tenant_a, agent_id=agent.pk)
    runtime.refresh_from_db()
    assert backend.gateway_call(runtime, "agents.list") == {"agents": []}  # a paused agent does not run
    services.stop_runtime(tenant_a)


def test_a_new_channel_secret_restarts_the_gateway(tenant_a, django_capture_on_commit_callbacks):
    agent = make_agent(tenant_a, "Ava", key="ava", status="active")
    runtime = services.start_runtime(tenant_a)
    services.wait_until_healthy(tenant_a, timeout=15)
    pid = runtime.handle
    with django_capture_on_commit_callbacks(execute=True), tenant_context(tenant_a):
        agent_services.create_channel(tenant=tenant_a, agent_id=agent.pk, channel_type="telegram", name="Bot",
                                      secrets={"bot_token": "42:SecretToken"})
    runtime.refresh_from_db()
    assert runtime.handle != pid and runtime.state == "running"
    assert AuditLog.objects.get(tenant=tenant_a, action="runtime.config_applied").changes["how"] == "restarted"
    services.stop_runtime(tenant_a)


def test_an_invalid_config_is_never_applied_and_raises_one_alert(tenant_a):
    agent = make_agent(tenant_a, "Ava", key="ava", status="active")
    channel = make_channel(tenant_a, agent, "Bot", channel_type="telegram", secrets={"bot_token": "1:x"})
    runtime = services.start_runtime(tenant_a)
    applied_hash = runtime.config_hash
    with tenant_context(tenant_a):  # a bad value that slipped past the API (no database constraint)
        AgentChannel.objects.filter(pk=channel.pk).update(config={"dm_policy": "everyone"})
    assert apply_runtime_config.delay(str(tenant_a.pk)).get() == "invalid"
    assert apply_runtime_config.delay(str(tenant_a.pk)).get() == "invalid"
    alert = Alert.objects.get(tenant=tenant_a, kind="runtime.config_invalid")
    assert alert.status == "open" and "dmPolicy" in alert.message and alert.severity == "warning"
    runtime.refresh_from_db()
    assert runtime.config_hash == applied_hash  # nothing applied
    assert "everyone" not in LocalProcessBackend().config_path(runtime).read_text()

    with tenant_context(tenant_a):
        AgentChannel.objects.filter(pk=channel.pk).update(config={"dm_policy": "pairing"})
    assert apply_runtime_config.delay(str(tenant_a.pk)).get() == "reloaded"
    alert.refresh_from_db()
    assert alert.status == "resolved"  # fixed: the alert resolves itself
    services.stop_runtime(tenant_a)


def test_the_receiver_is_off_when_runtimes_are(tenant_a, settings, django_capture_on_commit_callbacks):
    make_role("sales")
    runtime = services.start_runtime(tenant_a)
    settings.TENANT_RUNTIMES_ENABLED = False
    with django_capture_on_commit_callbacks(execute=True), tenant_context(tenant_a):
        agent_services.create_agent(tenant=tenant_a, name="Ava", role="sales", status="active")
    assert TenantRuntime.objects.get(pk=runtime.pk).config_hash == runtime.config_hash
    services.stop_runtime(tenant_a)


def test_a_tenant_without_its_schema_fails_to_start_cleanly(db):
    from apps.tenants import services as tenant_services

    tenant = tenant_services.create_tenant(company_name="No Schema Yet", admin_email="a@noschema.example")
    with pytest.raises(RuntimeFailure, match="could not read the tenant's configuration"):
        services.start_runtime(tenant)
    runtime = TenantRuntime.objects.get(tenant=tenant)  # the transaction survived the failure
    assert runtime.state == "error" and "does not exist" in runtime.last_error
    assert actions(tenant) == ["runtime.created", "runtime.start_failed"]


def test_starting_a_running_gateway_brings_its_config_up_to_date(tenant_a):
    runtime = services.start_runtime(tenant_a)
    services.wait_until_healthy(tenant_a, timeout=15)
    agent = make_agent(tenant_a, "Ava", key="ava", status="active")  # no signal: written behind Aegis's back
    make_channel(tenant_a, agent, "Bot", channel_type="telegram", secrets={"bot_token": "7:Secret"})
    again = services.start_runtime(tenant_a)  # what the lifecycle sync does on reactivation
    assert again.config_hash != runtime.config_hash and again.handle != runtime.handle  # new secret: restarted
    applied = AuditLog.objects.get(tenant=tenant_a, action="runtime.config_applied")
    assert applied.changes["how"] == "restarted"
    assert actions(tenant_a).count("runtime.started") == 1
    services.stop_runtime(tenant_a)
