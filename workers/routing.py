from django.urls import path

from workers import twilio
from workers.media_stream import media_stream

websocket_urlpatterns = [
    # Channels' URLRouter routes to ASGI applications; Django's stubs only know views.
    path(twilio.MEDIA_PATH.lstrip("/"), media_stream, name="twilio-media"),  # type: ignore[arg-type]
]
