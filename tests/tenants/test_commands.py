from io import StringIO

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django_otp.plugins.otp_totp.models import TOTPDevice

from tenants import keys
from tenants.models import ApiKey, AuditEvent, Invitation, Membership, Tenant, User
from tests.conftest import key_client
from tests.factories import TenantFactory, TOTPDeviceFactory, UserFactory

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_create_tenant_invites_a_new_owner(
    celery_eager,
    django_capture_on_commit_callbacks,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        out, _ = run("create_tenant", "--name", "Acme Dental", "--owner-email", "boss@acme.test")
    tenant = Tenant.objects.get(slug="acme-dental")
    assert tenant.public_id in out
    assert "/accounts/invitations/" in out
    invitation = Invitation.objects.for_tenant(tenant).get()
    assert (invitation.email, invitation.role) == ("boss@acme.test", "owner")
    assert mail.outbox[-1].to == ["boss@acme.test"]
    assert AuditEvent.objects.for_tenant(tenant).filter(action="tenant.create").exists()


def test_create_tenant_makes_an_existing_user_owner_at_once() -> None:
    user = UserFactory(email="ops@example.com")
    out, _ = run("create_tenant", "--name", "Beta", "--owner-email", "OPS@example.com")
    tenant = Tenant.objects.get(name="Beta")
    assert Membership.objects.for_tenant(tenant).get(user=user).role == "owner"
    assert "ops@example.com is its owner" in out.lower()


def test_create_tenant_refuses_a_taken_slug() -> None:
    TenantFactory(slug="taken")
    with pytest.raises(CommandError, match="taken"):
        run("create_tenant", "--name", "X", "--owner-email", "x@example.com", "--slug", "taken")
    assert not Tenant.objects.filter(name="X").exists()


def test_create_api_key_prints_a_working_key_once() -> None:
    tenant = TenantFactory(slug="acme")
    out, err = run("create_api_key", "--tenant", "acme", "--scopes", "members:read")
    secret = out.strip()
    assert keys.is_well_formed(secret)
    assert "cannot be shown again" in err
    api_key = ApiKey.objects.for_tenant(tenant).get()
    assert api_key.scopes == ["members:read"]
    api_key.secret = secret
    assert key_client(api_key).get("/v1/members").status_code == 200


def test_create_api_key_explains_bad_input() -> None:
    TenantFactory(slug="acme")
    with pytest.raises(CommandError, match="No tenant"):
        run("create_api_key", "--tenant", "nope")
    with pytest.raises(CommandError, match="Unknown scopes: calls:fly"):
        run("create_api_key", "--tenant", "acme", "--scopes", "calls:fly")


def test_enroll_totp_replaces_the_device_and_prints_the_uri() -> None:
    user = UserFactory(email="ops@example.com")
    old = TOTPDeviceFactory(user=user)
    out, _ = run("enroll_totp", "--email", "ops@example.com", "--no-qr")
    device = TOTPDevice.objects.get(user=user)
    assert device.pk != old.pk
    assert device.config_url in out


def test_load_demo_prints_credentials_only_the_first_time() -> None:
    first, _ = run("load_demo")
    assert "password" in first
    assert "otpauth://totp/" in first
    owner = User.objects.get(email="owner@demo.example")
    assert owner.is_staff and owner.is_superuser
    tenant = Tenant.objects.get(slug="demo")
    assert Membership.objects.for_tenant(tenant).get(user=owner).role == "owner"
    password = next(line.split()[-1] for line in first.splitlines() if "password" in line)
    assert owner.check_password(password)
    # Each app adds its part: an agent with a published version, answering a sandbox number.
    from agents.models import Agent, PhoneNumber
    from agents.selectors import active_number, version_for_call

    agent = Agent.objects.for_tenant(tenant).get(name="Reception")
    number = PhoneNumber.objects.for_tenant(tenant).get(agent=agent)
    assert number.e164 in first
    assert version_for_call(active_number(number.e164), "+14155550000").status == "published"

    second, _ = run("load_demo")
    assert "already loaded" in second
    assert password not in second
    assert Tenant.objects.filter(slug="demo").count() == 1

    reset, _ = run("load_demo", "--reset-credentials")
    new_password = next(line.split()[-1] for line in reset.splitlines() if "password" in line)
    owner.refresh_from_db()
    assert new_password != password and owner.check_password(new_password)
