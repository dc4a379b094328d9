"""ASGI entry point: HTTP through Django, WebSocket through Channels."""

import gc
import os

from django.core.asgi import get_asgi_application
from django.urls import get_resolver

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

# What the process loaded to start (Django, the apps, every view through the URLconf: some 140,000
# objects) lives as long as the process: out of the cyclic garbage collector's sight, so that its
# occasional full collections walk only what requests created. They took 80-110 ms each, a pause
# for whichever requests were in flight; 10-18 ms after this (docs/performance.md).
get_resolver().url_patterns  # noqa: B018 (imports the views now rather than in the first request)
gc.freeze()
