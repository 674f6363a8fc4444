from django.urls import path

from agents.carriers import TWILIO_STATUS_PATH, TWILIO_VOICE_PATH
from workers import twilio, views

urlpatterns = [
    path(TWILIO_VOICE_PATH.lstrip("/"), views.twilio_voice, name="twilio-voice"),
    path(TWILIO_STATUS_PATH.lstrip("/"), views.twilio_status, name="twilio-status"),
    path(
        twilio.TRANSFER_STATUS_PATH.lstrip("/"),
        views.twilio_transfer_status,
        name="twilio-transfer-status",
    ),
    path(twilio.DIAL_DONE_PATH.lstrip("/"), views.twilio_dial_done, name="twilio-dial-done"),
    path("carriers/openai/webhook", views.openai_sip_webhook, name="openai-sip-webhook"),
]
