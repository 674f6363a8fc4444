"""Pages we do not write ourselves (the API reference, the operators' admin) keep the CSP too:
the `page` fixture fails a test on any CSP violation the browser reports."""

from playwright.sync_api import Page, expect

from tests.browser.conftest import person, sign_in
from tests.conftest import TenantWorld


def test_the_api_reference_and_the_admin_work_under_the_csp(
    page: Page, browser_world: TenantWorld
) -> None:
    operator = person(browser_world)
    operator.user.is_staff = True
    operator.user.is_superuser = True
    operator.user.save()
    sign_in(page, operator)

    page.goto("/v1/docs")
    expect(page.get_by_text("Switchboard API").first).to_be_visible()
    expect(page.get_by_text("/v1/agents").first).to_be_visible()

    page.goto("/admin/")
    page.get_by_role("link", name="Tenants", exact=True).first.click()
    expect(page.get_by_text(browser_world.tenant.name).first).to_be_visible()
