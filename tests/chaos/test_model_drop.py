"""The model's socket drops in the middle of an answer: the bridge reconnects, re-seeds the
conversation and has the new session give the cut answer again, so the caller is not left
waiting in silence; the call goes on and ends normally."""

import asyncio
import time
from typing import Any

from tests.chaos.conftest import Checks
from tests.workers.conftest import Simulator, phone_agent
from tests.workers.test_media_stream import caller_for, events, said, the_call
from workers.caller import Step


def test_a_model_lost_mid_answer_answers_again_and_the_call_goes_on(
    asgi_server: str, simulator: Simulator, checks: Checks
) -> None:
    """The model's socket drops in the middle of an answer"""
    number, _ = phone_agent()
    simulator.sim.speedup = 1.0  # answers stream in real time, so there is a middle to cut

    async def script() -> Any:
        caller = caller_for(asgi_server, number)
        task = asyncio.ensure_future(
            caller.run(
                [
                    Step("wait_for_agent"),
                    Step("say", "Hello there"),
                    Step("wait_for_agent"),
                    Step("wait", seconds=4),  # the answer given again plays out
                    Step("say", "Are you still with me"),
                    Step("wait_for_agent"),
                ]
            )
        )
        deadline = time.monotonic() + 20
        while "Hello there" not in said(caller.report, "caller") or not answering(simulator):
            assert time.monotonic() < deadline and not task.done(), "no answer began"
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.4)  # well inside an answer of several seconds
        assert answering(simulator), "the answer ended before the drop"
        simulator.run(simulator.sim.drop_all())
        return await task

    report = asyncio.run(script())
    call = the_call(report)
    notices = [e["message"] for e in events(call, "notice")]
    checks.that(
        "the model socket dropped mid-answer and the bridge reconnected",
        "model reconnected; conversation re-seeded" in notices,
    )
    cut = "the model's answer was cut; it answers again"
    checks.that("the cut answer was asked for again", cut in notices)
    answers = [e["text"] for e in events(call, "transcript") if e["speaker"] == "agent"]
    checks.that(
        "the caller heard the whole answer from the new session",
        "You said: Hello there How else can I help?" in answers
        and len(simulator.sim.sessions) == 2,
    )
    checks.that(
        "the conversation went on after it",
        answers[-1] == "You said: Are you still with me How else can I help?",
    )
    checks.that(
        "the call ended normally", (call.status, call.end_reason) == ("completed", "caller_hangup")
    )


def answering(simulator: Simulator) -> bool:
    """A response after the greeting is streaming."""
    sessions = simulator.sim.sessions
    task = sessions[-1].response_task if sessions else None
    return task is not None and not task.done() and len(sessions[-1].items) > 2
