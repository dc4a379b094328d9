"""Who may open which stream, how the token is presented, and the close codes of refusals."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from rest_framework_simplejwt.tokens import AccessToken

from aegis.api.authentication import issue_access_token
from aegis.asgi import application
from apps.accounts.models import TeamMember
from apps.tenants import services as tenant_services
from tests.realtime.conftest import TRANSACTIONAL
from tests.realtime.helpers import (
    ACTIVITY,
    PLATFORM,
    WAIT,
    WebsocketCommunicator,
    close,
    expect_refusal,
    next_frame,
    open_socket,
)

pytestmark = TRANSACTIONAL


@pytest.mark.parametrize("header", [True, False], ids=["subprotocol-header", "first-message"])
def test_a_tenant_user_opens_the_activity_stream_of_their_tenant(world, header):
    async def scenario():
        communicator, ready = await open_socket(ACTIVITY, world.token(world.user_a), header=header)
        await close(communicator)
        return ready

    ready = async_to_sync(scenario)()
    assert ready["type"] == "ready"
    assert ready["stream"] == f"tenant:{world.tenant_a.pk}"
    assert ready["protocol"] == "aegis.v1"
    assert re.fullmatch(r"\d+-\d+", ready["lastEventId"])  # tenant.provisioned, published by the fixture
    assert ready["expiresAt"].endswith("Z")


def test_the_token_is_not_echoed_back_in_the_accepted_subprotocol(world):
    async def scenario():
        communicator = WebsocketCommunicator(application, ACTIVITY,
                                             subprotocols=["aegis.v1", f"bearer.{world.token(world.user_a)}"])
        accepted = await communicator.connect(timeout=WAIT)
        ready = await communicator.receive_json_from(timeout=WAIT)
        await close(communicator)
        return accepted, ready

    (connected, subprotocol), ready = async_to_sync(scenario)()
    assert connected and subprotocol == "aegis.v1"
    assert ready["type"] == "ready"


def test_a_platform_admin_with_mfa_opens_the_platform_stream(world):
    async def scenario():
        communicator, ready = await open_socket(PLATFORM, world.token(world.platform_admin, mfa=True))
        await close(communicator)
        return ready

    assert async_to_sync(scenario)()["stream"] == "platform"


def _expired(user) -> str:
    token = issue_access_token(user, mfa_verified=False)
    token.set_exp(lifetime=-timedelta(seconds=1))
    return str(token)


def _forged_tenant(world) -> str:
    # Validly signed, but its tenant is not the user's (as after a move to another tenant).
    token = issue_access_token(world.user_a, mfa_verified=False)
    token["tid"] = str(world.tenant_b.pk)
    return str(token)


@pytest.mark.parametrize(("path", "make_token", "close_code", "error_code"), [
    (ACTIVITY, lambda w: "not-a-jwt", 4401, "TOKEN_INVALID"),
    (ACTIVITY, lambda w: _expired(w.user_a), 4401, "TOKEN_INVALID"),
    (ACTIVITY, _forged_tenant, 4401, "TOKEN_INVALID"),
    (ACTIVITY, lambda w: w.token(w.platform_admin, mfa=True), 4403, "PERMISSION_DENIED"),
    (PLATFORM, lambda w: w.token(w.user_a), 4403, "PERMISSION_DENIED"),
    (PLATFORM, lambda w: w.token(w.platform_admin, mfa=False), 4403, "MFA_REQUIRED"),
], ids=["garbage", "expired", "other-tenant", "platform-admin-on-activity", "tenant-user-on-platform",
        "platform-admin-without-mfa"])
@pytest.mark.parametrize("header", [True, False], ids=["subprotocol-header", "first-message"])
def test_bad_tokens_are_refused_with_a_reason_and_a_close_code(world, path, make_token, close_code, error_code,
                                                               header):
    token = make_token(world)

    async def scenario():
        if header:
            communicator = WebsocketCommunicator(application, path, subprotocols=["aegis.v1", f"bearer.{token}"])
            assert (await communicator.connect(timeout=WAIT))[0]  # accepted, so the client can read why
        else:
            communicator, _ = await open_socket(path, None, header=False)
            await communicator.send_json_to({"type": "auth", "token": token})
        refusal = await expect_refusal(communicator)
        await close(communicator)
        return refusal

    error, code = async_to_sync(scenario)()
    assert (code, error["code"]) == (close_code, error_code)
    assert error["message"]


def test_a_suspended_tenant_or_membership_cannot_connect(world):
    tenant_services.suspend(world.tenant_b, reason="unpaid")
    TeamMember.objects.filter(user=world.user_a).update(status=TeamMember.Status.SUSPENDED)

    async def scenario():
        outcomes = []
        for user in (world.user_b, world.user_a):
            communicator = WebsocketCommunicator(application, ACTIVITY,
                                                 subprotocols=["aegis.v1", f"bearer.{world.token(user)}"])
            await communicator.connect(timeout=WAIT)
            outcomes.append(await expect_refusal(communicator))
            await close(communicator)
        return outcomes

    (suspended_tenant, tenant_code), (suspended_member, member_code) = async_to_sync(scenario)()
    assert (tenant_code, suspended_tenant["code"]) == (4403, "TENANT_SUSPENDED")
    assert suspended_tenant["details"] == {"reason": "unpaid"}
    assert (member_code, suspended_member["code"]) == (4403, "PERMISSION_DENIED")


def test_a_deactivated_account_cannot_use_its_still_valid_token(world):
    token = world.token(world.user_a)
    world.user_a.is_active = False
    world.user_a.save(update_fields=["is_active"])

    async def scenario():
        communicator = WebsocketCommunicator(application, ACTIVITY, subprotocols=["aegis.v1", f"bearer.{token}"])
        await communicator.connect(timeout=WAIT)
        refusal = await expect_refusal(communicator)
        await close(communicator)
        return refusal

    error, code = async_to_sync(scenario)()
    assert (code, error["code"]) == (4401, "TOKEN_INVALID")


def test_no_auth_message_in_time_closes_with_4408(world, settings):
    settings.WEBSOCKET_AUTH_TIMEOUT = 0.2

    async def scenario():
        communicator, _ = await open_socket(ACTIVITY, None, header=False)
        refusal = await expect_refusal(communicator)
        await close(communicator)
        return refusal

    error, code = async_to_sync(scenario)()
    assert (code, error["code"]) == (4408, "NOT_AUTHENTICATED")


@pytest.mark.parametrize(("message", "close_code", "error_code"), [
    ("not json", 4400, "MALFORMED_REQUEST"),
    ('["a list"]', 4400, "MALFORMED_REQUEST"),
    ('{"type": "resume", "since": "0-0"}', 4401, "NOT_AUTHENTICATED"),  # before auth
    ('{"type": "auth"}', 4401, "NOT_AUTHENTICATED"),
    ('{"type": "auth", "token": "x", "since": "yesterday"}', 4400, "VALIDATION_ERROR"),
])
def test_malformed_or_out_of_order_messages_close_the_socket(world, message, close_code, error_code):
    async def scenario():
        communicator, _ = await open_socket(ACTIVITY, None, header=False)
        await communicator.send_to(text_data=message)
        refusal = await expect_refusal(communicator)
        await close(communicator)
        return refusal

    error, code = async_to_sync(scenario)()
    assert (code, error["code"]) == (close_code, error_code)


def test_the_bearer_subprotocol_needs_the_protocol_version_alongside(world):
    async def scenario():
        communicator = WebsocketCommunicator(application, ACTIVITY,
                                             subprotocols=[f"bearer.{world.token(world.user_a)}"])
        _, subprotocol = await communicator.connect(timeout=WAIT)
        refusal = await expect_refusal(communicator)
        await close(communicator)
        return subprotocol, refusal

    subprotocol, (error, code) = async_to_sync(scenario)()
    assert subprotocol is None  # the token is never selected as the protocol
    assert (code, error["code"]) == (4400, "MALFORMED_REQUEST")


def test_the_socket_closes_when_the_token_expires_unless_a_fresh_one_is_sent(world):
    def short_lived(seconds: float) -> AccessToken:
        token = issue_access_token(world.user_a, mfa_verified=False)
        token.set_exp(lifetime=timedelta(seconds=seconds))
        return token

    renewed_token, lapsed_token = short_lived(3), short_lived(1)

    async def scenario():
        renewed, _ = await open_socket(ACTIVITY, str(renewed_token))
        lapsed, _ = await open_socket(ACTIVITY, str(lapsed_token))
        await renewed.send_json_to({"type": "auth", "token": world.token(world.user_a)})  # 10 minutes
        reauthenticated = await renewed.receive_json_from(timeout=WAIT)
        refusal = await expect_refusal(lapsed)
        # Past the renewed socket's first token: it must still be open.
        await asyncio.sleep(max(0.0, renewed_token["exp"] - time.time()) + 0.5)
        await renewed.send_json_to({"type": "ping"})
        pong = await renewed.receive_json_from(timeout=WAIT)
        await close(renewed, lapsed)
        return reauthenticated, refusal, pong

    reauthenticated, (error, code), pong = async_to_sync(scenario)()
    assert reauthenticated["type"] == "reauthenticated"
    assert (code, error["code"], error["details"]) == (4401, "TOKEN_INVALID", {"reason": "expired"})
    assert pong == {"type": "pong"}


def test_a_token_of_another_account_cannot_take_over_an_open_socket(world):
    async def scenario():
        communicator, _ = await open_socket(ACTIVITY, world.token(world.user_a))
        await communicator.send_json_to({"type": "auth", "token": world.token(world.user_b)})
        refusal = await expect_refusal(communicator)
        await close(communicator)
        return refusal

    error, code = async_to_sync(scenario)()
    assert (code, error["code"]) == (4403, "PERMISSION_DENIED")


def test_unknown_message_types_get_an_error_but_keep_the_socket(world):
    async def scenario():
        communicator, _ = await open_socket(ACTIVITY, world.token(world.user_a))
        await communicator.send_json_to({"type": "subscribe", "stream": f"tenant:{world.tenant_b.pk}"})
        error = await communicator.receive_json_from(timeout=WAIT)
        await communicator.send_json_to({"type": "ping"})
        pong = await next_frame(communicator)
        await close(communicator)
        return error, pong

    error, pong = async_to_sync(scenario)()
    assert error["type"] == "error" and error["error"]["code"] == "VALIDATION_ERROR"
    assert pong["type"] == "websocket.send"
