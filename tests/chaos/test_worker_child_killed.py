"""A Celery worker process killed in the middle of a call's post-call work: the task goes back
to the queue (acks_late, reject_on_worker_lost), runs again, and the call ends up processed
exactly once: one outcome, one usage event, one of each webhook."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from billing.models import UsageEvent
from calls.models import Call, Outcome
from calls.services import call_finalize
from config.celery import app
from tenants.models import WebhookDelivery
from tests import factories
from tests.calls.test_pipeline import finished_call
from tests.chaos.conftest import Checks
from tests.fakes.openai import FakeOpenAI


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_task_leaves_the_call_processed_exactly_once(
    settings: Any, checks: Checks
) -> None:
    """A Celery worker's process is killed in the middle of a call's after-call work"""
    model = FakeOpenAI().start()
    # The first answer never comes in time: the worker is killed while it waits for it.
    model.completions.append(("sleep", 20))
    app.control.purge()
    call = finished_call(status=Call.Status.IN_PROGRESS)
    # Deliveries are refused at once (a private address): the test only counts them.
    factories.WebhookEndpointFactory(
        tenant=call.tenant, url="https://127.0.0.1:9/hook", event_types=["call.outcome_tagged"]
    )
    call_finalize(call, status=Call.Status.COMPLETED, end_reason="agent_hangup")  # queues it

    database = connection.settings_dict
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),  # noqa: S108
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/"
        f"{database['NAME']}",
        "REDIS_URL": os.environ["REDIS_URL"],
        "SECRET_KEY": "insecure-key-for-tests-only",
        "FIELD_ENCRYPTION_KEYS": os.environ["FIELD_ENCRYPTION_KEYS"],
        "OPENAI_API_KEY": model.api_key,
        "OPENAI_BASE_URL": model.url,
        "OUTCOME_MODEL_TIMEOUT": "60",
        "LOG_LEVEL": "WARNING",
    }
    worker = subprocess.Popen(  # noqa: S603
        [
            *(sys.executable, "-m", "celery", "--app", "config", "worker"),
            *("--pool", "prefork", "--concurrency", "1", "--loglevel", "WARNING"),
            *("--without-mingle", "--without-gossip"),
        ],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not model.completion_requests():  # the task is now waiting for the model
            assert worker.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        [child] = children(worker.pid)
        os.kill(child, signal.SIGKILL)

        deadline = time.monotonic() + 30
        while Call.all_tenants.get(pk=call.pk).processed_at is None:
            assert worker.poll() is None, "the worker should survive the loss of a child"
            assert time.monotonic() < deadline, "the task was not run again"
            time.sleep(0.2)
    finally:
        worker.terminate()
        worker.wait(20)
        model.server.stop()
        app.control.purge()

    checks.that(
        "the killed task ran again on another process and asked the model again",
        len(model.completion_requests()) == 2,
    )
    outcome = Outcome.all_tenants.get(call=call)
    checks.that(
        "the call has one outcome, the model's",
        (outcome.source, outcome.label) == ("model", "resolved"),
    )
    usage = UsageEvent.all_tenants.filter(reference=call.public_id).values_list(
        "quantity", flat=True
    )
    checks.that("one usage event, none lost or doubled", list(usage) == [1])
    checks.that(
        "one outcome webhook",
        WebhookDelivery.all_tenants.filter(subject=call.public_id).count() == 1,
    )
