"""What the services publish, after commit, and who receives it: agent activity and status on
the tenant's stream, tenant status, alerts and runtime health on the platform stream, and a
suspension that closes the tenant's sockets."""

from __future__ import annotations

from datetime import UTC, datetime

from asgiref.sync import async_to_sync, sync_to_async
from django.db import transaction
from django_tenants.utils import schema_context
from rest_framework.test import APIClient

from aegis import events
from apps.agents.models import AgentActivity
from apps.monitoring import services as monitoring_services
from apps.monitoring.models import ContainerHealth
from apps.tenants import services as tenant_services
from tests.api.agent_factories import make_agent
from tests.realtime.conftest import TRANSACTIONAL
from tests.realtime.helpers import ACTIVITY, PLATFORM, close, expect_refusal, open_socket, receive_events

pytestmark = TRANSACTIONAL


def test_pausing_an_agent_through_the_api_streams_its_activity_and_status_to_its_tenant_only(world):
    agent = make_agent(world.tenant_a, "Ava", status="active")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {world.token(world.user_a)}")

    def pause():
        return client.post(f"/api/v1/agents/{agent.pk}/pause")

    async def scenario():
        socket_a, _ = await open_socket(ACTIVITY, world.token(world.user_a))
        socket_b, _ = await open_socket(ACTIVITY, world.token(world.user_b))
        response = await sync_to_async(pause)()
        received = await receive_events(socket_a, 2)
        await events.apublish(events.tenant_stream(world.tenant_b.pk), "test.event", {"marker": "end"})
        other = await receive_events(socket_b, 1)
        await close(socket_a, socket_b)
        return response, received, other

    response, (activity, status), other = async_to_sync(scenario)()
    assert response.status_code == 200, response.content
    assert activity["type"] == "agent.activity"
    assert activity["data"]["agent"] == {"id": str(agent.pk), "key": "ava", "name": "Ava"}
    assert activity["data"]["kind"] == "status_changed"
    assert activity["data"]["payload"] == {"from": "active", "to": "paused"}
    assert status["type"] == "agent.status_changed"
    assert status["data"]["status"] == "paused" and status["data"]["previousStatus"] == "active"
    assert events.parse_id(activity["id"]) < events.parse_id(status["id"])
    assert other[0]["data"] == {"marker": "end"}  # tenant B saw nothing of A's change before its own event


def test_activity_written_under_a_bare_schema_context_still_finds_its_tenant(world):
    agent = make_agent(world.tenant_a, "Bo", status="active")

    def write():
        with schema_context(world.tenant_a.schema_name):
            AgentActivity.objects.create(agent_id=agent.pk, kind="message_sent", summary="Hello", tokens_out=12)

    async def scenario():
        socket, _ = await open_socket(ACTIVITY, world.token(world.user_a))
        await sync_to_async(write)()
        received = await receive_events(socket, 1)
        await close(socket)
        return received[0]

    event = async_to_sync(scenario)()
    assert event["type"] == "agent.activity"
    assert event["data"]["agent"] == {"id": str(agent.pk), "key": "bo", "name": "Bo"}
    assert event["data"]["tokensOut"] == 12 and event["data"]["summary"] == "Hello"


def test_nothing_is_published_for_a_change_that_rolls_back(world):
    class Abort(Exception):
        pass

    def suspend_then_fail():
        try:
            with transaction.atomic():
                tenant_services.suspend(world.tenant_b, reason="mistake")
                raise Abort
        except Abort:
            pass

    async def scenario():
        platform, _ = await open_socket(PLATFORM, world.token(world.platform_admin, mfa=True))
        await sync_to_async(suspend_then_fail)()
        await events.apublish(events.PLATFORM_STREAM, "test.event", {"marker": "end"})
        received = await receive_events(platform, 1)
        await close(platform)
        return received

    assert async_to_sync(scenario)()[0]["data"] == {"marker": "end"}


