"""The Twilio side of a call: webhook signatures, the media-stream token, TwiML, call control.

Sandbox numbers behave like Twilio numbers whose "Twilio" is the call simulator
(`manage.py simulate_call`): the same webhook, signatures and Media Streams protocol, signed
with a key derived from SECRET_KEY instead of an Auth Token, and call control that stays inside
this deployment.
"""

import hashlib
import hmac
import logging
from dataclasses import dataclass
from typing import Any, Protocol
from xml.sax.saxutils import escape

from django.conf import settings
from django.core import signing
from twilio.base.exceptions import TwilioException
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Connect, Dial, VoiceResponse

from agents.carriers import twilio_client
from agents.models import CarrierAccount
from calls.models import Call

logger = logging.getLogger(__name__)

TOKEN_SALT = "switchboard.media-stream"  # noqa: S105 - a signing namespace, not a secret
TOKEN_MAX_AGE = 120  # seconds between answering the webhook and Twilio opening the stream

MEDIA_PATH = "/carriers/twilio/media"
TRANSFER_STATUS_PATH = "/carriers/twilio/transfer-status"
DIAL_DONE_PATH = "/carriers/twilio/dial-done"


def signing_token(account: CarrierAccount) -> str:
    """The secret Twilio signs this account's webhooks with: its Auth Token, or for the sandbox
    a key derived from SECRET_KEY (the call simulator signs with the same)."""
    if account.kind == CarrierAccount.Kind.TWILIO:
        return str(account.secrets["auth_token"])
    return hmac.new(
        settings.SECRET_KEY.encode(), f"sandbox:{account.public_id}".encode(), hashlib.sha256
    ).hexdigest()


def public_url(path: str, *, websocket: bool = False) -> str:
    base = settings.PUBLIC_BASE_URL
    if websocket:
        base = (
            "wss://" + base.split("://", 1)[1]
            if base.startswith("https")
            else "ws://" + base.split("://", 1)[1]
        )
    return base + path


def signature_valid(account: CarrierAccount, url: str, params: Any, signature: str) -> bool:
    return bool(signature) and RequestValidator(signing_token(account)).validate(
        url, params, signature
    )


def stream_token(call: Call) -> str:
    return signing.dumps(
        {"call": call.public_id, "tenant": call.tenant.public_id}, salt=TOKEN_SALT, compress=False
    )


def read_stream_token(token: str) -> dict[str, str] | None:
    try:
        value = signing.loads(token, salt=TOKEN_SALT, max_age=TOKEN_MAX_AGE)
    except signing.BadSignature:
        return None
    return value if isinstance(value, dict) else None


# --- TwiML ------------------------------------------------------------------------------------


def connect_stream(call: Call) -> str:
    response = VoiceResponse()
    connect = Connect()
    stream = connect.stream(url=public_url(MEDIA_PATH, websocket=True))
    stream.parameter(name="token", value=stream_token(call))
    response.append(connect)
    return str(response)


def apologise(message: str, fallback_number: str = "") -> str:
    """Say `message`, then dial the fallback number if there is one, else hang up."""
    response = VoiceResponse()
    response.say(message)
    if fallback_number:
        response.dial(fallback_number)
    else:
        response.hangup()
    return str(response)


def transfer_twiml(call: Call, destination: str) -> str:
    """A cold transfer: dial the destination; Twilio reports its progress to us."""
    query = f"?call={call.public_id}"
    response = VoiceResponse()
    dial = Dial(action=public_url(DIAL_DONE_PATH + query), method="POST")
    callback = {
        "status_callback": public_url(TRANSFER_STATUS_PATH + query),
        "status_callback_method": "POST",
        "status_callback_event": "initiated ringing answered completed",
    }
    if destination.startswith(("sip:", "sips:")):
        dial.sip(destination, **callback)
    else:
        dial.number(destination, **callback)
    response.append(dial)
    return str(response)


def say_twiml(message: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Response><Say>{escape(message)}</Say><Hangup/></Response>"
    )


# --- Call control -----------------------------------------------------------------------------


class CarrierError(Exception):
    pass


class CallControl(Protocol):
    """What the call runtime asks of the carrier for a live call."""

    sandbox: bool

    def redirect(self, twiml: str) -> None:
        """Replace what the call is doing (its media stream ends) with `twiml`."""


@dataclass
class TwilioControl:
    account: CarrierAccount
    call_sid: str
    sandbox: bool = False

    def redirect(self, twiml: str) -> None:
        try:
            twilio_client(self.account).calls(self.call_sid).update(twiml=twiml)
        except TwilioException as exc:
            raise CarrierError(str(exc)) from None


@dataclass
class SandboxControl:
    """Sandbox calls have no carrier to redirect; the runtime records what Twilio would do."""

    sandbox: bool = True

    def redirect(self, twiml: str) -> None:
        logger.info("sandbox call redirected", extra={"twiml": twiml})


def control_for(call: Call, account: CarrierAccount) -> CallControl:
    if account.kind == CarrierAccount.Kind.TWILIO:
        return TwilioControl(account, call.carrier_call_id)
    return SandboxControl()
