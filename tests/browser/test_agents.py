from playwright.sync_api import Page, expect

from tests.browser.conftest import person, screenshot, sign_in
from tests.conftest import TenantWorld


def test_an_owner_builds_publishes_compares_and_splits_an_agent(
    page: Page, browser_world: TenantWorld
) -> None:
    sign_in(page, person(browser_world))
    page.get_by_role("link", name="Agents").click()
    expect(page.get_by_role("link", name=browser_world.agent.name)).to_be_visible()
    screenshot(page, "agents-list")

    page.get_by_role("link", name="New agent").click()
    page.get_by_label("Name").fill("Front desk")
    page.get_by_label("Description").fill("Answers the clinic's main line.")
    page.get_by_role("button", name="Create agent").click()
    expect(page.get_by_role("heading", name="Front desk")).to_be_visible()
    expect(page.get_by_text("No versions yet")).to_be_visible()

    # The first draft: its instructions render live as they are typed.
    page.get_by_role("button", name="New draft").click()
    expect(page.get_by_role("heading", name="Version 1")).to_be_visible()
    page.get_by_label("Instructions").fill("You answer the phone for {{ clinic }}.\nBe brief.")
    expect(page.get_by_test_id("preview-problems")).to_contain_text("Missing variable: clinic.")
    page.get_by_label("Prompt values").fill("clinic = Acme Dental")
    expect(page.get_by_test_id("preview-text")).to_have_text(
        "You answer the phone for Acme Dental.\nBe brief."
    )
    screenshot(page, "agents-version-editor")
    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_text("Draft version 1 is saved.")).to_be_visible()
    expect(page.get_by_test_id("publish-ready")).to_be_visible()
    page.get_by_role("button", name="Publish", exact=True).click()
    expect(page.get_by_text("Version 1 is published and takes all calls.")).to_be_visible()
    expect(page.get_by_test_id("traffic-split")).to_contain_text("Version 1 takes 100% of calls")

    # A second version, copied from the first, published without taking calls yet.
    chosen = page.get_by_label("Start from").locator("option:checked")
    expect(chosen).to_have_text("A copy of version 1 (published)")
    page.get_by_role("button", name="New draft").click()
    expect(page.get_by_role("heading", name="Version 2")).to_be_visible()
    expect(page.get_by_label("Prompt values")).to_have_value("clinic = Acme Dental")
    page.get_by_label("Greeting").fill("Welcome to Acme Dental!")
    page.get_by_label("Instructions").fill("You answer the phone for {{ clinic }}.\nBe warm.")
    expect(page.get_by_test_id("preview-text")).to_contain_text("Be warm.")
    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_text("Draft version 2 is saved.")).to_be_visible()
    page.get_by_role("button", name="Publish without sending calls").click()
    expect(page.get_by_text("Version 2 is published.")).to_be_visible()
    expect(page.get_by_test_id("traffic-split")).to_contain_text("Version 1 takes 100% of calls")

    # What changed from version 1 to version 2.
    page.get_by_role("link", name="Compare versions").click()
    expect(page.get_by_label("From").locator("option:checked")).to_have_text(
        "Version 1 (published)"
    )
    changes = page.get_by_test_id("diff-changes")
    expect(changes.get_by_role("row", name="Greeting")).to_contain_text("Welcome to Acme Dental!")
    expect(page.locator(".diff-removed", has_text="-Be brief.")).to_be_visible()
    expect(page.locator(".diff-added", has_text="+Be warm.")).to_be_visible()
    screenshot(page, "agents-diff")

    # Half of the calls to each version.
    page.get_by_role("link", name="Front desk").click()
    page.get_by_role("link", name="Traffic split").click()
    page.get_by_label("Version 1").fill("50")
    page.get_by_label("Version 2").fill("50")
    screenshot(page, "agents-split")
    page.get_by_role("button", name="Save split").click()
    expect(page.get_by_text("Calls now go to v1 50% · v2 50%.")).to_be_visible()
    split = page.get_by_test_id("traffic-split")
    expect(split).to_contain_text("Version 1 takes 50% of calls")
    expect(split).to_contain_text("Version 2 takes 50% of calls")
    screenshot(page, "agent-page")
