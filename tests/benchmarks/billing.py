"""Billing at volume: usage events recorded through the ledger's bulk path, then a period close.

For each size (10,000 / 100,000 / 1,000,000 events; 10,000 / 50,000 / 100,000 with --quick) a
fresh tenant, created 40 days ago on the default plan (`standard`, 70 minor units a resolved
conversation), gets that many resolved conversations spread uniformly over its first, ended,
billing period, recorded with `billing.services.usage_set_many` in batches of 5,000 references
(5 agents and versions). A second pass takes back 1% of them (billable=False appends -1 events),
so the close has to net reversals. Then `period_close` issues the period's invoice.

Reported per size: the ingestion rate; the close's wall time, its number of queries and the
peak Python memory it allocates (tracemalloc, around the call only; its overhead is included in
the close's time, which is database-bound); `usage_totals` timed alone. The target: the invoice
is built by aggregation in the database, in under 5 s for 1M events, so the query count and the
memory peak stay the same at every size. The aggregate's plan (EXPLAIN ANALYZE) is kept for the
largest tenant, as the close met it right after ingestion and again after a VACUUM ANALYZE.
"""

import argparse
import random
import time
import tracemalloc
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from tests.benchmarks.database import recreate_database

if TYPE_CHECKING:
    from billing.services import Period
    from tenants.models import Tenant

SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (10_000, 50_000, 100_000)
BATCH = 5_000
AGENTS = 5
REVERSE_EVERY = 100  # 1% of the references are taken back
WARM_UP_EVENTS = 100
UNIT_AMOUNT = 70  # the default plan's price of a resolved conversation, in minor units
TARGET_SIZE = 1_000_000
TARGET_CLOSE_SECONDS = 5.0
FLAT_MEMORY_RATIO = 1.5  # largest size's close peak over the smallest's
TOTALS_ROUNDS = 3


def make_tenant() -> tuple["Tenant", "Period"]:
    """A tenant created 40 days ago and its first billing period, which has ended."""
    from django.utils import timezone

    from billing import services
    from tests import factories

    now = timezone.now()
    tenant: Any = factories.TenantFactory(created_at=now - timedelta(days=40))
    subscription = services.subscription_for(tenant)
    period = services.period_at(subscription, tenant.created_at + timedelta(days=1))
    assert period.end <= now and not period.trial, period
    return tenant, period


def reference(index: int) -> str:
    return f"call_bench{index:07d}"


def ingest(tenant: "Tenant", period: "Period", count: int) -> dict[str, Any]:
    """Record `count` resolved conversations in `period`, then reverse 1% of them."""
    from billing.models import Meter
    from billing.services import Usage, usage_set_many

    rng = random.Random(count)
    span = (period.end - period.start) // timedelta(microseconds=1)
    started = time.perf_counter()
    for first in range(0, count, BATCH):
        wanted = {
            reference(index): Usage(
                billable=True,
                at=period.start + timedelta(microseconds=rng.randrange(span)),
                agent=f"agt_bench{index % AGENTS}",
                version=f"ver_bench{index % AGENTS}",
            )
            for index in range(first, min(first + BATCH, count))
        }
        appended = usage_set_many(tenant=tenant, meter=Meter.RESOLVED_CONVERSATION, wanted=wanted)
        assert len(appended) == len(wanted), (len(appended), len(wanted))
    ingest_seconds = time.perf_counter() - started

    taken_back = list(range(0, count, REVERSE_EVERY))
    started = time.perf_counter()
    for first in range(0, len(taken_back), BATCH):
        wanted = {
            reference(index): Usage(billable=False, at=period.start, reason="benchmark reversal")
            for index in taken_back[first : first + BATCH]
        }
        appended = usage_set_many(tenant=tenant, meter=Meter.RESOLVED_CONVERSATION, wanted=wanted)
        assert len(appended) == len(wanted), (len(appended), len(wanted))
    reversal_seconds = time.perf_counter() - started
    return {
        "events": count,
        "reversals": len(taken_back),
        "ingest_seconds": round(ingest_seconds, 2),
        "events_per_second": round(count / ingest_seconds),
        "reversal_seconds": round(reversal_seconds, 2),
    }


