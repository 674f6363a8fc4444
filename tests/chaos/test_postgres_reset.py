"""PostgreSQL drops every connection, again and again, while calls are in progress and their
after-call work runs (a failover, a restart, a proxy that resets)."""

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
from django.conf import settings as django_settings
from django.db import connection

from calls.models import Call, CallEvent
from tests.chaos.conftest import (
    LOGS,
    Checks,
    Stack,
    check_processed_exactly_once,
    database_url,
    live_calls,
)
from tests.workers.conftest import phone_agent
from tests.workers.test_media_stream import caller_for
from workers.caller import CallReport, Step

# Each reset ends every session, idle or in the middle of a query (config/dbpool.py).
RESET_EVERY = 1.0


@contextlib.contextmanager
def session_ender() -> Iterator[Callable[[], int]]:
    """As the superuser, a function that ends every session on the test database but this
    test's own, and says how many it ended."""
    database = connection.settings_dict
    connection.ensure_connection()
    mine = connection.connection.info.backend_pid
    with psycopg.connect(
        host=database["HOST"],
        port=database["PORT"],
        user="postgres",
        dbname=database["NAME"],
        autocommit=True,
    ) as admin:

        def end_sessions() -> int:
            row = admin.execute(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid() AND pid <> %s",
                [mine],
            ).fetchone()
            return row[0] if row else 0

        yield end_sessions


def test_postgres_resetting_connections_during_live_calls(make_stack: Any, checks: Checks) -> None:
    """PostgreSQL resets every connection during live calls"""
    stack: Stack = make_stack(OUTCOME_MODEL="")
    number, _ = phone_agent()
    script = [
        Step("wait_for_agent"),
        Step("say", "Hello there"),
        Step("wait_for_agent"),
        Step("say", "What time do you open on Saturday?"),  # a tool that reads the database
        Step("wait_for_agent"),
        Step("say", "Are you still with me"),
        Step("wait_for_agent"),
    ]
    answering = threading.Event()
    calls_over = threading.Event()
    resets: list[int] = []

    def reset_connections(end_sessions: Callable[[], int]) -> None:
        answering.wait(30)
        stop_after = None
        while stop_after is None or time.monotonic() < stop_after:
            if calls_over.is_set() and stop_after is None:
                stop_after = time.monotonic() + 4  # and into the after-call work
            resets.append(end_sessions())
            time.sleep(RESET_EVERY)

    async def call() -> CallReport:
        caller = caller_for(stack.base_url, number)
        task = asyncio.ensure_future(caller.run(script))
        while not [line for line in caller.report.lines if line.speaker == "agent"]:
            await asyncio.sleep(0.05)
        answering.set()  # the greeting is playing: the call is in progress
        return await task

    async def three_calls() -> list[CallReport]:
        return list(await asyncio.gather(call(), call(), call()))

    with session_ender() as end_sessions:
        resetter = threading.Thread(target=reset_connections, args=[end_sessions])
        resetter.start()
        try:
            reports = asyncio.run(three_calls())
        finally:
            calls_over.set()
            resetter.join(30)

    checks.that(
        f"PostgreSQL connections were reset {len(resets)} times during the calls, "
        f"ending {sum(resets)} sessions",
        sum(resets) > 0,
    )
    checks.within(120, "no call is left in progress", lambda: live_calls() == 0)
    calls = [Call.all_tenants.get(carrier_call_id=report.call_sid) for report in reports]
    checks.that(
        "every call ended normally (completed, the caller hung up)",
        {(c.status, c.end_reason) for c in calls} == {("completed", "caller_hangup")},
    )
    for index, (report, call) in enumerate(zip(reports, calls, strict=True)):
        heard = [line.text for line in report.lines if line.speaker == "agent"]
        stored = CallEvent.all_tenants.filter(call=call, kind="transcript")
        agent = [
            e.payload["text"]
            for e in stored.order_by("sequence")
            if e.payload["speaker"] == "agent"
        ]
        checks.that(f"call {index + 1}: every question was answered (3)", len(heard) == 4)
        checks.that(
            f"call {index + 1}: its timeline kept every line ({len(stored)} transcript lines)",
            agent == heard and stored.count() == len(report.lines),
        )
        tools = CallEvent.all_tenants.filter(call=call, kind="tool_call").count()
        checks.that(f"call {index + 1}: the tool call is in its timeline", tools == 1)
    check_processed_exactly_once(checks, calls, seconds=150)


def test_the_pool_replaces_its_dead_connections_at_once(
    checks: Checks, transactional_db: None
) -> None:
    """PostgreSQL resets every connection each second under a stream of requests"""
    LOGS.mkdir(parents=True, exist_ok=True)
    log = (LOGS / "pool_probe.log").open("w")  # the pool's warnings of each connection it drops
    probe = subprocess.Popen(
        [sys.executable, "-m", "tests.chaos.pool_probe", "10"],
        env={**os.environ, "DATABASE_URL": database_url(), "LOG_LEVEL": "ERROR"},
        cwd=django_settings.BASE_DIR,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    assert probe.stdout is not None
    assert probe.stdout.readline().strip() == "ready"
    resets = 0
    with session_ender() as end_sessions:
        while probe.poll() is None and resets < 8:
            time.sleep(1.0)
            end_sessions()
            resets += 1
    report = json.loads(probe.stdout.read().strip().splitlines()[-1])
    probe.wait(30)
    log.close()
    errors: dict[str, int] = report["errors"]
    ended = ("terminating connection", "server closed the connection", "consuming input failed")
    timeouts = sum(n for error, n in errors.items() if "couldn't get a connection" in error)
    under_way = sum(n for error, n in errors.items() if error.startswith(ended))
    checks.that(
        f"{report['requests']} requests through {resets} resets: {under_way} failed, each a "
        "query under way when its session was ended",
        report["requests"] > 100 and sum(errors.values()) == under_way + timeouts,
    )
    checks.that("no request waited out the pool's timeout", timeouts == 0)
    checks.that(
        f"the longest request took {report['longest']:.2f} s",
        report["longest"] < 2.5,
    )
