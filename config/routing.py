"""WebSocket routes and worker channels. The tenancy isolation tests enumerate the WebSocket
routes and fail for a route they do not cover."""

from django.urls import URLPattern, URLResolver

from workers.routing import websocket_urlpatterns as worker_websockets
from workers.sideband_consumer import SidebandConsumer

websocket_urlpatterns: list[URLPattern | URLResolver] = [*worker_websockets]

# Channels served by `manage.py runworker <name>` (compose.yaml and Kubernetes run them).
channel_consumers = {"call-sideband": SidebandConsumer.as_asgi()}
