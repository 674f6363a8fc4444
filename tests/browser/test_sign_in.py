from playwright.sync_api import Page, expect

from tests.browser.conftest import person, screenshot, sign_in
from tests.conftest import TenantWorld


def test_a_member_signs_in_with_a_code_and_lands_on_the_dashboard(
    page: Page, browser_world: TenantWorld
) -> None:
    owner = person(browser_world)
    sign_in(page, owner)
    expect(page.get_by_test_id("tenant-name")).to_contain_text(browser_world.tenant.name)
    screenshot(page, "dashboard")


def test_a_wrong_code_is_refused_and_the_form_says_why(
    page: Page, browser_world: TenantWorld
) -> None:
    owner = person(browser_world)
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(owner.user.email)
    page.get_by_label("Password").fill("correct horse battery staple")
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("6-digit code").fill("000000" if owner.code() != "000000" else "111111")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("That code is not right")).to_be_visible()
    page.goto("/agents/")
    expect(page).to_have_url("/accounts/login/?next=/agents/")