def close(tenant: "Tenant", period: "Period") -> dict[str, Any]:
    """Close the period once, counting its queries and its peak Python allocation."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from billing import services
    from billing.models import Meter

    with CaptureQueriesContext(connection) as captured:
        tracemalloc.start()
        started = time.perf_counter()
        invoice = services.period_close(tenant, period)
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return {
        "close_seconds": round(seconds, 3),
        "close_queries": len(captured.captured_queries),
        "close_peak_kib": round(peak / 1024, 1),
        "invoice_quantity": invoice.quantities.get(Meter.RESOLVED_CONVERSATION, 0),
        "invoice_total": invoice.total,
    }


def time_totals(tenant: "Tenant", period: "Period") -> float:
    """The best of a few runs of `usage_totals` over the period, alone."""
    from billing import services

    best = float("inf")
    for _ in range(TOTALS_ROUNDS):
        started = time.perf_counter()
        services.usage_totals(tenant, period.start, period.end)
        best = min(best, time.perf_counter() - started)
    return round(best, 3)


def explain(tenant: "Tenant", period: "Period") -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) of the very query `usage_totals` sends."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from billing import services

    with CaptureQueriesContext(connection) as captured:
        services.usage_totals(tenant, period.start, period.end)
    assert len(captured.captured_queries) == 1, captured.captured_queries
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + captured.captured_queries[0]["sql"])
        return [row[0] for row in cursor.fetchall()]


def planner_rows() -> int:
    """How many rows the planner believes the usage ledger has (pg_class.reltuples, which
    VACUUM and ANALYZE set): -1 if the table was never analyzed. Plans built on a stale count
    may differ from those after autovacuum's ANALYZE."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = 'billing_usageevent'::regclass")
        row = cursor.fetchone()
    return int(row[0]) if row else -1


