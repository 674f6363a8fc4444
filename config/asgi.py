"""ASGI entry point: HTTP (Django), WebSocket routes, and worker channels, served by uvicorn
(and `manage.py runworker` for the channels, unless the channel layer is in-memory: see
config/lifespan.py)."""

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ChannelNameRouter, ProtocolTypeRouter, URLRouter  # noqa: E402

from config.lifespan import Lifespan  # noqa: E402
from config.routing import channel_consumers, websocket_urlpatterns  # noqa: E402

# Carriers open media streams from their own hosts (no browser Origin), and every stream is
# authenticated by its signed token and signature, so no origin check applies here.
application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter(websocket_urlpatterns),
        "channel": ChannelNameRouter(channel_consumers),
        "lifespan": Lifespan(channel_consumers),
    }
)

# Everything loaded so far lives as long as the process: keep the collector from walking it on
# every full collection, which would otherwise pause every live call's audio for milliseconds.
gc.freeze()
