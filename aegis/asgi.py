"""ASGI entry point: HTTP through Django, WebSocket through Channels."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aegis.settings.dev")
# The web server borrows database connections from a pool (DATABASE_POOL_OPTIONS in
# aegis/settings/base.py); DATABASE_POOL=false turns it off. Set here, before the settings load,
# so that only ASGI servers pool: Celery and management commands never import this module.
os.environ.setdefault("DATABASE_POOL", "true")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402  (needs Django set up)

from aegis.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter(websocket_urlpatterns),
    }
)
