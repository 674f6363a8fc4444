from celery import shared_task

from calls.services import calls_sweep


@shared_task
def sweep_abandoned_calls() -> int:
    """End calls whose worker died (no heartbeat) or whose media stream never came."""
    return calls_sweep()
