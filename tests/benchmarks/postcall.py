"""The post-call pipeline under load: 10,000 ended calls through redaction, rule tagging and
usage recording, processed by a real Celery worker (prefork, one process per CPU) over the
Redis broker and PostgreSQL.

Half the calls have a short transcript (4 turns), half a long one (40 turns), each with a card
number read out and a tool call, so the per-call query count can be compared across transcript
lengths. Throughput is the number of calls over the time between the first call's redaction
and the last call's finish, both stamped by the database.
"""

import argparse
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.benchmarks.database import recreate_database

CALLS = 10_000
QUICK_CALLS = 1_000
SHORT_TURNS, LONG_TURNS = 4, 40
TARGET_CALLS_PER_SECOND = 200
RESULTS = Path(__file__).resolve().parent / "results"
LINES = [
    ("agent", "Thanks for calling Harbour Dental, how can I help?"),
    ("caller", "Hi, I'd like to pay my last invoice please"),
    ("agent", "Of course. Could you read me the card number?"),
    ("caller", "Sure, it's four one one one one one one one one one one one one one one one"),
    ("agent", "Thank you. And the security code?"),
    ("caller", "The CVV is seven three two"),
    ("agent", "That went through. Is there anything else?"),
    ("caller", "No, that's all, my email is jane.doe@example.com for the receipt"),
]


def make_calls(count: int) -> tuple[Any, list[int]]:
    """A tenant with a published agent and `count` ended calls with their timelines."""
    from django.utils import timezone

    from calls.models import Call, CallEvent, PostCallJob
    from tests import factories

    # Typed loosely: factory_boy types its calls as returning the factory.
    tenant: Any = factories.TenantFactory()
    agent: Any = factories.AgentFactory(tenant=tenant)
    version = factories.published_version(
        agent=agent,
        prompt_revision=factories.PromptRevisionFactory(
            template=factories.PromptTemplateFactory(tenant=tenant)
        ),
    )
    number: Any = factories.PhoneNumberFactory(
        carrier_account=factories.CarrierAccountFactory(tenant=tenant), agent=agent
    )
    rng = random.Random(1)
    now = timezone.now()
    calls = Call.all_tenants.bulk_create(
        Call(
            tenant=tenant,
            phone_number=number,
            agent=agent,
            version=version,
            caller=f"+1555{index:07d}",
            callee=number.e164,
            carrier=Call.Carrier.SANDBOX,
            carrier_call_id=f"CA{tenant.pk:06d}{index:09d}",
            status=Call.Status.COMPLETED,
            started_at=now - timedelta(minutes=3),
            answered_at=now - timedelta(minutes=3),
            ended_at=now,
            end_reason=rng.choice([Call.EndReason.AGENT_HANGUP, Call.EndReason.CALLER_HANGUP]),
            duration_seconds=180,
        )
        for index in range(count)
    )
    events = []
    for index, call in enumerate(calls):
        turns = SHORT_TURNS if index % 2 == 0 else LONG_TURNS
        for sequence in range(1, turns + 1):
            speaker, text = LINES[(sequence - 1) % len(LINES)]
            events.append(
                CallEvent(
                    tenant=tenant,
                    call=call,
                    sequence=sequence,
                    offset_ms=sequence * 2000,
                    kind=CallEvent.Kind.TRANSCRIPT,
                    payload={"speaker": speaker, "text": text},
                )
            )
        events.append(
            CallEvent(
                tenant=tenant,
                call=call,
                sequence=turns + 1,
                offset_ms=(turns + 1) * 2000,
                kind=CallEvent.Kind.TOOL_CALL,
                payload={
                    "name": "take_payment",
                    "arguments": {"card": "4111111111111111", "cvv": "732"},
                    "ok": True,
                    "result": {"receipt": "sent to jane.doe@example.com"},
                    "error": "",
                    "duration_ms": 140.0,
                },
            )
        )
    CallEvent.all_tenants.bulk_create(events, batch_size=5000)
    PostCallJob.all_tenants.bulk_create(
        PostCallJob(tenant=tenant, call=call, created_at=now) for call in calls
    )
    return tenant, [call.pk for call in calls]