def test_suspension_closes_the_tenants_sockets_and_reaches_the_platform(world):
    async def scenario():
        platform, _ = await open_socket(PLATFORM, world.token(world.platform_admin, mfa=True))
        socket_a, _ = await open_socket(ACTIVITY, world.token(world.user_a))
        socket_b, _ = await open_socket(ACTIVITY, world.token(world.user_b))
        await sync_to_async(tenant_services.suspend)(world.tenant_a, reason="unpaid invoices")
        suspended_event = (await receive_events(socket_a, 1))[0]
        refusal = await expect_refusal(socket_a)
        on_platform = (await receive_events(platform, 1))[0]
        await socket_b.send_json_to({"type": "ping"})
        pong = (await receive_events(socket_b, 1))[0]
        await close(platform, socket_a, socket_b)
        return suspended_event, refusal, on_platform, pong

    suspended_event, (error, code), on_platform, pong = async_to_sync(scenario)()
    assert suspended_event["type"] == "tenant.suspended"
    assert suspended_event["data"]["status"] == "suspended"
    assert suspended_event["data"]["reason"] == "unpaid invoices"
    assert (code, error["code"]) == (4403, "TENANT_SUSPENDED")
    assert on_platform["type"] == "tenant.suspended"
    assert on_platform["data"]["tenantId"] == str(world.tenant_a.pk)
    assert on_platform["data"]["previousStatus"] == "active"
    assert pong == {"type": "pong"}  # tenant B's socket is untouched


def test_a_replayed_suspension_of_a_since_reactivated_tenant_closes_nothing(world):
    tenant_services.suspend(world.tenant_a, reason="paused for a day")
    tenant_services.reactivate(world.tenant_a)

    async def scenario():
        socket, _ = await open_socket(ACTIVITY, world.token(world.user_a), since="0")
        replayed = await receive_events(socket, 3)
        await socket.send_json_to({"type": "ping"})
        pong = (await receive_events(socket, 1))[0]
        await close(socket)
        return replayed, pong

    replayed, pong = async_to_sync(scenario)()
    assert [e["type"] for e in replayed] == ["tenant.provisioned", "tenant.suspended", "tenant.reactivated"]
    assert pong == {"type": "pong"}


def test_the_platform_stream_carries_alerts_and_runtime_health_changes(world):
    tenant = world.tenant_a

    def alert_lifecycle():
        alert = monitoring_services.raise_alert(kind="runtime.unhealthy", severity="critical", tenant=tenant,
                                                message="Gateway down", dedup_key=f"runtime.unhealthy:{tenant.pk}")
        # The same failing check again refreshes the open alert: not a new alert.
        monitoring_services.raise_alert(kind="runtime.unhealthy", severity="critical", tenant=tenant,
                                        message="Gateway still down", dedup_key=f"runtime.unhealthy:{tenant.pk}")
        monitoring_services.acknowledge_alert(alert=alert, actor=world.platform_admin)
        monitoring_services.resolve_alert(alert=alert, actor=world.platform_admin)
        with transaction.atomic():
            sample = ContainerHealth.objects.create(tenant=tenant, status="unhealthy", checked_at=datetime.now(UTC),
                                                    cpu_percent=3.5, memory_mb=512.0, uptime_seconds=60)
            events.publish_health_change(tenant, "healthy", "unhealthy", sample)
            events.publish_health_change(tenant, "unhealthy", "unhealthy", sample)  # unchanged: nothing
        return alert

    async def scenario():
        platform, _ = await open_socket(PLATFORM, world.token(world.platform_admin, mfa=True))
        socket_a, _ = await open_socket(ACTIVITY, world.token(world.user_a))
        alert = await sync_to_async(alert_lifecycle)()
        await events.apublish(events.PLATFORM_STREAM, "test.event", {"marker": "end"})
        on_platform = await receive_events(platform, 5)
        on_tenant = await receive_events(socket_a, 1)
        await close(platform, socket_a)
        return alert, on_platform, on_tenant

    alert, on_platform, on_tenant = async_to_sync(scenario)()
    assert [e["type"] for e in on_platform] == ["alert.created", "alert.acknowledged", "alert.resolved",
                                                "runtime.health_changed", "test.event"]
    created, acknowledged, resolved, health, _ = on_platform
    assert created["data"]["id"] == str(alert.pk) and created["data"]["tenantId"] == str(tenant.pk)
    assert created["data"]["message"] == "Gateway down"
    assert acknowledged["data"]["acknowledgedBy"] == str(world.platform_admin.pk)
    assert resolved["data"]["status"] == "resolved"
    assert health["data"]["status"] == "unhealthy" and health["data"]["previousStatus"] == "healthy"
    assert health["data"]["sample"]["memoryMb"] == 512.0
    assert on_tenant[0]["type"] == "runtime.health_changed"  # the tenant's own stream has it too
