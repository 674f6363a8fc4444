from smtplib import SMTPException

from celery import shared_task
from django.utils import timezone

from tenants import idempotency, webhooks
from tenants.models import Invitation, Tenant
from tenants.rls import rls_bypass, tenant_context, tenant_lookup
from tenants.services import invitation_email_send


@shared_task(
    acks_late=True, autoretry_for=(SMTPException, OSError), retry_backoff=True, max_retries=6
)
def send_invitation_email(invitation_id: int, token: str) -> None:
    with tenant_lookup("invitation to email"):
        invitation = (
            Invitation.all_tenants.select_related("tenant", "invited_by")
            .filter(pk=invitation_id)
            .first()
        )
    if invitation is None:  # revoked or accepted before the email went out
        return
    with tenant_context(invitation.tenant):
        invitation_email_send(invitation=invitation, token=token)


@shared_task
def purge_expired_idempotency_keys() -> int:
    with rls_bypass("expired idempotency keys of every tenant"):
        return idempotency.idempotency_purge_expired()


@shared_task(acks_late=True, reject_on_worker_lost=True, time_limit=60, soft_time_limit=45)
def deliver_webhook(tenant_id: int, delivery_id: int) -> str:
    """One attempt at one delivery; a failure is retried by the schedule, not by Celery."""
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None:
        return "skipped"
    with tenant_context(tenant):
        return webhooks.deliver(tenant, delivery_id)


@shared_task(acks_late=True, time_limit=60, soft_time_limit=50)
def deliver_due_webhooks() -> int:
    """Queue every delivery whose next attempt is due (retries, and first attempts whose task
    was lost)."""
    now = timezone.now()
    queued = 0
    for tenant in Tenant.objects.all():
        with tenant_context(tenant):
            due = webhooks.due(tenant, now)
        for delivery_id in due:
            deliver_webhook.delay(tenant.pk, delivery_id)
            queued += 1
    return queued
