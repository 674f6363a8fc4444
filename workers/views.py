"""Carrier webhooks: Twilio's voice, status and transfer callbacks, and OpenAI's SIP webhook.
Each checks the carrier's signature with the tenant's credentials before anything else."""

import json
import logging
import re
from functools import partial
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from openai import InvalidWebhookSignatureError, NotFoundError, OpenAIError

from agents.carriers import openai_sip_client
from agents.models import CarrierAccount, PhoneNumber
from agents.selectors import active_number, tools_for_version
from calls.models import Call, CallEvent
from calls.selectors import call_by_carrier_id
from calls.services import (
    call_event_add,
    call_finalize,
    call_open,
    call_status_from_carrier,
    call_transfer_update,
)
from tenants.access import Actor
from tenants.rls import tenant_context, tenant_lookup
from tenants.services import audit_event_record
from workers import twilio
from workers.realtime import session_config

logger = logging.getLogger(__name__)

SIDEBAND_CHANNEL = "call-sideband"
BUSY = "We're sorry, all our lines are busy right now. Please call again later."
NOT_IN_SERVICE = "We're sorry, this number is not taking calls right now."


def _twiml(body: str) -> HttpResponse:
    return HttpResponse(body, content_type="text/xml")


def _storable(value: str) -> bool:
    """PostgreSQL text cannot hold a NUL character, so no number or call id we keep has one:
    a value with one names nothing (and would fail the query)."""
    return "\x00" not in value


def _caller_text(value: str) -> str:
    """What a caller's phone or SIP trunk sent as its identity, as we can keep it."""
    return value.replace("\x00", "")[:255]


def _not_in_service(request: HttpRequest) -> HttpResponse:
    logger.warning("refused a webhook for a number not in service", extra={"path": request.path})
    return HttpResponse("Unknown number", status=404, content_type="text/plain")


def _reject(number: PhoneNumber, source: str, request: HttpRequest) -> HttpResponse:
    audit_event_record(
        actor=Actor(
            kind="system",
            public_id="",
            label=source,
            ip_address=request.META.get("REMOTE_ADDR"),
            request_id=getattr(request, "request_id", ""),
        ),
        action="carrier.signature_rejected",
        target=number,
        changes={"path": [None, request.path]},
    )
    logger.warning("rejected a webhook with a bad signature", extra={"path": request.path})
    return HttpResponse("Invalid signature", status=403, content_type="text/plain")


def _signed(request: HttpRequest, account: CarrierAccount) -> bool:
    return twilio.signature_valid(
        account,
        twilio.public_url(request.get_full_path()),
        request.POST,
        request.headers.get("X-Twilio-Signature", ""),
    )


@csrf_exempt
@require_POST
def twilio_voice(request: HttpRequest) -> HttpResponse:
    """A call to one of our numbers: route it, admit it, and connect its audio to us."""
    to = request.POST.get("To", "")
    number = active_number(to) if _storable(to) else None
    if number is None or number.carrier_account.kind == CarrierAccount.Kind.OPENAI_SIP:
        return _not_in_service(request)
    with tenant_context(number.tenant_id):
        return _twilio_voice(request, number)


def _twilio_voice(request: HttpRequest, number: PhoneNumber) -> HttpResponse:
    account = number.carrier_account
    if not _signed(request, account):
        return _reject(number, "twilio voice webhook", request)
    admission = call_open(
        number=number,
        carrier=Call.Carrier.TWILIO
        if account.kind == CarrierAccount.Kind.TWILIO
        else Call.Carrier.SANDBOX,
        carrier_call_id=request.POST.get("CallSid", ""),
        caller=_caller_text(request.POST.get("From", "")),
        callee=request.POST.get("To", ""),
    )
    call = admission.call
    if admission.version is None:
        busy = call.end_reason == Call.EndReason.OVER_CAPACITY
        fallback = number.agent.fallback_number if number.agent else ""
        return _twiml(twilio.apologise(BUSY if busy else NOT_IN_SERVICE, fallback))
    return _twiml(twilio.connect_stream(call))


