from datetime import timedelta

from django.utils import timezone
from playwright.sync_api import Page, expect

from calls.models import Call, CallEvent
from tenants.roles import Role
from tests import factories
from tests.browser.conftest import person, screenshot, sign_in
from tests.conftest import TenantWorld


def test_finance_follows_an_invoice_line_to_its_conversations_and_exports_it(
    page: Page, browser_world: TenantWorld
) -> None:
    world = browser_world
    sign_in(page, person(world, Role.FINANCE))

    page.get_by_role("navigation", name="Console").get_by_role("link", name="Billing").click()
    expect(page.get_by_role("heading", name="Billing", exact=True)).to_be_visible()
    preview = page.get_by_test_id("preview")
    expect(preview.get_by_role("link", name="Usage of line 1")).to_be_visible()
    expect(preview.get_by_test_id("total")).to_have_text("0.70 USD")
    expect(page.get_by_test_id("billing-mode")).to_contain_text("internal mode")
    screenshot(page, "billing-overview")

    invoices = page.get_by_role("table", name="Invoices")
    invoices.get_by_role("link", name=f"Invoice {world.invoice.number}", exact=True).click()
    expect(page.get_by_role("heading", name=f"Invoice {world.invoice.number}")).to_be_visible()
    expect(page.get_by_test_id("invoice-status")).to_have_text("Finalized")
    screenshot(page, "billing-invoice")

    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    assert download.value.suggested_filename == f"invoice-{world.invoice.number}.csv"
    exported = download.value.path().read_text()
    assert exported.startswith("invoice,number,position,kind,meter,description")
    assert world.invoice.public_id in exported

    page.get_by_role("link", name="Usage of line 1").click()
    expect(page.get_by_role("heading", name="usage of line 1")).to_be_visible()
    conversation = page.get_by_role("link", name=world.call.public_id)
    expect(conversation).to_have_attribute("href", f"/calls/{world.call.public_id}/")
    screenshot(page, "billing-usage")
    conversation.click()
    expect(page).to_have_url(f"/calls/{world.call.public_id}/")


def test_the_dashboard_charts_a_tenants_calls(page: Page, browser_world: TenantWorld) -> None:
    world = browser_world
    outcomes = [(True, ""), (False, ""), (True, ""), (False, Call.EndReason.TRANSFERRED)]
    for n in range(12):
        resolved, reason = outcomes[n % len(outcomes)]
        call = factories.CallFactory(
            phone_number=world.phone_number,
            started_at=timezone.now() - timedelta(days=n % 9, hours=n),
            duration_seconds=30 + 9 * n,
            **({"end_reason": reason} if reason else {}),
        )
        factories.OutcomeFactory(
            call=call, resolved=resolved, label="resolved" if resolved else "unresolved"
        )
        factories.CallEventFactory(
            call=call, sequence=10, kind=CallEvent.Kind.LATENCY, payload={"ms": 450 + 40 * n}
        )
    second = factories.AgentFactory(tenant=world.tenant, name="After-hours line")
    for n in range(3):
        call = factories.CallFactory(
            phone_number=world.phone_number,
            agent=second,
            started_at=timezone.now() - timedelta(days=n),
        )
        factories.OutcomeFactory(call=call, resolved=n != 1)

    sign_in(page, person(world, Role.OWNER))
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(page.get_by_test_id("stat-calls-today")).to_contain_text("Calls today")
    expect(page.get_by_role("img", name="Calls per day, last 14 days")).to_be_visible()
    expect(
        page.get_by_role("img", name="Calls and resolution rate per agent, last 14 days")
    ).to_be_visible()
    expect(page.get_by_test_id("stat-cost-per-resolution")).to_be_visible()
    screenshot(page, "dashboard-metrics")


def test_an_owner_sets_caps_and_is_told_when_they_do_not_fit(
    page: Page, browser_world: TenantWorld
) -> None:
    sign_in(page, person(browser_world, Role.OWNER))
    page.goto("/billing/plan/")
    expect(
        page.get_by_text("A new plan takes effect when the current billing period ends")
    ).to_be_visible()
    page.get_by_label("Usage soft limit").fill("500")
    page.get_by_label("Usage hard limit").fill("100")
    page.get_by_label("Spend hard limit (USD)").fill("250.00")
    page.get_by_role("button", name="Save caps").click()
    expect(page.get_by_text("A soft limit cannot be above the hard limit.")).to_be_visible()
    expect(page.get_by_label("Usage soft limit")).to_have_value("500")
    screenshot(page, "billing-plan-error")
    page.get_by_label("Usage soft limit").fill("80")
    page.get_by_role("button", name="Save caps").click()
    expect(page.get_by_text("Caps saved.")).to_be_visible()
    expect(page.get_by_label("Spend hard limit (USD)")).to_have_value("250.00")
    screenshot(page, "billing-plan")
