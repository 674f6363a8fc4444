"""Events Stripe sends us: verified, stored raw first (once per event id), then processed once
in a transaction. A duplicate delivery finds the event already processed; an older event
arriving after a newer one cannot undo it (invoice status changes compare Stripe's `created`)."""

import json
import logging
from typing import Any

import stripe
from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing import services
from billing.models import Invoice, StripeEvent, Subscription
from tenants.access import Actor
from tenants.models import Tenant
from tenants.rls import tenant_context
from tenants.services import audit_event_record

logger = logging.getLogger(__name__)


class Rejected(Exception):
    """The request is not a genuine, fresh Stripe event."""


def verify(payload: bytes, signature: str) -> stripe.Event:
    if not settings.STRIPE_WEBHOOK_SECRET:
        raise Rejected("STRIPE_WEBHOOK_SECRET is not set")
    secret, tolerance = settings.STRIPE_WEBHOOK_SECRET, settings.STRIPE_WEBHOOK_TOLERANCE_SECONDS
    try:
        stripe.WebhookSignature.verify_header(payload.decode(), signature, secret, tolerance)
        raw = json.loads(payload)
    except (ValueError, RecursionError, stripe.SignatureVerificationError) as exc:
        raise Rejected(str(exc)[:200]) from exc
    # Signed, but only an event of this shape can be stored and processed.
    data = raw.get("data") if isinstance(raw, dict) else None
    if not (
        isinstance(data, dict)
        and _name(raw.get("id"))
        and _name(raw.get("type"))
        and type(raw.get("created")) is int
        and -(2**63) <= raw["created"] < 2**63
        and isinstance(data.get("object"), dict)
    ):
        raise Rejected("not a Stripe event: id, type, created and data.object are required")
    return stripe.Webhook.construct_event(payload, signature, secret, tolerance=tolerance)


def _name(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 255 and "\x00" not in value


def _storable(value: Any) -> Any:
    """The payload as PostgreSQL's JSON can hold it: plain JSON (the SDK leaves objects inside
    nested lists as its own type) with NUL characters, which it refuses and which text Stripe's
    users typed may hold, as U+FFFD."""
    if isinstance(value, stripe.StripeObject):
        value = value.to_dict()
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [_storable(item) for item in value]
    if isinstance(value, dict):
        return {_storable(key): _storable(item) for key, item in value.items()}
    return value


def store(event: stripe.Event) -> StripeEvent:
    """Keep the raw event, once: a second delivery of the same id returns the first."""
    try:
        with transaction.atomic():
            return StripeEvent.objects.create(
                event_id=event.id,
                type=event.type,
                created=event.created,
                payload=_storable(event),
            )
    except IntegrityError:
        return StripeEvent.objects.get(event_id=event.id)


def process(stored: StripeEvent) -> str:
    """Apply the event once. Returns what was done (also kept on the stored event)."""
    with transaction.atomic():
        locked = StripeEvent.objects.select_for_update().get(pk=stored.pk)
        if locked.processed_at is not None:
            return locked.result
        handler = HANDLERS.get(locked.type)
        obj = locked.payload.get("data", {}).get("object", {})
        if handler is None:
            logger.info("Stripe event type not handled", extra={"event_type": locked.type})
            result = "ignored: type not handled"
        elif (tenant := _tenant(obj)) is None:
            result = "ignored: not one of our tenants"
        else:
            with tenant_context(tenant):  # the tenant named in the object's metadata
                result = handler(obj, locked.created)
        locked.processed_at, locked.result = timezone.now(), result[:255]
        locked.save(update_fields=["processed_at", "result"])
        return result


def _metadata(obj: dict[str, Any], key: str) -> str:
    """Our id that we put in the metadata of a Stripe object ("" when it is not there)."""
    metadata = obj.get("metadata")
    value = metadata.get(key) if isinstance(metadata, dict) else None
    return value if isinstance(value, str) else ""


def _tenant(obj: dict[str, Any]) -> Tenant | None:
    public_id = _metadata(obj, "tenant")
    return Tenant.objects.filter(public_id=public_id).first() if public_id else None


def _invoice(obj: dict[str, Any]) -> Invoice | None:
    tenant = _tenant(obj)
    public_id = _metadata(obj, "invoice")
    if tenant is None or not public_id:
        return None
    invoice = Invoice.objects.for_tenant(tenant).filter(public_id=public_id).first()
    if invoice is not None and invoice.stripe_invoice not in ("", obj.get("id")):
        return None  # metadata copied onto some other Stripe invoice: not ours to change
    return invoice


def _status(status: str) -> Any:
    def handle(obj: dict[str, Any], created: int) -> str:
        invoice = _invoice(obj)
        if invoice is None:
            return "ignored: not one of our invoices"
        changed = services.invoice_status_set(invoice, status, event_created=created)
        return f"invoice {invoice.public_id} {status}" if changed else "no change"

    return handle


def _payment_failed(obj: dict[str, Any], created: int) -> str:
    invoice = _invoice(obj)
    if invoice is None:
        return "ignored: not one of our invoices"
    if invoice.status != Invoice.Status.FINALIZED or invoice.status_event_created > created:
        return "no change"
    Invoice.objects.for_tenant(invoice.tenant).filter(pk=invoice.pk).update(
        payment_failed_at=timezone.now()
    )
    audit_event_record(
        actor=Actor.system("stripe"),
        action="invoice.payment_failed",
        target=invoice,
        changes={"payment_failed": [None, True]},
    )
    recipients = services.billing_recipients(services.subscription_for(invoice.tenant))
    if recipients:
        transaction.on_commit(
            lambda: send_mail(
                subject=f"Payment failed for invoice {invoice.number}",
                message=(
                    f"Stripe could not collect invoice {invoice.number} of "
                    f"{invoice.tenant.name}. Update the payment method in Stripe's invoice page."
                ),
                from_email=None,
                recipient_list=recipients,
            )
        )
    return f"invoice {invoice.public_id} payment failed"


def _customer_deleted(obj: dict[str, Any], created: int) -> str:
    tenant = _tenant(obj)
    if tenant is None:
        return "ignored: not one of our customers"
    updated = (
        Subscription.objects.for_tenant(tenant)
        .filter(stripe_customer=obj.get("id"))
        .update(stripe_customer="")
    )
    if not updated:
        return "no change"
    audit_event_record(
        actor=Actor.system("stripe"),
        action="billing.stripe_customer_deleted",
        target=tenant,
        changes={"stripe_customer": [obj.get("id"), None]},
    )
    logger.warning("Stripe customer deleted", extra={"tenant_id": tenant.public_id})
    return "customer unlinked: a new one is created at the next sync"


HANDLERS = {
    "invoice.paid": _status(Invoice.Status.PAID),
    "invoice.voided": _status(Invoice.Status.VOID),
    "invoice.marked_uncollectible": _status(Invoice.Status.UNCOLLECTIBLE),
    "invoice.payment_failed": _payment_failed,
    "customer.deleted": _customer_deleted,
}
