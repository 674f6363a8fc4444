"""The console's security headers and rules that hold for every page and template."""

import re
from pathlib import Path

from django.conf import settings
from django.test import Client
from django.urls import reverse

from tests.conftest import TenantWorld, verified_login

TEMPLATES = Path(settings.BASE_DIR) / "templates"
# What the Content-Security-Policy would block: inline code and inline styles.
INLINE = re.compile(
    r"<script(?![^>]*\bsrc=)[^>]*>|\sstyle=|<style\b|\son[a-z]+=|\shx-on|javascript:", re.I
)


def test_no_template_holds_inline_scripts_or_styles() -> None:
    offenders = [
        f"{path.relative_to(TEMPLATES)}: {match.group(0).strip()}"
        for path in TEMPLATES.rglob("*.html")
        for match in INLINE.finditer(re.sub(r"{#.*?#}", "", path.read_text()))
    ]
    assert not offenders, offenders


def test_pages_carry_the_policy_and_refuse_framing(world: TenantWorld, client: Client) -> None:
    verified_login(client, world.owner.user)
    response = client.get(reverse("home"))
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy
    assert "frame-ancestors 'none'" in policy
    assert response["X-Frame-Options"] == "DENY"


def test_session_and_csrf_cookies_are_http_only_and_secure(world: TenantWorld) -> None:
    client = Client()
    response = client.post(
        reverse("accounts:login"), {"email": world.owner.user.email, "password": "wrong"}
    )
    assert response.status_code == 200
    csrf = client.cookies[settings.CSRF_COOKIE_NAME]
    assert csrf["httponly"] and csrf["secure"]  # Secure outside DEBUG (SECURE_COOKIES)
    verified_login(client, world.owner.user)
    assert settings.SESSION_COOKIE_HTTPONLY and settings.SESSION_COOKIE_SECURE


def test_a_form_post_without_the_csrf_token_is_refused(world: TenantWorld) -> None:
    client = Client(enforce_csrf_checks=True)
    verified_login(client, world.owner.user)
    response = client.post(reverse("accounts:switch_tenant"), {"tenant": world.tenant.public_id})
    assert response.status_code == 403


def test_operators_cannot_read_members_recovery_codes_in_the_admin() -> None:
    from django.contrib import admin
    from django_otp.plugins.otp_static.models import StaticDevice, StaticToken

    assert not admin.site.is_registered(StaticDevice)
    assert not admin.site.is_registered(StaticToken)
