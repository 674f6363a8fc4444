from playwright.sync_api import Page, expect

from tests.browser.conftest import person, screenshot, sign_in
from tests.conftest import TenantWorld

HOURS = (
    b"Opening hours\n\nThe shop opens at nine and closes at five on weekdays.\n\n"
    b"Returns\n\nReturns are accepted within thirty days with a receipt.\n"
)
SECRET = "super-secret-token-123"


def test_an_owner_builds_knowledge_searches_it_and_tests_a_tool(
    page: Page, browser_world: TenantWorld
) -> None:
    sign_in(page, person(browser_world))

    # A knowledge base with one uploaded text file.
    page.get_by_role("link", name="Knowledge").click()
    page.get_by_role("link", name="New knowledge base").first.click()
    page.get_by_label("Name", exact=True).fill("Shop facts")
    page.get_by_role("button", name="Create knowledge base").click()
    expect(page.get_by_role("heading", name="Shop facts", level=1)).to_be_visible()
    page.get_by_label("Document", exact=True).set_input_files(
        files=[{"name": "hours.txt", "mimeType": "text/plain", "buffer": HOURS}]
    )
    page.get_by_role("button", name="Upload").click()
    expect(page.get_by_text("hours.txt added")).to_be_visible()
    expect(page.get_by_test_id("chunks")).to_contain_text("The shop opens at nine")

    # Its page lists the document; a search shows the matching passage with its score.
    page.get_by_role("link", name="Shop facts").first.click()
    expect(page.get_by_role("link", name="hours.txt")).to_be_visible()
    screenshot(page, "knowledge-base")
    page.get_by_label("Question").fill("when does the shop open")
    page.get_by_role("button", name="Search").click()
    results = page.get_by_test_id("search-results")
    expect(results).to_contain_text("The shop opens at nine")
    expect(results).to_contain_text("score")
    assert "/search/" not in page.url  # swapped into the page by htmx
    screenshot(page, "knowledge-search")

    # A search_knowledge tool, tried with sample arguments.
    page.get_by_role("link", name="Tools").first.click()
    page.get_by_role("link", name="New tool").first.click()
    page.get_by_role("link", name="Search knowledge").click()
    page.get_by_label("Name", exact=True).fill("shop_facts")
    page.get_by_label("Description").fill("Answer questions about the shop.")
    page.get_by_role("button", name="Create tool").click()
    expect(page.get_by_text("Tool shop_facts created")).to_be_visible()
    page.get_by_label("Sample arguments (JSON)").fill('{"query": "when does the shop open"}')
    page.get_by_role("button", name="Run test").click()
    result = page.get_by_test_id("test-result")
    expect(result).to_contain_text("ok")
    expect(result).to_contain_text("The shop opens at nine")
    screenshot(page, "tools-test")
    page.get_by_role("link", name="Tools", exact=True).first.click()
    expect(page.get_by_role("link", name="shop_facts")).to_be_visible()
    screenshot(page, "tools-list")


def test_an_integrations_secret_is_never_shown_again(
    page: Page, browser_world: TenantWorld
) -> None:
    sign_in(page, person(browser_world))
    page.goto("/tools/")
    page.get_by_role("link", name="Integrations").click()
    page.get_by_role("link", name="New integration").first.click()
    page.get_by_role("link", name="Bearer token").click()
    page.get_by_label("Name", exact=True).fill("Orders API")
    page.get_by_label("Token").fill(SECRET)
    page.get_by_role("button", name="Create integration").click()
    expect(page.get_by_text("Integration Orders API created")).to_be_visible()

    expect(page.get_by_label("Token")).to_have_value("")
    expect(page.get_by_text("Set: leave empty to keep it.")).to_be_visible()
    assert SECRET not in page.content()
    page.reload()
    assert SECRET not in page.content()
    page.get_by_role("link", name="Integrations").first.click()
    expect(page.get_by_text("Token: set").first).to_be_visible()
    assert SECRET not in page.content()