def queries_for(tenant: Any, call_id: int) -> int:
    """Queries to process one call on its own (a batch of one, the case when calls end apart)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from calls.tasks import process_calls

    with CaptureQueriesContext(connection) as captured:
        process_calls(tenant.pk, [call_id])
    return len(captured.captured_queries)


def start_worker(concurrency: int) -> subprocess.Popen[bytes]:
    from config.celery import app

    env = {**os.environ, "OPENAI_API_KEY": "", "DEBUG": "0", "LOG_LEVEL": "WARNING"}
    log = (RESULTS / "postcall-worker.log").open("w")
    worker = subprocess.Popen(  # noqa: S603
        [
            *(sys.executable, "-m", "celery", "--app", "config", "worker"),
            *("--pool", "prefork", "--concurrency", str(concurrency)),
            *("--without-mingle", "--without-gossip", "--loglevel", "WARNING"),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while not app.control.ping(timeout=0.5):
        assert worker.poll() is None, f"the worker exited; see {log.name}"
        assert time.monotonic() < deadline, "the worker did not start"
    return worker


def measure(call_ids: list[int], enqueue: Callable[[], None]) -> dict[str, float]:
    """Queue the calls' processing; time from the first message to the last call finished."""
    import redis
    from django.conf import settings
    from django.db.models import Max
    from django.utils import timezone

    from calls.models import Call

    started = timezone.now()
    enqueue()
    enqueued = (timezone.now() - started).total_seconds()
    deadline = time.monotonic() + 30 * 60
    while Call.all_tenants.filter(pk__in=call_ids, processed_at=None).exists():
        assert time.monotonic() < deadline, "the pipeline did not finish in 30 minutes"
        time.sleep(0.5)
    last = Call.all_tenants.filter(pk__in=call_ids).aggregate(last=Max("processed_at"))["last"]
    # Tasks whose calls an earlier task took along are still queued: let them drain, so the
    # next measurement starts from an empty queue.
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    while broker.llen("celery"):
        time.sleep(0.2)
    time.sleep(1)
    seconds = (last - started).total_seconds()
    return {
        "calls": len(call_ids),
        "enqueue_seconds": round(enqueued, 2),
        "seconds": round(seconds, 2),
        "calls_per_second": round(len(call_ids) / seconds, 1),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    RESULTS.mkdir(exist_ok=True)
    recreate_database()
    from django.db.models import Sum

    from billing.models import UsageEvent
    from calls.models import CallEvent, Outcome
    from calls.tasks import dispatch_post_call, process_calls
    from config.celery import app

    count = QUICK_CALLS if args.quick else CALLS
    started = time.monotonic()
    one_by_one, one_ids = make_calls(count)
    backlog, backlog_ids = make_calls(count)
    setup_seconds = time.monotonic() - started
    print(f"postcall: 2 x {count} calls created in {setup_seconds:.1f} s", flush=True)
    short_queries = queries_for(one_by_one, one_ids[0])
    long_queries = queries_for(one_by_one, one_ids[1])
    one_ids = one_ids[2:]

    app.control.purge()
    concurrency = os.cpu_count() or 2
    worker = start_worker(concurrency)
    try:
        # As calls end apart: one task per call, queued when each call ends.
        singles = measure(
            one_ids, lambda: [process_calls.delay(one_by_one.pk, [i]) for i in one_ids]
        )
        print(f"postcall: one task per call: {singles['calls_per_second']} calls/s", flush=True)
        # A backlog (workers were down, a burst): the outbox relay queues batches.
        batches = measure(backlog_ids, dispatch_post_call)
        print(f"postcall: batches: {batches['calls_per_second']} calls/s", flush=True)
    finally:
        worker.terminate()
        worker.wait(30)
    all_ids = one_ids + backlog_ids
    outcomes = Outcome.all_tenants.filter(call_id__in=all_ids)
    usage = UsageEvent.all_tenants.filter(tenant__in=[one_by_one, backlog])
    leaked = (
        CallEvent.all_tenants.filter(call_id__in=all_ids, payload__icontains="4111111111111111")
        .values("call_id")
        .distinct()
    )
    return {
        "calls": count,
        "worker_processes": concurrency,
        "setup_seconds": round(setup_seconds, 1),
        "one_task_per_call": singles,
        "relay_batches": {**batches, "batch": 100},
        "queries_per_call": {
            f"{SHORT_TURNS} turns": short_queries,
            f"{LONG_TURNS} turns": long_queries,
        },
        "outcomes": outcomes.count(),
        "resolved": outcomes.filter(resolved=True).count(),
        "usage_events_net": usage.aggregate(n=Sum("quantity"))["n"],
        "calls_with_unredacted_card_numbers": leaked.count(),
        "target_calls_per_second": TARGET_CALLS_PER_SECOND,
    }


def markdown(report: dict[str, Any]) -> str:
    queries = report["queries_per_call"]
    singles, batches = report["one_task_per_call"], report["relay_batches"]
    target = report["target_calls_per_second"]
    return "\n".join(
        [
            f"# Post-call benchmark ({report['ran_at']}, {report['cpus']} CPUs)",
            "",
            f"Ended calls (half with {SHORT_TURNS} transcript turns, half with {LONG_TURNS}, "
            "each with a card number read out and a tool call) through redaction, rule tagging, "
            f"usage recording and finishing, by a Celery worker with {report['worker_processes']} "
            "processes over Redis and PostgreSQL. Time runs from queueing the first task to the "
            "last call finished.",
            "",
            "| how the work is queued | calls | seconds | calls per second |",
            "|---|---:|---:|---:|",
            f"| one task per call (calls ending apart) | {singles['calls']} | "
            f"{singles['seconds']} | **{singles['calls_per_second']}** |",
            f"| the outbox relay, {batches['batch']} calls a task (a backlog) | "
            f"{batches['calls']} | {batches['seconds']} | **{batches['calls_per_second']}** |",
            "",
            f"- Target: at least {target} calls per second on the rule path.",
            *(f"- Queries to process one call alone, {t}: **{n}**" for t, n in queries.items()),
            f"- Outcomes written: {report['outcomes']} (resolved: {report['resolved']}); "
            f"usage ledger, net: {report['usage_events_net']}",
            f"- Calls with an unredacted card number left: "
            f"**{report['calls_with_unredacted_card_numbers']}**",
            "",
        ]
    )
