"""Celery tasks of the call runtime: the console's test call, placed by the built-in simulated
caller (workers/caller.py) against this deployment's public URL, as `manage.py simulate_call`
does from a terminal."""

import asyncio
import logging
import secrets
import time

import httpx
from celery import Task, shared_task
from django.conf import settings
from websockets.exceptions import WebSocketException

from agents.models import CarrierAccount, PhoneNumber
from agents.selectors import version_for_call
from calls.models import Call
from tenants.models import Tenant
from tenants.rls import tenant_context
from workers.caller import Caller, Step
from workers.twilio import signing_token

# Twilio's magic test number: the caller's number on every test call.
CALLER_ID = "+15005550006"
# The caller speaks in real time, as a person on a phone would (tests play faster).
PACE = 1.0
# In-process (eager) runs keep the request waiting until the post-call pipeline has tagged the
# call, so the page it lands on shows the outcome.
OUTCOME_WAIT_SECONDS = 15.0

logger = logging.getLogger(__name__)


def new_call_sid() -> str:
    """A CallSid as Twilio writes them; the console picks it so it can find the call after."""
    return "CA" + secrets.token_hex(16)


def conversation(lines: list[str], *, greeted: bool = True) -> list[Step]:
    """Wait for the greeting (when the version has one: else the agent waits for the caller),
    say each line once the agent has finished, wait for its reply and goodbye."""
    return [
        *([Step("wait_for_agent")] if greeted else []),
        *(Step("say", line) for line in lines),
        Step("wait_for_agent"),
        Step("wait_for_hangup", seconds=3.0),
    ]


# Not acknowledged late: a test call delivered twice would ring the agent twice.
@shared_task(bind=True, acks_late=False, time_limit=300, soft_time_limit=270)
def place_test_call(
    self: Task, tenant_id: int, number_id: str, call_sid: str, lines: list[str]
) -> str:
    """Call the tenant's number `number_id` as Twilio would, saying `lines`; returns the call's
    public id, or "" when the call never reached the server."""
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None:
        return ""
    with tenant_context(tenant):
        number = (
            PhoneNumber.objects.for_tenant(tenant)
            .select_related("carrier_account", "agent")
            .filter(public_id=number_id, status=PhoneNumber.Status.ACTIVE)
            .exclude(carrier_account__kind=CarrierAccount.Kind.OPENAI_SIP)
            .first()
        )
        if number is None:
            return ""
        version = version_for_call(number, CALLER_ID)  # the one call_open will pick
    caller = Caller(
        base_url=settings.PUBLIC_BASE_URL,
        number=number.e164,
        signing_token=signing_token(number.carrier_account),
        caller_id=CALLER_ID,
        pace=PACE,
    )
    caller.report.call_sid = call_sid
    script = conversation(lines, greeted=bool(version and version.greeting))
    try:
        asyncio.run(caller.run(script))
    except (OSError, httpx.HTTPError, WebSocketException) as error:
        logger.warning(
            "the test call could not reach the server",
            extra={"url": settings.PUBLIC_BASE_URL, "error": str(error)},
        )
    with tenant_context(tenant):
        call = Call.objects.for_tenant(tenant).filter(carrier_call_id=call_sid).first()
    if call is None:
        return ""
    if self.request.is_eager:
        deadline = time.monotonic() + OUTCOME_WAIT_SECONDS
        while call.processed_at is None and time.monotonic() < deadline:
            time.sleep(0.2)
            with tenant_context(tenant):
                call.refresh_from_db()
    return call.public_id
