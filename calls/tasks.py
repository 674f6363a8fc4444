"""Celery tasks for calls. They take ids, re-load the call within its tenant and call
calls/pipeline.py, whose steps are idempotent: a task delivered twice (acks_late, a worker lost
mid-task) changes nothing twice."""

import logging
import uuid
from datetime import timedelta

from celery import Task, shared_task
from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import F, Q
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerUnavailable

from calls import lifecycle, pipeline
from calls.models import PostCallJob
from calls.services import calls_sweep
from calls.tagging import model_configured
from tenants.access import Actor
from tenants.models import Tenant
from tenants.rls import rls_bypass, tenant_context

logger = logging.getLogger(__name__)

# Database hiccups and storage errors are worth retrying; anything else is a bug to look at.
RETRYABLE = (DatabaseError, OSError)
# Calls one task processes at most. Rules decide in microseconds, so batches pay; the model
# takes seconds a call (its timeout up to six times over, with retries), so with a model each
# task keeps to one call and stays well inside its time limit.
BATCH = 100


def batch_size() -> int:
    return 1 if model_configured() else BATCH


@shared_task
def sweep_abandoned_calls() -> int:
    """End calls whose worker died (no heartbeat) or whose media stream never came."""
    return calls_sweep()


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=RETRYABLE,
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=8,
    time_limit=300,
    soft_time_limit=270,
)
def process_calls(self: Task, tenant_id: int, call_ids: list[int]) -> int:
    """The whole pipeline for one tenant's ended calls (calls/pipeline.py): the ones named, and
    others of the tenant's still waiting (up to batch_size()), so a burst of calls ending at once is
    processed in batches by whichever tasks run first, and the tasks after them find their calls
    done. A call already processed is skipped, so a redelivered or retried task changes nothing
    twice."""
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None:
        return 0
    run = self.request.id or uuid.uuid4().hex  # the same on a redelivery of this task
    with tenant_context(tenant):  # the claim commits first, so other tasks see it at once
        claimed = pipeline.claim(tenant, call_ids, batch_size(), run)
    with tenant_context(tenant):
        return pipeline.process(tenant, claimed)


def _mark_queued(tenant: Tenant, call_ids: list[int]) -> None:
    """Note that the jobs' task is on the queue. Only once it is: a job whose task could not be
    sent (the broker down) stays unmarked, so the relay's next run sends it."""
    with tenant_context(tenant):
        PostCallJob.objects.for_tenant(tenant).filter(call_id__in=call_ids).update(
            queued_at=timezone.now(), times_queued=F("times_queued") + 1
        )


def post_call_queue(job: PostCallJob) -> None:
    """Queue the pipeline for a job, after the transaction that wrote it commits."""

    def send() -> None:
        try:
            process_calls.delay(job.tenant_id, [job.call_id])
        except BrokerUnavailable:
            logger.warning(
                "could not queue post-call work; the relay will", extra={"call": job.call_id}
            )
            return
        _mark_queued(job.tenant, [job.call_id])

    transaction.on_commit(send, robust=True)


@shared_task(acks_late=True, time_limit=120, soft_time_limit=110)
def dispatch_post_call() -> int:
    """The outbox relay: queue every unfinished job that was never queued, or was queued long
    enough ago that its task must have been lost, in batches."""
    # A job queued this long ago and still unfinished is queued again: its task was lost (a
    # worker killed outright, a broker that lost its data).
    stale = timezone.now() - timedelta(seconds=settings.POST_CALL_REQUEUE_SECONDS)
    queued = 0
    for tenant in Tenant.objects.all():
        with tenant_context(tenant):
            waiting = PostCallJob.objects.for_tenant(tenant).filter(
                Q(queued_at=None) | Q(queued_at__lt=stale), finished_at=None
            )
            call_ids = list(waiting.order_by("pk").values_list("call_id", flat=True))
        size = batch_size()
        for start in range(0, len(call_ids), size):
            batch = call_ids[start : start + size]
            process_calls.delay(tenant.pk, batch)
            _mark_queued(tenant, batch)
            queued += len(batch)
    return queued


@shared_task(acks_late=True, time_limit=120, soft_time_limit=110)
def apply_retention() -> int:
    """The daily retention sweep: one task per tenant (lifecycle.retention_apply). Returns how
    many were queued."""
    with rls_bypass("retention: list the tenants whose data ages"):
        tenant_ids = list(Tenant.objects.order_by("pk").values_list("pk", flat=True))
    for tenant_id in tenant_ids:
        apply_tenant_retention.delay(tenant_id)
    return len(tenant_ids)


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=RETRYABLE,
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=8,
    time_limit=420,
    soft_time_limit=390,
)
def apply_tenant_retention(tenant_id: int) -> dict[str, int]:
    """Remove what is past one tenant's retention periods, in batches. A run that reaches its
    time budget queues the next at once; every batch marks what it did, so a retried or
    repeated run changes nothing twice. Returns the counts removed."""
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None:
        return {}
    run = lifecycle.retention_apply(tenant=tenant, actor=Actor.system("retention"))
    if run.more:
        apply_tenant_retention.delay(tenant_id)
    return run.removed.as_dict()
