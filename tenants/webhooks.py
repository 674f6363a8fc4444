"""Webhooks to tenants: signed events, delivered in order per subject, retried for over a day.

Signing follows Standard Webhooks (the scheme OpenAI also uses): headers `webhook-id` (the
delivery's `msg_…` id, the same on every attempt), `webhook-timestamp` (unix seconds) and
`webhook-signature` (`v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, one per active secret,
space-separated, so a receiver keeps verifying while a secret rotates). Endpoints only reach
public addresses (tenants.ssrf). docs/webhooks.md is the receiver's guide.
"""

import base64
import hashlib
import hmac
import json
import logging
import random
import secrets
import time
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from tenants.access import Actor
from tenants.errors import Conflict, InvalidInput
from tenants.models import Membership, Tenant, WebhookDelivery, WebhookEndpoint
from tenants.roles import Role
from tenants.services import audit_event_record
from tenants.ssrf import BlockedDestination, check_url, pin

logger = logging.getLogger(__name__)

EVENT_TYPES = ("call.completed", "call.outcome_tagged", "call.outcome_changed")
# Seconds to wait after each failed attempt (then ±20 % jitter): 12 attempts over about 32 hours.
RETRY_DELAYS = (5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800, 28800, 28800)
TIMEOUT_SECONDS = 10.0
ROTATION_OVERLAP = timedelta(hours=24)
MAX_ENDPOINTS = 20


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    content = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()


