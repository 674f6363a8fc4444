"""The dashboard: how the tenant's calls went lately, and what a resolution costs this period.
Every member may open it; each figure shows only to roles whose permissions cover its data."""

from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.safestring import SafeString

from billing import selectors as billing_selectors
from billing.money import format_amount
from calls import metrics
from console import charts
from console.context import can, console_view
from tenants.access import TenantContext

WINDOW_DAYS = 14
NO_DATA = "\N{EN DASH}"  # a figure without data yet


@dataclass(frozen=True)
class Figure:
    key: str  # for tests: data-testid="stat-<key>"
    label: str
    value: str
    detail: str = ""


def percent(rate: float | None) -> str:
    return NO_DATA if rate is None else f"{rate * 100:.0f}%"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return NO_DATA
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m {rest:02d}s" if minutes else f"{rest}s"


def milliseconds(value: float | None) -> str:
    return NO_DATA if value is None else f"{value:,.0f} ms"


def call_figures(stats: metrics.CallStats) -> list[Figure]:
    window = f"last {WINDOW_DAYS} days"
    return [
        Figure("calls-today", "Calls today", str(stats.calls_today)),
        Figure("calls-week", "Calls this week", str(stats.calls_this_week), "since Monday"),
        Figure(
            "resolution-rate",
            "Resolution rate",
            percent(stats.resolution_rate),
            f"{stats.resolved} of {stats.decided} calls with an outcome, {window}",
        ),
        Figure(
            "escalation-rate",
            "Escalation rate",
            percent(stats.escalation_rate),
            f"{stats.escalated} of {stats.calls} calls transferred to a person, {window}",
        ),
        Figure(
            "handle-time",
            "Average handle time",
            duration(stats.average_handle_seconds),
            f"completed calls, {window}",
        ),
        Figure(
            "latency",
            "Voice-to-voice latency, p50",
            milliseconds(stats.latency_p50_ms),
            f"p95 {milliseconds(stats.latency_p95_ms)}, from the caller's last word to the "
            f"agent's first audio, {window}",
        ),
    ]


def cost_figure(ctx: TenantContext) -> Figure:
    preview = billing_selectors.preview_data(ctx.tenant)
    cost = preview["cost_per_resolution"]
    value = NO_DATA if cost is None else format_amount(cost, preview["currency"])
    return Figure(
        "cost-per-resolution",
        "Cost per resolution",
        value,
        f"this period so far: {preview['total_formatted']}",
    )


def per_day_chart(days: list[metrics.Day]) -> SafeString:
    calls = sum(day.calls for day in days)
    resolved = sum(day.resolved for day in days)
    return charts.column_chart(
        chart_id="calls-per-day",
        title=f"Calls per day, last {WINDOW_DAYS} days",
        description=(
            f"From {days[0].day:%d %b} to {days[-1].day:%d %b}: {calls} calls, "
            f"{resolved} resolved, {calls - resolved} not resolved."
        ),
        labels=[f"{day.day:%a %d}" for day in days],
        series=[
            charts.Series("Resolved", charts.RESOLVED_COLOUR, [d.resolved for d in days]),
            charts.Series("Not resolved", charts.OTHER_COLOUR, [d.not_resolved for d in days]),
        ],
        empty=f"No calls in the last {WINDOW_DAYS} days. Calls show here as your agents "
        "answer them.",
    )


def per_agent_chart(agents: list[metrics.AgentCalls]) -> SafeString:
    def note(agent: metrics.AgentCalls) -> str:
        return f"{agent.calls} calls, {percent(agent.resolution_rate)} resolved"

    return charts.bar_chart(
        chart_id="calls-per-agent",
        title=f"Calls and resolution rate per agent, last {WINDOW_DAYS} days",
        description="; ".join(f"{agent.name}: {note(agent)}" for agent in agents) + ".",
        bars=[charts.Bar(a.name, a.calls, a.resolved, note(a)) for a in agents],
        legend=[
            charts.Series("Resolved", charts.RESOLVED_COLOUR, []),
            charts.Series("Other calls", charts.OTHER_COLOUR, []),
        ],
        empty="No agent took a call in this time. Publish an agent and give it a number.",
    )


@console_view()
def dashboard(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    context: dict[str, object] = {"window_days": WINDOW_DAYS}
    figures: list[Figure] = []
    if ctx.actor.can("calls:read"):
        window = metrics.Window.ending(timezone.now(), WINDOW_DAYS)
        figures += call_figures(metrics.call_stats(ctx.tenant, window))
        context["per_day_chart"] = per_day_chart(metrics.calls_per_day(ctx.tenant, window))
        context["per_agent_chart"] = per_agent_chart(metrics.calls_per_agent(ctx.tenant, window))
    if ctx.actor.can("billing:read"):
        figures.append(cost_figure(ctx))
    context["figures"] = figures
    # `can` from the context processor is callable, and templates call callables: pass the
    # permissions the page uses as a plain dict.
    allowed = can(ctx)
    context["can"] = {"calls": allowed["calls"], "billing": allowed["billing"]}
    return render(request, "console/dashboard.html", context)
