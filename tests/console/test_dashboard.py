import re
from datetime import timedelta

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from calls import metrics
from calls.models import Call, CallEvent
from tenants.roles import Role
from tests import factories
from tests.conftest import TenantWorld, verified_login
from tests.console.conftest import member_client, text


def stat(html: str, key: str) -> str:
    """The value shown by the dashboard's figure `key`."""
    found = re.search(rf'data-testid="stat-{key}">.*?<div class="value">(.*?)</div>', html, re.S)
    assert found, f"no figure {key}"
    return found.group(1).strip()


def a_call(world: TenantWorld, *, days_ago: float = 0, **fields: object) -> Call:
    call: Call = factories.CallFactory(
        phone_number=world.phone_number,
        started_at=timezone.now() - timedelta(days=days_ago),
        **fields,
    )
    return call


def latencies(call: Call, *values: float) -> None:
    for n, ms in enumerate(values, 100):
        factories.CallEventFactory(
            call=call, sequence=n, kind=CallEvent.Kind.LATENCY, payload={"ms": ms, "item_id": "i"}
        )


def some_calls(world: TenantWorld) -> None:
    """Next to the world's call (today, resolved, 42 s): another resolved call today, a call
    transferred to a person three days ago (not resolved, 100 s), a call still in progress and
    an old call outside the dashboard's 14 days."""
    today = a_call(world)
    factories.OutcomeFactory(call=today)
    latencies(today, 300, 500, 700, 900)
    transferred = a_call(
        world, days_ago=3, end_reason=Call.EndReason.TRANSFERRED, duration_seconds=100
    )
    factories.OutcomeFactory(call=transferred, label="transferred", resolved=False)
    latencies(transferred, 1100)
    a_call(world, days_ago=2, status=Call.Status.IN_PROGRESS)
    old = a_call(world, days_ago=20)
    factories.OutcomeFactory(call=old)
    latencies(old, 5000)


def test_the_figures_count_the_tenants_calls_of_the_last_two_weeks(
    world: TenantWorld, other_world: TenantWorld
) -> None:
    some_calls(world)
    some_calls(other_world)
    window = metrics.Window.ending(timezone.now())
    this_week = (
        2
        + (window.week <= timezone.now() - timedelta(days=2))
        + (window.week <= timezone.now() - timedelta(days=3))
    )

    html = text(member_client(world).get("/"))

    assert stat(html, "calls-today") == "2"
    assert stat(html, "calls-week") == str(this_week)
    # 2 resolved of the 3 calls with an outcome; 1 of 4 calls transferred to a person.
    assert stat(html, "resolution-rate") == "67%"
    assert "2 of 3 calls with an outcome" in html
    assert stat(html, "escalation-rate") == "25%"
    # (42 + 42 + 100) / 3 seconds for the completed calls.
    assert stat(html, "handle-time") == "1m 01s"
    # Nearest rank of 300, 500, 700, 900, 1100 ms: the old call's 5000 ms is out of the window.
    assert stat(html, "latency") == "700 ms"
    assert "p95 1,100 ms" in html


def test_the_charts_show_calls_per_day_and_per_agent(world: TenantWorld) -> None:
    some_calls(world)
    html = text(member_client(world).get("/"))
    per_day = re.search(r'<svg[^>]*data-testid="calls-per-day".*?</svg>', html, re.S)
    assert per_day
    assert "Calls per day, last 14 days" in per_day.group(0)
    assert "4 calls, 2 resolved, 2 not resolved" in per_day.group(0)
    per_agent = re.search(r'<svg[^>]*data-testid="calls-per-agent".*?</svg>', html, re.S)
    assert per_agent
    assert f"{world.agent.name}: 4 calls, 67% resolved" in per_agent.group(0)
    assert "style=" not in html


def test_a_tenant_without_calls_is_told_why_the_charts_are_empty(db: None) -> None:
    owner = factories.MembershipFactory(role=Role.OWNER)
    client = verified_login(Client(), owner.user)
    html = text(client.get("/"))
    assert stat(html, "calls-today") == "0"
    assert stat(html, "resolution-rate") == "\N{EN DASH}"
    assert "No calls in the last 14 days" in html
    assert "No agent took a call in this time" in html
    assert "<svg" not in html


def test_cost_per_resolution_shows_only_to_roles_that_read_billing(world: TenantWorld) -> None:
    for role in (Role.OWNER, Role.FINANCE):
        html = text(member_client(world, role).get("/"))
        # The world's one resolved conversation this period, at the standard 0.70 USD.
        assert stat(html, "cost-per-resolution") == "0.70 USD"
        assert '<a class="button secondary" href="/billing/">Billing</a>' in html
    for role in (Role.ADMIN, Role.EDITOR, Role.VIEWER):
        html = text(member_client(world, role).get("/"))
        assert "stat-cost-per-resolution" not in html
        assert "Cost per resolution" not in html
        assert '<a class="button secondary" href="/billing/">' not in html
        assert '<a class="button secondary" href="/calls/">All calls</a>' in html


def test_the_dashboard_aggregates_in_the_database(world: TenantWorld) -> None:
    client = member_client(world)
    some_calls(world)
    client.get("/")  # the subscription is created on first use

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/").status_code == 200
        return len(captured)

    before = queries()
    for _ in range(5):
        some_calls(world)
    assert queries() == before
