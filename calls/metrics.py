"""Reads for the dashboard: how a tenant's calls went, aggregated in the database.

A call is *resolved* when its outcome says so, and *escalated* when it ended by being transferred
to a person. Voice-to-voice latency is recorded by the media bridge as a `latency` call event per
turn (`{"ms": …}`: from the caller's end of speech to the agent's first audio back).
"""

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import Avg, Count, FloatField, Q, QuerySet
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, TruncDate
from django.utils import timezone

from calls.models import Call, CallEvent
from tenants.models import Tenant

RESOLVED = Q(outcomes__resolved=True)
ESCALATED = Q(end_reason=Call.EndReason.TRANSFERRED)


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True)
class Window:
    """The days the dashboard looks at: today, this week (from Monday) and the last `days`."""

    today: datetime
    week: datetime
    since: datetime
    days: list[date]

    @classmethod
    def ending(cls, now: datetime, days: int = 14) -> "Window":
        local = timezone.localtime(now)
        today = local.replace(hour=0, minute=0, second=0, microsecond=0)
        first = today - timedelta(days=days - 1)
        return cls(
            today=today,
            week=today - timedelta(days=today.weekday()),
            since=first,
            days=[(first + timedelta(days=n)).date() for n in range(days)],
        )


@dataclass(frozen=True)
class CallStats:
    calls_today: int
    calls_this_week: int
    calls: int  # in the window
    decided: int  # calls of the window with an outcome
    resolved: int
    escalated: int
    average_handle_seconds: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None

    @property
    def resolution_rate(self) -> float | None:
        """Resolved calls among those whose outcome is decided."""
        return _ratio(self.resolved, self.decided)

    @property
    def escalation_rate(self) -> float | None:
        return _ratio(self.escalated, self.calls)


def _calls(tenant: Tenant, window: Window) -> QuerySet[Call]:
    return Call.objects.for_tenant(tenant).filter(started_at__gte=window.since)


def _percentiles(values: QuerySet[Any], fractions: tuple[float, ...]) -> list[float | None]:
    """Nearest-rank percentiles of the annotated `ms`: a count, then one indexed row per
    fraction, sorted by the database (the same on PostgreSQL and SQLite)."""
    count = values.count()
    if not count:
        return [None for _ in fractions]
    ordered = values.order_by("ms").values_list("ms", flat=True)
    return [ordered[max(math.ceil(f * count), 1) - 1] for f in fractions]


def call_stats(tenant: Tenant, window: Window) -> CallStats:
    """The dashboard's figures: two aggregate queries and a few for the latency percentiles."""
    totals = _calls(tenant, window).aggregate(
        today=Count("id", filter=Q(started_at__gte=window.today)),
        week=Count("id", filter=Q(started_at__gte=window.week)),
        calls=Count("id"),
        decided=Count("outcomes"),
        resolved=Count("id", filter=RESOLVED),
        escalated=Count("id", filter=ESCALATED),
        handle=Avg(
            "duration_seconds",
            filter=Q(status=Call.Status.COMPLETED, duration_seconds__isnull=False),
        ),
    )
    latencies = (
        CallEvent.objects.for_tenant(tenant)
        .filter(kind=CallEvent.Kind.LATENCY, call__started_at__gte=window.since)
        .annotate(ms=Cast(KT("payload__ms"), FloatField()))
        .filter(ms__isnull=False)
    )
    p50, p95 = _percentiles(latencies, (0.5, 0.95))
    return CallStats(
        calls_today=totals["today"],
        calls_this_week=totals["week"],
        calls=totals["calls"],
        decided=totals["decided"],
        resolved=totals["resolved"],
        escalated=totals["escalated"],
        average_handle_seconds=totals["handle"],
        latency_p50_ms=p50,
        latency_p95_ms=p95,
    )


@dataclass(frozen=True)
class Day:
    day: date
    calls: int
    resolved: int

    @property
    def not_resolved(self) -> int:
        return self.calls - self.resolved


def calls_per_day(tenant: Tenant, window: Window) -> list[Day]:
    """Calls started on each day of the window, and how many were resolved (days without calls
    are zeros)."""
    rows = (
        _calls(tenant, window)
        .annotate(day=TruncDate("started_at", tzinfo=timezone.get_current_timezone()))
        .values("day")
        .annotate(calls=Count("id"), resolved=Count("id", filter=RESOLVED))
        .order_by("day")
    )
    found = {row["day"]: row for row in rows}
    return [
        Day(day, found[day]["calls"], found[day]["resolved"]) if day in found else Day(day, 0, 0)
        for day in window.days
    ]


@dataclass(frozen=True)
class AgentCalls:
    agent_id: str  # the agent's public id, "" for calls no agent answered
    name: str
    calls: int
    decided: int
    resolved: int

    @property
    def resolution_rate(self) -> float | None:
        return _ratio(self.resolved, self.decided)


def calls_per_agent(tenant: Tenant, window: Window, limit: int = 10) -> list[AgentCalls]:
    """The agents that took the most calls in the window, busiest first."""
    rows = (
        _calls(tenant, window)
        .values("agent__public_id", "agent__name")
        .annotate(
            calls=Count("id"), decided=Count("outcomes"), resolved=Count("id", filter=RESOLVED)
        )
        .order_by("-calls", "agent__name")[:limit]
    )
    return [
        AgentCalls(
            agent_id=row["agent__public_id"] or "",
            name=row["agent__name"] or "No agent",
            calls=row["calls"],
            decided=row["decided"],
            resolved=row["resolved"],
        )
        for row in rows
    ]