def signing_secrets(endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    """The current secret, plus the previous one until its overlap ends."""
    found = [endpoint.secrets["current"]]
    previous, until = endpoint.secrets.get("previous"), endpoint.secrets.get("previous_until")
    if previous and until and datetime.fromisoformat(until) > now:
        found.append(previous)
    return found


# --- Endpoints --------------------------------------------------------------------------------


def _clean_url(url: str) -> str:
    url = (url or "").strip()
    if not url.startswith(("https://", "http://")):
        raise InvalidInput.field("url", "Give an http(s) URL.")
    internal = urlsplit(url).hostname in settings.TOOL_HTTP_ALLOWED_PRIVATE_HOSTS
    if url.startswith("http://") and not (settings.DEBUG or internal):
        raise InvalidInput.field("url", "Use https: events carry call data.")
    try:
        check_url(url)
    except BlockedDestination as exc:
        raise InvalidInput.field("url", f"This address cannot receive webhooks: {exc}") from exc
    return url


def _clean_event_types(event_types: Any) -> list[str]:
    if not isinstance(event_types, list) or not all(isinstance(e, str) for e in event_types):
        raise InvalidInput.field("event_types", "A list of event types.")
    unknown = sorted(set(event_types) - set(EVENT_TYPES))
    if unknown:
        known = ", ".join(EVENT_TYPES)
        raise InvalidInput.field("event_types", f"Unknown: {', '.join(unknown)}. Known: {known}.")
    return sorted(set(event_types))


def endpoint_create(
    *, tenant: Tenant, actor: Actor, url: str, description: str = "", event_types: Any = None
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its signing secret (shown once; rotate to get a new one)."""
    actor.require("webhooks:write")
    url = _clean_url(url)
    types = _clean_event_types(event_types or [])
    secret = new_secret()
    with transaction.atomic():
        locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
        if WebhookEndpoint.objects.for_tenant(locked).count() >= MAX_ENDPOINTS:
            raise Conflict(f"A tenant can have at most {MAX_ENDPOINTS} webhook endpoints.")
        endpoint = WebhookEndpoint.objects.create(
            tenant=tenant,
            url=url,
            description=description[:200],
            event_types=types,
            secrets={"current": secret},
        )
        audit_event_record(actor=actor, action="webhook_endpoint.created", target=endpoint)
    return endpoint, secret


def endpoint_update(*, endpoint: WebhookEndpoint, actor: Actor, **fields: Any) -> WebhookEndpoint:
    actor.require("webhooks:write")
    changes: dict[str, list[Any]] = {}
    if "url" in fields:
        url = _clean_url(fields["url"])
        changes["url"] = [endpoint.url, url]
        endpoint.url = url
    if "description" in fields:
        changes["description"] = [endpoint.description, fields["description"][:200]]
        endpoint.description = fields["description"][:200]
    if "event_types" in fields:
        types = _clean_event_types(fields["event_types"])
        changes["event_types"] = [endpoint.event_types, types]
        endpoint.event_types = types
    with transaction.atomic():
        endpoint.save()
        audit_event_record(
            actor=actor, action="webhook_endpoint.updated", target=endpoint, changes=changes
        )
    return endpoint


def endpoint_delete(*, endpoint: WebhookEndpoint, actor: Actor) -> None:
    actor.require("webhooks:write")
    with transaction.atomic():
        audit_event_record(actor=actor, action="webhook_endpoint.deleted", target=endpoint)
        endpoint.delete()


def endpoint_rotate_secret(*, endpoint: WebhookEndpoint, actor: Actor) -> str:
    """A new secret; the old one keeps signing alongside it for ROTATION_OVERLAP."""
    actor.require("webhooks:write")
    secret = new_secret()
    endpoint.secrets = {
        "current": secret,
        "previous": endpoint.secrets["current"],
        "previous_until": (timezone.now() + ROTATION_OVERLAP).isoformat(),
    }
    with transaction.atomic():
        endpoint.save(update_fields=["secrets"])
        audit_event_record(actor=actor, action="webhook_endpoint.secret_rotated", target=endpoint)
    return secret


def endpoint_enable(*, endpoint: WebhookEndpoint, actor: Actor) -> WebhookEndpoint:
    actor.require("webhooks:write")
    with transaction.atomic():
        endpoint.status = WebhookEndpoint.Status.ACTIVE
        endpoint.disabled_reason, endpoint.disabled_at = "", None
        endpoint.save(update_fields=["status", "disabled_reason", "disabled_at"])
        audit_event_record(actor=actor, action="webhook_endpoint.enabled", target=endpoint)
    return endpoint


def endpoint_disable(*, endpoint: WebhookEndpoint, actor: Actor) -> WebhookEndpoint:
    """Stop sending to an endpoint by hand; what is pending fails, and can be replayed once the
    endpoint is enabled again. Disabling a disabled endpoint changes nothing."""
    actor.require("webhooks:write")
    with transaction.atomic():
        _mark_disabled(endpoint, f"disabled by {actor.label}", actor)
    endpoint.refresh_from_db()
    return endpoint


# --- Events -----------------------------------------------------------------------------------


# (event type, subject, key, data): `key` names the event among its subject's events, so
# emitting the same one again queues nothing.
Event = tuple[str, str, str, dict[str, Any]]


def emit(tenant: Tenant, event_type: str, *, subject: str, key: str, data: dict[str, Any]) -> int:
    """Queue `event_type` about `subject` for every active endpoint that wants it. Returns how
    many deliveries were queued."""
    return emit_many(tenant, [(event_type, subject, key, data)])


def emit_many(tenant: Tenant, events: list[Event]) -> int:
    """Queue many events at once (in order per subject): a few queries whatever their number."""
    endpoints = [
        e
        for e in WebhookEndpoint.objects.for_tenant(tenant).filter(
            status=WebhookEndpoint.Status.ACTIVE
        )
        if any(e.wants(event[0]) for event in events)
    ]
    if not endpoints:
        return 0
    subjects = {subject for _, subject, _, _ in events}
    previous = WebhookDelivery.objects.for_tenant(tenant).filter(
        endpoint__in=endpoints, subject__in=subjects
    )
    last: dict[tuple[int, str], int] = {}
    seen: set[tuple[int, str]] = set()
    for endpoint_id, subject, sequence, event_key in previous.values_list(
        "endpoint_id", "subject", "sequence", "event_key"
    ):
        last[endpoint_id, subject] = max(last.get((endpoint_id, subject), 0), sequence)
        seen.add((endpoint_id, event_key))
    now = timezone.now()
    rows = []
    for endpoint in endpoints:
        for event_type, subject, key, data in events:
            event_key = f"{subject}:{event_type}:{key}"
            if not endpoint.wants(event_type) or (endpoint.pk, event_key) in seen:
                continue
            seen.add((endpoint.pk, event_key))
            last[endpoint.pk, subject] = last.get((endpoint.pk, subject), 0) + 1
            rows.append(
                WebhookDelivery(
                    tenant=tenant,
                    endpoint=endpoint,
                    event_type=event_type,
                    subject=subject,
                    sequence=last[endpoint.pk, subject],
                    event_key=event_key,
                    payload={"type": event_type, "timestamp": now.isoformat(), "data": data},
                    next_attempt_at=now,
                )
            )
    if not rows:
        return 0
    try:
        with transaction.atomic():
            created = WebhookDelivery.all_tenants.bulk_create(rows)
    except IntegrityError:
        # The same event emitted at the same moment elsewhere: keep whichever rows are new.
        created = []
        for row in rows:
            try:
                with transaction.atomic():
                    row.save(force_insert=True)
                created.append(row)
            except IntegrityError:
                continue
    for delivery in created:
        _send_soon(delivery)
    return len(created)


def _send_soon(delivery: WebhookDelivery) -> None:
    from tenants.tasks import deliver_webhook

    transaction.on_commit(
        lambda: deliver_webhook.delay(delivery.tenant_id, delivery.pk), robust=True
    )


def replay(*, delivery: WebhookDelivery, actor: Actor) -> WebhookDelivery:
    """Send a delivery's event again, as a new delivery (with its own webhook-id)."""
    actor.require("webhooks:write")
    endpoint = delivery.endpoint
    if endpoint.status != WebhookEndpoint.Status.ACTIVE:
        raise Conflict("The endpoint is disabled: enable it before replaying.")
    with transaction.atomic():
        last = (
            WebhookDelivery.objects.for_tenant(delivery.tenant)
            .filter(endpoint=endpoint, subject=delivery.subject)
            .aggregate(n=Max("sequence"))["n"]
        )
        copy = WebhookDelivery.objects.create(
            tenant=delivery.tenant,
            endpoint=endpoint,
            event_type=delivery.event_type,
            subject=delivery.subject,
            sequence=(last or 0) + 1,
            event_key=f"{delivery.event_key}:replay:{secrets.token_hex(6)}",
            payload=delivery.payload,
            next_attempt_at=timezone.now(),
            replay_of=delivery,
        )
        audit_event_record(actor=actor, action="webhook_delivery.replayed", target=copy)
        _send_soon(copy)
    return copy


# --- Delivery ---------------------------------------------------------------------------------


def _post(endpoint: WebhookEndpoint, delivery: WebhookDelivery) -> tuple[int | None, str]:
    """One attempt: (status code or None, error text)."""
    body = json.dumps(delivery.payload, separators=(",", ":")).encode()
    timestamp = int(time.time())
    signatures = " ".join(
        sign(secret, delivery.public_id, timestamp, body)
        for secret in signing_secrets(endpoint, timezone.now())
    )
    try:
        target, pin_headers, extensions = pin(endpoint.url)
        with httpx.Client(
            timeout=TIMEOUT_SECONDS, follow_redirects=False, trust_env=False
        ) as client:
            response = client.post(
                target,
                content=body,
                headers={
                    **pin_headers,
                    "content-type": "application/json",
                    "user-agent": "Switchboard-Webhooks/1",
                    "webhook-id": delivery.public_id,
                    "webhook-timestamp": str(timestamp),
                    "webhook-signature": signatures,
                },
                extensions=extensions,
            )
    except BlockedDestination as exc:
        return None, f"blocked: {exc}"
    except httpx.TimeoutException:
        return None, f"no answer within {TIMEOUT_SECONDS:g} s"
    except httpx.HTTPError as exc:
        return None, f"request failed: {exc}"[:500]
    if 200 <= response.status_code < 300:
        return response.status_code, ""
    return response.status_code, f"answered {response.status_code}"


def deliver(tenant: Tenant, delivery_id: int) -> str:
    """Attempt one due delivery. Returns what happened: delivered, retry, failed, waiting
    (an earlier event about the same subject is still pending), or skipped."""
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.for_tenant(tenant)
            .select_for_update(skip_locked=True)
            .select_related("endpoint")
            .filter(pk=delivery_id, status=WebhookDelivery.Status.PENDING)
            .first()
        )
        now = timezone.now()
        if delivery is None or (delivery.next_attempt_at and delivery.next_attempt_at > now):
            return "skipped"  # done, taken by another worker, or not due yet
        endpoint = delivery.endpoint
        if endpoint.status != WebhookEndpoint.Status.ACTIVE:
            delivery.status = WebhookDelivery.Status.FAILED
            delivery.last_error = "the endpoint is disabled"
            delivery.save(update_fields=["status", "last_error"])
            return "failed"
        earlier = (
            WebhookDelivery.objects.for_tenant(tenant)
            .filter(
                endpoint=endpoint,
                subject=delivery.subject,
                sequence__lt=delivery.sequence,
                status=WebhookDelivery.Status.PENDING,
            )
            .order_by("sequence")
            .first()
        )
        if earlier is not None:
            # Events about one subject arrive in order: wait for the earlier one.
            delivery.next_attempt_at = max(earlier.next_attempt_at or now, now) + timedelta(
                seconds=1
            )
            delivery.save(update_fields=["next_attempt_at"])
            return "waiting"
        status, error = _post(endpoint, delivery)
        delivery.attempts += 1
        delivery.last_attempt_at = timezone.now()
        delivery.last_status_code = status
        delivery.last_error = error
        if not error:
            delivery.status = WebhookDelivery.Status.DELIVERED
            delivery.delivered_at = delivery.last_attempt_at
            delivery.next_attempt_at = None
            outcome = "delivered"
        elif delivery.attempts > len(RETRY_DELAYS):
            delivery.status = WebhookDelivery.Status.FAILED
            delivery.next_attempt_at = None
            outcome = "failed"
        else:
            delay = RETRY_DELAYS[delivery.attempts - 1] * random.uniform(0.8, 1.2)  # noqa: S311
            delivery.next_attempt_at = delivery.last_attempt_at + timedelta(seconds=delay)
            outcome = "retry"
        delivery.save()
        if outcome == "failed":
            _disable(
                endpoint, f"{delivery.attempts} attempts to deliver {delivery.public_id} failed"
            )
        if outcome == "delivered":
            _wake_next(delivery)
    return outcome


def _wake_next(delivery: WebhookDelivery) -> None:
    """The next event about the same subject need not wait for the sweep."""
    following = (
        WebhookDelivery.objects.for_tenant(delivery.tenant)
        .filter(
            endpoint_id=delivery.endpoint_id,
            subject=delivery.subject,
            sequence__gt=delivery.sequence,
            status=WebhookDelivery.Status.PENDING,
        )
        .order_by("sequence")
        .first()
    )
    if following is not None:
        WebhookDelivery.objects.for_tenant(delivery.tenant).filter(pk=following.pk).update(
            next_attempt_at=timezone.now()
        )
        _send_soon(following)


def _mark_disabled(endpoint: WebhookEndpoint, reason: str, actor: Actor) -> bool:
    """Whether the endpoint was active and is now disabled, its pending deliveries failed."""
    updated = (
        WebhookEndpoint.objects.for_tenant(endpoint.tenant)
        .filter(pk=endpoint.pk, status=WebhookEndpoint.Status.ACTIVE)
        .update(
            status=WebhookEndpoint.Status.DISABLED,
            disabled_reason=reason[:255],
            disabled_at=timezone.now(),
        )
    )
    if not updated:
        return False
    audit_event_record(
        actor=actor,
        action="webhook_endpoint.disabled",
        target=endpoint,
        changes={"status": ["active", "disabled"], "reason": [None, reason]},
    )
    WebhookDelivery.objects.for_tenant(endpoint.tenant).filter(
        endpoint=endpoint, status=WebhookDelivery.Status.PENDING
    ).update(status=WebhookDelivery.Status.FAILED, last_error="the endpoint was disabled")
    return True


def _disable(endpoint: WebhookEndpoint, reason: str) -> None:
    """Stop sending to an endpoint that keeps failing, and tell the tenant's owners and admins."""
    if not _mark_disabled(endpoint, reason, Actor.system("webhook delivery")):
        return
    recipients = list(
        Membership.objects.for_tenant(endpoint.tenant)
        .filter(role__in=[Role.OWNER, Role.ADMIN])
        .values_list("user__email", flat=True)
    )
    if recipients:
        message = (
            f"Webhooks to {endpoint.url} ({endpoint.public_id}) are disabled: {reason}.\n\n"
            "Fix the receiver, then enable the endpoint again (POST "
            f"/v1/webhook-endpoints/{endpoint.public_id}/enable) and replay what it missed."
        )
        transaction.on_commit(
            lambda: send_mail(
                f"[{endpoint.tenant.name}] A webhook endpoint was disabled",
                message,
                None,
                recipients,
                fail_silently=True,
            )
        )


def due(tenant: Tenant, now: datetime, limit: int = 500) -> list[int]:
    return list(
        WebhookDelivery.objects.for_tenant(tenant)
        .filter(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
