from smtplib import SMTPException

from celery import shared_task

from tenants import idempotency
from tenants.models import Invitation
from tenants.services import invitation_email_send


@shared_task(
    acks_late=True, autoretry_for=(SMTPException, OSError), retry_backoff=True, max_retries=6
)
def send_invitation_email(invitation_id: int, token: str) -> None:
    invitation = (
        Invitation.all_tenants.select_related("tenant", "invited_by")
        .filter(pk=invitation_id)
        .first()
    )
    if invitation is None:  # revoked or accepted before the email went out
        return
    invitation_email_send(invitation=invitation, token=token)


@shared_task
def purge_expired_idempotency_keys() -> int:
    return idempotency.idempotency_purge_expired()
