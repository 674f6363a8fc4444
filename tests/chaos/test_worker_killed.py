"""A Celery worker is killed outright (SIGKILL, its beat and pool with it) while it runs the
after-call work of ended calls, and the server process running a live call dies with it."""

import asyncio
import contextlib
import time
from typing import Any

import pytest

from calls.models import Call
from tenants.models import WebhookDelivery
from tests import factories
from tests.chaos.conftest import Checks, Stack, check_processed_exactly_once, wait_for
from tests.fakes.openai import FakeOpenAI
from tests.workers.conftest import phone_agent
from tests.workers.test_media_stream import caller_for
from workers.caller import CallReport, Step

PACE = 0.2
ENDED_CALLS = 3


@pytest.mark.slow_chaos
def test_a_worker_and_a_server_killed_mid_work(
    make_stack: Any, fake_model: FakeOpenAI, checks: Checks
) -> None:
    """A Celery worker and the server running a live call are killed outright"""
    # The outcome model is slow at first: the worker is killed while its tasks wait for it.
    fake_model.completions.extend([("sleep", 30)] * 2)
    # A job whose task was lost is sent again 20 s after it was queued (default: 10 minutes).
    stack: Stack = make_stack(POST_CALL_REQUEUE_SECONDS="20")
    number, _ = phone_agent()
    factories.WebhookEndpointFactory(
        tenant=number.carrier_account.tenant,
        url="https://127.0.0.1:9/hook",  # refused at once: deliveries are only counted
        event_types=["call.outcome_tagged"],
    )

    short = [Step("wait_for_agent"), Step("say", "Hello there"), Step("wait_for_agent")]
    long = [*short, Step("wait", seconds=60 / PACE)]

    async def calls() -> tuple[list[CallReport], CallReport | None]:
        live = caller_for(stack.base_url, number, PACE)
        task = asyncio.ensure_future(live.run(long))
        ended = await asyncio.gather(
            *(caller_for(stack.base_url, number, PACE).run(short) for _ in range(ENDED_CALLS))
        )
        # The ended calls' tasks are running, waiting for the model: kill everything.
        await asyncio.to_thread(
            wait_for,
            "tasks waiting for the model",
            lambda: len(fake_model.completion_requests()) >= 2,
            30,
        )
        assert stack.worker is not None and stack.server is not None
        stack.worker.kill()
        stack.server.kill()
        killed.append(time.monotonic())
        with contextlib.suppress(Exception):  # the live caller's line drops
            await asyncio.wait_for(task, 10)
        return list(ended), live.report

    killed: list[float] = []
    reports, live_report = asyncio.run(calls())
    checks.that(
        f"the worker was killed while {len(fake_model.completion_requests())} of its tasks "
        "waited for the model, and the server during a live call",
        len(fake_model.completion_requests()) >= 2,
    )
    stack.start_server()
    stack.start_worker()

    assert live_report is not None
    live = Call.all_tenants.get(carrier_call_id=live_report.call_sid)
    checks.within(
        120,
        "the call whose server died is ended by the sweeper (failed, worker lost), counted "
        "from the kill",
        lambda: Call.all_tenants.filter(
            pk=live.pk, status="failed", end_reason="worker_lost"
        ).exists(),
        already=time.monotonic() - killed[0],
    )
    ended = [Call.all_tenants.get(carrier_call_id=report.call_sid) for report in reports]
    checks.that(
        "the calls that had ended before the kill stay completed",
        {call.status for call in ended} == {"completed"},
    )
    every = [*ended, live]
    check_processed_exactly_once(checks, every, seconds=150)
    checks.that(
        "the model was asked again for the killed tasks' calls",
        len(fake_model.completion_requests()) >= len(every) + 2,
    )
    checks.that(
        "one outcome webhook per call, none doubled",
        sorted(
            WebhookDelivery.all_tenants.filter(
                subject__in=[call.public_id for call in every]
            ).values_list("subject", flat=True)
        )
        == sorted(call.public_id for call in every),
    )
