"""Background work goes through the real broker (Redis) to a real Celery worker."""

import time

import pytest
from celery.contrib.testing.worker import start_worker
from django.core import mail

from config.celery import app
from tests.conftest import make_world
from tests.fakes.twilio import FakeTwilio


@pytest.mark.django_db(transaction=True)
def test_an_invitation_email_is_delivered_by_a_worker(fake_twilio: FakeTwilio) -> None:
    assert not app.conf.task_always_eager  # REDIS_URL is set: tasks go through the broker
    world = make_world("Queued", fake_twilio)
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        response = world.client.post(
            "/v1/invitations", {"email": "queued@example.com", "role": "viewer"}, format="json"
        )
        assert response.status_code == 201
        deadline = time.monotonic() + 15
        while not any(m.to == ["queued@example.com"] for m in mail.outbox):
            assert time.monotonic() < deadline, "the worker never sent the invitation"
            time.sleep(0.05)
    message = next(m for m in mail.outbox if m.to == ["queued@example.com"])
    assert "/accounts/invitations/" in message.body


def test_every_task_and_every_scheduled_one_can_be_sent() -> None:
    """Celery refuses to send a task whose soft time limit (its own, or the default it inherits)
    is longer than its hard one: the beat would log the refusal every time and the work would
    never run. (The outbox relay and the webhook sweep were once refused this way.)"""
    app.loader.import_default_modules()
    ours = [task for name, task in app.tasks.items() if not name.startswith("celery.")]
    assert len(ours) > 10
    for task in ours:
        if task.soft_time_limit and task.time_limit:
            assert task.soft_time_limit <= task.time_limit, task.name
    for entry in app.conf.beat_schedule.values():
        assert entry["task"] in app.tasks
