"""With Redis down or hanging, writes still succeed: live events are counted as lost, never raised."""

from __future__ import annotations

import socket

import pytest
from asgiref.sync import async_to_sync
from rest_framework.test import APIClient

from aegis import events
from aegis.api.authentication import issue_access_token
from apps.accounts.models import Role
from apps.accounts.services import add_member
from tests.api.agent_factories import make_agent


def _point_channel_layer_at(settings, url: str) -> None:
    layer = settings.CHANNEL_LAYERS["default"]
    settings.CHANNEL_LAYERS = {"default": {**layer, "CONFIG": {**layer["CONFIG"], "hosts": [url]}}}


@pytest.fixture
def silent_redis():
    """A port that completes the TCP handshake (the kernel's listen backlog) and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    yield f"redis://127.0.0.1:{server.getsockname()[1]}/0"
    server.close()


@pytest.mark.django_db
def test_pausing_an_agent_succeeds_with_redis_down_and_the_lost_events_are_counted(
        tenant_a, settings, django_capture_on_commit_callbacks):
    admin = add_member(tenant=tenant_a, email="admin@down.example", password="correct-horse-battery-staple",
                       role=Role.TENANT_ADMIN)
    agent = make_agent(tenant_a, "Ava", status="active")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_access_token(admin, mfa_verified=False)}")
    _point_channel_layer_at(settings, "redis://127.0.0.1:1/0")  # nothing listens on port 1
    failures, published = events.publish_failures, events.published

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(f"/api/v1/agents/{agent.pk}/pause")

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "paused"
    # agent.activity and agent.status_changed: the first fails on the refused connection, the
    # second is skipped by the back-off; both are counted.
    assert len(callbacks) >= 2
    assert events.publish_failures == failures + 2
    assert events.published == published
    assert events.stats()["publish_failures"] == events.publish_failures


@pytest.mark.django_db
def test_a_redis_that_never_answers_does_not_hang_the_publisher(settings, silent_redis):
    _point_channel_layer_at(settings, silent_redis)
    settings.EVENTS_PUBLISH_TIMEOUT = 0.2
    failures = events.publish_failures

    assert events.publish(events.PLATFORM_STREAM, "test.event", {"n": 1}) is None  # timed out
    assert events.publish(events.PLATFORM_STREAM, "test.event", {"n": 2}) is None  # backing off
    assert async_to_sync(events.apublish)(events.PLATFORM_STREAM, "test.event", {"n": 3}) is None
    assert events.publish_failures == failures + 3


def test_data_that_cannot_be_encoded_is_counted_without_backing_off():
    failures = events.publish_failures

    assert events.publish(events.PLATFORM_STREAM, "test.event", {"not json": object()}) is None

    assert events.publish_failures == failures + 1
    assert events._retry_at == 0.0  # a caller's bug is not an outage: later events still go out