def _twilio_call(request: HttpRequest, call: Call | None) -> Call | HttpResponse:
    """The signed callback's call; the caller then works in the call's tenant."""
    if call is None or call.phone_number is None:
        logger.warning("refused a callback for a call we do not know", extra={"path": request.path})
        return HttpResponse(status=404)
    if not _signed(request, call.phone_number.carrier_account):
        with tenant_context(call.tenant_id):
            return _reject(call.phone_number, "twilio callback", request)
    return call


@csrf_exempt
@require_POST
def twilio_status(request: HttpRequest) -> HttpResponse:
    sid = request.POST.get("CallSid", "")
    found = (
        call_by_carrier_id(Call.Carrier.TWILIO, sid)
        or call_by_carrier_id(Call.Carrier.SANDBOX, sid)
        if _storable(sid)
        else None
    )
    call = _twilio_call(request, found)
    if isinstance(call, HttpResponse):
        return call
    duration = request.POST.get("CallDuration")
    with tenant_context(call.tenant_id):
        call_status_from_carrier(
            call,
            request.POST.get("CallStatus", ""),
            int(duration) if duration and duration.isascii() and duration.isdigit() else None,
        )
    return HttpResponse(status=204)


TRANSFER_STATES = {
    "ringing": Call.TransferStatus.RINGING,
    "in-progress": Call.TransferStatus.BRIDGED,
    "answered": Call.TransferStatus.BRIDGED,
    "busy": Call.TransferStatus.FAILED,
    "failed": Call.TransferStatus.FAILED,
    "no-answer": Call.TransferStatus.FAILED,
    "canceled": Call.TransferStatus.FAILED,
}


def _call_from_query(request: HttpRequest) -> Call | None:
    if not _storable(request.GET.get("call", "")):
        return None
    with tenant_lookup("the call a transfer callback names"):
        return (
            Call.all_tenants.select_related("tenant", "phone_number__carrier_account")
            .filter(public_id=request.GET.get("call", ""))
            .first()
        )


def _transfer_progress(call: Call, status: str) -> None:
    state = TRANSFER_STATES.get(status)
    if state is None or call.transfer_status == state:
        return
    if call.transfer_status == Call.TransferStatus.BRIDGED and state == Call.TransferStatus.FAILED:
        return  # a bridged transfer that later hangs up is still a transfer that worked
    call_transfer_update(call, status=state)
    call_event_add(
        call, CallEvent.Kind.TRANSFER, {"state": state, "destination": call.transfer_target}
    )


@csrf_exempt
@require_POST
def twilio_transfer_status(request: HttpRequest) -> HttpResponse:
    """Progress of the leg a transfer dialled (ringing, answered, …)."""
    call = _twilio_call(request, _call_from_query(request))
    if isinstance(call, HttpResponse):
        return call
    with tenant_context(call.tenant_id):
        _transfer_progress(call, request.POST.get("CallStatus", ""))
    return HttpResponse(status=204)


@csrf_exempt
@require_POST
def twilio_dial_done(request: HttpRequest) -> HttpResponse:
    """The transfer's dialled leg ended; the caller's leg ends too."""
    call = _twilio_call(request, _call_from_query(request))
    if isinstance(call, HttpResponse):
        return call
    status = request.POST.get("DialCallStatus", "")
    with tenant_context(call.tenant_id):
        _transfer_progress(call, "answered" if status == "completed" else status)
    return _twiml('<?xml version="1.0" encoding="UTF-8"?><Response><Hangup/></Response>')


# --- OpenAI SIP ---------------------------------------------------------------------------------

SIP_NUMBER = re.compile(r"sips?:(\+?\d{6,15})@")


