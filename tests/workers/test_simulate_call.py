"""`manage.py simulate_call` against the running server: the conversation as it happens, then
the call's record and, once the post-call pipeline has run, its outcome and summary."""

import io
from pathlib import Path
from typing import Any

from django.core.management import call_command

from tests.workers.conftest import GREETING, Simulator, phone_agent


def test_simulate_call_prints_the_conversation_and_the_outcome(
    asgi_server: str, simulator: Simulator, settings: Any, celery_eager: Any, tmp_path: Path
) -> None:
    settings.OUTCOME_MODEL = ""  # rules and the heuristic decide
    number, _ = phone_agent()
    out = io.StringIO()
    call_command(
        "simulate_call",
        number=number.e164,
        say=["What time do you open on Saturday?", "Thanks, goodbye"],
        url=asgi_server,
        out=tmp_path / "agent.wav",
        stdout=out,
    )
    printed = out.getvalue()
    assert f"agent : {GREETING}" in printed
    assert "caller: What time do you open on Saturday?" in printed
    assert "agent : Here is what I found: We open at nine on Saturday mornings." in printed
    assert "completed, agent_hangup" in printed
    assert "outcome: resolved (resolved; rule: heuristic)" in printed
    assert "summary: The caller said:" in printed
    assert (tmp_path / "agent.wav").stat().st_size > 1000
