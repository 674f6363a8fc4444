"""Browser tests: Debian's Chromium, driven by Playwright, against the real ASGI server.

The server runs in a thread of the test process on a free port, against the test database
(committed data: `transactional_db`). Every page a test opens must load without a console error,
so a Content-Security-Policy violation or a failed request fails the test. Screenshots go to
test-artifacts/screenshots/ (git-ignored).
"""

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import Browser, Page, sync_playwright

from tenants.models import Membership, User
from tenants.roles import Role
from tests import factories
from tests.conftest import TenantWorld, make_world

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PASSWORD = "correct horse battery staple"


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Browser]:
    # Playwright's sync API runs an event loop in this thread while it lives; the test's own ORM
    # calls stay synchronous, so Django's guard against ORM calls from async code is lifted for
    # as long as the browser runs (per test, so no other test runs without the guard).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package.")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def console_server(transactional_db: None, settings: Any, celery_eager: Any) -> Iterator[str]:
    """The real ASGI application on a free port. Celery runs tasks in-process, as `make run`.
    Static files come from the source folders (as with DEBUG), not from collectstatic's output."""
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    from config.asgi import application

    server = uvicorn.Server(
        uvicorn.Config(
            ASGIStaticFilesHandler(application),
            host="127.0.0.1",
            port=0,
            lifespan="on",
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    settings.PUBLIC_BASE_URL = f"http://127.0.0.1:{port}"
    settings.ALLOWED_HOSTS = ["127.0.0.1"]
    yield settings.PUBLIC_BASE_URL
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def page(browser: Browser, console_server: str) -> Iterator[Page]:
    context = browser.new_context(base_url=console_server, viewport={"width": 1366, "height": 900})
    context.set_default_timeout(15_000)
    tab = context.new_page()
    problems: list[str] = []
    tab.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: problems.append(str(e)))
    yield tab
    context.close()
    # A response the server meant as a refusal (a form with errors, 403, 404) logs a failed
    # load; anything else counts.
    refusals = ("status of 400", "status of 403", "status of 404")
    unexpected = [p for p in problems if not any(r in p for r in refusals)]
    assert not unexpected, f"the browser reported errors: {unexpected}"


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@dataclass
class Person:
    user: User
    membership: Membership
    device: TOTPDevice

    def code(self) -> str:
        return (
            f"{totp(self.device.bin_key, self.device.step, self.device.t0, self.device.digits):06d}"
        )


def person(world: TenantWorld, role: str = Role.OWNER) -> Person:
    """A member of `world` with a password and a confirmed authenticator app."""
    membership = factories.MembershipFactory(tenant=world.tenant, role=role)
    membership.user.set_password(PASSWORD)
    membership.user.save()
    device = factories.TOTPDeviceFactory(user=membership.user)
    return Person(membership.user, membership, device)


def sign_in(page: Page, who: Person) -> None:
    """Sign in through the pages: email and password, then the current TOTP code."""
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(who.user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("6-digit code").fill(who.code())
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/")


@pytest.fixture
def browser_world(transactional_db: None, fake_twilio: Any) -> TenantWorld:
    return make_world("Alpha", fake_twilio)
