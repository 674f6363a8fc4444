"""An owner buys a sandbox number, has the world's agent answer it, places a test call on it and
reads the call: its transcript and its outcome. The Realtime simulator plays the model; Celery
runs in-process, so the post-call pipeline has tagged the call when the page shows it."""

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from agents.models import PhoneNumber
from calls.models import Call
from tests.browser.conftest import person, screenshot, sign_in
from tests.conftest import TenantWorld
from tests.workers.conftest import Simulator, simulator  # noqa: F401
from workers import tasks

CALL_TIMEOUT_MS = 90_000


def test_an_owner_buys_a_number_assigns_it_and_places_a_test_call(
    page: Page,
    browser_world: TenantWorld,
    simulator: Simulator,  # noqa: F811
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings.OUTCOME_MODEL = ""  # rules and the heuristic tag the call
    monkeypatch.setattr(tasks, "PACE", 0.2)  # the caller speaks five times faster
    world = browser_world
    sign_in(page, person(world))

    page.get_by_role("link", name="Numbers").click()
    expect(page.get_by_role("heading", name="Numbers")).to_be_visible()
    expect(page.get_by_role("cell", name=world.phone_number.e164)).to_be_visible()
    screenshot(page, "numbers-list")

    page.get_by_role("link", name="Buy a number").click()
    page.get_by_label("Carrier account").select_option(
        label=f"{world.carrier_account.name} (Sandbox)"
    )
    page.get_by_label("Area code").fill("206")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("button", name="Buy +12065550100").click()

    expect(page.get_by_role("heading", name="Buy this number")).to_be_visible()
    expect(page.get_by_text("+12065550100")).to_be_visible()
    expect(page.get_by_text("Sandbox numbers are free")).to_be_visible()
    screenshot(page, "numbers-buy-confirm")
    page.get_by_test_id("confirm").click()

    expect(page.get_by_role("heading", name="+12065550100")).to_be_visible()
    expect(page.get_by_text("You bought +12065550100")).to_be_visible()
    page.get_by_label("Agent answering this number").select_option(label=world.agent.name)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_test_id("number-agent")).to_have_text(world.agent.name)
    number = PhoneNumber.objects.for_tenant(world.tenant).get(e164="+12065550100")
    assert number.agent == world.agent
    screenshot(page, "numbers-number")

    script = page.get_by_label("What the caller says")
    expect(script).to_have_value(
        "Hi! What time do you open on Saturday?\nGreat, thanks. That's all, goodbye!"
    )
    page.get_by_role("button", name="Place a test call").click()
    page.wait_for_url("**/calls/call_*/", timeout=CALL_TIMEOUT_MS)

    call = Call.objects.for_tenant(world.tenant).get(phone_number=number)
    assert call.processed_at is not None, "the post-call pipeline did not run"
    expect(page.get_by_text("Test call to +12065550100 placed.")).to_be_visible()
    timeline = page.get_by_test_id("timeline")
    expect(timeline).to_contain_text("What time do you open on Saturday?")
    expect(timeline.locator("[data-kind=transcript] .agent").first).to_be_visible()
    outcome = call.outcomes.get()
    expect(page.get_by_test_id("outcome-badge")).to_have_text(outcome.label)
    expect(page.get_by_test_id("outcome-source")).not_to_be_empty()
    screenshot(page, "call-page")

    page.get_by_role("link", name="Calls", exact=True).first.click()
    expect(page.locator(f'a[href="/calls/{call.public_id}/"]')).to_be_visible()
    expect(page.locator(f'a[href="/calls/{world.call.public_id}/"]')).to_be_visible()
    screenshot(page, "calls-list")
