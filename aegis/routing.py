"""WebSocket routes: the live event streams (protocol in aegis.realtime)."""

from django.urls import path

from apps.agents.consumers import ActivityConsumer
from apps.monitoring.consumers import PlatformConsumer

websocket_urlpatterns = [
    path("ws/v1/activity/", ActivityConsumer.as_asgi()),
    path("ws/v1/platform/", PlatformConsumer.as_asgi()),
]