def sip_number(headers: list[dict[str, Any]]) -> str:
    """The E.164 number a SIP INVITE was for, from the routing header (To by default)."""
    wanted = settings.SIP_ROUTING_HEADER.lower()
    for header in headers:
        if isinstance(header, dict) and str(header.get("name", "")).lower() == wanted:
            value = str(header.get("value", ""))
            match = SIP_NUMBER.search(value)
            digits = match.group(1) if match else value.strip()
            return digits if digits.startswith("+") else f"+{digits}"
    return ""


def sip_caller(headers: list[dict[str, Any]]) -> str:
    for header in headers:
        if isinstance(header, dict) and str(header.get("name", "")).lower() == "from":
            match = SIP_NUMBER.search(str(header.get("value", "")))
            return match.group(1) if match else _caller_text(str(header.get("value", "")))
    return ""


@csrf_exempt
@require_POST
def openai_sip_webhook(request: HttpRequest) -> HttpResponse:
    """OpenAI received a SIP call for one of our numbers: admit it and accept it with the
    version's session, or reject it; a worker then attaches to the call's sideband."""
    try:
        payload = json.loads(request.body)
    except (ValueError, RecursionError):  # (nested too deep to read)
        payload = None
    data = payload.get("data") if isinstance(payload, dict) else None
    headers = (data.get("sip_headers") or []) if isinstance(data, dict) else None
    if not isinstance(headers, list):
        logger.warning("refused a malformed OpenAI webhook", extra={"path": request.path})
        return HttpResponse("Malformed webhook", status=400, content_type="text/plain")
    to = sip_number(headers)
    number = active_number(to) if _storable(to) else None
    if number is None or number.carrier_account.kind != CarrierAccount.Kind.OPENAI_SIP:
        return _not_in_service(request)
    with tenant_context(number.tenant_id):
        return _openai_sip_call(request, payload, number)


def _openai_sip_call(
    request: HttpRequest, payload: dict[str, Any], number: PhoneNumber
) -> HttpResponse:
    data, headers = payload["data"], payload["data"].get("sip_headers") or []
    account = number.carrier_account
    client = openai_sip_client(account)
    try:
        client.webhooks.verify_signature(request.body, request.headers, tolerance=300)
    except (InvalidWebhookSignatureError, ValueError):
        return _reject(number, "openai sip webhook", request)
    if payload.get("type") != "realtime.call.incoming":
        logger.info(
            "ignored an OpenAI webhook", extra={"webhook_type": str(payload.get("type"))[:64]}
        )
        return HttpResponse(status=200)
    call_id = str(data.get("call_id", ""))
    admission = call_open(
        number=number,
        carrier=Call.Carrier.OPENAI_SIP,
        carrier_call_id=call_id,
        caller=sip_caller(headers),
        callee=number.e164,
    )
    if not admission.created:
        return HttpResponse(status=200)  # a repeated webhook for a call already handled
    call = admission.call
    try:
        if admission.version is None:
            client.realtime.calls.reject(call_id, status_code=486)
            return HttpResponse(status=200)
        session = session_config(
            admission.version, tools_for_version(admission.version), phone_audio=False
        )
        client.realtime.calls.accept(call_id, **session)
    except NotFoundError:  # the caller hung up before we answered
        call_finalize(call, status=Call.Status.FAILED, end_reason=Call.EndReason.CALLER_HANGUP)
        return HttpResponse(status=200)
    except OpenAIError as error:
        logger.error(
            "OpenAI refused call control", extra={"call_id": call.public_id, "error": str(error)}
        )
        call_finalize(call, status=Call.Status.FAILED, end_reason=Call.EndReason.CARRIER_ERROR)
        return HttpResponse(status=502)
    # A sideband worker loads the call, so it hears of it once the call is committed.
    transaction.on_commit(
        partial(
            async_to_sync(get_channel_layer().send),
            SIDEBAND_CHANNEL,
            {"type": "sideband.attach", "call": call.public_id},
        )
    )
    return HttpResponse(status=200)
