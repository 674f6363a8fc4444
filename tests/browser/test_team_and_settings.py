"""Team and Settings in a real browser: inviting, a key shown once, the audit log, recovery
codes at sign-in, and what a viewer may not see."""

import re

from playwright.sync_api import Page, expect

from tenants.roles import Role
from tests.browser.conftest import PASSWORD, Person, person, screenshot, sign_in
from tests.conftest import TenantWorld


def settings_tab(page: Page, name: str) -> None:
    page.get_by_role("navigation", name="Settings sections").get_by_role("link", name=name).click()


def test_an_owner_invites_creates_a_key_once_and_finds_it_in_the_audit_log(
    page: Page, browser_world: TenantWorld
) -> None:
    sign_in(page, person(browser_world))

    page.get_by_role("link", name="Team").click()
    page.get_by_label("Email").fill("new.colleague@example.com")
    page.get_by_label("Role", exact=True).select_option("editor")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_text("Invitation sent to new.colleague@example.com")).to_be_visible()
    expect(page.get_by_test_id("invitations")).to_contain_text("new.colleague@example.com")
    screenshot(page, "team")

    page.get_by_role("link", name="Settings").click()
    settings_tab(page, "API keys")
    page.get_by_role("link", name="Create API key").click()
    page.get_by_label("Name", exact=True).fill("Nightly export")
    page.get_by_role("checkbox", name=re.compile(r"^calls:read ")).check()
    page.get_by_role("button", name="Create key").click()
    secret = page.get_by_test_id("api-key-secret")
    expect(secret).to_have_class("secret")
    expect(secret).to_have_text(re.compile(r"^\s*\S{20,}\s*$"))
    shown = secret.inner_text().strip()
    screenshot(page, "settings-api-key-created")
    page.reload()
    expect(page.get_by_text("Nightly export")).to_be_visible()
    expect(page.get_by_test_id("api-key-secret")).to_have_count(0)
    assert shown not in page.content()

    settings_tab(page, "Audit log")
    events = page.get_by_test_id("audit-events")
    expect(events).to_contain_text("api_key.create")
    expect(events).to_contain_text("Nightly export")
    page.get_by_label("Action").select_option("invitation.create")
    page.get_by_role("button", name="Filter").click()
    expect(events).to_contain_text("new.colleague@example.com")
    expect(events).not_to_contain_text("api_key.create")
    screenshot(page, "settings-audit")

    settings_tab(page, "Webhooks")
    page.get_by_role("link", name="Add endpoint").click()
    page.get_by_label("URL").fill("https://93.184.215.14/hooks/crm")
    page.get_by_role("checkbox", name="call.completed").check()
    page.get_by_role("button", name="Add endpoint").click()
    expect(page.get_by_test_id("webhook-secret")).to_contain_text("whsec_")
    page.goto(f"/settings/webhooks/{browser_world.webhook_endpoint.public_id}/")
    expect(page.get_by_test_id("deliveries")).to_contain_text(
        browser_world.webhook_delivery.public_id
    )
    screenshot(page, "settings-webhook")


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/accounts/login/")


def password_step(page: Page, who: Person) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(who.user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()


def test_a_recovery_code_signs_in_once(page: Page, browser_world: TenantWorld) -> None:
    owner = person(browser_world)
    sign_in(page, owner)
    page.get_by_role("link", name="Settings").click()
    settings_tab(page, "Account security")
    page.get_by_role("button", name="Generate recovery codes").click()
    codes = page.get_by_test_id("recovery-codes").locator("code")
    expect(codes).to_have_count(10)
    code = codes.first.inner_text()
    screenshot(page, "settings-recovery-codes")
    sign_out(page)

    password_step(page, owner)
    page.get_by_role("link", name="Use a recovery code instead").click()
    page.get_by_label("Recovery code").fill(code)
    page.get_by_role("button", name="Sign in with recovery code").click()
    page.wait_for_url("**/")
    expect(page.get_by_text("9 unused code(s) remain")).to_be_visible()
    sign_out(page)

    password_step(page, owner)
    page.get_by_role("link", name="Use a recovery code instead").click()
    page.get_by_label("Recovery code").fill(code)
    page.get_by_role("button", name="Sign in with recovery code").click()
    expect(
        page.get_by_text("That recovery code is not right, or it was used already.")
    ).to_be_visible()
    response = page.goto("/settings/")
    assert response is not None
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/settings/$"))


def test_a_viewer_sees_no_billing_no_team_controls_and_is_refused_keys(
    page: Page, browser_world: TenantWorld
) -> None:
    sign_in(page, person(browser_world, Role.VIEWER))
    nav = page.get_by_role("navigation", name="Console")
    expect(nav.get_by_role("link", name="Team")).to_be_visible()
    expect(nav.get_by_role("link", name="Billing")).to_have_count(0)

    page.get_by_role("link", name="Team").click()
    expect(page.get_by_test_id("members")).to_contain_text(browser_world.owner.user.email)
    expect(page.get_by_test_id("invite-form")).to_have_count(0)
    expect(page.get_by_role("combobox")).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("^(Save|Remove|Revoke)"))).to_have_count(0)

    billing = page.goto("/billing/")
    assert billing is not None and billing.status == 403
    keys = page.goto("/settings/api-keys/")
    assert keys is not None and keys.status == 403
    expect(page.get_by_text("api_keys:read")).to_be_visible()