def autovacuum() -> str:
    """The server's autovacuum setting: when off, nothing analyzes the ledger as it grows."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW autovacuum")
        row = cursor.fetchone()
    return str(row[0]) if row else "unknown"


def vacuum() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) billing_usageevent")


def run(args: argparse.Namespace) -> dict[str, Any]:
    recreate_database()
    sizes = QUICK_SIZES if args.quick else SIZES

    # Lazy imports, caches and the plan's first creation are paid here, not by the first size.
    tenant, period = make_tenant()
    ingest(tenant, period, WARM_UP_EVENTS)
    close(tenant, period)

    results = []
    largest: tuple[Tenant, Period] | None = None
    for size in sizes:
        tenant, period = make_tenant()
        figures = ingest(tenant, period, size)
        print(
            f"billing: {size:,} events in {figures['ingest_seconds']} s "
            f"({figures['events_per_second']:,}/s), {figures['reversals']:,} reversals in "
            f"{figures['reversal_seconds']} s",
            flush=True,
        )
        figures["planner_rows_at_close"] = planner_rows()
        figures |= close(tenant, period)
        figures["usage_totals_seconds"] = time_totals(tenant, period)
        billed = size - figures["reversals"]
        figures["invoice_correct"] = figures["invoice_quantity"] == billed and (
            figures["invoice_total"] == billed * UNIT_AMOUNT
        )
        print(
            f"billing: closed in {figures['close_seconds']} s, {figures['close_queries']} "
            f"queries, peak {figures['close_peak_kib']} KiB; invoice "
            f"{'correct' if figures['invoice_correct'] else 'WRONG'}",
            flush=True,
        )
        results.append(figures)
        largest = (tenant, period)

    assert largest is not None
    plan_before = explain(*largest)
    vacuum()
    plan_after = explain(*largest)
    totals_after_vacuum = time_totals(*largest)
    at_target = next((r for r in results if r["events"] == TARGET_SIZE), None)
    peaks = [r["close_peak_kib"] for r in results]
    return {
        "sizes": results,
        "batch": BATCH,
        "agents": AGENTS,
        "reversed_share": 1 / REVERSE_EVERY,
        "unit_amount": UNIT_AMOUNT,
        "target_close_seconds": TARGET_CLOSE_SECONDS,
        "close_under_5s_at_1M": (
            None if at_target is None else at_target["close_seconds"] < TARGET_CLOSE_SECONDS
        ),
        "close_queries_constant": len({r["close_queries"] for r in results}) == 1,
        "close_memory_flat": max(peaks) <= FLAT_MEMORY_RATIO * min(peaks),
        "invoices_correct": all(r["invoice_correct"] for r in results),
        "largest_events": results[-1]["events"],
        "postgres_autovacuum": autovacuum(),
        "usage_totals_seconds_after_vacuum": totals_after_vacuum,
        "aggregate_plan": plan_before,
        "aggregate_plan_after_vacuum": plan_after,
    }


def markdown(report: dict[str, Any]) -> str:
    def verdict(value: bool | None) -> str:
        return "not measured (--quick)" if value is None else ("**yes**" if value else "**NO**")

    def stats(planner_rows: int) -> str:
        return "never analyzed" if planner_rows < 0 else f"{planner_rows:,} rows"

    rows = [
        f"| {r['events']:,} | {r['reversals']:,} | {r['ingest_seconds']} | "
        f"{r['events_per_second']:,} | {r['close_seconds']} | {r['usage_totals_seconds']} | "
        f"{r['close_queries']} | {r['close_peak_kib']:,} | "
        f"{r['invoice_quantity']:,} / {r['invoice_total']:,} "
        f"{'ok' if r['invoice_correct'] else '**WRONG**'} | {stats(r['planner_rows_at_close'])} |"
        for r in report["sizes"]
    ]
    largest = f"{report['largest_events']:,}"
    return "\n".join(
        [
            f"# Billing benchmark ({report['ran_at']}, {report['cpus']} CPUs)",
            "",
            "Resolved conversations recorded for one tenant through `usage_set_many` "
            f"({report['batch']:,} references a call, {report['agents']} agents), "
            f"{report['reversed_share']:.0%} of them then reversed, and the period closed with "
            "`period_close`. Each size is a fresh tenant and period. The close is timed with "
            "tracemalloc on; `usage_totals` is the best of "
            f"{TOTALS_ROUNDS} runs alone. Ledger statistics: the row count the planner had for "
            "the usage table when the close began (set by VACUUM or ANALYZE).",
            "",
            "| events | reversals | ingest s | events/s | close s | usage_totals s | "
            "close queries | close peak KiB | invoice units / total | ledger statistics at close |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
            *rows,
            "",
            f"- Target: invoice built in under {report['target_close_seconds']:g} s at "
            f"1,000,000 events: {verdict(report['close_under_5s_at_1M'])}",
            f"- Queries of the close the same at every size: "
            f"{verdict(report['close_queries_constant'])}",
            f"- Close's peak memory flat (largest within {FLAT_MEMORY_RATIO}x of smallest): "
            f"{verdict(report['close_memory_flat'])}",
            f"- Invoices equal events minus reversals, at {report['unit_amount']} each: "
            f"{verdict(report['invoices_correct'])}",
            f"- PostgreSQL's autovacuum: {report['postgres_autovacuum']} (when off, the ledger "
            "is never analyzed while the benchmark runs, so the planner works from stale "
            "statistics until the VACUUM ANALYZE below)",
            f"- `usage_totals` at {largest} events after VACUUM ANALYZE: "
            f"{report['usage_totals_seconds_after_vacuum']} s",
            "",
            f"The aggregate's plan at {largest} events, right after ingestion:",
            "",
            "```",
            *report["aggregate_plan"],
            "```",
            "",
            "After VACUUM ANALYZE:",
            "",
            "```",
            *report["aggregate_plan_after_vacuum"],
            "```",
            "",
        ]
    )
