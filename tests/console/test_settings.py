"""Settings: account security, the tenant, API keys, webhook endpoints and the audit log."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from tenants import keys, services, twofactor
from tenants.access import Actor
from tenants.errors import Forbidden
from tenants.models import ApiKey, AuditEvent, Tenant, WebhookDelivery, WebhookEndpoint
from tenants.roles import Role
from tests import factories
from tests.conftest import TenantWorld
from tests.console.conftest import member_client, text

SECURITY = reverse("console:settings-security")
AUTHENTICATOR = reverse("console:settings-authenticator")
RECOVERY = reverse("console:settings-recovery-codes")
API_KEYS = reverse("console:api-keys")
NEW_KEY = reverse("console:api-key-new")
WEBHOOKS = reverse("console:webhooks")
NEW_WEBHOOK = reverse("console:webhook-new")
AUDIT = reverse("console:audit")
PUBLIC_URL = "https://93.184.215.14/hooks/new"


def endpoint_url(name: str, endpoint: WebhookEndpoint) -> str:
    return reverse(f"console:{name}", kwargs={"id": endpoint.public_id})


def current_code(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, device.step, device.t0, device.digits):06d}"


# --- Sub-navigation ---------------------------------------------------------------------------


def test_the_sections_shown_follow_the_role(world: TenantWorld) -> None:
    owner = text(member_client(world).get(reverse("console:settings")))
    for link in ("Account security", "Tenant", "API keys", "Webhooks", "Audit log"):
        assert f">{link}</a>" in owner
    viewer = text(member_client(world, Role.VIEWER).get(reverse("console:settings")))
    assert ">Account security</a>" in viewer and ">Tenant</a>" in viewer
    for link in ("API keys", "Webhooks", "Audit log"):
        assert f">{link}</a>" not in viewer


# --- Account security -------------------------------------------------------------------------


def test_a_new_authenticator_replaces_the_old_one_only_once_confirmed(world: TenantWorld) -> None:
    client = member_client(world)
    user = world.owner.user
    (old,) = twofactor.authenticators(user)
    page = text(client.get(AUTHENTICATOR))
    assert "<svg" in page and 'data-testid="manual-key"' in page
    new = TOTPDevice.objects.get(user=user, confirmed=False)

    wrong = client.post(
        AUTHENTICATOR, {"token": "000000" if current_code(new) != "000000" else "111111"}
    )
    assert wrong.status_code == 400
    assert "That code does not match." in text(wrong)
    assert twofactor.authenticators(user) == [old]
    # django-otp delays the next try after a wrong code; this test has no time to wait.
    new.refresh_from_db()
    new.throttle_reset()

    done = client.post(AUTHENTICATOR, {"token": current_code(new)}, follow=True)
    assert "Your new authenticator app is set up" in text(done)
    assert [d.pk for d in twofactor.authenticators(user)] == [new.pk]
    # The session moved to the new device: the console still opens.
    assert client.session[DEVICE_ID_SESSION_KEY] == new.persistent_id
    assert client.get(SECURITY).status_code == 200
    assert (
        AuditEvent.objects.for_tenant(world.tenant).filter(action="authenticator.replace").exists()
    )


def test_recovery_codes_are_shown_once_then_only_counted(world: TenantWorld) -> None:
    client = member_client(world)
    assert "You have no recovery codes" in text(client.get(SECURITY))
    generated = client.post(RECOVERY, follow=True)
    codes = re.findall(r"<li><code>([a-z2-7]{4}-[a-z2-7]{4})</code></li>", text(generated))
    assert len(codes) == 10
    assert twofactor.recovery_codes_remaining(world.owner.user) == 10

    again = text(client.get(RECOVERY))
    assert not any(code in again for code in codes)
    assert "<strong>10</strong> of 10 recovery codes unused" in again
    assert twofactor.recovery_code_use(world.owner.user, codes[0]) is not None
    assert "<strong>9</strong> of 10" in text(client.get(SECURITY))


def test_regenerating_recovery_codes_asks_first_and_replaces_the_set(world: TenantWorld) -> None:
    client = member_client(world)
    _, old_codes = twofactor.recovery_codes_generate(world.owner.user)
    asked = client.post(RECOVERY)
    assert asked.status_code == 200
    assert "unused recovery code(s) stop working" in text(asked)
    assert twofactor.recovery_code_use(world.owner.user, old_codes[0]) is not None

    client.post(RECOVERY, {"confirmed": "yes"})
    assert twofactor.recovery_code_use(world.owner.user, old_codes[1]) is None
    assert twofactor.recovery_codes_remaining(world.owner.user) == 10
    assert (
        AuditEvent.objects.for_tenant(world.tenant)
        .filter(action="recovery_codes.generate")
        .exists()
    )


# --- Tenant -----------------------------------------------------------------------------------


def test_renaming_the_tenant(world: TenantWorld) -> None:
    client = member_client(world)
    url = reverse("console:settings-tenant-rename")
    blank = client.post(url, {"name": "   "})
    assert blank.status_code == 400
    assert "This field is required." in text(blank)

    done = client.post(url, {"name": "Alpha Renamed"}, follow=True)
    assert "The tenant is now called Alpha Renamed." in text(done)
    assert Tenant.objects.get(pk=world.tenant.pk).name == "Alpha Renamed"


def test_a_viewer_sees_the_tenant_but_cannot_rename_it(world: TenantWorld) -> None:
    client = member_client(world, Role.VIEWER)
    page = text(client.get(reverse("console:settings-tenant")))
    assert world.tenant.public_id in page
    assert "Save name" not in page
    assert client.post(reverse("console:settings-tenant-rename"), {"name": "x"}).status_code == 403


# --- API keys ---------------------------------------------------------------------------------


def test_a_new_key_is_shown_once_and_only_its_hash_is_kept(world: TenantWorld) -> None:
    client = member_client(world)
    response = client.post(NEW_KEY, {"name": "CI deploys", "scopes": ["agents:read", "calls:read"]})
    assert response.status_code == 302
    shown = text(client.get(API_KEYS))
    secret = re.search(r'data-testid="api-key-secret">([^<]+)<', shown)
    assert secret is not None
    api_key = ApiKey.objects.for_tenant(world.tenant).get(name="CI deploys")
    assert api_key.secret_hash == keys.hash_key(secret.group(1))
    assert api_key.scopes == ["agents:read", "calls:read"]
    assert "agents:read, calls:read" in shown

    again = text(client.get(API_KEYS))
    assert secret.group(1) not in again
    assert api_key.prefix in again


def test_the_scopes_offered_are_those_the_member_holds(world: TenantWorld) -> None:
    admin = member_client(world, Role.ADMIN)
    page = text(admin.get(NEW_KEY))
    assert 'value="agents:write"' in page
    assert 'value="billing:read"' not in page
    refused = admin.post(NEW_KEY, {"name": "sneaky", "scopes": ["billing:write"]})
    assert refused.status_code == 400
    assert "Select a valid choice." in text(refused)
    assert not ApiKey.objects.for_tenant(world.tenant).filter(name="sneaky").exists()


def test_the_service_refuses_a_member_a_key_stronger_than_their_role(world: TenantWorld) -> None:
    admin = factories.MembershipFactory(tenant=world.tenant, role=Role.ADMIN)
    actor = Actor.for_membership(admin)
    assert "billing:write" not in services.api_key_grantable_scopes(actor)
    with pytest.raises(Forbidden, match="billing:write"):
        services.api_key_create(
            tenant=world.tenant, actor=actor, name="x", scopes=["billing:write"]
        )


def test_a_wrong_key_form_keeps_its_values_and_says_what_is_wrong(world: TenantWorld) -> None:
    client = member_client(world)
    no_scopes = client.post(NEW_KEY, {"name": "reporting"})
    assert no_scopes.status_code == 400
    assert "This field is required." in text(no_scopes)
    assert 'value="reporting"' in text(no_scopes)

    yesterday = (timezone.now() - timedelta(days=2)).date().isoformat()
    past = client.post(NEW_KEY, {"name": "old", "scopes": ["calls:read"], "expires_at": yesterday})
    assert past.status_code == 400
    page = text(past)
    assert "The expiry must be in the future." in page
    assert 'value="calls:read"' in page and "checked" in page


def test_an_expiry_date_keeps_the_key_through_that_day(world: TenantWorld) -> None:
    day = (timezone.now() + timedelta(days=30)).date()
    member_client(world).post(
        NEW_KEY, {"name": "temp", "scopes": ["calls:read"], "expires_at": day.isoformat()}
    )
    api_key = ApiKey.objects.for_tenant(world.tenant).get(name="temp")
    assert api_key.expires_at is not None
    assert api_key.expires_at.date() == day + timedelta(days=1)


def test_revoking_a_key_asks_first(world: TenantWorld) -> None:
    client = member_client(world)
    url = reverse("console:api-key-revoke", kwargs={"id": world.api_key.public_id})
    asked = client.post(url)
    assert "Revoke API key" in text(asked)
    world.api_key.refresh_from_db()
    assert world.api_key.revoked_at is None
    done = client.post(url, {"confirmed": "yes"}, follow=True)
    assert f"The key {world.api_key.name} was revoked." in text(done)
    world.api_key.refresh_from_db()
    assert world.api_key.revoked_at is not None
    assert ">revoked</span>" in text(done)


# --- Webhooks ---------------------------------------------------------------------------------


def test_a_new_endpoint_shows_its_secret_once(world: TenantWorld) -> None:
    client = member_client(world)
    response = client.post(
        NEW_WEBHOOK, {"url": PUBLIC_URL, "description": "CRM", "event_types": ["call.completed"]}
    )
    assert response.status_code == 302
    endpoint = WebhookEndpoint.objects.for_tenant(world.tenant).get(url=PUBLIC_URL)
    assert endpoint.event_types == ["call.completed"]
    shown = text(client.get(response["Location"]))
    assert endpoint.secrets["current"] in shown
    assert endpoint.secrets["current"] not in text(client.get(response["Location"]))


def test_an_endpoint_url_the_service_refuses_is_explained_next_to_the_field(
    world: TenantWorld,
) -> None:
    response = member_client(world).post(
        NEW_WEBHOOK, {"url": "http://127.0.0.1/hook", "description": "local"}
    )
    assert response.status_code == 400
    page = text(response)
    assert "Use https: events carry call data." in page
    assert 'value="http://127.0.0.1/hook"' in page and 'value="local"' in page


def test_editing_an_endpoint(world: TenantWorld) -> None:
    endpoint = world.webhook_endpoint
    client = member_client(world)
    form = text(client.get(endpoint_url("webhook-edit", endpoint)))
    assert f'value="{endpoint.url}"' in form
    client.post(
        endpoint_url("webhook-edit", endpoint),
        {"url": PUBLIC_URL, "description": "moved", "event_types": ["call.outcome_tagged"]},
    )
    endpoint.refresh_from_db()
    assert (endpoint.url, endpoint.description) == (PUBLIC_URL, "moved")
    assert endpoint.event_types == ["call.outcome_tagged"]


def test_rotating_the_secret_asks_first_then_shows_the_new_one(world: TenantWorld) -> None:
    endpoint = world.webhook_endpoint
    client = member_client(world)
    old = endpoint.secrets["current"]
    asked = client.post(endpoint_url("webhook-rotate", endpoint))
    assert "Rotate signing secret" in text(asked)
    done = text(
        client.post(endpoint_url("webhook-rotate", endpoint), {"confirmed": "yes"}, follow=True)
    )
    endpoint.refresh_from_db()
    assert endpoint.secrets["current"] != old
    assert endpoint.secrets["current"] in done
    assert "still signs messages until" in done


def test_disabling_and_enabling_an_endpoint(world: TenantWorld) -> None:
    endpoint = world.webhook_endpoint
    WebhookDelivery.objects.for_tenant(world.tenant).filter(pk=world.webhook_delivery.pk).update(
        status=WebhookDelivery.Status.PENDING
    )
    client = member_client(world)
    client.post(endpoint_url("webhook-disable", endpoint), {"confirmed": "yes"})
    endpoint.refresh_from_db()
    assert endpoint.status == WebhookEndpoint.Status.DISABLED
    assert endpoint.disabled_reason == f"disabled by {world.owner.user.email}"
    delivery = WebhookDelivery.objects.for_tenant(world.tenant).get(pk=world.webhook_delivery.pk)
    assert delivery.status == WebhookDelivery.Status.FAILED

    replay_url = reverse("console:webhook-delivery-replay", kwargs={"id": delivery.public_id})
    refused = client.post(replay_url, follow=True)
    assert "enable it before replaying" in text(refused)

    client.post(endpoint_url("webhook-enable", endpoint))
    endpoint.refresh_from_db()
    assert endpoint.status == WebhookEndpoint.Status.ACTIVE
    replayed = client.post(replay_url, follow=True)
    copy = WebhookDelivery.objects.for_tenant(world.tenant).get(replay_of=delivery)
    assert f"being sent again as {copy.public_id}" in text(replayed)


def test_the_endpoint_page_lists_its_deliveries(world: TenantWorld) -> None:
    delivery = world.webhook_delivery
    page = text(member_client(world).get(endpoint_url("webhook", world.webhook_endpoint)))
    assert delivery.public_id in page
    assert f'aria-label="Replay {delivery.public_id}"' in page


def test_deleting_an_endpoint_asks_first(world: TenantWorld) -> None:
    endpoint = world.webhook_endpoint
    client = member_client(world)
    assert "Delete endpoint" in text(client.post(endpoint_url("webhook-delete", endpoint)))
    assert WebhookEndpoint.objects.for_tenant(world.tenant).filter(pk=endpoint.pk).exists()
    client.post(endpoint_url("webhook-delete", endpoint), {"confirmed": "yes"})
    assert not WebhookEndpoint.objects.for_tenant(world.tenant).filter(pk=endpoint.pk).exists()


# --- Audit log --------------------------------------------------------------------------------


def test_the_audit_log_is_newest_first_and_filters_by_action_and_actor(
    world: TenantWorld,
) -> None:
    client = member_client(world)
    client.post(NEW_KEY, {"name": "audited", "scopes": ["calls:read"]})
    client.post(reverse("console:settings-tenant-rename"), {"name": "Alpha Two"})
    page = text(client.get(AUDIT)).split('data-testid="audit-events"')[1]
    assert page.index("tenant.update") < page.index("api_key.create")
    assert "name: Alpha Inc → Alpha Two" in page
    assert "scopes: — → calls:read" in page

    only_keys = text(client.get(AUDIT, {"action": "api_key.create"}))
    assert "<code>api_key.create</code>" in only_keys
    assert "<code>tenant.update</code>" not in only_keys

    by_owner = text(client.get(AUDIT, {"actor": world.owner.user.public_id}))
    rows = by_owner.split('data-testid="audit-events"')[1]
    assert "<code>api_key.create</code>" in rows and "name: Alpha Inc → Alpha Two" in rows
    assert f"<td>{world.audit_event.actor_label}<" not in rows  # the factory's system event


def test_an_unknown_filter_shows_the_error_and_every_event(world: TenantWorld) -> None:
    page = text(member_client(world).get(AUDIT, {"action": "nope.never"}))
    assert "Select a valid choice." in page
    assert f"<code>{world.audit_event.action}</code>" in page


def test_members_outside_the_audit_permission_are_refused(world: TenantWorld) -> None:
    assert member_client(world, Role.EDITOR).get(AUDIT).status_code == 403
    assert Client().get(AUDIT).status_code == 302
