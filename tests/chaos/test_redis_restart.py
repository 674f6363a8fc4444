"""Redis restarts, losing everything it held (queued tasks, rate-limit counters), while calls
are in progress."""

import asyncio
import threading
import time
from datetime import timedelta
from typing import Any

import httpx

from calls.models import Call, CallEvent
from tests import factories
from tests.chaos.conftest import Checks, Stack, check_processed_exactly_once, live_calls
from tests.workers.conftest import phone_agent
from tests.workers.test_media_stream import caller_for
from workers.caller import CallReport, Step

OUTAGE_SECONDS = 6.0
PACE = 0.2  # the callers play faster than real time; their waits too


def test_redis_restarting_during_live_calls(make_stack: Any, checks: Checks) -> None:
    """Redis restarts during live calls"""
    stack: Stack = make_stack(OUTCOME_MODEL="")
    number, _ = phone_agent()
    key = factories.ApiKeyFactory(tenant=number.carrier_account.tenant)
    first_answers = threading.Barrier(4)  # three callers heard the agent, and the test

    def scripted(name: str, after: list[Step]) -> list[Step]:
        return [
            Step("wait_for_agent"),
            Step("say", f"Hello this is {name}"),
            Step("wait_for_agent"),
            *after,
        ]

    scripts = {
        # Speaks while Redis is down, then again once it is back.
        "Ada": scripted(
            "Ada",
            [
                Step("wait", seconds=2 / PACE),
                Step("say", "Are you still with me"),
                Step("wait_for_agent"),
                Step("wait", seconds=OUTAGE_SECONDS / PACE),
                Step("say", "Thanks that is all"),
                Step("wait_for_agent"),
            ],
        ),
        # Hangs up while Redis is down: its after-call work cannot be queued then.
        "Bo": scripted("Bo", [Step("wait", seconds=2 / PACE)]),
        # Speaks again only after Redis is back.
        "Cy": scripted(
            "Cy",
            [
                Step("wait", seconds=(OUTAGE_SECONDS + 3) / PACE),
                Step("say", "Are you still with me"),
                Step("wait_for_agent"),
            ],
        ),
    }

    async def call(name: str) -> CallReport:
        caller = caller_for(stack.base_url, number, PACE)
        task = asyncio.ensure_future(caller.run(scripts[name]))
        while len([line for line in caller.report.lines if line.speaker == "agent"]) < 2:
            await asyncio.sleep(0.05)
        await asyncio.to_thread(first_answers.wait, 30)
        return await task

    outage: dict[str, Any] = {}

    def break_redis() -> None:
        first_answers.wait(30)
        outage["down"] = time.time()
        assert stack.redis is not None
        stack.redis.kill()
        time.sleep(0.5)
        with httpx.Client(base_url=stack.base_url, timeout=10) as client:
            outage["readyz"] = client.get("/readyz")
            outage["api"] = client.get(
                "/v1/calls", headers={"Authorization": f"Bearer {key.secret}"}
            )
        time.sleep(OUTAGE_SECONDS - 0.5)
        stack.start_redis()  # empty: it keeps nothing on disk
        outage["up"] = time.time()

    breaker = threading.Thread(target=break_redis)
    breaker.start()

    async def all_calls() -> list[CallReport]:
        return list(await asyncio.gather(*(call(name) for name in scripts)))

    reports = asyncio.run(all_calls())
    breaker.join(30)

    checks.that(
        "the readiness probe said Redis was unavailable while it was down",
        outage["readyz"].status_code == 503 and outage["readyz"].json()["redis"] == "unavailable",
    )
    checks.that(
        "the API kept answering while Redis was down (rate limits let requests through)",
        outage["api"].status_code == 200,
    )
    checks.within(120, "no call is left in progress", lambda: live_calls() == 0)
    calls = {
        name: Call.all_tenants.get(carrier_call_id=report.call_sid)
        for name, report in zip(scripts, reports, strict=True)
    }
    down = outage["down"]
    up = outage["up"]
    answered_during = [
        e
        for e in CallEvent.all_tenants.filter(call=calls["Ada"], kind="transcript")
        if e.payload["speaker"] == "agent"
        and down < (calls["Ada"].answered_at + timedelta(milliseconds=e.offset_ms)).timestamp() < up
    ]
    checks.that("a call in progress was answered while Redis was down", bool(answered_during))
    for name, report in zip(scripts, reports, strict=True):
        agent = [line.text for line in report.lines if line.speaker == "agent"]
        expected = len([step for step in scripts[name] if step.action == "say"]) + 1
        checks.that(
            f"{name}'s call: every question was answered ({expected - 1})", len(agent) == expected
        )
    ended = calls["Bo"].ended_at
    assert ended is not None
    checks.that("one call ended while Redis was down", down < ended.timestamp() < up)
    checks.that(
        "every call ended normally (completed; hung up by the caller, or by the agent on goodbye)",
        {(c.status, c.end_reason) for c in calls.values()}
        <= {("completed", "caller_hangup"), ("completed", "agent_hangup")},
    )
    check_processed_exactly_once(checks, list(calls.values()), seconds=150)
