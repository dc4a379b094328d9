"""WebSocket routes (the live activity streams arrive with the runtime work)."""

websocket_urlpatterns: list = []
